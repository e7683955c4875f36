"""Fuzzing the notification listener: input generators and the properties checked (issue 8 §5).

Two targets, both with a seeded generator (the same seed gives the same inputs):

- :func:`fuzz_validation`: the listener's request-body path, in process and fast: the body is
  decoded and checked by the listener's own functions, in the order ``POST /notify`` calls
  them (:func:`~DicomServersLib.notifications.listener.parse_body`,
  :meth:`~DicomServersLib.notifications.listener.NotificationListener.resolve_server`,
  :func:`~DicomServersLib.notifications.events.event_from_payload`). Property: every input ends
  in a refusal with a reason, or in an event whose UIDs are UIDs, whose kind is known and
  whose texts are bounded; nothing raises.
- :func:`fuzz_http`: whole HTTP requests (request lines, headers, lengths, bodies) sent over
  TCP to a real running listener. Property: every answer is an HTTP status of the listener's
  table (never 500), the listener survives, and a valid notification is still accepted after.

Used by ``Testing/hardening/test_listener_fuzz.py`` (bounded) and ``bench/fuzz_listener.py``
(as many inputs as asked).
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from DicomServersLib.dicom_files import check_uid
from DicomServersLib.notifications.events import (
    EVENT_KINDS,
    MAX_TEXT_LENGTH,
    NotificationEvent,
    event_from_payload,
)
from DicomServersLib.notifications.limits import ListenerLimits
from DicomServersLib.notifications.listener import (
    TOKEN_HEADER,
    NotificationListener,
    parse_body,
)

TOKEN = "t0k3n-fuzz"
SERVERS = {"PACS": TOKEN, "Other": ""}
VALID: dict[str, Any] = {
    "version": 1,
    "server": "PACS",
    "kind": "instance",
    "study_uid": "1.2.826.0.1.3680043.8.498.1",
    "series_uid": "1.2.826.0.1.3680043.8.498.1.2",
    "sop_instance_uid": "1.2.826.0.1.3680043.8.498.1.2.3",
    "patient_id": "PID-1",
    "patient_name": "DOE^JANE",
    "study_description": "CT CHEST",
    "modality": "CT",
    "resource_id": "6b9e1c2a-0f",
    "sent_at": "2024-05-01T10:00:00Z",
}
KEYS = [*VALID, "extra", ""]
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "1.2.3\x00",
    "../../etc/passwd",
    "/etc/shadow",
    "1." + "9" * 80,
    "1.2.03",
    "1..2",
    "1.2.3\\4",
    "C:\\x",
    "\u202e\u0627\u200f",
    "\ud83d\ude00" * 3,
    "x" * (MAX_TEXT_LENGTH + 1),
    "x" * MAX_TEXT_LENGTH,
    "instance",
    "study",
    "series",
    "PACS",
    "Other",
    "Nobody",
    "1",
    "1.2",
    "0",
    "00",
    "\r\n\x1b[31m",
    "%s%n%x",
    "' OR 1=1 --",
]
STATUSES = {202, 400, 401, 404, 405, 408, 411, 413, 414, 429, 431, 501, 503, 505}
SIMPLE_RESPONSE = 9  # "status" of an HTTP/0.9 answer (no status line)


def random_text(rng: random.Random, limit: int = 40) -> str:
    """Short random text over several Unicode ranges."""
    length = rng.randint(0, limit)
    ranges = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0x2FF), (0x600, 0x6FF), (0x1F600, 0x1F64F)]
    chars = []
    for _ in range(length):
        low, high = rng.choice(ranges)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value (nested up to 4 levels)."""
    roll = rng.random()
    if depth >= 4 or roll < 0.45:
        return rng.choice(
            [
                None,
                True,
                False,
                rng.randint(-(2**70), 2**70),
                rng.random() * 10 ** rng.randint(-5, 300),
                rng.choice(NASTY_TEXT),
                random_text(rng),
                rng.choice([1, "1", 2, "2", 0, -1, "x"]),
            ]
        )
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice([*KEYS, random_text(rng, 8)]): random_json(rng, depth + 1)
        for _ in range(rng.randint(0, 5))
    }


def mutated_payload(rng: random.Random) -> dict[str, Any]:
    """A valid payload with a few keys removed, replaced or added."""
    data = dict(VALID)
    data["kind"] = rng.choice(EVENT_KINDS)
    data["server"] = rng.choice(["PACS", "Other", "", "Nobody"])
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(KEYS)
        action = rng.random()
        if action < 0.3:
            data.pop(key, None)
        elif action < 0.7:
            data[key] = rng.choice(NASTY_TEXT)
        else:
            data[key] = random_json(rng, 2)
    return data


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip, insert, delete, duplicate or truncate bytes of ``data``."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not buffer:
            buffer += bytes([rng.randrange(256)])
            continue
        position = rng.randrange(len(buffer))
        action = rng.randrange(5)
        if action == 0:
            buffer[position] ^= 1 << rng.randrange(8)
        elif action == 1:
            buffer[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif action == 2:
            del buffer[position : position + rng.randint(1, 8)]
        elif action == 3:
            buffer[position:position] = buffer[position : position + rng.randint(1, 32)]
        else:
            del buffer[position:]
    return bytes(buffer)


def nested(rng: random.Random) -> bytes:
    """Deeply nested arrays or objects (JSON parsers recurse)."""
    depth = rng.choice([10, 500, 999, 1001, 5000, 30000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def number_text(rng: random.Random) -> bytes:
    """Numbers JSON allows but that are hard to convert."""
    return rng.choice(
        [
            b'{"kind": "study", "study_uid": "1.2", "version": ' + b"9" * 5000 + b"}",
            b'{"kind": "study", "study_uid": "1.2", "version": 1e999999}',
            b'{"kind": "study", "study_uid": "1.2", "version": -0}',
            b'{"kind": "study", "study_uid": "1.2", "version": NaN}',
            b'{"kind": "study", "study_uid": "1.2", "version": Infinity}',
            b'{"kind": "study", "study_uid": "1.2", "version": 1.0}',
            b'{"kind": "study", "study_uid": "1.2", "version": "01"}',
        ]
    )


def random_body(rng: random.Random) -> bytes:
    """One fuzz input: a request body."""
    roll = rng.random()
    if roll < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if roll < 0.25:
        return json.dumps(random_json(rng)).encode()
    if roll < 0.6:
        return json.dumps(mutated_payload(rng), ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        )
    if roll < 0.9:
        return mutate_bytes(rng, json.dumps(mutated_payload(rng)).encode())
    if roll < 0.95:
        return nested(rng)
    return number_text(rng)


def make_listener(
    deliver: Callable[[NotificationEvent], bool] | None = None,
) -> NotificationListener:
    """A listener on 127.0.0.1 (free port) serving :data:`SERVERS`, no rate limit to speak of."""
    limits = ListenerLimits(read_timeout_s=2.0, request_deadline_s=5.0, rate_per_s=1e9, burst=10**9)
    listener = NotificationListener("127.0.0.1", 0, deliver or (lambda event: True), limits=limits)
    for name, token in SERVERS.items():
        listener.add_route(name, token)
    return listener


def check_event(event: NotificationEvent) -> None:
    """The properties of an accepted event (raises AssertionError)."""
    assert event.kind in EVENT_KINDS, event
    assert event.server in SERVERS, event
    assert check_uid(event.study_uid)[0], event
    if event.kind != "study":
        assert check_uid(event.series_uid)[0], event
    if event.kind == "instance":
        assert check_uid(event.sop_instance_uid)[0], event
    for text in (
        event.patient_id,
        event.patient_name,
        event.study_description,
        event.modality,
        event.resource_id,
    ):
        assert len(text) <= MAX_TEXT_LENGTH, event
    event.describe()
    event.to_json()


def validate(listener: NotificationListener, body: bytes, token: str) -> tuple[int, str]:
    """The listener's handling of one body (as ``POST /notify`` does): (status, reason)."""
    data, reason = parse_body(body)
    if data is None:
        return 400, reason
    server, status, reason = listener.resolve_server(str(data.get("server") or ""), token)
    if server is None:
        return int(status), reason
    check_event(event_from_payload(data, server=server, received_at=time.time()))
    return 202, ""


@dataclass
class FuzzReport:
    """What a fuzz run did: inputs, outcomes by status, time."""

    inputs: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def line(self, what: str) -> str:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return f"{what}: {self.inputs:,} inputs in {self.seconds:.1f} s ({shown})"


def fuzz_validation(inputs: int, seed: int = 8, time_limit_s: float | None = None) -> FuzzReport:
    """Feed ``inputs`` bodies (with random tokens) to the listener's validation path."""
    rng = random.Random(seed)
    listener = make_listener()
    report = FuzzReport()
    started = time.monotonic()
    for _ in range(inputs):
        if time_limit_s is not None and time.monotonic() - started > time_limit_s:
            break
        body = random_body(rng)
        token = rng.choice([TOKEN, "", "wrong", random_text(rng, 10)])
        try:
            status, reason = validate(listener, body, token)
        except Exception as error:  # the property: nothing raises
            report.failures.append(f"{type(error).__name__}: {error} for {body[:200]!r}")
            status = -1
        else:
            if status != 202 and not reason:
                report.failures.append(f"refused without a reason: {body[:200]!r}")
        report.statuses[status] += 1
        report.inputs += 1
    report.seconds = time.monotonic() - started
    return report


def random_request(rng: random.Random) -> bytes:
    """One whole HTTP request, often broken."""
    body = random_body(rng)
    method = rng.choice(["POST"] * 8 + ["GET", "PUT", "HEAD", "OPTIONS", "BREW", ""])
    path = rng.choice(["/notify"] * 8 + ["/", "/notify?x=1", "/../notify", "*", "/x" * 3000])
    version = rng.choice(["HTTP/1.0"] * 6 + ["HTTP/1.1", "HTTP/2.0", "HTTP/0.9", "", "XYZ"])
    line = f"{method} {path} {version}".strip()
    headers: list[str] = []
    length_kind = rng.random()
    if length_kind < 0.7:
        headers.append(f"Content-Length: {len(body)}")
    elif length_kind < 0.8:
        headers.append(f"Content-Length: {rng.choice([-1, 10**12, len(body) + 5, 0, 'abc', ''])}")
    elif length_kind < 0.85:
        headers.append("Transfer-Encoding: chunked")
    token = rng.random()
    if token < 0.5:
        headers.append(f"{TOKEN_HEADER}: {TOKEN}")
    elif token < 0.7:
        headers.append(f"{TOKEN_HEADER}: {random_text(rng, 20)}")
    if rng.random() < 0.1:
        headers += [f"X-Junk-{i}: {'y' * rng.randint(0, 50)}" for i in range(rng.randint(1, 120))]
    if rng.random() < 0.05:
        headers.append(random_text(rng, 30))
    head = (line + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode(
        "utf-8", "surrogatepass"
    )
    if rng.random() < 0.05:
        head = mutate_bytes(rng, head)
    return head + body


def send_raw(port: int, request: bytes, timeout: float = 5.0) -> int | None:
    """Send one request on a new connection; return the answer's status (None: no answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        answer = b""
        try:
            while len(answer) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if not answer:
        return None
    if not answer.startswith(b"HTTP/"):
        return SIMPLE_RESPONSE  # an HTTP/0.9 request gets a body without status line
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return -2


def fuzz_http(inputs: int, seed: int = 9) -> FuzzReport:
    """Send ``inputs`` random requests to a real listener; check answers and survival."""
    rng = random.Random(seed)
    accepted: list[NotificationEvent] = []

    def deliver(event: NotificationEvent) -> bool:
        accepted.append(event)
        return True

    listener = make_listener(deliver)
    listener.start()
    report = FuzzReport()
    started = time.monotonic()
    try:
        port = listener.address[1]
        for _ in range(inputs):
            request = random_request(rng)
            status = send_raw(port, request)
            report.inputs += 1
            report.statuses[status if status is not None else 0] += 1
            line = request.split(b"\r\n", 1)[0]
            words = line.split()
            # An HTTP/0.9 request ("GET /path", or naming 0.9) gets a body without status line.
            simple = len(words) == 2 or (len(words) == 3 and words[2] == b"HTTP/0.9")
            if status == SIMPLE_RESPONSE and simple:
                continue
            if status is None and not line.strip():
                continue
            if status not in STATUSES:
                report.failures.append(f"status {status} for {request[:200]!r}")
        for event in accepted:
            try:
                check_event(event)
            except AssertionError as error:
                report.failures.append(f"accepted an invalid event: {error}")
        # Still serving: a valid notification is accepted.
        body = json.dumps(VALID).encode()
        valid = (
            f"POST /notify HTTP/1.0\r\nContent-Length: {len(body)}\r\n"
            f"{TOKEN_HEADER}: {TOKEN}\r\n\r\n"
        ).encode() + body
        before = len(accepted)
        if send_raw(port, valid) != 202 or len(accepted) != before + 1:
            report.failures.append("the listener no longer accepts a valid notification")
        if listener.counts.get("500"):
            report.failures.append(f"{listener.counts['500']} requests failed with 500")
    finally:
        listener.stop()
    report.seconds = time.monotonic() - started
    return report
