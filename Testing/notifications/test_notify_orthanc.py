"""End to end with a real Orthanc 1.10.1: the shipped Lua plugin, polling, the watchdog.

Orthanc runs the plugin from ``Resources/PACS/orthanc`` with its first lines set as an
administrator would (URL of our listener, token, server name) and ``StableAge`` 1 s.
"""

from __future__ import annotations

import socket
import time

import pytest
from DicomServersLib.notifications.cache_refresh import CacheRefresher
from DicomServersLib.notifications.event_queue import EventQueue
from DicomServersLib.notifications.service import (
    MODE_LISTENER,
    MODE_POLLING,
    NotificationService,
)
from DicomServersLib.rest.cache import StudyCache
from DicomServersLib.rest.sync import refresh
from DicomServersLib.server import DicomServer
from notify_helpers import collect, configured_script, instance_payload, post, wait_for
from rig.ports import free_port as unused_port

STABLE_AGE = 1


def lab_server(port: int, **fields) -> DicomServer:
    """The server record of the test Orthanc, notifications on."""
    return DicomServer(
        name="lab",
        notifications_enabled=True,
        notification_ip="127.0.0.1",
        notification_port=port,
        **fields,
    )


def rest_fields(orthanc, flavor: str = "orthanc") -> dict:
    """REST settings pointing at the test Orthanc."""
    url = orthanc.http_url if flavor == "orthanc" else orthanc.dicomweb_url
    return {
        "rest_enabled": True,
        "rest_flavor": flavor,
        "rest_url": url,
        "rest_user": orthanc.user,
        "rest_password": orthanc.password,
        "timeout_s": 10.0,
    }


@pytest.fixture
def service():
    """A notification service with an undeduplicated queue (duplicates must show)."""
    svc = NotificationService(
        queue=EventQueue(dedup_window_s=0), poll_interval_s=0.2, watchdog_interval_s=0
    )
    yield svc
    svc.stop_all()


def kinds(events) -> list[str]:
    return [event.kind for event in events]


def test_plugin_posts_one_instance_event_then_series_and_study(
    orthanc_factory, sample_studies, free_port, service
):
    status = service.start(lab_server(free_port), token="t0ken")
    assert status.mode == MODE_LISTENER
    script = configured_script(status.listener_url, token="t0ken", server="lab")
    orthanc = orthanc_factory(lua_scripts=[script], stable_age=STABLE_AGE)
    study = sample_studies.studies[0]
    instance = study.series[0].instances[0]

    stored_at = time.time()
    orthanc.upload([instance.path])
    (first,) = collect(service.queue, lambda events: len(events) == 1, timeout=5)
    assert first.kind == "instance"
    assert first.received_at - stored_at < 5
    events = [first] + collect(
        service.queue, lambda events: "study" in kinds(events), timeout=STABLE_AGE + 15
    )
    # Nothing more comes (one instance event, not one per retry).
    time.sleep(0.5)
    events += service.drain()
    assert kinds(events) == ["instance", "series", "study"]
    instance_event, series_event, study_event = events
    assert instance_event.sop_instance_uid == instance.sop_instance_uid
    assert instance_event.series_uid == study.series[0].series_instance_uid
    assert series_event.series_uid == study.series[0].series_instance_uid
    assert {e.study_uid for e in events} == {study.study_instance_uid}
    for event in events:
        assert event.server == "lab"
        assert event.patient_id == study.patient.patient_id
        assert event.patient_name == "Müller^Jürgen"  # Latin-1 in DICOM, UTF-8 in JSON
        assert event.study_description == study.description
        assert event.source == "listener"
    assert instance_event.modality == series_event.modality == "CT"


def test_a_client_that_is_down_or_refuses_never_breaks_orthanc_storage(
    orthanc_factory, sample_studies, free_port, service
):
    status = service.start(lab_server(free_port), token="right")
    down_url = f"http://127.0.0.1:{unused_port()}/notify"  # nothing listens there
    wrong = configured_script(status.listener_url, token="wrong", server="lab")
    down = configured_script(down_url)
    for script, symptom in ((wrong, "refused a notification"), (down, "no answer from")):
        orthanc = orthanc_factory(lua_scripts=[script], stable_age=STABLE_AGE)
        paths = sample_studies.studies[2].paths
        orthanc.upload(paths)
        orthanc.wait_for_instances(len(paths))
        wait_for(lambda orthanc=orthanc, s=symptom: s in orthanc.log_text(None), timeout=10)
        assert orthanc.rest("GET", "/system").status_code == 200
    assert service.drain() == []
    assert service.listener_for("lab").counts.get("401", 0) >= 1


def test_polling_fallback_when_the_port_is_taken(orthanc_factory, sample_studies, service):
    orthanc = orthanc_factory(stable_age=STABLE_AGE)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        status = service.start(lab_server(port, **rest_fields(orthanc)))
        assert status.mode == MODE_POLLING
        assert f"another program already uses port {port}" in status.reason
        assert "every 0.2 s" in status.reason
        wait_for(lambda: service.worker_for("lab").last_outcome is not None, 10)  # primed

        series = sample_studies.studies[2].series[0]
        orthanc.upload(series.paths)
        events = collect(service.queue, lambda events: "study" in kinds(events), timeout=20)
    assert sorted(e.sop_instance_uid for e in events if e.kind == "instance") == sorted(
        i.sop_instance_uid for i in series.instances
    )
    assert [e.series_uid for e in events if e.kind == "series"] == [series.series_instance_uid]
    assert {e.study_uid for e in events} == {sample_studies.studies[2].study_instance_uid}
    assert {e.source for e in events} == {"polling"}
    assert {e.patient_id for e in events} == {"DS-P002"}


def test_dicomweb_polling_reports_new_studies(orthanc_factory, sample_studies, service):
    orthanc = orthanc_factory()
    orthanc.upload(sample_studies.studies[0].paths)  # there before: not reported
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = lab_server(squatter.getsockname()[1], **rest_fields(orthanc, "dicomweb"))
        assert service.start(server).mode == MODE_POLLING
        wait_for(lambda: service.worker_for("lab").last_outcome is not None, 10)
        newer = sample_studies.studies[2]  # dated yesterday
        orthanc.upload(newer.paths)
        (event,) = collect(service.queue, lambda events: len(events) == 1, timeout=10)
    assert (event.kind, event.study_uid, event.source) == (
        "study",
        newer.study_instance_uid,
        "polling",
    )
    assert event.patient_id == "DS-P002"
    time.sleep(0.5)
    assert service.drain() == []


def test_watchdog_switches_to_polling_when_the_plugin_is_silent_and_back(
    orthanc_factory, sample_studies, free_port, http
):
    orthanc = orthanc_factory(stable_age=STABLE_AGE)  # no plugin: nothing will be posted
    service = NotificationService(
        queue=EventQueue(dedup_window_s=0),
        poll_interval_s=0.2,
        watchdog_interval_s=0.2,
        silence_grace_s=1.0,
    )
    try:
        status = service.start(lab_server(free_port, **rest_fields(orthanc)))
        assert status.mode == MODE_LISTENER
        wait_for(lambda: service.worker_for("lab").last_outcome is not None, 10)
        service.drain_status_changes()
        instance = sample_studies.studies[2].instances[0]
        orthanc.upload([instance.path])

        changes = wait_for(service.drain_status_changes, timeout=10)
        assert changes[-1].mode == MODE_POLLING
        assert "no notification reached" in changes[-1].reason
        assert status.listener_url in changes[-1].reason
        # The instance stored before the switch is reported all the same.
        events = collect(service.queue, lambda events: "study" in kinds(events), timeout=15)
        assert [e.sop_instance_uid for e in events if e.kind == "instance"] == [
            instance.sop_instance_uid
        ]

        # The plugin starts working: the first notification switches back to listening.
        assert post(http, status.listener_url, instance_payload(server="lab")).status_code == 202
        back = wait_for(service.drain_status_changes, timeout=5)
        assert back[-1].mode == MODE_LISTENER
        assert "arrive again" in back[-1].reason
    finally:
        service.stop_all()


def test_events_refresh_the_rest_study_cache(orthanc_factory, sample_studies, free_port, tmp_path):
    orthanc = orthanc_factory(stable_age=STABLE_AGE)
    server = lab_server(free_port, **rest_fields(orthanc))

    def refresh_into_tmp(record):
        with StudyCache.open(record, tmp_path / "cache") as cache:
            return refresh(record, cache=cache)

    refresher = CacheRefresher(lambda name: server if name == "lab" else None,
                               refresh_cache=refresh_into_tmp)  # fmt: skip
    service = NotificationService(incremental_refresh=refresher, watchdog_interval_s=0)
    try:
        status = service.start(server)
        orthanc.options.lua_scripts = [configured_script(status.listener_url, server="lab")]
        orthanc.restart()
        study = sample_studies.studies[2]
        orthanc.upload(study.paths)
        results = wait_for(refresher.drain_results, timeout=15)
    finally:
        service.stop_all()
    name, result = results[0]
    assert name == "lab" and result.ok, result.diagnosis
    with StudyCache.open(server, tmp_path / "cache") as cache:
        cached = cache.get(study.study_instance_uid)
    assert cached is not None and cached.patient_id == "DS-P002"
