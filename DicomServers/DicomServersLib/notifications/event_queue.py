"""A bounded, thread-safe queue of notification events, drained by the UI or the CLI.

Listener and polling threads :meth:`EventQueue.put` events; the UI drains them on its main
thread (a ``qt.QTimer`` calling :meth:`EventQueue.drain`, the pattern of the team's style guide:
workers never touch Qt); the CLI blocks in :meth:`EventQueue.get`. Nothing here blocks a
producer: when the queue is full the new event is refused and counted in
:attr:`EventQueue.dropped`. An event whose :attr:`~.events.NotificationEvent.key` was queued
shortly before (the same instance reported by the listener and by polling) is dropped as a
duplicate.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from .events import NotificationEvent

#: Default capacity: a large study's instance events fit; beyond that the oldest are kept.
DEFAULT_MAX_EVENTS = 10_000

#: Seconds during which the same event key is treated as a duplicate.
DEFAULT_DEDUP_WINDOW_S = 120.0

_DEDUP_KEYS = 20_000


class EventQueue:
    """Bounded FIFO of :class:`~.events.NotificationEvent` shared between threads.

    Parameters
    ----------
    max_events : int, optional
        Capacity; :meth:`put` refuses events beyond it (never blocks).
    dedup_window_s : float, optional
        Seconds during which an event with the key of an earlier one is dropped; 0 disables.
    clock : callable, optional
        Monotonic clock in seconds (injected by tests).
    """

    def __init__(
        self,
        max_events: int = DEFAULT_MAX_EVENTS,
        *,
        dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events: must be at least 1, got {max_events}")
        self.max_events = max_events
        self.dedup_window_s = dedup_window_s
        self._clock = clock
        self._items: deque[NotificationEvent] = deque()
        self._recent: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._cond = threading.Condition()
        self.accepted = 0
        self.dropped = 0
        self.duplicates = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, event: NotificationEvent) -> bool:
        """Queue ``event`` unless the queue is full or it duplicates a recent one.

        Parameters
        ----------
        event : NotificationEvent
            The event.

        Returns
        -------
        bool
            True if queued (or dropped as a duplicate: nothing was lost), False if the queue
            is full.
        """
        now = self._clock()
        with self._cond:
            if self.dedup_window_s > 0:
                seen = self._recent.get(event.key)
                if seen is not None and now - seen < self.dedup_window_s:
                    self.duplicates += 1
                    return True
            if len(self._items) >= self.max_events:
                self.dropped += 1
                return False
            self._items.append(event)
            self.accepted += 1
            if self.dedup_window_s > 0:
                self._recent[event.key] = now
                self._recent.move_to_end(event.key)
                while len(self._recent) > _DEDUP_KEYS:
                    self._recent.popitem(last=False)
            self._cond.notify_all()
            return True

    def drain(self, max_events: int | None = None) -> list[NotificationEvent]:
        """Take the queued events (at most ``max_events``), oldest first, without waiting.

        Parameters
        ----------
        max_events : int, optional
            Upper bound, so one timer tick of the UI stays short.

        Returns
        -------
        list of NotificationEvent
            Possibly empty.
        """
        with self._cond:
            count = len(self._items) if max_events is None else min(max_events, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def get(self, timeout: float | None = None) -> NotificationEvent | None:
        """Wait for the next event.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None waits until an event arrives.

        Returns
        -------
        NotificationEvent or None
            None when ``timeout`` passed without an event.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout=timeout):
                return None
            return self._items.popleft()
