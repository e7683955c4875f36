"""What a search asks for and what it returns, whatever the protocol (DIMSE C-FIND, Orthanc
REST, DICOMweb QIDO-RS). The study browser, the CLI and the Slicer console all use these values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .date_filters import DateRange

#: Why a result list stopped early.
CUT_OFF_OUR_LIMIT = "our_limit"  # the server's search_limit / rest_limit setting
CUT_OFF_SERVER_LIMIT = "server_limit"  # the PACS' own limit (e.g. Orthanc LimitFindResults)
CUT_OFF_CANCELLED = "cancelled"  # the user cancelled
CUT_OFF_ERROR = "error"  # the connection failed part-way


@dataclass
class QueryFilters:
    """Search fields; empty means "any". ``date_range`` None means the server's own filter."""

    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""
    modality: str = ""
    study_description: str = ""
    study_uid: str = ""
    date_range: DateRange | None = None
    limit: int | None = None  # None: the server's search_limit; 0: no limit


@dataclass
class SeriesRecord:
    """One series as listed by the server."""

    study_uid: str
    series_uid: str
    modality: str = ""
    series_number: str = ""
    series_description: str = ""
    instance_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return asdict(self)


@dataclass
class StudyRecord:
    """One study as listed by the server."""

    study_uid: str
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    study_date: str = ""  # YYYYMMDD as in DICOM, "" when the study has none
    study_time: str = ""
    accession_number: str = ""
    study_description: str = ""
    modalities: list[str] = field(default_factory=list)
    series_count: int | None = None
    instance_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return asdict(self)


@dataclass
class QueryResult:
    """The outcome of a search: records, and whether (and why) the list was cut off.

    Network outcomes are values: ``ok`` is False with a plain-language ``diagnosis`` when the
    search failed; the records found before a failure are kept.
    """

    studies: list[StudyRecord] = field(default_factory=list)
    series: list[SeriesRecord] = field(default_factory=list)
    cut_off: str = ""  # "" or one of the CUT_OFF_* values
    limit: int = 0  # the limit in force (0 = none)
    ok: bool = True
    diagnosis: str = ""
    status: int | None = None  # last DICOM status, when there was one
    duration_s: float = 0.0

    @property
    def truncated(self) -> bool:
        """True when the server may hold more matches than returned."""
        return bool(self.cut_off)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "cut_off": self.cut_off,
            "limit": self.limit,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "studies": [s.to_dict() for s in self.studies],
            "series": [s.to_dict() for s in self.series],
        }
