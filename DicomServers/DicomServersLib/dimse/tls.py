"""DICOM TLS: the one place that builds a server's TLS context and explains TLS failures.

A server with ``tls_enabled`` talks DICOM over TLS (PS3.15 Annex B, secure transport
connection profiles; BCP 195, so TLS 1.2 or later). Its DIMSE connections, both the pynetdicom
ones (C-ECHO, C-STORE: ``AE.associate(tls_args=...)``) and the direct ones (C-FIND, C-GET,
C-MOVE, worklist: :class:`~.upper_layer.DirectAssociation`), take their context from
:func:`client_context`:

- the PACS certificate is verified by default (``tls_verify``): signed by an authority of
  ``tls_ca_file`` (a hospital's own CA; the system's trusted authorities when empty), and
  issued for the server's host;
- ``tls_cert_file`` (and ``tls_key_file`` unless the certificate file holds the key) is our
  client certificate, for PACS that require one.

Failures are values with a diagnosis naming the file or setting to fix
(:func:`setup_failure`, :func:`handshake_failure`), e.g. "the server's certificate is not
signed by the CA in /etc/pki/hospital-ca.pem".
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Callable

from DicomServersLib.dimse.outcome import TLS, Failure
from DicomServersLib.dimse.upper_layer import UpperLayerError
from DicomServersLib.server import FIELD_INFO, DicomServer

__all__ = [
    "TlsHandshakeError",
    "TlsSetupError",
    "client_context",
    "find_tls_error",
    "handshake_failure",
    "probe_handshake",
    "secure_socket",
    "server_hostname",
    "setup_failure",
]

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
"""Oldest TLS version offered (BCP 195: TLS 1.2 or later)."""

# OpenSSL X509 verification codes (x509_vfy.h)
_EXPIRED = {9: "is not valid yet", 10: "has expired"}
_UNTRUSTED = {2, 18, 19, 20, 21, 27, 28}
_NAME_MISMATCH = {62, 64}


class TlsSetupError(Exception):
    """A TLS setting of the server cannot be used (missing file, not PEM, key mismatch).

    Attributes
    ----------
    field : str
        The canonical field name (``tls_ca_file``, ``tls_cert_file``, ``tls_key_file``).
    reason : str
        What is wrong with the file.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TlsHandshakeError(UpperLayerError):
    """The TLS handshake with the peer failed; ``error`` is what :mod:`ssl` raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def server_hostname(server: DicomServer) -> str:
    """The name the PACS certificate must carry: the server's host, without IPv6 brackets."""
    return server.host.strip().strip("[]")


def _file_problem(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "the file does not exist"
    if isinstance(error, PermissionError):
        return "the file cannot be read (permission denied)"
    if isinstance(error, IsADirectoryError):
        return "it is a folder, not a file"
    text = str(error)
    if "KEY_VALUES_MISMATCH" in text or "key values mismatch" in text:
        return "the private key does not belong to the certificate"
    if "PEM" in text or "NO_CERTIFICATE" in text or "no certificate" in text.lower():
        return "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    if isinstance(error, ssl.SSLError):
        return f"it is not a usable PEM file ({error.reason or error})"
    return str(getattr(error, "strerror", None) or error)


def client_context(server: DicomServer) -> ssl.SSLContext | None:
    """Return the TLS context of a server's DIMSE connections, or None without TLS.

    Parameters
    ----------
    server : DicomServer
        Its ``tls_*`` settings.

    Returns
    -------
    ssl.SSLContext or None
        A client context (TLS 1.2 or later); None when ``tls_enabled`` is off.

    Raises
    ------
    TlsSetupError
        A CA bundle, certificate or key file cannot be used.
    """
    if not server.tls_enabled:
        return None
    ca_file = os.path.expanduser(server.tls_ca_file) if server.tls_ca_file else None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise TlsSetupError("tls_ca_file", _file_problem(error)) from error
    context.minimum_version = MINIMUM_VERSION
    if not server.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if server.tls_cert_file:
        cert = os.path.expanduser(server.tls_cert_file)
        key = os.path.expanduser(server.tls_key_file) if server.tls_key_file else None
        for field, path in (("tls_cert_file", cert), ("tls_key_file", key)):
            if path is not None and not os.path.isfile(path):
                raise TlsSetupError(field, _file_problem(FileNotFoundError(path)))
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as error:
            field = "tls_key_file" if key and "KEY" in str(error).upper() else "tls_cert_file"
            raise TlsSetupError(field, _file_problem(error)) from error
    return context


def secure_socket(
    context: ssl.SSLContext, hostname: str
) -> Callable[[socket.socket], socket.socket]:
    """Return a function that runs the TLS handshake on a connected socket.

    The handshake honours the socket's timeout; its failure raises :class:`TlsHandshakeError`.
    """

    def secure(sock: socket.socket) -> socket.socket:
        try:
            return context.wrap_socket(sock, server_hostname=hostname)
        except (OSError, ssl.SSLError) as error:
            raise TlsHandshakeError(error) from error

    return secure


def find_tls_error(error: BaseException | None) -> BaseException | None:
    """Return the TLS error behind ``error`` (its causes and contexts included), if any."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, TlsHandshakeError):
            return error.error
        if isinstance(error, ssl.SSLError | ssl.CertificateError):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def probe_handshake(
    server: DicomServer, context: ssl.SSLContext, address: str, timeout_s: float
) -> BaseException | None:
    """Connect and run the TLS handshake once more, to learn why an association failed.

    With TLS 1.3 a PACS refusing our certificate says so only after the handshake: a short
    read catches that alert. Returns the TLS error, or None when TLS itself worked.
    """
    try:
        raw = socket.create_connection((address, server.port), timeout=timeout_s)
    except OSError:
        return None  # not a TLS problem: the caller diagnoses the connection
    try:
        with raw, context.wrap_socket(raw, server_hostname=server_hostname(server)) as secured:
            secured.settimeout(min(timeout_s, 0.5))
            try:
                secured.recv(1)
            except TimeoutError:
                pass
    except (ssl.SSLError, ssl.CertificateError) as error:
        return error
    except OSError as error:
        if error.errno in (errno.ECONNRESET, errno.EPIPE) or isinstance(error, TimeoutError):
            return error
        return None
    return None


def _label(field: str) -> str:
    info = FIELD_INFO.get(field)
    return f"{info.label} ({field})" if info else field


def setup_failure(server: DicomServer, error: TlsSetupError) -> Failure:
    """Diagnose a TLS setting that cannot be used (no connection was attempted)."""
    path = str(getattr(server, error.field, "") or "")
    return Failure(
        TLS,
        f"The {_label(error.field)} file {path} cannot be used: {error.reason}. Fix it in the"
        f" DICOM TLS settings of {server.name!r}.",
        detail=str(error.__cause__ or error),
    )


def handshake_failure(server: DicomServer, error: BaseException, timeout_s: float) -> Failure:
    """Diagnose a failed TLS handshake (or a TLS alert right after it).

    Parameters
    ----------
    server : DicomServer
        The server (its TLS settings are quoted in the advice).
    error : BaseException
        What :mod:`ssl` raised (or the connection error during the handshake).
    timeout_s : float
        The timeout in force.

    Returns
    -------
    Failure
        Kind :data:`~.outcome.TLS`, with what to change.
    """
    where = f"{server.host} port {server.port}"
    detail = f"{type(error).__name__}: {error}"
    text = str(error)
    lower = text.lower()
    if isinstance(error, ssl.SSLCertVerificationError):
        code = int(getattr(error, "verify_code", 0) or 0)
        if code in _NAME_MISMATCH or "mismatch" in lower:
            why = (
                f"The certificate of {where} was issued for another host name than"
                f" {server_hostname(server)!r}. Use the host name the certificate names in"
                " Remote IP, or ask the PACS administrator for a certificate that names it."
            )
        elif code in _EXPIRED:
            why = (
                f"The certificate of {where} {_EXPIRED[code]}. Ask the PACS administrator to"
                " renew it (and check this computer's clock)."
            )
        elif server.tls_ca_file:
            why = (
                f"The server's certificate is not signed by the CA in {server.tls_ca_file}"
                f" ({getattr(error, 'verify_message', '') or 'unknown issuer'}). Set"
                f" {_label('tls_ca_file')} to the bundle of the authority that signed the PACS"
                " certificate (ask the PACS administrator)."
            )
        elif code in _UNTRUSTED or "self" in lower or "issuer" in lower:
            why = (
                "The server's certificate is not signed by an authority this computer trusts"
                f" ({getattr(error, 'verify_message', '') or 'unknown issuer'}). Set"
                f" {_label('tls_ca_file')} to the CA bundle of the PACS (ask its administrator)."
            )
        else:
            why = f"The certificate of {where} was not accepted ({error.verify_message})."
        return Failure(TLS, why, detail=detail)
    if "certificate required" in lower or "certificate_required" in lower:
        why = (
            f"{where} requires a client certificate: set {_label('tls_cert_file')} and"
            f" {_label('tls_key_file')} to the certificate the PACS administrator registered."
        )
    elif any(s in lower for s in ("unknown ca", "bad certificate", "certificate unknown")):
        mine = server.tls_cert_file or "none set"
        why = (
            f"{where} refused our client certificate ({mine}): ask the PACS administrator to"
            f" trust the authority that signed it, or set {_label('tls_cert_file')} to one it"
            " trusts."
        )
    elif any(s in lower for s in ("wrong version number", "record layer", "packet length")):
        why = (
            f"{where} does not speak TLS: turn {_label('tls_enabled')} off, or use the PACS's"
            " DICOM TLS port."
        )
    elif "protocol version" in lower or "handshake failure" in lower or "no shared" in lower:
        why = (
            f"{where} and this computer have no TLS version or cipher in common (TLS 1.2 or"
            " later is required). Ask the PACS administrator."
        )
    elif isinstance(error, TimeoutError):
        why = (
            f"{where} did not complete the TLS handshake within {timeout_s:g} s: it may not use"
            f" TLS on this port (check {_label('tls_enabled')} and the Remote port)."
        )
    else:
        why = (
            f"{where} closed the connection during the TLS handshake: it may not use DICOM TLS"
            " on this port, or it refused our certificate. Check the Remote port and the DICOM"
            " TLS settings with the PACS administrator."
        )
    return Failure(TLS, why, detail=detail)
