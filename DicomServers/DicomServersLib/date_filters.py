"""The server's date filter as a study-date range (DICOM range matching, PS3.4 C.2.2.2.5).

``from_date`` gives ``YYYYMMDD-``; ``relative`` counts N days, months or years back from today,
with calendar months and years (31 March minus one month is 28 or 29 February). A study
without StudyDate does not match a date range on most PACS: the study browser says so.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from dataclasses import dataclass

from .server import RELATIVE_UNITS, DicomServer

_LAST = re.compile(r"^\s*(\d+)\s*([dmy])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "m": "months", "y": "years"}


@dataclass(frozen=True)
class DateRange:
    """A closed or open range of study dates; ``None`` ends are open."""

    start: _dt.date | None = None
    end: _dt.date | None = None

    def to_dicom(self) -> str:
        """Return the DICOM range matching text: ``YYYYMMDD-``, ``-YYYYMMDD``, ``A-B`` or ``""``."""
        if self.start is None and self.end is None:
            return ""
        start = self.start.strftime("%Y%m%d") if self.start else ""
        end = self.end.strftime("%Y%m%d") if self.end else ""
        if start and start == end:
            return start
        return f"{start}-{end}"

    def contains(self, value: _dt.date) -> bool:
        """Return True when ``value`` lies in the range."""
        return (self.start is None or value >= self.start) and (
            self.end is None or value <= self.end
        )


def subtract(today: _dt.date, count: int, unit: str) -> _dt.date:
    """Return ``today`` minus ``count`` days, calendar months or calendar years.

    Month and year arithmetic clamps the day to the target month's length.
    """
    if unit not in RELATIVE_UNITS:
        raise ValueError(f"unit must be one of {', '.join(RELATIVE_UNITS)}, got {unit!r}")
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if unit == "days":
        return today - _dt.timedelta(days=count)
    months = count if unit == "months" else 12 * count
    total = today.year * 12 + (today.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    day = min(today.day, calendar.monthrange(year, month)[1])
    return _dt.date(year, month, day)


def relative_range(count: int, unit: str, today: _dt.date | None = None) -> DateRange:
    """Return the range of the last ``count`` days/months/years up to today (open end)."""
    today = today or _dt.date.today()
    return DateRange(start=subtract(today, count, unit), end=None)


def parse_last(text: str) -> tuple[int, str]:
    """Parse ``7d``, ``3m`` or ``1y`` (the CLI's ``--last``) into ``(count, unit)``.

    Raises
    ------
    ValueError
        The text is not a positive number followed by d, m or y.
    """
    match = _LAST.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(
            f"--last: must be a number ≥ 1 followed by d, m or y (e.g. 7d), got {text!r}"
        )
    return int(match.group(1)), _UNITS[match.group(2).lower()]


def server_date_range(server: DicomServer, today: _dt.date | None = None) -> DateRange:
    """Return the date range of the server's own date filter (open when it is ``none``)."""
    if server.date_filter == "from_date" and server.filter_from_date:
        return DateRange(start=_dt.date.fromisoformat(server.filter_from_date))
    if server.date_filter == "relative":
        return relative_range(server.filter_relative_count, server.filter_relative_unit, today)
    return DateRange()
