"""Sending files over REST: STOW-RS (DICOMweb) and Orthanc's POST /instances."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from DicomServersLib.progress import Progress
from DicomServersLib.rest import send as send_module
from DicomServersLib.rest.send import send_files
from rest_helpers import FLAVORS, RequestLog, logged_session, rest_server
from rig.orthanc import OrthancServer
from rig.studies import SampleSet


def stored_file(orthanc: OrthancServer, sop_uid: str) -> bytes:
    (match,) = orthanc.rest_json(
        "POST", "/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}
    )
    return orthanc.rest("GET", f"/instances/{match}/file").content


@pytest.mark.parametrize("flavor", FLAVORS)
def test_send_stores_every_file_byte_for_byte(
    fresh_orthanc: Callable[..., OrthancServer],
    sample_studies: SampleSet,
    flavor: str,
    request_log: RequestLog,
) -> None:
    orthanc = fresh_orthanc()
    study = sample_studies.study("ACC0001")
    server = rest_server(orthanc, flavor)
    progress: list[Progress] = []
    result = send_files(
        server, study.paths, session=logged_session(server, request_log),
        progress=lambda p: progress.append(p) or True,
    )  # fmt: skip
    assert result.ok, result.diagnosis
    assert [item.path for item in result.items] == study.paths
    assert all(item.ok and item.sop_instance_uid for item in result.items)
    assert orthanc.statistics()["CountInstances"] == 7
    for instance in study.instances:
        assert stored_file(orthanc, instance.sop_instance_uid) == instance.path.read_bytes()
    assert progress[-1].completed == 7 and progress[-1].bytes_done == progress[-1].bytes_total
    if flavor == "dicomweb":
        assert request_log.paths("POST") == ["/dicom-web/studies"]  # one STOW-RS request
    else:
        assert request_log.paths("POST") == ["/instances"] * 7


def test_stow_batches_large_sends(
    fresh_orthanc: Callable[..., OrthancServer],
    sample_studies: SampleSet,
    request_log: RequestLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(send_module, "BATCH_FILES", 3)
    orthanc = fresh_orthanc()
    server = rest_server(orthanc, "dicomweb")
    result = send_files(server, sample_studies.paths, session=logged_session(server, request_log))
    assert result.ok, result.diagnosis
    count = len(sample_studies.paths)
    assert len(request_log.paths("POST")) == -(-count // 3)
    assert orthanc.statistics()["CountInstances"] == count


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_file_that_is_not_dicom_is_reported_not_sent(
    fresh_orthanc: Callable[..., OrthancServer],
    sample_studies: SampleSet,
    flavor: str,
    tmp_path: Path,
) -> None:
    orthanc = fresh_orthanc()
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    good = sample_studies.study("ACC0003").paths
    result = send_files(rest_server(orthanc, flavor), [junk, *good, tmp_path / "missing.dcm"])
    assert not result.ok
    assert [i.ok for i in result.items] == [False, True, True, True, False]
    assert "not a DICOM file" in result.items[0].diagnosis
    assert "cannot read" in result.items[-1].diagnosis
    assert "2 of 5" in result.diagnosis
    assert orthanc.statistics()["CountInstances"] == 3


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_password_sends_nothing_and_says_why(
    fresh_orthanc: Callable[..., OrthancServer], sample_studies: SampleSet, flavor: str
) -> None:
    orthanc = fresh_orthanc()
    paths = sample_studies.study("ACC0003").paths
    result = send_files(rest_server(orthanc, flavor, rest_password="wrong"), paths)
    assert not result.ok
    assert "wrong user name or password" in result.diagnosis
    assert all(not i.ok and "not sent" in i.diagnosis for i in result.items)
    assert orthanc.statistics()["CountInstances"] == 0


@pytest.mark.parametrize("flavor", FLAVORS)
def test_cancel_stops_between_requests(
    fresh_orthanc: Callable[..., OrthancServer],
    sample_studies: SampleSet,
    flavor: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(send_module, "BATCH_FILES", 2)
    orthanc = fresh_orthanc()
    result = send_files(
        rest_server(orthanc, flavor), sample_studies.paths, progress=lambda p: False
    )
    assert not result.ok and "cancelled" in result.diagnosis
    sent = sum(1 for i in result.items if i.ok)
    assert 0 < sent < len(sample_studies.paths)
    assert orthanc.statistics()["CountInstances"] == sent
