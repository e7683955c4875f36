"""Plain-language diagnoses of DIMSE outcomes: what went wrong and what the user should do.

One place for every message, so the connection test, query, retrieve, send and worklist say
the same thing about the same problem. The wording follows what a PACS administrator needs to
hear: which AE title, host and port to register, which setting to change.

References: association rejection reasons PS3.8 §9.3.4 (Table 9-21); abort sources and reasons
PS3.8 §9.3.8 (Table 9-26); status codes PS3.7 Annex C and the service classes of PS3.4
(C-STORE B.2.3, C-FIND C.4.1.1.4, C-MOVE C.4.2.1.5, C-GET C.4.3.1.4, Modality Worklist
K.4.1.1.4).
"""

from __future__ import annotations

import errno
import socket

from DicomServersLib.dimse import outcome
from DicomServersLib.dimse.outcome import Failure
from DicomServersLib.server import DicomServer

# -- status codes ---------------------------------------------------------------------------

SUCCESS = 0x0000
CANCEL = 0xFE00
PENDING = 0xFF00
PENDING_WARNING = 0xFF01
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
OUT_OF_RESOURCES_MATCHES = 0xA701
OUT_OF_RESOURCES_SUB_OPERATIONS = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
IDENTIFIER_MISMATCH = 0xA900
SUB_OPERATIONS_WARNING = 0xB000
RESPONSE_LIMIT_REACHED = 0xB001  # Repository Query, PS3.4 C.6.4

CATEGORY_SUCCESS = "success"
CATEGORY_PENDING = "pending"
CATEGORY_CANCEL = "cancel"
CATEGORY_WARNING = "warning"
CATEGORY_FAILURE = "failure"

_GENERAL_STATUS = {
    0x0105: "no such attribute",
    0x0106: "invalid attribute value",
    0x0107: "attribute list error",
    0x0110: "processing failure",
    0x0111: "duplicate SOP instance",
    0x0112: "no such SOP instance",
    0x0117: "invalid object instance",
    0x0118: "no such SOP class",
    0x0119: "class-instance conflict",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0x0210: "duplicate invocation",
    0x0211: "unrecognized operation",
    0x0212: "mistyped argument",
    0x0213: "resource limitation",
}


def status_category(status: int) -> str:
    """Return the category of a DIMSE status (PS3.7 Annex C).

    Parameters
    ----------
    status : int
        The (0000,0900) Status value.

    Returns
    -------
    str
        ``success``, ``pending``, ``cancel``, ``warning`` or ``failure``.
    """
    if status == SUCCESS:
        return CATEGORY_SUCCESS
    if status in (PENDING, PENDING_WARNING):
        return CATEGORY_PENDING
    if status == CANCEL:
        return CATEGORY_CANCEL
    if status == 0x0001 or 0xB000 <= status <= 0xBFFF or status in (0x0107, 0x0116):
        return CATEGORY_WARNING
    return CATEGORY_FAILURE


def status_meaning(status: int, service: str) -> str:
    """Return the standard's name of a status for a service, e.g. ``move destination unknown``.

    Parameters
    ----------
    status : int
        The status.
    service : str
        ``C-ECHO``, ``C-FIND``, ``C-GET``, ``C-MOVE``, ``C-STORE`` or ``MWL``.

    Returns
    -------
    str
        A short technical meaning (PS3.4 / PS3.7 wording).
    """
    retrieve = service in ("C-GET", "C-MOVE")
    if status == SUCCESS:
        return "success"
    if status in (PENDING, PENDING_WARNING):
        return "pending"
    if status == CANCEL:
        return "terminated due to cancel"
    if retrieve and status == OUT_OF_RESOURCES_MATCHES:
        return "out of resources: unable to calculate the number of matches"
    if retrieve and status == OUT_OF_RESOURCES_SUB_OPERATIONS:
        return "out of resources: unable to perform sub-operations"
    if service == "C-MOVE" and status == MOVE_DESTINATION_UNKNOWN:
        return "move destination unknown"
    if retrieve and status == SUB_OPERATIONS_WARNING:
        return "sub-operations complete: one or more failures or warnings"
    if service == "C-FIND" and status == RESPONSE_LIMIT_REACHED:
        return "matching reached the response limit"
    if service == "C-STORE":
        if status == 0xB000:
            return "coercion of data elements"
        if status == 0xB006:
            return "elements discarded"
        if status == 0xB007:
            return "data set does not match SOP class"
    if 0xA700 <= status <= 0xA7FF:
        return "out of resources"
    if 0xA900 <= status <= 0xA9FF:
        return (
            "data set does not match SOP class"
            if service == "C-STORE"
            else "identifier does not match SOP class"
        )
    if 0xC000 <= status <= 0xCFFF:
        return "cannot understand" if service == "C-STORE" else "unable to process"
    if status in _GENERAL_STATUS:
        return _GENERAL_STATUS[status]
    return "unknown status"


def _status_text(status: int, service: str, comment: str = "") -> str:
    text = f"{service} status 0x{status:04X} ({status_meaning(status, service)})"
    if comment:
        text += f": {comment}"
    return text


# -- who is who -----------------------------------------------------------------------------


def _failure(kind: str, diagnosis: str, status: int | None = None, detail: str = "") -> Failure:
    """A :class:`~.outcome.Failure` whose diagnosis starts with a capital letter."""
    return Failure(kind, diagnosis[:1].upper() + diagnosis[1:], status, detail)


def _pacs(server: DicomServer) -> str:
    return f"the PACS {server.called_ae_title!r} at {server.host} port {server.port}"


def our_address_hint(local_host: str | None) -> str:
    """Return how to name our computer to the PACS administrator."""
    if local_host and local_host not in ("0.0.0.0", "::"):
        return local_host
    return "this computer's IP address"


# -- connections and associations -----------------------------------------------------------


def connect_error_kind(error: BaseException) -> str:
    """Classify a TCP connect error into a failure kind.

    Parameters
    ----------
    error : BaseException
        What ``socket.create_connection`` (or pynetdicom's transport) raised.

    Returns
    -------
    str
        :data:`~outcome.HOST_UNKNOWN`, :data:`~outcome.REFUSED`,
        :data:`~outcome.CONNECT_TIMEOUT` or :data:`~outcome.UNREACHABLE`.
    """
    if isinstance(error, socket.gaierror):
        return outcome.HOST_UNKNOWN
    if isinstance(error, ConnectionRefusedError):
        return outcome.REFUSED
    if isinstance(error, TimeoutError | socket.timeout):
        return outcome.CONNECT_TIMEOUT
    if isinstance(error, OSError) and error.errno == errno.ECONNREFUSED:
        return outcome.REFUSED
    return outcome.UNREACHABLE


def connection_failed(
    server: DicomServer, kind: str, timeout_s: float, error: BaseException | None = None
) -> Failure:
    """Diagnose a TCP connection that could not be made.

    Parameters
    ----------
    server : DicomServer
        The server tried.
    kind : str
        From :func:`connect_error_kind`.
    timeout_s : float
        The connection timeout in force.
    error : BaseException, optional
        The error, for the technical detail.

    Returns
    -------
    Failure
        The diagnosis.
    """
    where = f"{server.host} port {server.port}"
    detail = f"{type(error).__name__}: {error}" if error is not None else ""
    if kind == outcome.HOST_UNKNOWN:
        text = (
            f"The host name {server.host!r} cannot be resolved: check the Remote IP setting"
            " (spelling, or use the IP address) and this computer's network/DNS."
        )
    elif kind == outcome.REFUSED:
        text = (
            f"Connection refused by {where}: nothing accepts DICOM connections there. Check the"
            " Remote IP and Remote port settings, that the PACS is running, and that no firewall"
            " rejects the port."
        )
    elif kind == outcome.CONNECT_TIMEOUT:
        text = (
            f"No answer from {where} within {timeout_s:g} s: the host is off, the address is"
            " wrong, or a firewall silently drops the connection. Check the Remote IP and port,"
            " the VPN, and the firewalls between this computer and the PACS."
        )
    else:
        text = (
            f"Cannot reach {where} (network unreachable): check the Remote IP setting and this"
            " computer's network connection or VPN."
        )
    return _failure(kind, text, detail=detail)


def no_association_answer(server: DicomServer, timeout_s: float) -> Failure:
    """Diagnose a TCP connection that never got an answer to A-ASSOCIATE-RQ."""
    return _failure(
        outcome.NO_ANSWER,
        f"{server.host} port {server.port} accepted the connection but did not answer the"
        f" DICOM association request within {timeout_s:g} s. Check that this port is the PACS's"
        " DICOM port (not its web port), that it does not require TLS, and that the PACS is not"
        " overloaded.",
        detail="ACSE timeout waiting for A-ASSOCIATE-AC",
    )


_RESULT = {1: "rejected-permanent", 2: "rejected-transient"}
_SOURCE = {1: "service-user", 2: "service-provider (ACSE)", 3: "service-provider (presentation)"}
_REASON = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


def association_rejected(
    server: DicomServer, result: int, source: int, reason: int, local_host: str | None = None
) -> Failure:
    """Diagnose an A-ASSOCIATE-RJ (PS3.8 §9.3.4).

    Parameters
    ----------
    server : DicomServer
        The server that rejected us.
    result, source, reason : int
        The rejection's Result, Source and Reason/Diag. fields.
    local_host : str, optional
        Our IP address as the PACS sees it, to name in the advice.

    Returns
    -------
    Failure
        The diagnosis.
    """
    detail = (
        f"A-ASSOCIATE-RJ {_RESULT.get(result, f'result {result}')},"
        f" {_SOURCE.get(source, f'source {source}')},"
        f" {_REASON.get((source, reason), f'reason {reason}')}"
    )
    calling = server.calling_ae_title
    if (source, reason) == (1, 3):
        text = (
            f"{_pacs(server)} does not know our calling AE title {calling!r}. Ask the PACS"
            f" administrator to register calling AE {calling} (host"
            f" {our_address_hint(local_host)}), or set the Calling AE Title to one the PACS"
            " already knows."
        )
    elif (source, reason) == (1, 7):
        text = (
            f"The PACS at {server.host} port {server.port} does not answer to the AE title"
            f" {server.called_ae_title!r} (called AE unknown). Set the AE Title field to the"
            " PACS's own AE title (ask the PACS administrator for it)."
        )
    elif source == 3 or result == 2:
        text = (
            f"{_pacs(server)} is busy and refused the association for now"
            f" ({_REASON.get((source, reason), 'transient')}): try again in a moment; if it"
            " persists, ask the PACS administrator about its connection limits."
        )
    elif (source, reason) == (1, 2) or (source, reason) == (2, 2):
        text = (
            f"{_pacs(server)} refused the DICOM protocol we speak"
            f" ({_REASON[(source, reason)]}): is this really a DICOM port?"
        )
    else:
        text = (
            f"{_pacs(server)} rejected the association without giving a reason. Usually our"
            f" calling AE title {calling!r} or this computer's address"
            f" ({our_address_hint(local_host)}) is not registered on the PACS: ask the PACS"
            f" administrator to register calling AE {calling}."
        )
    return _failure(outcome.REJECTED, text, detail=detail)


_ABORT_SOURCE = {0: "service-user", 1: "reserved", 2: "service-provider"}
_ABORT_REASON = {
    0: "reason not specified",
    1: "unrecognized PDU",
    2: "unexpected PDU",
    4: "unrecognized PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}


def association_aborted(
    server: DicomServer,
    during: str,
    source: int | None = None,
    reason: int | None = None,
) -> Failure:
    """Diagnose an association that the peer aborted or whose connection dropped.

    Parameters
    ----------
    server : DicomServer
        The server.
    during : str
        What we were doing (``association``, ``C-FIND``, ``C-GET``…).
    source, reason : int, optional
        The A-ABORT's source and reason; None when the TCP connection simply closed.

    Returns
    -------
    Failure
        The diagnosis.
    """
    if source is None:
        detail = "the TCP connection closed"
        what = "closed the connection"
    else:
        detail = (
            f"A-ABORT source {_ABORT_SOURCE.get(source, source)},"
            f" {_ABORT_REASON.get(reason or 0, f'reason {reason}')}"
        )
        what = "aborted the association"
    if during == "association":
        text = (
            f"{_pacs(server)} {what} while we asked to connect. PACS often do this when they"
            f" do not know the calling AE title {server.calling_ae_title!r} or this computer's"
            f" address, or when the called AE title {server.called_ae_title!r} is wrong: check"
            " both with the PACS administrator."
        )
    else:
        text = (
            f"{_pacs(server)} {what} during {during}: the PACS stopped, restarted or hit an"
            " error. Try again; files already received are kept and a new attempt fetches only"
            " what is missing."
        )
    return _failure(outcome.ABORTED, text, detail=detail)


def timed_out(server: DicomServer, during: str, seconds: float, overall: bool = False) -> Failure:
    """Diagnose a peer that stopped answering (idle) or an operation over its deadline."""
    if overall:
        return _failure(
            outcome.OVERALL_TIMEOUT,
            f"{during} took longer than the allowed {seconds:g} s and was stopped. Files already"
            " received are kept; retry to fetch the rest, or allow more time.",
            detail=f"overall timeout {seconds:g} s",
        )
    return _failure(
        outcome.IDLE_TIMEOUT,
        f"{_pacs(server)} sent nothing for {seconds:g} s during {during}. The PACS may be"
        " overloaded or stuck; try again later, or raise the Timeout setting.",
        detail=f"idle timeout {seconds:g} s",
    )


def service_not_supported(server: DicomServer, service: str, what: str = "") -> Failure:
    """Diagnose a service whose presentation context the PACS did not accept."""
    if service == "C-GET":
        text = (
            f"{_pacs(server)} does not accept C-GET{what}. Switch this server's retrieve method"
            " to C-MOVE (and register our move destination on the PACS)."
        )
    elif service == "MWL":
        text = (
            f"The worklist AE {server.worklist_ae_title or server.called_ae_title!r} at"
            f" {server.host} port {server.port} does not offer the Modality Worklist service:"
            " check the Worklist AET setting."
        )
    elif service == "C-STORE":
        text = (
            f"{_pacs(server)} does not accept this kind of object{what}: it cannot store it"
            " (ask the PACS administrator to enable the SOP class, or convert the file)."
        )
    else:
        text = f"{_pacs(server)} does not offer {service}{what}."
    return _failure(
        outcome.NOT_SUPPORTED, text, detail=f"no accepted presentation context: {service}"
    )


def move_destination_unknown(server: DicomServer, local_host: str | None) -> str:
    """Return the advice for 0xA801: register our storage listener on the PACS."""
    return (
        f"{_pacs(server)} does not know the move destination"
        f" {server.move_destination_ae_title!r}. Ask the PACS administrator to register AE"
        f" {server.move_destination_ae_title} at host {our_address_hint(local_host)} port"
        f" {server.storage_port} on the PACS, or switch this server's retrieve method to C-GET."
    )


def status_failure(
    server: DicomServer,
    service: str,
    status: int,
    comment: str = "",
    local_host: str | None = None,
    failed: int = 0,
    received: int = 0,
) -> Failure:
    """Diagnose a failure or warning status.

    Parameters
    ----------
    server : DicomServer
        The server.
    service : str
        ``C-ECHO``, ``C-FIND``, ``C-GET``, ``C-MOVE``, ``C-STORE`` or ``MWL``.
    status : int
        The status received.
    comment : str, optional
        The response's Error Comment (0000,0902), if any.
    local_host : str, optional
        Our IP address as the PACS sees it.
    failed : int, optional
        Failed sub-operations reported (C-GET / C-MOVE).
    received : int, optional
        Images that did arrive for this request (a C-MOVE that delivered some, or reports
        failed sub-operations, knows its destination: its failure is not an unregistered
        destination).

    Returns
    -------
    Failure
        The diagnosis.
    """
    detail = _status_text(status, service, comment)
    calling = server.calling_ae_title
    if service == "C-MOVE" and status == MOVE_DESTINATION_UNKNOWN:
        text = move_destination_unknown(server, local_host)
    elif service == "C-GET" and status in (SOP_CLASS_NOT_SUPPORTED, 0x0211):
        text = (
            f"{_pacs(server)} does not support C-GET. Switch this server's retrieve method to"
            " C-MOVE."
        )
    elif service == "C-GET" and status == OUT_OF_RESOURCES_SUB_OPERATIONS:
        text = (
            f"{_pacs(server)} could not send the images back on our C-GET connection (status"
            " 0xA702). Many PACS do not really support C-GET: switch this server's retrieve"
            " method to C-MOVE."
        )
    elif service == "C-MOVE" and status == OUT_OF_RESOURCES_SUB_OPERATIONS:
        text = (
            f"{_pacs(server)} could not send the images to our storage listener (status 0xA702):"
            f" it must reach {our_address_hint(local_host)} port {server.storage_port} as AE"
            f" {server.move_destination_ae_title}. Check firewalls and NAT between the PACS and"
            " this computer, or switch to C-GET."
        )
    elif status == NOT_AUTHORIZED:
        text = (
            f"{_pacs(server)} refused {service} for calling AE {calling!r} (not authorized):"
            f" ask the PACS administrator to allow AE {calling} to use {service}."
        )
    elif status == SOP_CLASS_NOT_SUPPORTED:
        text = f"{_pacs(server)} does not support {service} for this request."
    elif status in (OUT_OF_RESOURCES, OUT_OF_RESOURCES_MATCHES) or 0xA700 <= status <= 0xA7FF:
        text = (
            f"{_pacs(server)} is out of resources ({service} status 0x{status:04X}). Narrow the"
            " search (dates, names) or try again later."
            if service in ("C-FIND", "MWL")
            else f"{_pacs(server)} is out of resources ({service} status 0x{status:04X}):"
            " try again later, or ask the PACS administrator."
        )
    elif 0xA900 <= status <= 0xA9FF:
        text = (
            f"{_pacs(server)} says our {service} request does not match its information model"
            f" (status 0x{status:04X}). This PACS may not support the query keys or level used."
        )
    elif service == "C-MOVE" and 0xC000 <= status <= 0xCFFF and (received or failed):
        text = (
            f"{_pacs(server)} stopped sending the images to our storage listener part-way"
            f" (status 0x{status:04X}{': ' + comment if comment else ''}; {received} image(s)"
            " arrived): its connection to this computer broke or it hit an error. Try again;"
            " what arrived is kept and a new attempt fetches only what is missing."
        )
    elif service == "C-MOVE" and 0xC000 <= status <= 0xCFFF:
        # Orthanc (and other PACS) answer 0xC000 instead of 0xA801 for an unknown destination.
        text = (
            f"{_pacs(server)} could not process the C-MOVE (status 0x{status:04X}"
            f"{': ' + comment if comment else ''}). Most often the move destination"
            f" {server.move_destination_ae_title!r} is not registered on the PACS: ask the PACS"
            f" administrator to register AE {server.move_destination_ae_title} at host"
            f" {our_address_hint(local_host)} port {server.storage_port}, or switch this"
            " server's retrieve method to C-GET."
        )
    elif 0xC000 <= status <= 0xCFFF:
        text = (
            f"{_pacs(server)} could not process the {service} request (status 0x{status:04X}"
            f"{': ' + comment if comment else ''}). Check the PACS log, or ask its"
            " administrator."
        )
    elif service in ("C-GET", "C-MOVE") and status == SUB_OPERATIONS_WARNING:
        text = (
            f"{failed} image(s) could not be transferred. Retry: what arrived is kept and only"
            " the missing images are fetched again."
        )
    elif status == CANCEL:
        return _failure(outcome.CANCELLED, "Cancelled.", status=status, detail=detail)
    else:
        text = f"{_pacs(server)} answered {detail}."
    return _failure(outcome.STATUS, text, status=status, detail=detail)


def local_failure(text: str, error: BaseException | None = None) -> Failure:
    """A failure on our side (disk, storage port), with the error as detail."""
    detail = f"{type(error).__name__}: {error}" if error is not None else ""
    return _failure(outcome.LOCAL, text, detail=detail)


def storage_port_busy(server: DicomServer, error: BaseException) -> Failure:
    """Our C-MOVE storage listener cannot listen on the storage port."""
    return local_failure(
        f"Cannot receive C-MOVE results: port {server.storage_port} is already used by another"
        " program on this computer (perhaps Slicer's own DICOM listener). Choose another Storage"
        " port here and register it on the PACS, or stop the other listener.",
        error,
    )


def cancelled(during: str) -> Failure:
    """The user cancelled."""
    return _failure(outcome.CANCELLED, f"{during} was cancelled.", status=CANCEL)


def protocol_error(server: DicomServer, during: str, what: str) -> Failure:
    """The peer broke the DICOM protocol."""
    return _failure(
        outcome.PROTOCOL,
        f"{_pacs(server)} sent something we cannot understand during {during}: {what}. Ask the"
        " PACS administrator; try C-MOVE instead of C-GET (or the reverse).",
        detail=what,
    )
