"""Helpers of the PACS REST API tests (fixtures are in ``conftest.py``).

Requests are observed, not mocked: :class:`RequestLog` is a ``requests`` response hook on the
session the code under test builds, recording each request that reached the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from DicomServersLib.rest.session import RestSession, build_session
from DicomServersLib.server import DicomServer
from rig.orthanc import OrthancServer
from rig.studies import Patient, SeriesSpec, StudyInfo, make_study

#: Options of every Orthanc of these tests.
REST_ORTHANC_OPTIONS: dict[str, Any] = {
    "stable_age": 3600,
    "default_encoding": "Utf8",
    "worklists": False,
}

FLAVORS = ("orthanc", "dicomweb")


@dataclass
class Request:
    """One request the server answered: method, path, query and JSON body (if any)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


@dataclass
class RequestLog:
    """Records the requests made through a session (a ``response`` hook)."""

    requests: list[Request] = field(default_factory=list)

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The hook: append what was requested."""
        prepared = response.request
        parts = urlsplit(prepared.url or "")
        body: Any = None
        if isinstance(prepared.body, bytes) and prepared.body[:1] in (b"{", b"["):
            body = json.loads(prepared.body)
        self.requests.append(
            Request(
                str(prepared.method),
                parts.path,
                parse_qs(parts.query, keep_blank_values=True),
                body,
                response.status_code,
            )
        )

    def attach(self, session: requests.Session) -> requests.Session:
        """Record the requests of ``session`` and return it."""
        session.hooks["response"].append(self.hook)
        return session

    def clear(self) -> None:
        """Forget what was recorded."""
        self.requests.clear()

    def paths(self, method: str | None = None) -> list[str]:
        """Return the paths requested (optionally only with ``method``)."""
        return [r.path for r in self.requests if method is None or r.method == method]

    def count(self, predicate: Callable[[Request], bool]) -> int:
        """Count the requests matching ``predicate``."""
        return sum(1 for r in self.requests if predicate(r))

    def finds(self, *, expand: bool | None = None) -> list[Request]:
        """Return the ``/tools/find`` requests (optionally only expanded or not)."""
        return [
            r
            for r in self.requests
            if r.path.endswith("/tools/find")
            and (expand is None or bool((r.body or {}).get("Expand")) == expand)
        ]

    def listings(self) -> list[Request]:
        """Return the complete listings of an Orthanc (``GET /studies?expand``)."""
        return [r for r in self.requests if r.path == "/studies" and "expand" in r.query]

    def qido_studies(self) -> list[Request]:
        """Return the QIDO-RS ``/studies`` searches."""
        return [r for r in self.requests if r.path.endswith("/dicom-web/studies")]


REPO = Path(__file__).resolve().parents[2]
"""The repository root."""


class Cli:
    """Runs ``python -m DicomServersLib`` with its own settings, secrets file and cache."""

    def __init__(self, folder: Path) -> None:
        self.settings = folder / "DicomServers.ini"
        self.env = dict(
            os.environ,
            PYTHONPATH=str(REPO / "DicomServers"),
            DICOMSERVERS_SECRET_STORE="file",
            DICOMSERVERS_SECRET_FILE=str(folder / "credentials.json"),
            DICOMSERVERS_CACHE_DIR=str(folder / "cache"),
        )

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "DicomServersLib", "--settings", str(self.settings), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )


def add_server(cli: Cli, orthanc: OrthancServer, name: str = "PACS", **fields: str) -> None:
    values = {
        "rest_enabled": "true",
        "rest_url": orthanc.http_url,
        "rest_user": orthanc.user,
        "cache_threshold": "5",
        **fields,
    }
    args = [f"{k}={v}" for k, v in values.items()]
    done = cli("servers", "add", "--name", name, *args, "--password-stdin", stdin=orthanc.password)
    assert done.returncode == 0, done.stderr


def rest_server(orthanc: OrthancServer, flavor: str = "orthanc", **fields: Any) -> DicomServer:
    """Return a server record for a test Orthanc, REST on with its credentials."""
    url = orthanc.dicomweb_url if flavor == "dicomweb" else orthanc.http_url
    values: dict[str, Any] = {
        "name": f"Test {flavor}",
        "rest_enabled": True,
        "rest_flavor": flavor,
        "rest_url": url,
        "rest_user": orthanc.user,
        "rest_password": orthanc.password,
        "timeout_s": 10.0,
        "cache_threshold": 10,
        "rest_limit": 0,
        "search_limit": 1000,
    }
    values.update(fields)
    return DicomServer(**values)


def logged_session(server: DicomServer, log: RequestLog, **kwargs: Any) -> RestSession:
    """Return the session the code builds for ``server``, its requests recorded in ``log``."""
    session = build_session(server, **kwargs)
    log.attach(session)
    return session


class StudyMaker:
    """Writes small new studies (one 16 × 16 CT image each) with chosen dates."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counter = itertools.count(1)

    def make(
        self,
        day: dt.date,
        time: str = "120000",
        *,
        slices: int = 1,
        patient_id: str = "DS-NEW",
        series: int = 1,
    ) -> StudyInfo:
        """Write one study dated ``day`` at ``time``."""
        number = next(self.counter)
        patient = Patient(patient_id, f"New^Patient{number}", None, "19800101", "O")
        specs = [
            SeriesSpec("CT", f"Series {i + 1}", slices, rows=16, columns=16) for i in range(series)
        ]
        return make_study(
            self.root,
            patient,
            series=specs,
            description=f"New study {number}",
            accession_number=f"NEW{number:05d}",
            study_date=day.strftime("%Y%m%d"),
            study_time=time,
            seed=1000 + number,
        )

    def many(self, count: int, day: dt.date) -> list[StudyInfo]:
        """Write ``count`` studies dated ``day`` (distinct times)."""
        return [self.make(day, f"{8 + i // 60 % 10:02d}{i % 60:02d}00") for i in range(count)]


def study_maker_for(folder: Path) -> StudyMaker:
    """Return a :class:`StudyMaker` writing under ``folder/new-studies``."""
    return StudyMaker(folder / "new-studies")


def upload(orthanc: OrthancServer, studies: list[StudyInfo]) -> None:
    """Store studies in Orthanc (``POST /instances``)."""
    orthanc.upload([path for study in studies for path in study.paths])


class RelayProxy:
    """A loopback relay in front of a real Orthanc: optional TLS, optional cut of the answers.

    - With ``certificate`` and ``key`` it serves HTTPS and relays plain HTTP to Orthanc
      (Orthanc 1.10.1's own ``SslEnabled`` crashes at the first handshake on this platform's
      OpenSSL 3), so everything but the TLS layer is Orthanc's.
    - With ``cut_after`` it closes each connection once that many bytes of answer went
      through: a transfer cut in the middle, as a network failure does.

    Stop it with :meth:`stop`.
    """

    def __init__(
        self,
        target_port: int,
        certificate: Path | None = None,
        key: Path | None = None,
        *,
        cut_after: int | None = None,
    ) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.context: ssl.SSLContext | None = None
        if certificate is not None and key is not None:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(str(certificate), str(key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL (https when TLS is on)."""
        scheme = "https" if self.context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        front: socket.socket = client
        if self.context is not None:
            try:
                front = self.context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                client.close()
                return
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)

        def pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
            sent = 0
            try:
                while data := source.recv(65536):
                    if limit is not None and sent + len(data) >= limit:
                        sink.sendall(data[: max(0, limit - sent)])
                        break
                    sink.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, front, self.cut_after), daemon=True)
        back.start()
        pump(front, upstream, None)
        back.join(10)
        front.close()
        upstream.close()

    def stop(self) -> None:
        """Stop accepting connections."""
        self._stopping.set()
        self.listener.close()
