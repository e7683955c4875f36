"""Helpers of the notification tests: the shipped Lua plugin configured, raw HTTP, waiting."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from DicomServersLib.notifications.event_queue import EventQueue
from DicomServersLib.notifications.events import NotificationEvent
from DicomServersLib.notifications.listener import TOKEN_HEADER

REPO = Path(__file__).resolve().parents[2]
LUA_SCRIPT = REPO / "Resources" / "PACS" / "orthanc" / "dicomservers-notify.lua"
FIRST_LINES = (
    'local NOTIFY_URL = "http://127.0.0.1:8765/notify"',
    'local NOTIFY_TOKEN = ""',
    'local NOTIFY_SERVER = ""',
)


def configured_script(url: str, token: str = "", server: str = "") -> str:
    """Return the shipped Lua plugin with its first lines set, as an administrator would."""
    text = LUA_SCRIPT.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert tuple(lines[:3]) == FIRST_LINES, "the plugin's first lines are its documented settings"
    lines[0] = f'local NOTIFY_URL = "{url}"'
    lines[1] = f'local NOTIFY_TOKEN = "{token}"'
    lines[2] = f'local NOTIFY_SERVER = "{server}"'
    return "\n".join(lines) + "\n"


def instance_payload(**changes: Any) -> dict[str, Any]:
    """A valid instance notification."""
    payload: dict[str, Any] = {
        "kind": "instance",
        "study_uid": "1.2.826.0.1.3680043.10.1",
        "series_uid": "1.2.826.0.1.3680043.10.1.1",
        "sop_instance_uid": "1.2.826.0.1.3680043.10.1.1.1",
        "patient_id": "00123",
        "patient_name": "DOE^JANE",
    }
    payload.update(changes)
    return payload


def post(
    session: requests.Session, url: str, body: Any, token: str | None = None, **kwargs: Any
) -> requests.Response:
    """POST a notification (``body`` as JSON unless it is bytes)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return session.post(url, data=data, headers=headers, timeout=5, **kwargs)


def raw_exchange(address: tuple[str, int], request: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, half-close, and return what the listener answers.

    The listener may answer and close before the request is complete (a refusal): sending
    errors are ignored and whatever arrived is returned.
    """
    chunks = []
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def collect(
    queue: EventQueue, until: Callable[[list[NotificationEvent]], bool], timeout: float = 15.0
) -> list[NotificationEvent]:
    """Gather events from ``queue`` until ``until(events)`` holds; fail after ``timeout``."""
    events: list[NotificationEvent] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"only these events within {timeout} s: {events}")
        event = queue.get(timeout=min(left, 0.5))
        if event is not None:
            events.append(event)
    return events
