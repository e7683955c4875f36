"""The one place that builds the HTTP session used to talk to a server's REST API.

Everything REST in DicomServers (Orthanc REST, DICOMweb QIDO-RS / WADO-RS / STOW-RS, the
connection test, the study-list cache, retrieve and send) goes through a
:class:`RestSession` made by :func:`build_session`, so that authentication, timeouts, TLS
verification and connection pooling are decided here and nowhere else. Callers may inject their
own session (tests record the requests made through a response hook), in the way
dicomweb-client injects its ``requests.Session`` (``dicomweb_client/session_utils.py``).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from DicomServersLib.server import DicomServer
from DicomServersLib.validation import normalize_url

#: Connections kept open per host: enough for the parallel instance downloads of a retrieve.
DEFAULT_POOL_SIZE = 8

#: Seconds to wait for a TCP (and TLS) connection, at most; reads wait ``server.timeout_s``.
MAX_CONNECT_TIMEOUT_S = 10.0

Timeout = tuple[float, float]


def rest_timeouts(server: DicomServer) -> Timeout:
    """Return ``(connect, read)`` timeouts in seconds for a server's REST API.

    The read timeout is the server's ``timeout_s``: the longest silence allowed between two
    bytes of an answer (not a deadline on the whole transfer, so a 2 GB download is not cut).
    Connecting waits at most :data:`MAX_CONNECT_TIMEOUT_S`.
    """
    read = float(server.timeout_s)
    return (min(read, MAX_CONNECT_TIMEOUT_S), read)


def rest_base_url(server: DicomServer) -> str:
    """Return the server's REST URL normalised: ``http://`` added to a bare host, no trailing ``/``.

    For Orthanc this is the root of its REST API (``http://pacs:8042``); for DICOMweb the
    service root (``https://pacs/dicom-web``), to which ``/studies`` is appended.
    """
    return normalize_url(server.rest_url)


def rest_ca_bundle(server: DicomServer) -> str:
    """Return the CA bundle that verifies the server's certificate, or ``""`` for the system's.

    Read from a ``rest_ca_bundle`` setting when the record has one (kept in ``extras`` by
    records that do not know the field yet).
    """
    value = getattr(server, "rest_ca_bundle", None)
    if value is None:
        value = server.extras.get("rest_ca_bundle", "")
    return os.path.expanduser(str(value)) if value else ""


def is_loopback_url(url: str) -> bool:
    """Return True when ``url`` names this machine (``localhost``, ``127.x.x.x`` or ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RestSession(requests.Session):
    """A :class:`requests.Session` that applies default timeouts to every request.

    ``requests`` has no session-wide timeout; without one a request can hang for ever
    (dicomweb-client issue #87). Here every request gets :attr:`timeout` unless the call gives
    its own.

    Parameters
    ----------
    timeout : tuple of float
        ``(connect, read)`` seconds.
    """

    def __init__(self, timeout: Timeout) -> None:
        super().__init__()
        self.timeout: Timeout = timeout

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request with the session's timeouts unless ``timeout=`` is given."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def build_session(
    server: DicomServer,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    ca_bundle: str | None = None,
    verify: bool | None = None,
) -> RestSession:
    """Build the HTTP session for a server's REST API.

    Parameters
    ----------
    server : DicomServer
        Its ``rest_url``, ``rest_user``, ``rest_password`` (from the secret store) and
        ``timeout_s`` are used.
    pool_size : int, optional
        Keep-alive connections kept per host; at least the number of parallel downloads.
    ca_bundle : str, optional
        PEM file of the certificate authorities to trust for HTTPS (a hospital's internal CA).
        Defaults to :func:`rest_ca_bundle`, else the system's trust store.
    verify : bool, optional
        False turns certificate verification off (never the default; for diagnosis only).

    Returns
    -------
    RestSession
        Basic authentication when a user is set; default ``(connect, read)`` timeouts from
        :func:`rest_timeouts`; no automatic retries (a failure is reported, with a diagnosis,
        instead of being hidden behind minutes of retrying).

    Notes
    -----
    Proxy settings from the environment are honoured, except for loopback URLs, which never go
    through a proxy and ask for uncompressed answers (gzip elsewhere: a 5,000-study list is
    3.8 MB of JSON, 0.6 MB compressed).
    """
    session = RestSession(rest_timeouts(server))
    if server.rest_user:
        session.auth = (server.rest_user, server.rest_password)
    bundle = ca_bundle if ca_bundle is not None else rest_ca_bundle(server)
    if verify is False:
        session.verify = False
    elif bundle:
        session.verify = bundle
    if is_loopback_url(rest_base_url(server)):
        session.trust_env = False
        # Compressing answers for this very machine costs the server CPU and saves nothing.
        session.headers["Accept-Encoding"] = "identity"
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "DicomServers (3D Slicer extension)"
    return session
