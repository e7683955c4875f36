"""The event value, its wire format, the bounded queue, the rate limiter and the UI's plan."""

from __future__ import annotations

import json
import threading

import pytest
from DicomServersLib.notifications.actions import plan_actions
from DicomServersLib.notifications.event_queue import EventQueue
from DicomServersLib.notifications.events import (
    EVENT_JSON_SCHEMA,
    NotificationEvent,
    check_payload,
    event_from_payload,
)
from DicomServersLib.notifications.limits import RateLimiter
from DicomServersLib.server import DicomServer

STUDY = "1.2.826.0.1.3680043.10.1"
SERIES = STUDY + ".1"
SOP = SERIES + ".1"


def event(
    kind: str = "instance", server: str = "lab", sop: str = SOP, **fields
) -> NotificationEvent:
    uids = {"study_uid": STUDY}
    if kind != "study":
        uids["series_uid"] = SERIES
    if kind == "instance":
        uids["sop_instance_uid"] = sop
    return NotificationEvent(server=server, kind=kind, **uids, **fields)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"kind": "study", "study_uid": STUDY}, ""),
        ({"kind": "series", "study_uid": STUDY, "series_uid": SERIES}, ""),
        (
            {"kind": "instance", "study_uid": STUDY, "series_uid": SERIES, "sop_instance_uid": SOP},
            "",
        ),
        ({"kind": "study", "study_uid": STUDY, "version": "1", "extra": [1]}, ""),
        ({"kind": "study", "study_uid": STUDY, "patient_name": None}, ""),
        ("text", "the body must be a JSON object"),
        ({"study_uid": STUDY}, "kind: must be one of instance, series, study"),
        ({"kind": "study"}, "study_uid: a UID must not be empty"),
        ({"kind": "study", "study_uid": "1." + "1" * 70}, "study_uid: a UID has at most 64"),
        ({"kind": "study", "study_uid": "../etc"}, "study_uid:"),
        ({"kind": "study", "study_uid": 1.2}, "study_uid: must be a UID string"),
        ({"kind": "series", "study_uid": STUDY}, "series_uid: a UID must not be empty"),
        ({"kind": "instance", "study_uid": STUDY, "series_uid": SERIES}, "sop_instance_uid:"),
        ({"kind": "study", "study_uid": STUDY, "version": 2}, "version: this client understands"),
        ({"kind": "study", "study_uid": STUDY, "version": True}, "version: must be"),
        ({"kind": "study", "study_uid": STUDY, "server": "x" * 65}, "server: must be text"),
        ({"kind": "study", "study_uid": STUDY, "patient_id": 7}, "patient_id: must be text"),
        ({"kind": "study", "study_uid": STUDY, "modality": "x" * 300}, "modality: at most 256"),
    ],
)
def test_check_payload(data, reason):
    ok, message = check_payload(data)
    assert ok is (reason == "")
    assert message.startswith(reason)


def test_event_from_payload_keeps_only_the_uids_of_its_level():
    data = {"kind": "series", "study_uid": STUDY, "series_uid": SERIES, "sop_instance_uid": SOP}
    built = event_from_payload(data, server="lab", received_at=10.0, sender="127.0.0.1")
    assert (built.series_uid, built.sop_instance_uid, built.uid) == (SERIES, "", SERIES)
    assert built.key == ("lab", "series", SERIES)


def test_event_json_and_description():
    value = event("study", patient_name="DOE^JANE", patient_id="7", received_at=0.0)
    data = json.loads(value.to_json())
    assert data["received_at_iso"] == "1970-01-01T00:00:00.000Z"
    assert data["kind"] == "study" and data["study_uid"] == STUDY
    assert value.describe() == "New study on lab: DOE JANE (ID 7)"
    assert event(modality="CT").describe() == "New image on lab: unknown patient – CT"
    assert set(EVENT_JSON_SCHEMA["required"]) == {"kind", "study_uid"}


def test_queue_is_bounded_never_blocks_and_drops_duplicates():
    now = [0.0]
    queue = EventQueue(max_events=3, dedup_window_s=10, clock=lambda: now[0])
    assert queue.put(event(sop=SERIES + ".1"))
    assert queue.put(event(sop=SERIES + ".1"))  # duplicate: not queued, nothing lost
    assert queue.duplicates == 1
    assert queue.put(event(sop=SERIES + ".2"))
    assert queue.put(event(sop=SERIES + ".3"))
    assert not queue.put(event(sop=SERIES + ".4"))  # full
    assert (len(queue), queue.dropped) == (3, 1)
    assert [e.sop_instance_uid for e in queue.drain(2)] == [SERIES + ".1", SERIES + ".2"]
    now[0] = 11.0
    assert queue.put(event(sop=SERIES + ".1"))  # after the window it is news again
    assert len(queue.drain()) == 2


def test_queue_get_waits_for_a_producer_thread():
    queue = EventQueue()
    assert queue.get(timeout=0.01) is None
    timer = threading.Timer(0.05, queue.put, args=(event(),))
    timer.start()
    assert queue.get(timeout=5) == event()
    timer.join()


def test_rate_limiter_per_source():
    now = [0.0]
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another source has its own bucket
    now[0] = 0.5
    assert limiter.allow("a") and not limiter.allow("a")


def test_plan_actions_one_message_per_study_and_opt_in_retrieve():
    servers = {
        "lab": DicomServer(name="lab", load_mode="auto"),
        "ward": DicomServer(name="ward", load_mode="manual"),
    }
    batch = [
        event(sop=SERIES + ".1", patient_name="DOE^JANE"),
        event(sop=SERIES + ".2", patient_name="DOE^JANE"),
        event("study", patient_name="DOE^JANE"),
        event("study", server="ward"),
        event("study", server="gone"),
    ]
    plan = plan_actions(batch, servers, auto_retrieve=True)
    assert plan.refresh_servers == ["lab", "ward"]
    assert plan.messages == ["New study on lab: DOE JANE", "New study on ward: unknown patient"]
    assert [(e.server, e.study_uid) for e in plan.retrieve] == [("lab", STUDY)]
    assert plan_actions(batch, servers).retrieve == []
    instances_only = plan_actions(batch[:2], servers)
    assert instances_only.messages == ["New image on lab: DOE JANE (2 notifications)"]
