"""The transfer queue and the loading-mode policy, with real files (folder mode, no network).

Requests run through :func:`DicomServersLib.sources.retrieve` on a folder-mode server whose
storage folder holds the rig's sample studies, so every result is a real transfer of real files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from DicomServersLib.loading_mode import LoadingPolicy, study_label
from DicomServersLib.local_availability import (
    IN_DATABASE,
    NOT_HERE,
    PARTIAL,
    RETRIEVED,
    LocalAvailability,
)
from DicomServersLib.query_model import SeriesRecord, StudyRecord
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_queue import (
    CANCELLED,
    DONE,
    EVENT_FINISHED,
    EVENT_QUEUED,
    EVENT_STARTED,
    FAILED,
    TransferQueue,
    TransferRequest,
)
from rig.studies import SampleSet, make_big_ct_study, write_sample_studies


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    return write_sample_studies(tmp_path_factory.mktemp("pacs-folder"))


@pytest.fixture
def server(samples: SampleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DicomServer:
    monkeypatch.setenv("DICOMSERVERS_CACHE_DIR", str(tmp_path / "cache"))
    return DicomServer(name="Folder", load_mode="folder", storage_folder=str(samples.root))


def wait_finished(queue: TransferQueue, ids: list[int], timeout: float = 30.0) -> list:
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += queue.drain()
        if {e.request_id for e in events if e.kind == EVENT_FINISHED} >= set(ids):
            return events
        time.sleep(0.01)
    raise AssertionError(f"requests {ids} did not finish; events: {events}")


def test_one_result_per_request_with_events_in_order(
    server: DicomServer, samples: SampleSet, tmp_path: Path
) -> None:
    queue = TransferQueue()
    try:
        dest = tmp_path / "dest"
        first = samples.study("ACC0001")
        second = samples.study("ACC0002")
        a = queue.submit(TransferRequest(server, first.study_instance_uid, dest=dest))
        b = queue.submit(
            TransferRequest(
                server,
                second.study_instance_uid,
                (second.series[0].series_instance_uid,),
                dest=dest,
            )
        )
        assert a != b
        events = wait_finished(queue, [a, b])
        for request_id in (a, b):
            kinds = [e.kind for e in events if e.request_id == request_id]
            assert kinds[0] == EVENT_QUEUED and kinds[1] == EVENT_STARTED
            assert kinds[-1] == EVENT_FINISHED and kinds.count(EVENT_FINISHED) == 1
        finished = {e.request_id: e.status for e in events if e.kind == EVENT_FINISHED}
        assert finished[a].state == DONE
        assert finished[a].result.received == len(first.instances)
        assert finished[a].instances_done == len(first.instances)
        assert finished[b].result.received == len(second.series[0].instances)
        stored = {p.stem for p in dest.rglob("*.dcm")}
        assert stored == {i.sop_instance_uid for i in first.instances} | {
            i.sop_instance_uid for i in second.series[0].instances
        }
        assert queue.wait(a, 1).state == DONE
        assert not queue.busy
    finally:
        queue.close()


def test_same_request_twice_and_cancel_while_queued(
    server: DicomServer, samples: SampleSet, tmp_path: Path
) -> None:
    big = make_big_ct_study(tmp_path / "big", slices=150, rows=64, columns=64, seed=3)
    big_server = server.copy(storage_folder=str(tmp_path / "big"))
    queue = TransferQueue(workers=1)
    try:
        dest = tmp_path / "dest"
        running = queue.submit(TransferRequest(big_server, big.study_instance_uid, dest=dest))
        study = samples.study("ACC0003")
        request = TransferRequest(server, study.study_instance_uid, dest=dest, label="again")
        waiting = queue.submit(request)
        assert queue.submit(request) == waiting  # asked again while queued: the same request
        assert queue.cancel(waiting)
        status = queue.status(waiting)
        assert status.state == CANCELLED and status.started_at is None
        assert status.result.diagnosis == "Cancelled before it started."
        events = wait_finished(queue, [running, waiting])
        assert [e.kind for e in events if e.request_id == waiting] == ["queued", "finished"]
        assert queue.status(running).state == DONE
        assert not (dest / study.study_instance_uid).exists()
        assert not queue.cancel(running)  # already finished
        queue.forget_finished()
        assert queue.statuses() == []
    finally:
        queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        queue.submit(request)


def test_a_misconfigured_server_is_a_failed_result(tmp_path: Path) -> None:
    queue = TransferQueue()
    try:
        broken = DicomServer(name="No folder", load_mode="folder", storage_folder="")
        request_id = queue.submit(TransferRequest(broken, "1.2.3", dest=tmp_path))
        events = wait_finished(queue, [request_id])
        status = events[-1].status
        assert status.state == FAILED
        assert "storage_folder" in status.result.diagnosis
    finally:
        queue.close()


def test_loading_policy_per_mode(samples: SampleSet, tmp_path: Path) -> None:
    study = StudyRecord(
        study_uid="1.2.3",
        patient_name="Doe^Jane",
        study_date="20240131",
        study_description="CT head",
        series_count=2,
        instance_count=7,
    )
    assert study_label(study) == "Doe Jane, 2024-01-31 – CT head"
    auto = DicomServer(name="A")
    manual = auto.copy(load_mode="manual")
    folder = auto.copy(load_mode="folder", storage_folder=str(samples.root))
    assert LoadingPolicy.for_server(manual).on_select(manual, study, tmp_path) is None
    request = LoadingPolicy.for_server(auto).on_select(auto, study, tmp_path)
    assert request is not None
    assert (request.dest, request.series_uids, request.series_count) == (tmp_path, (), 2)
    in_place = LoadingPolicy.for_server(folder).on_select(folder, study, tmp_path, in_place=True)
    assert in_place is not None and in_place.dest is None
    copied = LoadingPolicy.for_server(folder).on_select(folder, study, tmp_path)
    assert copied is not None and copied.dest == tmp_path
    assert not LoadingPolicy.for_server(folder).uses_network
    transfer = LoadingPolicy.for_server(manual).request(
        manual, study, tmp_path, series_uids=("1.2.3.4",)
    )
    assert transfer.series_uids == ("1.2.3.4",) and transfer.instance_count is None


def test_local_availability_from_the_destination_and_the_database(tmp_path: Path) -> None:
    series_dir = tmp_path / "1.2.3" / "1.2.3.1"
    series_dir.mkdir(parents=True)
    for n in range(3):
        (series_dir / f"1.2.3.1.{n}.dcm").write_bytes(b"x")
    (series_dir / ".part-abc.tmp").write_bytes(b"x")  # an unfinished file does not count
    in_db: dict[str, dict[str, int]] = {}
    here = LocalAvailability(tmp_path, lambda uid: in_db.get(uid, {}))
    study = StudyRecord(study_uid="1.2.3", instance_count=5)
    assert here.study(study).state == PARTIAL
    assert here.study(study).text() == "Partial (3/5)"
    series = SeriesRecord("1.2.3", "1.2.3.1", instance_count=3)
    assert here.series(series).state == RETRIEVED
    assert here.series_here(series)
    assert here.study(StudyRecord(study_uid="9.9")).state == NOT_HERE
    in_db["1.2.3"] = {"1.2.3.1": 3, "1.2.3.2": 2}
    assert here.study(study).state == PARTIAL  # cached until forgotten
    here.forget("1.2.3")
    assert here.study(study).state == IN_DATABASE
    assert here.study(study).text() == "In Slicer"
