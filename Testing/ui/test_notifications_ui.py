"""Notifications in the UI, end to end: a real Orthanc 1.10.1 running the shipped Lua plugin.

The plugin (``Resources/PACS/orthanc``, its first lines set as an administrator would) posts to
the controller's real listener on a free loopback port; the panel, the study browser and the
standalone window run offscreen on the PySide6 harness. What the user sees is asserted: the
status message, the REST cached list and the browser's rows, selection and scroll position,
the notification mode in the panel and the status bar, and the automatic retrieve.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import ui_driver
from DicomServersLib import sources
from DicomServersLib.notifications.service import NotificationService
from DicomServersLib.transfer_queue import TransferQueue
from DicomServersUI.notifications_controller import NotificationsController
from DicomServersUI.standalone import StandaloneWindow
from DicomServersUI.study_browser import BrowserHost, StudyBrowser
from notifications.notify_helpers import configured_script
from rig.studies import Patient, SeriesSpec, make_study
from ui_driver import wait_until

from __feature__ import true_property  # noqa: F401  # isort: skip

STABLE_AGE = 1
TOKEN = "t0ken"
POLL_S = 0.5


@pytest.fixture(autouse=True)
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """REST caches of this test only."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DICOMSERVERS_CACHE_DIR", str(folder))
    return folder


def small_study(folder: Path, index: int, date: str, name: str = "") -> object:
    """A one-image CT study of its own patient."""
    patient = Patient(f"NT-{index:03d}", name or f"Notify^Patient{index:03d}")
    return make_study(
        folder,
        patient,
        series=[SeriesSpec("CT", "Axial", slices=1, rows=16, columns=16)],
        description=f"Study {index}",
        accession_number=f"NTACC{index:03d}",
        study_date=date,
        study_time=f"{index % 24:02d}0000",
        seed=1000 + index,
    )


def lab_fields(orthanc, port: int, **fields) -> dict:
    """The test Orthanc as a server of the list: REST on, notifications on ``port``."""
    values = {
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "called_ae_title": "ORTHANC",
        "rest_enabled": True,
        "rest_flavor": "orthanc",
        "rest_url": orthanc.http_url,
        "rest_user": orthanc.user,
        "rest_password": orthanc.password,
        "timeout_s": 10.0,
        "notifications_enabled": True,
        "notification_ip": "127.0.0.1",
        "notification_port": port,
        "notification_token": TOKEN,
        "load_mode": "manual",
    }
    values.update(fields)
    return values


def quiet_service() -> NotificationService:
    """Polling every 0.5 s when it must; no watchdog (the plugin is known to work here)."""
    return NotificationService(poll_interval_s=POLL_S, watchdog_interval_s=0)


@pytest.fixture
def ui_rig(qapp, registry, make_panel, tmp_path):
    """Return ``make()`` building the panel, a study browser and the controller on ``registry``."""
    made: list = []

    def make():
        panel = make_panel()
        browser = StudyBrowser(
            registry, host=BrowserHost(tmp_path / "retrieved"), transferQueue=TransferQueue()
        )
        browser.widget.resize(900, 600)
        browser.widget.show()
        messages: list[str] = []
        controller = NotificationsController(
            registry,
            service=quiet_service(),
            showMessage=messages.append,
            browser=lambda create: browser,
        )
        controller.addStatusListener(panel.setNotificationStatus)
        made.append((controller, browser))
        return panel, browser, controller, messages

    yield make
    for controller, browser in made:
        controller.cleanup()
        browser.cleanup()
        browser.queue.close()
        browser.widget.close()
        browser.widget.deleteLater()
    ui_driver.process_events()


def rows_shown(browser) -> list[str]:
    return [study.study_uid for study in browser.studyModel.items]


def view_state(browser) -> tuple:
    view = browser.ui.studyTableView
    top = browser.studyModel.study(view.rowAt(0))
    current = view.selectionModel().currentIndex
    selected = browser.studyModel.study(current.row()) if current.isValid() else None
    return (
        int(view.verticalScrollBar().value),
        top.study_uid,
        selected.study_uid if selected else None,
        browser.currentStudy().study_uid if browser.currentStudy() else None,
    )


def test_a_stored_study_is_announced_cached_and_listed_keeping_selection_and_scroll(
    orthanc_factory, registry, ui_rig, free_port, tmp_path
):
    script = configured_script(f"http://127.0.0.1:{free_port}/notify", token=TOKEN, server="lab")
    studies = [
        small_study(tmp_path / "pacs", i, f"2020{1 + i % 12:02d}{1 + i:02d}") for i in range(25)
    ]
    orthanc = orthanc_factory(lua_scripts=[script], stable_age=STABLE_AGE)
    registry.add("lab", **lab_fields(orthanc, free_port))
    panel, browser, controller, messages = ui_rig()
    panel.selectServer("lab")
    wait_until(lambda: f"listening on 127.0.0.1:{free_port}" in panel.notificationStatusText())
    assert "posts to http://127.0.0.1" in panel.notificationStatusText()
    # (The plugin pauses instance posts for 10 s after a failed one: the listener runs first.)
    orthanc.upload([p for s in studies for p in s.paths])

    def completed() -> set:
        return {m.split(" – ")[0] for m in controller.messages if m.startswith("New study on")}

    wait_until(lambda: len(completed()) == 25, STABLE_AGE + 20, "25 study notifications")
    wait_until(lambda: len(rows_shown(browser)) == 25, 15, "the list")
    ui_driver.process_events(1500)  # the last refreshes settle
    wait_until(lambda: not browser._jobs, 10, "the last refresh")

    view = browser.ui.studyTableView
    bar = view.verticalScrollBar()
    assert bar.maximum >= 8, "the list must scroll for this test"
    bar.value = 6
    browser.selectStudy(9)
    wait_until(lambda: not browser._jobs, 10, "the series listing")
    before = view_state(browser)
    assert before[2] == before[3] == browser.studyModel.study(9).study_uid

    # An old study sorts below the view: nothing the user sees moves.
    old = small_study(tmp_path / "new", 90, "19990101", "Old^Arrival")
    orthanc.upload(old.paths)
    wait_until(lambda: any("Old Arrival" in m for m in messages), 10, "the message")
    first = next(m for m in messages if "Old Arrival" in m)
    assert first == "New image on lab: Old Arrival (ID NT-090) – Study 90"
    wait_until(lambda: old.study_instance_uid in rows_shown(browser), 15, "the new row")
    ui_driver.process_events(100)
    cached = sources.cached_list(registry.get("lab"))
    assert old.study_instance_uid in {s.study_uid for s in cached.studies}
    assert cached.mode == "incremental"
    assert view_state(browser) == before

    # A study of today sorts on top, above the view: the rows on screen stay where they were.
    new = small_study(tmp_path / "new", 91, "20991231", "Top^Arrival")
    orthanc.upload(new.paths)
    wait_until(lambda: new.study_instance_uid in rows_shown(browser), 15, "the new top row")
    ui_driver.process_events(100)
    assert rows_shown(browser)[0] == new.study_instance_uid
    value, top, selected, current = view_state(browser)
    assert (top, selected, current) == before[1:]
    assert value == before[0] + 1
    assert any("Top Arrival" in m for m in messages)


def test_the_panel_says_polling_and_why_when_the_port_is_taken(orthanc_factory, registry, ui_rig):
    orthanc = orthanc_factory(stable_age=STABLE_AGE)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        registry.add("lab", **lab_fields(orthanc, port))
        registry.add("quiet", host="127.0.0.1")
        panel, browser, controller, messages = ui_rig()
        panel.selectServer("lab")
        text = wait_until(lambda: panel.notificationStatusText(), 10)
        assert text.startswith(f"Notifications: polling the server every {POLL_S:g} s.")
        assert f"another program already uses port {port}" in text
        assert panel.ui.notificationStatusLabel.visible
        assert "b45309" in panel.ui.notificationStatusLabel.styleSheet  # a warning colour
        panel.selectServer("quiet")
        assert panel.notificationStatusText().startswith("Notifications: off.")
        assert "turn on Enable Notifications" in panel.notificationStatusText()


def test_the_standalone_window_shows_the_mode_and_the_message_in_its_status_bar(
    orthanc_factory, registry, settings_path, tmp_path, qapp, sample_studies
):
    orthanc = orthanc_factory(stable_age=STABLE_AGE)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        registry.add("lab", **lab_fields(orthanc, port))
        window = StandaloneWindow(
            registry,
            settings_path,
            retrieveFolder=tmp_path / "r",
            notificationService=quiet_service(),
        )
        try:
            window.window.show()
            wait_until(lambda: window.notificationLabel.text, 10, "the summary")
            assert (
                window.notificationLabel.text == f"Notifications: lab: polling every {POLL_S:g} s"
            )
            assert "another program already uses port" in window.notificationLabel.toolTip
            wait_until(lambda: window.notifications.service.worker_for("lab").last_outcome, 10)
            study = sample_studies.studies[2]
            orthanc.upload(study.series[0].paths[:1])
            bar = window.window.statusBar()
            message = wait_until(lambda: bar.currentMessage(), 15, "the status bar message")
            assert message.startswith("New image on lab:")
            assert study.patient.patient_id in message
        finally:
            window.cleanup()
            window.window.close()
    assert window.notifications.service.statuses() == []  # stopped with the window


def test_auto_retrieve_is_opt_in(orthanc_factory, registry, ui_rig, free_port, tmp_path):
    script = configured_script(f"http://127.0.0.1:{free_port}/notify", token=TOKEN, server="lab")
    orthanc = orthanc_factory(lua_scripts=[script], stable_age=STABLE_AGE)
    registry.add(
        "lab", **lab_fields(orthanc, free_port, load_mode="auto", notifications_auto_retrieve=True)
    )
    panel, browser, controller, messages = ui_rig()
    panel.selectServer("lab")
    checkBox = panel.ui.notificationsAutoRetrieveCheckBox
    assert checkBox.checked and checkBox.enabled
    wait_until(lambda: "listening" in panel.notificationStatusText(), 10)

    wanted = small_study(tmp_path / "new", 1, "20240101", "Wanted^Study")
    orthanc.upload(wanted.paths)
    retrieved = wait_until(lambda: controller.retrieved, STABLE_AGE + 15, "the retrieve")
    assert retrieved == [("lab", wanted.study_instance_uid, retrieved[0][2])]
    wait_until(lambda: not browser.queue.busy and browser.host.imported, 30, "the transfer")
    files = [Path(f) for batch, _inPlace in browser.host.imported for f in batch]
    assert {f.name for f in files} == {f"{i.sop_instance_uid}.dcm" for i in wanted.instances}
    assert any(m.startswith("Retrieving automatically: New study on lab") for m in messages)

    ui_driver.click(checkBox)  # the user turns it off: saved at once, no retrieve any more
    assert registry.get("lab").notifications_auto_retrieve is False
    wait_until(lambda: "listening" in panel.notificationStatusText(), 10)
    unwanted = small_study(tmp_path / "new", 2, "20240102", "Unwanted^Study")
    orthanc.upload(unwanted.paths)
    wait_until(
        lambda: any(m.startswith("New study on lab: Unwanted Study") for m in messages),
        STABLE_AGE + 15,
        "the study notification",
    )
    ui_driver.process_events(300)
    assert [r[1] for r in controller.retrieved] == [wanted.study_instance_uid]
    assert len(browser.host.imported) == 1

    # Not in the automatic loading mode: the setting cannot be turned on.
    ui_driver.click(panel.ui.loadManuallyCheckBox)
    assert not checkBox.enabled
