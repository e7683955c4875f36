"""The embedded demo PACS answers real DCMTK 3.6.7 clients (echoscu, findscu, getscu, movescu,
storescu) as a PACS must (PS3.4 A, B, C, K)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest
from demo_pacs_helpers import AE_TITLE, answers, series_uid, study_uid
from DicomServersLib.demo_pacs import DemoPacs
from DicomServersLib.demo_pacs.samples import write_samples
from DicomServersLib.dicom_files import instance_path
from rig.dcmtk import dcmtk_binary, echoscu, findscu, getscu, movescu, storescu

pytestmark = pytest.mark.dcmtk

STUDY_KEYS = [
    "QueryRetrieveLevel=STUDY",
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "StudyDate",
    "AccessionNumber",
    "StudyInstanceUID",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
]


def find_studies(pacs: DemoPacs, tmp_path: Path, *keys: str) -> list[pydicom.Dataset]:
    """Run a Study Root STUDY-level findscu with the usual return keys plus ``keys``."""
    base = [k for k in STUDY_KEYS if k.split("=")[0] not in {x.split("=")[0] for x in keys}]
    run = findscu(pacs.port, AE_TITLE, [*base, *keys], output_dir=tmp_path / "rsp")
    return answers(run)


def accessions(found: list[pydicom.Dataset]) -> set[str]:
    return {str(ds.AccessionNumber) for ds in found}


def test_echoscu_is_answered(pacs: DemoPacs) -> None:
    run = echoscu(pacs.port, AE_TITLE)
    assert run.ok, run.output


def test_an_association_calling_another_ae_title_is_rejected(pacs: DemoPacs) -> None:
    run = echoscu(pacs.port, "NOTDEMOPACS")
    assert not run.ok
    assert "Called AE Title Not Recognized" in run.output


def test_find_study_level_lists_every_study_with_its_character_set(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    found = {str(ds.AccessionNumber): ds for ds in find_studies(pacs, tmp_path)}

    assert set(found) == {f"DEMO100{i}" for i in range(1, 7)}
    # Names come back in their own character set and decode to the original text.
    assert str(found["DEMO1001"].PatientName) == "Doe^Jane"
    assert (
        "SpecificCharacterSet" not in found["DEMO1001"]
        or not found["DEMO1001"].SpecificCharacterSet
    )
    assert found["DEMO1003"].SpecificCharacterSet == "ISO_IR 100"
    assert str(found["DEMO1003"].PatientName) == "Müller^Jürgen"
    assert list(found["DEMO1004"].SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    assert str(found["DEMO1004"].PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert found["DEMO1005"].SpecificCharacterSet == "ISO_IR 126"
    assert str(found["DEMO1005"].PatientName) == "Παπαδοπούλου^Ελένη"
    assert found["DEMO1006"].SpecificCharacterSet == "ISO_IR 192"
    assert str(found["DEMO1006"].PatientName) == "Ødegård^Åse"
    # Computed attributes (PS3.4 C.3.4).
    assert found["DEMO1001"].ModalitiesInStudy == "CT"
    assert int(found["DEMO1001"].NumberOfStudyRelatedSeries) == 2
    assert int(found["DEMO1001"].NumberOfStudyRelatedInstances) == 16
    assert found["DEMO1001"].StudyDate == "20240613"
    assert found["DEMO1006"].StudyDate == ""
    assert all(ds.QueryRetrieveLevel == "STUDY" for ds in found.values())
    assert all(ds.StudyInstanceUID == study_uid(acc) for acc, ds in found.items())


@pytest.mark.parametrize(
    ("date_key", "expected"),
    [
        ("20240101-20240614", {"DEMO1001", "DEMO1003", "DEMO1004"}),
        ("20240601-", {"DEMO1001"}),
        ("-20231231", {"DEMO1002", "DEMO1005"}),
        ("20240531", {"DEMO1003"}),
        ('""', {"DEMO1006"}),  # empty value matching: the study without a date
        ("", {f"DEMO100{i}" for i in range(1, 7)}),  # universal matching
    ],
)
def test_find_by_study_date(
    pacs: DemoPacs, tmp_path: Path, date_key: str, expected: set[str]
) -> None:
    found = find_studies(pacs, tmp_path, f"StudyDate={date_key}")
    assert accessions(found) == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["PatientName=doe*"], {"DEMO1001", "DEMO1002"}),  # PN: case-insensitive wild card
        (["PatientName=M?ller*"], {"DEMO1003"}),  # ? is one character (here ü)
        (["PatientName=*^Ελένη"], {"DEMO1005"}),
        (["PatientID=DEMO-00?"], {f"DEMO100{i}" for i in range(1, 7)}),
        (["AccessionNumber=DEMO1004"], {"DEMO1004"}),
        (["ModalitiesInStudy=MR"], {"DEMO1002", "DEMO1003", "DEMO1006"}),
        (["ModalitiesInStudy=CT\\MR", "StudyDate=20240501-"], {"DEMO1001", "DEMO1003"}),
        (["Modality=CT"], {"DEMO1001", "DEMO1004", "DEMO1005"}),  # a series key at study level
        (["PatientName=nobody*"], set()),
    ],
)
def test_find_with_wildcards_and_lists(
    pacs: DemoPacs, tmp_path: Path, keys: list[str], expected: set[str]
) -> None:
    found = find_studies(pacs, tmp_path, "SpecificCharacterSet=ISO_IR 192", *keys)
    assert accessions(found) == expected


def test_find_with_a_non_ascii_key_in_utf8(pacs: DemoPacs, tmp_path: Path) -> None:
    found = find_studies(pacs, tmp_path, "SpecificCharacterSet=ISO_IR 192", "PatientName=山田*")
    assert accessions(found) == {"DEMO1004"}  # matches the ideographic component group


def test_find_by_a_list_of_study_uids(pacs: DemoPacs, tmp_path: Path) -> None:
    wanted = f"{study_uid('DEMO1002')}\\{study_uid('DEMO1005')}"
    found = find_studies(pacs, tmp_path, f"StudyInstanceUID={wanted}")
    assert accessions(found) == {"DEMO1002", "DEMO1005"}


def test_find_series_level(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = [
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={study_uid('DEMO1001')}",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ]
    found = answers(findscu(pacs.port, AE_TITLE, keys, output_dir=tmp_path / "rsp"))
    assert [ds.SeriesInstanceUID for ds in found] == [series_uid("DEMO1001", n) for n in (1, 2)]
    assert [ds.Modality for ds in found] == ["CT", "CT"]
    assert [str(ds.SeriesDescription) for ds in found] == [
        "Thorax 5 mm soft tissue",
        "Thorax 5 mm lung",
    ]
    assert [int(ds.NumberOfSeriesRelatedInstances) for ds in found] == [8, 8]


def test_find_image_level_and_lower_level_keys_are_empty_above(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    keys = [
        "QueryRetrieveLevel=IMAGE",
        f"SeriesInstanceUID={series_uid('DEMO1003', 2)}",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    ]
    found = answers(findscu(pacs.port, AE_TITLE, keys, output_dir=tmp_path / "img"))
    assert sorted(int(ds.InstanceNumber) for ds in found) == list(range(1, 7))
    assert {ds.SOPClassUID for ds in found} == {"1.2.840.10008.5.1.4.1.1.4"}
    assert len({ds.SOPInstanceUID for ds in found}) == 6

    # At STUDY level an IMAGE attribute is answered empty (the level has no such attribute).
    studies = find_studies(pacs, tmp_path, "AccessionNumber=DEMO1003", "InstanceNumber")
    assert len(studies) == 1 and studies[0].InstanceNumber in ("", None)


def test_find_patient_root_patient_level(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = [
        "QueryRetrieveLevel=PATIENT",
        "PatientID=DEMO-00*",
        "PatientName",
        "PatientBirthDate",
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedInstances",
    ]
    run = findscu(pacs.port, AE_TITLE, keys, model="patient", output_dir=tmp_path / "pat")
    found = {str(ds.PatientID): ds for ds in answers(run)}
    assert set(found) == {f"DEMO-00{i}" for i in range(1, 6)}
    assert int(found["DEMO-001"].NumberOfPatientRelatedStudies) == 2
    assert int(found["DEMO-001"].NumberOfPatientRelatedInstances) == 28
    assert str(found["DEMO-002"].PatientName) == "Müller^Jürgen"
    assert found["DEMO-002"].PatientBirthDate == "19650312"


def test_find_patient_root_study_level(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = ["QueryRetrieveLevel=STUDY", "PatientID=DEMO-001", "StudyInstanceUID", "StudyDate"]
    run = findscu(pacs.port, AE_TITLE, keys, model="patient", output_dir=tmp_path / "pst")
    assert {ds.StudyInstanceUID for ds in answers(run)} == {
        study_uid("DEMO1001"),
        study_uid("DEMO1002"),
    }


def test_study_root_has_no_patient_level(pacs: DemoPacs) -> None:
    run = findscu(pacs.port, AE_TITLE, ["QueryRetrieveLevel=PATIENT", "PatientID"])
    assert "DataSetDoesNotMatchSOPClass" in run.output  # 0xA900


def test_an_invalid_date_range_fails(pacs: DemoPacs) -> None:
    run = findscu(pacs.port, AE_TITLE, ["QueryRetrieveLevel=STUDY", "StudyDate=2024-01-01"])
    assert "DataSetDoesNotMatchSOPClass" in run.output  # 0xA900
    assert "Pending" not in run.output


def test_findscu_cancel_stops_the_answers(slow_pacs: DemoPacs) -> None:
    # findscu --cancel 1 sends C-CANCEL after the first answer (PS3.4 C.4.1.3.2.2); the PACS
    # waits 0.3 s before each answer, so five of the six studies are never sent.
    args = [dcmtk_binary("findscu"), "-v", "-S", "--cancel", "1", "-aet", "CANCELLER"]
    args += ["-aec", AE_TITLE, "-to", "10", "-ta", "10", "-td", "10"]
    for key in STUDY_KEYS:
        args += ["-k", key]
    run = subprocess.run(
        [*args, "127.0.0.1", str(slow_pacs.port)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    output = (run.stdout + run.stderr).decode("utf-8", errors="replace")
    assert run.returncode == 0, output
    assert output.count("(Pending)") == 1
    assert "Cancel: MatchingTerminatedDueToCancelRequest" in output  # 0xFE00


def test_getscu_retrieves_a_study(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study_uid('DEMO1001')}"]
    run = getscu(pacs.port, AE_TITLE, keys, tmp_path / "got")
    assert run.ok, run.output
    assert len(run.files) == 16
    got = {pydicom.dcmread(p).SOPInstanceUID: p for p in run.files}
    for entry in pacs.index.entries():
        if entry.study_uid == study_uid("DEMO1001"):
            original = pydicom.dcmread(entry.path)
            copy = pydicom.dcmread(got[entry.sop_uid])
            assert copy.PixelData == original.PixelData
            assert copy.SeriesInstanceUID == original.SeriesInstanceUID


def test_getscu_retrieves_a_series_of_a_non_ascii_patient(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = ["QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={series_uid('DEMO1004', 1)}"]
    run = getscu(pacs.port, AE_TITLE, keys, tmp_path / "got")
    assert run.ok, run.output
    assert len(run.files) == 10
    first = pydicom.dcmread(run.files[0])
    assert str(first.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"


def test_movescu_sends_to_a_known_destination(
    pacs: DemoPacs, tmp_path: Path, storescp_factory
) -> None:
    storescp = storescp_factory("MOVEDEST")
    pacs.add_move_destination("MOVEDEST", "127.0.0.1", storescp.port)
    try:
        keys = ["QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={series_uid('DEMO1002', 2)}"]
        run = movescu(pacs.port, AE_TITLE, keys, "MOVEDEST")
        assert run.ok, run.output
        files = storescp.wait_for_files(6)
    finally:
        pacs.remove_move_destination("MOVEDEST")
    assert len(files) == 6
    assert {pydicom.dcmread(f).SeriesInstanceUID for f in files} == {series_uid("DEMO1002", 2)}


def test_movescu_to_an_unknown_destination_is_refused_a801(pacs: DemoPacs) -> None:
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study_uid('DEMO1001')}"]
    run = movescu(pacs.port, AE_TITLE, keys, "NOSUCHAE")
    assert not run.ok
    assert "MoveDestinationUnknown" in run.output  # 0xA801


def test_storescu_then_findscu_finds_the_stored_study(empty_pacs: DemoPacs, tmp_path: Path) -> None:
    written = write_samples(tmp_path / "to-send")
    doe = [p for p in written if pydicom.dcmread(p).AccessionNumber == "DEMO1002"]
    assert len(doe) == 12

    run = storescu(empty_pacs.port, AE_TITLE, doe)
    assert run.ok, run.output

    found = find_studies(empty_pacs, tmp_path)
    assert accessions(found) == {"DEMO1002"}
    assert int(found[0].NumberOfStudyRelatedInstances) == 12
    for path in doe:
        ds = pydicom.dcmread(path)
        stored = instance_path(
            empty_pacs.folder.storage, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert pydicom.dcmread(stored).PixelData == ds.PixelData


def test_worklist_findscu_w(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = [
        "SpecificCharacterSet",
        "PatientName",
        "PatientID",
        "AccessionNumber",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=SLICER",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240614",
        "ScheduledProcedureStepSequence[0].Modality",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
    ]
    run = findscu(pacs.port, AE_TITLE, keys, model="worklist", output_dir=tmp_path / "wl")
    found = {str(ds.AccessionNumber): ds for ds in answers(run)}
    assert set(found) == {"DEMO2001", "DEMO2002", "DEMO2003"}
    assert str(found["DEMO2002"].PatientName) == "Müller^Jürgen"
    assert found["DEMO2002"].SpecificCharacterSet == "ISO_IR 100"
    assert str(found["DEMO2003"].PatientName) == "Wang^XiaoDong=王^小東"
    step = found["DEMO2001"].ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledProcedureStepStartTime) == ("CT", "090000")
    assert step.ScheduledStationAETitle == "SLICER"
    # Only the keys asked for come back in the step (no ScheduledStationName).
    assert "ScheduledStationName" not in step


def test_worklist_findscu_w_tomorrow_for_another_station(pacs: DemoPacs, tmp_path: Path) -> None:
    keys = [
        "PatientName",
        "AccessionNumber",
        "ScheduledProcedureStepSequence[0].Modality=MR",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240615-",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    ]
    run = findscu(pacs.port, AE_TITLE, keys, model="worklist", output_dir=tmp_path / "wl")
    found = answers(run)
    assert [str(ds.AccessionNumber) for ds in found] == ["DEMO2004"]
    assert found[0].ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "MR01"
