"""A real Orthanc server on free loopback ports, with its own storage, for tests.

The configuration is written as JSON into the server's work directory. Option names are those
of Orthanc 1.10.1 (Debian bookworm; checked against ``Orthanc --config=-`` of that build and
the strings of its plugins):

- HTTP Basic authentication is on (``AuthenticationEnabled``, ``RegisteredUsers``) and
  ``RemoteAccessAllowed`` is false, so only loopback clients are served.
- ``DicomCheckCalledAet`` is true: associations must call :attr:`OrthancServer.aet`.
- Unknown SCUs may echo and store (``DicomAlwaysAllowEcho/Store``, Orthanc's defaults), and, by
  default here, also find, find worklists, get and move (``DicomAlwaysAllowFind`` 1.9.0+,
  ``DicomAlwaysAllowFindWorklist`` 1.10.0+, ``DicomAlwaysAllowGet`` 1.9.0+,
  ``DicomAlwaysAllowMove`` 1.9.7+). A C-MOVE destination must still be listed in
  ``DicomModalities`` (or added with :meth:`OrthancServer.add_modality`).
- ``LimitFindResults`` caps C-FIND answers at patient/study/series level (and REST
  ``/tools/find``); ``LimitFindInstances`` at instance level; 0 is no limit.
- ``StableAge`` (seconds without new instances before a study is "stable", when the Lua
  ``OnStableStudy`` callback runs) defaults to 2 s here instead of 60 s.
- ``LuaScripts`` lists Lua files; the sources given are written into the work directory.
- The DICOMweb plugin (``DicomWeb.Enable``, ``Root`` ``/dicom-web/``) and the sample worklist
  plugin (``Worklists.Enable``, ``Database`` folder of ``*.wl`` files, ``FilterIssuerAet``,
  ``LimitAnswers``) are loaded from ``/usr/share/orthanc/plugins``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from pydicom.dataset import Dataset

from rig.ports import LOOPBACK, free_ports, port_accepts, require_loopback
from rig.processes import (
    ManagedProcess,
    MissingPeerError,
    PeerStartError,
    ProcessOwner,
    find_binary,
)
from rig.worklists import write_worklist_file

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "MissingPeerError",
    "OrthancOptions",
    "OrthancServer",
    "RemoteModality",
    "orthanc_binary",
    "orthanc_plugin",
    "start_orthanc",
]

DEFAULT_USER = "dicom"
DEFAULT_PASSWORD = "s3cret-pw"
_PLUGIN_DIR = Path("/usr/share/orthanc/plugins")
_PLUGIN_FILES = {"dicomweb": "libOrthancDicomWeb.so", "worklists": "libModalityWorklists.so"}


def orthanc_binary() -> str:
    """Return the Orthanc executable (``$DICOMSERVERS_ORTHANC`` or ``/usr/sbin/Orthanc``).

    Returns
    -------
    str
        Its path.

    Raises
    ------
    MissingPeerError
        If Orthanc is not installed.
    """
    return find_binary("Orthanc", "DICOMSERVERS_ORTHANC", "orthanc", "/usr/sbin/Orthanc")


def orthanc_plugin(kind: str) -> Path:
    """Return the shared library of an Orthanc plugin.

    Parameters
    ----------
    kind : str
        ``"dicomweb"`` or ``"worklists"``.

    Returns
    -------
    pathlib.Path
        The ``.so`` file under ``/usr/share/orthanc/plugins``.

    Raises
    ------
    MissingPeerError
        If it is not installed.
    """
    path = _PLUGIN_DIR / _PLUGIN_FILES[kind]
    if not path.is_file():
        package = "orthanc-dicomweb" if kind == "dicomweb" else "orthanc"
        raise MissingPeerError(
            f"Orthanc plugin {path} not found (Debian package {package!r}). "
            "Install the test peers with `make system-deps`."
        )
    return path


@dataclass(frozen=True)
class RemoteModality:
    """A DICOM peer Orthanc knows (an entry of ``DicomModalities``).

    Attributes
    ----------
    ae_title : str
        Its AE title.
    port : int
        Its DICOM port.
    host : str
        Its address; loopback only.
    allow_echo, allow_find, allow_get, allow_move, allow_store : bool
        What Orthanc accepts from it as an SCU (``Allow*`` options, 1.5.0+).
    manufacturer : str
        Orthanc's quirk profile (``Generic``, ``GenericNoWildcardInDates``, ...).
    """

    ae_title: str
    port: int
    host: str = LOOPBACK
    allow_echo: bool = True
    allow_find: bool = True
    allow_get: bool = True
    allow_move: bool = True
    allow_store: bool = True
    manufacturer: str = "Generic"

    def to_config(self) -> dict[str, Any]:
        """Return the JSON object form Orthanc accepts in its configuration and REST API."""
        return {
            "AET": self.ae_title,
            "Host": require_loopback(self.host),
            "Port": self.port,
            "Manufacturer": self.manufacturer,
            "AllowEcho": self.allow_echo,
            "AllowFind": self.allow_find,
            "AllowGet": self.allow_get,
            "AllowMove": self.allow_move,
            "AllowStore": self.allow_store,
        }


@dataclass
class OrthancOptions:
    """How to configure a test Orthanc.

    Attributes
    ----------
    aet : str
        ``DicomAet``: the AE title Orthanc answers to (and calls with).
    user, password : str
        The one registered HTTP user.
    modalities : mapping of str to RemoteModality
        ``DicomModalities``, keyed by Orthanc's symbolic name.
    allow_find, allow_find_worklist, allow_get, allow_move : bool
        ``DicomAlwaysAllow*`` for SCUs Orthanc does not know (echo and store are always
        allowed). On by default here, so tests need not register their SCU.
    check_called_aet : bool
        ``DicomCheckCalledAet``.
    limit_find_results, limit_find_instances : int
        ``LimitFindResults`` / ``LimitFindInstances``; 0 means no limit.
    lua_scripts : sequence of str or pathlib.Path
        Lua scripts to load: a ``Path`` is used as is, a ``str`` is Lua source code.
    stable_age : int
        ``StableAge`` in seconds.
    dicomweb, worklists : bool
        Whether to load the DICOMweb and worklist plugins.
    worklist_filter_issuer_aet : bool
        ``Worklists.FilterIssuerAet``.
    worklist_limit_answers : int
        ``Worklists.LimitAnswers``; 0 means no limit.
    default_encoding : str
        ``DefaultEncoding``. ``Utf8`` here; Orthanc's own default is ``Latin1``, with which
        1.10.1 re-encodes C-FIND answers (also worklist ones) to ISO_IR 100 and loses every
        character outside Latin-1 (Polish, Greek, Japanese names come back mangled).
    verbose : bool
        Run with ``--verbose``.
    extra : mapping of str to Any
        Further configuration options, applied last (they override the above).
    """

    aet: str = "ORTHANC"
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    modalities: Mapping[str, RemoteModality] = field(default_factory=dict)
    allow_find: bool = True
    allow_find_worklist: bool = True
    allow_get: bool = True
    allow_move: bool = True
    check_called_aet: bool = True
    limit_find_results: int = 0
    limit_find_instances: int = 0
    lua_scripts: Sequence[str | Path] = ()
    stable_age: int = 2
    dicomweb: bool = True
    worklists: bool = True
    worklist_filter_issuer_aet: bool = False
    worklist_limit_answers: int = 0
    default_encoding: str = "Utf8"
    verbose: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


class OrthancServer(ProcessOwner):
    """A real Orthanc process on free loopback ports, with its files in ``work_dir``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Leftover processes are
    killed at interpreter exit.

    Parameters
    ----------
    work_dir : str or pathlib.Path
        Directory for the configuration, storage, index, worklists, Lua scripts and log.
    options : OrthancOptions, optional
        Configuration; defaults to :class:`OrthancOptions` ``()``.
    startup_timeout : float, optional
        Seconds to wait for REST and DICOM to answer after starting.
    request_timeout : float, optional
        Default timeout of :meth:`rest` calls, in seconds.

    Attributes
    ----------
    http_port, dicom_port : int
        Ports on 127.0.0.1 (allocated at the first start, kept across restarts).
    """

    def __init__(
        self,
        work_dir: str | Path,
        options: OrthancOptions | None = None,
        *,
        startup_timeout: float = 30.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.options = options or OrthancOptions()
        self.work_dir = Path(work_dir)
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.http_port = 0
        self.dicom_port = 0
        self._process: ManagedProcess | None = None
        self.session = requests.Session()
        self.session.trust_env = False  # never route loopback traffic through a proxy
        self.session.auth = (self.options.user, self.options.password)

    # -- identity ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address Orthanc is reached at (always ``127.0.0.1``)."""
        return LOOPBACK

    @property
    def http_url(self) -> str:
        """Base URL of the REST API, without trailing slash."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """Root of the DICOMweb API (QIDO-RS, WADO-RS, STOW-RS), without trailing slash."""
        return f"{self.http_url}/dicom-web"

    @property
    def aet(self) -> str:
        """Orthanc's AE title (``DicomAet``)."""
        return self.options.aet

    @property
    def user(self) -> str:
        """The registered HTTP user."""
        return self.options.user

    @property
    def password(self) -> str:
        """The registered user's password."""
        return self.options.password

    @property
    def storage_dir(self) -> Path:
        """``StorageDirectory``: where Orthanc keeps the DICOM files."""
        return self.work_dir / "storage"

    @property
    def index_dir(self) -> Path:
        """``IndexDirectory``: where Orthanc keeps its SQLite index."""
        return self.work_dir / "index"

    @property
    def worklist_dir(self) -> Path:
        """``Worklists.Database``: folder of the ``.wl`` files served by the worklist plugin."""
        return self.work_dir / "worklists"

    @property
    def config_path(self) -> Path:
        """The JSON configuration file."""
        return self.work_dir / "orthanc.json"

    @property
    def log_path(self) -> Path:
        """Orthanc's stdout and stderr."""
        return self.work_dir / "orthanc.log"

    # -- configuration -----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Return the configuration written to :attr:`config_path` at each start.

        Returns
        -------
        dict
            Orthanc 1.10.1 configuration options.
        """
        opts = self.options
        plugins = []
        if opts.dicomweb:
            plugins.append(str(orthanc_plugin("dicomweb")))
        if opts.worklists:
            plugins.append(str(orthanc_plugin("worklists")))
        config: dict[str, Any] = {
            "Name": f"DicomServers test Orthanc {opts.aet}",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.index_dir),
            "Plugins": plugins,
            "LuaScripts": [str(path) for path in self._lua_paths()],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {opts.user: opts.password},
            "WebDavEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": opts.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": opts.check_called_aet,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": opts.allow_find,
            "DicomAlwaysAllowFindWorklist": opts.allow_find_worklist,
            "DicomAlwaysAllowGet": opts.allow_get,
            "DicomAlwaysAllowMove": opts.allow_move,
            "DicomModalities": {
                name: modality.to_config() for name, modality in opts.modalities.items()
            },
            "DicomScuTimeout": 10,
            "DicomScpTimeout": 30,
            "HttpTimeout": 10,
            "LimitFindResults": opts.limit_find_results,
            "LimitFindInstances": opts.limit_find_instances,
            "StableAge": opts.stable_age,
            "DefaultEncoding": opts.default_encoding,
            "DicomWeb": {"Enable": opts.dicomweb, "Root": "/dicom-web/", "EnableWado": True},
            "Worklists": {
                "Enable": opts.worklists,
                "Database": str(self.worklist_dir),
                "FilterIssuerAet": opts.worklist_filter_issuer_aet,
                "LimitAnswers": opts.worklist_limit_answers,
            },
        }
        config.update(opts.extra)
        return config

    def _lua_paths(self) -> list[Path]:
        """Write the Lua sources into the work directory; return all script paths."""
        paths = []
        for index, script in enumerate(self.options.lua_scripts, start=1):
            if isinstance(script, Path):
                paths.append(script.resolve())
                continue
            path = self.work_dir / "lua" / f"script{index}.lua"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(script, encoding="utf-8")
            paths.append(path)
        return paths

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> OrthancServer:
        """Start Orthanc and wait until REST (with authentication) and DICOM answer.

        Parameters
        ----------
        attempts : int, optional
            At the first start, how many times to try with fresh ports if a port was taken
            between allocation and Orthanc binding it.

        Returns
        -------
        OrthancServer
            ``self``.

        Raises
        ------
        MissingPeerError
            If Orthanc or a needed plugin is not installed.
        PeerStartError
            If it did not become ready; the message ends with its log.
        """
        if self.running:
            return self
        binary = orthanc_binary()
        fixed_ports = self.http_port != 0
        for attempt in range(1, attempts + 1):
            if not fixed_ports:
                self.http_port, self.dicom_port = free_ports(2)
            try:
                self._start_once(binary)
                return self
            except PeerStartError:
                self.kill()
                if fixed_ports or attempt == attempts or "in use" not in self.log_text():
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, binary: str) -> None:
        """Write the configuration, spawn Orthanc and wait for it."""
        for directory in (self.storage_dir, self.index_dir, self.worklist_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        args = [binary]
        if self.options.verbose:
            args.append("--verbose")
        args.append(str(self.config_path))
        self._process = ManagedProcess(args, self.log_path, cwd=self.work_dir, name="Orthanc")
        self._process.start()
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll ``GET /system`` (authenticated) and the DICOM port until both answer."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._process.running:
                raise PeerStartError(
                    f"Orthanc exited with code {self._process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_text()}"
                )
            if self._rest_ready() and port_accepts(LOOPBACK, self.dicom_port, timeout=0.5):
                return
            time.sleep(0.05)
        raise PeerStartError(
            f"Orthanc did not answer on {self.http_url} and DICOM port {self.dicom_port} "
            f"within {self.startup_timeout} s; log {self.log_path}:\n{self.log_text()}"
        )

    def _rest_ready(self) -> bool:
        """True when ``GET /system`` answers 200 with our credentials."""
        try:
            return self.session.get(f"{self.http_url}/system", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Orthanc gracefully (SIGTERM, then SIGKILL after ``timeout``).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for a graceful exit.
        """
        if self._process is not None:
            self._process.stop(timeout=timeout)

    def kill(self) -> None:
        """Kill Orthanc at once (SIGKILL), as a crash would; for fault tests."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> OrthancServer:
        """Stop Orthanc and start it again on the same ports with the same storage.

        Modalities added through REST are lost (they are not in the configuration file).

        Returns
        -------
        OrthancServer
            ``self``.
        """
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop Orthanc and close the HTTP session."""
        self.stop()
        self.session.close()

    def __enter__(self) -> OrthancServer:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OrthancServer {self.aet} http={self.http_port} dicom={self.dicom_port} pid={self.pid}>"

    # -- REST --------------------------------------------------------------------------------

    def rest(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one HTTP request to this Orthanc.

        Parameters
        ----------
        method : str
            HTTP method.
        path : str
            Path below :attr:`http_url` (``/system``, ``/dicom-web/studies``...).
        auth : bool, optional
            Send the registered credentials (default). False sends none.
        timeout : float, optional
            Seconds; defaults to ``request_timeout``.
        **kwargs
            Passed to :meth:`requests.Session.request` (``json``, ``data``, ``params``,
            ``headers``...).

        Returns
        -------
        requests.Response
            The response, whatever its status.
        """
        url = f"{self.http_url}/{path.lstrip('/')}"
        timeout = self.request_timeout if timeout is None else timeout
        if auth:
            return self.session.request(method, url, timeout=timeout, **kwargs)
        with requests.Session() as anonymous:
            anonymous.trust_env = False
            return anonymous.request(method, url, timeout=timeout, **kwargs)

    def rest_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request (see :meth:`rest`), check its status and return its JSON body.

        Parameters
        ----------
        method : str
            HTTP method.
        path : str
            Path below :attr:`http_url`.
        **kwargs
            As for :meth:`rest`.

        Returns
        -------
        Any
            The decoded JSON.

        Raises
        ------
        requests.HTTPError
            If the status is not 2xx.
        """
        response = self.rest(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def upload(self, paths: Iterable[str | Path]) -> list[str]:
        """Store DICOM files through ``POST /instances``.

        Parameters
        ----------
        paths : iterable of str or pathlib.Path
            Part-10 files.

        Returns
        -------
        list of str
            Orthanc's instance identifiers, in the order of ``paths``.

        Raises
        ------
        requests.HTTPError
            If Orthanc refuses a file.
        """
        ids = []
        for path in paths:
            body = Path(path).read_bytes()
            answer = self.rest_json(
                "POST", "/instances", data=body, headers={"Content-Type": "application/dicom"}
            )
            ids.append(str(answer["ID"]))
        return ids

    def statistics(self) -> dict[str, Any]:
        """Return ``GET /statistics`` (counts of patients, studies, series, instances)."""
        result: dict[str, Any] = self.rest_json("GET", "/statistics")
        return result

    def study_uids(self) -> set[str]:
        """Return the StudyInstanceUIDs stored, through ``POST /tools/find``."""
        answers = self.rest_json(
            "POST", "/tools/find", json={"Level": "Study", "Query": {}, "Expand": True}
        )
        return {answer["MainDicomTags"]["StudyInstanceUID"] for answer in answers}

    def wait_for_instances(self, count: int, timeout: float = 10.0) -> None:
        """Poll ``/statistics`` until at least ``count`` instances are stored.

        Parameters
        ----------
        count : int
            Number of instances expected.
        timeout : float, optional
            Seconds to wait.

        Raises
        ------
        TimeoutError
            If fewer are stored after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        stored = 0
        while time.monotonic() < deadline:
            stored = int(self.statistics()["CountInstances"])
            if stored >= count:
                return
            time.sleep(0.05)
        raise TimeoutError(f"Orthanc holds {stored} instances, expected {count} in {timeout} s")

    def add_modality(self, name: str, modality: RemoteModality) -> None:
        """Declare a DICOM peer at runtime (``PUT /modalities/{name}``), e.g. a C-MOVE target.

        Parameters
        ----------
        name : str
            Orthanc's symbolic name for it.
        modality : RemoteModality
            The peer.
        """
        self.rest("PUT", f"/modalities/{name}", json=modality.to_config()).raise_for_status()

    # -- worklists ---------------------------------------------------------------------------

    def add_worklist(self, item: Dataset, name: str | None = None) -> Path:
        """Drop a worklist item into the plugin's folder (served from the next C-FIND on).

        Parameters
        ----------
        item : pydicom.dataset.Dataset
            The item (see :func:`rig.worklists.make_worklist_item`).
        name : str, optional
            File name without ``.wl``; defaults to the AccessionNumber.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        return write_worklist_file(item, self.worklist_dir, name)


def start_orthanc(work_dir: str | Path, **options: Any) -> OrthancServer:
    """Start an Orthanc with :class:`OrthancOptions` built from keyword arguments.

    Parameters
    ----------
    work_dir : str or pathlib.Path
        Its work directory.
    **options
        Fields of :class:`OrthancOptions`.

    Returns
    -------
    OrthancServer
        The running server; stop it with :meth:`OrthancServer.stop` or use it in a ``with``.
    """
    server = OrthancServer(work_dir, OrthancOptions(**options))
    try:
        return server.start()
    except BaseException:
        server.close()
        raise
