"""The REST step of a server's connection test: can we log in to its REST API?

Orthanc: ``GET /system`` (it needs the login when authentication is on, and names the server
and its version). DICOMweb: a QIDO-RS search for one study (``GET {root}/studies?limit=1``),
which needs the login and proves the service root is right. The outcome is a value with a
plain-language diagnosis (401: wrong user or password; 404: wrong URL or path; certificate;
refused or timed out: URL, port, firewall), never an exception.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import requests

from DicomServersLib.rest.diagnosis import KIND_PROTOCOL, RestError
from DicomServersLib.rest.dicomweb import DicomwebClient
from DicomServersLib.rest.orthanc import OrthancClient
from DicomServersLib.rest.session import build_session, rest_base_url
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import check_url

STEP_REST_LOGIN = "rest_login"


@dataclass
class RestCheck:
    """The outcome of the REST login check.

    Attributes
    ----------
    ok : bool
        The REST API answered and accepted the login.
    step : str
        ``rest_login``.
    diagnosis : str
        What went wrong and what to check, or what answered when ``ok``.
    kind : str
        Failure kind (``auth``, ``not_found``, ``tls``, ``refused``, ``timeout``...) or ``""``.
    status : int or None
        HTTP status, when there was an answer.
    server_info : str
        What answered, e.g. ``Orthanc 1.10.1``.
    duration_s : float
        Seconds taken.
    """

    ok: bool
    step: str = STEP_REST_LOGIN
    diagnosis: str = ""
    kind: str = ""
    status: int | None = None
    server_info: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        return data


def check_rest_login(server: DicomServer, *, session: requests.Session | None = None) -> RestCheck:
    """Check that the server's REST API answers and accepts the login.

    Parameters
    ----------
    server : DicomServer
        Uses ``rest_flavor``, ``rest_url``, ``rest_user``, ``rest_password``, ``timeout_s``.
    session : requests.Session, optional
        Default: :func:`~DicomServersLib.rest.session.build_session`.

    Returns
    -------
    RestCheck
        ``ok`` with what answered, or the diagnosis.
    """
    started = time.monotonic()
    ok, reason = check_url(server.rest_url)
    if not ok:
        return RestCheck(
            ok=False,
            diagnosis=f"PACS REST URL (rest_url) {reason}.",
            kind="settings",
        )
    own = session is None
    active = session if session is not None else build_session(server)
    base = rest_base_url(server)
    try:
        if server.rest_flavor == "dicomweb":
            DicomwebClient(active, base).qido("studies", limit=1)
            info = "DICOMweb (QIDO-RS answered)"
        else:
            system = OrthancClient(active, base).system()
            info = f"Orthanc {system.get('Version', '?')}"
            if system.get("Name"):
                info += f" ({system['Name']})"
        return RestCheck(
            ok=True,
            diagnosis=f"Logged in to {info}.",
            status=200,
            server_info=info,
            duration_s=time.monotonic() - started,
        )
    except RestError as error:
        if server.rest_flavor == "dicomweb" and "OrthancError" in error.diagnosis:
            error = RestError(
                "The PACS REST URL answers like Orthanc's own REST API, not like a DICOMweb"
                " service: give the DICOMweb root (for Orthanc: http://host:8042/dicom-web),"
                " or set the REST API type to orthanc.",
                KIND_PROTOCOL,
                error.status,
                error.url,
            )
        return RestCheck(
            ok=False,
            diagnosis=error.diagnosis,
            kind=error.kind,
            status=error.status,
            duration_s=time.monotonic() - started,
        )
    finally:
        if own:
            active.close()
