"""The REST backend of :mod:`DicomServersLib.dispatch`: searches and retrieves over REST.

:mod:`~DicomServersLib.dispatch` imports this module the first time a call goes over REST
(the server has ``rest_enabled``, or ``via="rest"`` / the CLI's ``--via rest``) and uses
:data:`BACKEND`. Searches are capped by ``search_limit`` and say when they were cut off;
retrieves use WADO-RS or Orthanc's ``/instances/{id}/file`` with atomic files and resume.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from DicomServersLib.progress import Progress, ProgressCallback, report
from DicomServersLib.query_model import CUT_OFF_CANCELLED, QueryFilters, QueryResult
from DicomServersLib.rest.query import search_series, search_studies
from DicomServersLib.rest.retrieve import retrieve_study
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import RetrieveResult
from DicomServersLib.validation import ValidationError, check_url

__all__ = ["BACKEND", "RestBackend"]


def require_rest_url(server: DicomServer) -> None:
    """Refuse a REST call for a server without a valid PACS REST URL.

    Raises
    ------
    ValidationError
        ``rest_url`` is empty or invalid (the message names the field and the rule).
    """
    ok, reason = check_url(server.rest_url)
    if not ok:
        raise ValidationError(
            [("rest_url", f"PACS REST URL (rest_url) {reason}: needed to use the REST API")]
        )


class RestBackend:
    """Serves :mod:`DicomServersLib.dispatch` calls over the server's REST API."""

    def query_studies(
        self,
        server: DicomServer,
        filters: QueryFilters,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """See :func:`DicomServersLib.rest.query.search_studies`."""
        require_rest_url(server)
        if not report(progress, Progress(message=f"Searching {server.name}")):
            return QueryResult(
                ok=False, cut_off=CUT_OFF_CANCELLED, diagnosis="The search was cancelled."
            )
        result = search_studies(server, filters)
        report(progress, Progress(completed=len(result.studies), remaining=0))
        return result

    def query_series(
        self,
        server: DicomServer,
        study_uid: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """See :func:`DicomServersLib.rest.query.search_series`."""
        require_rest_url(server)
        return search_series(server, study_uid)

    def retrieve(
        self,
        server: DicomServer,
        study_uid: str,
        dest: Path,
        *,
        series_uids: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> RetrieveResult:
        """See :func:`DicomServersLib.rest.retrieve.retrieve_study`."""
        require_rest_url(server)
        return retrieve_study(server, study_uid, dest, series_uids=series_uids, progress=progress)


#: The instance :mod:`DicomServersLib.dispatch` uses.
BACKEND = RestBackend()
