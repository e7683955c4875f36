"""Fast reading of the top-level elements of an encoded data set, and decoding of their text.

C-FIND answers and the headers of received instances are read here without building a
pydicom ``Dataset``: the element headers are walked with :mod:`struct` (PS3.5 §7.1), values
are kept as bytes, and only the values asked for are decoded. Sequences (defined or undefined
length, PS3.5 §7.5) are skipped whole, so an identifier or header with nested items reads
correctly.

Text is decoded with the data set's Specific Character Set (0008,0005) through pydicom's own
character set machinery (PS3.5 §6.1, PS3.3 C.12.1.1.2), so Latin-1, UTF-8, Greek and ISO 2022
Japanese names come out right. Control characters a broken or hostile PACS may put in text are
replaced with U+FFFD, so they cannot reach a terminal or a log as commands.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.valuerep import PersonName

__all__ = [
    "Elements",
    "TextDecoder",
    "read_elements",
    "tag",
]

#: Element values by tag (``group << 16 | element``): (VR or b"" when implicit, raw value).
Elements = dict[int, tuple[bytes, bytes]]

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN"})
_LONG_VRS |= frozenset({b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_TAG = struct.Struct("<HH")
_IMPLICIT = struct.Struct("<HHL")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<L")

SPECIFIC_CHARACTER_SET = 0x00080005


def tag(group: int, element: int) -> int:
    """Return a tag as one integer, ``group << 16 | element``."""
    return (group << 16) | element


class MalformedDataError(ValueError):
    """The encoded data set is truncated or inconsistent."""


def _header(data: bytes, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """Read one element header at ``pos``: (tag, VR, value length, value offset)."""
    if pos + 8 > len(data):
        raise MalformedDataError("truncated element header")
    group, element = _TAG.unpack_from(data, pos)
    element_tag = (group << 16) | element
    if group == 0xFFFE:  # item and delimiters have no VR in either encoding
        (length,) = _LONG_LENGTH.unpack_from(data, pos + 4)
        return element_tag, b"", length, pos + 8
    if not explicit:
        (length,) = _LONG_LENGTH.unpack_from(data, pos + 4)
        return element_tag, b"", length, pos + 8
    _, _, vr, short = _EXPLICIT_SHORT.unpack_from(data, pos)
    if vr in _LONG_VRS:
        if pos + 12 > len(data):
            raise MalformedDataError("truncated element header")
        (length,) = _LONG_LENGTH.unpack_from(data, pos + 8)
        return element_tag, vr, length, pos + 12
    return element_tag, vr, short, pos + 8


def _skip_undefined(data: bytes, pos: int, explicit: bool, depth: int = 0) -> int:
    """Skip the items of an undefined-length value from ``pos``; return the offset after its
    Sequence Delimitation Item."""
    if depth > 32:
        raise MalformedDataError("sequences nested too deeply")
    while True:
        item_tag, _, length, value_pos = _header(data, pos, False)
        if item_tag == _SEQUENCE_END:
            return value_pos
        if item_tag != _ITEM:
            raise MalformedDataError(f"expected an item, found tag {item_tag:08X}")
        if length != _UNDEFINED:
            pos = value_pos + length
            continue
        pos = value_pos
        while True:  # elements of an undefined-length item, up to its delimiter
            element_tag, _, length, value_pos = _header(data, pos, explicit)
            if element_tag == _ITEM_END:
                pos = value_pos
                break
            if length == _UNDEFINED:
                pos = _skip_undefined(data, value_pos, explicit, depth + 1)
            else:
                pos = value_pos + length
            if pos > len(data):
                raise MalformedDataError("truncated item")


def read_elements(data: bytes, explicit_vr: bool, *, stop_after: int | None = None) -> Elements:
    """Return the top-level elements of an encoded little-endian data set.

    Parameters
    ----------
    data : bytes
        The data set (no preamble or file meta), explicit or implicit VR little endian.
    explicit_vr : bool
        The encoding (the transfer syntax of the presentation context).
    stop_after : int, optional
        Stop once an element with a greater tag is reached (read only a header).

    Returns
    -------
    Elements
        Tag → (VR, raw value); sequences map to their raw bytes (empty when undefined length).

    Raises
    ------
    MalformedDataError
        Truncated or inconsistent encoding.
    """
    elements: Elements = {}
    pos = 0
    end = len(data)
    while pos < end:
        element_tag, vr, length, value_pos = _header(data, pos, explicit_vr)
        if stop_after is not None and element_tag > stop_after:
            break
        if length == _UNDEFINED:
            pos = _skip_undefined(data, value_pos, explicit_vr)
            elements[element_tag] = (vr or b"SQ", b"")
            continue
        pos = value_pos + length
        if pos > end:
            raise MalformedDataError(f"element {element_tag:08X} runs past the end of the data")
        elements[element_tag] = (vr, data[value_pos:pos])
    return elements


_CONTROL = {code: "\ufffd" for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))}
_PERSON_NAME_DELIMITERS = {0x5E, 0x3D}  # "^" and "="


def clean_text(text: str) -> str:
    """Replace control characters with U+FFFD and strip DICOM padding (spaces, NULs)."""
    return text.strip(" \0").translate(_CONTROL)


class TextDecoder:
    """Decodes text values with one data set's Specific Character Set.

    Parameters
    ----------
    specific_character_set : bytes or str or None
        The raw (0008,0005) value; None or empty means the default repertoire (read leniently
        as Latin-1, as pydicom does, since many PACS send Latin-1 without saying so).
    """

    def __init__(self, specific_character_set: bytes | str | None = None) -> None:
        if isinstance(specific_character_set, bytes):
            specific_character_set = specific_character_set.decode("ascii", "replace")
        terms: list[str] = [t.strip(" \0") for t in (specific_character_set or "").split("\\")]
        if not any(terms):
            self.encodings: Sequence[str] = convert_encodings(None)
        else:
            self.encodings = convert_encodings(terms)

    @classmethod
    def for_elements(cls, elements: Elements) -> TextDecoder:
        """Return the decoder of a data set read by :func:`read_elements`."""
        value = elements.get(SPECIFIC_CHARACTER_SET)
        return cls(value[1] if value else None)

    def person_name(self, raw: bytes) -> str:
        """Decode a PN value (all its component groups, ``=``-separated)."""
        raw = raw.rstrip(b" \0")
        if not raw:
            return ""
        return clean_text(str(PersonName(raw, self.encodings)))

    def text(self, raw: bytes) -> str:
        """Decode an SH, LO, ST, LT, UC or UT value with the character set."""
        raw = raw.rstrip(b" \0")
        if not raw:
            return ""
        return clean_text(decode_bytes(raw, list(self.encodings), set()))

    @staticmethod
    def ascii(raw: bytes) -> str:
        """Decode a value of the default repertoire (CS, DA, TM, UI, IS, AE…)."""
        return clean_text(raw.decode("latin-1"))

    def value(self, vr: str, raw: bytes) -> str:
        """Decode a value of the given VR as text."""
        if vr == "PN":
            return self.person_name(raw)
        if vr in ("SH", "LO", "ST", "LT", "UC", "UT"):
            return self.text(raw)
        return self.ascii(raw)
