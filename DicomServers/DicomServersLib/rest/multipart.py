"""``multipart/related`` bodies (RFC 2387, RFC 2046 §5.1) for WADO-RS and STOW-RS, streamed.

A WADO-RS retrieve answers one part per instance (PS3.18 §8.6.1.2; §10.4.1.1). The
:class:`MultipartParser` reads such a body incrementally: it is fed chunks as they arrive and
reports part headers, part data and part ends, so a 2 GB study goes straight to disk and never
sits in memory. The only bytes it holds back are those that could be the start of a boundary.

:class:`MultipartBody` is the other direction: a file-like STOW-RS request body (PS3.18
§10.5.1.1) that reads the DICOM files one block at a time and knows its length in advance, so
``requests`` sends it with a ``Content-Length`` instead of holding it whole.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

#: Event kinds reported by :meth:`MultipartParser.feed`.
PART_HEADERS = "headers"
PART_DATA = "data"
PART_END = "end"

Event = tuple[str, "bytes | memoryview | dict[str, str] | None"]

MAX_HEADER_BYTES = 64 * 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a ``Content-Type`` into its media type (lower case) and its parameters.

    Parameter names are lower-cased; quoted values are unquoted (RFC 9110 §5.6.6).
    """
    items: list[str] = []
    current, quoted, escaped = [], False, False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    media = items[0].strip().lower()
    params: dict[str, str] = {}
    for item in items[1:]:
        name, sep, text = item.partition("=")
        if not sep:
            continue
        text = text.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        params[name.strip().lower()] = text
    return media, params


def boundary_of(content_type: str) -> bytes:
    """Return the boundary of a ``multipart/*`` content type.

    Raises
    ------
    MultipartError
        The content type is not multipart or has no boundary.
    """
    media, params = parse_content_type(content_type)
    if not media.startswith("multipart/") or not params.get("boundary"):
        raise MultipartError(f"expected a multipart body with a boundary, got {content_type!r}")
    return params["boundary"].encode("latin-1")


class MultipartParser:
    """Incremental parser of a multipart body.

    Feed it the body in chunks of any size with :meth:`feed`; each call returns the events the
    chunk completes: ``("headers", {name: value})`` when a part starts, ``("data", bytes-like)``
    for its content (possibly several times), ``("end", None)`` when it ends. Call :meth:`finish`
    at the end of the body: it raises if the closing boundary never came (a cut transfer).

    Parameters
    ----------
    boundary : bytes
        The boundary from the ``Content-Type`` (without the leading ``--``).
    """

    def __init__(self, boundary: bytes) -> None:
        if not boundary:
            raise MultipartError("the multipart boundary is empty")
        self._delimiter = b"\r\n--" + boundary
        # The first boundary may start the body without a preceding CRLF: act as if it had one.
        self._pending = b"\r\n"
        self._state = "preamble"
        self.parts = 0

    @property
    def complete(self) -> bool:
        """True once the closing boundary was read."""
        return self._state == "done"

    def feed(self, data: bytes) -> list[Event]:
        """Consume a chunk of the body; return the events it completes.

        Part data is handed over as :class:`memoryview` slices of ``data`` (no copy); only
        the last ``len(boundary) + 3`` bytes of a chunk wait for the next one, in case they
        start a boundary.
        """
        events: list[Event] = []
        if self._state == "done":
            return events
        data = bytes(data) if not isinstance(data, bytes) else data
        size = len(self._delimiter)
        if not self._pending:
            buf = data
        elif self._state == "body" and len(data) >= size:
            # Did a boundary start in the bytes held back? Look at them and the next few only.
            probe = self._pending + data[: size - 1]
            at = probe.find(self._delimiter)
            if at >= 0:
                if at:
                    events.append((PART_DATA, self._pending[:at]))
                events.append((PART_END, None))
                self._state = "delimiter"
                start = at + size - len(self._pending)
                self._pending = b""
                return events + self._parse(data, start)
            events.append((PART_DATA, self._pending))
            buf = data
        else:
            buf = self._pending + data
        self._pending = b""
        return events + self._parse(buf, 0)

    def _parse(self, buf: bytes, pos: int) -> list[Event]:
        events: list[Event] = []
        view = memoryview(buf)
        size = len(self._delimiter)
        while True:
            if self._state in ("preamble", "body"):
                at = buf.find(self._delimiter, pos)
                if at < 0:
                    keep_from = max(pos, len(buf) - (size - 1))
                    if self._state == "body" and keep_from > pos:
                        events.append((PART_DATA, view[pos:keep_from]))
                    self._pending = buf[keep_from:]
                    return events
                if self._state == "body":
                    if at > pos:
                        events.append((PART_DATA, view[pos:at]))
                    events.append((PART_END, None))
                pos = at + size
                self._state = "delimiter"
            if self._state == "delimiter":
                if len(buf) - pos < 2:
                    self._pending = buf[pos:]
                    return events
                if buf[pos : pos + 2] == b"--":
                    self._state = "done"
                    return events
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    if len(buf) - pos > 1024:
                        raise MultipartError("no line break after a multipart boundary")
                    self._pending = buf[pos:]
                    return events
                if buf[pos:line_end].strip(b" \t"):
                    raise MultipartError("unexpected text after a multipart boundary")
                pos = line_end + 2
                self._state = "headers"
            if self._state == "headers":
                if buf[pos : pos + 2] == b"\r\n":
                    headers: dict[str, str] = {}
                    pos += 2
                else:
                    end = buf.find(b"\r\n\r\n", pos)
                    if end < 0:
                        if len(buf) - pos > MAX_HEADER_BYTES:
                            raise MultipartError("multipart part headers are too long")
                        self._pending = buf[pos:]
                        return events
                    headers = _parse_headers(buf[pos:end])
                    pos = end + 4
                self.parts += 1
                events.append((PART_HEADERS, headers))
                self._state = "body"

    def finish(self) -> None:
        """Check that the body ended with its closing boundary.

        Raises
        ------
        MultipartError
            The body was cut before its end.
        """
        if self._state != "done":
            raise MultipartError(
                f"the multipart body ended early (after {self.parts} parts, without its closing"
                " boundary): the transfer was cut"
            )


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


class MultipartBody:
    """A ``multipart/related`` request body read block by block from files.

    Use it as ``data=`` of a ``requests`` call with :attr:`content_type` as header; it has a
    length, so the request carries a ``Content-Length``.

    Parameters
    ----------
    paths : sequence of pathlib.Path
        The files, one part each.
    part_type : str, optional
        ``Content-Type`` of every part (``application/dicom`` for STOW-RS).
    boundary : str, optional
        Defaults to a random one.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        part_type: str = "application/dicom",
        boundary: str | None = None,
    ) -> None:
        self.boundary = boundary or f"DicomServers-{uuid.uuid4().hex}"
        self.part_type = part_type
        self._segments: list[bytes | tuple[Path, int]] = []
        for path in paths:
            size = os.path.getsize(path)
            head = (
                f"--{self.boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {size}\r\n\r\n"
            ).encode("ascii")
            self._segments += [head, (Path(path), size), b"\r\n"]
        self._segments.append(f"--{self.boundary}--\r\n".encode("ascii"))
        self._length = sum(s[1] if isinstance(s, tuple) else len(s) for s in self._segments)
        self._index = 0
        self._offset = 0
        self._handle: BinaryIO | None = None

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type`` header value."""
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes of the body (all the rest when ``size`` < 0)."""
        if size is None or size < 0:
            size = self._length
        out = bytearray()
        while len(out) < size and self._index < len(self._segments):
            segment = self._segments[self._index]
            if isinstance(segment, bytes):
                piece = segment[self._offset : self._offset + size - len(out)]
                self._offset += len(piece)
                out += piece
                done = self._offset >= len(segment)
            else:
                if self._handle is None:
                    self._handle = segment[0].open("rb")
                piece = self._handle.read(size - len(out))
                out += piece
                done = not piece
            if done:
                self.close()
                self._index += 1
                self._offset = 0
        return bytes(out)

    def close(self) -> None:
        """Close the file being read, if any."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
