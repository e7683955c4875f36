"""In-process pynetdicom SCPs on free loopback ports (pynetdicom 2.1 and 3).

- :class:`StorageSCP` records every C-STORE it receives (and can write the files), e.g. as a
  C-MOVE destination or a send target.
- :class:`FakeQRSCP` is a configurable Query/Retrieve SCP for fault and hostile-input tests:
  C-ECHO, C-FIND answering given identifiers, C-GET and C-MOVE of given data sets, C-STORE;
  it can reject associations, answer with a chosen status, stall before each response, ignore
  C-CANCEL, abort mid-operation, and send whatever UIDs it is given (see :mod:`rig.hostile`).
- :class:`SilentPeer` accepts TCP connections and never says a word (connect/ACSE timeouts).

Every SCP records the requests it received (:class:`ReceivedRequest`), so tests assert on what
the peer saw, not only on what the client reports. The servers bind 127.0.0.1 port 0, which is
race-free, and are stopped (associations aborted, stalls released) by :meth:`stop`.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from DicomServersLib.dicom_compat import write_dataset
from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    BasicWorklistManagementPresentationContexts,
    QueryRetrievePresentationContexts,
    StoragePresentationContexts,
    VerificationPresentationContexts,
    build_context,
    evt,
)

from rig.ports import LOOPBACK

__all__ = [
    "FakeQRSCP",
    "PynetdicomSCP",
    "ReceivedRequest",
    "SilentPeer",
    "StorageSCP",
]

# Status codes (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4; PS3.7 C)
SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00

_NOBODY = "NOBODY-IS-OK"
"""The only calling AE title accepted when every association is to be rejected."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One DIMSE request an SCP received.

    Attributes
    ----------
    service : str
        ``"C-ECHO"``, ``"C-FIND"``, ``"C-GET"``, ``"C-MOVE"`` or ``"C-STORE"``.
    calling_ae_title : str
        AE title of the requestor.
    called_ae_title : str
        AE title the requestor called.
    identifier : pydicom.dataset.Dataset or None
        The query/retrieve identifier or the stored data set.
    move_destination : str or None
        Move Destination of a C-MOVE.
    """

    service: str
    calling_ae_title: str
    called_ae_title: str
    identifier: Dataset | None = None
    move_destination: str | None = None


def _ae_title(value: Any) -> str:
    """AE title as text (pynetdicom 1.x gave bytes), without padding."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).strip()


class PynetdicomSCP:
    """Base of the in-process SCPs: one pynetdicom AE serving 127.0.0.1 on a free port.

    Parameters
    ----------
    ae_title : str
        The AE title it answers to.
    check_called_ae_title : bool, optional
        Reject associations that call another AE title (what real PACS do).
    accepted_calling_ae_titles : sequence of str, optional
        If given, reject associations from any other calling AE title.
    reject_association : bool, optional
        Reject every association (rejected-permanent, calling AE title not recognised).
    acse_timeout, dimse_timeout, network_timeout : float, optional
        pynetdicom's timeouts in seconds.
    """

    def __init__(
        self,
        ae_title: str,
        *,
        check_called_ae_title: bool = True,
        accepted_calling_ae_titles: Sequence[str] | None = None,
        reject_association: bool = False,
        acse_timeout: float = 10.0,
        dimse_timeout: float = 30.0,
        network_timeout: float = 30.0,
    ) -> None:
        self.ae_title = ae_title
        self.check_called_ae_title = check_called_ae_title
        self.accepted_calling_ae_titles = accepted_calling_ae_titles
        self.reject_association = reject_association
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout
        self.port = 0
        self.requests: list[ReceivedRequest] = []
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._ae: AE | None = None

    # -- set-up hooks ------------------------------------------------------------------------

    def configure(self, ae: AE) -> None:
        """Add the supported presentation contexts (overridden by subclasses)."""
        ae.supported_contexts = VerificationPresentationContexts

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        """Return the event handlers (extended by subclasses)."""
        return [(evt.EVT_C_ECHO, self._on_echo)]

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address it listens on (always ``127.0.0.1``)."""
        return LOOPBACK

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._ae is not None

    def start(self) -> PynetdicomSCP:
        """Start serving on a free loopback port (returns once the socket listens).

        Returns
        -------
        PynetdicomSCP
            ``self``.
        """
        if self._ae is not None:
            return self
        self._stopping.clear()
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.dimse_timeout
        ae.network_timeout = self.network_timeout
        ae.maximum_associations = 20
        ae.require_called_aet = self.check_called_ae_title
        if self.reject_association:
            ae.require_calling_aet = [_NOBODY]
        elif self.accepted_calling_ae_titles:
            ae.require_calling_aet = list(self.accepted_calling_ae_titles)
        self.configure(ae)
        handlers: list[Any] = list(self.handlers())
        server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
        assert server is not None
        self.port = int(server.server_address[1])
        self._ae = ae
        return self

    def stop(self) -> None:
        """Release stalled handlers, abort open associations and close the port."""
        self._stopping.set()
        ae, self._ae = self._ae, None
        if ae is not None:
            ae.shutdown()

    def __enter__(self) -> PynetdicomSCP:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ae_title}@{LOOPBACK}:{self.port}>"

    # -- recording ---------------------------------------------------------------------------

    def _record(
        self,
        event: Any,
        service: str,
        identifier: Dataset | None = None,
        move_destination: str | None = None,
    ) -> None:
        """Remember one request and wake up waiters."""
        request = ReceivedRequest(
            service=service,
            calling_ae_title=_ae_title(event.assoc.requestor.ae_title),
            called_ae_title=_ae_title(event.assoc.acceptor.ae_title),
            identifier=identifier,
            move_destination=move_destination,
        )
        with self._condition:
            self.requests.append(request)
            self._condition.notify_all()

    def requests_for(self, service: str) -> list[ReceivedRequest]:
        """Return the requests received for one service (``"C-FIND"``...).

        Parameters
        ----------
        service : str
            DIMSE service name.

        Returns
        -------
        list of ReceivedRequest
            In order of arrival.
        """
        with self._condition:
            return [request for request in self.requests if request.service == service]

    def wait_for_requests(
        self, count: int, service: str | None = None, timeout: float = 10.0
    ) -> list[ReceivedRequest]:
        """Block until ``count`` requests (of ``service``, or of any) have arrived.

        Parameters
        ----------
        count : int
            Number of requests expected.
        service : str, optional
            Count only this service.
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        list of ReceivedRequest
            The requests counted.

        Raises
        ------
        TimeoutError
            If fewer arrived within ``timeout``.
        """

        def matching() -> list[ReceivedRequest]:
            return [r for r in self.requests if service is None or r.service == service]

        with self._condition:
            if not self._condition.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                raise TimeoutError(f"{len(matching())} of {count} {service or ''} requests")
            return matching()

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopping; False means the SCP is stopping."""
        if seconds > 0:
            self._stopping.wait(seconds)
        return not self._stopping.is_set()

    # -- handlers ----------------------------------------------------------------------------

    echo_status: int = SUCCESS

    def _on_echo(self, event: Any) -> int:
        self._record(event, "C-ECHO")
        return self.echo_status


class StorageSCP(PynetdicomSCP):
    """A Storage SCP that records every data set it receives.

    Parameters
    ----------
    ae_title : str, optional
        Its AE title.
    output_dir : str or pathlib.Path, optional
        If given, each instance is also written there as ``<SOPInstanceUID>.dcm`` (only when
        the UID is safe as a file name; others are recorded but not written).
    store_status : int, optional
        Status answered to every C-STORE (e.g. ``0xA700`` out of resources).
    **kwargs
        Passed to :class:`PynetdicomSCP`.

    Attributes
    ----------
    received : list of pydicom.dataset.Dataset
        The data sets received (with ``file_meta``), in order of arrival.
    """

    def __init__(
        self,
        ae_title: str = "STORESCP",
        *,
        output_dir: str | Path | None = None,
        store_status: int = SUCCESS,
        **kwargs: Any,
    ) -> None:
        super().__init__(ae_title, **kwargs)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.store_status = store_status
        self.received: list[Dataset] = []

    def configure(self, ae: AE) -> None:
        """Support Verification and the common Storage SOP Classes."""
        ae.supported_contexts = VerificationPresentationContexts + StoragePresentationContexts

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        """Add the C-STORE handler."""
        return [*super().handlers(), (evt.EVT_C_STORE, self._on_store)]

    def _on_store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        self._record(event, "C-STORE", identifier=ds)
        with self._condition:
            self.received.append(ds)
            self._condition.notify_all()
        if self.output_dir is not None and _safe_file_name(str(ds.get("SOPInstanceUID", ""))):
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_dataset(ds, self.output_dir / f"{ds.SOPInstanceUID}.dcm")
        return self.store_status

    def wait_for_datasets(self, count: int, timeout: float = 10.0) -> list[Dataset]:
        """Block until ``count`` data sets have been received.

        Parameters
        ----------
        count : int
            Number expected.
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        list of pydicom.dataset.Dataset
            Everything received so far.

        Raises
        ------
        TimeoutError
            If fewer arrived within ``timeout``.
        """
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"received {len(self.received)} of {count} data sets")
            return list(self.received)


def _safe_file_name(uid: str) -> bool:
    """True if ``uid`` is a plain UID that cannot escape a folder."""
    return 0 < len(uid) <= 64 and all(c.isdigit() or c == "." for c in uid)


FindResponses = Sequence[Dataset] | Callable[[Dataset], Iterable[Dataset]]


class FakeQRSCP(StorageSCP):
    """A scriptable Query/Retrieve SCP (plus Verification, Storage and Worklist FIND).

    All behaviour is read from public attributes at request time, so a test may change it
    between requests.

    Parameters
    ----------
    ae_title : str, optional
        Its AE title.
    find_responses : sequence of Dataset or callable, optional
        Identifiers answered (as Pending) to every C-FIND, or a function of the request
        identifier returning them.
    find_status : int, optional
        Final C-FIND status after the pending ones (e.g. ``0xA700``, ``0xC000``).
    datasets : sequence of Dataset, optional
        Instances C-GET and C-MOVE send, filtered by the Study/Series/SOP Instance UIDs of
        the request identifier (any that are present).
    retrieve_status : int, optional
        If set, C-GET and C-MOVE send nothing and answer this status (e.g. ``0xA701``,
        ``0xC000``).
    move_destinations : mapping of str to int, optional
        Known C-MOVE destinations: AE title to port on 127.0.0.1. Others get ``0xA801``.
    stall_seconds : float, optional
        Delay before every C-FIND/C-GET/C-MOVE response (pending and final).
    ignore_cancel : bool, optional
        Keep going after C-CANCEL (as some PACS do); otherwise answer Cancel (``0xFE00``).
    abort_after : int, optional
        Abort the association after this many pending responses / sub-operations.
    echo_status, store_status : int, optional
        Status answered to C-ECHO and C-STORE.
    **kwargs
        Passed to :class:`PynetdicomSCP` (e.g. ``reject_association=True``).

    Attributes
    ----------
    cancels_seen : int
        How many times a C-CANCEL was noticed (also when ignored).
    """

    def __init__(
        self,
        ae_title: str = "FAKEPACS",
        *,
        find_responses: FindResponses = (),
        find_status: int = SUCCESS,
        datasets: Sequence[Dataset] = (),
        retrieve_status: int | None = None,
        move_destinations: Mapping[str, int] | None = None,
        stall_seconds: float = 0.0,
        ignore_cancel: bool = False,
        abort_after: int | None = None,
        echo_status: int = SUCCESS,
        store_status: int = SUCCESS,
        **kwargs: Any,
    ) -> None:
        super().__init__(ae_title, store_status=store_status, **kwargs)
        self.find_responses = find_responses
        self.find_status = find_status
        self.datasets = list(datasets)
        self.retrieve_status = retrieve_status
        self.move_destinations = dict(move_destinations or {})
        self.stall_seconds = stall_seconds
        self.ignore_cancel = ignore_cancel
        self.abort_after = abort_after
        self.echo_status = echo_status
        self.cancels_seen = 0

    def configure(self, ae: AE) -> None:
        """Support Verification, Q/R (FIND, MOVE, GET), Worklist FIND and Storage.

        Storage contexts accept both SCP/SCU roles, so C-GET requestors can take the Storage
        SCP role (PS3.7 D.3.3.4).
        """
        contexts = VerificationPresentationContexts + QueryRetrievePresentationContexts
        ae.supported_contexts = contexts + BasicWorklistManagementPresentationContexts
        for context in StoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, scu_role=True, scp_role=True)

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        """Add the C-FIND, C-GET and C-MOVE handlers."""
        return [
            *super().handlers(),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_C_MOVE, self._on_move),
        ]

    # -- helpers -----------------------------------------------------------------------------

    def _cancelled(self, event: Any) -> bool:
        """True if the requestor cancelled and we honour it (counts every cancel seen)."""
        if not event.is_cancelled:
            return False
        self.cancels_seen += 1
        return not self.ignore_cancel

    def _should_abort(self, event: Any, sent: int) -> bool:
        """Abort the association once ``abort_after`` responses were sent."""
        if self.abort_after is not None and sent >= self.abort_after:
            event.assoc.abort()
            return True
        return False

    def matching_datasets(self, identifier: Dataset) -> list[Dataset]:
        """Return the :attr:`datasets` selected by a retrieve identifier's UIDs.

        Parameters
        ----------
        identifier : pydicom.dataset.Dataset
            C-GET/C-MOVE identifier.

        Returns
        -------
        list of pydicom.dataset.Dataset
            Matching instances (all of them if the identifier names no UID).
        """
        selected = self.datasets
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            value = identifier.get(keyword)
            if value is None or value == "":
                continue
            values = [value] if isinstance(value, str) else list(value)
            wanted = {str(v) for v in values}
            selected = [ds for ds in selected if str(ds.get(keyword, "")) in wanted]
        return selected

    def _find_answers(self, identifier: Dataset) -> Iterable[Dataset]:
        """The identifiers to answer a C-FIND with."""
        if callable(self.find_responses):
            return self.find_responses(identifier)
        return list(self.find_responses)

    # -- handlers ----------------------------------------------------------------------------

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        self._record(event, "C-FIND", identifier=identifier)
        for sent, answer in enumerate(self._find_answers(identifier)):
            if self._cancelled(event):
                yield CANCEL, None
                return
            if not self._pause(self.stall_seconds) or self._should_abort(event, sent):
                return
            yield PENDING, answer
        if not self._pause(self.stall_seconds):
            return
        yield self.find_status, None

    def _sub_operations(
        self, event: Any, instances: list[Dataset]
    ) -> Iterator[int | tuple[int, Dataset | None]]:
        """Shared C-GET/C-MOVE body after the destination: count, then one per instance."""
        if self.retrieve_status is not None:
            # With zero sub-operations pynetdicom answers Success at once, so announce one.
            yield max(1, len(instances))
            self._pause(self.stall_seconds)
            yield self.retrieve_status, None
            return
        yield len(instances)
        for sent, instance in enumerate(instances):
            if self._cancelled(event):
                yield CANCEL, None
                return
            if not self._pause(self.stall_seconds) or self._should_abort(event, sent):
                return
            yield PENDING, instance

    def _on_get(self, event: Any) -> Iterator[int | tuple[int, Dataset | None]]:
        identifier = event.identifier
        self._record(event, "C-GET", identifier=identifier)
        yield from self._sub_operations(event, self.matching_datasets(identifier))

    def _on_move(self, event: Any) -> Iterator[Any]:
        identifier = event.identifier
        destination = _ae_title(event.move_destination)
        self._record(event, "C-MOVE", identifier=identifier, move_destination=destination)
        port = self.move_destinations.get(destination)
        if port is None:
            yield None, None
            return
        instances = self.matching_datasets(identifier)
        sop_classes = sorted({str(ds.SOPClassUID) for ds in instances if "SOPClassUID" in ds})
        contexts = [build_context(uid) for uid in sop_classes] or None
        yield LOOPBACK, port, {"contexts": contexts}
        yield from self._sub_operations(event, instances)


class SilentPeer:
    """A TCP listener on loopback that accepts connections and never answers.

    Stands for a PACS that hangs: A-ASSOCIATE requests get no reply, so only the client's
    ACSE/connection timeouts end the attempt.

    Attributes
    ----------
    port : int
        Its port on 127.0.0.1 (valid after :meth:`start`).
    connections : int
        How many connections it accepted.
    """

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._sock: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return LOOPBACK

    def start(self) -> SilentPeer:
        """Listen on a free loopback port.

        Returns
        -------
        SilentPeer
            ``self``.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((LOOPBACK, 0))
        sock.listen(16)
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="SilentPeer", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """Accept and hold connections until stopped; read and discard what arrives."""
        assert self._sock is not None
        while not self._stop.is_set():
            readable, _, _ = select.select([self._sock, *self._clients], [], [], 0.05)
            for ready in readable:
                if ready is self._sock:
                    client, _ = self._sock.accept()
                    self._clients.append(client)
                    self.connections += 1
                elif not ready.recv(65536):
                    ready.close()
                    self._clients.remove(ready)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the listening socket.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the serving thread.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SilentPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
