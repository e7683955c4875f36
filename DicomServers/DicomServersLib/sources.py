"""Where a server's studies come from and how they get here: the one place that picks the way.

The study browser, the transfer queue and the Slicer console ask this module; it chooses per
server:

- **folder** (``load_mode == "folder"``): the PACS storage folder is read through its
  :class:`~DicomServersLib.folder_index.FolderIndex` (kept in the cache folder). Searching,
  listing series and "retrieving" touch no network at all, so they work with the PACS down;
- **REST** (``rest_enabled``): Orthanc's REST API or DICOMweb (:mod:`DicomServersLib.rest`),
  with the cached study list shown at once and refreshed in the background;
- **DIMSE** otherwise: C-FIND (:mod:`DicomServersLib.dimse.query`), C-GET/C-MOVE
  (:mod:`DicomServersLib.dimse.retrieve`) and C-STORE.

Network outcomes are values (``ok`` False with a plain-language diagnosis); misuse raises
:class:`~DicomServersLib.validation.ValidationError` naming the field.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .date_filters import server_date_range
from .folder_index import FolderIndex, retrieve_from_folder
from .progress import Progress, ProgressCallback, report
from .query_model import QueryFilters, QueryResult, StudyRecord
from .server import DicomServer
from .study_filter import search_local
from .transfer_model import RetrieveResult, SendResult
from .validation import ValidationError

if TYPE_CHECKING:
    from .rest.sync import SyncResult

SOURCE_FOLDER = "folder"
SOURCE_REST = "rest"
SOURCE_DIMSE = "dimse"


def source_of(server: DicomServer) -> str:
    """Return how the server's studies are reached: ``folder``, ``rest`` or ``dimse``."""
    if server.load_mode == "folder":
        return SOURCE_FOLDER
    if server.rest_enabled:
        return SOURCE_REST
    return SOURCE_DIMSE


# -- folder indexes -------------------------------------------------------------------------


class FolderIndexes:
    """The open :class:`FolderIndex` of each storage folder, shared by every caller.

    One SQLite connection per folder (the index serialises its own access), so the browser's
    search and the transfer workers see the same index and each folder is scanned by one
    caller at a time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, FolderIndex] = {}

    def get(self, folder: str | Path) -> FolderIndex:
        """Return the index of ``folder`` (opened on first use)."""
        key = str(Path(folder).expanduser().resolve())
        with self._lock:
            index = self._open.get(key)
            if index is None:
                index = self._open[key] = FolderIndex(Path(key))
            return index

    def close_all(self) -> None:
        """Close every open index."""
        with self._lock:
            for index in self._open.values():
                index.close()
            self._open.clear()


FOLDER_INDEXES = FolderIndexes()


def folder_index(server: DicomServer) -> FolderIndex:
    """Return the index of the server's storage folder.

    Raises
    ------
    ValidationError
        The server has no storage folder.
    """
    if not server.storage_folder.strip():
        raise ValidationError(
            [
                (
                    "storage_folder",
                    "PACS Storage Folder (storage_folder): required to load images from the"
                    f" PACS folder of {server.name!r}",
                )
            ]
        )
    return FOLDER_INDEXES.get(server.storage_folder.strip())


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
        Returning False cancels (folder indexing and C-FIND; a REST search is one request).
    today : datetime.date, optional
        "Today" of relative date filters (tests).

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
    source = source_of(server)
    if source == SOURCE_FOLDER:
        index = folder_index(server)
        try:
            stats = index.update(progress)
        except FileNotFoundError as error:
            return QueryResult(ok=False, diagnosis=str(error))
        date_range = (
            filters.date_range
            if filters.date_range is not None
            else server_date_range(server, today)
        )
        limit = server.search_limit if filters.limit is None else filters.limit
        result = search_local(index.studies(), filters, date_range, limit)
        result.duration_s = stats.duration_s
        return result
    if source == SOURCE_REST:
        from .rest.query import search_studies as rest_search

        return rest_search(server, filters)
    from .dimse.query import find_studies

    return find_studies(server, filters, progress=progress, today=today)


def search_series(
    server: DicomServer, study_uid: str, *, progress: ProgressCallback | None = None
) -> QueryResult:
    """List the series of one study (``series`` of the result)."""
    source = source_of(server)
    if source == SOURCE_FOLDER:
        return QueryResult(series=folder_index(server).series(study_uid))
    if source == SOURCE_REST:
        from .rest.query import search_series as rest_series

        return rest_series(server, study_uid)
    from .dimse.query import find_series

    return find_series(server, study_uid, progress=progress)


# -- the REST study-list cache --------------------------------------------------------------


@dataclass
class CachedList:
    """A REST server's cached study list and how fresh it is (``state.last_sync``)."""

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


def combine_results(results: Sequence[RetrieveResult]) -> RetrieveResult:
    """Return one result for several retrieves of the same request (series by series)."""
    combined = RetrieveResult(method=results[0].method if results else "")
    for part in results:
        combined.files += part.files
        combined.received += part.received
        combined.skipped += part.skipped
        combined.failed += part.failed
        combined.warning += part.warning
        combined.bytes_received += part.bytes_received
        combined.duration_s += part.duration_s
        combined.cancelled = combined.cancelled or part.cancelled
        if not part.ok and combined.ok:
            combined.ok = False
            combined.diagnosis = part.diagnosis
            combined.status = part.status
    return combined


def _offset(progress: ProgressCallback | None, done: Progress) -> ProgressCallback:
    """Report a later part's progress on top of what earlier parts did."""

    def callback(value: Progress) -> bool:
        return report(
            progress,
            Progress(
                completed=done.completed + value.completed,
                remaining=value.remaining,
                failed=done.failed + value.failed,
                warning=done.warning + value.warning,
                bytes_done=done.bytes_done + value.bytes_done,
                bytes_total=None,
                message=value.message,
            ),
        )

    return callback


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
    source = source_of(server)
    if source == SOURCE_FOLDER:
        return retrieve_from_folder(
            folder_index(server),
            study_uid,
            series or None,
            Path(dest) if dest is not None else None,
            progress,
        )
    if dest is None:
        raise ValidationError(
            [("dest", f"dest: a destination folder is needed to retrieve from {server.name!r}")]
        )
    if source == SOURCE_REST:
        from .rest.retrieve import retrieve_study

        if not series:
            return retrieve_study(server, study_uid, dest, progress=progress)
        parts: list[RetrieveResult] = []
        done = Progress()
        for series_uid in series:
            part = retrieve_study(
                server, study_uid, dest, series_uid=series_uid, progress=_offset(progress, done)
            )
            parts.append(part)
            done = Progress(
                completed=done.completed + part.received + part.skipped,
                failed=done.failed + part.failed,
                warning=done.warning + part.warning,
                bytes_done=done.bytes_done + part.bytes_received,
            )
            if not part.ok or part.cancelled:
                break
        return combine_results(parts)
    dimse = importlib.import_module("DicomServersLib.dimse.retrieve")
    result: RetrieveResult = dimse.retrieve(
        server, study_uid, dest, series_uids=series, progress=progress
    )
    return result


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
    try:
        dimse = importlib.import_module("DicomServersLib.dimse.send")
    except ImportError:
        return SendResult(
            ok=False,
            diagnosis="Sending with C-STORE is not available in this version of DICOM Servers;"
            " turn on the PACS REST API of the server to send over REST.",
        )
    function = getattr(dimse, "send_files", None) or dimse.send
    result: SendResult = function(server, files, progress=progress)
    return result
