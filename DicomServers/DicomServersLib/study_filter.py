"""Searching a list of studies held locally (a PACS storage folder's index) like a PACS would.

The folder mode lists studies from :class:`~DicomServersLib.folder_index.FolderIndex` instead
of asking the server; its search fields must behave as a C-FIND on the server would, so the
matching is the one of the demo PACS (:func:`DicomServersLib.demo_pacs.matching.match_key`,
PS3.4 C.2.2.2: ``*``/``?`` wildcards, case-insensitive person names, a study without a date
never inside a date range) and the search limit cuts the list the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from .date_filters import DateRange
from .demo_pacs.matching import match_key
from .query_model import CUT_OFF_OUR_LIMIT, QueryFilters, QueryResult, StudyRecord

# QueryFilters field → (DICOM keyword, VR, StudyRecord attribute)
_TEXT_KEYS = (
    ("patient_name", "PatientName", "PN", "patient_name"),
    ("patient_id", "PatientID", "LO", "patient_id"),
    ("accession_number", "AccessionNumber", "SH", "accession_number"),
    ("study_description", "StudyDescription", "LO", "study_description"),
    ("study_uid", "StudyInstanceUID", "UI", "study_uid"),
)


def study_matches(study: StudyRecord, filters: QueryFilters, date_range: DateRange) -> bool:
    """Return True when ``study`` matches the search fields and the date range.

    Parameters
    ----------
    study : StudyRecord
        A study of the local list.
    filters : QueryFilters
        The search fields; empty fields match everything.
    date_range : DateRange
        StudyDate range (PS3.4 C.2.2.2.5); an open range matches every study, a closed or
        half-open one never matches a study without a date.

    Raises
    ------
    DicomServersLib.demo_pacs.matching.QueryKeyError
        A key breaks the rules of its VR.
    """
    for name, keyword, vr, attribute in _TEXT_KEYS:
        key = str(getattr(filters, name)).strip()
        if key and not match_key(keyword, vr, key, getattr(study, attribute)):
            return False
    modality = filters.modality.strip().upper()
    if modality and not match_key("ModalitiesInStudy", "CS", modality, list(study.modalities)):
        return False
    key = date_range.to_dicom()
    return not key or match_key("StudyDate", "DA", key, study.study_date)


def search_local(
    studies: Iterable[StudyRecord],
    filters: QueryFilters,
    date_range: DateRange,
    limit: int,
) -> QueryResult:
    """Return the studies that match, at most ``limit`` of them (0: no limit).

    The result is cut off by ``our_limit`` when more studies matched than the limit.
    """
    result = QueryResult(limit=limit)
    for study in studies:
        if not study_matches(study, filters, date_range):
            continue
        if limit and len(result.studies) >= limit:
            result.cut_off = CUT_OFF_OUR_LIMIT
            break
        result.studies.append(study)
    return result
