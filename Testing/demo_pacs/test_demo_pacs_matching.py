"""The C-FIND matching rules of the demo PACS (PS3.4 C.2.2.2), from a table."""

from __future__ import annotations

import pytest
from DicomServersLib.demo_pacs.matching import QueryKeyError, match_key
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

YAMADA = "Yamada^Tarou=山田^太郎=やまだ^たろう"


@pytest.mark.parametrize(
    ("keyword", "vr", "key", "value", "expected"),
    [
        # universal matching (C.2.2.2.3)
        ("PatientName", "PN", "", "Doe^Jane", True),
        ("PatientName", "PN", None, "", True),
        ("StudyDate", "DA", "", "", True),
        # empty value matching (C.2.2.2.8)
        ("StudyDate", "DA", '""', "", True),
        ("StudyDate", "DA", '""', "20240101", False),
        # single value matching (C.2.2.2.1); PN without regard to case
        ("PatientID", "LO", "DEMO-001", "DEMO-001", True),
        ("PatientID", "LO", "demo-001", "DEMO-001", False),
        ("PatientName", "PN", "doe^jane", "Doe^Jane", True),
        ("PatientName", "PN", "Doe^Jane", "Doe^Jane^^^", True),
        ("PatientName", "PN", "山田^太郎", YAMADA, True),
        ("PatientName", "PN", "MÜLLER^JÜRGEN", PersonName("Müller^Jürgen"), True),
        # wild cards (C.2.2.2.4)
        ("PatientName", "PN", "doe*", "Doe^Jane", True),
        ("PatientName", "PN", "*jane", "Doe^Jane", True),
        ("PatientName", "PN", "D?e^*", "Doe^Jane", True),
        ("PatientName", "PN", "D?^*", "Doe^Jane", False),
        ("PatientName", "PN", "やまだ*", YAMADA, True),
        ("StudyDescription", "LO", "CT*", "CT Thorax", True),
        ("StudyDescription", "LO", "ct*", "CT Thorax", False),
        ("StudyDescription", "LO", "*", "", True),
        ("AccessionNumber", "SH", "A.B*", "A.B1", True),
        ("AccessionNumber", "SH", "A.B*", "AxB1", False),  # regex characters are literal
        # no wild cards for UIDs: the * is a character of the key
        ("StudyInstanceUID", "UI", "1.2*", "1.2.3", False),
        # list of UID matching (C.2.2.2.2)
        ("StudyInstanceUID", "UI", "1.2.3\\1.2.4", "1.2.4", True),
        ("StudyInstanceUID", "UI", MultiValue(str, ["1.2.3", "1.2.4"]), "1.2.5", False),
        # range matching (C.2.2.2.5)
        ("StudyDate", "DA", "20240101-20240131", "20240115", True),
        ("StudyDate", "DA", "20240101-20240131", "20240131", True),
        ("StudyDate", "DA", "20240101-20240131", "20240201", False),
        ("StudyDate", "DA", "20240101-", "20991231", True),
        ("StudyDate", "DA", "-20240101", "20240102", False),
        ("StudyDate", "DA", "20240101-20240131", "", False),  # no value never matches a range
        ("StudyDate", "DA", "20240101", "20240101", True),
        ("StudyTime", "TM", "0800-1000", "093000", True),
        ("StudyTime", "TM", "0800-10", "105959.5", True),  # a bound is as precise as written
        ("StudyTime", "TM", "0800-1000", "100100", False),
        ("StudyTime", "TM", "-08", "07:59:00", True),  # old-style colons
        ("AcquisitionDateTime", "DT", "20240101-20240102", "20240102235959", True),
        ("AcquisitionDateTime", "DT", "2023-2024", "20250101", False),
        # several values in the key or in the entity
        ("ModalitiesInStudy", "CS", "CT\\MR", ["MR", "SR"], True),
        ("ModalitiesInStudy", "CS", "CT\\MR", ["US"], False),
        ("ModalitiesInStudy", "CS", "MR", [], False),
        ("ImageType", "CS", "AXIAL", ["ORIGINAL", "PRIMARY", "AXIAL"], True),
        # numbers
        ("SeriesNumber", "IS", "2", 2, True),
        ("SeriesNumber", "IS", "2", 3, False),
    ],
)
def test_match_key(keyword: str, vr: str, key: object, value: object, expected: bool) -> None:
    assert match_key(keyword, vr, key, value) is expected


@pytest.mark.parametrize(
    ("keyword", "vr", "key", "value"),
    [
        ("StudyDate", "DA", "2024-01-01", "20240101"),
        ("StudyDate", "DA", "2024", "20240101"),
        ("StudyDate", "DA", "-", "20240101"),
        ("StudyDate", "DA", "20240101-20240102-20240103", "20240101"),
        ("StudyDate", "DA", "2024-01-01", ""),  # reported even when the entity has no date
        ("StudyTime", "TM", "25h", "120000"),
        ("AcquisitionDateTime", "DT", "2024x", "2024"),
    ],
)
def test_invalid_range_keys_name_the_attribute_and_the_rule(
    keyword: str, vr: str, key: str, value: str
) -> None:
    with pytest.raises(QueryKeyError) as raised:
        match_key(keyword, vr, key, value)
    assert raised.value.keyword == keyword
    assert str(raised.value).startswith(f"{keyword}: ")
    assert "A-B" in str(raised.value) or "range" in str(raised.value)
