"""The embedded demo PACS: a small, real DICOM archive on pynetdicom.

Services (pynetdicom event handlers, PS3.4 section in brackets):

- Verification C-ECHO [A];
- Storage C-STORE as SCP for every storage SOP Class and transfer syntax pynetdicom knows [B]:
  the file is written atomically to ``storage/<Study>/<Series>/<SOP>.dcm`` and indexed;
- Query/Retrieve C-FIND, C-GET and C-MOVE, Patient Root and Study Root [C.4, C.6], answered
  from :class:`~.index.PacsIndex`; C-CANCEL stops a C-FIND, C-GET or C-MOVE (status 0xFE00);
- C-MOVE sends to the destinations of a configurable AE title → (host, port) map; an unknown
  destination is refused with 0xA801 (C.4.2.1.4 "Move Destination unknown");
- Modality Worklist C-FIND [K] from the ``*.wl`` files of the worklist folder.

Invalid identifiers (a malformed date range, an unknown level, a retrieve without its unique
key) fail with 0xA900 and an Error Comment naming the attribute and the rule. The PACS only
answers associations that call its AE title (like Orthanc's ``DicomCheckCalledAet``).

Each association is logged as one line when it ends (peer, duration, what it did).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, build_context, evt
from pynetdicom.presentation import AllStoragePresentationContexts

from DicomServersLib.dicom_compat import read_header
from DicomServersLib.dicom_files import UnsafeUIDError, instance_path, write_atomic
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import check_ae_title, check_host, check_port

from .index import PATIENT_ROOT, STUDY_ROOT, InstanceEntry, PacsIndex
from .layout import DemoFolder
from .matching import QueryKeyError
from .samples import install_samples
from .worklist import WorklistFolder

__all__ = [
    "DEFAULT_AE_TITLE",
    "DEFAULT_MOVE_DESTINATIONS",
    "DEMO_SERVER_ID",
    "DEMO_SERVER_NAME",
    "DemoPacs",
]

LOGGER = logging.getLogger("DicomServersLib.demo_pacs")

DEFAULT_AE_TITLE = "DEMOPACS"
"""AE title of the demo PACS."""

DEMO_SERVER_NAME = "Demo PACS"
"""Name of the server record pointing at the demo PACS."""

DEMO_SERVER_ID = "demo-pacs"
"""Stable id of that record (keys its secrets, survives renames)."""

_RECORD_DEFAULTS = DicomServer()
DEFAULT_MOVE_DESTINATIONS: dict[str, tuple[str, int]] = {
    _RECORD_DEFAULTS.move_destination_ae_title: ("127.0.0.1", _RECORD_DEFAULTS.storage_port)
}
"""C-MOVE destinations known by default: our own storage listener with its default settings."""

STATUS_SUCCESS = 0x0000
STATUS_PENDING = 0xFF00
STATUS_CANCEL = 0xFE00
STATUS_IDENTIFIER_INVALID = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700

# SOP Classes (PS3.4 A.4, C.6, K.4).
VERIFICATION = "1.2.840.10008.1.1"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
_FIND_MODELS = {
    "1.2.840.10008.5.1.4.1.2.1.1": PATIENT_ROOT,  # Patient Root Q/R - FIND
    "1.2.840.10008.5.1.4.1.2.1.2": PATIENT_ROOT,  # Patient Root Q/R - MOVE
    "1.2.840.10008.5.1.4.1.2.1.3": PATIENT_ROOT,  # Patient Root Q/R - GET
    "1.2.840.10008.5.1.4.1.2.2.1": STUDY_ROOT,  # Study Root Q/R - FIND
    "1.2.840.10008.5.1.4.1.2.2.2": STUDY_ROOT,  # Study Root Q/R - MOVE
    "1.2.840.10008.5.1.4.1.2.2.3": STUDY_ROOT,  # Study Root Q/R - GET
}
_UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
_MAX_CONTEXTS = 128  # PS3.8 §9.3.2.2: presentation context IDs are odd numbers 1-255


def check_settings(
    ae_title: str, port: int, move_destinations: Mapping[str, tuple[str, int]]
) -> None:
    """Check the settings of a demo PACS.

    Raises
    ------
    ValueError
        An AE title (PS3.5 §6.2), the port (0-65535, 0 picks a free one) or a destination's
        port (1-65535) is invalid; the message names it and the rule.
    """
    ok, reason = check_ae_title(ae_title)
    if not ok:
        raise ValueError(f"AE title {ae_title!r}: {reason}")
    if port != 0:
        ok, reason = check_port(port)
        if not ok:
            raise ValueError(f"port: {reason} (or 0 for any free port)")
    for ae, address in move_destinations.items():
        ok, reason = check_ae_title(ae)
        if not ok:
            raise ValueError(f"move destination AE title {ae!r}: {reason}")
        host, dest_port = address
        ok, reason = check_host(host)
        if ok:
            ok, reason = check_port(dest_port)
        if not ok:
            raise ValueError(f"move destination {ae}: {reason}")


def _status(code: int, comment: str) -> Dataset:
    """A status with an Error Comment (LO, at most 64 characters, PS3.7 C.4)."""
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


@dataclass
class _AssociationLog:
    """What one association did, for its log line."""

    peer: str
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    outcome: str = "closed"

    def line(self, ae_title: str) -> str:
        seconds = time.monotonic() - self.started
        done = []
        for service in ("C-ECHO", "C-STORE", "C-FIND", "MWL C-FIND", "C-GET", "C-MOVE"):
            if self.counts[service]:
                detail = ""
                if service in ("C-FIND", "MWL C-FIND"):
                    detail = f" ({_plural(self.counts[service + ' answers'], 'answer')})"
                elif service in ("C-GET", "C-MOVE"):
                    detail = f" ({_plural(self.counts[service + ' instances'], 'instance')} sent)"
                done.append(f"{service} x{self.counts[service]}{detail}")
        if self.counts["cancelled"]:
            done.append(f"{self.counts['cancelled']} cancelled")
        if self.counts["failed"]:
            done.append(f"{self.counts['failed']} failed")
        what = ", ".join(done) or "nothing"
        return f"{ae_title}: {self.peer} {self.outcome} after {seconds:.2f} s: {what}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class DemoPacs:
    """A small real PACS on pynetdicom, serving a folder (see the module docstring).

    Use as a context manager, or call :meth:`start` and :meth:`stop`. It runs in background
    threads.

    Parameters
    ----------
    folder : str or os.PathLike
        Its folder (see :class:`~.layout.DemoFolder`); created if needed.
    ae_title : str, optional
        Its AE title; associations must call it.
    host : str, optional
        Address to listen on: loopback by default. Use ``0.0.0.0`` to serve the network.
    port : int, optional
        Port to listen on; 0 (default) picks a free one (see :attr:`port` once started).
    move_destinations : mapping of str to (str, int), optional
        C-MOVE destinations: AE title → (host, port). Defaults to
        :data:`DEFAULT_MOVE_DESTINATIONS`.
    samples : bool, optional
        Install the sample studies and worklist items on first start (default True).
    reference_date : datetime.date, optional
        "Today" of the samples; defaults to today.
    timeout_s : float, optional
        ACSE, DIMSE and network timeouts, and the connect timeout of C-MOVE sub-associations.
    response_delay_s : float, optional
        Pause before each C-FIND answer and each C-GET/C-MOVE sub-operation, to play a slow
        PACS (C-CANCEL still stops at once). 0 by default.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        ae_title: str = DEFAULT_AE_TITLE,
        host: str = "127.0.0.1",
        port: int = 0,
        move_destinations: Mapping[str, tuple[str, int]] | None = None,
        samples: bool = True,
        reference_date: dt.date | None = None,
        timeout_s: float = 30.0,
        response_delay_s: float = 0.0,
    ) -> None:
        destinations = DEFAULT_MOVE_DESTINATIONS if move_destinations is None else move_destinations
        check_settings(ae_title, port, destinations)
        self.folder = DemoFolder.of(folder)
        self.ae_title = ae_title.strip()
        self.host = host
        self.requested_port = port
        self.samples = samples
        self.reference_date = reference_date
        self.timeout_s = timeout_s
        self.response_delay_s = response_delay_s
        self._destinations: dict[str, tuple[str, int]] = {
            ae.strip(): (h, int(p)) for ae, (h, p) in destinations.items()
        }
        self.index = PacsIndex(self.folder.storage)
        self.worklist = WorklistFolder(self.folder.worklists)
        self._ae: Any = None
        self._server: Any = None
        self._port = 0
        self._lock = threading.Lock()
        self._associations: dict[int, _AssociationLog] = {}

    # -- configuration -----------------------------------------------------------------------

    @property
    def move_destinations(self) -> dict[str, tuple[str, int]]:
        """The C-MOVE destinations, AE title → (host, port) (a copy)."""
        with self._lock:
            return dict(self._destinations)

    def add_move_destination(self, ae_title: str, host: str, port: int) -> None:
        """Make (or change) a C-MOVE destination; it is used from the next C-MOVE on.

        Raises
        ------
        ValueError
            The AE title or port is invalid (the message names it and the rule).
        """
        check_settings(DEFAULT_AE_TITLE, 0, {ae_title: (host, port)})
        with self._lock:
            self._destinations[ae_title.strip()] = (host, int(port))

    def remove_move_destination(self, ae_title: str) -> None:
        """Forget a C-MOVE destination (no error when unknown)."""
        with self._lock:
            self._destinations.pop(ae_title.strip(), None)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when started with port 0)."""
        return self._port or self.requested_port

    def start(self) -> DemoPacs:
        """Install the samples (first start), index the storage and start listening.

        Returns
        -------
        DemoPacs
            ``self``.

        Raises
        ------
        OSError
            The port cannot be bound (in use, or not allowed).
        """
        if self._server is not None:
            return self
        self.folder.storage.mkdir(parents=True, exist_ok=True)
        self.folder.worklists.mkdir(parents=True, exist_ok=True)
        if self.samples and install_samples(self.folder, self.reference_date):
            LOGGER.info("%s: sample studies written to %s", self.ae_title, self.folder.root)
        count = self.index.scan()
        ae = self._make_ae()
        handlers = [
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_closed),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_C_MOVE, self._on_move),
        ]
        try:
            server = ae.start_server(
                (self.host, self.requested_port), block=False, evt_handlers=handlers
            )
        except BaseException:
            ae.shutdown()
            raise
        self._ae, self._server = ae, server
        self._port = int(server.server_address[1])
        LOGGER.info(
            "%s: listening on %s:%d, %d instances in %s",
            self.ae_title,
            self.host,
            self._port,
            count,
            self.folder.storage,
        )
        return self

    def stop(self) -> None:
        """Stop listening and abort the associations still open."""
        ae, self._ae, self._server = self._ae, None, None
        if ae is not None:
            ae.shutdown()
            LOGGER.info("%s: stopped", self.ae_title)

    def __enter__(self) -> DemoPacs:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"listening on {self.host}:{self.port}" if self.running else "stopped"
        return f"<DemoPacs {self.ae_title} {state} {self.folder.root}>"

    def _make_ae(self) -> Any:
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.timeout_s
        ae.dimse_timeout = self.timeout_s
        ae.network_timeout = self.timeout_s
        ae.connection_timeout = self.timeout_s
        ae.require_called_aet = True
        ae.add_supported_context(VERIFICATION, ALL_TRANSFER_SYNTAXES)
        for cx in AllStoragePresentationContexts:
            # Both roles: C-STORE from a sender, and the C-GET SCP/SCU role reversal
            # (PS3.7 D.3.3.4) where we send over the requester's association.
            ae.add_supported_context(
                str(cx.abstract_syntax), ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True
            )
        for sop_class in (*_FIND_MODELS, MODALITY_WORKLIST_FIND):
            ae.add_supported_context(sop_class)
        return ae

    # -- the server record -------------------------------------------------------------------

    def demo_server_record(self, **changes: Any) -> DicomServer:
        """Return a server record pointing at this PACS ("Demo PACS", the default server).

        Its storage folder is the PACS' storage, so the "load from the PACS storage folder"
        mode works too; retrieval is C-GET; the worklist is asked of the same AE title for
        the station ``SLICER``.

        Parameters
        ----------
        **changes
            Fields to set differently.
        """
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        record = DicomServer(
            name=DEMO_SERVER_NAME,
            is_default=True,
            called_ae_title=self.ae_title,
            host=host,
            port=self.port,
            retrieve_method="c-get",
            storage_folder=str(self.folder.storage),
            worklist_ae_title=self.ae_title,
            scheduled_station_ae_title="SLICER",
            timeout_s=self.timeout_s,
            id=DEMO_SERVER_ID,
        )
        return record.copy(**changes) if changes else record

    # -- association bookkeeping -------------------------------------------------------------

    def _log_of(self, event: Any) -> _AssociationLog:
        key = id(event.assoc)
        with self._lock:
            log = self._associations.get(key)
            if log is None:
                log = self._associations[key] = _AssociationLog(self._peer(event))
            return log

    @staticmethod
    def _peer(event: Any) -> str:
        requestor = event.assoc.requestor
        return f"{str(requestor.ae_title).strip()}@{requestor.address}:{requestor.port}"

    def _on_accepted(self, event: Any) -> None:
        self._log_of(event)

    def _on_released(self, event: Any) -> None:
        self._log_of(event).outcome = "released"

    def _on_aborted(self, event: Any) -> None:
        self._log_of(event).outcome = "aborted"

    def _on_closed(self, event: Any) -> None:
        with self._lock:
            log = self._associations.pop(id(event.assoc), None)
        if log is None:
            LOGGER.info("%s: %s association not accepted", self.ae_title, self._peer(event))
        else:
            LOGGER.info("%s", log.line(self.ae_title))

    def _pause(self, event: Any) -> bool:
        """Wait ``response_delay_s``; return True when the request was cancelled meanwhile."""
        deadline = time.monotonic() + self.response_delay_s
        while True:
            if event.is_cancelled:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.01, remaining))

    # -- services ----------------------------------------------------------------------------

    def _on_echo(self, event: Any) -> int:
        self._log_of(event).counts["C-ECHO"] += 1
        return STATUS_SUCCESS

    def _on_store(self, event: Any) -> int | Dataset:
        log = self._log_of(event)
        log.counts["C-STORE"] += 1
        try:
            ds = event.dataset
            path = instance_path(
                self.folder.storage,
                str(ds.get("StudyInstanceUID", "")),
                str(ds.get("SeriesInstanceUID", "")),
                str(ds.get("SOPInstanceUID", "")),
            )
        except UnsafeUIDError as error:
            log.counts["failed"] += 1
            return _status(STATUS_CANNOT_UNDERSTAND, str(error))
        try:
            write_atomic(path, [event.encoded_dataset(include_meta=True)])
        except OSError as error:
            log.counts["failed"] += 1
            LOGGER.error("%s: cannot store %s: %s", self.ae_title, path, error)
            return _status(STATUS_OUT_OF_RESOURCES, f"cannot write the file: {error.strerror}")
        self.index.add_file(path)
        return STATUS_SUCCESS

    def _on_find(self, event: Any) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        sop_class = str(event.request.AffectedSOPClassUID)
        worklist = sop_class == str(MODALITY_WORKLIST_FIND)
        service = "MWL C-FIND" if worklist else "C-FIND"
        log = self._log_of(event)
        log.counts[service] += 1

        def cancelled() -> bool:
            return bool(event.is_cancelled)

        try:
            identifier = event.identifier
            if worklist:
                answers = list(self.worklist.find(identifier, cancelled=cancelled))
            else:
                answers = list(
                    self.index.find(
                        identifier,
                        _FIND_MODELS[sop_class],
                        retrieve_ae_title=self.ae_title,
                        cancelled=cancelled,
                    )
                )
        except QueryKeyError as error:
            log.counts["failed"] += 1
            yield _status(STATUS_IDENTIFIER_INVALID, str(error)), None
            return
        for answer in answers:
            if self._pause(event):
                log.counts["cancelled"] += 1
                yield STATUS_CANCEL, None
                return
            log.counts[service + " answers"] += 1
            yield STATUS_PENDING, answer
        if event.is_cancelled:
            log.counts["cancelled"] += 1
            yield STATUS_CANCEL, None

    def _select(self, event: Any) -> list[InstanceEntry]:
        return self.index.select(
            event.identifier, _FIND_MODELS[str(event.request.AffectedSOPClassUID)]
        )

    def _send(
        self, event: Any, entries: list[InstanceEntry], service: str
    ) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        """Yield the (status, dataset) of each C-STORE sub-operation of a C-GET or C-MOVE."""
        log = self._log_of(event)
        for entry in entries:
            if self._pause(event):
                log.counts["cancelled"] += 1
                yield STATUS_CANCEL, None
                return
            try:
                ds = read_header(entry.path, stop_before_pixels=False)
            except Exception as error:  # the file went away or is damaged: a failed sub-op
                LOGGER.error("%s: cannot read %s: %s", self.ae_title, entry.path, error)
                log.counts["failed"] += 1
                failed = Dataset()
                failed.FailedSOPInstanceUIDList = [entry.sop_uid]
                yield _status(STATUS_OUT_OF_RESOURCES, f"cannot read {entry.sop_uid}"), failed
                return
            log.counts[service + " instances"] += 1
            yield STATUS_PENDING, ds

    def _on_get(self, event: Any) -> Iterator[Any]:
        log = self._log_of(event)
        log.counts["C-GET"] += 1
        try:
            entries = self._select(event)
        except QueryKeyError as error:
            log.counts["failed"] += 1
            yield 1
            yield _status(STATUS_IDENTIFIER_INVALID, str(error)), None
            return
        yield len(entries)
        yield from self._send(event, entries, "C-GET")

    def _on_move(self, event: Any) -> Iterator[Any]:
        log = self._log_of(event)
        log.counts["C-MOVE"] += 1
        destination_ae = str(event.move_destination or "").strip()
        with self._lock:
            destination = self._destinations.get(destination_ae)
        if destination is None:
            LOGGER.warning("%s: C-MOVE to unknown destination %r", self.ae_title, destination_ae)
            log.counts["failed"] += 1
            yield None, None
            return
        try:
            entries = self._select(event)
        except QueryKeyError as error:
            log.counts["failed"] += 1
            yield destination
            yield 1
            yield _status(STATUS_IDENTIFIER_INVALID, str(error)), None
            return
        if not entries:
            yield destination
            yield 0
            return
        yield destination[0], destination[1], {"contexts": _contexts_for(entries)}
        yield len(entries)
        yield from self._send(event, entries, "C-MOVE")


def _contexts_for(entries: list[InstanceEntry]) -> list[Any]:
    """Presentation contexts to propose to a C-MOVE destination for these instances.

    One context per SOP Class and stored transfer syntax; uncompressed files may also go as
    Explicit or Implicit VR Little Endian. At most 128 contexts (PS3.8 §9.3.2.2).
    """
    syntaxes: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        stored = entry.transfer_syntax_uid
        offered = [stored, *(s for s in _UNCOMPRESSED if s != stored)]
        if stored not in _UNCOMPRESSED and stored != "1.2.840.10008.1.2.2":
            offered = [stored]
        key = (entry.sop_class_uid, "uncompressed" if len(offered) > 1 else stored)
        syntaxes.setdefault(key, offered)
    contexts = [build_context(sop, offered) for (sop, _), offered in syntaxes.items()]
    return contexts[:_MAX_CONTEXTS]
