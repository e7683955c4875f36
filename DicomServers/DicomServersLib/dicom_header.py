"""A fast reader of the few header attributes a folder index needs.

Reading a PACS folder means reading the start of thousands of files. pydicom's ``dcmread``
builds a full dataset even with ``stop_before_pixels``; this reader walks the raw elements of
the file meta and of groups 0008-0020 only, in explicit or implicit VR little endian (PS3.5
§7.1), skipping sequences, and stops at the first element past group 0020. Anything unusual
(big endian, deflate, no Part-10 header, a malformed element) falls back to pydicom, so the
result is always right; the fast path is only faster.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Attributes read, by tag: (group << 16) | element.
WANTED: dict[int, str] = {
    0x00080005: "SpecificCharacterSet",
    0x00080016: "SOPClassUID",
    0x00080018: "SOPInstanceUID",
    0x00080020: "StudyDate",
    0x00080030: "StudyTime",
    0x00080050: "AccessionNumber",
    0x00080060: "Modality",
    0x00081030: "StudyDescription",
    0x0008103E: "SeriesDescription",
    0x00100010: "PatientName",
    0x00100020: "PatientID",
    0x00100030: "PatientBirthDate",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
    0x00200011: "SeriesNumber",
    0x00200013: "InstanceNumber",
}
_LAST_TAG = 0x0020FFFF
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"UC",
    b"UR",
    b"UT",
    b"UN",
    b"SV",
    b"UV",
}
_IMPLICIT = "1.2.840.10008.1.2"
_EXPLICIT_BIG = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class _FallbackError(Exception):
    """The fast path cannot read this file; pydicom will."""


@dataclass
class HeaderInfo:
    """The attributes an index keeps for one instance (text, decoded)."""

    values: dict[str, str]

    def get(self, name: str) -> str:
        """Return the attribute's text, or ``""``."""
        return self.values.get(name, "")


class _Buffer:
    """Reads a file forward in chunks; ``need(n)`` makes ``n`` bytes available at ``pos``."""

    def __init__(self, handle: BinaryIO, first: int = 16384) -> None:
        self.handle = handle
        self.data = bytearray(handle.read(first))
        self.pos = 0
        self.eof = len(self.data) < first

    def need(self, count: int) -> None:
        missing = self.pos + count - len(self.data)
        if missing > 0 and not self.eof:
            chunk = self.handle.read(max(missing, 65536))
            self.eof = len(chunk) < max(missing, 65536)
            self.data += chunk
        if self.pos + count > len(self.data):
            raise _FallbackError("truncated element")

    def take(self, count: int) -> bytes:
        self.need(count)
        value = bytes(self.data[self.pos : self.pos + count])
        self.pos += count
        return value

    def skip(self, count: int) -> None:
        if self.pos + count <= len(self.data):
            self.pos += count
            return
        beyond = self.pos + count - len(self.data)
        self.handle.seek(beyond, 1)
        self.data = bytearray()
        self.pos = 0


def _elements(buf: _Buffer, explicit: bool, stop: int | None) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(tag, value)`` for each element; value is None for skipped ones."""
    while True:
        if buf.eof and buf.pos >= len(buf.data):
            return
        buf.need(8)
        group, element = struct.unpack_from("<HH", buf.data, buf.pos)
        tag = (group << 16) | element
        if stop is not None and tag > stop:
            return
        if tag in (_ITEM_END, _SEQ_END):
            buf.pos += 8
            return
        if explicit and group != 0xFFFE:
            vr = bytes(buf.data[buf.pos + 4 : buf.pos + 6])
            if vr in _LONG_VRS:
                buf.need(12)
                (length,) = struct.unpack_from("<I", buf.data, buf.pos + 8)
                buf.pos += 12
            elif vr.isalpha() and vr.isupper():
                (length,) = struct.unpack_from("<H", buf.data, buf.pos + 6)
                buf.pos += 8
            else:
                raise _FallbackError(f"unexpected VR {vr!r}")
        else:
            vr = b""
            (length,) = struct.unpack_from("<I", buf.data, buf.pos + 4)
            buf.pos += 8
        if length == _UNDEFINED:
            if explicit and vr not in (b"SQ", b"UN"):
                raise _FallbackError("undefined length outside a sequence")
            _skip_sequence(buf, explicit)
            yield tag, None
        elif tag in WANTED:
            yield tag, buf.take(length)
        else:
            buf.skip(length)
            yield tag, None


def _skip_sequence(buf: _Buffer, explicit: bool) -> None:
    """Skip the items of an undefined-length sequence up to its delimiter."""
    while True:
        buf.need(8)
        group, element, length = struct.unpack_from("<HHI", buf.data, buf.pos)
        tag = (group << 16) | element
        buf.pos += 8
        if tag == _SEQ_END:
            return
        if tag != _ITEM:
            raise _FallbackError("malformed sequence")
        if length == _UNDEFINED:
            for _ in _elements(buf, explicit, None):
                pass
        else:
            buf.skip(length)


_TEXT = {"PatientName", "PatientID", "AccessionNumber", "StudyDescription", "SeriesDescription"}


def _decode(raw: dict[int, bytes]) -> dict[str, str]:
    """Decode values; text attributes use the file's Specific Character Set (PS3.5 §6.1)."""
    charset = raw.get(0x00080005, b"").decode("ascii", "replace").strip("\0 ")
    encodings: list[str] = []
    if charset and charset != "ISO_IR 6":
        from pydicom.charset import convert_encodings

        encodings = convert_encodings([c.strip() or "ISO_IR 6" for c in charset.split("\\")])
    values: dict[str, str] = {}
    for tag, value in raw.items():
        name = WANTED[tag]
        if encodings and name in _TEXT and (not value.isascii() or b"\x1b" in value):
            from pydicom.charset import decode_bytes

            delimiters = {0x5E, 0x3D} if name == "PatientName" else {0x5C}
            text = decode_bytes(value, encodings, delimiters)
        else:
            text = value.decode("latin-1")
        values[name] = text.strip("\0 ")
    return values


def _fast(path: Path) -> dict[str, str]:
    with open(path, "rb") as handle:
        buf = _Buffer(handle)
        buf.need(132)
        if bytes(buf.data[128:132]) != b"DICM":
            raise _FallbackError("no Part-10 header")
        buf.pos = 132
        syntax = ""
        while True:  # the file meta group is always explicit VR little endian (PS3.10 §7.1)
            buf.need(8)
            group, element = struct.unpack_from("<HH", buf.data, buf.pos)
            if group != 0x0002:
                break
            vr = bytes(buf.data[buf.pos + 4 : buf.pos + 6])
            if vr in _LONG_VRS:
                buf.need(12)
                (length,) = struct.unpack_from("<I", buf.data, buf.pos + 8)
                header = 12
            else:
                (length,) = struct.unpack_from("<H", buf.data, buf.pos + 6)
                header = 8
            buf.pos += header
            if element == 0x0010:
                syntax = buf.take(length).decode("ascii", "replace").strip("\0 ")
            else:
                buf.skip(length)
        if syntax in (_EXPLICIT_BIG, _DEFLATED) or not syntax:
            raise _FallbackError(f"transfer syntax {syntax or 'missing'}")
        raw = {
            tag: value
            for tag, value in _elements(buf, syntax != _IMPLICIT, _LAST_TAG)
            if value is not None
        }
    return _decode(raw)


def _slow(path: Path) -> dict[str, str]:
    import pydicom
    from pydicom.multival import MultiValue

    ds = pydicom.dcmread(
        str(path), stop_before_pixels=True, specific_tags=list(WANTED.values()), force=True
    )
    values = {}
    for name in WANTED.values():
        value = ds.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, MultiValue):
            value = "\\".join(str(v) for v in value)  # multi-valued, as stored in the file
        values[name] = str(value).strip("\0 ")
    return values


def read_header(path: Path) -> HeaderInfo:
    """Return the indexed attributes of one file (fast path, pydicom fallback).

    Raises
    ------
    ValueError
        The file is not DICOM (neither reader finds a SOP Instance UID).
    """
    try:
        values = _fast(Path(path))
    except (_FallbackError, struct.error, UnicodeDecodeError, LookupError):
        try:
            values = _slow(Path(path))
        except Exception as exc:
            raise ValueError(f"{path}: not a readable DICOM file ({exc})") from exc
    if not values.get("SOPInstanceUID"):
        raise ValueError(f"{path}: not a DICOM instance (no SOP Instance UID)")
    return HeaderInfo(values)
