"""Test connection: the connection test runs in the background against a real (slow) pynetdicom
SCP on loopback; the panel shows each step and its diagnosis and updates the list's status icon.

How long the UI thread is blocked is measured by ``bench/ui_block.py``, not asserted here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import ui_driver as ud
from __feature__ import true_property  # noqa: F401
from DicomServersUI.connection_runner import defaultConnectionTester
from rig.scp import FakeQRSCP

ECHO_DELAY_S = 0.6


class SlowPacs(FakeQRSCP):
    """A Q/R SCP that takes ``echo_delay_s`` to answer each C-ECHO (a slow or busy PACS)."""

    def __init__(self, *args, echo_delay_s: float = ECHO_DELAY_S, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.echo_delay_s = echo_delay_s

    def _on_echo(self, event):
        self._pause(self.echo_delay_s)
        return super()._on_echo(event)


@pytest.fixture
def slow_pacs() -> Iterator[SlowPacs]:
    """A slow PACS on a free loopback port (also slow to answer queries)."""
    scp = SlowPacs("SLOWPACS", stall_seconds=0.2)
    scp.start()
    try:
        yield scp
    finally:
        scp.stop()


@pytest.fixture
def tester():
    found = defaultConnectionTester()
    assert found is not None, "the DIMSE connection test of the core must be importable"
    return found


def status_state(panel, row):
    return ud.row_child(panel, row, "statusIconLabel").property("connectionState")


def test_test_connection_runs_in_the_background_and_marks_the_server_ok(
    make_panel, registry, slow_pacs, tester
):
    registry.add("Slow PACS", host="127.0.0.1", port=slow_pacs.port, called_ae_title="SLOWPACS")
    panel = make_panel(connectionTester=tester)
    ud.click_entry(panel, 0)
    assert panel.ui.connectionTestStatusLabel.text == "Not tested yet."

    ticks = []
    timer = ud.QtCore.QTimer()
    timer.interval = 10
    timer.timeout.connect(lambda: ticks.append(1) if panel.isTesting() else None)
    timer.start()
    ud.click(panel.ui.testConnectionButton)
    assert panel.isTesting()
    assert panel.ui.testConnectionButton.text == "Cancel test"
    assert panel.ui.connectionTestStatusLabel.text == "Testing…"
    assert status_state(panel, 0) == "running"
    ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the connection test")
    timer.stop()
    # The UI kept handling events while the test ran (it never froze).
    assert len(ticks) >= 5

    assert status_state(panel, 0) == "ok"
    tooltip = ud.row_child(panel, 0, "statusIconLabel").toolTip
    assert tooltip.startswith("Last connection test succeeded on " + dt.date.today().isoformat())
    assert panel.ui.testConnectionButton.text == "Test connection"
    assert panel.ui.connectionTestStatusLabel.text.startswith("✔")
    steps = panel.ui.connectionStepsLabel
    assert steps.visible and "C-ECHO" in steps.text and "passed in" in steps.text
    # The PACS really was asked, by our calling AE title.
    echoes = slow_pacs.requests_for("C-ECHO")
    assert echoes and echoes[0].calling_ae_title == "SLICER"


def test_failed_connection_shows_the_diagnosis_and_a_failed_status(
    make_panel, registry, free_port, tester
):
    registry.add("Nobody home", host="127.0.0.1", port=free_port)
    panel = make_panel(connectionTester=tester)
    ud.click_entry(panel, 0)
    ud.click(panel.ui.testConnectionButton)
    ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the connection test")
    assert status_state(panel, 0) == "failed"
    assert "failed on" in ud.row_child(panel, 0, "statusIconLabel").toolTip
    assert panel.ui.connectionTestStatusLabel.text.startswith("✖")
    status = panel.status(panel.currentServer().id)
    assert status.diagnosis  # what the user should do, in plain words
    assert status.diagnosis in panel.ui.connectionStepsLabel.text.replace("&#x27;", "'")
    assert str(free_port) in status.diagnosis or "127.0.0.1" in status.diagnosis


def test_results_belong_to_the_server_tested_even_after_switching(
    make_panel, registry, slow_pacs, tester
):
    registry.add("Slow PACS", host="127.0.0.1", port=slow_pacs.port, called_ae_title="SLOWPACS")
    registry.add("Other PACS")
    panel = make_panel(connectionTester=tester)
    ud.click_entry(panel, 0)
    ud.click(panel.ui.testConnectionButton)
    ud.click_entry(panel, 1)
    assert panel.ui.testConnectionButton.text == "Test connection"
    assert panel.ui.connectionTestStatusLabel.text == "Not tested yet."
    ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the connection test")
    assert [status_state(panel, 0), status_state(panel, 1)] == ["ok", "unknown"]
    assert panel.ui.connectionTestStatusLabel.text == "Not tested yet."
    ud.click_entry(panel, 0)
    assert "C-ECHO" in panel.ui.connectionStepsLabel.text


def test_a_running_test_can_be_cancelled(make_panel, registry, slow_pacs, tester):
    registry.add("Slow PACS", host="127.0.0.1", port=slow_pacs.port, called_ae_title="SLOWPACS")
    panel = make_panel(connectionTester=tester)
    ud.click_entry(panel, 0)
    ud.click(panel.ui.testConnectionButton)
    ud.click(panel.ui.testConnectionButton)  # now "Cancel test"
    assert panel.ui.connectionTestStatusLabel.text == "Cancelling…"
    ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the cancelled test")
    assert status_state(panel, 0) == "unknown"
    assert panel.ui.connectionTestStatusLabel.text == "Test cancelled"


def test_an_invalid_unsaved_setting_is_fixed_before_testing(make_panel, registry, tester):
    registry.add("Main PACS", host="127.0.0.1")
    panel = make_panel(connectionTester=tester)
    ud.click_entry(panel, 0)
    ud.type_into(panel.ui.portLineEdit, "0")
    ud.click(panel.ui.testConnectionButton)
    assert not panel.isTesting()
    assert "Fix the highlighted settings first" in panel.ui.connectionTestStatusLabel.text
    assert status_state(panel, 0) == "unknown"


def test_a_broken_tester_is_reported_not_crashing_the_panel(make_panel, registry):
    def broken(server, report, cancel):
        raise RuntimeError("tester exploded")

    registry.add("Main PACS", host="127.0.0.1")
    panel = make_panel(connectionTester=broken)
    ud.click_entry(panel, 0)
    ud.click(panel.ui.testConnectionButton)
    ud.wait_until(lambda: not panel.isTesting(), timeout=10, message="the test")
    assert status_state(panel, 0) == "failed"
    assert "tester exploded" in panel.ui.connectionTestStatusLabel.text


def test_the_last_test_is_remembered_across_sessions_and_forgotten_with_the_server(
    make_panel, registry, stored, slow_pacs, tester
):
    registry.add("Slow PACS", host="127.0.0.1", port=slow_pacs.port, called_ae_title="SLOWPACS")
    panel = make_panel(connectionTester=tester)
    ud.click_entry(panel, 0)
    ud.click(panel.ui.testConnectionButton)
    ud.wait_until(lambda: not panel.isTesting(), timeout=30, message="the connection test")
    tooltip = ud.row_child(panel, 0, "statusIconLabel").toolTip
    # A new session on the same settings file shows the same status and time.
    later = make_panel(registry=stored(), connectionTester=tester)
    assert status_state(later, 0) == "ok"
    assert ud.row_child(later, 0, "statusIconLabel").toolTip == tooltip
    ud.click_entry(later, 0)
    assert later.ui.connectionTestStatusLabel.text.startswith("✔ Connection OK")
    with ud.answering("deleteButton"):
        ud.click(ud.row_child(later, 0, "deleteButton"))
    from DicomServersLib.connection_status import load_records

    assert load_records(stored().store.settings) == {}
