"""The ordered list of DICOM servers and every operation the DICOM Servers page offers.

The list order is the order of every server dropdown (study browser, Slicer's DICOM module).
Every change is validated first; a rejected change raises
:class:`~DicomServersLib.validation.ValidationError` and leaves both the list and the stored
settings untouched. A change that is accepted is saved at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .server import DEFAULT_NAME, FIELD_NAMES, DicomServer, new_server_id
from .settings_store import LoadResult, SettingsStore
from .validation import ValidationError, check_names_unique, check_server, parse_fields

_SUFFIX = re.compile(r"^(?P<base>.*?) \((?P<n>\d+)\)$")

Listener = Callable[[], None]


def strip_suffix(name: str) -> str:
    """Return ``name`` without a trailing `` (k)`` copy suffix."""
    match = _SUFFIX.match(name.strip())
    return match.group("base") if match else name.strip()


def next_free_name(base: str, taken: Iterable[str], *, use_base: bool) -> str:
    """Return ``base`` (if allowed and free) or ``base (n)`` with the smallest free n ≥ 2.

    Names compare ignoring case and surrounding spaces.
    """
    used = {t.strip().casefold() for t in taken}
    if use_base and base.strip().casefold() not in used:
        return base
    n = 2
    while f"{base} ({n})".casefold() in used:
        n += 1
    return f"{base} ({n})"


class ServerRegistry:
    """The ordered server list, persisted through a :class:`SettingsStore`.

    Parameters
    ----------
    store
        Where the list is read from and saved to; ``None`` keeps it in memory only.
    """

    def __init__(self, store: SettingsStore | None = None) -> None:
        self.store = store
        self.load_result = store.load() if store is not None else LoadResult(servers=[])
        self._servers: list[DicomServer] = list(self.load_result.servers)
        self._listeners: list[Listener] = []

    # -- reading -------------------------------------------------------------------------------

    @property
    def servers(self) -> list[DicomServer]:
        """Copies of the servers, in list order."""
        return [s.copy() for s in self._servers]

    def names(self) -> list[str]:
        """Server names in list order."""
        return [s.name for s in self._servers]

    def __len__(self) -> int:
        return len(self._servers)

    def index_of(self, name: str) -> int:
        """Return the position of the server called ``name`` (ignoring case).

        Raises
        ------
        KeyError
            No server has that name.
        """
        key = name.strip().casefold()
        for index, server in enumerate(self._servers):
            if server.name.casefold() == key:
                return index
        raise KeyError(
            f"no server named {name.strip()!r} (known: {', '.join(self.names()) or 'none'})"
        )

    def get(self, name: str) -> DicomServer:
        """Return a copy of the server called ``name`` (``KeyError`` if none)."""
        return self._servers[self.index_of(name)].copy()

    def default_server(self) -> DicomServer | None:
        """Return the server marked as default, or None."""
        return next((s.copy() for s in self._servers if s.is_default), None)

    def preselected(self) -> DicomServer | None:
        """Return the server a dropdown preselects: the default, else the first, else None."""
        default = self.default_server()
        if default is not None:
            return default
        return self._servers[0].copy() if self._servers else None

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` after every accepted change (UI refresh, Slicer table sync)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- changing ------------------------------------------------------------------------------

    def _commit(self, new: list[DicomServer], removed_ids: tuple[str, ...] = ()) -> None:
        errors: list[tuple[str, str]] = []
        for server in new:
            errors += [(f, f"{server.name}: {m}") for f, m in check_server(server)]
        errors += check_names_unique(s.name for s in new)
        defaults = [s.name for s in new if s.is_default]
        if len(defaults) > 1:
            errors.append(
                (
                    "is_default",
                    "Set as default server (is_default): only one server can be the default, got "
                    + ", ".join(defaults),
                )
            )
        if errors:
            raise ValidationError(errors)
        if self.store is not None:
            self.store.save(new, removed_ids=removed_ids)
        self._servers = new
        for listener in list(self._listeners):
            listener()

    def add(self, name: str | None = None, **fields: Any) -> DicomServer:
        """Append a server with default settings and return it.

        Without a name it is called ``New server``, then ``New server (2)``, ``(3)``…
        """
        if name is None:
            name = next_free_name(DEFAULT_NAME, self.names(), use_base=True)
        server = self._with_fields(DicomServer(name=name.strip()), fields)
        new = [s.copy() for s in self._servers]
        if server.is_default:
            for other in new:
                other.is_default = False
        self._commit([*new, server])
        return server.copy()

    def add_server(self, server: DicomServer, index: int | None = None) -> DicomServer:
        """Insert a complete record (e.g. from an import) at ``index`` (default: the end)."""
        new = [s.copy() for s in self._servers]
        record = server.copy()
        if any(s.id == record.id for s in new):
            record.id = new_server_id()
        if record.is_default:
            for other in new:
                other.is_default = False
        new.insert(len(new) if index is None else index, record)
        self._commit(new)
        return record.copy()

    def duplicate(self, name: str) -> DicomServer:
        """Insert an exact copy right after ``name``, called ``<base> (n)``; never the default."""
        index = self.index_of(name)
        original = self._servers[index]
        copy_name = next_free_name(strip_suffix(original.name), self.names(), use_base=False)
        clone = original.copy(name=copy_name, is_default=False, id=new_server_id())
        new = [s.copy() for s in self._servers]
        new.insert(index + 1, clone)
        self._commit(new)
        return clone.copy()

    def update(self, server_name: str, /, **fields: Any) -> DicomServer:
        """Change fields of ``server_name`` (typed values); ``is_default`` clears the others."""
        index = self.index_of(server_name)
        new = [s.copy() for s in self._servers]
        updated = self._with_fields(new[index], fields)
        new[index] = updated
        if updated.is_default:
            for position, other in enumerate(new):
                if position != index:
                    other.is_default = False
        self._commit(new)
        return updated.copy()

    def update_text(self, name: str, values: dict[str, str]) -> DicomServer:
        """Change fields from text (CLI ``field=value``, form fields): parsed, then validated."""
        return self.update(name, **parse_fields(values))

    def rename(self, name: str, new_name: str) -> DicomServer:
        """Rename a server: trimmed, non-empty, unique ignoring case."""
        return self.update(name, name=new_name)

    def move(self, name: str, to_index: int) -> None:
        """Move ``name`` to position ``to_index`` (0-based; the order of every dropdown)."""
        index = self.index_of(name)
        if not 0 <= to_index < len(self._servers):
            raise ValidationError(
                [
                    (
                        "index",
                        f"Position (index): must be from 0 to {len(self._servers) - 1},"
                        f" got {to_index}",
                    )
                ]
            )
        new = [s.copy() for s in self._servers]
        new.insert(to_index, new.pop(index))
        self._commit(new)

    def move_up(self, name: str) -> None:
        """Move ``name`` one place up (nothing happens at the top)."""
        index = self.index_of(name)
        if index > 0:
            self.move(name, index - 1)

    def move_down(self, name: str) -> None:
        """Move ``name`` one place down (nothing happens at the bottom)."""
        index = self.index_of(name)
        if index < len(self._servers) - 1:
            self.move(name, index + 1)

    def remove(self, name: str) -> DicomServer:
        """Remove ``name`` (and its secrets); removing the default leaves no default."""
        index = self.index_of(name)
        new = [s.copy() for s in self._servers]
        removed = new.pop(index)
        self._commit(new, removed_ids=(removed.id,))
        return removed

    def set_default(self, name: str | None) -> None:
        """Make ``name`` the only default server; ``None`` clears the default."""
        new = [s.copy() for s in self._servers]
        target = self.index_of(name) if name is not None else -1
        for index, server in enumerate(new):
            server.is_default = index == target
        self._commit(new)

    def replace_all(self, servers: list[DicomServer]) -> None:
        """Replace the whole list (import with replace); validated as one change."""
        old_ids = {s.id for s in self._servers}
        new = [s.copy() for s in servers]
        self._commit(new, removed_ids=tuple(old_ids - {s.id for s in new}))

    @staticmethod
    def _with_fields(server: DicomServer, fields: dict[str, Any]) -> DicomServer:
        unknown = [f for f in fields if f not in FIELD_NAMES or f == "id"]
        if unknown:
            raise ValidationError(
                [
                    (
                        f,
                        f"{f}: unknown field (known: "
                        + ", ".join(n for n in FIELD_NAMES if n != "id")
                        + ")",
                    )
                    for f in unknown
                ]
            )
        changes = dict(fields)
        if isinstance(changes.get("name"), str):
            changes["name"] = changes["name"].strip()
        if isinstance(changes.get("timeout_s"), int) and not isinstance(changes["timeout_s"], bool):
            changes["timeout_s"] = float(changes["timeout_s"])
        return server.copy(**changes)
