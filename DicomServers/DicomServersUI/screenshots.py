"""A scripted tour of the DICOM Servers panel that writes screenshots (``make screenshots``).

Run with ``DicomServers/`` on ``sys.path``::

    QT_QPA_PLATFORM=offscreen python -m DicomServersUI.screenshots build/screenshots

The panel is shown 450 pixels wide (a normal Slicer module panel) on a throw-away settings file
with a realistic list: a default server, servers tested for real over loopback (an embedded
demo PACS answers, a closed port fails) and one not tested yet. Nothing leaves this computer.

Written files: ``panel.png`` (list and the selected server), ``panel-full.png`` (every group),
one ``group-<name>.png`` per settings group, ``validation.png`` (an invalid field),
``connection-failed.png`` (a failed test with its diagnosis) and ``delete-confirmation.png``.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from . import pyside_qt

pyside_qt.install()

import qt  # noqa: E402

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # pragma: no cover - only PySide6 runs this file
    pass

from DicomServersLib.ini_settings import IniSettings  # noqa: E402
from DicomServersLib.registry import ServerRegistry  # noqa: E402
from DicomServersLib.secret_store import FileSecretStore  # noqa: E402
from DicomServersLib.settings_store import SettingsStore  # noqa: E402

from .connection_runner import defaultConnectionTester  # noqa: E402
from .servers_panel import DicomServersPanel  # noqa: E402

PANEL_WIDTH = 450

#: Settings groups and the file name of their screenshot.
GROUPS = (
    ("generalGroupBox", "general"),
    ("restGroupBox", "rest"),
    ("loadingGroupBox", "loading"),
    ("worklistGroupBox", "worklist"),
    ("notificationsGroupBox", "notifications"),
    ("filtersGroupBox", "filters"),
    ("storeScuGroupBox", "storescu"),
    ("dimseGroupBox", "dimse"),
    ("connectionTestGroupBox", "connection"),
)


def processEvents(seconds: float = 0.05) -> None:
    """Let Qt lay out and paint for a moment."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        qt.QApplication.processEvents()
        time.sleep(0.005)


def closedPort() -> int:
    """Return a loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fillRegistry(
    registry: ServerRegistry, pacsPort: int, pacsAeTitle: str, pacsFolder: str
) -> None:
    """A realistic list: four servers, the first one the default."""
    registry.add(
        "Hospital PACS",
        is_default=True,
        called_ae_title=pacsAeTitle,
        host="127.0.0.1",
        port=pacsPort,
        calling_ae_title="SLICER_WS1",
        retrieve_method="c-get",
        move_destination_ae_title="SLICER_WS1",
        storage_port=11113,
        timeout_s=20.0,
        rest_enabled=True,
        rest_url="http://127.0.0.1:8042",
        rest_user="radiology",
        rest_password="not-a-real-password",
        rest_limit=500,
        search_limit=2000,
        cache_threshold=50,
        load_mode="manual",
        worklist_ae_title=pacsAeTitle,
        scheduled_station_ae_title="CT_SCANNER_1",
        notifications_enabled=True,
        notification_ip="127.0.0.1",
        notification_port=8765,
        date_filter="relative",
        filter_relative_count=6,
        filter_relative_unit="months",
    )
    registry.add(
        "Research Orthanc",
        called_ae_title=pacsAeTitle,
        host="127.0.0.1",
        port=pacsPort,
        rest_enabled=True,
        rest_flavor="dicomweb",
        rest_url="http://127.0.0.1:8042/dicom-web",
        load_mode="folder",
        storage_folder=pacsFolder,
    )
    registry.add(
        "Cardiology archive", called_ae_title="CARDIO", host="127.0.0.1", port=closedPort()
    )
    registry.add(
        "Teaching files", called_ae_title="TEACHING", host="teaching.example.org", port=104
    )


def grab(widget, path: Path, rect=None) -> Path:
    """Save ``widget`` (or the part ``rect`` of it) as a PNG."""
    pixmap = widget.grab(rect) if rect is not None else widget.grab()
    if not pixmap.save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def layOut(panel: DicomServersPanel) -> None:
    """Give the panel its width and the height it needs, and paint it."""
    widget = panel.widget
    widget.resize(PANEL_WIDTH, 400)
    processEvents()
    height = widget.heightForWidth(PANEL_WIDTH) if widget.hasHeightForWidth() else -1
    widget.resize(PANEL_WIDTH, max(height, widget.sizeHint.height()))
    processEvents(0.1)


def waitForTests(panel: DicomServersPanel, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while panel.isTesting() and time.monotonic() < deadline:
        processEvents(0.05)


def tour(outDir: Path) -> list[Path]:
    """Run the tour; return the files written."""
    from DicomServersLib.demo_pacs import DemoPacs

    outDir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    app = qt.QApplication.instance() or qt.QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    with tempfile.TemporaryDirectory() as tmp:
        pacs = DemoPacs(Path(tmp) / "pacs", ae_title="HOSPITAL_PACS").start()
        try:
            secrets = FileSecretStore(Path(tmp) / "credentials.json")
            secrets.location = "~/.config/DicomServers/credentials.json (readable by you only)"
            registry = ServerRegistry(SettingsStore(IniSettings(Path(tmp) / "Slicer.ini"), secrets))
            fillRegistry(registry, pacs.port, pacs.ae_title, str(pacs.folder.storage))
            panel = DicomServersPanel(registry, connectionTester=defaultConnectionTester())
            panel.widget.show()
            for name in ("Hospital PACS", "Research Orthanc", "Cardiology archive"):
                panel.selectServer(name)
                panel.onTestConnection()
            waitForTests(panel)
            panel.selectServer("Hospital PACS")
            layOut(panel)
            ui = panel.ui
            bottom = ui.configurationWidget.y + ui.generalGroupBox.geometry.bottom() + 8
            written.append(
                grab(panel.widget, outDir / "panel.png", qt.QRect(0, 0, PANEL_WIDTH, bottom))
            )
            written.append(grab(panel.widget, outDir / "panel-full.png"))
            for objectName, fileName in GROUPS:
                written.append(grab(getattr(ui, objectName), outDir / f"group-{fileName}.png"))

            # An invalid value: highlighted, with the reason next to the field; never saved.
            ui.portLineEdit.setFocus()
            ui.portLineEdit.selectAll()
            ui.portLineEdit.insert("70000")
            panel._onFieldEdited("port")
            layOut(panel)
            written.append(grab(ui.storeScuGroupBox, outDir / "validation.png"))
            panel._pending.clear()
            panel.selectServer("Cardiology archive")
            layOut(panel)
            written.append(grab(ui.connectionTestGroupBox, outDir / "connection-failed.png"))
            written.append(grabDeleteConfirmation(panel, outDir / "delete-confirmation.png"))
            panel.cleanup()
            panel.widget.close()
            written.append(grabBrowser(registry, Path(tmp) / "retrieved", outDir / "browser.png"))
        finally:
            pacs.stop()
    return written


def grabBrowser(registry: ServerRegistry, destination: Path, path: Path) -> Path:
    """Search the demo PACS in the study browser, select the newest study and save the view."""
    from .study_browser import BrowserHost, StudyBrowser

    registry.set_default("Hospital PACS")
    registry.update("Hospital PACS", load_mode="manual", date_filter="none", rest_enabled=False)
    browser = StudyBrowser(registry, BrowserHost(destination))
    try:
        browser.widget.resize(900, 640)
        browser.widget.show()
        browser.setServer("Hospital PACS")
        browser.search()
        deadline = time.monotonic() + 30
        while browser._jobs and time.monotonic() < deadline:
            processEvents(0.05)
        if browser.studyModel.rowCount() > 0:
            browser.selectStudy(0)
            deadline = time.monotonic() + 10
            while (
                browser._jobs or browser.seriesModel.rowCount() == 0
            ) and time.monotonic() < deadline:
                processEvents(0.05)
        processEvents(0.3)
        return grab(browser.widget, path)
    finally:
        browser.cleanup()
        browser.widget.close()


def grabDeleteConfirmation(panel: DicomServersPanel, path: Path) -> Path:
    """Open the delete confirmation of the selected server, save it, and cancel."""
    done: list[Path] = []

    def answer() -> None:
        box = qt.QApplication.activeModalWidget()
        if box is None:
            qt.QTimer.singleShot(20, answer)
            return
        processEvents(0.05)
        done.append(grab(box, path))
        box.reject()

    qt.QTimer.singleShot(50, answer)
    panel.onDeleteServer(panel.currentServer().id)
    return done[0]


def main(argv=None) -> int:
    """Write the screenshots to the folder given (default ``build/screenshots``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    outDir = Path(args[0] if args else "build/screenshots")
    for path in tour(outDir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
