"""Study, series and instance searches with C-FIND on the Study Root model (PS3.4 C.6.2).

- :func:`find_studies` lists studies matching :class:`~DicomServersLib.query_model.QueryFilters`
  (patient name and ID with wildcards, accession number, modality, study description, study
  UID) within a date range: the filters' own, else the server's date filter
  (:func:`~DicomServersLib.date_filters.server_date_range`: ``from_date`` → ``YYYYMMDD-``,
  ``relative`` → the last N days/months/years). The server's ``search_limit`` (or the filters'
  ``limit``) caps the list; the result says whether and why it was cut off.
- :func:`find_series` lists the series of one study.
- :func:`list_instances` lists the instances of a study (series by series, as the hierarchical
  model requires, PS3.4 C.4.1.3.1), for retrieve planning and resume.

Every request asks for answers in UTF-8 (SpecificCharacterSet ``ISO_IR 192``, which Orthanc and
most PACS honour) and decodes each answer with the character set it actually carries.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from DicomServersLib.date_filters import DateRange, server_date_range
from DicomServersLib.dicom_files import check_uid
from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.elements import TextDecoder, tag
from DicomServersLib.dimse.find import STUDY_ROOT_FIND, FindRun, FindSession, Match
from DicomServersLib.dimse.outcome import Failure
from DicomServersLib.progress import ProgressCallback
from DicomServersLib.query_model import (
    CUT_OFF_ERROR,
    QueryFilters,
    QueryResult,
    SeriesRecord,
    StudyRecord,
)
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import ValidationError, check_field

__all__ = [
    "InstanceListing",
    "InstanceRecord",
    "check_filters",
    "find_series",
    "instance_identifier",
    "series_identifier",
    "find_studies",
    "list_instances",
    "require_server_fields",
    "study_identifier",
]

UTF8 = "ISO_IR 192"

# (keyword, VR) of the keys we send and read back; the VR decodes implicit-VR answers.
_KEYS: dict[int, tuple[str, str]] = {
    tag(0x0008, 0x0005): ("SpecificCharacterSet", "CS"),
    tag(0x0008, 0x0016): ("SOPClassUID", "UI"),
    tag(0x0008, 0x0018): ("SOPInstanceUID", "UI"),
    tag(0x0008, 0x0020): ("StudyDate", "DA"),
    tag(0x0008, 0x0021): ("SeriesDate", "DA"),
    tag(0x0008, 0x0030): ("StudyTime", "TM"),
    tag(0x0008, 0x0031): ("SeriesTime", "TM"),
    tag(0x0008, 0x0050): ("AccessionNumber", "SH"),
    tag(0x0008, 0x0052): ("QueryRetrieveLevel", "CS"),
    tag(0x0008, 0x0054): ("RetrieveAETitle", "AE"),
    tag(0x0008, 0x0060): ("Modality", "CS"),
    tag(0x0008, 0x0061): ("ModalitiesInStudy", "CS"),
    tag(0x0008, 0x0090): ("ReferringPhysicianName", "PN"),
    tag(0x0008, 0x1030): ("StudyDescription", "LO"),
    tag(0x0008, 0x103E): ("SeriesDescription", "LO"),
    tag(0x0010, 0x0010): ("PatientName", "PN"),
    tag(0x0010, 0x0020): ("PatientID", "LO"),
    tag(0x0010, 0x0030): ("PatientBirthDate", "DA"),
    tag(0x0010, 0x0040): ("PatientSex", "CS"),
    tag(0x0020, 0x000D): ("StudyInstanceUID", "UI"),
    tag(0x0020, 0x000E): ("SeriesInstanceUID", "UI"),
    tag(0x0020, 0x0010): ("StudyID", "SH"),
    tag(0x0020, 0x0011): ("SeriesNumber", "IS"),
    tag(0x0020, 0x0013): ("InstanceNumber", "IS"),
    tag(0x0020, 0x1206): ("NumberOfStudyRelatedSeries", "IS"),
    tag(0x0020, 0x1208): ("NumberOfStudyRelatedInstances", "IS"),
    tag(0x0020, 0x1209): ("NumberOfSeriesRelatedInstances", "IS"),
}
_TAG_OF = {keyword: element_tag for element_tag, (keyword, _) in _KEYS.items()}


class _Answer:
    """Typed access to one C-FIND answer's elements."""

    __slots__ = ("decoder", "elements")

    def __init__(self, match: Match) -> None:
        self.elements = match.elements
        self.decoder = TextDecoder.for_elements(self.elements)

    def text(self, keyword: str) -> str:
        element_tag = _TAG_OF[keyword]
        found = self.elements.get(element_tag)
        if found is None:
            return ""
        vr, raw = found
        return self.decoder.value(vr.decode("ascii", "replace") or _KEYS[element_tag][1], raw)

    def values(self, keyword: str) -> list[str]:
        return [v.strip() for v in self.text(keyword).split("\\") if v.strip()]

    def integer(self, keyword: str) -> int | None:
        text = self.text(keyword)
        try:
            return int(text)
        except ValueError:
            return None


# -- input rules ----------------------------------------------------------------------------

_TEXT_LIMITS = {
    "patient_name": 64 * 3 + 2,  # three component groups of up to 64 characters
    "patient_id": 64,
    "accession_number": 16,
    "study_description": 64,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MODALITY = re.compile(r"^[A-Z0-9 _*?]{1,16}$")


def check_filters(filters: QueryFilters) -> list[tuple[str, str]]:
    """Check search filters; return ``(field, message)`` pairs (empty when valid).

    Text filters may use the DICOM wildcards ``*`` and ``?`` (PS3.4 C.2.2.2.4) but no
    backslash (it would make a list of values) and no control characters; their lengths are
    those of their VRs (PS3.5 §6.2). The modality is a code string such as ``CT``; the study
    UID must be a valid UID.
    """
    errors: list[tuple[str, str]] = []
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(filters, name)
        if not isinstance(value, str):
            errors.append((name, f"{name}: must be text"))
        elif "\\" in value:
            errors.append((name, f"{name}: must not contain a backslash"))
        elif _CONTROL.search(value):
            errors.append((name, f"{name}: must not contain control characters"))
        elif len(value) > limit:
            errors.append((name, f"{name}: at most {limit} characters, got {len(value)}"))
    if filters.modality and not _MODALITY.match(filters.modality.upper()):
        errors.append(("modality", "modality: a code such as CT or MR (letters, digits, up to 16)"))
    if filters.study_uid:
        ok, reason = check_uid(filters.study_uid)
        if not ok:
            errors.append(("study_uid", f"study_uid: {reason}"))
    if filters.limit is not None and (not isinstance(filters.limit, int) or filters.limit < 0):
        errors.append(("limit", f"limit: must be 0 (no limit) or more, got {filters.limit!r}"))
    return errors


def require_server_fields(server: DicomServer, fields: Iterable[str]) -> None:
    """Raise :class:`ValidationError` if any of a server's fields breaks its rule.

    Parameters
    ----------
    server : DicomServer
        The server about to be used.
    fields : iterable of str
        The fields the operation relies on (e.g. ``host``, ``port``, ``called_ae_title``).
    """
    errors = []
    for name in fields:
        ok, reason = check_field(name, getattr(server, name))
        if not ok:
            errors.append((name, reason))
        elif name in ("worklist_ae_title", "move_destination_ae_title") and not getattr(
            server, name
        ):
            errors.append((name, f"{name}: is required for this operation"))
    if errors:
        raise ValidationError(errors)


NETWORK_FIELDS = ("called_ae_title", "host", "port", "calling_ae_title", "timeout_s")


# -- identifiers ----------------------------------------------------------------------------


def study_identifier(filters: QueryFilters, date_range: DateRange) -> Dataset:
    """Return the study-level C-FIND identifier for filters and a date range.

    Parameters
    ----------
    filters : QueryFilters
        Matching keys; empty fields are return keys only.
    date_range : DateRange
        StudyDate range matching (PS3.4 C.2.2.2.5); an open range sends no date key.

    Returns
    -------
    pydicom.dataset.Dataset
        The identifier.
    """
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyDate = date_range.to_dicom()
    ds.StudyTime = ""
    ds.AccessionNumber = filters.accession_number
    ds.ModalitiesInStudy = filters.modality.upper()
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = filters.study_description
    ds.PatientName = filters.patient_name
    ds.PatientID = filters.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = filters.study_uid
    ds.StudyID = ""
    ds.NumberOfStudyRelatedSeries = None
    ds.NumberOfStudyRelatedInstances = None
    return ds


def series_identifier(study_uid: str, series_uid: str = "") -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.QueryRetrieveLevel = "SERIES"
    ds.SeriesDate = ""
    ds.SeriesTime = ""
    ds.Modality = ""
    ds.SeriesDescription = ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = None
    ds.NumberOfSeriesRelatedInstances = None
    return ds


def instance_identifier(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.SOPClassUID = ""
    ds.SOPInstanceUID = ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.InstanceNumber = None
    return ds


def _study_record(answer: _Answer) -> StudyRecord:
    return StudyRecord(
        study_uid=answer.text("StudyInstanceUID"),
        patient_name=answer.text("PatientName"),
        patient_id=answer.text("PatientID"),
        patient_birth_date=answer.text("PatientBirthDate"),
        study_date=answer.text("StudyDate"),
        study_time=answer.text("StudyTime"),
        accession_number=answer.text("AccessionNumber"),
        study_description=answer.text("StudyDescription"),
        modalities=answer.values("ModalitiesInStudy"),
        series_count=answer.integer("NumberOfStudyRelatedSeries"),
        instance_count=answer.integer("NumberOfStudyRelatedInstances"),
        extra={
            key: value
            for key, value in (
                ("patient_sex", answer.text("PatientSex")),
                ("referring_physician_name", answer.text("ReferringPhysicianName")),
                ("study_id", answer.text("StudyID")),
                ("retrieve_ae_title", answer.text("RetrieveAETitle")),
            )
            if value
        },
    )


def _series_record(answer: _Answer, study_uid: str) -> SeriesRecord:
    return SeriesRecord(
        study_uid=answer.text("StudyInstanceUID") or study_uid,
        series_uid=answer.text("SeriesInstanceUID"),
        modality=answer.text("Modality"),
        series_number=answer.text("SeriesNumber"),
        series_description=answer.text("SeriesDescription"),
        instance_count=answer.integer("NumberOfSeriesRelatedInstances"),
        extra={
            key: value
            for key, value in (
                ("series_date", answer.text("SeriesDate")),
                ("series_time", answer.text("SeriesTime")),
            )
            if value
        },
    )


def _apply(result: QueryResult, run: FindRun) -> None:
    result.status = run.status
    result.cut_off = run.cut_off or result.cut_off
    if run.failure is not None:
        result.ok = False
        result.diagnosis = run.failure.diagnosis
        result.status = run.failure.status if run.failure.status is not None else run.status
        if not result.cut_off:
            result.cut_off = CUT_OFF_ERROR


def _failed(result: QueryResult, failure: Failure) -> QueryResult:
    result.ok = False
    result.diagnosis = failure.diagnosis
    result.status = failure.status
    return result


# -- searches -------------------------------------------------------------------------------


def find_studies(
    server: DicomServer,
    filters: QueryFilters | None = None,
    *,
    timeouts: Timeouts | None = None,
    progress: ProgressCallback | None = None,
    today: _dt.date | None = None,
) -> QueryResult:
    """Search a server's studies (C-FIND, Study Root, STUDY level).

    Parameters
    ----------
    server : DicomServer
        The server; its date filter applies unless ``filters.date_range`` is set, and its
        ``search_limit`` unless ``filters.limit`` is set.
    filters : QueryFilters, optional
        What to match; defaults to everything.
    timeouts : Timeouts, optional
        Defaults to the server's timeout.
    progress : ProgressCallback, optional
        Told the number of studies so far; returning False cancels (C-CANCEL).
    today : datetime.date, optional
        "Today" for relative date filters (tests).

    Returns
    -------
    QueryResult
        The studies, in the order the server sent them, with the cut-off reason or the
        diagnosis of a failure.

    Raises
    ------
    ValidationError
        Invalid filters or server fields (misuse).
    """
    filters = filters or QueryFilters()
    require_server_fields(server, NETWORK_FIELDS)
    errors = check_filters(filters)
    if errors:
        raise ValidationError(errors)
    date_range = (
        filters.date_range if filters.date_range is not None else server_date_range(server, today)
    )
    limit = server.search_limit if filters.limit is None else filters.limit
    result = QueryResult(limit=limit)
    started = time.monotonic()
    with FindSession(server, [STUDY_ROOT_FIND], timeouts or Timeouts.for_server(server)) as session:
        if session.failure is not None:
            _failed(result, session.failure)
        else:
            run = session.find(
                STUDY_ROOT_FIND,
                study_identifier(filters, date_range),
                lambda match: result.studies.append(_study_record(_Answer(match))),
                limit=limit,
                progress=progress,
                what="studies",
            )
            _apply(result, run)
    result.duration_s = time.monotonic() - started
    return result


def find_series(
    server: DicomServer,
    study_uid: str,
    *,
    timeouts: Timeouts | None = None,
    progress: ProgressCallback | None = None,
) -> QueryResult:
    """List the series of one study (C-FIND, Study Root, SERIES level).

    Parameters
    ----------
    server : DicomServer
        The server.
    study_uid : str
        The study's StudyInstanceUID.
    timeouts : Timeouts, optional
        Defaults to the server's timeout.
    progress : ProgressCallback, optional
        Told the number of series so far; returning False cancels.

    Returns
    -------
    QueryResult
        ``series`` holds the series (no limit: a study's series are always listed whole).

    Raises
    ------
    ValidationError
        Invalid study UID or server fields (misuse).
    """
    require_server_fields(server, NETWORK_FIELDS)
    ok, reason = check_uid(study_uid)
    if not ok:
        raise ValidationError([("study_uid", f"study_uid: {reason}")])
    result = QueryResult(limit=0)
    started = time.monotonic()
    with FindSession(server, [STUDY_ROOT_FIND], timeouts or Timeouts.for_server(server)) as session:
        if session.failure is not None:
            _failed(result, session.failure)
        else:
            run = session.find(
                STUDY_ROOT_FIND,
                series_identifier(study_uid),
                lambda match: result.series.append(_series_record(_Answer(match), study_uid)),
                progress=progress,
                what="series",
            )
            _apply(result, run)
    result.duration_s = time.monotonic() - started
    return result


@dataclass(frozen=True)
class InstanceRecord:
    """One instance as listed by the server."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str = ""
    instance_number: int | None = None


@dataclass
class InstanceListing:
    """The instances of a study (or of some of its series).

    Attributes
    ----------
    instances : list of InstanceRecord
        Every instance listed.
    series : list of SeriesRecord
        The series listed (all of the study's, or those asked for).
    complete : bool
        True when every series was listed without a cut-off: only then may a retrieve skip
        instances already on disk by asking for the missing ones alone.
    failure : Failure or None
        Why the listing failed, if it did.
    """

    instances: list[InstanceRecord] = field(default_factory=list)
    series: list[SeriesRecord] = field(default_factory=list)
    complete: bool = True
    failure: Failure | None = None

    @property
    def sop_classes(self) -> list[str]:
        """The distinct SOP Class UIDs listed, sorted."""
        return sorted({i.sop_class_uid for i in self.instances if i.sop_class_uid})


def list_instances(
    server: DicomServer,
    study_uid: str,
    series_uids: Iterable[str] = (),
    *,
    timeouts: Timeouts | None = None,
) -> InstanceListing:
    """List the instances of a study, series by series, on one association.

    Parameters
    ----------
    server : DicomServer
        The server.
    study_uid : str
        The study.
    series_uids : iterable of str, optional
        Only these series (default: all of the study's).
    timeouts : Timeouts, optional
        Defaults to the server's timeout.

    Returns
    -------
    InstanceListing
        The instances; ``complete`` is False if a series could not be listed whole.
    """
    listing = InstanceListing()
    wanted = list(series_uids)
    with FindSession(server, [STUDY_ROOT_FIND], timeouts or Timeouts.for_server(server)) as session:
        if session.failure is not None:
            listing.complete = False
            listing.failure = session.failure
            return listing
        series_result = QueryResult()
        run = session.find(
            STUDY_ROOT_FIND,
            series_identifier(study_uid),
            lambda match: series_result.series.append(_series_record(_Answer(match), study_uid)),
        )
        if not run.ok or run.cut_off:
            listing.complete = False
            listing.failure = run.failure
            return listing
        listing.series = [
            s for s in series_result.series if not wanted or s.series_uid in set(wanted)
        ]
        if wanted and len(listing.series) != len(set(wanted)):
            listing.complete = False  # a series asked for is not on the server (yet)
        for series in listing.series:
            if session.assoc is None:
                listing.complete = False
                break

            def add(match: Match, series_uid: str = series.series_uid) -> None:
                answer = _Answer(match)
                listing.instances.append(
                    InstanceRecord(
                        study_uid=study_uid,
                        series_uid=answer.text("SeriesInstanceUID") or series_uid,
                        sop_uid=answer.text("SOPInstanceUID"),
                        sop_class_uid=answer.text("SOPClassUID"),
                        instance_number=answer.integer("InstanceNumber"),
                    )
                )

            before = len(listing.instances)
            run = session.find(
                STUDY_ROOT_FIND, instance_identifier(study_uid, series.series_uid), add
            )
            listed = len(listing.instances) - before
            if (
                not run.ok
                or run.cut_off
                or (series.instance_count is not None and listed < series.instance_count)
            ):
                listing.complete = False
                listing.failure = run.failure
    return listing
