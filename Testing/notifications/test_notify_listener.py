"""The notification listener on loopback: accepted events, every refusal, and robustness.

Each hostile input is followed by a valid notification, which must still be served: the
listener never crashes nor blocks.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from DicomServersLib.notifications.event_queue import EventQueue
from notify_helpers import instance_payload, post, raw_exchange, status_of, wait_for


def assert_still_serves(http, listener, queue, token: str | None = None) -> None:
    """A valid notification is accepted and queued."""
    before = len(queue)
    sop = f"1.2.826.0.1.3680043.10.1.1.{int(time.monotonic() * 1000)}"
    answer = post(http, listener.url, instance_payload(sop_instance_uid=sop), token)
    assert answer.status_code == 202, answer.text
    assert len(queue) == before + 1
    assert queue.drain()[-1].sop_instance_uid == sop


def test_valid_notification_is_queued_with_its_server_and_sender(listener_factory, http):
    listener, queue = listener_factory(routes={"lab": "s3cret"})
    answer = post(http, listener.url, instance_payload(), "s3cret")
    assert answer.status_code == 202
    assert answer.json() == {"accepted": True}
    (event,) = queue.drain()
    assert (event.server, event.kind, event.patient_id) == ("lab", "instance", "00123")
    assert event.sop_instance_uid == "1.2.826.0.1.3680043.10.1.1.1"
    assert event.sender == "127.0.0.1"
    assert event.source == "listener"
    assert abs(event.received_at - time.time()) < 5


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not valid UTF-8 JSON"),
        (b"\xff\xfe\x00", 400, "not valid UTF-8 JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"kind": "patient", "study_uid": "1.2"}', 400, "kind: must be one of"),
        (b'{"kind": "study", "study_uid": "1.2.abc"}', 400, "study_uid:"),
        (b'{"kind": "series", "study_uid": "1.2"}', 400, "series_uid:"),
        (b'{"kind": "study", "study_uid": "1.2", "version": 99}', 400, "version:"),
        (b'{"kind": "study", "study_uid": "1.2", "patient_name": 5}', 400, "patient_name:"),
    ],
)
def test_malformed_bodies_are_refused_with_the_field_named(
    listener_factory, http, body, status, reason
):
    listener, queue = listener_factory()
    answer = post(http, listener.url, body)
    assert answer.status_code == status
    assert reason in answer.json()["error"]
    assert len(queue) == 0
    assert_still_serves(http, listener, queue)


def test_oversized_body_is_refused_unread(listener_factory, http):
    listener, queue = listener_factory(max_body_bytes=1024)
    answer = post(http, listener.url, b"{" + b" " * 200_000 + b"}")
    assert answer.status_code == 413
    assert "at most 1024 bytes" in answer.json()["error"]
    # A Content-Length far beyond the limit, with no body sent at all, is refused at once.
    started = time.monotonic()
    raw = raw_exchange(
        listener.address,
        b"POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
    )
    assert status_of(raw) == 413
    assert time.monotonic() - started < 2
    assert_still_serves(http, listener, queue)


@pytest.mark.parametrize("token", [None, "", "wrong", "s3cret-but-longer"])
def test_wrong_or_missing_token_is_refused(listener_factory, http, token):
    listener, queue = listener_factory(routes={"lab": "s3cret"})
    answer = post(http, listener.url, instance_payload(), token)
    assert answer.status_code == 401
    assert "X-DicomServers-Token" in answer.json()["error"]
    assert len(queue) == 0
    assert_still_serves(http, listener, queue, "s3cret")


def test_protocol_errors(listener_factory, http):
    listener, queue = listener_factory()
    assert http.get(listener.url, timeout=5).status_code == 405
    assert http.get(listener.url.replace("/notify", "/other"), timeout=5).status_code == 404
    assert post(http, listener.url.replace("/notify", "/"), instance_payload()).status_code == 404
    no_length = raw_exchange(listener.address, b"POST /notify HTTP/1.0\r\n\r\n{}")
    assert status_of(no_length) == 411
    chunked = raw_exchange(
        listener.address,
        b"POST /notify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert status_of(chunked) == 411
    bad_length = raw_exchange(
        listener.address, b"POST /notify HTTP/1.0\r\nContent-Length: -5\r\n\r\n"
    )
    assert status_of(bad_length) == 400
    short = raw_exchange(
        listener.address, b"POST /notify HTTP/1.0\r\nContent-Length: 500\r\n\r\n{}"
    )
    assert status_of(short) == 400
    garbage = raw_exchange(listener.address, b"\x00\x01\x02 garbage \r\n\r\n")
    assert status_of(garbage) == 400
    assert_still_serves(http, listener, queue)


def test_one_listener_serves_several_servers(listener_factory, http):
    listener, queue = listener_factory(routes={"lab": "t-lab", "ward": "t-ward", "open": ""})
    assert post(http, listener.url, instance_payload(server="ward"), "t-ward").status_code == 202
    assert post(http, listener.url, instance_payload(server="open")).status_code == 202
    # No server field: the token tells which server.
    assert post(http, listener.url, instance_payload(), "t-lab").status_code == 202
    assert [e.server for e in queue.drain()] == ["ward", "open", "lab"]
    # Another server's token does not open this one.
    assert post(http, listener.url, instance_payload(server="lab"), "t-ward").status_code == 401
    unknown = post(http, listener.url, instance_payload(server="nope"), "t-lab")
    assert unknown.status_code == 404
    ambiguous = post(http, listener.url, instance_payload())
    assert ambiguous.status_code == 400
    assert "server: required" in ambiguous.json()["error"]
    assert len(queue) == 0


def test_flooding_is_rate_limited_and_the_queue_stays_bounded(listener_factory, http):
    queue = EventQueue(max_events=5, dedup_window_s=0)
    listener, _ = listener_factory(queue=queue, rate_per_s=5.0, burst=20)
    statuses = []
    for index in range(60):
        body = instance_payload(sop_instance_uid=f"1.2.826.0.1.3680043.10.9.{index}")
        statuses.append(post(http, listener.url, body).status_code)
    assert statuses[:5] == [202] * 5
    assert 503 in statuses  # queue full: refused, never blocking
    assert statuses.count(429) >= 30  # past the burst, the rate applies
    assert len(queue) == 5
    assert queue.dropped >= 1
    # Another source address has its own budget; this one's recovers with time.
    queue.drain()
    wait_for(lambda: post(http, listener.url, instance_payload()).status_code == 202, 5)


def test_slow_senders_are_cut_at_the_deadline_and_do_not_block_others(listener_factory, http):
    listener, queue = listener_factory(read_timeout_s=5.0, request_deadline_s=1.0)
    slow = socket.create_connection(listener.address, timeout=5)
    try:
        slow.sendall(b"POST /notify HTTP/1.1\r\nHost: x\r\n")
        # While the slow sender dribbles its headers, others are served.
        assert_still_serves(http, listener, queue)
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 4:
            try:
                slow.sendall(b"X-Pad: 1\r\n")
            except OSError:
                closed = True
                break
            try:
                slow.settimeout(0.2)
                if slow.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed, "the listener kept a dribbling connection open past its deadline"
        assert time.monotonic() - started < 3
    finally:
        slow.close()
    assert listener.counts.get("deadline", 0) >= 1
    assert_still_serves(http, listener, queue)


def test_too_many_connections_are_answered_503_at_once(listener_factory, http):
    listener, queue = listener_factory(max_connections=3, request_deadline_s=30.0)
    idle = [socket.create_connection(listener.address, timeout=5) for _ in range(3)]
    try:
        wait_for(lambda: len(listener._server._active) == 3, 5)
        answer = raw_exchange(listener.address, b"POST /notify HTTP/1.0\r\n\r\n")
        assert status_of(answer) == 503
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: len(listener._server._active) == 0, 10)
    assert_still_serves(http, listener, queue)


def test_many_concurrent_senders_never_crash_it(listener_factory, http):
    listener, queue = listener_factory(max_connections=8, rate_per_s=1000.0, burst=1000)
    codes: list[int] = []
    lock = threading.Lock()

    def sender(offset: int) -> None:
        for index in range(10):
            body = instance_payload(sop_instance_uid=f"1.2.826.0.1.3680043.11.{offset}.{index}")
            try:
                code = post(http, listener.url, body).status_code
            except OSError:
                code = -1
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(codes) == 80
    assert set(codes) <= {202, 503}
    assert len(queue) == codes.count(202) >= 40
    assert_still_serves(http, listener, queue)


def test_binds_exactly_the_configured_address(listener_factory, http):
    listener, queue = listener_factory(host="127.0.0.2")
    host, port = listener.address
    assert host == "127.0.0.2"
    assert listener.url == f"http://127.0.0.2:{port}/notify"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert_still_serves(http, listener, queue)


def test_a_taken_port_fails_to_bind_and_stop_releases_it(listener_factory):
    first, _ = listener_factory()
    host, port = first.address
    with pytest.raises(OSError):
        listener_factory(port=port)
    first.stop()
    second, _ = listener_factory(port=port)
    assert second.address == (host, port)


def test_ipv6_address(listener_factory, http):
    listener, queue = listener_factory(host="::1")
    assert listener.url.startswith("http://[::1]:")
    assert_still_serves(http, listener, queue)
    assert queue.drain() == [] and listener.counts["202"] == 1
