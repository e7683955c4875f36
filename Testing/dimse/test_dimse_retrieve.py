"""C-GET and C-MOVE retrieves from a real Orthanc (and pynetdicom SCPs for faults).

What is checked on disk: the files are the originals (same data set bytes, by SOP Instance
UID) under ``<dest>/<Study>/<Series>/<SOP>.dcm``; nothing partial or temporary is ever left;
a rerun skips what is there and fetches only what is missing.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
from DicomServersLib.dimse import storage_scp
from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.retrieve import retrieve
from DicomServersLib.validation import ValidationError
from dimse_helpers import (
    data_set_bytes,
    datasets_of,
    dcm_files,
    fake_pacs,
    server_for,
    temporaries,
)
from pydicom import dcmread
from rig.ports import free_port

LOOPBACK = "127.0.0.1"


def move_server(pacs, **changes):
    fields = {"retrieve_method": "c-move", "storage_port": pacs.storage_port, **changes}
    return server_for(pacs.orthanc, **fields)


def assert_originals(dest: Path, study) -> None:
    """Every instance of ``study`` is on disk, byte-identical to its original data set."""
    for instance in study.instances:
        series_uid = next(s.series_instance_uid for s in study.series if instance in s.instances)
        path = dest / study.study_instance_uid / series_uid / f"{instance.sop_instance_uid}.dcm"
        assert path.is_file(), path
        assert data_set_bytes(path) == data_set_bytes(instance.path)
        meta = dcmread(path, stop_before_pixels=True).file_meta
        assert meta.MediaStorageSOPInstanceUID == instance.sop_instance_uid
        assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert temporaries(dest) == []


@pytest.mark.parametrize("method", ["c-get", "c-move"])
def test_study_arrives_identical_and_rerun_skips(pacs, dest: Path, method: str) -> None:
    study = pacs.samples.study("ACC0001")  # 2 series, 7 images
    server = move_server(pacs, retrieve_method=method)
    progress = []
    result = retrieve(
        server, study.study_instance_uid, dest, listen_host=LOOPBACK, progress=progress.append
    )
    assert result.ok, result.diagnosis
    assert (result.method, result.received, result.skipped, result.failed) == (method, 7, 0, 0)
    assert result.bytes_received == sum(p.stat().st_size for p in result.files)
    assert len(result.files) == 7 and result.status == 0
    assert_originals(dest, study)
    assert progress[-1].completed == 7 and progress[-1].remaining == 0
    again = retrieve(server, study.study_instance_uid, dest, listen_host=LOOPBACK)
    assert again.ok and (again.received, again.skipped) == (0, 7)
    assert again.files == result.files


def test_missing_instances_only_are_fetched(pacs, dest: Path) -> None:
    study = pacs.long_study
    server = server_for(pacs.orthanc)
    assert retrieve(server, study.study_instance_uid, dest).ok
    files = dcm_files(dest)
    for path in files[::7]:
        path.unlink()
    result = retrieve(server, study.study_instance_uid, dest)
    assert result.ok and result.received == len(files[::7])
    assert result.skipped == 40 - len(files[::7])
    assert_originals(dest, study)


def test_one_series_of_a_study(pacs, dest: Path) -> None:
    study = pacs.samples.study("ACC0002")
    series = study.series[1]
    result = retrieve(
        move_server(pacs),
        study.study_instance_uid,
        dest,
        series_uids=[series.series_instance_uid],
        listen_host=LOOPBACK,
    )
    assert result.ok and result.received == 3
    assert {p.parent.name for p in dcm_files(dest)} == {series.series_instance_uid}


@pytest.mark.usefixtures("instant_progress")
@pytest.mark.parametrize("method", ["c-get", "c-move"])
def test_cancel_mid_retrieve(pacs, dest: Path, method: str) -> None:
    study = pacs.long_study
    server = move_server(pacs, retrieve_method=method)

    def progress(value) -> bool:
        return value.completed < 5

    result = retrieve(
        server,
        study.study_instance_uid,
        dest,
        progress=progress,
        max_associations=1,
        listen_host=LOOPBACK,
    )
    assert result.cancelled and not result.ok and result.diagnosis == "The retrieve was cancelled."
    assert 5 <= len(dcm_files(dest)) < 40
    assert temporaries(dest) == []
    for path in dcm_files(dest):  # what arrived is whole
        assert dcmread(path).SOPInstanceUID == path.stem
    finished = retrieve(server, study.study_instance_uid, dest, listen_host=LOOPBACK)
    assert finished.ok and finished.skipped == len(dcm_files(dest)) - finished.received
    assert_originals(dest, study)


@pytest.mark.usefixtures("instant_progress")
def test_pacs_killed_mid_retrieve_then_rerun_completes(
    orthanc_factory, sample_studies, pacs, dest: Path
) -> None:
    study = pacs.long_study
    victim = orthanc_factory(preload=study.paths, dicomweb=False)
    server = server_for(victim)

    def progress(value) -> bool:
        if value.completed >= 5 and victim.running:
            victim.kill()
        return True

    result = retrieve(server, study.study_instance_uid, dest, progress=progress, max_associations=1)
    assert not result.ok and not result.cancelled
    assert "closed the connection during C-GET" in result.diagnosis
    assert "fetches only what is missing" in result.diagnosis
    assert 5 <= len(dcm_files(dest)) < 40 and temporaries(dest) == []
    for path in dcm_files(dest):
        assert data_set_bytes(path)  # every file visible is complete (parses, has data)
        assert dcmread(path).SOPInstanceUID == path.stem
    victim.start()
    rerun = retrieve(server, study.study_instance_uid, dest)
    assert rerun.ok, rerun.diagnosis
    assert rerun.skipped >= 5 and rerun.received == 40 - rerun.skipped
    assert_originals(dest, study)


@pytest.mark.usefixtures("short_cancel_grace")
def test_pacs_ignoring_c_cancel_is_aborted(pynetdicom_scp_factory, sample_studies, dest) -> None:
    study = sample_studies.study("ACC0001")
    scp = fake_pacs(pynetdicom_scp_factory, study, stall_seconds=0.2, ignore_cancel=True)
    calls = []

    def progress(value) -> bool:
        calls.append(value)
        return len(calls) < 2

    result = retrieve(server_for(scp), study.study_instance_uid, dest, progress=progress)
    assert result.cancelled and not result.ok
    assert scp.cancels_seen >= 1
    assert len(dcm_files(dest)) < 7 and temporaries(dest) == []


def test_pacs_honouring_c_cancel(pynetdicom_scp_factory, sample_studies, dest) -> None:
    study = sample_studies.study("ACC0001")
    scp = fake_pacs(pynetdicom_scp_factory, study, stall_seconds=0.2)
    calls = []

    def progress(value) -> bool:
        calls.append(value)
        return len(calls) < 2

    result = retrieve(server_for(scp), study.study_instance_uid, dest, progress=progress)
    assert result.cancelled and scp.cancels_seen >= 1
    assert result.status == 0xFE00 or result.status is None


@pytest.mark.parametrize("status", [0xA702, 0x0122])
def test_c_get_refused_by_status_suggests_c_move(
    pynetdicom_scp_factory, sample_studies, dest, status: int
) -> None:
    study = sample_studies.study("ACC0005")
    scp = fake_pacs(pynetdicom_scp_factory, study, retrieve_status=status)
    result = retrieve(server_for(scp), study.study_instance_uid, dest)
    assert not result.ok and result.status == status
    assert "witch this server's retrieve method to C-MOVE" in result.diagnosis
    assert dcm_files(dest) == []


def test_idle_and_overall_timeouts(pynetdicom_scp_factory, sample_studies, dest) -> None:
    study = sample_studies.study("ACC0005")
    scp = fake_pacs(pynetdicom_scp_factory, study, stall_seconds=3.0)
    idle = retrieve(
        server_for(scp),
        study.study_instance_uid,
        dest,
        timeouts=Timeouts(connect_s=2, acse_s=2, idle_s=1.0),
    )
    assert not idle.ok and "sent nothing for 1 s during C-GET" in idle.diagnosis
    overall = retrieve(
        server_for(scp),
        study.study_instance_uid,
        dest,
        timeouts=Timeouts(connect_s=2, acse_s=2, idle_s=10, overall_s=1.0),
    )
    assert not overall.ok and "took longer than the allowed 1 s" in overall.diagnosis
    assert temporaries(dest) == []


def test_hostile_instances_are_refused(pynetdicom_scp_factory, sample_studies, dest) -> None:
    study = sample_studies.study("ACC0005")
    evil = []
    for series_uid, sop_uid in (("1.2.3/../../../tmp", "x"), ("1.2.3", "CON")):
        ds = copy.deepcopy(datasets_of(study)[0])
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = sop_uid
        evil.append(ds)
    good = datasets_of(study)
    scp = pynetdicom_scp_factory.qr("FAKEPACS", datasets=[*evil, *good])
    result = retrieve(server_for(scp), study.study_instance_uid, dest)
    assert not result.ok and result.failed == 2
    assert "2 image(s) with invalid UIDs were refused" in result.diagnosis
    assert sorted(p.stem for p in dcm_files(dest)) == sorted(
        i.sop_instance_uid for i in study.instances
    )
    assert not any(dest.parent.rglob("x")) and temporaries(dest) == []


def test_storage_port_in_use_is_diagnosed(pacs, dest) -> None:
    study = pacs.samples.study("ACC0005")
    with storage_scp.socket.socket() as squatter:
        squatter.bind(("0.0.0.0", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        result = retrieve(move_server(pacs, storage_port=port), study.study_instance_uid, dest)
    assert not result.ok
    assert f"port {port} is already used by another program" in result.diagnosis


def test_concurrent_moves_share_one_listener(pacs, tmp_path: Path) -> None:
    server = move_server(pacs)
    studies = [pacs.samples.study("ACC0002"), pacs.samples.study("ACC0005")]
    results = {}

    def run(study) -> None:
        results[study.accession_number] = retrieve(
            server,
            study.study_instance_uid,
            tmp_path / study.accession_number,
            listen_host=LOOPBACK,
        )

    threads = [threading.Thread(target=run, args=(study,)) for study in studies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for study in studies:
        assert results[study.accession_number].ok
        assert_originals(tmp_path / study.accession_number, study)
    assert storage_scp._LISTENERS == {}  # the last user stopped it


def test_unrouted_instances_are_refused(pacs) -> None:
    server = move_server(pacs)
    listener = storage_scp.acquire_listener(server, bind_host=LOOPBACK)
    try:
        from rig.dcmtk import storescu

        study = pacs.samples.study("ACC0005")
        storescu(listener.port, "DSMOVE", [study.instances[0].path], network_timeout=5)
        assert listener.refused == 1
    finally:
        storage_scp.release_listener(listener)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"study_uid": "../x"}, "study_uid"),
        ({"series_uids": ["1.2.3", "1.2.x"]}, "series_uids"),
        ({"sop_uids": ["1.2.3"], "series_uids": []}, "sop_uids"),
        ({"method": "c-find"}, "method"),
    ],
)
def test_invalid_requests_raise(pacs, dest, kwargs, field) -> None:
    study_uid = kwargs.pop("study_uid", "1.2.3")
    with pytest.raises(ValidationError) as raised:
        retrieve(server_for(pacs.orthanc), study_uid, dest, **kwargs)
    assert field in [name for name, _ in raised.value.errors]


def test_move_needs_a_destination(pacs, dest) -> None:
    server = move_server(pacs, move_destination_ae_title="")
    with pytest.raises(ValidationError, match="move_destination_ae_title"):
        retrieve(server, "1.2.3", dest)


@pytest.mark.parametrize("method", ["c-get", "c-move"])
def test_a_study_the_pacs_does_not_hold(pacs, dest, method: str) -> None:
    result = retrieve(move_server(pacs, retrieve_method=method), "1.2.3.4.5", dest,
                      listen_host=LOOPBACK)  # fmt: skip
    assert not result.ok and result.files == [] and result.received == 0
    assert result.diagnosis == "The PACS sent nothing: it holds no study 1.2.3.4.5."


def test_unreachable_pacs(dest) -> None:
    port = free_port()
    server = server_for(storage_scp.StorageListener("X", 0), port=port, called_ae_title="X")
    result = retrieve(server, "1.2.3", dest)
    assert not result.ok and "Connection refused" in result.diagnosis
