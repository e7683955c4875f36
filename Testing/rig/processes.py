"""Starting, watching and always stopping the external peer processes of the rig.

Every :class:`ManagedProcess` writes its stdout and stderr to a log file, runs in its own
process group (so a Ctrl-C in pytest does not reach it half-way) and is registered for a
SIGKILL at interpreter exit, in case a test run is interrupted before its fixtures finish.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

__all__ = ["ManagedProcess", "MissingPeerError", "PeerStartError", "find_binary"]


class MissingPeerError(RuntimeError):
    """A peer program (Orthanc, a DCMTK tool, an Orthanc plugin) is not installed."""


class PeerStartError(RuntimeError):
    """A peer process did not start or did not become ready in time."""


def find_binary(name: str, env_var: str, package: str, default: str | None = None) -> str:
    """Locate an executable, or explain how to install it.

    Parameters
    ----------
    name : str
        Program name looked up on ``PATH`` (e.g. ``storescp``).
    env_var : str
        Environment variable that may name the program's full path instead.
    package : str
        Debian package that provides it, for the error message.
    default : str, optional
        Full path tried before ``PATH`` (e.g. ``/usr/sbin/Orthanc``, not on a user's PATH).

    Returns
    -------
    str
        Full path of the executable.

    Raises
    ------
    MissingPeerError
        If it cannot be found.
    """
    candidates = [os.environ.get(env_var), default, shutil.which(name)]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise MissingPeerError(
        f"{name} not found (Debian package {package!r}; set {env_var} to its path if it is "
        "elsewhere). Install the test peers with `make system-deps` "
        "(scripts/install-system-deps.sh)."
    )


_RUNNING: set[ManagedProcess] = set()
_RUNNING_LOCK = threading.Lock()


def _kill_leftovers() -> None:
    """SIGKILL every process still registered (interpreter exit)."""
    with _RUNNING_LOCK:
        leftovers = list(_RUNNING)
    for process in leftovers:
        process.kill()


atexit.register(_kill_leftovers)


class ManagedProcess:
    """An external program run as a peer, with its output in a log file.

    Parameters
    ----------
    args : sequence of str
        Command line.
    log_path : pathlib.Path
        File receiving stdout and stderr (appended to, so restarts keep earlier output).
    cwd : pathlib.Path, optional
        Working directory.
    name : str, optional
        Short name for messages; defaults to the program's base name.
    """

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.args = [str(arg) for arg in args]
        self.log_path = log_path
        self.cwd = cwd
        self.name = name or os.path.basename(self.args[0])
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the program (it is not waited for: callers poll for readiness).

        Raises
        ------
        PeerStartError
            If it is already running or cannot be executed.
        """
        if self.running:
            raise PeerStartError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        try:
            self._popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as error:
            self._log.close()
            self._log = None
            raise PeerStartError(f"cannot run {self.args[0]}: {error}") from error
        with _RUNNING_LOCK:
            _RUNNING.add(self)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the program (and its process group) to end with SIGTERM; SIGKILL after ``timeout``.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait after SIGTERM.

        Returns
        -------
        int or None
            Its exit code, or None if it was not started.
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                popen.wait(timeout=timeout)
        return self._reap()

    def kill(self, timeout: float = 10.0) -> int | None:
        """End the program and its process group at once with SIGKILL (fault tests, clean-up).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the kernel to reap it.

        Returns
        -------
        int or None
            Its exit code, or None if it was not started.
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self._signal_group(signal.SIGKILL)
            popen.wait(timeout=timeout)
        return self._reap()

    def _signal_group(self, signum: int) -> None:
        """Signal the process and anything it forked (its own session, so its own group)."""
        assert self._popen is not None
        try:
            os.killpg(self._popen.pid, signum)
        except ProcessLookupError:
            pass

    def _reap(self) -> int | None:
        """Forget the finished process; close the log file."""
        popen = self._popen
        code = popen.returncode if popen is not None else None
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    # -- state -------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the last start, or None before the first."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        """True while the process exists and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code once it has ended, else None."""
        return self._popen.poll() if self._popen is not None else None

    def log_text(self, tail: int | None = 4000) -> str:
        """Return the log (its last ``tail`` characters; all of it with None).

        Parameters
        ----------
        tail : int or None, optional
            How many characters from the end.

        Returns
        -------
        str
            The text, decoded leniently.
        """
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return text if tail is None else text[-tail:]

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        return f"<{type(self).__name__} {self.name} pid={self.pid} {state}>"


class ProcessOwner:
    """What a peer that runs one :class:`ManagedProcess` (``self._process``) tells about it."""

    _process: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        """Process id, or None before the first start."""
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self._process is not None and self._process.running

    def log_text(self, tail: int | None = 4000) -> str:
        """Return the end of the process's log (all of it with ``tail=None``).

        Parameters
        ----------
        tail : int or None, optional
            How many characters from the end.

        Returns
        -------
        str
            Log text.
        """
        return self._process.log_text(tail) if self._process else ""
