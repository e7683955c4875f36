"""Date filters: from a date, and the last N days / calendar months / years."""

from __future__ import annotations

import datetime as dt

import pytest
from DicomServersLib.date_filters import DateRange, parse_last, server_date_range, subtract
from DicomServersLib.server import DicomServer


@pytest.mark.parametrize(
    ("today", "count", "unit", "expected"),
    [
        (dt.date(2026, 11, 27), 7, "days", dt.date(2026, 11, 20)),
        (dt.date(2026, 3, 31), 1, "months", dt.date(2026, 2, 28)),
        (dt.date(2024, 3, 31), 1, "months", dt.date(2024, 2, 29)),
        (dt.date(2026, 1, 15), 3, "months", dt.date(2025, 10, 15)),
        (dt.date(2024, 2, 29), 1, "years", dt.date(2023, 2, 28)),
        (dt.date(2026, 11, 27), 0, "days", dt.date(2026, 11, 27)),
    ],
)
def test_subtract_calendar(today: dt.date, count: int, unit: str, expected: dt.date) -> None:
    assert subtract(today, count, unit) == expected


def test_dicom_range_text() -> None:
    assert DateRange(dt.date(2024, 1, 2)).to_dicom() == "20240102-"
    assert DateRange(None, dt.date(2024, 1, 2)).to_dicom() == "-20240102"
    assert DateRange(dt.date(2024, 1, 1), dt.date(2024, 1, 1)).to_dicom() == "20240101"
    assert DateRange().to_dicom() == ""


def test_server_filters() -> None:
    today = dt.date(2026, 11, 27)
    server = DicomServer(date_filter="from_date", filter_from_date="2025-06-01")
    assert server_date_range(server, today).to_dicom() == "20250601-"
    server = DicomServer(
        date_filter="relative", filter_relative_count=3, filter_relative_unit="months"
    )
    assert server_date_range(server, today).to_dicom() == "20260827-"
    # The toggle is off: the remembered date is kept but not applied.
    server = DicomServer(date_filter="none", filter_from_date="2025-06-01")
    assert server_date_range(server, today).to_dicom() == ""


@pytest.mark.parametrize(
    ("text", "parsed"), [("7d", (7, "days")), ("3M", (3, "months")), ("1y", (1, "years"))]
)
def test_parse_last(text: str, parsed: tuple[int, str]) -> None:
    assert parse_last(text) == parsed


@pytest.mark.parametrize("text", ["0d", "7", "d7", "7w", ""])
def test_parse_last_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--last"):
        parse_last(text)
