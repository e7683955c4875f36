"""Search rules shared by the browser and the console: local matching (folder mode) and keywords."""

from __future__ import annotations

import datetime as dt

import pytest
from DicomServersLib.console_api import filters_from_keywords
from DicomServersLib.date_filters import DateRange
from DicomServersLib.query_model import QueryFilters, StudyRecord
from DicomServersLib.study_filter import search_local, study_matches
from DicomServersLib.validation import ValidationError

STUDIES = [
    StudyRecord(
        "1.1",
        "Müller^Jürgen",
        "P1",
        study_date="20240110",
        modalities=["CT", "PT"],
        study_description="Thorax nativ",
        accession_number="ACC1",
    ),
    StudyRecord(
        "1.2",
        "Yamada^Tarou=山田^太郎",
        "P2",
        study_date="20230505",
        modalities=["MR"],
        study_description="Head MR",
        accession_number="ACC2",
    ),
    StudyRecord(
        "1.3",
        "Doe^Jane",
        "P3",
        study_date="",
        modalities=["CT"],
        study_description="Anonymised",
        accession_number="ACC3",
    ),
]


@pytest.mark.parametrize(
    ("filters", "dates", "expected"),
    [
        (QueryFilters(patient_name="*müller*"), DateRange(), ["1.1"]),  # case-insensitive PN
        (QueryFilters(patient_name="山田^太郎"), DateRange(), ["1.2"]),  # one component group
        (QueryFilters(patient_id="P?"), DateRange(), ["1.1", "1.2", "1.3"]),
        (QueryFilters(modality="pt"), DateRange(), ["1.1"]),  # any modality of the study
        (QueryFilters(study_description="*head*"), DateRange(), []),  # LO: case-sensitive
        (QueryFilters(accession_number="ACC3"), DateRange(), ["1.3"]),
        (QueryFilters(), DateRange(start=dt.date(2024, 1, 1)), ["1.1"]),  # undated never in range
        (QueryFilters(), DateRange(end=dt.date(2023, 12, 31)), ["1.2"]),
    ],
)
def test_local_matching_follows_c_find_rules(
    filters: QueryFilters, dates: DateRange, expected: list[str]
) -> None:
    assert [s.study_uid for s in STUDIES if study_matches(s, filters, dates)] == expected


def test_local_search_limit_cuts_the_list_off() -> None:
    result = search_local(STUDIES, QueryFilters(), DateRange(), limit=2)
    assert [s.study_uid for s in result.studies] == ["1.1", "1.2"]
    assert result.cut_off == "our_limit" and result.limit == 2
    whole = search_local(STUDIES, QueryFilters(), DateRange(), limit=3)
    assert whole.cut_off == "" and len(whole.studies) == 3


def test_console_keywords() -> None:
    filters = filters_from_keywords(patient_name="Doe*", modality="CT", limit=5, last="3m")
    assert (filters.patient_name, filters.modality, filters.limit) == ("Doe*", "CT", 5)
    assert filters.date_range is not None and filters.date_range.end is None
    ranged = filters_from_keywords(date_from="2024-01-01", date_to=dt.date(2024, 2, 1))
    assert ranged.date_range == DateRange(dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    assert filters_from_keywords().date_range is None  # the server's own date filter


@pytest.mark.parametrize(
    ("keywords", "field", "rule"),
    [
        ({"patient": "x"}, "patient", "unknown search keyword"),
        ({"last": "7w"}, "last", "followed by d, m or y"),
        ({"last": "7d", "date_from": "2024-01-01"}, "last", "not both"),
        ({"date_from": "31.01.2024"}, "date_from", "YYYY-MM-DD"),
        ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_to", "before date_from"),
        ({"limit": -1}, "limit", "0 (no limit) or more"),
        ({"limit": "10"}, "limit", "0 (no limit) or more"),
    ],
)
def test_console_keywords_refused_name_the_field(keywords: dict, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as raised:
        filters_from_keywords(**keywords)
    assert raised.value.errors[0][0] == field
    assert rule in str(raised.value)
