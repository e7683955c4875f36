"""Which protocol serves a search or a retrieve: DIMSE, or the PACS REST API.

The study browser, the CLI and the Slicer console call :func:`query_studies`,
:func:`query_series` and :func:`retrieve` here; the protocol is chosen per call:
``via="dimse"``, ``via="rest"`` or ``via="folder"`` when forced (the CLI's ``--via``), else the
storage folder when the server loads from its PACS folder (``load_mode == "folder"``, no
network: :mod:`DicomServersLib.folder_backend`), REST when the server has ``rest_enabled`` and
DIMSE otherwise.

Extension point (for the REST layer): a backend is any object with the three methods of
:class:`Backend`. The DIMSE backend is built in. The REST backend registers itself with
``register_backend("rest", backend)``; to keep the core free of import cycles, it is looked
up lazily: the first time ``via == "rest"`` is needed, the module
``DicomServersLib.rest.backend`` is imported, and it is expected to call
:func:`register_backend` at import time (or to expose a module attribute ``BACKEND``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from DicomServersLib.progress import ProgressCallback
from DicomServersLib.query_model import QueryFilters, QueryResult
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import RetrieveResult
from DicomServersLib.validation import ValidationError

__all__ = [
    "VIA_CHOICES",
    "Backend",
    "DimseBackend",
    "backend_for",
    "choose_via",
    "query_series",
    "query_studies",
    "register_backend",
    "retrieve",
]

VIA_CHOICES = ("dimse", "rest", "folder")
REST_BACKEND_MODULE = "DicomServersLib.rest.backend"
FOLDER_BACKEND_MODULE = "DicomServersLib.folder_backend"
_LAZY_BACKENDS = {"rest": REST_BACKEND_MODULE, "folder": FOLDER_BACKEND_MODULE}


class Backend(Protocol):
    """What a protocol must offer to serve searches and retrieves."""

    def query_studies(
        self,
        server: DicomServer,
        filters: QueryFilters,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """Search studies (filters, date filter and search limit as in :mod:`.query_model`)."""
        ...

    def query_series(
        self,
        server: DicomServer,
        study_uid: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """List the series of one study (in ``QueryResult.series``)."""
        ...

    def retrieve(
        self,
        server: DicomServer,
        study_uid: str,
        dest: Path,
        *,
        series_uids: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> RetrieveResult:
        """Fetch a study or some of its series into ``dest`` (atomic files, resume)."""
        ...


class DimseBackend:
    """Searches and retrieves with C-FIND, C-GET and C-MOVE (:mod:`.dimse`).

    Parameters
    ----------
    method : str, optional
        ``c-get`` or ``c-move`` instead of each server's ``retrieve_method``.
    listen_host : str, optional
        Interface of the C-MOVE storage listener (default: all).
    max_associations : int, optional
        Parallel associations per retrieve.
    """

    def __init__(
        self,
        *,
        method: str | None = None,
        listen_host: str = "0.0.0.0",
        max_associations: int = 2,
    ) -> None:
        self.method = method
        self.listen_host = listen_host
        self.max_associations = max_associations

    def query_studies(
        self,
        server: DicomServer,
        filters: QueryFilters,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """See :func:`DicomServersLib.dimse.query.find_studies`."""
        from DicomServersLib.dimse.query import find_studies

        return find_studies(server, filters, progress=progress)

    def query_series(
        self,
        server: DicomServer,
        study_uid: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> QueryResult:
        """See :func:`DicomServersLib.dimse.query.find_series`."""
        from DicomServersLib.dimse.query import find_series

        return find_series(server, study_uid, progress=progress)

    def retrieve(
        self,
        server: DicomServer,
        study_uid: str,
        dest: Path,
        *,
        series_uids: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> RetrieveResult:
        """See :func:`DicomServersLib.dimse.retrieve.retrieve`."""
        from DicomServersLib.dimse.retrieve import retrieve as dimse_retrieve

        return dimse_retrieve(
            server,
            study_uid,
            dest,
            series_uids=series_uids,
            progress=progress,
            method=self.method,
            listen_host=self.listen_host,
            max_associations=self.max_associations,
        )


_BACKENDS: dict[str, Backend] = {"dimse": DimseBackend()}


def register_backend(via: str, backend: Backend) -> None:
    """Make ``backend`` serve calls with ``via`` (e.g. the REST layer registers ``"rest"``)."""
    if via not in VIA_CHOICES:
        raise ValueError(f"via: must be one of {', '.join(VIA_CHOICES)}, got {via!r}")
    _BACKENDS[via] = backend


def choose_via(server: DicomServer, via: str | None = None) -> str:
    """Return the protocol for a call: ``via`` if given, else the storage folder in folder
    mode, else REST when the server has it on, else DIMSE.

    Raises
    ------
    ValidationError
        ``via`` is not ``dimse`` or ``rest``.
    """
    if via is None:
        if server.load_mode == "folder":
            return "folder"
        return "rest" if server.rest_enabled else "dimse"
    if via not in VIA_CHOICES:
        raise ValidationError(
            [("via", f"via: must be one of {', '.join(VIA_CHOICES)}, got {via!r}")]
        )
    return via


def backend_for(server: DicomServer, via: str | None = None) -> Backend:
    """Return the backend serving a server (see :func:`choose_via`).

    Raises
    ------
    ValidationError
        ``via`` is invalid, or REST is asked for and no REST backend is available.
    """
    name = choose_via(server, via)
    if name not in _BACKENDS and name in _LAZY_BACKENDS:
        try:
            module = importlib.import_module(_LAZY_BACKENDS[name])
        except ModuleNotFoundError as error:
            if error.name != _LAZY_BACKENDS[name]:
                raise
        else:
            backend = getattr(module, "BACKEND", None)
            if backend is not None and name not in _BACKENDS:
                register_backend(name, backend)
    if name not in _BACKENDS:
        raise ValidationError(
            [("via", "via: the PACS REST API is not available in this installation; use dimse")]
        )
    return _BACKENDS[name]


def query_studies(
    server: DicomServer,
    filters: QueryFilters | None = None,
    *,
    via: str | None = None,
    progress: ProgressCallback | None = None,
) -> QueryResult:
    """Search a server's studies with the chosen protocol."""
    return backend_for(server, via).query_studies(
        server, filters or QueryFilters(), progress=progress
    )


def query_series(
    server: DicomServer,
    study_uid: str,
    *,
    via: str | None = None,
    progress: ProgressCallback | None = None,
) -> QueryResult:
    """List the series of a study with the chosen protocol."""
    return backend_for(server, via).query_series(server, study_uid, progress=progress)


def retrieve(
    server: DicomServer,
    study_uid: str,
    dest: str | Path,
    *,
    series_uids: Iterable[str] = (),
    via: str | None = None,
    progress: ProgressCallback | None = None,
) -> RetrieveResult:
    """Fetch a study (or some of its series) into ``dest`` with the chosen protocol."""
    return backend_for(server, via).retrieve(
        server, study_uid, Path(dest), series_uids=series_uids, progress=progress
    )
