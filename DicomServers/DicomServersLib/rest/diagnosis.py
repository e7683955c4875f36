"""Plain-language diagnoses of REST failures: what went wrong and what the user should do.

Network outcomes are values: the REST functions of DicomServers return results carrying
:attr:`RestError.diagnosis` text instead of raising through the UI. Inside the ``rest``
package a failed call raises :class:`RestError`; the public functions catch it and return it as
a result. The wording names the setting to check (``PACS REST URL``, ``PACS User``...).
"""

from __future__ import annotations

import errno
import http.client
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

log = logging.getLogger(__name__)

#: Kinds of failure (for tests and for the UI to pick an icon).
KIND_AUTH = "auth"
KIND_FORBIDDEN = "forbidden"
KIND_NOT_FOUND = "not_found"
KIND_TLS = "tls"
KIND_REFUSED = "refused"
KIND_DNS = "dns"
KIND_TIMEOUT = "timeout"
KIND_SERVER = "server_error"
KIND_HTTP = "http_error"
KIND_PROTOCOL = "protocol"
KIND_CONNECTION = "connection"
KIND_BROKEN = "broken"


class RestError(Exception):
    """A REST call failed; ``diagnosis`` says what happened and what to check.

    Attributes
    ----------
    diagnosis : str
        Plain-language explanation for the user.
    kind : str
        One of the ``KIND_*`` values.
    status : int or None
        HTTP status, when the server answered.
    url : str
        The URL that failed.
    """

    def __init__(self, diagnosis: str, kind: str, status: int | None = None, url: str = "") -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis
        self.kind = kind
        self.status = status
        self.url = url


def _where(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        return url or "the server"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _chain(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` and the exceptions it wraps (args, causes, contexts)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend(a for a in item.args if isinstance(a, BaseException))
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        for linked in (item.__cause__, item.__context__):
            if linked is not None:
                todo.append(linked)
    return seen


def diagnose_exception(
    exc: BaseException, url: str, timeout_s: float | None = None, ca_bundle: str = ""
) -> RestError:
    """Turn an exception raised by ``requests`` into a :class:`RestError` with a diagnosis.

    Parameters
    ----------
    exc : BaseException
        What ``requests`` raised.
    url : str
        The URL requested.
    timeout_s : float, optional
        The timeout in force, quoted in the message.
    ca_bundle : str, optional
        The CA bundle the certificate was checked against (``rest_ca_bundle``), if not the
        system's.

    Returns
    -------
    RestError
        The diagnosis (not raised).
    """
    where = _where(url)
    chain = _chain(exc)
    waited = f" within {timeout_s:g} s" if timeout_s else ""
    if isinstance(exc, requests.exceptions.SSLError) or any(
        isinstance(e, urllib3.exceptions.SSLError) for e in chain
    ):
        detail = str(exc)
        expired = "expired" in detail
        if ("CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail) and (
            ca_bundle and not expired and "mismatch" not in detail.lower()
        ):
            return RestError(
                f"The secure connection to {where} failed: the server's certificate is not"
                f" signed by the CA in {ca_bundle}. Set PACS REST CA bundle (rest_ca_bundle) to"
                " the bundle of the authority that signed it (ask the PACS administrator).",
                KIND_TLS,
                url=url,
            )
        if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
            why = (
                "its certificate is not trusted (self-signed, expired or from an unknown authority)"
            )
        elif "hostname" in detail.lower() and "match" in detail.lower():
            why = "its certificate was issued for another host name"
        elif "WRONG_VERSION_NUMBER" in detail or "wrong version number" in detail:
            why = "the server does not speak HTTPS on that port (try http://)"
        else:
            why = "the TLS handshake failed"
        return RestError(
            f"The secure connection to {where} failed: {why}. Check the certificate of the"
            " PACS (or the URL's http/https), or give the CA bundle that signed it.",
            KIND_TLS,
            url=url,
        )
    broken = isinstance(exc, requests.exceptions.ChunkedEncodingError) or any(
        isinstance(e, urllib3.exceptions.ProtocolError) and "broken" in str(e).lower()
        for e in chain
    )
    if broken:
        return RestError(
            f"The connection to {where} broke in the middle of the transfer. Try again: what"
            " arrived complete is kept. If it keeps happening, check the network.",
            KIND_BROKEN,
            url=url,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RestError(
            f"No answer from {where}{waited} while connecting. Check the PACS REST URL and port,"
            " that the server is running, and that no firewall blocks the port.",
            KIND_TIMEOUT,
            url=url,
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return RestError(
            f"{where} accepted the connection but did not answer{waited}. The server may be"
            " overloaded: try again, or raise the server's timeout.",
            KIND_TIMEOUT,
            url=url,
        )
    if any(isinstance(e, urllib3.exceptions.NameResolutionError) for e in chain) or any(
        isinstance(e, socket.gaierror) for e in chain
    ):
        host = urlsplit(url).hostname or url
        return RestError(
            f"The host name {host!r} could not be found. Check the PACS REST URL (spelling, or"
            " use the server's IP address).",
            KIND_DNS,
            url=url,
        )
    refused = (
        any(
            isinstance(e, ConnectionRefusedError)
            or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED)
            for e in chain
        )
        or "refused" in str(exc).lower()
    )
    if refused:
        return RestError(
            f"The connection to {where} was refused: nothing listens there. Check the PACS REST"
            " URL and port, that the server is running, and that a firewall allows the port.",
            KIND_REFUSED,
            url=url,
        )
    dropped = any(
        isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
        for e in chain
    )
    if dropped:
        return RestError(
            f"{where} closed the connection without answering: the server may have stopped or"
            " restarted. Try again, and check that the server is running.",
            KIND_CONNECTION,
            url=url,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return RestError(
            f"The connection to {where} failed ({_short(exc)}). Check the PACS REST URL, the"
            " port, the network and the firewall.",
            KIND_CONNECTION,
            url=url,
        )
    return RestError(f"The request to {where} failed: {_short(exc)}.", KIND_CONNECTION, url=url)


def _short(exc: BaseException, length: int = 160) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= length else text[: length - 1] + "…"


def diagnose_status(status: int, url: str, body: str = "") -> RestError:
    """Turn an HTTP error status into a :class:`RestError` with a diagnosis.

    Parameters
    ----------
    status : int
        The HTTP status (4xx or 5xx).
    url : str
        The URL requested.
    body : str, optional
        The start of the answer's body, quoted for server errors.

    Returns
    -------
    RestError
        The diagnosis (not raised).
    """
    where = _where(url)
    if status == 401:
        return RestError(
            f"{where} refused the login (HTTP 401): wrong user name or password. Check PACS User"
            " and PACS Password.",
            KIND_AUTH,
            status,
            url,
        )
    if status == 403:
        return RestError(
            f"{where} accepted the login but does not allow this (HTTP 403). Ask the PACS"
            " administrator to grant this user access.",
            KIND_FORBIDDEN,
            status,
            url,
        )
    if status == 404:
        path = urlsplit(url).path or "/"
        return RestError(
            f"Nothing was found at {path} on {where} (HTTP 404): wrong URL or path. Check the"
            " PACS REST URL (Orthanc: http://host:8042; DICOMweb: the service root, for example"
            " http://host:8042/dicom-web) and the REST API type.",
            KIND_NOT_FOUND,
            status,
            url,
        )
    text = " ".join(body.split())[:200]
    detail = f": {text}" if text else ""
    if status >= 500:
        return RestError(
            f"{where} failed to answer (HTTP {status}){detail}. Try again later, or ask the PACS"
            " administrator to look at the server's log.",
            KIND_SERVER,
            status,
            url,
        )
    return RestError(
        f"{where} rejected the request (HTTP {status}){detail}.", KIND_HTTP, status, url
    )


def check_response(response: requests.Response) -> requests.Response:
    """Return ``response`` if its status is 2xx, else raise its :class:`RestError`."""
    if response.status_code < 400:
        return response
    try:
        body = response.text[:400]
    except Exception:  # the body of an error is only a hint
        body = ""
    finally:
        response.close()
    raise diagnose_status(response.status_code, response.url, body)


def send_request(
    session: requests.Session, method: str, url: str, **kwargs: Any
) -> requests.Response:
    """Send a request; return the response whatever its status, or raise :class:`RestError`.

    Parameters
    ----------
    session : requests.Session
        The server's session (see :func:`DicomServersLib.rest.session.build_session`).
    method, url : str
        What to request.
    **kwargs
        Passed to :meth:`requests.Session.request` (``params``, ``json``, ``stream``...).

    Raises
    ------
    RestError
        No answer came (connection refused, timeout, TLS, DNS...).
    """
    verify = getattr(session, "verify", True)
    ca_bundle = verify if isinstance(verify, str) else ""
    try:
        return session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        timeout = kwargs.get("timeout") or getattr(session, "timeout", None)
        if isinstance(timeout, tuple):
            connecting = isinstance(exc, requests.exceptions.ConnectTimeout)
            timeout = timeout[0] if connecting else timeout[1]
        raise diagnose_exception(exc, url, timeout, ca_bundle) from exc
    except OSError as exc:
        if ca_bundle and "CA certificate bundle" in str(exc):  # requests: missing bundle file
            raise RestError(
                f"The PACS REST CA bundle (rest_ca_bundle) {ca_bundle} cannot be read: check"
                " that the file exists and is a PEM file of certificates.",
                KIND_TLS,
                url=url,
            ) from exc
        raise


def checked_request(
    session: requests.Session, method: str, url: str, **kwargs: Any
) -> requests.Response:
    """Send a request; return the 2xx response or raise :class:`RestError` with a diagnosis.

    See :func:`send_request` for the parameters; an error status raises too.
    """
    return check_response(send_request(session, method, url, **kwargs))


#: What reading an answer of the wrong shape raises (a key missing, ``null`` or a list where an
#: object belongs, a number that is text): the JSON is valid but not what the API sends.
MALFORMED_ANSWER = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def malformed_answer(url: str, error: BaseException) -> RestError:
    """Diagnose an answer whose JSON is valid but not shaped as the REST API's (never raises).

    Parameters
    ----------
    url : str
        The server's REST URL (its host and port are named).
    error : BaseException
        What reading the answer raised (one of :data:`MALFORMED_ANSWER`); logged at debug
        level for support.
    """
    log.debug("malformed answer from %s", _where(url), exc_info=error)
    return RestError(
        f"The answer of {_where(url)} is not shaped as this REST API's answers"
        f" ({type(error).__name__}: {str(error)[:80]}). Check that the PACS REST URL points at"
        " the right service and that the REST API type (Orthanc or DICOMweb) is right; if they"
        " are, the server sent a broken answer: ask its administrator.",
        KIND_PROTOCOL,
        url=url,
    )


def unexpected_answer(url: str, what: str) -> RestError:
    """Return the diagnosis for an answer that is not what the API sends (wrong URL or type)."""
    return RestError(
        f"The answer of {_where(url)} is not {what}. Check that the PACS REST URL points at the"
        " right service and that the REST API type (Orthanc or DICOMweb) is right.",
        KIND_PROTOCOL,
        url=url,
    )
