"""What the Slicer Python console offers: servers, query, retrieve and send by server name.

``slicer.modules.DicomServersWidget.logic`` delegates here (the Slicer layer adds loading into
the scene); the same object works outside Slicer. Everything runs in the calling thread and
returns the core's result values (:class:`~DicomServersLib.query_model.QueryResult`,
:class:`~DicomServersLib.transfer_model.RetrieveResult`,
:class:`~DicomServersLib.transfer_model.SendResult`): network failures are values with a
plain-language ``diagnosis``; a wrong server name, keyword or value raises.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import sources
from .date_filters import DateRange, parse_last, relative_range
from .loading_mode import LoadingPolicy
from .progress import ProgressCallback
from .query_model import QueryFilters, QueryResult
from .server import DicomServer
from .transfer_model import RetrieveResult, SendResult
from .validation import ValidationError

#: ``importer(files, in_place)``: make retrieved files available (Slicer: its DICOM database).
Importer = Callable[[Sequence[Path], bool], None]

_TEXT_KEYWORDS = (
    "patient_name",
    "patient_id",
    "accession_number",
    "modality",
    "study_description",
    "study_uid",
)
KEYWORDS = (*_TEXT_KEYWORDS, "date_from", "date_to", "last", "limit")


def _date(name: str, value: Any) -> _dt.date:
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError([(name, f"{name}: a date YYYY-MM-DD, got {value!r}")]) from None


def filters_from_keywords(**keywords: Any) -> QueryFilters:
    """Build search filters from keyword arguments (the console's ``query`` keywords).

    Parameters
    ----------
    **keywords
        ``patient_name``, ``patient_id``, ``accession_number``, ``modality``,
        ``study_description``, ``study_uid`` (text, DICOM wildcards ``*`` and ``?``);
        ``date_from`` / ``date_to`` (``YYYY-MM-DD`` or ``datetime.date``) or ``last``
        (``"7d"``, ``"3m"``, ``"1y"``) instead of the server's date filter; ``limit`` (0: none).

    Raises
    ------
    ValidationError
        An unknown keyword or a bad value, naming it and the rule.
    """
    unknown = [k for k in keywords if k not in KEYWORDS]
    if unknown:
        raise ValidationError(
            [(k, f"{k}: unknown search keyword (known: {', '.join(KEYWORDS)})") for k in unknown]
        )
    filters = QueryFilters()
    for name in _TEXT_KEYWORDS:
        if name in keywords:
            setattr(filters, name, str(keywords[name]))
    if "last" in keywords:
        if "date_from" in keywords or "date_to" in keywords:
            raise ValidationError(
                [("last", "last: give either last or date_from/date_to, not both")]
            )
        try:
            count, unit = parse_last(str(keywords["last"]))
        except ValueError as error:
            raise ValidationError([("last", str(error).replace("--last", "last"))]) from None
        filters.date_range = relative_range(count, unit)
    elif "date_from" in keywords or "date_to" in keywords:
        start = _date("date_from", keywords["date_from"]) if "date_from" in keywords else None
        end = _date("date_to", keywords["date_to"]) if "date_to" in keywords else None
        if start and end and end < start:
            raise ValidationError([("date_to", "date_to: must not be before date_from")])
        filters.date_range = DateRange(start, end)
    if "limit" in keywords:
        limit = keywords["limit"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValidationError([("limit", f"limit: 0 (no limit) or more, got {limit!r}")])
        filters.limit = limit
    return filters


class ServerConsole:
    """Query, retrieve and send by server name, in the calling thread.

    Parameters
    ----------
    registry : ServerRegistry
        The ordered server list.
    destination : pathlib.Path
        Where network retrieves write ``<Study>/<Series>/<SOP>.dcm``.
    importer : Importer, optional
        Called with the files of each retrieve (Slicer imports them into its database).
    in_place : bool, optional
        Folder mode: hand the PACS folder's own files to ``importer`` instead of copying them
        into ``destination`` (Slicer indexes them where they are).
    """

    def __init__(
        self,
        registry: Any,
        destination: Path,
        importer: Importer | None = None,
        *,
        in_place: bool = False,
    ) -> None:
        self.registry = registry
        self.destination = Path(destination)
        self.importer = importer
        self.in_place = in_place

    def servers(self) -> list[DicomServer]:
        """Return the servers in list order (copies)."""
        servers: list[DicomServer] = self.registry.servers
        return servers

    def server(self, name: str) -> DicomServer:
        """Return the server called ``name`` (``KeyError`` naming the known ones if none)."""
        server: DicomServer = self.registry.get(name)
        return server

    def query(
        self, server_name: str, progress: ProgressCallback | None = None, **filters: Any
    ) -> QueryResult:
        """Search a server's studies (see :func:`filters_from_keywords` for the keywords)."""
        return sources.search_studies(
            self.server(server_name), filters_from_keywords(**filters), progress=progress
        )

    def series(self, server_name: str, study_uid: str) -> QueryResult:
        """List the series of one study (``series`` of the result)."""
        return sources.search_series(self.server(server_name), study_uid)

    def retrieve(
        self,
        server_name: str,
        study_uid: str,
        series_uids: Iterable[str] | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> RetrieveResult:
        """Bring a study (or some series) here the server's way, then hand it to the importer.

        Folder mode reads the PACS folder (no network); auto and manual mode retrieve over
        the network (a console call is an explicit request, like Transfer).
        """
        server = self.server(server_name)
        policy = LoadingPolicy.for_server(server)
        dest = policy.destination(self.destination, in_place=self.in_place)
        result = sources.retrieve(
            server, study_uid, tuple(series_uids or ()), dest, progress=progress
        )
        if self.importer is not None and result.files:
            self.importer(list(result.files), dest is None)
        return result

    def send(
        self,
        server_name: str,
        paths: Iterable[str | Path],
        *,
        progress: ProgressCallback | None = None,
    ) -> SendResult:
        """Send DICOM files to a server (folders are sent whole, files in name order)."""
        files: list[Path] = []
        for path in paths:
            path = Path(path)
            if path.is_dir():
                files += sorted(p for p in path.rglob("*") if p.is_file())
            else:
                files.append(path)
        return sources.send(self.server(server_name), files, progress=progress)
