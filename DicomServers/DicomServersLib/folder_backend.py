"""The folder backend of :mod:`DicomServersLib.dispatch`: the spec's "load from the PACS folder".

A server in folder mode (``load_mode == "folder"``) is served from its storage folder, with no
network at all, so it works with the PACS down: searches and series lists come from the
folder's :class:`~DicomServersLib.folder_index.FolderIndex` (header-only, incremental, kept in
the cache folder) matched like a C-FIND (:mod:`DicomServersLib.study_filter`), and a retrieve
links or copies the study's files into the destination
(:func:`~DicomServersLib.folder_index.retrieve_from_folder`), or hands them over where they are
(:func:`retrieve_in_place`, for Slicer's database). :mod:`~DicomServersLib.dispatch` imports
this module the first time a call goes to a folder and uses :data:`BACKEND`.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Iterable
from pathlib import Path

from .date_filters import server_date_range
from .folder_index import FolderIndex, retrieve_from_folder
from .progress import ProgressCallback
from .query_model import QueryFilters, QueryResult
from .server import DicomServer
from .study_filter import search_local
from .transfer_model import RetrieveResult
from .validation import ValidationError

__all__ = ["BACKEND", "FOLDER_INDEXES", "FolderBackend", "FolderIndexes", "folder_index"]


class FolderIndexes:
    """The open :class:`FolderIndex` of each storage folder, shared by every caller.

    One SQLite connection per folder (the index serialises its own access), so the browser's
    search and the transfer workers see the same index and a folder is scanned by one caller
    at a time.
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


def retrieve_in_place(
    server: DicomServer,
    study_uid: str,
    series_uids: Iterable[str] = (),
    *,
    progress: ProgressCallback | None = None,
) -> RetrieveResult:
    """Return the study's files where they are, in the storage folder (nothing is copied)."""
    series = [s for s in series_uids if s]
    return retrieve_from_folder(folder_index(server), study_uid, series or None, None, progress)


class FolderBackend:
    """Serves :mod:`DicomServersLib.dispatch` calls from a server's storage folder."""

    def query_studies(
        self,
        server: DicomServer,
        filters: QueryFilters,
        *,
        progress: ProgressCallback | None = None,
        today: _dt.date | None = None,
    ) -> QueryResult:
        """Bring the index up to date, then match its studies like a C-FIND would.

        The date range is the filters' own, else the server's date filter; the limit the
        filters' own, else the server's ``search_limit``.
        """
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

    def query_series(
        self,
        server: DicomServer,
        study_uid: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """List the series of a study from the index."""
        return QueryResult(series=folder_index(server).series(study_uid))

    def retrieve(
        self,
        server: DicomServer,
        study_uid: str,
        dest: Path,
        *,
        series_uids: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> RetrieveResult:
        """Copy the study's files into ``dest`` (``<Study>/<Series>/<SOP>.dcm``)."""
        series = [s for s in series_uids if s]
        return retrieve_from_folder(
            folder_index(server), study_uid, series or None, Path(dest), progress
        )


#: The instance :mod:`DicomServersLib.dispatch` uses.
BACKEND = FolderBackend()
