"""The DICOM Servers panel in a window of its own, outside Slicer (``make demo``).

Run with ``DicomServers/`` on ``sys.path`` (``PYTHONPATH=DicomServers``)::

    python -m DicomServersUI.standalone [--demo] [--embedded] [--settings PATH]

The window works on ``build/demo/DicomServers.ini`` unless ``--settings`` names another file, so
the user's Slicer settings are never touched by a demo. Passwords go to the secret store chosen
by ``DICOMSERVERS_SECRET_STORE`` (memory when there is no OS keyring; the window says so).

``--demo`` also starts the demo's default PACS (``DicomServersLib.demo_pacs``: Orthanc when it
is installed, else the embedded pure-Python PACS; ``--embedded`` always uses the latter) holding
sample studies, and puts it in the list as "Demo PACS", the default server. The PACS stops when
the window closes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from . import pyside_qt

pyside_qt.install()

import qt  # noqa: E402 - the harness qt module installed above

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # pragma: no cover - only PySide6 runs this file
    pass

from DicomServersLib.ini_settings import IniSettings  # noqa: E402
from DicomServersLib.registry import ServerRegistry  # noqa: E402
from DicomServersLib.secret_store import MemorySecretStore, open_secret_store  # noqa: E402
from DicomServersLib.settings_store import SettingsStore  # noqa: E402

from .notifications_controller import (  # noqa: E402
    MESSAGE_DURATION_MS,
    NotificationsController,
    notificationStatusText,
)
from .servers_panel import DicomServersPanel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "build" / "demo"
PANEL_WIDTH = 480
PANEL_MAX_WIDTH = 640

#: Fields of the "Demo PACS" record that follow the running demo server (its port may change).
DEMO_CONNECTION_FIELDS = (
    "host",
    "port",
    "called_ae_title",
    "rest_enabled",
    "rest_flavor",
    "rest_url",
    "rest_user",
    "rest_password",
    "storage_folder",
)

log = logging.getLogger("DicomServers.standalone")


def buildParser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m DicomServersUI.standalone",
        description="The DICOM Servers panel in a standalone window.",
    )
    parser.add_argument("--demo", action="store_true", help="start the demo PACS (sample studies)")
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="with --demo: the embedded PACS even if Orthanc is installed",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help=f"settings file (default: {DEMO_DIR / 'DicomServers.ini'})",
    )
    parser.add_argument("--quit-after", type=float, default=None, help=argparse.SUPPRESS)
    return parser


def startDemoPacs(folder: Path, secrets, embedded: bool):
    """Start the demo PACS; return ``(server, record)`` or ``(None, reason)`` when it cannot run."""
    try:
        from DicomServersLib.demo_pacs import start_demo
    except ImportError as error:
        return None, f"the demo PACS is not available ({error})"
    try:
        server = start_demo(folder, prefer_orthanc=not embedded, secrets=secrets)
    except (OSError, RuntimeError) as error:
        return None, f"the demo PACS did not start: {error}"
    return server, server.demo_server_record()


def putDemoServer(registry: ServerRegistry, record) -> None:
    """Add the "Demo PACS" record (first, default) or point the existing one at the running PACS."""
    existing = next((s for s in registry.servers if s.id == record.id), None)
    if existing is None:
        registry.add_server(record, index=0)
        return
    changes = {
        f: getattr(record, f)
        for f in DEMO_CONNECTION_FIELDS
        if getattr(record, f) != getattr(existing, f)
    }
    if changes:
        registry.update(existing.name, **changes)


class StandaloneWindow:
    """A main window holding the panel (and the study browser, when installed) and a status bar.

    The panel is the "Servers" tab; the study browser (``DicomServersUI.study_browser``), when
    it can be imported, is the "Study browser" tab, retrieving into ``retrieveFolder``.
    """

    def __init__(
        self,
        registry: ServerRegistry,
        settingsPath: Path,
        secretWarning: str = "",
        retrieveFolder=None,
        notificationService=None,
    ) -> None:
        self.registry = registry
        self.panel = DicomServersPanel(registry, secretStoreWarning=secretWarning)
        self.browser = makeStudyBrowser(
            registry, retrieveFolder or settingsPath.parent / "retrieved"
        )
        self.window = qt.QMainWindow()
        self.window.objectName = "DicomServersStandaloneWindow"
        self.window.windowTitle = "DICOM Servers"
        scroll = qt.QScrollArea()
        scroll.widgetResizable = True
        scroll.horizontalScrollBarPolicy = qt.Qt.ScrollBarAlwaysOff
        scroll.setWidget(self.panel.widget)
        self.panel.widget.maximumWidth = PANEL_MAX_WIDTH
        if self.browser is None:
            self.window.setCentralWidget(scroll)
            self.window.resize(PANEL_WIDTH + 40, 900)
        else:
            self.tabs = qt.QTabWidget()
            self.tabs.objectName = "standaloneTabs"
            self.tabs.addTab(scroll, "Servers")
            self.tabs.addTab(self.browser.widget, "Study browser")
            self.window.setCentralWidget(self.tabs)
            self.window.resize(900, 900)
        self.statusLabel = qt.QLabel()
        self.window.statusBar().addWidget(self.statusLabel, 1)
        self.settingsPath = settingsPath
        self.showStatus()
        # New studies on the servers: messages in the status bar, the mode of each server in a
        # permanent label beside it (DicomServersUI/notifications_controller.py).
        self.notificationLabel = qt.QLabel()
        self.notificationLabel.objectName = "notificationSummaryLabel"
        self.window.statusBar().addPermanentWidget(self.notificationLabel)
        self.notifications = NotificationsController(
            registry,
            service=notificationService,
            showMessage=self.showMessage,
            browser=lambda create: self.browser,
        )
        self.notifications.addStatusListener(self.panel.setNotificationStatus)
        self.notifications.addStatusListener(self._showNotificationSummary)

    def cleanup(self) -> None:
        """Save pending edits and stop the notifications, tests, searches and transfers."""
        self.notifications.cleanup()
        self.panel.cleanup()
        if self.browser is not None:
            self.browser.cleanup()

    def showStatus(self, extra: str = "") -> None:
        """Say in the status bar which settings file and secret store are used."""
        secrets = self.registry.store.secrets if self.registry.store else None
        where = getattr(secrets, "location", "memory")
        text = f"Settings: {self.settingsPath} · Passwords: {where}"
        self.statusLabel.text = text + (f" · {extra}" if extra else "")
        self.statusLabel.toolTip = self.statusLabel.text

    def showMessage(self, text: str) -> None:
        """Show a non-modal message in the status bar for a few seconds."""
        self.window.statusBar().showMessage(text, MESSAGE_DURATION_MS)

    def _showNotificationSummary(self, status=None) -> None:
        self.notificationLabel.text = self.notifications.summary()
        self.notificationLabel.toolTip = "\n".join(
            notificationStatusText(s) for s in self.notifications.statuses.values()
        )


def makeStudyBrowser(registry: ServerRegistry, destination: Path):
    """Return the study browser on ``registry``, or None when it is not installed."""
    try:
        from .study_browser import BrowserHost, StudyBrowser
    except ImportError as error:
        log.info("no study browser in this window: %s", error)
        return None
    return StudyBrowser(registry, host=BrowserHost(destination))


class Session:
    """A running standalone window and, with ``--demo``, its demo PACS."""

    def __init__(self, window: StandaloneWindow, demo=None) -> None:
        self.window = window
        self.demo = demo

    @property
    def panel(self) -> DicomServersPanel:
        """The DICOM Servers panel in the window."""
        return self.window.panel

    def close(self) -> None:
        """Save what is pending, stop the tests and the demo PACS, close the window."""
        self.window.cleanup()
        self.window.window.close()
        if self.demo is not None:
            self.demo.stop()
            self.demo = None


def openWindow(argv=None) -> Session:
    """Parse ``argv``, start the demo PACS if asked, and show the window (no event loop)."""
    args = buildParser().parse_args(argv)
    settingsPath = (args.settings or DEMO_DIR / "DicomServers.ini").expanduser().resolve()
    settingsPath.parent.mkdir(parents=True, exist_ok=True)
    app = qt.QApplication.instance() or qt.QApplication(sys.argv[:1])
    app.applicationName = "DICOM Servers"
    try:
        opened = open_secret_store()
        secrets, secretWarning = opened.store, opened.warning
    except ValueError as error:
        secrets = MemorySecretStore()
        secretWarning = f"{error}. Passwords are only remembered for this session."
    registry = ServerRegistry(SettingsStore(IniSettings(settingsPath), secrets))
    demo, demoText = None, ""
    if args.demo:
        demo, result = startDemoPacs(settingsPath.parent / "pacs", secrets, args.embedded)
        if demo is None:
            demoText = str(result)
            log.warning("%s", result)
        else:
            putDemoServer(registry, result)
            kind = "Orthanc" if type(demo).__name__.startswith("Orthanc") else "embedded PACS"
            demoText = (
                f"Demo PACS ({kind}) on {result.host}:{result.port}, AE {result.called_ae_title}"
            )
    window = StandaloneWindow(registry, settingsPath, secretWarning)
    window.showStatus(demoText)
    preselected = registry.preselected()
    if preselected is not None:
        window.panel.selectServer(preselected.name)
    window.window.show()
    if demo is not None:  # show at once that the demo PACS answers
        demoName = next(s.name for s in registry.servers if s.id == result.id)
        window.panel.selectServer(demoName)
        window.panel.onTestConnection()
    if args.quit_after is not None:
        qt.QTimer.singleShot(int(args.quit_after * 1000), window.window.close)
    return Session(window, demo)


def quitOnSignals(stopping: list) -> None:
    """On Ctrl-C or SIGTERM, note it in ``stopping`` and quit the event loop if it runs.

    Installed before anything starts, so a signal that comes while the demo PACS is starting
    still ends in :meth:`close`, which stops it. Python runs signal handlers only between
    bytecodes: while Qt's event loop runs, a timer (see :func:`main`) gives it the chance.
    """

    def onSignal(*_: object) -> None:
        stopping.append(True)
        app = qt.QApplication.instance()
        if app is not None:
            app.quit()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, onSignal)


def main(argv=None) -> int:
    """Open the window and run until it is closed; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stopping: list = []
    quitOnSignals(stopping)
    session = openWindow(argv)
    wakeUp = qt.QTimer()
    wakeUp.timeout.connect(lambda: None)
    wakeUp.start(200)
    try:
        if not stopping:
            qt.QApplication.instance().exec()
    finally:
        wakeUp.stop()
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
