"""Notifications for the servers of the list: listener or polling, and why.

The UI (Slicer panel, standalone window) and the CLI use one :class:`NotificationService`::

    service = NotificationService()
    status = service.start(server)          # a DicomServer with notifications_enabled
    status.mode, status.reason              # "listener" | "polling" | "unavailable" | "off"
    ...
    # on the main thread, from a qt.QTimer (every 250 ms, say):
    for event in service.drain(max_events=200):
        ...                                  # see actions.plan_actions
    for status in service.drain_status_changes():
        ...                                  # show the new mode and its reason
    ...
    service.stop_all()

For each started server the service tries, in order:

1. **listener**: bind ``notification_ip:notification_port`` (shared with other servers of the
   same address and port; events name their server) and wait for the plugin's posts. When the
   PACS REST API is on, a watchdog polls the server every ``watchdog_interval_s``: when the
   server stored something and no notification came within ``silence_grace_s``, the plugin is
   not reaching us, so the service switches to polling (from the first unreported change on)
   and says so; the first notification that arrives switches it back.
2. **polling** (:mod:`.polling`) when the address cannot be bound, with the bind error as the
   reason, if the PACS REST API is on.
3. **unavailable**: neither works; the reason says what to change.

Threads: listener and polling threads only put events in the bounded :class:`EventQueue`;
hooks (the REST study cache's incremental refresh) run on one background hook thread, never on
a listener thread nor on the UI thread. Nothing here touches Qt.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from DicomServersLib.rest.dicomweb import DicomwebClient
from DicomServersLib.rest.orthanc import OrthancClient
from DicomServersLib.rest.session import build_session, rest_base_url
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import check_ip_address, check_port

from .event_queue import EventQueue
from .events import SOURCE_LISTENER, NotificationEvent
from .limits import ListenerLimits
from .listener import NotificationListener
from .polling import (
    DEFAULT_POLL_INTERVAL_S,
    DicomwebStudiesPoller,
    OrthancChangesPoller,
    Poller,
    PollingWorker,
    PollOutcome,
)

log = logging.getLogger(__name__)

MODE_OFF = "off"
MODE_LISTENER = "listener"
MODE_POLLING = "polling"
MODE_UNAVAILABLE = "unavailable"

#: Called with each event on the hook thread (e.g. the REST study cache's incremental refresh).
EventHook = Callable[[NotificationEvent], None]

#: Builds a server's poller (injected by tests); None when the server cannot be polled.
PollerFactory = Callable[[DicomServer], "Poller | None"]


@dataclass(frozen=True)
class NotificationStatus:
    """How a server's notifications work right now, and why.

    Attributes
    ----------
    server : str
        Server name.
    mode : str
        ``"listener"``, ``"polling"``, ``"unavailable"`` or ``"off"``.
    reason : str
        Plain-language explanation (what the user can do about it).
    listener_url : str
        Where the plugin must post (``NOTIFY_URL``) when a listener runs for this server.
    poll_interval_s : float
        Seconds between polls in polling mode (0 otherwise).
    since : float
        When this mode started (``time.time()``).
    last_event_at : float or None
        When the last event of this server arrived.
    last_poll_error : str
        Diagnosis of the last failed poll ("" when polls succeed).
    """

    server: str
    mode: str
    reason: str
    listener_url: str = ""
    poll_interval_s: float = 0.0
    since: float = 0.0
    last_event_at: float | None = None
    last_poll_error: str = ""

    def describe(self) -> str:
        """Return a one-line summary for a status bar."""
        label = {
            MODE_LISTENER: "listening for notifications",
            MODE_POLLING: f"polling every {self.poll_interval_s:g} s",
            MODE_UNAVAILABLE: "notifications unavailable",
            MODE_OFF: "notifications off",
        }[self.mode]
        error = f" (last poll failed: {self.last_poll_error})" if self.last_poll_error else ""
        return f"{self.server}: {label}. {self.reason}{error}"


def bind_diagnosis(host: str, port: int, exc: OSError) -> str:
    """Explain why ``host:port`` could not be bound, and what to change.

    Parameters
    ----------
    host, port
        The notification address.
    exc : OSError
        What ``bind`` raised.

    Returns
    -------
    str
        Plain-language reason.
    """
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Cannot listen on {where}: another program already uses port {port}. Choose another"
            " Notification Port (and set it in the server's notification plugin too)."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"Cannot listen on {where}: {host} is not an address of this computer. Set"
            " Notification IP to one of its addresses."
        )
    if exc.errno == errno.EACCES:
        return (
            f"Cannot listen on {where}: ports below 1024 need administrator rights. Choose a"
            " Notification Port above 1024."
        )
    return f"Cannot listen on {where}: {exc.strerror or exc}."


def default_poller(server: DicomServer) -> Poller | None:
    """Build the poller of a server from its REST settings, or None when REST is off.

    Parameters
    ----------
    server : DicomServer
        ``rest_enabled``, ``rest_flavor``, ``rest_url`` and credentials are used.

    Returns
    -------
    Poller or None
        :class:`~.polling.OrthancChangesPoller` or :class:`~.polling.DicomwebStudiesPoller`.
    """
    if not server.rest_enabled or not server.rest_url.strip():
        return None
    session = build_session(server, pool_size=2)
    if server.rest_flavor == "dicomweb":
        return DicomwebStudiesPoller(server.name, DicomwebClient(session, rest_base_url(server)))
    return OrthancChangesPoller(server.name, OrthancClient(session, rest_base_url(server)))


@dataclass
class _Silence:
    """Changes the watchdog saw that no notification has reported yet."""

    since: float
    resume_from: Any
    changes: int


class _Watch:
    """The service's state for one server."""

    def __init__(self, server: DicomServer, token: str) -> None:
        self.server = server
        self.token = token
        self.listener_key: tuple[str, int] | None = None
        self.worker: PollingWorker | None = None
        self.status = NotificationStatus(server.name, MODE_OFF, "", since=time.time())
        self.silence: _Silence | None = None
        self.previous_poll_at: float | None = None
        self.silent_switch = False  # polling because the plugin is silent (listener still up)


class _HookRunner:
    """One background thread calling the event hooks, with a bounded backlog."""

    def __init__(self, hooks: list[EventHook], max_backlog: int = 10_000) -> None:
        self.hooks = hooks
        self._items: deque[NotificationEvent] = deque(maxlen=max_backlog)
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="DicomServers hooks", daemon=True)
        self._thread.start()

    def put(self, event: NotificationEvent) -> None:
        with self._cond:
            self._items.append(event)
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or bool(self._items))
                if self._stopped:
                    return
                event = self._items.popleft()
            for hook in list(self.hooks):
                try:
                    hook(event)
                except Exception:
                    log.exception("notification hook %r failed on %s", hook, event.key)


class NotificationService:
    """Notifications of several servers, delivered into one queue.

    Parameters
    ----------
    queue : EventQueue, optional
        Where events go; a new bounded queue by default.
    limits : ListenerLimits, optional
        Limits of the listeners.
    poll_interval_s : float, optional
        Seconds between polls in polling mode.
    watchdog_interval_s : float, optional
        Seconds between the watchdog's polls in listener mode (0 disables the watchdog).
    silence_grace_s : float, optional
        How long after the server stored something a notification may take before the
        service decides the plugin does not reach it (longer than the PACS's ``StableAge``
        when the plugin posts only series and studies).
    poller_factory : callable, optional
        Builds a server's poller (default :func:`default_poller`).
    incremental_refresh : callable, optional
        Hook called with every event on the hook thread: the REST study cache's incremental
        refresh (:mod:`DicomServersLib.rest` cache). More hooks: :meth:`add_event_hook`.
    clock : callable, optional
        Wall clock (``time.time``).
    """

    def __init__(
        self,
        *,
        queue: EventQueue | None = None,
        limits: ListenerLimits | None = None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        watchdog_interval_s: float = 30.0,
        silence_grace_s: float = 120.0,
        poller_factory: PollerFactory = default_poller,
        incremental_refresh: EventHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue if queue is not None else EventQueue()
        self.limits = limits or ListenerLimits()
        self.poll_interval_s = poll_interval_s
        self.watchdog_interval_s = watchdog_interval_s
        self.silence_grace_s = silence_grace_s
        self.poller_factory = poller_factory
        self.clock = clock
        self._lock = threading.RLock()
        self._watches: dict[str, _Watch] = {}
        self._listeners: dict[tuple[str, int], NotificationListener] = {}
        self._status_changes: deque[NotificationStatus] = deque(maxlen=200)
        self._hooks: list[EventHook] = []
        self._hook_runner: _HookRunner | None = None
        if incremental_refresh is not None:
            self.add_event_hook(incremental_refresh)

    # -- public API --------------------------------------------------------------------------

    def add_event_hook(self, hook: EventHook) -> None:
        """Call ``hook(event)`` for every event, on the background hook thread."""
        with self._lock:
            self._hooks.append(hook)
            if self._hook_runner is None:
                self._hook_runner = _HookRunner(self._hooks)

    def start(self, server: DicomServer, *, token: str | None = None) -> NotificationStatus:
        """Start notifications for a server (restarting them if they run).

        Parameters
        ----------
        server : DicomServer
            The server (a copy is kept). Nothing runs unless ``notifications_enabled``.
        token : str, optional
            The shared secret the plugin sends (``NOTIFY_TOKEN``); defaults to the server's
            ``notification_token`` setting when the record has one, else none.

        Returns
        -------
        NotificationStatus
            The mode chosen and why.
        """
        if token is None:
            token = str(
                getattr(server, "notification_token", None)
                or server.extras.get("notification_token", "")
            )
        with self._lock:
            self._stop_locked(server.name)
            watch = _Watch(server.copy(), token)
            self._watches[server.name] = watch
            if not server.notifications_enabled:
                self._set_status(
                    watch,
                    MODE_OFF,
                    "Notifications are off for this server (turn on Enable Notifications).",
                )
                return watch.status
            bind_reason = self._open_listener(watch)
            if bind_reason is None:
                reason = f"The server's notification plugin posts to {watch.status.listener_url}."
                self._start_worker(watch, emit=False)
                self._set_status(watch, MODE_LISTENER, reason)
                return watch.status
            if self._start_worker(watch, emit=True):
                self._set_status(
                    watch,
                    MODE_POLLING,
                    f"{bind_reason} Asking the server for new data every"
                    f" {self.poll_interval_s:g} s instead.",
                )
            else:
                self._set_status(
                    watch,
                    MODE_UNAVAILABLE,
                    f"{bind_reason} Polling needs the PACS REST API: turn it on for this server"
                    " to be told of new studies.",
                )
            return watch.status

    def stop(self, server_name: str) -> None:
        """Stop notifications for a server (no error when they do not run)."""
        with self._lock:
            self._stop_locked(server_name)

    def stop_all(self) -> None:
        """Stop everything: listeners, polling and the hook thread."""
        with self._lock:
            for name in list(self._watches):
                self._stop_locked(name)
            runner, self._hook_runner = self._hook_runner, None
        if runner is not None:
            runner.stop()

    def sync(
        self, servers: Iterable[DicomServer], tokens: dict[str, str] | None = None
    ) -> list[NotificationStatus]:
        """Make the running set match a server list (after the user edited it).

        Servers that are gone are stopped; servers whose settings changed are restarted;
        unchanged ones keep running.

        Parameters
        ----------
        servers : iterable of DicomServer
            The list.
        tokens : dict, optional
            Tokens by server name.

        Returns
        -------
        list of NotificationStatus
            The status of every server of the list, in its order.
        """
        tokens = tokens or {}
        servers = list(servers)
        with self._lock:
            names = {server.name for server in servers}
            for name in list(self._watches):
                if name not in names:
                    self._stop_locked(name)
            result = []
            for server in servers:
                watch = self._watches.get(server.name)
                token = tokens.get(server.name)
                same = (
                    watch is not None
                    and watch.server.to_dict(include_secrets=True)
                    == server.to_dict(include_secrets=True)
                    and (token is None or token == watch.token)
                )
                if same and watch is not None:
                    result.append(watch.status)
                else:
                    result.append(self.start(server, token=token))
            return result

    def status(self, server_name: str) -> NotificationStatus | None:
        """Return a server's status, or None when it was never started."""
        with self._lock:
            watch = self._watches.get(server_name)
            return watch.status if watch is not None else None

    def statuses(self) -> list[NotificationStatus]:
        """Return the status of every started server."""
        with self._lock:
            return [watch.status for watch in self._watches.values()]

    def drain(self, max_events: int | None = None) -> list[NotificationEvent]:
        """Take the queued events, oldest first (for the UI's main-thread timer)."""
        return self.queue.drain(max_events)

    def drain_status_changes(self) -> list[NotificationStatus]:
        """Take the status changes since the last call, oldest first."""
        with self._lock:
            changes = list(self._status_changes)
            self._status_changes.clear()
            return changes

    def listener_for(self, server_name: str) -> NotificationListener | None:
        """Return the listener serving a server, if one runs (diagnosis, tests)."""
        with self._lock:
            watch = self._watches.get(server_name)
            if watch is None or watch.listener_key is None:
                return None
            return self._listeners.get(watch.listener_key)

    def worker_for(self, server_name: str) -> PollingWorker | None:
        """Return the polling worker (or watchdog) of a server, if one runs."""
        with self._lock:
            watch = self._watches.get(server_name)
            return watch.worker if watch is not None else None

    # -- internals ---------------------------------------------------------------------------

    def _set_status(self, watch: _Watch, mode: str, reason: str, **changes: Any) -> None:
        """Record a new status (lock held) and queue it for the UI."""
        old = watch.status
        since = self.clock() if mode != old.mode else old.since
        url = ""
        if watch.listener_key is not None and watch.listener_key in self._listeners:
            url = self._listeners[watch.listener_key].url
        status = replace(
            old,
            mode=mode,
            reason=reason,
            since=since,
            listener_url=url,
            poll_interval_s=self.poll_interval_s if mode == MODE_POLLING else 0.0,
            **changes,
        )
        watch.status = status
        if status != old:
            self._status_changes.append(status)
            log.info("notifications: %s", status.describe())

    def _open_listener(self, watch: _Watch) -> str | None:
        """Serve the server on its address; return None, or why that is impossible."""
        server = watch.server
        host = str(server.notification_ip).strip().strip("[]")
        port = server.notification_port
        for ok, reason, label in (
            (*check_ip_address(host), "Notification IP"),
            (*check_port(port), "Notification Port"),
        ):
            if not ok:
                return f"{label}: {reason}."
        key = (host, int(port))
        listener = self._listeners.get(key)
        if listener is None:
            listener = NotificationListener(host, port, self._deliver, limits=self.limits)
            try:
                listener.start()
            except OSError as exc:
                return bind_diagnosis(host, port, exc)
            self._listeners[key] = listener
        listener.add_route(server.name, watch.token)
        watch.listener_key = key
        # Show the real address at once (the status is set by the caller).
        watch.status = replace(watch.status, listener_url=listener.url)
        return None

    def _start_worker(self, watch: _Watch, *, emit: bool) -> bool:
        """Start polling (``emit``) or the listener's watchdog; False when not possible."""
        if not emit and self.watchdog_interval_s <= 0:
            return False
        try:
            poller = self.poller_factory(watch.server)
        except Exception as exc:  # a broken REST setting must not stop the listener
            log.warning("notifications: cannot poll %s: %s", watch.server.name, exc)
            return False
        if poller is None:
            return False
        worker = PollingWorker(
            poller,
            self._deliver,
            interval_s=self.poll_interval_s if emit else self.watchdog_interval_s,
            on_outcome=lambda outcome: self._on_outcome(watch, outcome),
            emit=emit,
        )
        watch.worker = worker
        worker.start()
        return True

    def _stop_locked(self, server_name: str) -> None:
        watch = self._watches.pop(server_name, None)
        if watch is None:
            return
        if watch.worker is not None:
            watch.worker.stop(timeout=0.5)
            watch.worker = None
        key = watch.listener_key
        if key is not None and key in self._listeners:
            listener = self._listeners[key]
            listener.remove_route(server_name)
            if not listener.routes:
                listener.stop()
                del self._listeners[key]

    def _deliver(self, event: NotificationEvent) -> bool:
        """Queue an event (listener and polling threads); never blocks."""
        with self._lock:
            watch = self._watches.get(event.server)
            if watch is not None:
                watch.status = replace(watch.status, last_event_at=event.received_at)
                if event.source == SOURCE_LISTENER:
                    watch.silence = None
                    if watch.silent_switch:
                        self._back_to_listener(watch)
            runner = self._hook_runner
        accepted = self.queue.put(event)
        if accepted and runner is not None:
            runner.put(event)
        return accepted

    def _back_to_listener(self, watch: _Watch) -> None:
        """A notification arrived while polling for a silent plugin: listen again."""
        watch.silent_switch = False
        if watch.worker is not None:
            watch.worker.emit = False
            watch.worker.interval_s = self.watchdog_interval_s
        self._set_status(
            watch,
            MODE_LISTENER,
            f"Notifications arrive again at {watch.status.listener_url}.",
        )

    def _on_outcome(self, watch: _Watch, outcome: PollOutcome) -> None:
        """After each poll (worker thread): errors, and the watchdog's silence check."""
        with self._lock:
            if self._watches.get(watch.server.name) is not watch:
                return  # stopped or restarted meanwhile
            error = "" if outcome.ok else outcome.diagnosis
            if error != watch.status.last_poll_error:
                self._set_status(
                    watch, watch.status.mode, watch.status.reason, last_poll_error=error
                )
            if watch.status.mode != MODE_LISTENER or watch.worker is None or not outcome.ok:
                return
            previous, watch.previous_poll_at = watch.previous_poll_at, outcome.polled_at
            if outcome.changes and watch.silence is None and previous is not None:
                watch.silence = _Silence(previous, outcome.resume_from, outcome.changes)
            silence = watch.silence
            if silence is None:
                return
            last = watch.status.last_event_at
            if last is not None and last >= silence.since - 1.0:
                watch.silence = None
                return
            if outcome.polled_at - silence.since < self.silence_grace_s:
                return
            watch.silence = None
            watch.silent_switch = True
            worker = watch.worker
            worker.poller.rewind(silence.resume_from)
            worker.emit = True
            worker.interval_s = self.poll_interval_s
            worker.poll_now()
            self._set_status(
                watch,
                MODE_POLLING,
                f"The server stored new data but no notification reached"
                f" {watch.status.listener_url} within {self.silence_grace_s:g} s: check that"
                " the notification plugin is installed and that its NOTIFY_URL, NOTIFY_TOKEN"
                f" and NOTIFY_SERVER match. Asking the server every {self.poll_interval_s:g} s"
                " meanwhile; listening again as soon as a notification arrives.",
            )
