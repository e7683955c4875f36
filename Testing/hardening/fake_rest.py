"""A scriptable HTTP server on loopback standing for a broken, hostile or very large PACS.

Routes map a method and a path pattern to a handler returning a :class:`Reply`, whose body is
an iterable of byte chunks written as they are produced: a 100,000-study JSON list or a
multi-gigabyte ``multipart/related`` answer streams without ever being built in memory. One
request per connection (HTTP/1.0, the body ends when the connection closes, unless a length
is given).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"


@dataclass
class Reply:
    """An answer: status, headers and the body as chunks (or one ``bytes``)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None  # Content-Length to announce (None: computed for bytes)


def json_reply(text: str | bytes, status: int = 200) -> Reply:
    """A JSON answer from its (possibly invalid) text."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return Reply(status, {"Content-Type": "application/json"}, data)


@dataclass
class Request:
    """What the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    headers: dict[str, str]


Handler = Callable[[Request, re.Match[str]], Reply]


class FakeRest:
    """The server; add routes with :meth:`route`, stop it with :meth:`stop`."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    body,
                    dict(self.headers.items()),
                )
                fake.requests.append(request)
                reply = fake.dispatch(request)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    data = reply.body
                    if isinstance(data, bytes):
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    if reply.length is not None:
                        self.send_header("Content-Length", str(reply.length))
                    self.end_headers()
                    for chunk in data:
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{LOOPBACK}:{self.port}"

    def route(self, method: str, pattern: str, handler: Handler | Reply) -> None:
        """Answer ``method`` requests whose path fully matches ``pattern`` (a regex)."""
        if isinstance(handler, Reply):
            reply = handler
            self.routes.append((method, re.compile(pattern), lambda request, match: reply))
        else:
            self.routes.append((method, re.compile(pattern), handler))

    def dispatch(self, request: Request) -> Reply:
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match is not None:
                return handler(request, match)
        return json_reply('{"error": "not found"}', 404)

    def stop(self) -> None:
        """Stop serving and close the port."""
        self._server.shutdown()
        self._server.server_close()


def multipart_body(parts: Iterable[bytes | Iterable[bytes]], boundary: str) -> Iterable[bytes]:
    """Stream a ``multipart/related`` body of ``application/dicom`` parts."""
    mark = boundary.encode("ascii")
    for part in parts:
        yield b"--" + mark + b"\r\nContent-Type: application/dicom\r\n\r\n"
        if isinstance(part, bytes):
            yield part
        else:
            yield from part
        yield b"\r\n"
    yield b"--" + mark + b"--\r\n"


def multipart_reply(parts: Iterable[bytes | Iterable[bytes]], boundary: str = "B0UNDARY") -> Reply:
    """A WADO-RS answer."""
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return Reply(200, {"Content-Type": content_type}, multipart_body(parts, boundary))
