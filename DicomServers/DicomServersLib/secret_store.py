"""Where secrets (the REST password) live: the OS keyring, a user-only file, or memory.

Secrets never go to the settings file. The store is chosen by the environment variable
``DICOMSERVERS_SECRET_STORE`` = ``keyring`` | ``file`` | ``memory``; by default the OS keyring
when a usable backend exists, otherwise memory (for this process only) with a warning.
Secrets are keyed by the server's stable ``id`` so renaming a server keeps its password.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .user_paths import config_dir

ENV_STORE = "DICOMSERVERS_SECRET_STORE"
ENV_FILE = "DICOMSERVERS_SECRET_FILE"
KEYRING_SERVICE = "DicomServers"


class SecretStore(Protocol):
    """A place to keep secrets; ``kind`` and ``location`` tell the user where they are."""

    kind: str
    location: str
    persistent: bool

    def get(self, key: str) -> str | None:
        """Return the secret stored under ``key``, or None."""
        ...

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (an empty value deletes it)."""
        ...

    def delete(self, key: str) -> None:
        """Forget the secret under ``key`` (no error when absent)."""
        ...


_MEMORY: dict[str, str] = {}
_MEMORY_LOCK = threading.Lock()


@dataclass
class MemorySecretStore:
    """Secrets kept in this process only: gone when Slicer or the CLI exits."""

    kind: str = "memory"
    location: str = "this session only (not saved)"
    persistent: bool = False
    values: dict[str, str] = field(default_factory=lambda: _MEMORY)

    def get(self, key: str) -> str | None:
        """Return the secret stored under ``key``, or None."""
        with _MEMORY_LOCK:
            return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (an empty value deletes it)."""
        with _MEMORY_LOCK:
            if value:
                self.values[key] = value
            else:
                self.values.pop(key, None)

    def delete(self, key: str) -> None:
        """Forget the secret under ``key``."""
        with _MEMORY_LOCK:
            self.values.pop(key, None)


class FileSecretStore:
    """Secrets in a JSON file readable by the user only (mode 0600), outside the settings.

    The user opts in to this store (``DICOMSERVERS_SECRET_STORE=file``); writes are atomic.
    """

    kind = "file"
    persistent = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read the credentials file {self.path}: {exc}") from exc
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, values: Mapping[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(values), handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> str | None:
        """Return the secret stored under ``key``, or None."""
        with self._lock:
            return self._read().get(key)

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (an empty value deletes it)."""
        with self._lock:
            values = self._read()
            if value:
                values[key] = value
            else:
                values.pop(key, None)
            self._write(values)

    def delete(self, key: str) -> None:
        """Forget the secret under ``key``."""
        with self._lock:
            values = self._read()
            if values.pop(key, None) is not None:
                self._write(values)


class KeyringSecretStore:
    """Secrets in the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker)."""

    kind = "keyring"
    persistent = True

    def __init__(self, service: str = KEYRING_SERVICE) -> None:
        import keyring

        self._keyring = keyring
        self.service = service
        backend = keyring.get_keyring()
        self.location = f"OS keyring ({type(backend).__name__}), service {service!r}"

    def get(self, key: str) -> str | None:
        """Return the secret stored under ``key``, or None."""
        value: str | None = self._keyring.get_password(self.service, key)
        return value

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (an empty value deletes it)."""
        if value:
            self._keyring.set_password(self.service, key, value)
        else:
            self.delete(key)

    def delete(self, key: str) -> None:
        """Forget the secret under ``key``."""
        try:
            self._keyring.delete_password(self.service, key)
        except self._keyring.errors.PasswordDeleteError:
            pass


def keyring_usable() -> bool:
    """Return True when the ``keyring`` package has a real (non-failing) backend."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring):
        return False
    name = type(backend).__module__
    return not name.startswith(("keyring.backends.null", "keyring.backends.fail"))


@dataclass
class OpenedStore:
    """The store chosen for this process and a warning to show the user, if any."""

    store: SecretStore
    warning: str = ""


def open_secret_store(env: Mapping[str, str] | None = None) -> OpenedStore:
    """Open the secret store chosen by ``DICOMSERVERS_SECRET_STORE``.

    Raises
    ------
    ValueError
        The variable names no known store, or ``keyring`` was asked for and none is usable.
    """
    env = os.environ if env is None else env
    choice = env.get(ENV_STORE, "").strip().lower()
    memory_warning = (
        "Passwords are only remembered for this session: no OS keyring is available."
        f" Set {ENV_STORE}=file to keep them in a file readable only by you."
    )
    if choice == "memory":
        return OpenedStore(MemorySecretStore(), "Passwords are only remembered for this session.")
    if choice == "file":
        path = Path(env.get(ENV_FILE) or config_dir(env) / "credentials.json")
        return OpenedStore(FileSecretStore(path))
    if choice == "keyring":
        if not keyring_usable():
            raise ValueError(f"{ENV_STORE}=keyring: no usable OS keyring backend was found")
        return OpenedStore(KeyringSecretStore())
    if choice:
        raise ValueError(f"{ENV_STORE}: must be keyring, file or memory, got {choice!r}")
    if keyring_usable():
        return OpenedStore(KeyringSecretStore())
    return OpenedStore(MemorySecretStore(), memory_warning)


def secret_key(server_id: str, field_name: str) -> str:
    """Return the key a server's secret field is stored under."""
    return f"{server_id}/{field_name}"
