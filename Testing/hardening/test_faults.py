"""The PACS dies, stalls or talks nonsense during a retrieve: nothing partial, clear errors,
reruns fetch only what is missing (issue 8 §4).

Kill points (each test id names one; the number tried is the count of ``kill-`` / ``cut-`` /
``abort-`` ids run):

- ``kill-<method>-after<N>``: a real Orthanc is SIGKILLed once N instances arrived, for C-GET,
  C-MOVE, Orthanc REST and WADO-RS;
- ``cut-<method>-at<B>``: the connection is cut after B bytes, in the middle of a PDU, an
  HTTP body or a multipart part (a :class:`~fault_peers.CutProxy` in front of Orthanc; for
  C-MOVE on Orthanc's connection to our storage listener);
- ``abort-<method>-after<K>``: a pynetdicom PACS aborts the association after K
  sub-operations.

Each time: no ``.dcm`` under the destination is ever incomplete (a watcher thread checks every
file as it appears), no temporary file is left, the diagnosis is plain language, and the rerun
transfers exactly the instances that were missing (counted) and leaves the originals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from DicomServersLib.dimse import retrieve as dimse_retrieve_module
from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.retrieve import retrieve as dimse_retrieve
from DicomServersLib.progress import Progress
from DicomServersLib.rest import retrieve_study
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import RetrieveResult
from fault_peers import (
    CutProxy,
    DirWatcher,
    data_set_bytes,
    dcm_files,
    qr_answers,
    temporaries,
)
from pydicom import dcmread
from rig.orthanc import OrthancOptions, OrthancServer, RemoteModality
from rig.ports import free_port
from rig.scp import FakeQRSCP
from rig.studies import SAMPLE_PATIENTS, StudyInfo, make_ct_series, make_study

LOOPBACK = "127.0.0.1"
MOVE_AE = "DSFAULT"
METHODS = ("c-get", "c-move", "orthanc-rest", "wado-rs")
IMAGE_BYTES = 256 * 256 * 2  # pixel data of one image of the victim's study (6 per series)
#: Where the PACS is SIGKILLed: after N images (progress), or once B bytes went through one
#: connection (a relay kills it: a WADO-RS stream outruns any progress report).
KILL_POINTS = [
    *[("c-get", "after", n) for n in (0, 1, 4, 8)],
    *[("c-move", "after", n) for n in (0, 1, 4, 8)],
    *[("orthanc-rest", "after", n) for n in (0, 1, 4)],
    ("orthanc-rest", "at", 2 * IMAGE_BYTES + 3_000),
    *[("wado-rs", "at", n * IMAGE_BYTES + 5_000) for n in (0, 1, 3, 5)],
]
#: Bytes after which one connection is cut (every connection carries at most one series).
CUT_AT = {
    "c-get": (3_000, 60_000, 400_000, 700_000),
    "c-move": (2_000, 150_000, 700_000),
    "orthanc-rest": (5_000, 140_000, 300_000),
    "wado-rs": (1_000, 200_000, 600_000),
}
ABORT_AFTER = (0, 1, 5)


@dataclass
class Victim:
    """A real Orthanc holding :attr:`study`, knowing our storage listener as ``MOVE_AE``."""

    orthanc: OrthancServer
    study: StudyInfo
    storage_port: int

    def server(self, method: str, **changes: Any) -> DicomServer:
        """A server record retrieving with ``method`` (C-GET, C-MOVE, Orthanc REST, WADO-RS)."""
        orthanc = self.orthanc
        fields: dict[str, Any] = {
            "name": "Victim",
            "called_ae_title": orthanc.aet,
            "host": LOOPBACK,
            "port": orthanc.dicom_port,
            "calling_ae_title": "DSTEST",
            "retrieve_method": "c-move" if method == "c-move" else "c-get",
            "move_destination_ae_title": MOVE_AE,
            "storage_port": self.storage_port,
            "timeout_s": 5.0,
            "rest_enabled": method in ("orthanc-rest", "wado-rs"),
            "rest_flavor": "dicomweb" if method == "wado-rs" else "orthanc",
            "rest_url": orthanc.dicomweb_url if method == "wado-rs" else orthanc.http_url,
            "rest_user": orthanc.user,
            "rest_password": orthanc.password,
        }
        fields.update(changes)
        return DicomServer(**fields)


def run_retrieve(
    server: DicomServer,
    method: str,
    study_uid: str,
    dest: Path,
    progress: Callable[[Progress], bool] | None = None,
) -> RetrieveResult:
    """One retrieve by ``method``, one association or four HTTP workers."""
    if method in ("c-get", "c-move"):
        return dimse_retrieve(
            server,
            study_uid,
            dest,
            method=method,
            progress=progress,
            max_associations=1,
            listen_host=LOOPBACK,
        )
    return retrieve_study(server, study_uid, dest, progress=progress)


def assert_whole_and_original(dest: Path, study: StudyInfo, *, exact: bool = True) -> set[str]:
    """Every file under ``dest`` is an original instance of ``study``, whole; return the SOPs.

    ``exact``: the data set bytes are the original's (Orthanc sends what it stored); else the
    decoded data sets are equal (a pynetdicom peer re-encodes them).
    """
    originals = {i.sop_instance_uid: i.path for i in study.instances}
    found = set()
    for path in dcm_files(dest):
        assert path.stem in originals, f"unexpected file {path}"
        if exact:
            assert data_set_bytes(path) == data_set_bytes(originals[path.stem]), path
        else:
            assert dcmread(path) == dcmread(originals[path.stem]), path
        found.add(path.stem)
    return found


def assert_clear(diagnosis: str) -> None:
    """A diagnosis in plain language: long enough, no traceback or bare exception."""
    print(f"diagnosis: {diagnosis}")  # shown with -s: what the user reads at this fault
    assert len(diagnosis) > 30, diagnosis
    assert "Traceback" not in diagnosis and "Error(" not in diagnosis, diagnosis


def rerun_completes(
    victim_server: DicomServer,
    method: str,
    study: StudyInfo,
    dest: Path,
    before: set[str],
    *,
    exact: bool = True,
) -> RetrieveResult:
    """Run again; assert only the missing instances were transferred and all are originals."""
    rerun = run_retrieve(victim_server, method, study.study_instance_uid, dest)
    assert rerun.ok, rerun.diagnosis
    total = len(study.instances)
    assert rerun.received == total - len(before), (rerun.received, total, len(before))
    assert rerun.skipped == len(before)
    everything = {i.sop_instance_uid for i in study.instances}
    assert assert_whole_and_original(dest, study, exact=exact) == everything
    assert temporaries(dest) == []
    return rerun


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victim]:
    """An Orthanc with a 2-series, 12-image study of 128 KiB images."""
    folder = tmp_path_factory.mktemp("victim")
    study = make_study(folder / "study", SAMPLE_PATIENTS[3], accession_number="KILL0001", seed=41)
    make_ct_series(study, slices=6, rows=256, columns=256)
    make_ct_series(study, description="Second", slices=6, rows=256, columns=256)
    storage_port = free_port()
    options = OrthancOptions(
        modalities={"slicer": RemoteModality(MOVE_AE, storage_port)},
        worklists=False,
        stable_age=3600,
    )
    orthanc = OrthancServer(folder / "orthanc", options)
    try:
        orthanc.start()
        orthanc.upload(study.paths)
        yield Victim(orthanc, study, storage_port)
    finally:
        orthanc.kill()
        orthanc.session.close()


@pytest.fixture
def alive(victim: Victim) -> Victim:
    """The victim, started again if an earlier test killed it."""
    if not victim.orthanc.running:
        victim.orthanc.start()
    return victim


@pytest.fixture(autouse=True)
def instant_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """DIMSE retrieves report progress at every instance (kill after an exact count)."""
    monkeypatch.setattr(dimse_retrieve_module, "PROGRESS_INTERVAL_S", 0.0)


# -- kill the PACS -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "how", "point"),
    [pytest.param(m, h, p, id=f"kill-{m}-{h}{p}") for m, h, p in KILL_POINTS],
)
def test_pacs_killed_mid_retrieve(
    alive: Victim, tmp_path: Path, method: str, how: str, point: int
) -> None:
    dest = tmp_path / "dest"
    study = alive.study
    orthanc = alive.orthanc
    server = alive.server(method)

    def kill_at(progress: Progress) -> bool:
        if progress.completed >= point and orthanc.running:
            orthanc.kill()
        return True

    proxy = None
    if how == "at":
        target = orthanc.http_port
        proxy = CutProxy(target, point, on_cut=orthanc.kill)
        suffix = "/dicom-web" if method == "wado-rs" else ""
        server = alive.server(method, rest_url=f"http://{LOOPBACK}:{proxy.port}{suffix}")
    try:
        with DirWatcher(dest) as watcher:
            result = run_retrieve(
                server, method, study.study_instance_uid, dest, None if proxy else kill_at
            )
    finally:
        if proxy is not None:
            proxy.stop()
    assert not orthanc.running, "the kill point was never reached"
    assert not result.ok and not result.cancelled
    assert_clear(result.diagnosis)
    assert watcher.partial == [], watcher.partial
    assert temporaries(dest) == []
    before = assert_whole_and_original(dest, study)
    assert len(before) < len(study.instances)
    orthanc.start()
    rerun_completes(alive.server(method), method, study, dest, before)


# -- cut the connection in the middle of a PDU, a body or a part -----------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "cut_at"),
    [pytest.param(m, b, id=f"cut-{m}-at{b}") for m in METHODS for b in CUT_AT[m]],
)
def test_connection_cut_mid_transfer(
    alive: Victim, tmp_path: Path, method: str, cut_at: int
) -> None:
    dest = tmp_path / "dest"
    study = alive.study
    if method == "c-move":
        # Orthanc sends the images to the proxy, which relays them to our listener.
        proxy = CutProxy(alive.storage_port, cut_at, direction="up")
        alive.orthanc.add_modality("slicer", RemoteModality(MOVE_AE, proxy.port))
        server = alive.server(method)
    else:
        target = alive.orthanc.dicom_port if method == "c-get" else alive.orthanc.http_port
        proxy = CutProxy(target, cut_at)
        if method == "c-get":
            server = alive.server(method, port=proxy.port)
        else:
            base = f"http://{LOOPBACK}:{proxy.port}"
            url = base + ("/dicom-web" if method == "wado-rs" else "")
            server = alive.server(method, rest_url=url)
    try:
        with DirWatcher(dest) as watcher:
            result = run_retrieve(server, method, study.study_instance_uid, dest)
        assert proxy.cuts >= 1, "the transfer was never cut"
        assert not result.ok, "a cut transfer was reported complete"
        assert_clear(result.diagnosis)
        assert watcher.partial == [], watcher.partial
        assert temporaries(dest) == []
        before = assert_whole_and_original(dest, study)
        proxy.cut_after = None
        rerun_completes(server, method, study, dest, before)
    finally:
        proxy.stop()
        if method == "c-move":
            alive.orthanc.add_modality("slicer", RemoteModality(MOVE_AE, alive.storage_port))


# -- a PACS aborting the association ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "after"),
    [
        pytest.param(m, k, id=f"abort-{m}-after{k}")
        for m in ("c-get", "c-move")
        for k in ABORT_AFTER
    ],
)
def test_pacs_aborting_after_some_sub_operations(
    pynetdicom_scp_factory, alive: Victim, tmp_path: Path, method: str, after: int
) -> None:
    dest = tmp_path / "dest"
    study = alive.study
    storage_port = free_port()
    datasets = [dcmread(path) for path in study.paths]
    scp: FakeQRSCP = pynetdicom_scp_factory.qr(
        "ABORTER",
        datasets=datasets,
        find_responses=qr_answers(datasets),
        abort_after=after,
        move_destinations={MOVE_AE: storage_port},
    )
    server = DicomServer(
        name="Aborter",
        called_ae_title="ABORTER",
        host=LOOPBACK,
        port=scp.port,
        calling_ae_title="DSTEST",
        retrieve_method=method,
        move_destination_ae_title=MOVE_AE,
        storage_port=storage_port,
        timeout_s=5.0,
    )
    with DirWatcher(dest) as watcher:
        result = run_retrieve(server, method, study.study_instance_uid, dest)
    assert not result.ok
    assert_clear(result.diagnosis)
    assert watcher.partial == [] and temporaries(dest) == []
    before = assert_whole_and_original(dest, study, exact=False)
    assert len(before) < len(study.instances)  # each series' association aborted part-way
    scp.abort_after = None
    rerun_completes(server, method, study, dest, before, exact=False)


# -- a PACS that stalls: the timeouts are honoured -------------------------------------------


@pytest.mark.parametrize("method", ["c-get", "c-move", "c-find"])
def test_stalled_pacs_times_out_on_time(
    pynetdicom_scp_factory, alive: Victim, tmp_path: Path, method: str
) -> None:
    from DicomServersLib.dimse.query import find_studies

    study = alive.study
    storage_port = free_port()
    scp = pynetdicom_scp_factory.qr(
        "STALLER",
        datasets=[dcmread(path) for path in study.paths[:3]],
        find_responses=[dcmread(study.paths[0], stop_before_pixels=True)],
        stall_seconds=30.0,
        move_destinations={MOVE_AE: storage_port},
    )
    server = DicomServer(
        name="Staller",
        called_ae_title="STALLER",
        host=LOOPBACK,
        port=scp.port,
        calling_ae_title="DSTEST",
        move_destination_ae_title=MOVE_AE,
        storage_port=storage_port,
        timeout_s=1.0,
    )
    idle = 1.0
    started = time.monotonic()
    if method == "c-find":
        found = find_studies(server, timeouts=Timeouts(connect_s=2, acse_s=2, idle_s=idle))
        ok, diagnosis = found.ok, found.diagnosis
    else:
        result = dimse_retrieve(
            server,
            study.study_instance_uid,
            tmp_path / "dest",
            method=method,
            timeouts=Timeouts(connect_s=2, acse_s=2, idle_s=idle),
            listen_host=LOOPBACK,
        )
        ok, diagnosis = result.ok, result.diagnosis
        assert dcm_files(tmp_path / "dest") == []
    elapsed = time.monotonic() - started
    assert not ok and "sent nothing for 1 s" in diagnosis, diagnosis
    # The survey C-FIND and the request each may wait one idle timeout, plus slack.
    assert elapsed < 2 * idle + 2.0, elapsed
