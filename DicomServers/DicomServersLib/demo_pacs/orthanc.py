"""The demo on a real Orthanc, when Orthanc is installed: same samples, REST and DICOMweb on.

:class:`OrthancDemo` starts the ``Orthanc`` program (``$DICOMSERVERS_ORTHANC``,
``/usr/sbin/Orthanc`` or ``Orthanc`` on ``PATH``) with a configuration written into the demo
folder (``<folder>/orthanc/``, option names of Orthanc 1.10):

- HTTP on a loopback port with authentication on (``AuthenticationEnabled``,
  ``RegisteredUsers``: user ``demo``, a password generated at each start) and
  ``RemoteAccessAllowed`` false, so only this computer is served. The password goes to the
  secret store (the in-memory one by default), never to the settings file;
- the DICOMweb plugin (``/dicom-web/``) and the worklist plugin (``Worklists.Database`` is the
  demo's worklist folder) when their libraries are installed (``/usr/share/orthanc/plugins``
  or ``$DICOMSERVERS_ORTHANC_PLUGINS``);
- DICOM with ``DicomCheckCalledAet``; any calling AE may echo, store, find, get and move;
  C-MOVE destinations are the demo's AE title → (host, port) map (``DicomModalities``).
  Orthanc 1.10 has no option to bind its DICOM port to one interface: it listens on all of
  them (the data is synthetic).

On first start the sample studies (:mod:`.samples`) are uploaded through ``POST /instances``.
The server record's storage folder is Orthanc's ``StorageDirectory``, whose files the
"load from the PACS storage folder" mode reads by their headers.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import secrets as _secrets
import shutil
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests

from DicomServersLib.secret_store import MemorySecretStore, SecretStore, secret_key
from DicomServersLib.server import DicomServer

from .layout import DemoFolder
from .samples import install_samples
from .scp import DEFAULT_MOVE_DESTINATIONS, DEMO_SERVER_ID, DEMO_SERVER_NAME, check_settings

__all__ = [
    "DEFAULT_ORTHANC_AE_TITLE",
    "DEMO_USER",
    "OrthancDemo",
    "OrthancDemoError",
    "find_orthanc",
    "orthanc_plugins",
    "start_orthanc_demo",
]

DEFAULT_ORTHANC_AE_TITLE = "ORTHANC"
"""AE title of the demo Orthanc."""

DEMO_USER = "demo"
"""The HTTP user of the demo Orthanc."""

ORTHANC_DEFAULT_PATH = "/usr/sbin/Orthanc"
"""Where Debian and Ubuntu install Orthanc (not on a user's PATH)."""

PLUGIN_DIR = "/usr/share/orthanc/plugins"
"""Where Debian and Ubuntu install Orthanc's plugins."""

_PLUGINS = {"dicomweb": "libOrthancDicomWeb.so", "worklists": "libModalityWorklists.so"}


class OrthancDemoError(RuntimeError):
    """Orthanc is missing, did not start, or refused the samples."""


def find_orthanc(env: Mapping[str, str] | None = None) -> str | None:
    """Return the Orthanc executable, or None when Orthanc is not installed.

    Looks at ``$DICOMSERVERS_ORTHANC``, then ``/usr/sbin/Orthanc``, then ``Orthanc`` on PATH.
    """
    env = os.environ if env is None else env
    for candidate in (
        env.get("DICOMSERVERS_ORTHANC"),
        ORTHANC_DEFAULT_PATH,
        shutil.which("Orthanc"),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def orthanc_plugins(env: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Return the installed DICOMweb and worklist plugins, by kind."""
    env = os.environ if env is None else env
    folder = Path(env.get("DICOMSERVERS_ORTHANC_PLUGINS") or PLUGIN_DIR)
    return {kind: folder / name for kind, name in _PLUGINS.items() if (folder / name).is_file()}


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


_RUNNING: weakref.WeakSet[OrthancDemo] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    """Never leave an Orthanc behind when the demo window exits without stopping it."""
    for demo in list(_RUNNING):
        demo.stop(timeout_s=5.0)


class OrthancDemo:
    """A real Orthanc holding the demo samples (see the module docstring).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    folder : str or os.PathLike
        The demo folder (see :class:`~.layout.DemoFolder`); Orthanc's files go to
        ``<folder>/orthanc/``.
    ae_title : str, optional
        Orthanc's AE title (``DicomAet``).
    dicom_port, http_port : int, optional
        Ports; 0 (default) picks free ones.
    move_destinations : mapping of str to (str, int), optional
        C-MOVE destinations, AE title → (host, port); defaults to
        :data:`~.scp.DEFAULT_MOVE_DESTINATIONS`.
    secrets : SecretStore, optional
        Where the generated password is put for the server record; the in-memory store of
        this process by default.
    samples : bool, optional
        Upload the samples on first start (default True).
    reference_date : datetime.date, optional
        "Today" of the samples; defaults to today.
    startup_timeout_s : float, optional
        Seconds to wait for Orthanc to answer after starting.
    request_timeout_s : float, optional
        Timeout of each HTTP request to Orthanc.
    binary : str, optional
        The Orthanc executable; found with :func:`find_orthanc` by default.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        ae_title: str = DEFAULT_ORTHANC_AE_TITLE,
        dicom_port: int = 0,
        http_port: int = 0,
        move_destinations: Mapping[str, tuple[str, int]] | None = None,
        secrets: SecretStore | None = None,
        samples: bool = True,
        reference_date: dt.date | None = None,
        startup_timeout_s: float = 60.0,
        request_timeout_s: float = 30.0,
        binary: str | None = None,
    ) -> None:
        destinations = DEFAULT_MOVE_DESTINATIONS if move_destinations is None else move_destinations
        check_settings(ae_title, dicom_port, destinations)
        check_settings(ae_title, http_port, {})
        self.folder = DemoFolder.of(folder)
        self.ae_title = ae_title.strip()
        self.dicom_port = dicom_port
        self.http_port = http_port
        self._fixed_ports = bool(dicom_port and http_port)
        self.move_destinations = {ae.strip(): (h, int(p)) for ae, (h, p) in destinations.items()}
        self.secrets: SecretStore = secrets if secrets is not None else MemorySecretStore()
        self.samples = samples
        self.reference_date = reference_date
        self.startup_timeout_s = startup_timeout_s
        self.request_timeout_s = request_timeout_s
        self.binary = binary
        self.user = DEMO_USER
        self.password = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()

    # -- files -------------------------------------------------------------------------------

    @property
    def storage_dir(self) -> Path:
        """Orthanc's ``StorageDirectory``."""
        return self.folder.orthanc / "storage"

    @property
    def index_dir(self) -> Path:
        """Orthanc's ``IndexDirectory`` (its SQLite database)."""
        return self.folder.orthanc / "index"

    @property
    def config_path(self) -> Path:
        """The configuration file (user-only: it holds the password)."""
        return self.folder.orthanc / "orthanc.json"

    @property
    def log_path(self) -> Path:
        """Orthanc's output."""
        return self.folder.orthanc / "orthanc.log"

    @property
    def http_url(self) -> str:
        """Base URL of Orthanc's REST API."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """Root of the DICOMweb API."""
        return f"{self.http_url}/dicom-web"

    @property
    def running(self) -> bool:
        """True while the Orthanc process runs."""
        return self._process is not None and self._process.poll() is None

    def log_text(self, tail: int = 4000) -> str:
        """Return the end of Orthanc's log."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def config(self) -> dict[str, Any]:
        """Return the configuration written at each start."""
        plugins = orthanc_plugins()
        return {
            "Name": "DicomServers demo",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.index_dir),
            "Plugins": [str(path) for path in plugins.values()],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "WebDavEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.ae_title,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowFindWorklist": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomModalities": {
                ae: [ae, host, port] for ae, (host, port) in self.move_destinations.items()
            },
            "DicomScuTimeout": 30,
            "DicomScpTimeout": 30,
            "DefaultEncoding": "Utf8",
            "StableAge": 5,
            "SaveJobs": False,
            "DicomWeb": {"Enable": "dicomweb" in plugins, "Root": "/dicom-web/"},
            "Worklists": {
                "Enable": "worklists" in plugins,
                "Database": str(self.folder.worklists),
            },
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> OrthancDemo:
        """Start Orthanc, wait until REST and DICOM answer, upload the samples (first start).

        Parameters
        ----------
        attempts : int, optional
            With free ports, how many times to try again when a port was taken meanwhile.

        Returns
        -------
        OrthancDemo
            ``self``.

        Raises
        ------
        OrthancDemoError
            Orthanc is not installed, did not start (the message ends with its log), or
            refused a sample.
        """
        if self.running:
            return self
        binary = self.binary or find_orthanc()
        if binary is None:
            raise OrthancDemoError(
                "Orthanc is not installed (Debian/Ubuntu: apt install orthanc orthanc-dicomweb);"
                " the embedded demo PACS needs nothing installed"
            )
        for folder in (
            self.folder.storage,
            self.folder.worklists,
            self.storage_dir,
            self.index_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        if self.samples:
            install_samples(self.folder, self.reference_date)
        self.password = _secrets.token_urlsafe(18)
        for attempt in range(1, attempts + 1):
            if not self._fixed_ports:
                self.http_port, self.dicom_port = _free_ports(2)
            try:
                self._start_once(binary)
                break
            except OrthancDemoError:
                self.stop()
                if self._fixed_ports or attempt == attempts or "in use" not in self.log_text():
                    raise
        self.secrets.set(secret_key(DEMO_SERVER_ID, "rest_password"), self.password)
        try:
            if self.samples:
                self._upload_samples()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_once(self, binary: str) -> None:
        self.folder.orthanc.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.config(), handle, indent=2)
        os.chmod(self.config_path, 0o600)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [binary, str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.folder.orthanc,
            start_new_session=True,
        )
        _RUNNING.add(self)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise OrthancDemoError(
                    f"Orthanc exited with code {self._process.returncode} while starting;"
                    f" log {self.log_path}:\n{self.log_text()}"
                )
            if self._rest_ready() and _port_accepts(self.dicom_port):
                return
            time.sleep(0.05)
        raise OrthancDemoError(
            f"Orthanc did not answer on {self.http_url} within {self.startup_timeout_s} s;"
            f" log {self.log_path}:\n{self.log_text()}"
        )

    def session(self) -> requests.Session:
        """Return an HTTP session to this Orthanc (credentials set, no proxy)."""
        session = requests.Session()
        session.trust_env = False  # loopback traffic never goes through a proxy
        session.auth = (self.user, self.password)
        return session

    def _rest_ready(self) -> bool:
        try:
            with self.session() as session:
                return session.get(f"{self.http_url}/system", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def _upload_samples(self) -> int:
        """Upload the files of the demo storage when Orthanc holds nothing yet."""
        with self.session() as session:
            answer = session.get(f"{self.http_url}/statistics", timeout=self.request_timeout_s)
            answer.raise_for_status()
            if int(answer.json().get("CountInstances", 0)):
                return 0
            count = 0
            for path in sorted(self.folder.storage.rglob("*.dcm")):
                response = session.post(
                    f"{self.http_url}/instances",
                    data=path.read_bytes(),
                    headers={"Content-Type": "application/dicom"},
                    timeout=self.request_timeout_s,
                )
                if response.status_code != 200:
                    raise OrthancDemoError(
                        f"Orthanc refused the sample {path.name}: HTTP {response.status_code}"
                        f" {response.text[:200]}"
                    )
                count += 1
            return count

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop Orthanc (SIGTERM, then SIGKILL after ``timeout_s``)."""
        with self._lock:
            process, self._process = self._process, None
            log, self._log = self._log, None
        _RUNNING.discard(self)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if log is not None:
            log.close()

    def __enter__(self) -> OrthancDemo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"http={self.http_port} dicom={self.dicom_port}" if self.running else "stopped"
        return f"<OrthancDemo {self.ae_title} {state} {self.folder.root}>"

    # -- the server record -------------------------------------------------------------------

    def demo_server_record(self, **changes: Any) -> DicomServer:
        """Return a server record pointing at this Orthanc ("Demo PACS", the default server).

        REST is on (Orthanc flavour, user ``demo``; the password is in the record and in the
        secret store under the record's id); DIMSE retrieval is C-GET; the storage folder is
        Orthanc's storage.

        Parameters
        ----------
        **changes
            Fields to set differently.
        """
        record = DicomServer(
            name=DEMO_SERVER_NAME,
            is_default=True,
            called_ae_title=self.ae_title,
            host="127.0.0.1",
            port=self.dicom_port,
            retrieve_method="c-get",
            rest_enabled=True,
            rest_flavor="orthanc",
            rest_url=self.http_url,
            rest_user=self.user,
            rest_password=self.password,
            storage_folder=str(self.storage_dir),
            worklist_ae_title=self.ae_title,
            scheduled_station_ae_title="SLICER",
            id=DEMO_SERVER_ID,
        )
        return record.copy(**changes) if changes else record


def start_orthanc_demo(folder: str | os.PathLike[str], **options: Any) -> OrthancDemo:
    """Start Orthanc on loopback with the demo samples (see :class:`OrthancDemo`).

    Parameters
    ----------
    folder : str or os.PathLike
        The demo folder.
    **options
        Keyword arguments of :class:`OrthancDemo`.

    Returns
    -------
    OrthancDemo
        The running demo; stop it with :meth:`OrthancDemo.stop` or use it in a ``with``.

    Raises
    ------
    OrthancDemoError
        Orthanc is not installed or did not start.
    """
    return OrthancDemo(folder, **options).start()
