"""Every validation rule, from parametrized tables: (value, ok, words the reason must contain)."""

from __future__ import annotations

import pytest
from DicomServersLib import validation as v
from DicomServersLib.server import FIELD_NAMES, DicomServer

AE_CASES = [
    ("PACS", True, ""),
    ("A", True, ""),
    ("SIXTEEN_CHARS_AE", True, ""),
    ("SEVENTEEN_CHARS_A", False, "16 characters"),
    ("", False, "empty"),
    ("    ", False, "only spaces"),
    ("BAD\\AE", False, "backslash"),
    ("TAB\tAE", False, "control"),
    ("NUL\x00", False, "control"),
    ("ÄRZTE", False, "ASCII"),
    (" PADDED ", True, ""),
]


@pytest.mark.parametrize(("value", "ok", "words"), AE_CASES)
def test_ae_title(value: str, ok: bool, words: str) -> None:
    result, reason = v.check_ae_title(value)
    assert result is ok
    assert words in reason


def test_optional_ae_title_accepts_empty() -> None:
    assert v.check_ae_title("", optional=True) == (True, "")
    assert v.check_ae_title("   ", optional=True)[0] is False


@pytest.mark.parametrize(
    ("value", "ok", "words"),
    [
        (1, True, ""),
        (104, True, ""),
        (65535, True, ""),
        (0, False, "1 to 65535"),
        (65536, False, "1 to 65535"),
        (-5, False, "1 to 65535"),
        (True, False, "whole number"),
        ("104", False, "whole number"),
        (10.5, False, "whole number"),
    ],
)
def test_port(value: object, ok: bool, words: str) -> None:
    result, reason = v.check_port(value)
    assert result is ok
    assert words in reason


@pytest.mark.parametrize(
    ("value", "ok", "words"),
    [
        ("127.0.0.1", True, ""),
        ("10.0.0.5", True, ""),
        ("::1", True, ""),
        ("[fe80::1]", True, ""),
        ("2001:db8::42", True, ""),
        ("localhost", True, ""),
        ("pacs.hospital.example.org", True, ""),
        ("pacs-01", True, ""),
        ("", False, "empty"),
        ("256.1.1.1", False, "IPv4"),
        ("1.2.3", False, "IPv4"),
        ("fe80::zz", False, "IPv6"),
        ("-bad.example", False, "host name"),
        ("under_score.example", False, "host name"),
        ("a" * 64 + ".org", False, "host name"),
        ("has space", False, "host name"),
    ],
)
def test_host(value: str, ok: bool, words: str) -> None:
    result, reason = v.check_host(value)
    assert result is ok, reason
    assert words in reason


@pytest.mark.parametrize(
    ("value", "ok", "words"),
    [
        ("http://pacs:8042", True, ""),
        ("https://pacs.example.org/dicom-web", True, ""),
        ("10.0.0.5:8042", True, ""),
        ("pacs.example.org", True, ""),
        ("ftp://pacs", False, "http"),
        ("http://", False, "host"),
        ("http://bad_host:80", False, "host"),
        ("http://pacs:99999", False, "port"),
        ("", False, "empty"),
    ],
)
def test_url(value: str, ok: bool, words: str) -> None:
    result, reason = v.check_url(value)
    assert result is ok, reason
    assert words in reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5", "http://10.0.0.5"),
        ("pacs:8042/", "http://pacs:8042"),
        (" https://x.org/dicom-web/ ", "https://x.org/dicom-web"),
    ],
)
def test_url_normalised(text: str, expected: str) -> None:
    assert v.normalize_url(text) == expected
    assert v.parse_field("rest_url", text) == (expected, "")


@pytest.mark.parametrize(
    ("rule", "value", "ok"),
    [
        (v.check_non_negative_int, 0, True),
        (v.check_non_negative_int, 5000, True),
        (v.check_non_negative_int, -1, False),
        (v.check_non_negative_int, 1.5, False),
        (v.check_positive_int, 1, True),
        (v.check_positive_int, 0, False),
        (v.check_timeout, 0.5, True),
        (v.check_timeout, 0, False),
        (v.check_timeout, 3601, False),
    ],
)
def test_numbers(rule: object, value: object, ok: bool) -> None:
    assert rule(value)[0] is ok  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "ok", "words"),
    [
        ("2024-02-29", True, ""),
        ("2023-02-29", False, "not a real calendar date"),
        ("2024-13-01", False, "not a real calendar date"),
        ("20240101", False, "YYYY-MM-DD"),
        ("2024-1-1", False, "YYYY-MM-DD"),
    ],
)
def test_date(value: str, ok: bool, words: str) -> None:
    result, reason = v.check_date(value)
    assert result is ok
    assert words in reason


@pytest.mark.parametrize(
    ("value", "ok", "words"),
    [
        ("/srv/orthanc/storage", True, ""),
        ("~/pacs", True, ""),
        ("relative/folder", False, "absolute"),
        ("/bad\x00path", False, "control"),
    ],
)
def test_folder(value: str, ok: bool, words: str) -> None:
    result, reason = v.check_folder(value)
    assert result is ok
    assert words in reason


def test_every_field_has_a_rule() -> None:
    assert set(v.FIELD_RULES) == set(FIELD_NAMES)
    assert v.check_server(DicomServer()) == []


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("port", " 104 ", 104),
        ("rest_enabled", "yes", True),
        ("rest_enabled", "OFF", False),
        ("timeout_s", "12.5", 12.5),
        ("called_ae_title", " ORTHANC ", "ORTHANC"),
        ("filter_relative_unit", "months", "months"),
    ],
)
def test_parse_field(field: str, text: str, value: object) -> None:
    assert v.parse_field(field, text) == (value, "")


@pytest.mark.parametrize(
    ("field", "text", "words"),
    [
        ("port", "abc", "Remote port (port): must be a whole number"),
        ("port", "0", "Remote port (port): must be from 1 to 65535"),
        ("rest_enabled", "maybe", "PACS REST API (rest_enabled): must be true or false"),
        ("retrieve_method", "c-send", "retrieve_method): must be one of c-get, c-move"),
        ("nonsense", "1", "nonsense: unknown field"),
        ("filter_from_date", "2023-02-30", "Filter by Date (filter_from_date)"),
    ],
)
def test_parse_field_messages_name_field_and_rule(field: str, text: str, words: str) -> None:
    value, reason = v.parse_field(field, text)
    assert value is None
    assert words in reason


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rest_enabled": True, "rest_url": ""}, "rest_url"),
        ({"load_mode": "folder", "storage_folder": ""}, "storage_folder"),
        ({"date_filter": "from_date", "filter_from_date": ""}, "filter_from_date"),
        (
            {"retrieve_method": "c-move", "move_destination_ae_title": ""},
            "move_destination_ae_title",
        ),
    ],
)
def test_toggle_requires_its_field(changes: dict[str, object], field: str) -> None:
    errors = v.check_server(DicomServer(**changes))  # type: ignore[arg-type]
    assert [f for f, _ in errors] == [field]


@pytest.mark.parametrize(
    "changes",
    [
        {"rest_enabled": False, "rest_url": ""},
        {"load_mode": "auto", "storage_folder": ""},
        {"date_filter": "none", "filter_from_date": ""},
    ],
)
def test_fields_behind_an_off_toggle_may_stay_empty(changes: dict[str, object]) -> None:
    assert v.check_server(DicomServer(**changes)) == []  # type: ignore[arg-type]


def test_names_unique_ignoring_case_and_spaces() -> None:
    assert v.check_names_unique(["A", "b"]) == []
    errors = v.check_names_unique(["Main", " main "])
    assert errors and "already used" in errors[0][1]
