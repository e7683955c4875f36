"""Fixtures of the notification tests: listeners on loopback, an HTTP session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from DicomServersLib.notifications.event_queue import EventQueue
from DicomServersLib.notifications.limits import ListenerLimits
from DicomServersLib.notifications.listener import NotificationListener


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """An HTTP session that never goes through a proxy."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def listener_factory() -> Iterator[Callable[..., tuple[NotificationListener, EventQueue]]]:
    """Start listeners on loopback (port 0: a free one); all are stopped at teardown."""
    started: list[NotificationListener] = []

    def make(
        host: str = "127.0.0.1",
        port: int = 0,
        routes: dict[str, str] | None = None,
        queue: EventQueue | None = None,
        **limits: Any,
    ) -> tuple[NotificationListener, EventQueue]:
        queue = queue if queue is not None else EventQueue(dedup_window_s=0)
        listener = NotificationListener(host, port, queue.put, limits=ListenerLimits(**limits))
        for name, token in (routes if routes is not None else {"lab": ""}).items():
            listener.add_route(name, token)
        listener.start()
        started.append(listener)
        return listener, queue

    yield make
    for listener in started:
        listener.stop()
