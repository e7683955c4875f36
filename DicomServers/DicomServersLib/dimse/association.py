"""Associations to a :class:`DicomServer`: pynetdicom ones, and direct (single-threaded) ones.

Two kinds of association are opened here, with the same AE titles, timeouts and diagnoses:

- :func:`open_association`: a pynetdicom association (C-ECHO, C-STORE);
- :func:`open_direct`: a :class:`~.upper_layer.DirectAssociation` whose PDUs are read in the
  caller's thread (C-FIND, C-GET, C-MOVE: the bulk paths, see :mod:`.upper_layer` for why).

Every association opened here:

- calls ``server.called_ae_title`` at ``server.host:server.port`` as ``server.calling_ae_title``
  (PS3.8 §7.1.1);
- has explicit connection, ACSE, DIMSE and network (idle) timeouts (:class:`Timeouts`);
- runs over TLS when the server has ``tls_enabled``, with the context of :mod:`.tls`;
- announces a large maximum PDU length (:data:`MAX_PDU_LENGTH`, PS3.8 §D.1), so peers send
  fewer, bigger P-DATA-TF PDUs (DCMTK-based PACS such as Orthanc cap theirs at 128 KiB);
- sets ``TCP_NODELAY`` on its socket as soon as it connects, so small PDUs (C-STORE-RSP,
  C-CANCEL) are not held back by Nagle's algorithm;
- drops pynetdicom's per-PDU logging handlers unless the ``pynetdicom`` logger is enabled
  for DEBUG (they format every PDU even when nothing is logged).

Failures to associate are returned as :class:`~.outcome.Failure` values with a diagnosis
(connection refused, timeout, A-ASSOCIATE-RJ reason, no accepted presentation context).

The pynetdicom part works with pynetdicom 2.1 (Slicer 5.10) and 3.0 (Slicer 5.12+): only public API common to both
is used (``AE.connection_timeout``, ``Association.unbind``, ``evt.EVT_CONN_OPEN`` handlers
taking one ``event`` argument, ``Association.acceptor.primitive`` after a rejection).
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom import _handlers as _pynetdicom_handlers
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from DicomServersLib.dimse import diagnosis, tls
from DicomServersLib.dimse.outcome import Failure
from DicomServersLib.dimse.upper_layer import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    MAX_PDU_LENGTH,
    AssociationAbortedError,
    AssociationRejectedError,
    ConnectError,
    ConnectionLostError,
    DirectAssociation,
    PeerTimeoutError,
    RequestedContext,
    UpperLayerError,
    set_tcp_nodelay,
)
from DicomServersLib.server import DicomServer

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MAX_PDU_LENGTH",
    "Opened",
    "Timeouts",
    "close_association",
    "diagnose_direct",
    "make_ae",
    "open_association",
    "open_direct",
    "resolve_host",
    "set_tcp_nodelay",
]

_LOG = logging.getLogger("pynetdicom")

_STANDARD_HANDLERS: tuple[tuple[Any, Callable[..., Any]], ...] = (
    (evt.EVT_DIMSE_RECV, _pynetdicom_handlers.standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, _pynetdicom_handlers.standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, _pynetdicom_handlers.standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, _pynetdicom_handlers.standard_pdu_sent_handler),
)

Handler = tuple[Any, Callable[..., Any]]


@dataclass(frozen=True)
class Timeouts:
    """The timeouts of one DIMSE operation, in seconds.

    Attributes
    ----------
    connect_s : float
        TCP connection.
    acse_s : float
        Waiting for the answer to the association request (and release).
    idle_s : float
        Longest silence from the peer while an operation runs (pynetdicom's DIMSE and network
        timeouts).
    overall_s : float or None
        Deadline of the whole operation; None for none.
    """

    connect_s: float = 10.0
    acse_s: float = 30.0
    idle_s: float = 30.0
    overall_s: float | None = None

    @classmethod
    def for_server(cls, server: DicomServer, *, overall_s: float | None = None) -> Timeouts:
        """Return the timeouts of a server: its ``timeout_s`` for connect, ACSE and idle."""
        seconds = float(server.timeout_s)
        return cls(connect_s=seconds, acse_s=seconds, idle_s=seconds, overall_s=overall_s)

    def __post_init__(self) -> None:
        for name in ("connect_s", "acse_s", "idle_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name}: must be a number of seconds > 0, got {value!r}")
        if self.overall_s is not None and not self.overall_s > 0:
            raise ValueError(f"overall_s: must be > 0 seconds or None, got {self.overall_s!r}")


def make_ae(server: DicomServer, timeouts: Timeouts, *, ae_title: str | None = None) -> AE:
    """Return a pynetdicom AE configured for one server.

    Parameters
    ----------
    server : DicomServer
        Supplies the calling AE title.
    timeouts : Timeouts
        Connection, ACSE and idle timeouts.
    ae_title : str, optional
        Use this AE title instead of ``server.calling_ae_title`` (the storage listener uses
        ``move_destination_ae_title``).

    Returns
    -------
    pynetdicom.AE
        The application entity (no presentation contexts yet).
    """
    ae = AE(ae_title=ae_title or server.calling_ae_title)
    ae.connection_timeout = timeouts.connect_s
    ae.acse_timeout = timeouts.acse_s
    ae.dimse_timeout = timeouts.idle_s
    ae.network_timeout = timeouts.idle_s
    ae.maximum_pdu_size = MAX_PDU_LENGTH
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    return ae


def _association_socket(assoc: Association) -> socket.socket | None:
    """The TCP socket under an association (pynetdicom 2.1 and 3.0: ``dul.socket.socket``)."""
    transport = getattr(assoc.dul, "socket", None)
    return getattr(transport, "socket", None)


def quiet_logging(assoc: Association) -> None:
    """Unbind pynetdicom's per-PDU/DIMSE log handlers unless DEBUG logging is on.

    They format every PDU and message for the log even when the log level discards them,
    which costs a third of the time of a large C-FIND.
    """
    if _LOG.isEnabledFor(logging.DEBUG):
        return
    for event, handler in _STANDARD_HANDLERS:
        try:
            assoc.unbind(event, handler)
        except (KeyError, ValueError):
            pass


def on_connection_open(event: Any) -> None:
    """``EVT_CONN_OPEN`` handler: TCP_NODELAY, quiet logging, remember our local address."""
    assoc = event.assoc
    sock = _association_socket(assoc)
    set_tcp_nodelay(sock)
    if sock is not None:
        try:
            assoc._dicomservers_local_host = str(sock.getsockname()[0])
        except OSError:
            pass
    quiet_logging(assoc)


def local_host_of(assoc: Association | None) -> str | None:
    """Our IP address on an association's connection (as the peer sees it), if known."""
    return getattr(assoc, "_dicomservers_local_host", None) if assoc is not None else None


def resolve_host(host: str, port: int) -> str:
    """Resolve a host name to an address pynetdicom accepts (IPv4 preferred).

    Raises
    ------
    socket.gaierror
        The name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    infos.sort(key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    return str(infos[0][4][0])


def _probe_connect_error(host: str, port: int, timeout_s: float) -> BaseException | None:
    """Connect once more without DICOM to learn why pynetdicom's connection failed."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as error:
        return error


@dataclass
class Opened:
    """The result of :func:`open_association`: an association, or why there is none.

    Attributes
    ----------
    assoc : pynetdicom.association.Association or None
        The established association (release it with :func:`close_association`).
    failure : Failure or None
        Why it could not be established.
    local_host : str or None
        Our IP address on the connection (for "register AE … at host …" advice).
    """

    assoc: Association | None
    failure: Failure | None
    local_host: str | None = None

    @property
    def ok(self) -> bool:
        """True when the association is established."""
        return self.assoc is not None and self.failure is None


def open_association(
    server: DicomServer,
    contexts: Sequence[PresentationContext],
    *,
    timeouts: Timeouts,
    service: str,
    required: Iterable[str] = (),
    roles: Sequence[Any] = (),
    handlers: Sequence[Handler] = (),
    ae_title: str | None = None,
) -> Opened:
    """Open a pynetdicom association to a server; failures are returned, not raised.

    Parameters
    ----------
    server : DicomServer
        Called AE title, host, port and calling AE title.
    contexts : sequence of PresentationContext
        Presentation contexts to propose (at most 128, PS3.8 §9.3.2.2).
    timeouts : Timeouts
        Connection, ACSE and idle timeouts.
    service : str
        What the association is for (``C-ECHO``, ``C-GET``…), for the diagnosis when a
        ``required`` abstract syntax is not accepted.
    required : iterable of str, optional
        Abstract syntaxes that must be accepted; otherwise the association is released and a
        ``not_supported`` failure returned.
    roles : sequence, optional
        SCP/SCU role selection items (``pynetdicom.build_role``), e.g. for C-GET.
    handlers : sequence of (event, handler), optional
        Event handlers bound to the association.
    ae_title : str, optional
        Calling AE title instead of ``server.calling_ae_title``.

    Returns
    -------
    Opened
        The association, or the failure with its diagnosis.

    Raises
    ------
    ValueError
        More than 128 presentation contexts (misuse).
    """
    if len(contexts) > 128:
        raise ValueError(f"contexts: at most 128 presentation contexts, got {len(contexts)}")
    try:
        address = resolve_host(server.host, server.port)
    except (socket.gaierror, UnicodeError) as error:
        gai = error if isinstance(error, socket.gaierror) else socket.gaierror(str(error))
        return Opened(
            None, diagnosis.connection_failed(server, diagnosis.connect_error_kind(gai), 0, gai)
        )
    try:
        context = tls.client_context(server)
    except tls.TlsSetupError as error:
        return Opened(None, tls.setup_failure(server, error))
    ae = make_ae(server, timeouts, ae_title=ae_title)
    all_handlers: list[Any] = [(evt.EVT_CONN_OPEN, on_connection_open), *handlers]
    started = time.monotonic()
    assoc = ae.associate(
        address,
        server.port,
        contexts=list(contexts),
        ae_title=server.called_ae_title,
        max_pdu=MAX_PDU_LENGTH,
        ext_neg=list(roles) or None,
        evt_handlers=all_handlers,
        tls_args=(context, tls.server_hostname(server)) if context is not None else None,
    )
    local_host = local_host_of(assoc)
    if assoc.is_established:
        quiet_logging(assoc)
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        missing = [uid for uid in required if uid not in accepted]
        if missing:
            close_association(assoc)
            return Opened(None, diagnosis.service_not_supported(server, service), local_host)
        return Opened(assoc, None, local_host)
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        result = int(getattr(primitive, "result", 1) or 1)
        source = int(getattr(primitive, "result_source", 1) or 1)
        reason = int(getattr(primitive, "diagnostic", 1) or 1)
        failure = diagnosis.association_rejected(server, result, source, reason, local_host)
        return Opened(None, failure, local_host)
    elapsed = time.monotonic() - started
    if context is not None:
        # pynetdicom only logs why the TLS connection failed: find out with one more handshake.
        tls_error = tls.probe_handshake(server, context, address, timeouts.connect_s)
        if tls_error is not None:
            failure = tls.handshake_failure(server, tls_error, timeouts.connect_s)
            return Opened(None, failure, local_host)
    if local_host is None:
        # The TCP connection was never made: find out why with a plain connect.
        probed = _probe_connect_error(address, server.port, timeouts.connect_s)
        if probed is None:
            probed = TimeoutError("connection not established")
        kind = diagnosis.connect_error_kind(probed)
        return Opened(None, diagnosis.connection_failed(server, kind, timeouts.connect_s, probed))
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        return Opened(None, diagnosis.service_not_supported(server, service), local_host)
    if elapsed >= timeouts.acse_s * 0.95:
        return Opened(None, diagnosis.no_association_answer(server, timeouts.acse_s), local_host)
    return Opened(None, diagnosis.association_aborted(server, "association"), local_host)


def close_association(assoc: Association | None, *, abort: bool = False) -> None:
    """Release an association (or abort it), never raising.

    Parameters
    ----------
    assoc : Association or None
        The association; None is ignored.
    abort : bool, optional
        Send A-ABORT instead of A-RELEASE (after a cancel the peer ignored, or an error).
    """
    if assoc is None:
        return
    try:
        if assoc.is_established:
            if abort:
                assoc.abort()
            else:
                assoc.release()
                if assoc.is_established:  # release timed out
                    assoc.abort()
    except Exception:  # closing must never fail the caller
        try:
            assoc.abort()
        except Exception:
            pass


def silence_failure(
    server: DicomServer,
    assoc: Association,
    during: str,
    timeouts: Timeouts,
    waited_s: float,
) -> Failure:
    """Diagnose a pynetdicom request that got no valid response (empty status data set).

    pynetdicom answers an empty ``Dataset`` when the DIMSE timeout expired, the peer aborted,
    the connection dropped or the response was invalid. The time waited tells a timeout from
    the others.

    Parameters
    ----------
    server : DicomServer
        The server.
    assoc : Association
        The association the request went on.
    during : str
        The service (``C-ECHO``, ``C-GET``…).
    timeouts : Timeouts
        The timeouts in force.
    waited_s : float
        Seconds since the last message from the peer.

    Returns
    -------
    Failure
        Idle timeout, or aborted / connection lost.
    """
    if waited_s >= timeouts.idle_s * 0.95:
        return diagnosis.timed_out(server, during, timeouts.idle_s)
    return diagnosis.association_aborted(server, during)


# -- direct (single-threaded) associations ---------------------------------------------------


def diagnose_direct(
    server: DicomServer,
    error: UpperLayerError,
    during: str,
    timeouts: Timeouts,
    local_host: str | None = None,
) -> Failure:
    """Turn an :mod:`.upper_layer` error into a diagnosed :class:`Failure`.

    Parameters
    ----------
    server : DicomServer
        The server.
    error : UpperLayerError
        What the direct association raised.
    during : str
        ``association`` while connecting, else the service (``C-FIND``, ``C-GET``…).
    timeouts : Timeouts
        The timeouts in force.
    local_host : str, optional
        Our IP address as the PACS sees it.

    Returns
    -------
    Failure
        The diagnosis.
    """
    if isinstance(error, ConnectError):
        return diagnosis.connection_failed(server, error.kind, timeouts.connect_s, error.error)
    if isinstance(error, AssociationRejectedError):
        return diagnosis.association_rejected(
            server, error.result, error.source, error.reason, local_host
        )
    if isinstance(error, AssociationAbortedError):
        return diagnosis.association_aborted(server, during, error.source, error.reason)
    if isinstance(error, PeerTimeoutError):
        if error.phase == "association":
            return diagnosis.no_association_answer(server, timeouts.acse_s)
        if error.phase == "overall" and timeouts.overall_s is not None:
            return diagnosis.timed_out(server, during, timeouts.overall_s, overall=True)
        return diagnosis.timed_out(server, during, timeouts.idle_s)
    if isinstance(error, ConnectionLostError):
        return diagnosis.association_aborted(server, during)
    return diagnosis.protocol_error(server, during, str(error))


def open_direct(
    server: DicomServer,
    contexts: Sequence[RequestedContext],
    *,
    timeouts: Timeouts,
    service: str,
    required: Iterable[str] = (),
    deadline: float | None = None,
) -> tuple[DirectAssociation | None, Failure | None]:
    """Open a :class:`~.upper_layer.DirectAssociation` to a server; failures are returned.

    Parameters
    ----------
    server : DicomServer
        Called AE title, host, port and calling AE title.
    contexts : sequence of RequestedContext
        Presentation contexts to propose.
    timeouts : Timeouts
        Connection, ACSE and idle timeouts.
    service : str
        What it is for (``C-FIND``, ``C-GET``, ``C-MOVE``, ``MWL``), for diagnoses.
    required : iterable of str, optional
        Abstract syntaxes that must be accepted (else ``not_supported``).
    deadline : float, optional
        ``time.monotonic()`` deadline of the whole operation.

    Returns
    -------
    (DirectAssociation or None, Failure or None)
        The association, or the diagnosed failure.
    """
    try:
        address = resolve_host(server.host, server.port)
    except (OSError, UnicodeError) as error:
        gai = error if isinstance(error, OSError) else socket.gaierror(str(error))
        kind = diagnosis.connect_error_kind(gai)
        return None, diagnosis.connection_failed(server, kind, timeouts.connect_s, gai)
    try:
        context = tls.client_context(server)
    except tls.TlsSetupError as error:
        return None, tls.setup_failure(server, error)
    secure = None if context is None else tls.secure_socket(context, tls.server_hostname(server))
    try:
        assoc = DirectAssociation.open(
            address,
            server.port,
            server.called_ae_title,
            server.calling_ae_title,
            contexts,
            connect_timeout=timeouts.connect_s,
            acse_timeout=timeouts.acse_s,
            idle_timeout=timeouts.idle_s,
            deadline=deadline,
            secure=secure,
        )
    except UpperLayerError as error:
        # With TLS 1.3 a refused client certificate shows only at the first read.
        tls_error = tls.find_tls_error(error) if context is not None else None
        if context is not None and tls_error is not None:
            if isinstance(tls_error, ssl.SSLEOFError):  # the alert saying why came too late
                tls_error = tls.probe_handshake(server, context, address, timeouts.connect_s) or (
                    tls_error
                )
            return None, tls.handshake_failure(server, tls_error, timeouts.connect_s)
        return None, diagnose_direct(server, error, "association", timeouts)
    missing = [uid for uid in required if assoc.context_for(uid) is None]
    if missing or not assoc.accepted:
        assoc.release()
        return None, diagnosis.service_not_supported(server, service)
    return assoc, None
