"""The streamed multipart/related reader and writer (RFC 2046 §5.1, PS3.18 §8.6.1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from DicomServersLib.rest.multipart import (
    PART_DATA,
    PART_END,
    PART_HEADERS,
    MultipartBody,
    MultipartError,
    MultipartParser,
    boundary_of,
    parse_content_type,
)
from hypothesis import given, settings
from hypothesis import strategies as st

BOUNDARY = b"b0undary-1234"


def body_of(parts: list[bytes], *, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = preamble
    for index, part in enumerate(parts):
        if index or preamble:
            out += b"\r\n"
        out += b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + part
    return out + b"\r\n--" + BOUNDARY + b"--\r\n" + epilogue


def parse(chunks: list[bytes]) -> tuple[list[bytes], list[dict[str, str]]]:
    parser = MultipartParser(BOUNDARY)
    parts: list[bytes] = []
    headers: list[dict[str, str]] = []
    current: bytearray | None = None
    for chunk in chunks:
        for kind, value in parser.feed(chunk):
            if kind == PART_HEADERS:
                assert current is None
                assert isinstance(value, dict)
                headers.append(value)
                current = bytearray()
            elif kind == PART_DATA:
                assert current is not None and isinstance(value, (bytes, memoryview))
                current += value
            elif kind == PART_END:
                assert current is not None
                parts.append(bytes(current))
                current = None
    parser.finish()
    return parts, headers


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@given(
    parts=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=30),
    preamble=st.sampled_from([b"", b"ignored preamble"]),
)
@settings(max_examples=300, deadline=None)
def test_any_chunking_gives_the_same_parts(
    parts: list[bytes], cuts: list[int], preamble: bytes
) -> None:
    body = body_of(parts, preamble=preamble, epilogue=b"epilogue")
    got, headers = parse(split(body, cuts))
    assert got == parts
    assert all(h == {"content-type": "application/dicom"} for h in headers)


def test_one_byte_at_a_time() -> None:
    parts = [b"\r\n--b0undary-12 not quite", b"--" + BOUNDARY[:-1], b""]
    body = body_of(parts)
    got, _ = parse([body[i : i + 1] for i in range(len(body))])
    assert got == parts


def test_data_is_released_as_it_streams() -> None:
    """A big part is handed over chunk by chunk: only a boundary's length is held back."""
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--" + BOUNDARY + b"\r\n\r\n")
    events = parser.feed(b"x" * 1_000_000)
    released = sum(
        len(v) for k, v in events if k == PART_DATA and isinstance(v, (bytes, memoryview))
    )
    assert released >= 1_000_000 - len(BOUNDARY) - 4


def test_cut_transfer_is_an_error() -> None:
    body = body_of([b"abc", b"def"])
    parser = MultipartParser(BOUNDARY)
    parser.feed(body[:-20])
    with pytest.raises(MultipartError, match="ended early"):
        parser.finish()


def test_garbage_after_boundary_is_an_error() -> None:
    parser = MultipartParser(BOUNDARY)
    with pytest.raises(MultipartError):
        parser.feed(b"--" + BOUNDARY + b"garbage\r\n\r\ndata")


def test_headers_are_lower_cased_and_parts_may_have_none() -> None:
    body = b"--" + BOUNDARY + b"\r\n\r\nno headers\r\n--" + BOUNDARY + b"\r\nContent-Length: 3\r\n"
    body += b"X-Thing:  v \r\n\r\nabc\r\n--" + BOUNDARY + b"--"
    parts, headers = parse([body])
    assert parts == [b"no headers", b"abc"]
    assert headers == [{}, {"content-length": "3", "x-thing": "v"}]


def test_content_type_parameters() -> None:
    media, params = parse_content_type(
        'Multipart/Related; type="application/dicom"; boundary="a;b\\"c"; transfer-syntax=*'
    )
    assert media == "multipart/related"
    assert params == {"type": "application/dicom", "boundary": 'a;b"c', "transfer-syntax": "*"}
    assert boundary_of("multipart/related; boundary=xyz") == b"xyz"
    with pytest.raises(MultipartError):
        boundary_of("application/dicom")


def test_written_body_reads_back(tmp_path: Path) -> None:
    files = []
    for index, size in enumerate((0, 1, 70_000)):
        path = tmp_path / f"f{index}.dcm"
        path.write_bytes(bytes((index + i) % 256 for i in range(size)))
        files.append(path)
    body = MultipartBody(files)
    chunks = []
    while piece := body.read(4096):
        chunks.append(piece)
    data = b"".join(chunks)
    assert len(data) == len(body)
    parser_parts, headers = _parse_with(boundary_of(body.content_type), data)
    assert parser_parts == [f.read_bytes() for f in files]
    assert [h["content-length"] for h in headers] == ["0", "1", "70000"]
    assert body.content_type.startswith('multipart/related; type="application/dicom"')


def _parse_with(boundary: bytes, data: bytes) -> tuple[list[bytes], list[dict[str, str]]]:
    parser = MultipartParser(boundary)
    parts: list[bytes] = []
    headers: list[dict[str, str]] = []
    for kind, value in parser.feed(data):
        if kind == PART_HEADERS and isinstance(value, dict):
            headers.append(value)
            parts.append(b"")
        elif kind == PART_DATA and isinstance(value, (bytes, memoryview)):
            parts[-1] += bytes(value)
    parser.finish()
    return parts, headers
