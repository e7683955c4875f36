"""Reading and writing the server list in Slicer's application settings.

The list lives under ``DicomServers/Servers`` as one JSON text with a schema version, so a save
replaces it in one step (QSettings and :class:`~DicomServersLib.ini_settings.IniSettings` both
replace the file atomically on ``sync``). The store works on any QSettings-like object:
``slicer.app.userSettings()`` in Slicer, PySide6's ``QSettings`` or our ``IniSettings``
elsewhere. Only keys under ``DicomServers/`` are touched.

Reading never loses anything: unknown fields are kept (``extras``), and an entry that is
corrupted or invalid is reported (which one, why) and kept aside under
``DicomServers/Rejected`` instead of being dropped. Secrets go to the secret store, never to
the settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .secret_store import MemorySecretStore, SecretStore, secret_key
from .server import SECRET_FIELDS, DicomServer
from .validation import check_names_unique, check_server

SCHEMA_VERSION = 1
KEY_SERVERS = "DicomServers/Servers"
KEY_REJECTED = "DicomServers/Rejected"


class SettingsLike(Protocol):
    """The part of ``QSettings`` the store uses."""

    def value(self, key: str, default: Any = None) -> Any:
        """Return the value stored under ``key``."""
        ...

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802 - QSettings API
        """Store ``value`` under ``key``."""
        ...

    def remove(self, key: str) -> None:
        """Remove ``key``."""
        ...

    def sync(self) -> None:
        """Write pending changes to permanent storage."""
        ...


@dataclass
class RejectedEntry:
    """A stored entry that could not be used, kept aside with the reason."""

    entry: Any
    reason: str
    when: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {"entry": self.entry, "reason": self.reason, "when": self.when}


@dataclass
class LoadResult:
    """What :meth:`SettingsStore.load` found."""

    servers: list[DicomServer]
    problems: list[str] = field(default_factory=list)
    rejected: list[RejectedEntry] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION


def _text(value: Any) -> str | None:
    """Return a settings value as text (QSettings may return a list when commas were unquoted)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class SettingsStore:
    """Load and save the ordered server list (see the module documentation)."""

    def __init__(self, settings: SettingsLike, secrets: SecretStore | None = None) -> None:
        self.settings = settings
        self.secrets: SecretStore = secrets if secrets is not None else MemorySecretStore()
        self._rejected: list[RejectedEntry] = []
        self._previously_rejected: list[RejectedEntry] = []

    # -- load ----------------------------------------------------------------------------------

    def load(self) -> LoadResult:
        """Read the server list; invalid entries are reported and kept aside, never dropped.

        ``LoadResult.rejected`` lists the entries of this read that could not be used; all
        entries kept aside so far (this read and earlier ones) are :attr:`rejected`.
        """
        result = LoadResult(servers=[])
        self._rejected = self._read_rejected()
        self._previously_rejected = list(self._rejected)
        damaged = getattr(self.settings, "damaged_lines", None) or []
        if damaged:
            number, line = damaged[0]
            result.problems.append(
                f"the settings file has {len(damaged)} line(s) that are not valid INI (line"
                f" {number}: {line[:60]!r}); they are kept unchanged, but servers stored near"
                " them may not be listed: check the file"
            )
        raw = _text(self.settings.value(KEY_SERVERS))
        if raw is None or raw.strip() == "":
            return result
        try:
            document = json.loads(raw)
        except ValueError as exc:
            reason = f"{KEY_SERVERS} is not valid JSON ({exc}); the text was kept aside"
            self._reject(result, raw, reason)
            return result
        if isinstance(document, list):  # tolerate a bare list
            document = {"schema_version": SCHEMA_VERSION, "servers": document}
        if not isinstance(document, dict) or not isinstance(document.get("servers"), list):
            self._reject(
                result, raw, f"{KEY_SERVERS} has no 'servers' list; the text was kept aside"
            )
            return result
        version = document.get("schema_version", SCHEMA_VERSION)
        result.schema_version = version if isinstance(version, int) else SCHEMA_VERSION
        if isinstance(version, int) and version > SCHEMA_VERSION:
            result.problems.append(
                f"the server list was written by a newer DicomServers (schema {version}); fields"
                " this version does not know are kept as they are"
            )
        names: list[str] = []
        default_seen = False
        for index, entry in enumerate(document["servers"]):
            label = f"entry {index + 1}"
            if not isinstance(entry, dict):
                self._reject(result, entry, f"{label}: not a JSON object")
                continue
            label = f"entry {index + 1} ({entry.get('name', '?')!s})"
            try:
                server = DicomServer.from_dict(entry)
            except TypeError as exc:
                self._reject(result, entry, f"{label}: {exc}")
                continue
            errors = check_server(server)
            errors += check_names_unique([*names, server.name])
            if errors:
                self._reject(result, entry, f"{label}: " + "; ".join(m for _, m in errors))
                continue
            if server.is_default and default_seen:
                server.is_default = False
                result.problems.append(
                    f"{label}: more than one default server; this one is no longer the default"
                )
            default_seen = default_seen or server.is_default
            self._load_secrets(server)
            names.append(server.name)
            result.servers.append(server)
        return result

    def _reject(self, result: LoadResult, entry: Any, reason: str) -> None:
        result.problems.append(reason)
        result.rejected.append(RejectedEntry(entry, reason))
        # Kept aside once: an entry already stored under Rejected is not stored twice.
        if not any(r.entry == entry for r in self._previously_rejected):
            self._rejected.append(result.rejected[-1])

    def _read_rejected(self) -> list[RejectedEntry]:
        raw = _text(self.settings.value(KEY_REJECTED))
        if not raw:
            return []
        try:
            items = json.loads(raw)
        except ValueError:
            return [RejectedEntry(raw, f"{KEY_REJECTED} is not valid JSON")]
        if not isinstance(items, list):
            return [RejectedEntry(items, f"{KEY_REJECTED} is not a list")]
        kept = []
        for item in items:
            if isinstance(item, dict) and "entry" in item:
                kept.append(
                    RejectedEntry(
                        item["entry"], str(item.get("reason", "")), str(item.get("when", ""))
                    )
                )
            else:
                kept.append(RejectedEntry(item, "unrecognised rejected entry"))
        return kept

    def _load_secrets(self, server: DicomServer) -> None:
        for name in SECRET_FIELDS:
            try:
                value = self.secrets.get(secret_key(server.id, name))
            except Exception:  # a locked keyring must not stop the list from loading
                value = None
            setattr(server, name, value or "")

    # -- save ----------------------------------------------------------------------------------

    def save(self, servers: list[DicomServer], *, removed_ids: tuple[str, ...] = ()) -> None:
        """Write the list (secrets to the secret store) and sync the settings.

        Raises
        ------
        OSError
            The settings could not be written; the stored list is then unchanged.
        """
        for server in servers:
            for name in SECRET_FIELDS:
                key = secret_key(server.id, name)
                value = getattr(server, name)
                if (self.secrets.get(key) or "") != value:
                    self.secrets.set(key, value)
        document = {
            "schema_version": SCHEMA_VERSION,
            "servers": [s.to_dict(include_secrets=False) for s in servers],
        }
        self.settings.setValue(
            KEY_SERVERS, json.dumps(document, ensure_ascii=True, separators=(",", ":"))
        )
        if self._rejected:
            rejected = [r.to_dict() for r in self._rejected]
            self.settings.setValue(
                KEY_REJECTED, json.dumps(rejected, ensure_ascii=True, separators=(",", ":"))
            )
        self.settings.sync()
        status = getattr(self.settings, "status", None)
        if callable(status):
            code = status()
            code = getattr(code, "value", code)  # PySide6 enum or PythonQt int
            if code:
                raise OSError(f"the settings could not be written (QSettings status {code})")
        for server_id in removed_ids:
            for name in SECRET_FIELDS:
                try:
                    self.secrets.delete(secret_key(server_id, name))
                except Exception:
                    pass

    @property
    def rejected(self) -> list[RejectedEntry]:
        """Entries kept aside at the last load."""
        return list(self._rejected)
