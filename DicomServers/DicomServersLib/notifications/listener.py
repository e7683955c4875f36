"""The HTTP listener that receives notifications pushed by the PACS-side plugin.

It binds exactly ``notification_ip:notification_port`` (never a wildcard unless that is what the
user typed) and answers one endpoint:

``POST /notify``
    Body: one JSON object in the format of :mod:`.events` (``Content-Length`` required).
    Header ``X-DicomServers-Token``: the shared secret, when the server has one.

Answers (small JSON objects ``{"accepted": true}`` or ``{"error": "..."}``):

====  ==============================================================================
202   accepted: the event is queued
400   malformed JSON, a field breaking the format (the reason names it), or no
      ``server`` field while the listener serves several servers
401   wrong or missing token for that server
404   another path, or a server this listener does not serve
405   another method on ``/notify``
411   no ``Content-Length`` (chunked bodies are not accepted)
413   body larger than :attr:`~.limits.ListenerLimits.max_body_bytes` (not read)
429   the sender exceeded its rate (:class:`~.limits.RateLimiter`)
503   the event queue is full, or too many connections at once
====  ==============================================================================

Robustness: one thread per connection, at most ``max_connections`` at once (more are answered
503 and closed by the accepting thread); every read has a socket timeout, and a watchdog closes
any connection older than ``request_deadline_s`` however slowly it trickles in; bodies are read
only after the size check; the queue never blocks (see :class:`~.event_queue.EventQueue`).
Handler errors are answered 500 and logged; they never stop the listener. One request per
connection (HTTP/1.0 semantics), which is what Orthanc's ``HttpPost`` sends.

Python's standard :mod:`http.server` is used (``ThreadingHTTPServer``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .events import NotificationEvent, check_payload, event_from_payload
from .limits import ListenerLimits, RateLimiter

log = logging.getLogger(__name__)

#: The request header carrying the shared secret.
TOKEN_HEADER = "X-DicomServers-Token"

#: The one path that is served.
NOTIFY_PATH = "/notify"

Deliver = Callable[[NotificationEvent], bool]


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with a connection cap and a deadline watchdog."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True  # only lets us rebind over TIME_WAIT; never over a listener
    allow_reuse_port = False

    def __init__(self, address: tuple[str, int], listener: NotificationListener) -> None:
        self.listener = listener
        self.address_family = (
            socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
        )
        self._active: dict[socket.socket, float] = {}
        self._active_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS look-up ``HTTPServer.server_bind`` does."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a thread, or answer 503 when too many are open."""
        limits = self.listener.limits
        with self._active_lock:
            busy = len(self._active) >= limits.max_connections
            if not busy:
                self._active[request] = time.monotonic() + limits.request_deadline_s
        if busy:
            self.listener.count("503")
            try:
                request.settimeout(0.5)
                request.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
                request.setblocking(False)
                request.recv(65536)  # what already arrived, so closing sends no reset
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection and close it."""
        with self._active_lock:
            self._active.pop(request, None)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        """Close connections past their deadline (called by ``serve_forever`` each tick)."""
        now = time.monotonic()
        with self._active_lock:
            late = [sock for sock, deadline in self._active.items() if deadline <= now]
        for sock in late:
            self.listener.count("deadline")
            _hang_up(sock)

    def close_all(self) -> None:
        """Hang up every open connection (when stopping)."""
        with self._active_lock:
            sockets = list(self._active)
        for sock in sockets:
            _hang_up(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a handler failure instead of printing a traceback on stderr."""
        log.exception("notification listener: error while serving %s", client_address)


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    """One connection: one ``POST /notify``."""

    server: _Server
    server_version = "DicomServers-notify"
    sys_version = ""
    protocol_version = "HTTP/1.0"

    def setup(self) -> None:
        """Apply the read timeout before anything is read."""
        super().setup()
        self.connection.settimeout(self.server.listener.limits.read_timeout_s)

    def log_message(self, format: str, *args: Any) -> None:
        """Log at debug level instead of writing to stderr."""
        log.debug("notification listener %s: " + format, self.client_address[0], *args)

    def _answer(self, status: int, payload: dict[str, Any], **headers: str) -> None:
        self.server.listener.count(str(status))
        body = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the sender went away: nothing to tell it
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol errors found by ``http.server`` (bad request line, headers) in JSON."""
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # always send a status line
        self._answer(code, {"error": message or HTTPStatus(code).phrase})

    def _refuse(self, status: HTTPStatus, reason: str, unread: int = 0) -> None:
        """Answer an error; ``unread`` bytes of body are still in the socket."""
        log.info(
            "notification listener: refused a request from %s: %d %s",
            self.client_address[0],
            status.value,
            reason,
        )
        limits = self.server.listener.limits
        if 0 < unread <= limits.max_body_bytes:
            # Read a small body before answering: closing a socket with unread data sends a
            # TCP reset, which can destroy the answer before the sender reads it.
            try:
                self.rfile.read(unread)
            except OSError:
                pass
            unread = 0
        self._answer(status.value, {"error": reason})
        if unread:
            self._discard(unread)

    def _discard(self, unread: int) -> None:
        """After answering, drain a little of a large body so the answer is not reset."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline = time.monotonic() + 1.0
            left = min(unread, 4 * self.server.listener.limits.max_body_bytes)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.connection.recv(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def do_GET(self) -> None:
        """Only POST is served."""
        if urlsplit(self.path).path != NOTIFY_PATH:
            self._refuse(HTTPStatus.NOT_FOUND, f"only POST {NOTIFY_PATH} is served")
        else:
            self._answer(
                HTTPStatus.METHOD_NOT_ALLOWED.value,
                {"error": f"use POST {NOTIFY_PATH}"},
                Allow="POST",
            )

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET  # noqa: N815 - http.server's names

    def do_POST(self) -> None:
        """Check, parse and queue one notification."""
        try:
            self._post()
        except Exception:  # never let one request take the listener down
            log.exception("notification listener: failed on a request")
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR.value, {"error": "internal error"})

    def _post(self) -> None:
        listener = self.server.listener
        limits = listener.limits
        sender = str(self.client_address[0])
        if urlsplit(self.path).path != NOTIFY_PATH:
            self._refuse(HTTPStatus.NOT_FOUND, f"only POST {NOTIFY_PATH} is served")
            return
        if self.headers.get("Transfer-Encoding"):
            self._refuse(
                HTTPStatus.LENGTH_REQUIRED,
                "Content-Length is required (no chunking)",
                unread=limits.max_body_bytes + 1,
            )
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length: must be a whole number >= 0")
            return
        if not listener.rate_limiter.allow(sender):
            self._refuse(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"more than {limits.rate_per_s:g} notifications per second from {sender}",
                unread=length,
            )
            return
        if length > limits.max_body_bytes:
            self._refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body: at most {limits.max_body_bytes} bytes, got {length}",
                unread=length,
            )
            return
        token = self.headers.get(TOKEN_HEADER, "")
        if not listener.token_may_match(token):
            self._refuse(
                HTTPStatus.UNAUTHORIZED, f"{TOKEN_HEADER}: wrong or missing token", unread=length
            )
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self._refuse(HTTPStatus.BAD_REQUEST, "body: shorter than its Content-Length")
            return
        data, reason = parse_body(body)
        if data is None:
            self._refuse(HTTPStatus.BAD_REQUEST, reason)
            return
        server, status, reason = listener.resolve_server(str(data.get("server") or ""), token)
        if server is None:
            self._refuse(status, reason)
            return
        event = event_from_payload(data, server=server, received_at=time.time(), sender=sender)
        if not listener.deliver(event):
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "the client's event queue is full")
            return
        self._answer(HTTPStatus.ACCEPTED.value, {"accepted": True})


def parse_body(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """Decode and check a ``POST /notify`` body: ``(payload, "")`` or ``(None, reason)``.

    The reason names the field and the rule (answered with HTTP 400). JSON nested too deeply
    for the decoder is refused like any other invalid JSON.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"body: not valid UTF-8 JSON ({str(exc)[:200]})"
    ok, reason = check_payload(data)
    if not ok:
        return None, reason
    return data, ""


class NotificationListener:
    """Receives ``POST /notify`` on one address and port, for one or several servers.

    Parameters
    ----------
    host : str
        The IP address to bind, exactly (``notification_ip``).
    port : int
        The TCP port (``notification_port``); 0 picks a free one (tests).
    deliver : callable
        Called on the connection's thread with each accepted event; returns False when the
        event could not be queued (the sender then gets 503). Must not block.
    limits : ListenerLimits, optional
        Size, time, connection and rate limits.

    Notes
    -----
    Routes say which servers are served and with which token: see :meth:`add_route` and
    :meth:`resolve_server`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        deliver: Deliver,
        *,
        limits: ListenerLimits | None = None,
    ) -> None:
        self.host = host.strip().strip("[]")
        self.port = port
        self.limits = limits or ListenerLimits()
        self.deliver = deliver
        self.rate_limiter = RateLimiter(self.limits.rate_per_s, self.limits.burst)
        self._routes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.counts: dict[str, int] = {}

    # -- routes ------------------------------------------------------------------------------

    def add_route(self, server: str, token: str = "") -> None:
        """Serve ``server`` (its name in the list), requiring ``token`` when it is not empty."""
        with self._lock:
            self._routes[server] = token

    def remove_route(self, server: str) -> None:
        """Stop serving ``server`` (no error when it was not served)."""
        with self._lock:
            self._routes.pop(server, None)

    @property
    def routes(self) -> list[str]:
        """Names of the servers served."""
        with self._lock:
            return list(self._routes)

    def token_may_match(self, token: str) -> bool:
        """Return False when every served server has a token and ``token`` matches none.

        Checked before the body is read, so an unauthenticated sender costs no parsing.
        """
        with self._lock:
            tokens = list(self._routes.values())
        if not tokens or any(not expected for expected in tokens):
            return True
        return any(_same(token, expected) for expected in tokens)

    def resolve_server(self, name: str, token: str) -> tuple[str | None, HTTPStatus, str]:
        """Decide which server a notification belongs to, and check its token.

        Parameters
        ----------
        name : str
            The body's ``server`` field (may be empty).
        token : str
            The ``X-DicomServers-Token`` header (may be empty).

        Returns
        -------
        tuple
            ``(server, HTTPStatus.OK, "")``, or ``(None, status, reason)``.

        Notes
        -----
        A named server must be served here and the token must be its token (when it has one).
        Without a name: the only served server; else the one served server whose (non-empty)
        token the request carries; else 400.
        """
        with self._lock:
            routes = dict(self._routes)
        if not routes:
            return None, HTTPStatus.NOT_FOUND, "this listener serves no server at the moment"
        if not name:
            if len(routes) == 1:
                name = next(iter(routes))
            else:
                matches = [n for n, t in routes.items() if t and _same(token, t)]
                if len(matches) != 1:
                    return (
                        None,
                        HTTPStatus.BAD_REQUEST,
                        "server: required, this listener serves several servers (set"
                        " NOTIFY_SERVER in the plugin)",
                    )
                name = matches[0]
        if name not in routes:
            return None, HTTPStatus.NOT_FOUND, f"server: {name!r} is not served by this listener"
        expected = routes[name]
        if expected and not _same(token, expected):
            return None, HTTPStatus.UNAUTHORIZED, f"{TOKEN_HEADER}: wrong or missing token"
        return name, HTTPStatus.OK, ""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(ip, port)`` (the real port when 0 was asked)."""
        if self._server is not None:
            host, port = self._server.server_address[:2]
            return str(host), int(port)
        return self.host, self.port

    @property
    def url(self) -> str:
        """The URL the PACS plugin must post to (``NOTIFY_URL``)."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}{NOTIFY_PATH}"

    def start(self) -> None:
        """Bind the address and serve on a background thread.

        Raises
        ------
        OSError
            If the address cannot be bound (port taken, address not on this machine,
            privileged port): the caller falls back to polling and tells the user why.
        """
        if self._server is not None:
            return
        server = _Server((self.host, self.port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"DicomServers notify {self.host}:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        log.info("notification listener on %s", self.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, hang up open connections and release the port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_all()
        server.server_close()
        if thread is not None:
            thread.join(timeout)

    def count(self, what: str) -> None:
        """Count an outcome (HTTP status or ``deadline``), for diagnosis and tests."""
        with self._lock:
            self.counts[what] = self.counts.get(what, 0) + 1


def _same(given: str, expected: str) -> bool:
    """Compare tokens in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
