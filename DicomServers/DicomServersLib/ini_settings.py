"""A QSettings-like store on an INI file in Qt's format (the format of ``Slicer.ini``).

The CLI runs where no Qt exists (``PythonSlicer -m DicomServersLib``, CI), yet it must read and
write the very file Slicer uses. :class:`IniSettings` implements the part of ``QSettings`` the
settings store needs (``value``, ``setValue``, ``remove``, ``contains``, ``allKeys``, ``sync``)
on Qt's INI syntax:

- a key ``A/B/C`` lives in section ``[A]`` as ``B\\C``; keys without a group live in
  ``[General]``; other characters of keys are written ``%XX`` / ``%UXXXX``;
- string values are escaped like ``QSettingsPrivate::iniEscapedString`` (quotes when the text
  holds ``;``, ``,`` or ``=`` or starts or ends with a space; ``\\n``, ``\\"``, ``\\\\``,
  ``\\xHH``), and a string starting with ``@`` is written ``@@``;
- every line this class did not change is written back byte for byte, so Slicer's own keys
  (``DICOM/…``, ``ServerNodes/…`` with their ``@Variant(…)`` values) stay intact.

Changes are kept in memory until :meth:`sync`, which re-reads the file under a lock, applies
only this object's changes (as QSettings does), and replaces the file atomically (temporary
file, fsync, rename): a crash mid-save leaves the old file whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_KEY_SAFE = re.compile(r"[A-Za-z0-9_.-]")
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_REMOVED = object()


def escape_key(key: str) -> str:
    """Escape one section name or key for the INI file (``/`` becomes ``\\``)."""
    out = []
    for ch in key:
        if ch == "/":
            out.append("\\")
        elif _KEY_SAFE.match(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"%{ord(ch):02X}")
        else:  # per UTF-16 code unit, as Qt does (astral characters become a pair)
            units = ch.encode("utf-16-be", "surrogatepass")
            out.extend(
                f"%U{int.from_bytes(units[i : i + 2], 'big'):04X}"
                for i in (0, 2)[: len(units) // 2]
            )
    return "".join(out)


def unescape_key(text: str) -> str:
    """Reverse :func:`escape_key`."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            out.append("/")
            i += 1
        elif ch == "%" and text[i + 1 : i + 2] == "U" and len(text) >= i + 6:
            out.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
        elif ch == "%" and len(text) >= i + 3:
            try:
                out.append(chr(int(text[i + 1 : i + 3], 16)))
                i += 3
            except ValueError:
                out.append(ch)
                i += 1
        else:
            out.append(ch)
            i += 1
    text = "".join(out)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        text = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return text


_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def escape_string(value: str, *, raw_variant: bool = False) -> str:
    """Escape a string value as Qt's INI writer does (UTF-8 file, Qt 6 style).

    Non-ASCII characters are written as ``\\xHHHH`` escapes, which both Qt 5 and Qt 6
    readers decode, so the file stays ASCII whatever Qt version Slicer was built with.
    ``raw_variant`` marks an ``@Variant(…)`` text whose leading ``@`` must not be doubled.
    """
    if value.startswith("@") and not raw_variant:
        value = "@" + value
    out: list[str] = []
    needs_quotes = False
    escape_next_if_hex = False
    for ch in value:
        if ch in ";,=":
            needs_quotes = True
        if escape_next_if_hex and ch in "0123456789abcdefABCDEF":
            out.append(f"\\x{ord(ch):x}")
            continue
        escape_next_if_hex = False
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "\0":
            out.append("\\0")
            escape_next_if_hex = True
        elif ord(ch) > 0xFFFF:  # Qt escapes UTF-16 code units: a surrogate pair
            units = ch.encode("utf-16-be", "surrogatepass")
            out.append(f"\\x{int.from_bytes(units[:2], 'big'):x}")
            out.append(f"\\x{int.from_bytes(units[2:], 'big'):x}")
            escape_next_if_hex = True
        elif ord(ch) <= 0x1F or ord(ch) >= 0x7F:
            out.append(f"\\x{ord(ch):x}")
            escape_next_if_hex = True
        else:
            out.append(ch)
    text = "".join(out)
    if needs_quotes or text.startswith(" ") or text.endswith(" "):
        text = f'"{text}"'
    return text


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "?": "?",
}


def _trim(chars: list[tuple[str, bool]]) -> str:
    """Join characters, dropping literal (unquoted, unescaped) white space at both ends.

    Escaped UTF-16 surrogate pairs (``\\xd83d\\xde00``) are joined into one character.
    """
    start, end = 0, len(chars)
    while start < end and chars[start][1] and chars[start][0] in " \t":
        start += 1
    while end > start and chars[end - 1][1] and chars[end - 1][0] in " \t":
        end -= 1
    text = "".join(ch for ch, _ in chars[start:end])
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        text = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return text


def _unescape_value(text: str) -> str | list[str]:
    """Decode a raw INI value into a string (or a list when unquoted commas separate items).

    Only literal white space outside quotes is trimmed, as Qt's reader does; escaped
    characters (``\\n``, ``\\t``…) and quoted spaces are kept.
    """
    items: list[str] = []
    current: list[tuple[str, bool]] = []  # (character, literal white space may be trimmed)
    in_quotes = False
    is_list = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            in_quotes = not in_quotes
            i += 1
        elif ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in _SIMPLE_ESCAPES:
                current.append((_SIMPLE_ESCAPES[nxt], False))
                i += 2
            elif nxt in "xX":
                m = re.match(r"[0-9a-fA-F]+", text[i + 2 :])
                if m:
                    current.append((chr(int(m.group(0), 16)), False))
                    i += 2 + len(m.group(0))
                else:
                    i += 2
            elif nxt in "01234567":
                m = re.match(r"[0-7]{1,3}", text[i + 1 :])
                assert m is not None
                current.append((chr(int(m.group(0), 8)), False))
                i += 1 + len(m.group(0))
            else:
                current.append((nxt, False))
                i += 2
        elif ch == "," and not in_quotes:
            is_list = True
            items.append(_trim(current))
            current = []
            i += 1
        else:
            current.append((ch, not in_quotes))
            i += 1
    if is_list:
        items.append(_trim(current))
        return items
    return _trim(current)


def decode_value(raw: str) -> Any:
    """Return the Python value of a raw INI value: str, list of str, or the raw ``@…`` text.

    ``@Variant(…)``, ``@ByteArray(…)`` and other binary forms are returned as their raw text
    (prefixed ``@``), which callers treat as opaque; ``@@`` is decoded to a single ``@``.
    """
    value = _unescape_value(raw)
    if isinstance(value, str):
        if value.startswith("@@"):
            return value[1:]
        if value.startswith("@"):
            return value
    return value


def _qstring(text: str) -> bytes:
    data = text.encode("utf-16-be")
    return struct.pack(">I", len(data)) + data


def _qvariant(value: Any) -> bytes:
    """Serialise a value as ``QDataStream`` version Qt_4_0 writes a ``QVariant``.

    QSettings streams variants with version Qt_4_0, which has no "is null" byte: a type id
    (quint32) followed by the value.
    """
    if isinstance(value, bool):
        return struct.pack(">IB", 1, int(value))  # QVariant::Bool
    if isinstance(value, int):
        return struct.pack(">Ii", 2, value)  # QVariant::Int
    if isinstance(value, float):
        return struct.pack(">Id", 6, value)  # QVariant::Double
    if isinstance(value, str):
        return struct.pack(">I", 10) + _qstring(value)  # QVariant::String
    if isinstance(value, dict):
        body = struct.pack(">II", 8, len(value))  # QVariant::Map
        for key in sorted(value):
            body += _qstring(str(key)) + _qvariant(value[key])
        return body
    raise TypeError(f"cannot store a {type(value).__name__} inside a QVariantMap")


def encode_variant_map(value: dict[str, Any]) -> str:
    """Return the raw INI text of a ``QVariantMap`` (``@Variant(…)``), as QSettings writes it.

    Slicer's legacy query/retrieve widget stores each server as such a map (CTK
    ``Libs/DICOM/Widgets/ctkDICOMServerNodeWidget.cpp``, ``saveSettings``).
    """
    data = _qvariant(value).decode("latin-1")
    return escape_string(f"@Variant({data})", raw_variant=True)


def encode_value(value: Any) -> str:
    """Return the raw INI text of a value: str, int, float, bool, list of str, or dict.

    A dict is stored as a ``QVariantMap`` (``@Variant(…)``), as PythonQt and QSettings do.
    """
    if isinstance(value, dict):
        return encode_variant_map(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return escape_string(value)
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            return "@Invalid()"
        if len(value) == 1:
            # A one-element list would read back as a plain string: Qt has the same issue.
            return escape_string(str(value[0]))
        return ", ".join(escape_string(str(v)) for v in value)
    raise TypeError(f"cannot store a {type(value).__name__} in an INI settings file")


@dataclass
class _Line:
    """One line of a section: a key and its raw value, or any other line (``key`` None)."""

    key: str | None  # the raw (escaped) key
    value: str = ""  # the raw value
    text: str | None = None  # the line as read, written back as is while unchanged


@dataclass
class _Section:
    name: str  # unescaped group name ("" = root/General)
    header: str  # the raw header line ("" for lines before any header)
    lines: list[_Line] = field(default_factory=list)

    def entries(self) -> list[_Line]:
        return [line for line in self.lines if line.key is not None]


def _parse(text: str, damaged: list[tuple[int, str]] | None = None) -> list[_Section]:
    sections: list[_Section] = [_Section("", "")]
    # Only "\n" ends a line (str.splitlines would also split on \v, \f, \x1c… inside values).
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        is_damaged = bool(_RAW_CONTROL.search(line.removesuffix("\r")))  # Qt never writes those
        if stripped.startswith("[") and stripped.endswith("]") and not is_damaged:
            raw = stripped[1:-1].strip()
            if raw == "General":
                name = ""
            elif raw == "%General":
                name = "General"
            else:
                name = unescape_key(raw)
            sections.append(_Section(name, line))
            continue
        if is_damaged or (stripped and not stripped.startswith((";", "#")) and "=" not in line):
            if damaged is not None:
                damaged.append((number, line))
            sections[-1].lines.append(_Line(None, text=line))
            continue
        if not stripped or stripped.startswith((";", "#")):
            sections[-1].lines.append(_Line(None, text=line))
            continue
        key, _, value = line.partition("=")
        sections[-1].lines.append(_Line(key.strip(), value.strip(), line))
    return sections


def _full_key(section: str, raw_key: str) -> str:
    key = unescape_key(raw_key)
    return f"{section}/{key}" if section else key


def _split_key(key: str) -> tuple[str, str]:
    section, sep, rest = key.partition("/")
    if not sep:
        return "", key
    return section, rest


class IniSettings:
    """A QSettings-like object on one INI file (see the module documentation)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._pending: dict[str, Any] = {}
        self._sections: list[_Section] = []
        self._values: dict[str, str] = {}
        self._load()

    # -- reading -------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            # Bytes that are not UTF-8 (a damaged file) are kept as they are and written back.
            text = self.path.read_bytes().decode("utf-8", errors="surrogateescape")
        except FileNotFoundError:
            text = ""
        self.damaged_lines: list[tuple[int, str]] = []
        self._sections = _parse(text, self.damaged_lines)
        self._values = {}
        for section in self._sections:
            for entry in section.entries():
                assert entry.key is not None
                self._values[_full_key(section.name, entry.key)] = entry.value

    def fileName(self) -> str:  # noqa: N802 - QSettings API
        """Return the file path (as ``QSettings.fileName()``)."""
        return str(self.path)

    def contains(self, key: str) -> bool:
        """Return True when ``key`` has a value (pending changes included)."""
        if key in self._pending:
            return self._pending[key] is not _REMOVED
        if any(
            k == key or key.startswith(k + "/") for k, v in self._pending.items() if v is _REMOVED
        ):
            return False
        return key in self._values

    def value(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key`` (strings come back as ``str`` as from QSettings)."""
        if not self.contains(key):
            return default
        if key in self._pending:
            return self._pending[key]
        return decode_value(self._values[key])

    def allKeys(self) -> list[str]:  # noqa: N802 - QSettings API
        """Return every key (pending changes included)."""
        keys = [k for k in self._values if self.contains(k)]
        keys += [k for k, v in self._pending.items() if v is not _REMOVED and k not in self._values]
        return keys

    # -- writing -------------------------------------------------------------------------------

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802 - QSettings API
        """Set ``key`` to ``value`` (written at the next :meth:`sync`)."""
        encode_value(value)  # fail now, not at sync time
        self._pending[key] = value

    def remove(self, key: str) -> None:
        """Remove ``key`` and every key below it (as ``QSettings.remove``)."""
        for k in list(self._pending):
            if k == key or k.startswith(key + "/"):
                del self._pending[k]
        self._pending[key] = _REMOVED

    def sync(self) -> None:
        """Write pending changes: re-read the file, apply them, replace the file atomically."""
        if not self._pending:
            self._load()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._load()
            self._apply_pending()
            self._write()
        self._pending.clear()
        self._load()

    def _apply_pending(self) -> None:
        for key, value in self._pending.items():
            if value is _REMOVED:
                for section in self._sections:
                    section.lines = [
                        line
                        for line in section.lines
                        if line.key is None
                        or not (
                            _full_key(section.name, line.key) == key
                            or _full_key(section.name, line.key).startswith(key + "/")
                        )
                    ]
                continue
            name, sub = _split_key(key)
            new_line = _Line(escape_key(sub), encode_value(value))
            target = next((s for s in self._sections if s.name == name and s.header), None)
            if target is None:
                header = (
                    "[General]"
                    if name == ""
                    else f"[{escape_key(name) if name != 'General' else '%General'}]"
                )
                target = _Section(name, header)
                if name == "":
                    self._sections.insert(1, target)
                else:
                    self._sections.append(target)
            for index, line in enumerate(target.lines):
                if line.key is not None and unescape_key(line.key) == sub:
                    target.lines[index] = new_line
                    break
            else:
                target.lines.append(new_line)

    def _render(self) -> str:
        out: list[str] = []
        for section in self._sections:
            body = [
                line.text if line.text is not None else f"{line.key}={line.value}"
                for line in section.lines
                if line.key is not None or (line.text or "").strip()
            ]
            if section.header and not section.entries() and not body:
                continue
            if section.header:
                if out:
                    out.append("")
                out.append(section.header)
            out.extend(body)
        return "\n".join(out) + "\n" if out else ""

    def _write(self) -> None:
        text = self._render()
        mode = 0o600
        with contextlib.suppress(FileNotFoundError):
            mode = self.path.stat().st_mode & 0o777
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            os.fchmod(fd, mode) if hasattr(os, "fchmod") else None
            with os.fdopen(
                fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n"
            ) as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # Windows: the atomic replace is the only guard
            yield
            return
        lock_path = self.path.parent / f".{self.path.name}.dicomservers-lock"
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
