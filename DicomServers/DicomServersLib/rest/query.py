"""Searching a server's whole database over REST, capped by the search limit.

The REST side of the ``query`` command and of the study browser's search: Orthanc
``/tools/find`` or DICOMweb QIDO-RS with the :class:`~DicomServersLib.query_model.QueryFilters`
fields, the server's date filter sent to the server as a StudyDate range, and at most
``search_limit`` studies (0 = no limit). One more study than the limit is asked for, so a list
that was cut off says so (``cut_off`` ``our_limit``); a DICOMweb server that cuts the answer
itself says so in a ``Warning`` header (``server_limit``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from DicomServersLib.date_filters import server_date_range
from DicomServersLib.query_model import (
    CUT_OFF_OUR_LIMIT,
    CUT_OFF_SERVER_LIMIT,
    QueryFilters,
    QueryResult,
    StudyRecord,
)
from DicomServersLib.rest.cache import sort_key
from DicomServersLib.rest.diagnosis import MALFORMED_ANSWER, RestError, malformed_answer
from DicomServersLib.rest.dicomweb import DicomwebClient, iter_pages
from DicomServersLib.rest.dicomweb import series_record as dicomweb_series
from DicomServersLib.rest.dicomweb import study_record as dicomweb_study
from DicomServersLib.rest.orthanc import OrthancClient
from DicomServersLib.rest.orthanc import series_record as orthanc_series
from DicomServersLib.rest.orthanc import study_record as orthanc_study
from DicomServersLib.rest.session import build_session, rest_base_url
from DicomServersLib.server import DicomServer

#: QIDO-RS page size when there is no search limit.
QIDO_PAGE = 1000

#: QueryFilters field to DICOM keyword (Orthanc /tools/find and QIDO-RS use the keywords).
FILTER_KEYWORDS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "accession_number": "AccessionNumber",
    "modality": "ModalitiesInStudy",
    "study_description": "StudyDescription",
    "study_uid": "StudyInstanceUID",
}


def matching_keys(server: DicomServer, filters: QueryFilters) -> dict[str, str]:
    """Return the matching attributes of a study search (keyword to DICOM matching value).

    The date range is the filters' own, else the server's date filter.
    """
    keys = {
        keyword: str(getattr(filters, name)).strip()
        for name, keyword in FILTER_KEYWORDS.items()
        if str(getattr(filters, name)).strip()
    }
    date_range = filters.date_range if filters.date_range is not None else server_date_range(server)
    if date_range.to_dicom():
        keys["StudyDate"] = date_range.to_dicom()
    return keys


def effective_limit(server: DicomServer, filters: QueryFilters) -> int:
    """Return the limit in force: the filters' own, else the server's ``search_limit``."""
    return max(0, int(filters.limit if filters.limit is not None else server.search_limit))


@contextmanager
def _answering(
    server: DicomServer, session: requests.Session | None, result: QueryResult
) -> Iterator[requests.Session]:
    """Give a search its session (ours unless one is passed) and turn failures into values.

    A :class:`RestError` or a malformed answer ends the search with ``ok`` False and a
    diagnosis in ``result``; the session is closed if we opened it; the duration is recorded.
    """
    started = time.monotonic()
    own = session is None
    active = session if session is not None else build_session(server)
    try:
        yield active
    except RestError as error:
        result.ok = False
        result.diagnosis = error.diagnosis
    except MALFORMED_ANSWER as error:
        result.ok = False
        result.diagnosis = malformed_answer(rest_base_url(server), error).diagnosis
    finally:
        if own:
            active.close()
        result.duration_s = time.monotonic() - started


def search_studies(
    server: DicomServer,
    filters: QueryFilters | None = None,
    *,
    session: requests.Session | None = None,
) -> QueryResult:
    """Search the server's whole database over REST, at most ``search_limit`` studies.

    Parameters
    ----------
    server : DicomServer
        Uses ``rest_flavor``, ``rest_url``, credentials, ``search_limit`` and the date filter.
    filters : QueryFilters, optional
        What to match (empty: every study in the date filter).
    session : requests.Session, optional
        Default: :func:`~DicomServersLib.rest.session.build_session`.

    Returns
    -------
    QueryResult
        Studies most recent first; ``cut_off`` says whether (and by which limit) the list was
        cut. A failure gives ``ok`` False with a diagnosis.
    """
    filters = filters or QueryFilters()
    limit = effective_limit(server, filters)
    result = QueryResult(limit=limit)
    keys = matching_keys(server, filters)
    with _answering(server, session, result) as active:
        records: list[StudyRecord]
        if server.rest_flavor == "dicomweb":
            client = DicomwebClient(active, rest_base_url(server))
            if limit:
                # One request: a server that cuts the answer itself says so in a Warning.
                page = client.search_studies(keys, limit=limit + 1)
                records = [dicomweb_study(item) for item in page.items]
                if page.more_on_server and len(records) <= limit:
                    result.cut_off = CUT_OFF_SERVER_LIMIT
            else:
                records = []
                for page in iter_pages(client, keys, QIDO_PAGE):
                    records += [dicomweb_study(item) for item in page.items]
        else:
            orthanc = OrthancClient(active, rest_base_url(server))
            answers = orthanc.find("Study", keys, expand=True, limit=limit + 1 if limit else 0)
            records = [orthanc_study(a) for a in answers]
        records = [r for r in records if r.study_uid]
        if limit and len(records) > limit:
            result.cut_off = CUT_OFF_OUR_LIMIT
            records = records[:limit]
        ordered = sorted(records, key=lambda r: r.study_uid)
        result.studies = sorted(ordered, key=sort_key, reverse=True)
    return result


def search_series(
    server: DicomServer,
    study_uid: str,
    *,
    session: requests.Session | None = None,
) -> QueryResult:
    """List the series of one study over REST (Orthanc ``/studies/{id}/series`` or QIDO-RS)."""
    result = QueryResult()
    with _answering(server, session, result) as active:
        if server.rest_flavor == "dicomweb":
            client = DicomwebClient(active, rest_base_url(server))
            page = client.search_series(study_uid)
            result.series = [dicomweb_series(item, study_uid) for item in page.items]
        else:
            orthanc = OrthancClient(active, rest_base_url(server))
            study_id = orthanc.lookup(study_uid, "Study")
            if study_id is None:
                result.ok = False
                result.diagnosis = f"The study {study_uid} is not on the server (any more)."
            else:
                result.series = [
                    orthanc_series(s, study_uid) for s in orthanc.study_series(study_id)
                ]
        result.series.sort(key=lambda s: (_number(s.series_number), s.series_uid))
    return result


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 1 << 30
