"""A small synchronous DICOM Upper Layer client (PS3.8) for high-volume C-FIND.

pynetdicom runs each association in three threads (the DUL reactor reading PDUs, the
association reactor, the caller) that hand every PDU and message over through queues. For a
study list of thousands of C-FIND answers this hand-over, not the network, is the cost:
measured against Orthanc with 5,000 studies, pynetdicom takes 5× DCMTK's ``findscu``
(3× with its logging handlers off). Reading the PDUs in the caller's thread, as ``findscu``
does, takes 0.8×. So C-FIND (study lists, series lists, instance lists, the modality
worklist) goes through this module; C-GET, C-MOVE, C-STORE and C-ECHO go through pynetdicom
(:mod:`.association`), where a large transfer is not dominated by per-message overhead.

Scope: the requestor side of one association with presentation contexts of the default
roles, P-DATA messages, release and abort. Every wait has a timeout; every way the peer can
end the association becomes a typed :class:`UpperLayerError` that the caller turns into a
diagnosis. PDU layouts are those of PS3.8 §9.3; item types of PS3.8 §9.3.2-§9.3.3 and
Annex D.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydicom.uid import generate_uid

from DicomServersLib.dimse import diagnosis

__all__ = [
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "MAX_PDU_LENGTH",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "AcceptedContext",
    "AssociationAbortedError",
    "AssociationRejectedError",
    "AssociationReleasedError",
    "AssociationRequest",
    "ConnectError",
    "ConnectionLostError",
    "DirectAssociation",
    "Message",
    "PeerTimeoutError",
    "ProtocolError",
    "RequestedContext",
    "UpperLayerError",
    "set_tcp_nodelay",
]

MAX_PDU_LENGTH = 1_048_576
"""Maximum PDU length we announce for receiving (PS3.8 §D.1): 1 MiB."""

IMPLEMENTATION_CLASS_UID = str(generate_uid(entropy_srcs=["DicomServers", "implementation"]))
"""Our Implementation Class UID (PS3.7 §D.3.3.2), stable across runs (under pydicom's root)."""

IMPLEMENTATION_VERSION_NAME = "DICOMSERVERS_01"
"""Our Implementation Version Name (at most 16 characters)."""

APPLICATION_CONTEXT_NAME = b"1.2.840.10008.3.1.1.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"

# PDU types (PS3.8 §9.3.1)
_ASSOCIATE_RQ = 0x01
_ASSOCIATE_AC = 0x02
_ASSOCIATE_RJ = 0x03
_P_DATA_TF = 0x04
_RELEASE_RQ = 0x05
_RELEASE_RP = 0x06
_ABORT = 0x07

_HEADER = struct.Struct(">BBL")
_ITEM = struct.Struct(">BBH")
_PDV = struct.Struct(">LBB")
_READ_BUFFER = 1 << 18
_LARGEST_PDU = 64 << 20  # refuse absurd PDU lengths from a broken peer


def set_tcp_nodelay(sock: socket.socket | None) -> None:
    """Turn Nagle's algorithm off on a TCP socket (no-op for None or non-TCP sockets)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class UpperLayerError(Exception):
    """The association could not be made or went away; subclasses say how."""


class ConnectError(UpperLayerError):
    """The TCP connection could not be made.

    Attributes
    ----------
    kind : str
        ``host_unknown``, ``refused``, ``connect_timeout`` or ``unreachable``.
    error : OSError
        The underlying error.
    """

    def __init__(self, kind: str, error: OSError) -> None:
        super().__init__(f"{kind}: {error}")
        self.kind = kind
        self.error = error


class AssociationRejectedError(UpperLayerError):
    """The peer sent A-ASSOCIATE-RJ (PS3.8 §9.3.4)."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        super().__init__(f"association rejected: result {result}, source {source}, {reason}")
        self.result = result
        self.source = source
        self.reason = reason


class AssociationAbortedError(UpperLayerError):
    """The peer sent A-ABORT (PS3.8 §9.3.8)."""

    def __init__(self, source: int, reason: int) -> None:
        super().__init__(f"association aborted: source {source}, reason {reason}")
        self.source = source
        self.reason = reason


class ConnectionLostError(UpperLayerError):
    """The TCP connection closed (or failed) without an A-ABORT."""


class PeerTimeoutError(UpperLayerError):
    """The peer said nothing for too long.

    Attributes
    ----------
    phase : str
        ``association`` (no answer to the request), ``idle`` (no message) or ``overall``
        (the operation's deadline passed).
    seconds : float
        The timeout that expired.
    """

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"{phase} timeout after {seconds:g} s")
        self.phase = phase
        self.seconds = seconds


class ProtocolError(UpperLayerError):
    """The peer sent something that is not valid DICOM Upper Layer protocol."""


@dataclass(frozen=True)
class RequestedContext:
    """A presentation context to propose: one abstract syntax, its transfer syntaxes.

    ``scp_role`` asks, by SCP/SCU Role Selection (PS3.7 §D.3.3.4), that we act as the SCP of
    this abstract syntax (a C-GET requestor receiving C-STORE requests).
    """

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
    scp_role: bool = False


@dataclass(frozen=True)
class AcceptedContext:
    """A presentation context the peer accepted (PS3.8 §9.3.3.2)."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str

    @property
    def explicit_vr(self) -> bool:
        """True when data sets on this context are encoded with explicit VRs."""
        return self.transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN


@dataclass
class Message:
    """A DIMSE message received: its command set elements and its data set bytes.

    Attributes
    ----------
    context_id : int
        The presentation context it came on.
    command : dict of int to bytes
        Command set elements (group 0000), element number to raw value.
    dataset : bytes or None
        The encoded data set (identifier), when the message has one.
    """

    context_id: int
    command: dict[int, bytes]
    dataset: bytes | None

    def us(self, element: int) -> int | None:
        """Return a US command element (e.g. ``0x0900`` Status), or None if absent."""
        value = self.command.get(element)
        if value is None or len(value) < 2:
            return None
        return int(struct.unpack_from("<H", value)[0])

    def text(self, element: int) -> str:
        """Return a text command element (UI, LO), stripped of padding."""
        value = self.command.get(element, b"")
        return value.decode("latin-1").strip(" \0")

    @property
    def command_field(self) -> int | None:
        """(0000,0100) Command Field."""
        return self.us(0x0100)

    @property
    def status(self) -> int | None:
        """(0000,0900) Status, for responses."""
        return self.us(0x0900)


def _item(item_type: int, data: bytes) -> bytes:
    return _ITEM.pack(item_type, 0, len(data)) + data


def _ae(title: str) -> bytes:
    raw = title.encode("ascii")
    if not 0 < len(raw) <= 16:
        raise ValueError(f"AE title {title!r}: must be 1 to 16 ASCII characters")
    return raw.ljust(16)


def encode_associate_rq(
    called_ae_title: str,
    calling_ae_title: str,
    contexts: Sequence[RequestedContext],
    max_pdu_length: int = MAX_PDU_LENGTH,
) -> bytes:
    """Encode an A-ASSOCIATE-RQ PDU (PS3.8 §9.3.2).

    Parameters
    ----------
    called_ae_title, calling_ae_title : str
        AE titles (1-16 ASCII characters).
    contexts : sequence of RequestedContext
        Presentation contexts, given odd IDs 1, 3, 5… in order (at most 128).
    max_pdu_length : int, optional
        Largest P-DATA-TF PDU we accept (PS3.8 §D.1).

    Returns
    -------
    bytes
        The PDU.
    """
    if not 0 < len(contexts) <= 128:
        raise ValueError(f"contexts: 1 to 128 presentation contexts, got {len(contexts)}")
    body = struct.pack(">HH", 1, 0) + _ae(called_ae_title) + _ae(calling_ae_title) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT_NAME)
    for index, context in enumerate(contexts):
        sub = _item(0x30, context.abstract_syntax.encode("ascii"))
        for syntax in context.transfer_syntaxes:
            sub += _item(0x40, syntax.encode("ascii"))
        body += _item(0x20, struct.pack(">BBBB", 2 * index + 1, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">L", max_pdu_length))
    user += _item(0x52, IMPLEMENTATION_CLASS_UID.encode("ascii"))
    for uid in dict.fromkeys(c.abstract_syntax for c in contexts if c.scp_role):
        raw = uid.encode("ascii")
        user += _item(0x54, struct.pack(">H", len(raw)) + raw + bytes([0, 1]))
    user += _item(0x55, IMPLEMENTATION_VERSION_NAME.encode("ascii"))
    body += _item(0x50, user)
    return _HEADER.pack(_ASSOCIATE_RQ, 0, len(body)) + body


def _items(data: bytes | bytearray, start: int) -> list[tuple[int, bytes]]:
    """Split a run of items (type, reserved, 2-byte length, value) into (type, value)."""
    items = []
    pos = start
    while pos + 4 <= len(data):
        item_type, _, length = _ITEM.unpack_from(data, pos)
        value = bytes(data[pos + 4 : pos + 4 + length])
        if len(value) != length:
            raise ProtocolError("truncated item in an A-ASSOCIATE PDU")
        items.append((item_type, value))
        pos += 4 + length
    return items


def decode_associate_ac(
    body: bytes | bytearray, requested: Sequence[RequestedContext]
) -> tuple[dict[int, AcceptedContext], int]:
    """Decode an A-ASSOCIATE-AC PDU body (PS3.8 §9.3.3).

    Parameters
    ----------
    body : bytes
        The PDU after its 6-byte header.
    requested : sequence of RequestedContext
        What was proposed, in order (context IDs 1, 3, 5…).

    Returns
    -------
    accepted : dict of int to AcceptedContext
        The accepted contexts by ID.
    max_pdu_length : int
        The largest PDU the peer accepts (0 = unlimited).
    """
    if len(body) < 68:
        raise ProtocolError("A-ASSOCIATE-AC shorter than its fixed fields")
    accepted: dict[int, AcceptedContext] = {}
    max_length = 0
    for item_type, value in _items(body, 68):
        if item_type == 0x21 and len(value) >= 4:
            context_id, result = value[0], value[2]
            index = (context_id - 1) // 2
            if result != 0 or context_id % 2 == 0 or not 0 <= index < len(requested):
                continue
            syntaxes = [v for t, v in _items(value, 4) if t == 0x40]
            if not syntaxes:
                continue
            accepted[context_id] = AcceptedContext(
                context_id,
                requested[index].abstract_syntax,
                syntaxes[0].decode("ascii", "replace").strip("\0 "),
            )
        elif item_type == 0x50:
            for sub_type, sub in _items(value, 0):
                if sub_type == 0x51 and len(sub) == 4:
                    max_length = int(struct.unpack(">L", sub)[0])
    return accepted, max_length


def encode_command(elements: Sequence[tuple[int, bytes]]) -> bytes:
    """Encode a command set (group 0000, implicit VR little endian, PS3.7 §6.3.1).

    Parameters
    ----------
    elements : sequence of (element number, raw value)
        In ascending element order, without (0000,0000) Command Group Length.

    Returns
    -------
    bytes
        The command set with its group length.
    """
    parts = []
    for element, value in elements:
        if len(value) % 2:
            value += b"\0"
        parts.append(struct.pack("<HHL", 0, element, len(value)) + value)
    body = b"".join(parts)
    return struct.pack("<HHLL", 0, 0, 4, len(body)) + body


def decode_command(data: bytes) -> dict[int, bytes]:
    """Decode a command set into element number → raw value."""
    command: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, element, length = struct.unpack_from("<HHL", data, pos)
        pos += 8
        if group != 0 or pos + length > len(data):
            raise ProtocolError("malformed command set")
        command[element] = data[pos : pos + length]
        pos += length
    return command


class AssociationReleasedError(UpperLayerError):
    """The peer released the association (A-RELEASE-RQ); it has been answered."""


@dataclass(frozen=True)
class AssociationRequest:
    """An A-ASSOCIATE-RQ received by an acceptor (PS3.8 §9.3.2).

    Attributes
    ----------
    called_ae_title, calling_ae_title : str
        AE titles, without padding.
    contexts : list of (int, str, list of str)
        Proposed presentation contexts: ID, abstract syntax, transfer syntaxes.
    max_pdu_length : int
        Largest PDU the requestor accepts (0 = unlimited).
    """

    called_ae_title: str
    calling_ae_title: str
    contexts: list[tuple[int, str, list[str]]]
    max_pdu_length: int


def decode_associate_rq(body: bytes | bytearray) -> AssociationRequest:
    """Decode an A-ASSOCIATE-RQ PDU body (PS3.8 §9.3.2)."""
    if len(body) < 68:
        raise ProtocolError("A-ASSOCIATE-RQ shorter than its fixed fields")
    called = body[4:20].decode("ascii", "replace").strip()
    calling = body[20:36].decode("ascii", "replace").strip()
    contexts: list[tuple[int, str, list[str]]] = []
    max_length = 0
    for item_type, value in _items(body, 68):
        if item_type == 0x20 and len(value) >= 4:
            abstract = ""
            syntaxes: list[str] = []
            for sub_type, sub in _items(value, 4):
                text = sub.decode("ascii", "replace").strip("\0 ")
                if sub_type == 0x30:
                    abstract = text
                elif sub_type == 0x40:
                    syntaxes.append(text)
            contexts.append((value[0], abstract, syntaxes))
        elif item_type == 0x50:
            for sub_type, sub in _items(value, 0):
                if sub_type == 0x51 and len(sub) == 4:
                    max_length = int(struct.unpack(">L", sub)[0])
    return AssociationRequest(called, calling, contexts, max_length)


def encode_associate_ac(
    request: AssociationRequest, chosen: dict[int, str | None], max_pdu_length: int
) -> bytes:
    """Encode an A-ASSOCIATE-AC answering ``request`` (PS3.8 §9.3.3).

    Parameters
    ----------
    request : AssociationRequest
        The request answered.
    chosen : dict of int to str or None
        Per context ID, the transfer syntax accepted, or None to refuse the context
        (reason 3, abstract syntax not supported).
    max_pdu_length : int
        Largest PDU we accept.
    """
    body = struct.pack(">HH", 1, 0)
    body += request.called_ae_title.encode("ascii", "replace")[:16].ljust(16)
    body += request.calling_ae_title.encode("ascii", "replace")[:16].ljust(16) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT_NAME)
    for context_id, _, syntaxes in request.contexts:
        syntax = chosen.get(context_id)
        result = 0 if syntax else 3
        value = (syntax or (syntaxes[0] if syntaxes else IMPLICIT_VR_LITTLE_ENDIAN)).encode()
        body += _item(0x21, struct.pack(">BBBB", context_id, 0, result, 0) + _item(0x40, value))
    user = _item(0x51, struct.pack(">L", max_pdu_length))
    user += _item(0x52, IMPLEMENTATION_CLASS_UID.encode("ascii"))
    user += _item(0x55, IMPLEMENTATION_VERSION_NAME.encode("ascii"))
    body += _item(0x50, user)
    return _HEADER.pack(_ASSOCIATE_AC, 0, len(body)) + body


#: Chooses, for an acceptor, the transfer syntax of a proposed context (None refuses it).
ContextChooser = Callable[[str, Sequence[str]], "str | None"]

#: Decides whether an acceptor takes an association: None, or (result, source, reason) of a
#: rejection (PS3.8 Table 9-21).
RequestCheck = Callable[[AssociationRequest], "tuple[int, int, int] | None"]


class DirectAssociation:
    """One association whose PDUs are read in the caller's thread.

    Open one as requestor with :meth:`open`, or take one as acceptor with :meth:`accept`;
    end it with :meth:`release` or :meth:`abort` (or use it as a context manager, which
    releases, or aborts after an error). :meth:`send_message` and :meth:`abort` may be called
    from another thread than the reader (to send C-CANCEL, or to stop a transfer).

    Attributes
    ----------
    accepted : dict of int to AcceptedContext
        The accepted presentation contexts by ID.
    peer_max_pdu : int
        Largest PDU the peer accepts (0 = unlimited).
    peer_ae_title : str
        The other side's AE title.
    local_host : str
        Our IP address on this connection.
    deadline : float or None
        ``time.monotonic()`` value after which reads raise ``PeerTimeoutError("overall")``.
    aborted_locally : bool
        True once :meth:`abort` was called (reads then fail with ConnectionLostError).
    """

    def __init__(
        self,
        sock: socket.socket,
        reader: _SocketReader,
        accepted: dict[int, AcceptedContext],
        peer_max_pdu: int,
        idle_timeout: float,
        acse_timeout: float,
        deadline: float | None,
        peer_ae_title: str = "",
    ) -> None:
        self._sock = sock
        self._reader = reader
        self.accepted = accepted
        self.peer_max_pdu = peer_max_pdu
        self.peer_ae_title = peer_ae_title
        self.idle_timeout = idle_timeout
        self.acse_timeout = acse_timeout
        self.deadline = deadline
        self.local_host = str(sock.getsockname()[0])
        self.aborted_locally = False
        self._pdvs: deque[tuple[int, int, memoryview]] = deque()
        self._send_lock = threading.Lock()
        self._closed = False

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        called_ae_title: str,
        calling_ae_title: str,
        contexts: Sequence[RequestedContext],
        *,
        connect_timeout: float,
        acse_timeout: float,
        idle_timeout: float,
        deadline: float | None = None,
        secure: Callable[[socket.socket], socket.socket] | None = None,
    ) -> DirectAssociation:
        """Connect and negotiate an association as requestor (PS3.8 §7.1).

        ``secure``, when given, turns the connected socket into a TLS one (it runs the
        handshake within the connection timeout; see :mod:`.tls`).

        Raises
        ------
        ConnectError, AssociationRejectedError, AssociationAbortedError, ConnectionLostError,
        PeerTimeoutError, ProtocolError
            The association could not be established.
        ValueError
            An AE title or the contexts are invalid (misuse).
        """
        request = encode_associate_rq(called_ae_title, calling_ae_title, contexts)
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as error:
            raise ConnectError(diagnosis.connect_error_kind(error), error) from error
        set_tcp_nodelay(sock)
        try:
            if secure is not None:
                sock = secure(sock)
            sock.settimeout(acse_timeout)
            try:
                sock.sendall(request)
            except TimeoutError as error:
                raise PeerTimeoutError("association", acse_timeout) from error
            except OSError as error:  # reset, or a TLS alert: the peer refused the connection
                raise ConnectionLostError(str(error)) from error
            reader = _SocketReader(sock)
            pdu_type, body = _read_pdu(reader, "association", acse_timeout)
            if pdu_type == _ASSOCIATE_RJ and len(body) >= 4:
                raise AssociationRejectedError(body[1], body[2], body[3])
            if pdu_type == _ABORT and len(body) >= 4:
                raise AssociationAbortedError(body[2], body[3])
            if pdu_type != _ASSOCIATE_AC:
                raise ProtocolError(
                    f"unexpected PDU type 0x{pdu_type:02X} instead of A-ASSOCIATE-AC"
                )
            accepted, peer_max = decode_associate_ac(body, contexts)
        except BaseException:
            sock.close()
            raise
        return cls(
            sock, reader, accepted, peer_max, idle_timeout, acse_timeout, deadline, called_ae_title
        )

    @classmethod
    def accept(
        cls,
        sock: socket.socket,
        choose: ContextChooser,
        *,
        acse_timeout: float,
        idle_timeout: float,
        check: RequestCheck | None = None,
        max_pdu_length: int = MAX_PDU_LENGTH,
    ) -> DirectAssociation:
        """Take an association on an accepted TCP connection, as acceptor (PS3.8 §7.1).

        Parameters
        ----------
        sock : socket.socket
            The connection (closed on failure).
        choose : ContextChooser
            Picks the transfer syntax of each proposed context, or refuses it.
        acse_timeout, idle_timeout : float
            Seconds to wait for the request, and for later messages.
        check : RequestCheck, optional
            May reject the request (e.g. an unknown called AE title).
        max_pdu_length : int, optional
            Largest PDU we accept.

        Raises
        ------
        UpperLayerError
            No valid request arrived, or it was rejected.
        """
        set_tcp_nodelay(sock)
        try:
            sock.settimeout(acse_timeout)
            reader = _SocketReader(sock)
            pdu_type, body = _read_pdu(reader, "association", acse_timeout)
            if pdu_type != _ASSOCIATE_RQ:
                raise ProtocolError(
                    f"unexpected PDU type 0x{pdu_type:02X} instead of A-ASSOCIATE-RQ"
                )
            request = decode_associate_rq(body)
            rejection = check(request) if check is not None else None
            if rejection is not None:
                result, source, reason = rejection
                sock.sendall(_HEADER.pack(_ASSOCIATE_RJ, 0, 4) + bytes([0, result, source, reason]))
                raise AssociationRejectedError(result, source, reason)
            chosen = {
                cid: choose(abstract, syntaxes) for cid, abstract, syntaxes in request.contexts
            }
            sock.sendall(encode_associate_ac(request, chosen, max_pdu_length))
        except BaseException:
            sock.close()
            raise
        accepted = {
            cid: AcceptedContext(cid, abstract, syntax)
            for (cid, abstract, _), syntax in zip(request.contexts, chosen.values())
            if syntax
        }
        return cls(
            sock,
            reader,
            accepted,
            request.max_pdu_length,
            idle_timeout,
            acse_timeout,
            None,
            request.calling_ae_title,
        )

    def context_for(self, abstract_syntax: str) -> AcceptedContext | None:
        """Return the accepted context of an abstract syntax, if any."""
        for context in self.accepted.values():
            if context.abstract_syntax == abstract_syntax:
                return context
        return None

    # -- P-DATA ------------------------------------------------------------------------------

    def send_message(self, context_id: int, command: bytes, dataset: bytes | None = None) -> None:
        """Send a DIMSE message as P-DATA-TF PDUs fragmented to the peer's maximum length.

        Thread-safe: messages from different threads are never interleaved.
        """
        limit = self.peer_max_pdu - 6 if self.peer_max_pdu > 6 else 1 << 20
        pdus = []
        for data, is_command in ((command, True), (dataset, False)):
            if data is None:
                continue
            view = memoryview(data)
            offset = 0
            while True:
                chunk = view[offset : offset + limit]
                offset += len(chunk)
                last = offset >= len(data)
                control = (1 if is_command else 0) | (2 if last else 0)
                pdus.append(_HEADER.pack(_P_DATA_TF, 0, 6 + len(chunk)))
                pdus.append(_PDV.pack(2 + len(chunk), context_id, control))
                pdus.append(bytes(chunk))
                if last:
                    break
        self._send(b"".join(pdus))

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            if self._closed:
                raise ConnectionLostError("the association is closed")
            try:
                self._sock.sendall(data)
            except TimeoutError as error:
                raise PeerTimeoutError("idle", self.idle_timeout) from error
            except OSError as error:
                raise ConnectionLostError(str(error)) from error

    def receive_message(self) -> Message:
        """Read the next complete DIMSE message (PS3.8 Annex E fragments).

        Raises
        ------
        AssociationAbortedError, AssociationReleasedError, ConnectionLostError,
        PeerTimeoutError, ProtocolError
            The association ended or the peer went silent.
        """
        command_parts: list[memoryview] = []
        data_parts: list[memoryview] = []
        command: dict[int, bytes] | None = None
        context_id = 0
        while True:
            if not self._pdvs:
                self._read_p_data()
            pdv_context, control, data = self._pdvs.popleft()
            if control & 1:
                if command is not None:
                    raise ProtocolError("a command fragment arrived inside a data set")
                command_parts.append(data)
                if control & 2:
                    context_id = pdv_context
                    command = decode_command(b"".join(command_parts))
                    data_set_type = struct.unpack("<H", command.get(0x0800, b"\x01\x01")[:2])[0]
                    if data_set_type == 0x0101:
                        return Message(context_id, command, None)
            else:
                if command is None:
                    raise ProtocolError("a data set fragment arrived before its command")
                data_parts.append(data)
                if control & 2:
                    return Message(context_id, command, b"".join(data_parts))

    def _timeout(self) -> tuple[float, str]:
        """The read timeout now: the idle timeout, or less if the deadline is nearer."""
        if self.deadline is None:
            return self.idle_timeout, "idle"
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise PeerTimeoutError("overall", 0.0)
        if remaining < self.idle_timeout:
            return remaining, "overall"
        return self.idle_timeout, "idle"

    def _read_p_data(self) -> None:
        """Read PDUs until one P-DATA-TF arrives; queue its PDVs."""
        while True:
            timeout, phase = self._timeout()
            if self._closed:
                raise ConnectionLostError("the association was aborted")
            try:
                self._sock.settimeout(timeout)
                pdu_type, body = _read_pdu(self._reader, phase, timeout)
            except (ConnectionLostError, OSError) as error:
                if self.aborted_locally:
                    raise ConnectionLostError("the association was aborted") from error
                if isinstance(error, ConnectionLostError):
                    raise
                raise ConnectionLostError(str(error)) from error
            if pdu_type == _P_DATA_TF:
                view = memoryview(body)
                pos = 0
                while pos + 6 <= len(body):
                    length, context_id, control = _PDV.unpack_from(body, pos)
                    if length < 2 or pos + 4 + length > len(body):
                        raise ProtocolError("malformed presentation data value")
                    self._pdvs.append((context_id, control, view[pos + 6 : pos + 4 + length]))
                    pos += 4 + length
                if self._pdvs:
                    return
            elif pdu_type == _ABORT:
                self._close_socket()
                raise AssociationAbortedError(
                    body[2] if len(body) > 2 else 0, body[3] if len(body) > 3 else 0
                )
            elif pdu_type == _RELEASE_RQ:
                try:
                    self._send(_HEADER.pack(_RELEASE_RP, 0, 4) + bytes(4))
                except UpperLayerError:
                    pass
                self._close_socket()
                raise AssociationReleasedError("the peer released the association")
            else:
                raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} during P-DATA")

    # -- ending ------------------------------------------------------------------------------

    def release(self) -> None:
        """Release the association (A-RELEASE-RQ/RP, PS3.8 §7.2); abort if the peer does not
        answer within the ACSE timeout. Never raises."""
        if self._closed:
            return
        try:
            self._send(_HEADER.pack(_RELEASE_RQ, 0, 4) + bytes(4))
            deadline = time.monotonic() + self.acse_timeout
            while time.monotonic() < deadline:
                self._sock.settimeout(max(0.01, deadline - time.monotonic()))
                pdu_type, _ = _read_pdu(self._reader, "association", self.acse_timeout)
                if pdu_type in (_RELEASE_RP, _ABORT):
                    break
        except (UpperLayerError, OSError):
            self.abort()
            return
        self._close_socket()

    def abort(self) -> None:
        """Send A-ABORT (service-user, no reason) and close the connection. Never raises.

        May be called from another thread: a read blocked in the reader thread then ends
        with :class:`ConnectionLostError`.
        """
        if self._closed:
            return
        self.aborted_locally = True
        with self._send_lock:
            try:
                self._sock.settimeout(1.0)
                self._sock.sendall(_HEADER.pack(_ABORT, 0, 4) + bytes(4))
            except OSError:
                pass
        self._close_socket()

    def _close_socket(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        """True once released, aborted or lost."""
        return self._closed

    def __enter__(self) -> DirectAssociation:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.abort()


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _SocketReader:
    """Buffered exact-size reads from a socket, without ``socket.makefile``.

    Small reads (PDU headers) read ahead; large reads (PDU bodies) go straight into their
    own buffer with ``recv_into``. The socket can be shut down from another thread: a
    blocked read then returns end-of-file.

    On Linux every read re-arms ``TCP_QUICKACK`` (the kernel drops it after a while): a peer
    that keeps Nagle's algorithm on (Orthanc, DCMTK by default) sends each small PDU only
    once the previous one is acknowledged, and delayed acknowledgements would hold every
    small C-FIND answer back by up to 40 ms.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._quickack = _QUICKACK is not None

    def _ack_at_once(self) -> None:
        if self._quickack:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
            except OSError:
                self._quickack = False

    def read(self, count: int) -> bytes | bytearray:
        buffer = self._buffer
        if len(buffer) >= count:
            data = bytes(buffer[:count])
            del buffer[:count]
            return data
        if count - len(buffer) >= 65536:
            out = bytearray(count)
            view = memoryview(out)
            have = len(buffer)
            view[:have] = buffer
            buffer.clear()
            while have < count:
                self._ack_at_once()
                got = self._sock.recv_into(view[have:])
                if not got:
                    raise ConnectionLostError("the peer closed the connection")
                have += got
            return out
        while len(buffer) < count:
            self._ack_at_once()
            chunk = self._sock.recv(_READ_BUFFER)
            if not chunk:
                raise ConnectionLostError("the peer closed the connection")
            buffer += chunk
        data = bytes(buffer[:count])
        del buffer[:count]
        return data


def _read_exact(reader: _SocketReader, count: int, phase: str, timeout: float) -> bytes | bytearray:
    try:
        return reader.read(count)
    except TimeoutError as error:
        raise PeerTimeoutError(phase, timeout) from error
    except OSError as error:
        raise ConnectionLostError(str(error)) from error


def _read_pdu(reader: _SocketReader, phase: str, timeout: float) -> tuple[int, bytes | bytearray]:
    """Read one PDU: (type, body after the 6-byte header)."""
    pdu_type, _, length = _HEADER.unpack(_read_exact(reader, 6, phase, timeout))
    if pdu_type not in range(_ASSOCIATE_RQ, _ABORT + 1):
        raise ProtocolError(f"unknown PDU type 0x{pdu_type:02X}")
    if length > _LARGEST_PDU:
        raise ProtocolError(f"PDU length {length} is beyond any sensible limit")
    return pdu_type, _read_exact(reader, length, phase, timeout)
