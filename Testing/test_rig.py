"""Self-tests of the real-peer rig: the generated studies, Orthanc, DCMTK and pynetdicom peers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from DicomServersLib.dicom_compat import PYDICOM3, read_header, write_dataset
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from rig.dcmtk import StoreSCP, WorklistSCP, echoscu, findscu, getscu, movescu, storescu
from rig.fixtures import PynetdicomSCPFactory, peer_required
from rig.hostile import HOSTILE_UIDS, hostile_identifier, hostile_instance, is_sendable_uid
from rig.orthanc import OrthancServer, RemoteModality
from rig.ports import LOOPBACK, free_ports, port_accepts, require_loopback, wait_for_port
from rig.processes import MissingPeerError, find_binary
from rig.studies import (
    CT_IMAGE_STORAGE,
    MR_IMAGE_STORAGE,
    SAMPLE_PATIENTS,
    Patient,
    SampleSet,
    make_ct_series,
    make_mr_series,
    make_study,
    write_sample_studies,
)
from rig.worklists import make_worklist_item

REPO = Path(__file__).resolve().parents[1]
OrthancFactory = Callable[..., OrthancServer]
FIND = StudyRootQueryRetrieveInformationModelFind
GET = StudyRootQueryRetrieveInformationModelGet
MOVE = StudyRootQueryRetrieveInformationModelMove


def scu(*contexts: str, timeout: float = 5.0) -> AE:
    """A pynetdicom SCU with the given abstract syntaxes and short timeouts."""
    ae = AE(ae_title="RIGTEST")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def study_query(**keys: str) -> Dataset:
    """A Study Root STUDY-level C-FIND identifier asking for the usual attributes."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate"):
        setattr(ds, keyword, "")
    ds.AccessionNumber = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def statuses(responses: Iterator[tuple[Dataset, Dataset | None]]) -> list[int | None]:
    """The status of each response (None for the empty status of a failed association)."""
    return [int(status.Status) if "Status" in status else None for status, _ in responses]


# --------------------------------------------------------------------------------------------
# Ports


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(port_accepts(LOOPBACK, port, timeout=0.2) for port in ports)


def test_wait_for_port_times_out_on_a_closed_port() -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        wait_for_port(LOOPBACK, free_ports(1)[0], timeout=0.3)
    assert time.monotonic() - start < 2


def test_rig_refuses_non_loopback_hosts() -> None:
    assert require_loopback("127.0.0.1") == "127.0.0.1"
    with pytest.raises(ValueError, match="loopback"):
        require_loopback("192.0.2.10")
    with pytest.raises(ValueError):
        RemoteModality("REMOTE", 104, host="198.51.100.7").to_config()


def test_missing_peer_programs_fail_with_an_install_hint() -> None:
    with pytest.raises(MissingPeerError, match="make system-deps"):
        find_binary("no-such-dicom-tool", "DICOMSERVERS_NO_SUCH_TOOL", "dcmtk")
    with pytest.raises(pytest.fail.Exception, match="not installed here"), peer_required():
        raise MissingPeerError("Orthanc is not installed here")


# --------------------------------------------------------------------------------------------
# Studies and pydicom compatibility


def test_sample_set_has_the_promised_shape(sample_studies: SampleSet) -> None:
    assert len(sample_studies.patients) == 5
    assert len(sample_studies.studies) == 7
    modalities = {series.modality for series in sample_studies.series}
    assert modalities == {"CT", "MR"}
    undated = [study for study in sample_studies.studies if study.study_date is None]
    assert [study.accession_number for study in undated] == ["ACC0007"]
    uids = [instance.sop_instance_uid for instance in sample_studies.instances]
    uids += [study.study_instance_uid for study in sample_studies.studies]
    uids += [series.series_instance_uid for series in sample_studies.series]
    assert len(uids) == len(set(uids))
    assert all(UID(uid).is_valid for uid in uids)
    assert sample_studies.study("ACC0003").patient.patient_id == "DS-P002"
    assert len(sample_studies.studies_of("DS-P001")) == 2


def test_sample_files_are_part10_and_match_their_description(sample_studies: SampleSet) -> None:
    for study in sample_studies.studies:
        for series in study.series:
            for instance in series.instances:
                raw = instance.path.read_bytes()
                assert raw[128:132] == b"DICM"
                ds = pydicom.dcmread(instance.path)
                meta = ds.file_meta
                assert meta.MediaStorageSOPInstanceUID == instance.sop_instance_uid
                assert meta.MediaStorageSOPClassUID == instance.sop_class_uid
                assert ds.SOPInstanceUID == instance.sop_instance_uid
                expected = CT_IMAGE_STORAGE if series.modality == "CT" else MR_IMAGE_STORAGE
                assert ds.SOPClassUID == expected
                assert ds.StudyInstanceUID == study.study_instance_uid
                assert ds.SeriesInstanceUID == series.series_instance_uid
                assert ds.AccessionNumber == study.accession_number
                assert ds.InstanceNumber == instance.instance_number
                assert ds.Modality == series.modality
                assert ds.get("StudyDate") == study.study_date
                assert ds.pixel_array.shape == (series.rows, series.columns)
                assert len(ds.ImagePositionPatient) == 3


@pytest.mark.parametrize("patient", SAMPLE_PATIENTS, ids=lambda p: p.patient_id)
def test_patient_names_decode_with_their_character_set(
    sample_studies: SampleSet, patient: Patient
) -> None:
    study = sample_studies.studies_of(patient.patient_id)[0]
    ds = pydicom.dcmread(study.paths[0])
    assert str(ds.PatientName) == patient.name
    charset = patient.character_set
    expected_charset = list(charset) if isinstance(charset, tuple) else charset
    assert ds.get("SpecificCharacterSet") == expected_charset
    raw = study.paths[0].read_bytes()
    encoded = {
        "DS-P001": "Müller".encode("latin-1"),
        "DS-P002": "Żółć".encode(),
        "DS-P003": b"\x1b$B",  # ISO 2022 IR 87 escape to JIS X 0208
        "DS-P004": "Παπαδόπουλος".encode("iso8859-7"),
        "DS-P005": b"Doe^Jane",
    }[patient.patient_id]
    assert encoded in raw


def test_generation_is_deterministic_given_the_seed(tmp_path: Path) -> None:
    first = write_sample_studies(tmp_path / "a", seed=7)
    again = write_sample_studies(tmp_path / "b", seed=7)
    other = write_sample_studies(tmp_path / "c", seed=8)
    uids = [i.sop_instance_uid for i in first.instances]
    assert uids == [i.sop_instance_uid for i in again.instances]
    assert not set(uids) & {i.sop_instance_uid for i in other.instances}
    pixels = pydicom.dcmread(first.paths[0]).PixelData
    assert pixels == pydicom.dcmread(again.paths[0]).PixelData


def test_make_study_and_series_sizes(tmp_path: Path) -> None:
    patient = Patient("P-SIZE", "Size^Test")
    study = make_study(tmp_path, patient, accession_number="SIZE1", study_date=None)
    ct = make_ct_series(study, slices=3, rows=32, columns=48, slice_thickness=2.5)
    mr = make_mr_series(study, slices=2)
    assert [s.series_number for s in study.series] == [1, 2]
    assert study.modalities == ["CT", "MR"]
    positions = [pydicom.dcmread(path).ImagePositionPatient[2] for path in ct.paths]
    assert positions == [0.0, -2.5, -5.0]
    assert pydicom.dcmread(ct.paths[0]).pixel_array.shape == (32, 48)
    assert pydicom.dcmread(mr.paths[0]).SOPClassUID == MR_IMAGE_STORAGE
    assert "StudyDate" not in pydicom.dcmread(mr.paths[0])


def test_dicom_compat_writes_part10_and_reads_headers(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Compat^Test"
    ds.BitsAllocated = 16
    ds.PixelData = b"\x00\x00" * 4
    path = tmp_path / "compat.dcm"
    write_dataset(ds, path)
    assert path.read_bytes()[128:132] == b"DICM"
    header = read_header(path)
    assert header.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert header.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert "PixelData" not in header
    assert "PixelData" in read_header(path, stop_before_pixels=False)
    assert pydicom.__version__.startswith("3") is PYDICOM3
    with pytest.raises(ValueError, match="SOPClassUID"):
        write_dataset(Dataset(), tmp_path / "bad.dcm")


# --------------------------------------------------------------------------------------------
# Orthanc


def test_orthanc_requires_authentication(orthanc: OrthancServer) -> None:
    assert orthanc.rest("GET", "/system", auth=False).status_code == 401
    with_wrong_password = orthanc.session.get(
        f"{orthanc.http_url}/system", auth=(orthanc.user, "wrong"), timeout=5
    )
    assert with_wrong_password.status_code == 401
    system = orthanc.rest_json("GET", "/system")
    assert system["DicomAet"] == orthanc.aet == "ORTHANC"
    assert system["DicomPort"] == orthanc.dicom_port
    assert system["Version"]


def test_orthanc_holds_the_sample_studies(
    orthanc: OrthancServer, sample_studies: SampleSet
) -> None:
    assert orthanc.study_uids() == {s.study_instance_uid for s in sample_studies.studies}
    stats = orthanc.statistics()
    assert stats["CountInstances"] == len(sample_studies.instances)
    assert stats["CountPatients"] == len(sample_studies.patients)
    assert any(orthanc.storage_dir.iterdir())


def test_dicomweb_qido_answers(orthanc: OrthancServer, sample_studies: SampleSet) -> None:
    accept = {"Accept": "application/dicom+json"}
    studies = orthanc.rest_json("GET", "/dicom-web/studies", headers=accept)
    assert {s["0020000D"]["Value"][0] for s in studies} == {
        s.study_instance_uid for s in sample_studies.studies
    }
    polish = orthanc.rest_json(
        "GET",
        "/dicom-web/studies",
        params={"PatientID": "DS-P002", "includefield": "00100010"},
        headers=accept,
    )
    assert len(polish) == 2
    assert polish[0]["00100010"]["Value"][0]["Alphabetic"] == "Żółć^Łukasz"
    assert orthanc.rest("GET", "/dicom-web/studies", auth=False).status_code == 401


def test_c_echo_to_orthanc_and_called_ae_check(orthanc: OrthancServer) -> None:
    ae = scu(Verification)
    assoc = ae.associate(LOOPBACK, orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    wrong = ae.associate(LOOPBACK, orthanc.dicom_port, ae_title="NOT-ORTHANC")
    assert wrong.is_rejected


def test_c_find_to_orthanc_keeps_non_ascii_names(orthanc: OrthancServer) -> None:
    assoc = scu(FIND).associate(LOOPBACK, orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    answers = [
        identifier
        for status, identifier in assoc.send_c_find(study_query(PatientID="DS-P003"), FIND)
        if status.Status == 0xFF00 and identifier is not None
    ]
    assoc.release()
    assert [str(a.PatientName) for a in answers] == [SAMPLE_PATIENTS[2].name]


def test_worklist_plugin_answers_findscu(orthanc: OrthancServer, tmp_path: Path) -> None:
    item = make_worklist_item(SAMPLE_PATIENTS[1], accession_number="WLRIG001", modality="MR")
    path = orthanc.add_worklist(item)
    try:
        run = findscu(
            orthanc.dicom_port,
            orthanc.aet,
            ["PatientName", "AccessionNumber=WLRIG001", "(0040,0100)[0].Modality"],
            model="worklist",
            output_dir=tmp_path,
        )
    finally:
        path.unlink()
    assert run.ok, run.output
    assert len(run.files) == 1
    answer = pydicom.dcmread(run.files[0])
    assert answer.AccessionNumber == "WLRIG001"
    assert str(answer.PatientName) == "Żółć^Łukasz"
    assert answer.ScheduledProcedureStepSequence[0].Modality == "MR"


def test_getscu_retrieves_a_study_from_orthanc(
    orthanc: OrthancServer, sample_studies: SampleSet, tmp_path: Path
) -> None:
    study = sample_studies.study("ACC0002")
    keys = ["0008,0052=STUDY", f"0020,000D={study.study_instance_uid}"]
    run = getscu(orthanc.dicom_port, orthanc.aet, keys, tmp_path)
    assert run.ok, run.output
    received = {pydicom.dcmread(path).SOPInstanceUID for path in run.files}
    assert received == {instance.sop_instance_uid for instance in study.instances}
    assert run.seconds > 0


def test_orthanc_factory_applies_options(
    orthanc_factory: OrthancFactory, sample_studies: SampleSet
) -> None:
    server = orthanc_factory(
        aet="PACS2",
        limit_find_results=2,
        allow_get=False,
        stable_age=1,
        lua_scripts=[
            'print("RIG-LUA-LOADED")\n'
            "function OnStableStudy(studyId, tags, metadata)\n"
            '  print("RIG-STABLE " .. studyId)\n'
            "end\n"
        ],
    )
    config = json.loads(server.config_path.read_text())
    assert config["DicomAlwaysAllowGet"] is False
    assert server.rest_json("GET", "/system")["DicomAet"] == "PACS2"
    server.upload(sample_studies.paths)
    assoc = scu(FIND).associate(LOOPBACK, server.dicom_port, ae_title="PACS2")
    found = statuses(assoc.send_c_find(study_query(), FIND))
    assoc.release()
    assert found.count(0xFF00) == 2  # LimitFindResults
    study = sample_studies.study("ACC0001")
    run = getscu(
        server.dicom_port,
        "PACS2",
        ["0008,0052=STUDY", f"0020,000D={study.study_instance_uid}"],
        server.work_dir / "get",
    )
    assert run.files == []  # DicomAlwaysAllowGet false: unknown SCU refused
    deadline = time.monotonic() + 15
    while "RIG-STABLE" not in server.log_text(None) and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log_text(None)
    assert "RIG-LUA-LOADED" in log
    assert "RIG-STABLE" in log  # StableAge 1 s, Lua OnStableStudy


def test_orthanc_c_move_to_registered_destination(
    orthanc_factory: OrthancFactory,
    pynetdicom_scp_factory: PynetdicomSCPFactory,
    sample_studies: SampleSet,
) -> None:
    destination = pynetdicom_scp_factory.storage("RIGDEST")
    study = sample_studies.study("ACC0005")
    server = orthanc_factory(
        preload=study.paths, modalities={"dest": RemoteModality("RIGDEST", destination.port)}
    )
    keys = ["0008,0052=STUDY", f"0020,000D={study.study_instance_uid}"]
    run = movescu(server.dicom_port, server.aet, keys, "RIGDEST")
    assert run.ok, run.output
    received = destination.wait_for_datasets(len(study.instances))
    assert {ds.SOPInstanceUID for ds in received} == {i.sop_instance_uid for i in study.instances}
    assert destination.requests_for("C-STORE")[0].calling_ae_title == server.aet
    unknown = movescu(server.dicom_port, server.aet, keys, "NOBODY")
    assert "0xa801" in unknown.output.lower() or not unknown.ok


def test_orthanc_restart_keeps_ports_and_storage(
    orthanc_factory: OrthancFactory, sample_studies: SampleSet
) -> None:
    server = orthanc_factory(preload=sample_studies.study("ACC0006").paths)
    ports, pid = (server.http_port, server.dicom_port), server.pid
    server.kill()
    assert not server.running
    with pytest.raises(OSError):
        server.session.get(f"{server.http_url}/system", timeout=1)
    server.restart()
    assert (server.http_port, server.dicom_port) == ports
    assert server.pid != pid
    assert server.statistics()["CountInstances"] == 3


# --------------------------------------------------------------------------------------------
# DCMTK


def test_storescp_receives_from_storescu(
    storescp_factory: Callable[..., StoreSCP], sample_studies: SampleSet
) -> None:
    scp = storescp_factory("RIGSTORE")
    study = sample_studies.study("ACC0001")
    run = storescu(scp.port, scp.ae_title, study.paths)
    assert run.ok, run.output
    files = scp.wait_for_files(len(study.instances))
    received = {pydicom.dcmread(path).SOPInstanceUID for path in files}
    assert received == {instance.sop_instance_uid for instance in study.instances}


def test_wlmscpfs_answers_worklist_queries(
    wlmscpfs_factory: Callable[..., WorklistSCP], tmp_path: Path
) -> None:
    items = [
        make_worklist_item(SAMPLE_PATIENTS[0], accession_number="WL1", modality="CT"),
        make_worklist_item(SAMPLE_PATIENTS[3], accession_number="WL2", modality="MR"),
    ]
    scp = wlmscpfs_factory("RIGWL", items=items)
    assert echoscu(scp.port, "RIGWL").ok
    keys = ["PatientName", "AccessionNumber", "(0040,0100)[0].Modality=MR"]
    run = findscu(scp.port, "RIGWL", keys, model="worklist", output_dir=tmp_path)
    assert run.ok, run.output
    assert len(run.files) == 1
    answer = pydicom.dcmread(run.files[0])
    assert answer.AccessionNumber == "WL2"
    assert str(answer.PatientName) == SAMPLE_PATIENTS[3].name  # --keep-char-set: ISO_IR 126
    scp.add_item(make_worklist_item(SAMPLE_PATIENTS[4], accession_number="WL3", modality="MR"))
    again = findscu(scp.port, "RIGWL", keys, model="worklist", output_dir=tmp_path / "again")
    assert len(again.files) == 2


# --------------------------------------------------------------------------------------------
# pynetdicom SCPs


def test_storage_scp_records_what_it_receives(
    pynetdicom_scp_factory: PynetdicomSCPFactory, sample_studies: SampleSet, tmp_path: Path
) -> None:
    scp = pynetdicom_scp_factory.storage("RIGSTORE", output_dir=tmp_path)
    paths = sample_studies.study("ACC0003").paths
    assoc = scu(MRImageStorage, Verification).associate(LOOPBACK, scp.port, ae_title="RIGSTORE")
    assert assoc.send_c_echo().Status == 0
    for path in paths:
        assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0
    assoc.release()
    received = scp.wait_for_datasets(len(paths))
    assert [str(ds.PatientName) for ds in received] == ["Żółć^Łukasz"] * len(paths)
    assert {r.calling_ae_title for r in scp.requests} == {"RIGTEST"}
    assert len(list(tmp_path.glob("*.dcm"))) == len(paths)


def test_fake_qr_find_statuses_cancel_and_abort(
    pynetdicom_scp_factory: PynetdicomSCPFactory,
) -> None:
    answers = [study_query(StudyInstanceUID=f"1.2.3.{n}") for n in range(6)]
    scp = pynetdicom_scp_factory.qr(find_responses=answers, find_status=0xA700)
    ae = scu(FIND)
    assoc = ae.associate(LOOPBACK, scp.port, ae_title="FAKEPACS")
    assert statuses(assoc.send_c_find(study_query(), FIND)) == [0xFF00] * 6 + [0xA700]
    received = scp.requests_for("C-FIND")[0]
    assert received.identifier is not None and received.identifier.QueryRetrieveLevel == "STUDY"

    scp.stall_seconds = 0.2
    seen = []
    for status, _ in assoc.send_c_find(study_query(), FIND, msg_id=11):
        seen.append(int(status.Status))
        if len(seen) == 1:
            assoc.send_c_cancel(11, query_model=FIND)
    assert seen[-1] == 0xFE00 and len(seen) < 7
    assoc.release()

    scp.stall_seconds, scp.abort_after = 0.0, 2
    assoc = ae.associate(LOOPBACK, scp.port, ae_title="FAKEPACS")
    assert statuses(assoc.send_c_find(study_query(), FIND)) == [0xFF00, 0xFF00, None]
    deadline = time.monotonic() + 5
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.02)
    assert assoc.is_aborted


def test_fake_qr_can_ignore_cancel(pynetdicom_scp_factory: PynetdicomSCPFactory) -> None:
    scp = pynetdicom_scp_factory.qr(
        find_responses=[study_query(PatientID=str(n)) for n in range(4)],
        stall_seconds=0.1,
        ignore_cancel=True,
    )
    assoc = scu(FIND).associate(LOOPBACK, scp.port, ae_title="FAKEPACS")
    seen = []
    for status, _ in assoc.send_c_find(study_query(), FIND, msg_id=5):
        seen.append(int(status.Status))
        if len(seen) == 1:
            assoc.send_c_cancel(5, query_model=FIND)
    assoc.release()
    assert seen == [0xFF00] * 4 + [0x0000]
    assert scp.cancels_seen >= 1


def test_fake_qr_get_and_move(
    pynetdicom_scp_factory: PynetdicomSCPFactory, sample_studies: SampleSet
) -> None:
    study = sample_studies.study("ACC0001")
    datasets = [pydicom.dcmread(path) for path in study.paths]
    destination = pynetdicom_scp_factory.storage("RIGDEST")
    scp = pynetdicom_scp_factory.qr(
        datasets=datasets, move_destinations={"RIGDEST": destination.port}
    )
    identifier = study_query(StudyInstanceUID=study.study_instance_uid)

    got: list[str] = []

    def on_store(event: evt.Event) -> int:
        got.append(str(event.dataset.SOPInstanceUID))
        return 0

    ae = scu(GET, MOVE, CTImageStorage)
    assoc = ae.associate(
        LOOPBACK,
        scp.port,
        ae_title="FAKEPACS",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert statuses(assoc.send_c_get(identifier, GET))[-1] == 0x0000
    assert sorted(got) == sorted(i.sop_instance_uid for i in study.instances)

    assert statuses(assoc.send_c_move(identifier, "RIGDEST", MOVE))[-1] == 0x0000
    assert len(destination.wait_for_datasets(len(datasets))) == len(datasets)
    assert statuses(assoc.send_c_move(identifier, "UNKNOWN", MOVE)) == [0xA801]
    assert scp.requests_for("C-MOVE")[-1].move_destination == "UNKNOWN"

    scp.retrieve_status = 0xA702
    assert statuses(assoc.send_c_get(identifier, GET))[-1] == 0xA702
    assoc.release()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fake_qr_sends_hostile_uids(
    pynetdicom_scp_factory: PynetdicomSCPFactory, sample_studies: SampleSet
) -> None:
    template = pydicom.dcmread(sample_studies.study("ACC0005").paths[0])
    sendable = [uid for uid in HOSTILE_UIDS if is_sendable_uid(uid)]
    with pytest.raises(ValueError):
        hostile_instance(template, "1.2\\3.4")
    scp = pynetdicom_scp_factory.qr(
        find_responses=[hostile_identifier(uid) for uid in HOSTILE_UIDS],
        datasets=[hostile_instance(template, uid) for uid in sendable],
    )
    ae = scu(FIND, GET, CTImageStorage)
    got: list[str] = []

    def on_store(event: evt.Event) -> int:
        request: Any = event.request  # a C-STORE request primitive here
        got.append(str(request.AffectedSOPInstanceUID))
        return 0

    assoc = ae.associate(
        LOOPBACK,
        scp.port,
        ae_title="FAKEPACS",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    found = [ident for status, ident in assoc.send_c_find(study_query(), FIND) if ident]
    assert str(found[0].StudyInstanceUID) == "../../etc/passwd"
    assert len(found) == len(HOSTILE_UIDS)
    get = Dataset()
    get.QueryRetrieveLevel = "STUDY"
    assert statuses(assoc.send_c_get(get, GET))[-1] == 0x0000
    assoc.release()
    assert got == sendable


def test_fake_qr_rejects_associations(pynetdicom_scp_factory: PynetdicomSCPFactory) -> None:
    closed = pynetdicom_scp_factory.qr(reject_association=True)
    assert scu(Verification).associate(LOOPBACK, closed.port, ae_title="FAKEPACS").is_rejected
    picky = pynetdicom_scp_factory.qr("PICKY", accepted_calling_ae_titles=["FRIEND"])
    assert scu(Verification).associate(LOOPBACK, picky.port, ae_title="PICKY").is_rejected
    open_ = pynetdicom_scp_factory.qr(echo_status=0x0211)
    assoc = scu(Verification).associate(LOOPBACK, open_.port, ae_title="FAKEPACS")
    assert assoc.send_c_echo().Status == 0x0211
    assoc.release()


def test_stalled_scp_is_released_by_stop(pynetdicom_scp_factory: PynetdicomSCPFactory) -> None:
    scp = pynetdicom_scp_factory.qr(find_responses=[study_query()], stall_seconds=60)
    assoc = scu(FIND, timeout=30).associate(LOOPBACK, scp.port, ae_title="FAKEPACS")
    outcome: list[list[int | None]] = []
    worker = threading.Thread(
        target=lambda: outcome.append(statuses(assoc.send_c_find(study_query(), FIND)))
    )
    worker.start()
    scp.wait_for_requests(1, "C-FIND", timeout=5)
    start = time.monotonic()
    scp.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - start < 5
    assert outcome == [[None]]
    assert not port_accepts(LOOPBACK, scp.port, timeout=0.2)


def test_silent_peer_leaves_the_association_to_time_out(
    pynetdicom_scp_factory: PynetdicomSCPFactory,
) -> None:
    peer = pynetdicom_scp_factory.silent()
    ae = scu(Verification, timeout=0.5)
    start = time.monotonic()
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="ANY")
    assert not assoc.is_established
    assert time.monotonic() - start < 5
    assert peer.connections == 1


# --------------------------------------------------------------------------------------------
# Clean-up: every peer is gone after its fixture, even when the test failed


_INNER_TEST = textwrap.dedent(
    """
    import json, os
    from rig.fixtures import *  # noqa: F403

    def test_starts_peers_then_fails(orthanc_factory, storescp_factory, wlmscpfs_factory,
                                     pynetdicom_scp_factory):
        orthanc = orthanc_factory()
        peers = [orthanc, storescp_factory(), wlmscpfs_factory()]
        scp = pynetdicom_scp_factory.storage()
        record = {"pids": [p.pid for p in peers],
                  "ports": [orthanc.http_port, orthanc.dicom_port, scp.port]
                           + [p.port for p in peers[1:]]}
        with open(os.environ["RIG_RECORD"], "w") as f:
            json.dump(record, f)
        assert False, "fails on purpose: teardown must still stop everything"
    """
)

_INNER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from rig.dcmtk import StoreSCP
    scp = StoreSCP(sys.argv[1]).start()
    with open(os.environ["RIG_RECORD"], "w") as f:
        json.dump({"pids": [scp.pid], "ports": [scp.port]}, f)
    # exits without stopping it: the atexit hook must
    """
)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _run_inner(args: list[str], record: Path) -> dict[str, list[int]]:
    """Run a child Python with the rig on its path; return what it recorded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "DicomServers"), str(REPO / "Testing")])
    env["RIG_RECORD"] = str(record)
    subprocess.run([sys.executable, *args], env=env, cwd=record.parent, timeout=120, check=False)
    result: dict[str, list[int]] = json.loads(record.read_text())
    return result


@pytest.mark.slow
@pytest.mark.orthanc
@pytest.mark.dcmtk
def test_peers_are_gone_after_their_fixtures_end(tmp_path: Path) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(_INNER_TEST)
    record = _run_inner(
        [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        tmp_path / "fixtures.json",
    )
    assert len(record["pids"]) == 3
    assert not any(_pid_alive(pid) for pid in record["pids"])
    assert not any(port_accepts(LOOPBACK, port, timeout=0.2) for port in record["ports"])

    script = tmp_path / "leak.py"
    script.write_text(_INNER_SCRIPT)
    leaked = _run_inner([str(script), str(tmp_path / "leak")], tmp_path / "script.json")
    assert not any(_pid_alive(pid) for pid in leaked["pids"])
