"""DCMTK peers on free loopback ports, and timed runs of the DCMTK SCU tools.

SCPs (each in its own temporary directory, always stopped):

- :class:`StoreSCP` runs ``storescp``, receiving C-STORE into a folder.
- :class:`WorklistSCP` runs ``wlmscpfs``, answering Modality Worklist C-FIND from ``.wl`` files
  kept in ``<data>/<AE title>/`` next to the ``lockfile`` DCMTK 3.6.7 requires there.

SCUs (:func:`echoscu`, :func:`findscu`, :func:`storescu`, :func:`getscu`, :func:`movescu`) run
as subprocesses with connection, ACSE and DIMSE timeouts and an overall deadline, and return a
:class:`ToolRun` with the exit code, output and wall-clock time (for the benchmarks).

DCMTK 3.6.7 SCPs cannot be bound to one interface: they listen on all of them. The rig only
ever connects to them through 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydicom.dataset import Dataset

from rig.ports import LOOPBACK, free_port, port_accepts, require_loopback
from rig.processes import ManagedProcess, PeerStartError, ProcessOwner, find_binary
from rig.worklists import write_worklist_file

__all__ = [
    "DcmtkSCP",
    "StoreSCP",
    "ToolRun",
    "WorklistSCP",
    "dcmtk_binary",
    "echoscu",
    "findscu",
    "getscu",
    "movescu",
    "storescu",
]

_DEFAULT_CALLING_AE = "DICOMSERVERS"


def dcmtk_binary(name: str) -> str:
    """Return the path of a DCMTK tool.

    Parameters
    ----------
    name : str
        Tool name (``storescp``, ``findscu``...). ``$DICOMSERVERS_<NAME>`` may point elsewhere.

    Returns
    -------
    str
        Its path.

    Raises
    ------
    rig.processes.MissingPeerError
        If DCMTK is not installed.
    """
    return find_binary(name, f"DICOMSERVERS_{name.upper()}", "dcmtk")


# --------------------------------------------------------------------------------------------
# SCPs


class DcmtkSCP(ProcessOwner):
    """A DCMTK SCP process on a free loopback port, with its files under ``work_dir``.

    Parameters
    ----------
    work_dir : str or pathlib.Path
        Directory for its data and log.
    ae_title : str
        The AE title it answers to.
    startup_timeout : float, optional
        Seconds to wait for the port to accept connections.
    """

    tool = ""
    """DCMTK program name, set by subclasses."""

    def __init__(
        self, work_dir: str | Path, ae_title: str, *, startup_timeout: float = 10.0
    ) -> None:
        self.work_dir = Path(work_dir)
        self.ae_title = ae_title
        self.startup_timeout = startup_timeout
        self.port = 0
        self._process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        """The address to reach it at (always ``127.0.0.1``)."""
        return LOOPBACK

    @property
    def log_path(self) -> Path:
        """Its stdout and stderr."""
        return self.work_dir / f"{self.tool}.log"

    def arguments(self) -> list[str]:
        """Return the command-line options before the port (overridden by subclasses)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Create the folders the program needs (overridden by subclasses)."""

    def start(self, attempts: int = 3) -> DcmtkSCP:
        """Start the program and wait until its port accepts connections.

        Parameters
        ----------
        attempts : int, optional
            How many times to try with a fresh port if it exits at once (port taken).

        Returns
        -------
        DcmtkSCP
            ``self``.

        Raises
        ------
        rig.processes.MissingPeerError
            If the tool is not installed.
        PeerStartError
            If it did not start listening in time.
        """
        binary = dcmtk_binary(self.tool)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            args = [binary, *self.arguments(), str(self.port)]
            self._process = ManagedProcess(args, self.log_path, cwd=self.work_dir)
            self._process.start()
            if self._wait_listening():
                return self
            self._process.kill()
            if attempt == attempts:
                break
        raise PeerStartError(
            f"{self.tool} did not listen on {LOOPBACK}:{self.port} within "
            f"{self.startup_timeout} s; log {self.log_path}:\n{self.log_text()}"
        )

    def _wait_listening(self) -> bool:
        """Poll the port; False if the process exited or the deadline passed."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._process.running:
                return False
            if port_accepts(LOOPBACK, self.port, timeout=0.5):
                return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the program (SIGTERM, then SIGKILL after ``timeout`` seconds).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait after SIGTERM.
        """
        if self._process is not None:
            self._process.stop(timeout=timeout)

    def kill(self) -> None:
        """Kill the program at once (SIGKILL)."""
        if self._process is not None:
            self._process.kill()

    def __enter__(self) -> DcmtkSCP:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ae_title}@{LOOPBACK}:{self.port} pid={self.pid}>"


class StoreSCP(DcmtkSCP):
    """``storescp`` receiving C-STORE requests into :attr:`output_dir`.

    Parameters
    ----------
    work_dir : str or pathlib.Path
        Directory for received files (``received/``) and the log.
    ae_title : str, optional
        Its AE title.
    accept_all : bool, optional
        Accept every transfer syntax DCMTK supports (``+xa``), not only uncompressed ones.
    extra_args : sequence of str, optional
        More ``storescp`` options (e.g. ``["--refuse"]``, ``["--sleep-during", "5"]``).
    startup_timeout : float, optional
        Seconds to wait for the port.
    """

    tool = "storescp"

    def __init__(
        self,
        work_dir: str | Path,
        ae_title: str = "STORESCP",
        *,
        accept_all: bool = True,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        super().__init__(work_dir, ae_title, startup_timeout=startup_timeout)
        self.accept_all = accept_all
        self.extra_args = list(extra_args)

    @property
    def output_dir(self) -> Path:
        """Folder receiving the files."""
        return self.work_dir / "received"

    def prepare(self) -> None:
        """Create the output folder."""
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def arguments(self) -> list[str]:
        """Return the ``storescp`` options."""
        args = ["--aetitle", self.ae_title, "--output-directory", str(self.output_dir)]
        args += ["--acse-timeout", "10", "--dimse-timeout", "30", "--disable-host-lookup"]
        if self.accept_all:
            args.append("--accept-all")
        return args + self.extra_args

    def received_files(self) -> list[Path]:
        """Return the files received so far, sorted by name."""
        return sorted(path for path in self.output_dir.iterdir() if path.is_file())

    def wait_for_files(self, count: int, timeout: float = 10.0) -> list[Path]:
        """Poll until at least ``count`` files have been received.

        Parameters
        ----------
        count : int
            Number of files expected.
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        list of pathlib.Path
            The files received.

        Raises
        ------
        TimeoutError
            If fewer arrived within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            files = self.received_files()
            if len(files) >= count:
                return files
            if time.monotonic() >= deadline:
                raise TimeoutError(f"storescp received {len(files)} of {count} files")
            time.sleep(0.05)


class WorklistSCP(DcmtkSCP):
    """``wlmscpfs`` serving Modality Worklist C-FIND from ``.wl`` files.

    Items are read from :attr:`worklist_dir` (``<work_dir>/data/<AE title>/``) at every
    query, so :meth:`add_item` works while it runs. It answers with the SpecificCharacterSet
    of each file (``--keep-char-set``).

    Parameters
    ----------
    work_dir : str or pathlib.Path
        Directory for the worklist database and the log.
    ae_title : str, optional
        Its AE title; queries must call it (it names the folder searched).
    extra_args : sequence of str, optional
        More ``wlmscpfs`` options (e.g. ``["--sleep-during", "5"]``, ``["--refuse"]``).
    startup_timeout : float, optional
        Seconds to wait for the port.
    """

    tool = "wlmscpfs"

    def __init__(
        self,
        work_dir: str | Path,
        ae_title: str = "WLMSCP",
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        super().__init__(work_dir, ae_title, startup_timeout=startup_timeout)
        self.extra_args = list(extra_args)

    @property
    def data_dir(self) -> Path:
        """``--data-files-path``: one sub-folder per AE title."""
        return self.work_dir / "data"

    @property
    def worklist_dir(self) -> Path:
        """The folder of this AE title's ``.wl`` files."""
        return self.data_dir / self.ae_title

    def prepare(self) -> None:
        """Create the AE-title folder and its ``lockfile``."""
        self.worklist_dir.mkdir(parents=True, exist_ok=True)
        (self.worklist_dir / "lockfile").touch()

    def arguments(self) -> list[str]:
        """Return the ``wlmscpfs`` options (single process, so stopping it stops all)."""
        args = ["--single-process", "--data-files-path", str(self.data_dir), "--keep-char-set"]
        args += ["--acse-timeout", "10", "--dimse-timeout", "30", "--disable-host-lookup"]
        return args + self.extra_args

    def add_item(self, item: Dataset, name: str | None = None) -> Path:
        """Drop a worklist item into the AE title's folder.

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
        self.prepare()
        return write_worklist_file(item, self.worklist_dir, name)


# --------------------------------------------------------------------------------------------
# SCU runs


@dataclass(frozen=True)
class ToolRun:
    """The outcome of one DCMTK SCU run.

    Attributes
    ----------
    args : list of str
        Command line.
    returncode : int
        Exit code (DCMTK tools exit non-zero on association or command failure).
    output : str
        stdout and stderr together.
    seconds : float
        Wall-clock duration.
    files : list of pathlib.Path
        Files the run wrote into its output directory (responses or retrieved instances).
    """

    args: list[str]
    returncode: int
    output: str
    seconds: float
    files: list[Path]

    @property
    def ok(self) -> bool:
        """True if the tool exited with code 0."""
        return self.returncode == 0


def _run(args: list[str], timeout: float, output_dir: Path | None = None) -> ToolRun:
    """Run a tool with a deadline; collect its output and the files it wrote."""
    before = set(output_dir.rglob("*")) if output_dir is not None else set()
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        code, output = completed.returncode, completed.stdout
    except subprocess.TimeoutExpired as expired:
        code, output = -9, (expired.output or b"") + f"\n[killed after {timeout} s]".encode()
    seconds = time.perf_counter() - start
    files: list[Path] = []
    if output_dir is not None:
        files = sorted(p for p in set(output_dir.rglob("*")) - before if p.is_file())
    text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else str(output)
    return ToolRun(args=args, returncode=code, output=text, seconds=seconds, files=files)


def _association_args(
    called_ae_title: str, calling_ae_title: str, network_timeout: float
) -> list[str]:
    """Options common to all SCUs: AE titles and connect/ACSE/DIMSE timeouts."""
    seconds = str(max(1, round(network_timeout)))
    return [
        "--aetitle",
        calling_ae_title,
        "--call",
        called_ae_title,
        "--timeout",
        seconds,
        "--acse-timeout",
        seconds,
        "--dimse-timeout",
        seconds,
    ]


def _key_args(keys: Iterable[str]) -> list[str]:
    """Turn ``"0010,0010=DOE*"`` / ``"PatientName"`` keys into ``-k`` options."""
    args = []
    for key in keys:
        args += ["-k", key]
    return args


_MODEL_FLAGS = {"worklist": "-W", "patient": "-P", "study": "-S"}


def echoscu(
    port: int,
    called_ae_title: str,
    *,
    host: str = LOOPBACK,
    calling_ae_title: str = _DEFAULT_CALLING_AE,
    network_timeout: float = 10.0,
    timeout: float = 30.0,
) -> ToolRun:
    """Run ``echoscu`` (C-ECHO, PS3.4 A).

    Parameters
    ----------
    port : int
        Peer's port.
    called_ae_title : str
        Peer's AE title.
    host : str, optional
        Peer's address (loopback only).
    calling_ae_title : str, optional
        Our AE title.
    network_timeout : float, optional
        Connection, ACSE and DIMSE timeout in seconds.
    timeout : float, optional
        Deadline of the whole run in seconds.

    Returns
    -------
    ToolRun
        The outcome.
    """
    args = [dcmtk_binary("echoscu"), "-v"]
    args += _association_args(called_ae_title, calling_ae_title, network_timeout)
    return _run([*args, require_loopback(host), str(port)], timeout)


def findscu(
    port: int,
    called_ae_title: str,
    keys: Iterable[str],
    *,
    model: str = "study",
    output_dir: str | Path | None = None,
    host: str = LOOPBACK,
    calling_ae_title: str = _DEFAULT_CALLING_AE,
    network_timeout: float = 10.0,
    timeout: float = 60.0,
) -> ToolRun:
    """Run ``findscu`` (C-FIND, PS3.4 C and K).

    Parameters
    ----------
    port : int
        Peer's port.
    called_ae_title : str
        Peer's AE title.
    keys : iterable of str
        Query keys as ``findscu -k`` takes them: ``"0008,0052=STUDY"``, ``"PatientName=DOE*"``,
        ``"(0040,0100)[0].Modality=CT"``; a bare tag asks for that attribute back.
    model : str, optional
        ``"study"`` (Study Root), ``"patient"`` (Patient Root) or ``"worklist"`` (MWL).
    output_dir : str or pathlib.Path, optional
        If given, responses are written there as ``rsp0001.dcm``... and listed in ``files``.
    host : str, optional
        Peer's address (loopback only).
    calling_ae_title : str, optional
        Our AE title.
    network_timeout : float, optional
        Connection, ACSE and DIMSE timeout in seconds.
    timeout : float, optional
        Deadline of the whole run in seconds.

    Returns
    -------
    ToolRun
        The outcome; ``files`` are the responses when ``output_dir`` was given.
    """
    args = [dcmtk_binary("findscu"), "-v", _MODEL_FLAGS[model]]
    args += _association_args(called_ae_title, calling_ae_title, network_timeout)
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        args += ["--extract", "--output-directory", str(out)]
    args += _key_args(keys)
    return _run([*args, require_loopback(host), str(port)], timeout, out)


def storescu(
    port: int,
    called_ae_title: str,
    paths: Iterable[str | Path],
    *,
    host: str = LOOPBACK,
    calling_ae_title: str = _DEFAULT_CALLING_AE,
    network_timeout: float = 10.0,
    timeout: float = 300.0,
) -> ToolRun:
    """Run ``storescu`` (C-STORE, PS3.4 B) for files or folders.

    Parameters
    ----------
    port : int
        Peer's port.
    called_ae_title : str
        Peer's AE title.
    paths : iterable of str or pathlib.Path
        Files, or folders scanned recursively.
    host : str, optional
        Peer's address (loopback only).
    calling_ae_title : str, optional
        Our AE title.
    network_timeout : float, optional
        Connection, ACSE and DIMSE timeout in seconds.
    timeout : float, optional
        Deadline of the whole run in seconds.

    Returns
    -------
    ToolRun
        The outcome.
    """
    args = [dcmtk_binary("storescu"), "--scan-directories", "--recurse", "--no-halt"]
    args += _association_args(called_ae_title, calling_ae_title, network_timeout)
    args += [require_loopback(host), str(port)]
    return _run(args + [str(path) for path in paths], timeout)


def getscu(
    port: int,
    called_ae_title: str,
    keys: Iterable[str],
    output_dir: str | Path,
    *,
    model: str = "study",
    host: str = LOOPBACK,
    calling_ae_title: str = _DEFAULT_CALLING_AE,
    network_timeout: float = 10.0,
    timeout: float = 300.0,
) -> ToolRun:
    """Run ``getscu`` (C-GET, PS3.4 C.4.3): instances come back on the same association.

    Parameters
    ----------
    port : int
        Peer's port.
    called_ae_title : str
        Peer's AE title.
    keys : iterable of str
        Identifier keys, e.g. ``["0008,0052=STUDY", "0020,000D=<uid>"]``.
    output_dir : str or pathlib.Path
        Where retrieved instances are written (listed in ``files``).
    model : str, optional
        ``"study"`` or ``"patient"`` root.
    host : str, optional
        Peer's address (loopback only).
    calling_ae_title : str, optional
        Our AE title.
    network_timeout : float, optional
        Connection, ACSE and DIMSE timeout in seconds.
    timeout : float, optional
        Deadline of the whole run in seconds.

    Returns
    -------
    ToolRun
        The outcome; ``files`` are the instances received.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = [dcmtk_binary("getscu"), "-v", _MODEL_FLAGS[model], "--output-directory", str(out)]
    args += _association_args(called_ae_title, calling_ae_title, network_timeout)
    args += _key_args(keys)
    return _run([*args, require_loopback(host), str(port)], timeout, out)


def movescu(
    port: int,
    called_ae_title: str,
    keys: Iterable[str],
    move_destination: str,
    *,
    receive_port: int | None = None,
    output_dir: str | Path | None = None,
    model: str = "study",
    host: str = LOOPBACK,
    calling_ae_title: str = _DEFAULT_CALLING_AE,
    network_timeout: float = 10.0,
    timeout: float = 300.0,
) -> ToolRun:
    """Run ``movescu`` (C-MOVE, PS3.4 C.4.2): the peer sends the instances to a destination AE.

    Parameters
    ----------
    port : int
        Peer's port.
    called_ae_title : str
        Peer's AE title.
    keys : iterable of str
        Identifier keys, e.g. ``["0008,0052=STUDY", "0020,000D=<uid>"]``.
    move_destination : str
        AE title the peer must know (Orthanc: in ``DicomModalities``).
    receive_port : int, optional
        If given, ``movescu`` itself listens there and receives the instances
        (``move_destination`` must then resolve to 127.0.0.1:``receive_port``).
    output_dir : str or pathlib.Path, optional
        Where ``movescu`` writes what it receives (with ``receive_port``).
    model : str, optional
        ``"study"`` or ``"patient"`` root.
    host : str, optional
        Peer's address (loopback only).
    calling_ae_title : str, optional
        Our AE title.
    network_timeout : float, optional
        Connection, ACSE and DIMSE timeout in seconds.
    timeout : float, optional
        Deadline of the whole run in seconds.

    Returns
    -------
    ToolRun
        The outcome; ``files`` are the instances received when ``output_dir`` was given.
    """
    args = [dcmtk_binary("movescu"), "-v", _MODEL_FLAGS[model], "--move", move_destination]
    args += _association_args(called_ae_title, calling_ae_title, network_timeout)
    out = None
    if receive_port is not None:
        args += ["--port", str(receive_port)]
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        args += ["--output-directory", str(out)]
    args += _key_args(keys)
    return _run([*args, require_loopback(host), str(port)], timeout, out)
