"""The standalone window (``make demo``): the panel on a demo settings file, with the embedded
demo PACS as the default server, tested for real over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import ui_driver as ud
from __feature__ import true_property  # noqa: F401
from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.settings_store import SettingsStore
from DicomServersUI import standalone

REPO = Path(__file__).resolve().parents[2]


def test_demo_window_lists_the_demo_pacs_as_default_and_tests_its_connection(
    qapp, tmp_path, monkeypatch
):
    monkeypatch.setenv("DICOMSERVERS_SECRET_STORE", "memory")
    settings = tmp_path / "demo" / "DicomServers.ini"
    session = standalone.openWindow(["--demo", "--embedded", "--settings", str(settings)])
    try:
        panel = session.panel
        assert session.window.window.windowTitle == "DICOM Servers"
        status = session.window.statusLabel.text
        assert str(settings) in status and "Demo PACS (embedded PACS) on 127.0.0.1:" in status
        assert "this session only" in status
        assert ud.entry_names(panel) == ["Demo PACS"]
        assert ud.row_child(panel, 0, "defaultLabel").visible
        # The default server is shown when the window opens.
        assert panel.currentServer().name == "Demo PACS"
        assert panel.ui.configurationWidget.visible
        assert panel.ui.portLineEdit.text == str(session.demo.port)
        # Its connection test starts by itself; the user may run it again. The demo PACS
        # answers C-ECHO and C-FIND over loopback.
        ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the first test")
        first = panel.status(panel.currentServer().id)
        assert first.testedAt is not None
        ud.click(panel.ui.testConnectionButton)
        ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the connection test")
        status = panel.status(panel.currentServer().id)
        assert status.testedAt >= first.testedAt
        passed = {step.name.split(" ")[0] for step in status.steps if step.ok}
        assert {"C-ECHO", "C-FIND"} <= passed
        assert ud.row_child(panel, 0, "statusIconLabel").property("connectionState") in (
            "ok",
            "failed",
        )
        # The study browser, next to the panel, offers the same servers in the same order.
        tabs = session.window.tabs
        assert [tabs.tabText(i) for i in range(tabs.count)] == ["Servers", "Study browser"]
        combo = session.window.browser.ui.serverComboBox
        assert [combo.itemText(i) for i in range(combo.count)] == ["Demo PACS"]
    finally:
        session.close()
    stored = ServerRegistry(SettingsStore(IniSettings(settings), MemorySecretStore(values={})))
    assert stored.default_server().name == "Demo PACS"


def test_a_second_start_points_the_existing_demo_entry_at_the_new_pacs(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMSERVERS_SECRET_STORE", "memory")
    settings = tmp_path / "DicomServers.ini"
    ports = []
    for _ in range(2):
        session = standalone.openWindow(["--demo", "--embedded", "--settings", str(settings)])
        try:
            ports.append(session.demo.port)
            assert ud.entry_names(session.panel) == ["Demo PACS"]
            assert session.panel.currentServer().port == session.demo.port
            # What the user changed in the demo entry stays.
            ud.type_into(session.panel.ui.worklistAeTitleLineEdit, "MYRIS")
        finally:
            session.close()
    stored = ServerRegistry(SettingsStore(IniSettings(settings), MemorySecretStore(values={})))
    assert stored.get("Demo PACS").port == ports[-1]
    assert stored.get("Demo PACS").worklist_ae_title == "MYRIS"


def test_without_demo_the_window_opens_on_the_given_settings_file(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMSERVERS_SECRET_STORE", "memory")
    settings = tmp_path / "mine.ini"
    registry = ServerRegistry(SettingsStore(IniSettings(settings), MemorySecretStore(values={})))
    registry.add("Hospital PACS")
    session = standalone.openWindow(["--settings", str(settings)])
    try:
        assert ud.entry_names(session.panel) == ["Hospital PACS"]
        assert session.panel.currentServer().name == "Hospital PACS"  # no default: the first
        assert "Demo PACS" not in session.window.statusLabel.text
    finally:
        session.close()


@pytest.mark.orthanc
def test_sigterm_closes_the_window_and_stops_the_demo_orthanc(tmp_path):
    """`make demo` killed with SIGTERM (or Ctrl-C) leaves no Orthanc behind."""
    settings = tmp_path / "demo" / "DicomServers.ini"
    environment = dict(
        os.environ,
        PYTHONPATH=str(REPO / "DicomServers"),
        QT_QPA_PLATFORM="offscreen",
        DICOMSERVERS_SECRET_STORE="memory",
    )
    window = subprocess.Popen(
        [sys.executable, "-m", "DicomServersUI.standalone", "--demo", "--settings", str(settings)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = settings.parent / "pacs" / "orthanc" / "orthanc.json"
    try:
        ud.wait_until(lambda: orthanc_pids(config), timeout=60, message="the demo Orthanc")
        window.send_signal(signal.SIGTERM)
        assert window.wait(timeout=60) == 0
        ud.wait_until(lambda: not orthanc_pids(config), timeout=30, message="Orthanc to stop")
    finally:
        window.kill()
        for pid in orthanc_pids(config):
            os.kill(pid, signal.SIGKILL)


def orthanc_pids(config) -> list[int]:
    """The processes running Orthanc on ``config``."""
    found = subprocess.run(
        ["pgrep", "-f", f"Orthanc {config}"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]
