"""Where a server's studies come from and how they get here, for the browser and the console.

The protocol is chosen in one place, :mod:`DicomServersLib.dispatch` (folder mode: the storage
folder with no network; REST when the PACS REST API is on; DIMSE otherwise). This module adds
what the study browser and the Slicer console need on top of it:

- a retrieve that can leave folder-mode files where they are (``dest`` None: Slicer indexes the
  PACS folder in place, :func:`DicomServersLib.folder_backend.retrieve_in_place`);
- a REST server's cached study list, shown at once, and its refresh (:mod:`.rest.cache`,
  :mod:`.rest.sync`);
- sending files back (REST when on, else C-STORE).

Network outcomes are values (``ok`` False with a plain-language diagnosis); misuse raises
:class:`~DicomServersLib.validation.ValidationError` naming the field.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import dispatch
from .date_filters import server_date_range
from .progress import ProgressCallback
from .query_model import QueryFilters, QueryResult, StudyRecord
from .server import DicomServer
from .transfer_model import RetrieveResult, SendResult
from .validation import ValidationError

if TYPE_CHECKING:
    from .rest.sync import SyncResult

SOURCE_FOLDER = "folder"
SOURCE_REST = "rest"
SOURCE_DIMSE = "dimse"


def source_of(server: DicomServer) -> str:
    """Return how the server's studies are reached: ``folder``, ``rest`` or ``dimse``."""
    return dispatch.choose_via(server)


# -- searching ------------------------------------------------------------------------------


def search_studies(
    server: DicomServer,
    filters: QueryFilters | None = None,
    *,
    progress: ProgressCallback | None = None,
    today: _dt.date | None = None,
) -> QueryResult:
    """Search a server's studies with the search fields and the date range.

    Parameters
    ----------
    server : DicomServer
        The server; its date filter applies unless ``filters.date_range`` is set, its
        ``search_limit`` unless ``filters.limit`` is set.
    filters : QueryFilters, optional
        What to match (default: everything in the server's date filter).
    progress : ProgressCallback, optional
        Returning False cancels.
    today : datetime.date, optional
        "Today" of relative date filters (tests; folder mode and DIMSE).

    Returns
    -------
    QueryResult
        The studies and whether (and by which limit) the list was cut off; ``ok`` False with
        a diagnosis when the server or the folder could not be read.

    Raises
    ------
    ValidationError
        Invalid search fields or server settings.
    """
    filters = filters or QueryFilters()
    if today is not None and filters.date_range is None:
        filters = dataclasses.replace(filters, date_range=server_date_range(server, today))
    return dispatch.query_studies(server, filters, progress=progress)


def search_series(
    server: DicomServer, study_uid: str, *, progress: ProgressCallback | None = None
) -> QueryResult:
    """List the series of one study (``series`` of the result)."""
    return dispatch.query_series(server, study_uid, progress=progress)


# -- the REST study-list cache --------------------------------------------------------------


@dataclass
class CachedList:
    """A REST server's cached study list and how fresh it is."""

    studies: list[StudyRecord] = field(default_factory=list)
    last_sync: str = ""
    mode: str = ""
    reason: str = ""
    cut_off: str = ""
    total: int = 0


def cached_list(server: DicomServer, limit: int | None = None) -> CachedList:
    """Return the cached study list of a REST server at once (no network).

    Parameters
    ----------
    server : DicomServer
        A server with the PACS REST API on.
    limit : int, optional
        Only the most recent ``limit`` studies.
    """
    from .rest.cache import StudyCache

    with StudyCache.open(server) as cache:
        state = cache.state()
        return CachedList(
            studies=cache.studies(limit),
            last_sync=state.last_sync,
            mode=state.mode,
            reason=state.reason,
            cut_off=state.cut_off,
            total=cache.count(),
        )


def refresh_cached_list(
    server: DicomServer, progress: ProgressCallback | None = None
) -> SyncResult:
    """Bring a REST server's cached list up to date (incrementally when the change is small)."""
    from .rest.sync import refresh

    return refresh(server, progress=progress)


# -- retrieving -----------------------------------------------------------------------------


def retrieve(
    server: DicomServer,
    study_uid: str,
    series_uids: Iterable[str] = (),
    dest: str | Path | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> RetrieveResult:
    """Bring a study (or some of its series) to this computer, the server's way.

    Parameters
    ----------
    server : DicomServer
        Folder mode reads the PACS folder; otherwise REST when it is on, else C-GET/C-MOVE.
    study_uid : str
        StudyInstanceUID.
    series_uids : iterable of str, optional
        Only these series (default: the whole study).
    dest : str or pathlib.Path, optional
        Destination folder (``<dest>/<Study>/<Series>/<SOP>.dcm``). Folder mode only: None
        uses the files where they are, in the PACS folder (Slicer indexes them in place).
    progress : ProgressCallback, optional
        Instances and bytes so far; returning False cancels (no partial file is left).

    Returns
    -------
    RetrieveResult
        ``files`` lists every file of the request now on this computer.

    Raises
    ------
    ValidationError
        No destination for a network retrieve, or invalid server settings.
    """
    series = [s for s in series_uids if s]
    if dest is None:
        if source_of(server) != SOURCE_FOLDER:
            raise ValidationError(
                [
                    (
                        "dest",
                        f"dest: a destination folder is needed to retrieve from {server.name!r}",
                    )
                ]
            )
        from .folder_backend import retrieve_in_place

        return retrieve_in_place(server, study_uid, series, progress=progress)
    return dispatch.retrieve(server, study_uid, dest, series_uids=series, progress=progress)


# -- sending --------------------------------------------------------------------------------


def send(
    server: DicomServer,
    paths: Iterable[str | Path],
    *,
    progress: ProgressCallback | None = None,
) -> SendResult:
    """Send DICOM files to a server: REST (STOW-RS / Orthanc upload) when on, else C-STORE.

    Returns
    -------
    SendResult
        One item per file.
    """
    files = [Path(p) for p in paths]
    if server.rest_enabled:
        from .rest.send import send_files

        return send_files(server, files, progress=progress)
    from .dimse.send import send as dimse_send

    return dimse_send(server, files, progress=progress)
