"""C-FIND searches against a real Orthanc (and pynetdicom SCPs for what Orthanc cannot show).

The rig's sample set has 7 studies dated 0, 1, 10, 40, 400 and 3000 days before today and one
without a date; names in Latin-1, UTF-8, ISO 2022 Japanese, Greek and ASCII.
"""

from __future__ import annotations

import datetime as dt

import pytest
from DicomServersLib.date_filters import DateRange, subtract
from DicomServersLib.dimse.query import find_series, find_studies, list_instances
from DicomServersLib.query_model import (
    CUT_OFF_CANCELLED,
    CUT_OFF_OUR_LIMIT,
    CUT_OFF_SERVER_LIMIT,
    QueryFilters,
)
from DicomServersLib.validation import ValidationError
from dimse_helpers import qr_answers, server_for
from pydicom.dataset import Dataset
from rig.hostile import hostile_identifier
from rig.studies import SAMPLE_PATIENTS

ALL = DateRange()


def accessions(result) -> list[str]:
    return sorted(study.accession_number for study in result.studies)


def test_every_study_with_its_fields(orthanc, sample_studies) -> None:
    result = find_studies(server_for(orthanc), QueryFilters(date_range=ALL))
    assert result.ok and result.cut_off == "" and result.status == 0
    assert accessions(result) == [f"ACC000{n}" for n in range(1, 8)]
    first = next(s for s in result.studies if s.accession_number == "ACC0001")
    expected = sample_studies.study("ACC0001")
    assert first.study_uid == expected.study_instance_uid
    assert first.patient_id == "DS-P001" and first.patient_birth_date == "19650312"
    assert first.study_date == expected.study_date and first.study_time == "083000"
    assert first.study_description == "Thorax nativ" and first.modalities == ["CT"]
    assert (first.series_count, first.instance_count) == (2, 7)
    undated = next(s for s in result.studies if s.accession_number == "ACC0007")
    assert undated.study_date == ""


def test_names_in_every_character_set_decode(orthanc) -> None:
    result = find_studies(server_for(orthanc), QueryFilters(date_range=ALL))
    names = {study.patient_id: study.patient_name for study in result.studies}
    assert names == {patient.patient_id: patient.name for patient in SAMPLE_PATIENTS}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (QueryFilters(patient_name="Müller*"), ["ACC0001", "ACC0002"]),
        (QueryFilters(patient_name="*Łukasz"), ["ACC0003", "ACC0004"]),
        (QueryFilters(patient_name="Doe^J?ne"), ["ACC0007"]),
        (QueryFilters(patient_id="DS-P004"), ["ACC0006"]),
        (QueryFilters(accession_number="ACC0005"), ["ACC0005"]),
        (QueryFilters(modality="MR"), ["ACC0002", "ACC0003", "ACC0006"]),
        (QueryFilters(study_description="Chest*"), ["ACC0005"]),
        (QueryFilters(patient_name="Müller*", modality="CT"), ["ACC0001"]),
    ],
    ids=[
        "name-wildcard",
        "name-utf8",
        "name-question-mark",
        "id",
        "accession",
        "modality",
        "description",
        "combined",
    ],
)
def test_filters(orthanc, filters: QueryFilters, expected: list[str]) -> None:
    filters.date_range = ALL
    assert accessions(find_studies(server_for(orthanc), filters)) == expected


def test_server_date_filter_from_date(orthanc) -> None:
    since = (dt.date.today() - dt.timedelta(days=5)).isoformat()
    server = server_for(orthanc, date_filter="from_date", filter_from_date=since)
    assert accessions(find_studies(server)) == ["ACC0001", "ACC0003"]


@pytest.mark.parametrize(
    ("count", "unit", "expected"),
    [
        (12, "days", ["ACC0001", "ACC0003", "ACC0005"]),
        (2, "months", ["ACC0001", "ACC0002", "ACC0003", "ACC0005"]),
        (2, "years", ["ACC0001", "ACC0002", "ACC0003", "ACC0004", "ACC0005"]),
    ],
)
def test_server_date_filter_relative(orthanc, count: int, unit: str, expected: list[str]) -> None:
    server = server_for(
        orthanc, date_filter="relative", filter_relative_count=count, filter_relative_unit=unit
    )
    assert accessions(find_studies(server)) == expected


def test_query_overrides_the_server_date_filter(orthanc) -> None:
    server = server_for(orthanc, date_filter="relative", filter_relative_count=1)
    today = dt.date.today()
    window = DateRange(start=subtract(today, 3000, "days"), end=subtract(today, 300, "days"))
    assert accessions(find_studies(server, QueryFilters(date_range=window))) == [
        "ACC0004",
        "ACC0006",
    ]


def test_search_limit_cuts_off_and_says_so(orthanc) -> None:
    result = find_studies(server_for(orthanc, search_limit=3), QueryFilters(date_range=ALL))
    assert len(result.studies) == 3 and result.ok
    assert (result.cut_off, result.limit, result.truncated) == (CUT_OFF_OUR_LIMIT, 3, True)
    exact = find_studies(server_for(orthanc, search_limit=7), QueryFilters(date_range=ALL))
    assert len(exact.studies) == 7 and exact.cut_off == ""


def test_reaching_the_limit_sends_c_cancel(pynetdicom_scp_factory) -> None:
    answers = [_study(f"1.2.3.{n}") for n in range(1, 11)]
    scp = pynetdicom_scp_factory.qr("FAKEPACS", find_responses=answers, stall_seconds=0.01)
    result = find_studies(server_for(scp, search_limit=4))
    assert len(result.studies) == 4 and result.cut_off == CUT_OFF_OUR_LIMIT
    assert result.status == 0xFE00
    assert scp.cancels_seen >= 1


def test_orthanc_own_limit_is_reported(orthanc_factory, sample_studies) -> None:
    limited = orthanc_factory(preload=sample_studies, limit_find_results=2, dicomweb=False)
    result = find_studies(server_for(limited), QueryFilters(date_range=ALL))
    assert len(result.studies) == 2 and result.ok
    assert result.cut_off == CUT_OFF_SERVER_LIMIT and result.status == 0xFE00


def test_progress_can_cancel_a_long_list(pynetdicom_scp_factory) -> None:
    answers = [_study(f"1.2.3.{n}") for n in range(1, 301)]
    scp = pynetdicom_scp_factory.qr("FAKEPACS", find_responses=answers, stall_seconds=0.005)
    seen = []

    def progress(value) -> bool:
        seen.append(value.completed)
        return value.completed < 100

    result = find_studies(server_for(scp), progress=progress)
    assert result.cut_off == CUT_OFF_CANCELLED and len(result.studies) == 100
    assert seen[0] == 100 and scp.cancels_seen >= 1


def test_raw_character_sets_decode(pynetdicom_scp_factory) -> None:
    # A PACS that ignores our request for UTF-8 answers in each patient's own character set.
    answers = []
    for patient in SAMPLE_PATIENTS:
        ds = _study("1.2.3." + patient.patient_id[-1])
        if patient.character_set is not None:
            charset = patient.character_set
            ds.SpecificCharacterSet = list(charset) if isinstance(charset, tuple) else charset
        ds.PatientName = patient.name
        ds.PatientID = patient.patient_id
        answers.append(ds)
    scp = pynetdicom_scp_factory.qr("FAKEPACS", find_responses=answers)
    names = {s.patient_id: s.patient_name for s in find_studies(server_for(scp)).studies}
    assert names == {patient.patient_id: patient.name for patient in SAMPLE_PATIENTS}


def test_hostile_answers_are_defused(pynetdicom_scp_factory) -> None:
    scp = pynetdicom_scp_factory.qr(
        "FAKEPACS", find_responses=[hostile_identifier("../../etc/passwd")]
    )
    result = find_studies(server_for(scp))
    assert result.ok and len(result.studies) == 1
    study = result.studies[0]
    assert "\x1b" not in study.patient_name and "\r" not in study.patient_name
    assert study.study_uid == "../../etc/passwd"  # listed as sent; retrieving it is refused
    with pytest.raises(ValidationError, match="study_uid"):
        find_series(server_for(scp), study.study_uid)


@pytest.mark.parametrize(
    ("status", "words"),
    [(0xC001, "could not process"), (0xA900, "does not match its information model")],
)
def test_failure_status_is_diagnosed(pynetdicom_scp_factory, status: int, words: str) -> None:
    scp = pynetdicom_scp_factory.qr(
        "FAKEPACS", find_responses=[_study("1.2.3")], find_status=status
    )
    result = find_studies(server_for(scp))
    assert not result.ok and result.status == status
    assert words in result.diagnosis
    assert [s.study_uid for s in result.studies] == ["1.2.3"]  # what came before is kept


def test_out_of_resources_after_answers_is_a_server_limit(pynetdicom_scp_factory) -> None:
    answers = [_study(f"1.2.3.{n}") for n in range(1, 4)]
    scp = pynetdicom_scp_factory.qr("FAKEPACS", find_responses=answers, find_status=0xA700)
    result = find_studies(server_for(scp))
    assert result.cut_off == CUT_OFF_SERVER_LIMIT and len(result.studies) == 3
    assert "out of resources" in result.diagnosis and "Narrow the search" in result.diagnosis


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (QueryFilters(patient_name="a\\b"), "patient_name"),
        (QueryFilters(patient_id="x\ny"), "patient_id"),
        (QueryFilters(accession_number="A" * 17), "accession_number"),
        (QueryFilters(modality="C T!"), "modality"),
        (QueryFilters(study_uid="1.2.03"), "study_uid"),
        (QueryFilters(limit=-1), "limit"),
    ],
)
def test_invalid_filters_raise_naming_the_field(orthanc, filters: QueryFilters, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        find_studies(server_for(orthanc), filters)
    assert [name for name, _ in raised.value.errors] == [field]


def test_series_and_instances_of_a_study(orthanc, sample_studies) -> None:
    study = sample_studies.study("ACC0002")
    result = find_series(server_for(orthanc), study.study_instance_uid)
    assert result.ok
    by_uid = {s.series_uid: s for s in result.series}
    assert set(by_uid) == {s.series_instance_uid for s in study.series}
    t1 = by_uid[study.series[0].series_instance_uid]
    assert (t1.modality, t1.series_description, t1.instance_count) == ("MR", "T1 sagittal", 3)
    listing = list_instances(server_for(orthanc), study.study_instance_uid)
    assert listing.complete and listing.failure is None
    assert sorted(i.sop_uid for i in listing.instances) == sorted(
        i.sop_instance_uid for i in study.instances
    )
    assert listing.sop_classes == ["1.2.840.10008.5.1.4.1.1.4"]


def test_hierarchical_pacs_lists_instances_series_by_series(
    pynetdicom_scp_factory, sample_studies
) -> None:
    study = sample_studies.study("ACC0001")
    scp = pynetdicom_scp_factory.qr("FAKEPACS", find_responses=qr_answers([study]))
    listing = list_instances(server_for(scp), study.study_instance_uid)
    assert listing.complete and len(listing.instances) == 7
    image_queries = [
        r.identifier
        for r in scp.requests_for("C-FIND")
        if r.identifier.QueryRetrieveLevel == "IMAGE"
    ]
    assert sorted(q.SeriesInstanceUID for q in image_queries) == sorted(
        s.series_instance_uid for s in study.series
    )


def _study(uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = uid
    ds.PatientName = "Test^Patient"
    return ds
