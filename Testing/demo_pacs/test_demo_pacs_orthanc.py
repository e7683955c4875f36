"""With Orthanc installed, the demo runs on a real Orthanc holding the same samples: REST and
DICOMweb behind a generated password kept in the memory secret store, DIMSE and worklist."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from demo_pacs_helpers import REFERENCE, answers
from DicomServersLib.demo_pacs import DemoPacs, OrthancDemo, find_orthanc, start_demo
from DicomServersLib.secret_store import MemorySecretStore, secret_key
from DicomServersLib.validation import check_server
from rig.dcmtk import findscu

pytestmark = [pytest.mark.orthanc, pytest.mark.dcmtk]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancDemo]:
    """The demo as ``make demo`` starts it: Orthanc, since it is installed here."""
    assert find_orthanc() is not None, "Orthanc is a test peer: install it with make system-deps"
    server = start_demo(tmp_path_factory.mktemp("orthanc-demo"), reference_date=REFERENCE)
    try:
        assert isinstance(server, OrthancDemo)
        yield server
    finally:
        server.stop()


def test_rest_and_dicomweb_need_the_generated_password(demo: OrthancDemo) -> None:
    password = MemorySecretStore().get(secret_key("demo-pacs", "rest_password"))
    assert password and len(password) >= 20
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(f"{demo.http_url}/system", timeout=10).status_code == 401
        session.auth = ("demo", password)
        statistics = session.get(f"{demo.http_url}/statistics", timeout=10).json()
        studies = session.get(f"{demo.dicomweb_url}/studies", timeout=10).json()
    assert (statistics["CountStudies"], statistics["CountInstances"]) == (6, 64)
    assert len(studies) == 6
    config = Path(demo.config_path)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # it holds the password


def test_the_record_points_at_orthanc(demo: OrthancDemo) -> None:
    record = demo.demo_server_record()
    assert check_server(record) == []
    assert (record.name, record.is_default, record.rest_enabled) == ("Demo PACS", True, True)
    assert record.rest_url == demo.http_url and record.port == demo.dicom_port
    assert record.rest_password == demo.password
    assert any(Path(record.storage_folder).rglob("*"))  # Orthanc's own storage folder


def test_dimse_find_lists_the_samples(demo: OrthancDemo, tmp_path: Path) -> None:
    keys = ["QueryRetrieveLevel=STUDY", "PatientName", "AccessionNumber", "StudyDate"]
    found = answers(findscu(demo.dicom_port, demo.ae_title, keys, output_dir=tmp_path / "rsp"))
    names = {str(ds.AccessionNumber): str(ds.PatientName) for ds in found}
    assert names["DEMO1003"] == "Müller^Jürgen"
    assert names["DEMO1005"] == "Παπαδοπούλου^Ελένη"
    assert len(names) == 6


def test_the_worklist_is_served_from_the_demo_folder(demo: OrthancDemo, tmp_path: Path) -> None:
    keys = [
        "PatientName",
        "AccessionNumber",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=SLICER",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240614",
    ]
    run = findscu(demo.dicom_port, demo.ae_title, keys, model="worklist", output_dir=tmp_path)
    assert {str(ds.AccessionNumber) for ds in answers(run)} == {"DEMO2001", "DEMO2002", "DEMO2003"}


def test_without_orthanc_the_embedded_pacs_starts(tmp_path: Path) -> None:
    server = start_demo(tmp_path, prefer_orthanc=False, reference_date=REFERENCE)
    try:
        assert isinstance(server, DemoPacs)
        assert server.demo_server_record().port == server.port
    finally:
        server.stop()


def test_when_orthanc_fails_to_start_the_embedded_pacs_opens_the_demo(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_demo(tmp_path, binary="/bin/false", reference_date=REFERENCE)
    try:
        assert isinstance(server, DemoPacs)
        assert "Orthanc did not start" in caplog.text
    finally:
        server.stop()
