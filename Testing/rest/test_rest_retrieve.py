"""Retrieving over REST (Orthanc /instances/{id}/file and DICOMweb WADO-RS) into files.

The guarantees are those of a DIMSE retrieve: the files are the server's bytes, written
atomically under ``<dest>/<Study>/<Series>/<SOP>.dcm``; a rerun fetches only what is missing;
a cancel stops the transfer and leaves no partial file.
"""

from __future__ import annotations

import datetime as dt
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from DicomServersLib.dicom_files import TEMP_PREFIX, instance_path
from DicomServersLib.progress import Progress
from DicomServersLib.rest.retrieve import retrieve_study
from rest_helpers import (
    FLAVORS,
    RelayProxy,
    RequestLog,
    StudyMaker,
    logged_session,
    rest_server,
    upload,
)
from rig.orthanc import OrthancServer
from rig.studies import SampleSet, StudyInfo, make_ct_series

TODAY = dt.date.today()
METHOD = {"orthanc": "orthanc-rest", "dicomweb": "wado-rs"}


def expected_files(study: StudyInfo, dest: Path) -> dict[Path, bytes]:
    return {
        instance_path(
            dest, study.study_instance_uid, series.series_instance_uid, inst.sop_instance_uid
        ): inst.path.read_bytes()
        for series in study.series
        for inst in series.instances
    }


def leftovers(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_study_files_are_the_originals_byte_for_byte(
    rest_orthanc: OrthancServer, flavor: str, sample_studies: SampleSet, tmp_path: Path
) -> None:
    study = sample_studies.study("ACC0001")  # two series, seven instances
    dest = tmp_path / "dest"
    progress: list[Progress] = []
    result = retrieve_study(
        rest_server(rest_orthanc, flavor), study.study_instance_uid, dest,
        progress=lambda p: progress.append(p) or True,
    )  # fmt: skip
    assert result.ok, result.diagnosis
    assert (result.method, result.received, result.skipped, result.failed) == (
        METHOD[flavor], 7, 0, 0,
    )  # fmt: skip
    expected = expected_files(study, dest)
    assert sorted(result.files) == sorted(expected)
    for path, data in expected.items():
        assert path.read_bytes() == data
    assert result.bytes_received >= sum(len(d) for d in expected.values())
    assert progress and progress[-1].completed == 7 and progress[-1].remaining == 0
    assert leftovers(dest) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_one_series(
    rest_orthanc: OrthancServer, flavor: str, sample_studies: SampleSet, tmp_path: Path
) -> None:
    study = sample_studies.study("ACC0001")
    series = study.series[1]
    result = retrieve_study(
        rest_server(rest_orthanc, flavor), study.study_instance_uid, tmp_path,
        series_uid=series.series_instance_uid,
    )  # fmt: skip
    assert (result.ok, result.received) == (True, len(series.instances))
    assert {p.parent.name for p in result.files} == {series.series_instance_uid}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_rerun_fetches_only_the_missing_instances(
    rest_orthanc: OrthancServer,
    flavor: str,
    sample_studies: SampleSet,
    tmp_path: Path,
    request_log: RequestLog,
) -> None:
    study = sample_studies.study("ACC0001")
    server = rest_server(rest_orthanc, flavor)
    assert retrieve_study(server, study.study_instance_uid, tmp_path).ok
    expected = expected_files(study, tmp_path)
    first_series, second_series = study.series
    removed = [first_series.instances[0], first_series.instances[2]]
    for instance in removed:
        next(p for p in expected if p.stem == instance.sop_instance_uid).unlink()
    for path in [p for p in expected if p.parent.name == second_series.series_instance_uid]:
        path.unlink()  # a whole series missing
    session = logged_session(server, request_log)
    result = retrieve_study(server, study.study_instance_uid, tmp_path, session=session)
    assert result.ok, result.diagnosis
    missing = len(removed) + len(second_series.instances)
    assert (result.received, result.skipped) == (missing, 7 - missing)
    assert sorted(result.files) == sorted(expected)
    for path, data in expected.items():
        assert path.read_bytes() == data
    if flavor == "orthanc":
        assert request_log.count(lambda r: r.path.endswith("/file")) == missing
    else:
        retrieves = [r.path for r in request_log.requests if "/series/" in r.path]
        per_instance = [p for p in retrieves if "/instances/" in p]
        assert sorted(p.rsplit("/", 1)[1] for p in per_instance) == sorted(
            i.sop_instance_uid for i in removed
        )
        assert any(p.endswith(second_series.series_instance_uid) for p in retrieves)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_nothing_missing_transfers_nothing(
    rest_orthanc: OrthancServer,
    flavor: str,
    sample_studies: SampleSet,
    tmp_path: Path,
    request_log: RequestLog,
) -> None:
    study = sample_studies.study("ACC0003")
    server = rest_server(rest_orthanc, flavor)
    assert retrieve_study(server, study.study_instance_uid, tmp_path).ok
    result = retrieve_study(
        server, study.study_instance_uid, tmp_path, session=logged_session(server, request_log)
    )
    assert (result.ok, result.received, result.skipped, result.bytes_received) == (True, 0, 3, 0)
    assert not any(r.path.endswith("/file") or "/series/" in r.path for r in request_log.requests)


@pytest.fixture
def big_study(
    fresh_orthanc: Callable[..., OrthancServer], study_maker: StudyMaker
) -> tuple[OrthancServer, StudyInfo]:
    """An Orthanc holding one 40-slice 256 × 256 CT (about 5 MB) of one series."""
    orthanc = fresh_orthanc()
    study = study_maker.make(TODAY, slices=1)
    study.series.clear()
    make_ct_series(study, slices=40, rows=256, columns=256)
    upload(orthanc, [study])
    return orthanc, study


@pytest.mark.parametrize("flavor", FLAVORS)
def test_cancel_stops_and_leaves_no_partial_file_then_resume_completes(
    big_study: tuple[OrthancServer, StudyInfo], flavor: str, tmp_path: Path
) -> None:
    orthanc, study = big_study
    server = rest_server(orthanc, flavor)
    tmp_path = tmp_path / "dest"

    def cancel_at_first_report(progress: Progress) -> bool:
        return False

    result = retrieve_study(
        server, study.study_instance_uid, tmp_path, progress=cancel_at_first_report
    )
    assert (result.ok, result.cancelled) == (False, True)
    assert "cancelled" in result.diagnosis
    assert result.received < 40
    assert leftovers(tmp_path) == []
    expected = expected_files(study, tmp_path)
    on_disk = list(tmp_path.rglob("*.dcm"))
    assert len(on_disk) == result.received
    for path in on_disk:
        assert path.read_bytes() == expected[path]  # every file there is complete

    rerun = retrieve_study(server, study.study_instance_uid, tmp_path)
    assert rerun.ok, rerun.diagnosis
    assert (rerun.received, rerun.skipped) == (40 - result.received, result.received)
    assert all(path.read_bytes() == data for path, data in expected.items())


def test_wado_rs_streams_without_holding_the_study(
    fresh_orthanc: Callable[..., OrthancServer], study_maker: StudyMaker, tmp_path: Path
) -> None:
    """Peak Python memory stays a fraction of a 20 MB answer: parts go to disk as they come."""
    orthanc = fresh_orthanc()
    study = study_maker.make(TODAY, slices=1)
    study.series.clear()
    make_ct_series(study, slices=40, rows=512, columns=512)
    upload(orthanc, [study])
    server = rest_server(orthanc, "dicomweb")
    dest = tmp_path / "dest"
    tracemalloc.start()
    try:
        result = retrieve_study(server, study.study_instance_uid, dest, workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and result.received == 40
    total = sum(p.stat().st_size for p in result.files)
    assert total > 20_000_000
    assert peak < total / 4, f"peak {peak} bytes for a {total}-byte study"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_server_killed_mid_transfer_leaves_no_partial_file(
    big_study: tuple[OrthancServer, StudyInfo], flavor: str, tmp_path: Path
) -> None:
    orthanc, study = big_study
    server = rest_server(orthanc, flavor, timeout_s=5)
    dest = tmp_path / "dest"
    killed: list[bool] = []

    def kill_once(progress: Progress) -> bool:
        if not killed:
            orthanc.kill()
            killed.append(True)
        return True

    result = retrieve_study(server, study.study_instance_uid, dest, progress=kill_once)
    assert leftovers(dest) == []
    expected = expected_files(study, dest)
    for path in dest.rglob("*.dcm"):
        assert path.read_bytes() == expected[path]
    if flavor == "orthanc":  # WADO-RS data already sent may still arrive whole
        assert not result.ok and not result.cancelled
        assert "refused" in result.diagnosis or "closed the connection" in result.diagnosis


@pytest.mark.parametrize("flavor", FLAVORS)
def test_transfer_cut_mid_stream_is_reported_and_resumed(
    big_study: tuple[OrthancServer, StudyInfo], flavor: str, tmp_path: Path
) -> None:
    orthanc, study = big_study
    dest = tmp_path / "dest"
    proxy = RelayProxy(orthanc.http_port, cut_after=2_000_000)
    try:
        suffix = "/dicom-web" if flavor == "dicomweb" else ""
        cut_server = rest_server(orthanc, flavor, rest_url=proxy.url + suffix)
        result = retrieve_study(cut_server, study.study_instance_uid, dest, workers=1)
    finally:
        proxy.stop()
    assert not result.ok and not result.cancelled
    assert result.diagnosis
    assert ("cut" if flavor == "dicomweb" else "broke") in result.diagnosis
    assert leftovers(dest) == []
    expected = expected_files(study, dest)
    for path in dest.rglob("*.dcm"):
        assert path.read_bytes() == expected[path]
    rerun = retrieve_study(rest_server(orthanc, flavor), study.study_instance_uid, dest)
    assert rerun.ok and rerun.received + rerun.skipped == 40
    assert rerun.skipped == result.received


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_password_and_unknown_study_are_diagnoses(
    rest_orthanc: OrthancServer, flavor: str, sample_studies: SampleSet, tmp_path: Path
) -> None:
    uid = sample_studies.study("ACC0001").study_instance_uid
    result = retrieve_study(rest_server(rest_orthanc, flavor, rest_password="x"), uid, tmp_path)
    assert not result.ok and "wrong user name or password" in result.diagnosis
    assert list(tmp_path.rglob("*.dcm")) == []
    unknown = retrieve_study(rest_server(rest_orthanc, flavor), "1.2.3.4.5.6.7", tmp_path)
    assert not unknown.ok and unknown.received == 0
    assert unknown.diagnosis


def test_a_bad_uid_is_refused_naming_the_argument(
    rest_orthanc: OrthancServer, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="study_uid"):
        retrieve_study(rest_server(rest_orthanc), "../../etc", tmp_path)
    with pytest.raises(ValueError, match="series_uid"):
        retrieve_study(rest_server(rest_orthanc), "1.2.3", tmp_path, series_uid="1.2.x")


def test_sop_uid_is_read_from_the_file_meta(sample_studies: SampleSet) -> None:
    from DicomServersLib.rest.retrieve import sop_uid_from_file_meta

    for instance in sample_studies.instances[:5]:
        head = instance.path.read_bytes()[:1024]
        assert sop_uid_from_file_meta(head) == instance.sop_instance_uid
    assert sop_uid_from_file_meta(b"not dicom" * 100) == ""
    assert sop_uid_from_file_meta(instance.path.read_bytes()[:140]) == ""  # cut short
