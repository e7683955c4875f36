"""The event hook that keeps a server's cached study list current.

Register it with :class:`~.service.NotificationService` (``incremental_refresh=``): on the
service's hook thread, an event of a server with the PACS REST API on triggers the REST
cache's refresh (:func:`DicomServersLib.rest.sync.refresh`, incremental when the server moved
by at most ``cache_threshold`` studies). A burst of events is one refresh: a study triggers
again only after ``min_interval_s``, except its ``study`` event (the study is complete), which
always does. The UI drains :meth:`CacheRefresher.drain_results` on its main thread and
refreshes the browser from the updated cache, keeping selection and scroll position.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from DicomServersLib.rest.sync import SyncResult, refresh
from DicomServersLib.server import DicomServer

from .events import NotificationEvent

ServerLookup = Callable[[str], "DicomServer | None"]
Refresh = Callable[[DicomServer], SyncResult]


class CacheRefresher:
    """Refresh a server's REST study cache when its events arrive.

    Parameters
    ----------
    servers : callable
        Returns the current record of a server by name (None when it is gone), e.g.
        ``lambda name: registry.get(name) if name in registry.names else None``.
    refresh_cache : callable, optional
        Refreshes one server's cache (default :func:`DicomServersLib.rest.sync.refresh`).
    min_interval_s : float, optional
        Seconds before another event of the same study triggers a refresh again.
    clock : callable, optional
        Monotonic clock.
    """

    def __init__(
        self,
        servers: ServerLookup,
        *,
        refresh_cache: Refresh | None = None,
        min_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = servers
        self.refresh_cache: Refresh = refresh_cache or (lambda server: refresh(server))
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._results: deque[tuple[str, SyncResult]] = deque(maxlen=500)
        self._lock = threading.Lock()

    def __call__(self, event: NotificationEvent) -> None:
        """Handle one event (on the hook thread: may take as long as a refresh)."""
        server = self.servers(event.server)
        if server is None or not server.rest_enabled or not server.rest_url.strip():
            return
        key = (event.server, event.study_uid)
        now = self.clock()
        last = self._recent.get(key)
        if event.kind != "study" and last is not None and now - last < self.min_interval_s:
            return
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > 1000:
            self._recent.popitem(last=False)
        result = self.refresh_cache(server)
        with self._lock:
            self._results.append((event.server, result))

    def drain_results(self) -> list[tuple[str, SyncResult]]:
        """Take ``(server name, SyncResult)`` of the refreshes done since the last call."""
        with self._lock:
            results = list(self._results)
            self._results.clear()
            return results
