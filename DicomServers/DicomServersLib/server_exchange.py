"""Export and import of the server list as versioned JSON, without secrets.

An export holds ``{"format": "dicomservers-servers", "version": 1, "servers": [...]}`` with the
canonical field names; secrets and identities are left out. An import merges by name (ignoring
case): a server with a new name is added at the end, one with a known name is changed in place
(its identity and stored password are kept), the others are left alone; ``replace`` makes the
file the whole list instead. Every entry is validated first, errors are reported per entry, and
the registry is changed in one validated step or not at all. A dry run returns the same plan
(added / changed / unchanged) without applying it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .registry import ServerRegistry
from .server import FIELD_NAMES, SECRET_FIELDS, DicomServer
from .validation import ValidationError, check_names_unique, check_server

FORMAT = "dicomservers-servers"
VERSION = 1
_NOT_EXPORTED = SECRET_FIELDS | {"id"}


def export_document(servers: list[DicomServer]) -> dict[str, Any]:
    """Return the export document of ``servers`` (no secrets, no identities)."""
    entries = []
    for server in servers:
        data = server.to_dict(include_secrets=False)
        entries.append({k: v for k, v in data.items() if k not in _NOT_EXPORTED})
    return {"format": FORMAT, "version": VERSION, "servers": entries}


def export_file(servers: list[DicomServer], path: Path) -> None:
    """Write the export document to ``path`` atomically."""
    text = json.dumps(export_document(servers), indent=2, ensure_ascii=False) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class ImportPlan:
    """What an import does: per-entry errors, or the names added, changed and unchanged."""

    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # name -> changed fields
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # with replace
    errors: list[str] = field(default_factory=list)
    result: list[DicomServer] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file is valid and can be applied."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (the dry-run report)."""
        return {
            "ok": self.ok,
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "errors": self.errors,
        }


def read_document(path: Path) -> list[dict[str, Any]]:
    """Read an export file and return its entries.

    Raises
    ------
    ValidationError
        The file is not JSON or not a server-list export of a version we read.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(
            [("file", f"file: cannot read {path}: {exc.strerror or exc}")]
        ) from exc
    except ValueError as exc:
        raise ValidationError([("file", f"file: {path} is not valid JSON ({exc})")]) from exc
    if isinstance(document, list):
        entries = document
    elif isinstance(document, dict) and isinstance(document.get("servers"), list):
        if document.get("format", FORMAT) != FORMAT:
            raise ValidationError(
                [("file", f"file: format must be {FORMAT!r}, got {document.get('format')!r}")]
            )
        version = document.get("version", VERSION)
        if not isinstance(version, int) or version > VERSION:
            raise ValidationError(
                [
                    (
                        "file",
                        f"file: version {version!r} is newer than this DicomServers reads"
                        f" ({VERSION})",
                    )
                ]
            )
        entries = document["servers"]
    else:
        raise ValidationError([("file", "file: expected an object with a 'servers' list")])
    return entries


def plan_import(
    registry: ServerRegistry, entries: list[Any], *, replace: bool = False
) -> ImportPlan:
    """Work out what importing ``entries`` does to ``registry``, without changing it."""
    plan = ImportPlan()
    current = registry.servers
    by_name = {s.name.casefold(): s for s in current}
    incoming: list[DicomServer] = []
    for index, entry in enumerate(entries):
        label = f"entry {index + 1}"
        if not isinstance(entry, dict):
            plan.errors.append(f"{label}: not a JSON object")
            continue
        label = f"entry {index + 1} ({entry.get('name', '?')})"
        data = {k: v for k, v in entry.items() if k not in _NOT_EXPORTED}
        name = str(data.get("name", "")).strip()
        existing = by_name.get(name.casefold()) if name else None
        base = existing.to_dict(include_secrets=True) if existing is not None else {}
        try:
            server = DicomServer.from_dict({**base, **data})
        except TypeError as exc:
            plan.errors.append(f"{label}: {exc}")
            continue
        server.name = server.name.strip() if isinstance(server.name, str) else server.name
        problems = check_server(server)
        if problems:
            plan.errors.append(f"{label}: " + "; ".join(m for _, m in problems))
            continue
        incoming.append(server)
    for _, message in check_names_unique(s.name for s in incoming):
        plan.errors.append(f"file: {message}")
    if plan.errors:
        return plan
    incoming_keys = {s.name.casefold() for s in incoming}
    result: list[DicomServer] = [] if replace else [s.copy() for s in current]
    for server in incoming:
        existing = by_name.get(server.name.casefold())
        if existing is None:
            plan.added.append(server.name)
            result.append(server)
            continue
        diff = [
            f
            for f in FIELD_NAMES
            if f not in _NOT_EXPORTED and getattr(existing, f) != getattr(server, f)
        ]
        if diff:
            plan.changed[server.name] = diff
        else:
            plan.unchanged.append(server.name)
        if replace:
            result.append(server)
        else:
            position = next(i for i, s in enumerate(result) if s.id == existing.id)
            result[position] = server
    if replace:
        plan.removed = [s.name for s in current if s.name.casefold() not in incoming_keys]
    defaults = [s for s in result if s.is_default]
    if len(defaults) > 1:  # the file's default wins over the current one
        chosen = next((s for s in defaults if s.name.casefold() in incoming_keys), defaults[0])
        for server in result:
            server.is_default = server is chosen
    plan.result = result
    return plan


def apply_import(registry: ServerRegistry, plan: ImportPlan) -> None:
    """Apply a valid plan in one validated step (all or nothing).

    Raises
    ------
    ValidationError
        The plan has errors; nothing was changed.
    """
    if not plan.ok:
        raise ValidationError([("file", e) for e in plan.errors])
    registry.replace_all(plan.result)
