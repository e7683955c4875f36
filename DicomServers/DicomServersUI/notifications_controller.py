"""What the UI does when a server says that new studies arrived (one place, Slicer and standalone).

:class:`NotificationsController` owns the core's
:class:`~DicomServersLib.notifications.service.NotificationService` and

- keeps it in step with the server list (a registry listener calls ``service.sync``: servers
  that turned notifications on start listening, edited ones restart, removed ones stop);
- drains it on the main thread with a ``qt.QTimer`` (every 250 ms; the service's threads never
  touch Qt) and hands each batch of events to
  :func:`~DicomServersLib.notifications.actions.plan_actions`, which decides:

  * whose study list changed: a REST server's cached list is refreshed incrementally on the
    service's hook thread (:class:`~DicomServersLib.notifications.cache_refresh.CacheRefresher`);
    when that is done, or at once for a server without the REST API, the study browser shows
    the current server's list again keeping the selected study and the scroll position
    (:meth:`DicomServersUI.study_browser.StudyBrowser.refreshKeepingView`);
  * one short message per study for ``showMessage(text)``: in Slicer the main window's status
    bar (``slicer.util.showStatusMessage(text, 5000)``, Slicer ``Base/Python/slicer/util.py``:
    ``mainWindow().statusBar().showMessage(message, duration)``), in the standalone window its
    own status bar; never a modal dialog;
  * which complete new studies to retrieve at once: only for servers in the automatic loading
    mode whose *Retrieve new studies automatically* setting is on
    (``notifications_auto_retrieve``, off by default), queued in the study browser's transfer
    queue like a study the user selected;

- tells its status listeners how each server's notifications work and why (listener on
  IP:port, polling every N s because ..., unavailable, off): the panel's Notifications group
  and the standalone window's status bar show it (:func:`notificationStatusText`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from urllib.parse import urlsplit

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from DicomServersLib.notifications.actions import plan_actions
from DicomServersLib.notifications.cache_refresh import CacheRefresher
from DicomServersLib.notifications.service import (
    MODE_LISTENER,
    MODE_OFF,
    MODE_POLLING,
    MODE_UNAVAILABLE,
    NotificationService,
)
from DicomServersLib.query_model import StudyRecord

log = logging.getLogger(__name__)

#: How often the main thread takes the service's events and status changes (milliseconds).
POLL_INTERVAL_MS = 250
#: Events handled per timer tick (the rest wait for the next tick; the UI never stalls).
MAX_EVENTS_PER_TICK = 500
#: Shortest time between two refreshes of the browser caused by notifications (seconds).
MIN_BROWSER_REFRESH_S = 1.0
#: How long a notification message stays in a status bar (milliseconds).
MESSAGE_DURATION_MS = 5000


def listenerAddress(url: str) -> str:
    """``http://127.0.0.1:8765/notify`` → ``127.0.0.1:8765`` (the URL when it does not parse)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return url
    if not host or port is None:
        return url
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def notificationStatusText(status) -> str:
    """Say which notification mode a server is in, and why (for a label or a status bar).

    Parameters
    ----------
    status
        A :class:`~DicomServersLib.notifications.service.NotificationStatus`, or None (not
        started: notifications off).
    """
    if status is None:
        return "Notifications: off."
    if status.mode == MODE_LISTENER:
        head = f"Notifications: listening on {listenerAddress(status.listener_url)}."
    elif status.mode == MODE_POLLING:
        head = f"Notifications: polling the server every {status.poll_interval_s:g} s."
    elif status.mode == MODE_UNAVAILABLE:
        head = "Notifications: unavailable."
    else:
        head = "Notifications: off."
    text = f"{head} {status.reason}".strip()
    if status.last_poll_error:
        text += f" The last poll failed: {status.last_poll_error}"
    return text


def studyFromEvent(event) -> StudyRecord:
    """A :class:`StudyRecord` of a new study, from what its notification says."""
    return StudyRecord(
        study_uid=event.study_uid,
        patient_name=event.patient_name,
        patient_id=event.patient_id,
        study_description=event.study_description,
        modalities=[event.modality] if event.modality else [],
    )


class NotificationsController:
    """Notifications of the server list, turned into refreshes, messages and retrieves.

    Parameters
    ----------
    registry
        The server list (:class:`DicomServersLib.registry.ServerRegistry`).
    service
        The :class:`NotificationService` (default: a new one). The controller stops it in
        :meth:`cleanup`.
    showMessage
        ``showMessage(text)`` shows a non-modal message (a status bar).
    browser
        ``browser(create)`` returns the study browser, or None when there is none; with
        ``create`` True it may build it (an automatic retrieve needs its transfer queue).
    refresher
        The REST cache's event hook (default: a :class:`CacheRefresher` on this list).
    start
        Start at once (sync with the list and start the timer).

    Attributes
    ----------
    statuses : dict
        The last :class:`NotificationStatus` of each server, by name.
    messages : collections.deque
        The last messages shown (newest last).
    retrieved : list
        ``(server name, study UID, request id)`` of the automatic retrieves queued.
    statusListeners : list
        Called with each new status (the panel, the standalone status bar).
    """

    def __init__(
        self,
        registry,
        service=None,
        showMessage=None,
        browser=None,
        refresher=None,
        start: bool = True,
    ):
        self.registry = registry
        self.service = service if service is not None else NotificationService()
        self.showMessage = showMessage
        self.browser = browser
        self.statuses: dict = {}
        self.messages: deque = deque(maxlen=100)
        self.retrieved: list = []
        self.statusListeners: list = []
        self._servers: dict = {}
        self._pendingRefresh: set = set()
        self._lastBrowserRefresh = float("-inf")
        self._retrievedKeys: set = set()
        self.refresher = refresher if refresher is not None else CacheRefresher(self._server)
        self.service.add_event_hook(self.refresher)
        self._timer = qt.QTimer()
        self._timer.interval = POLL_INTERVAL_MS
        self._timer.timeout.connect(self.poll)
        self._running = False
        if start:
            self.start()

    # -- lifetime ------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen to the server list, start the servers' notifications and the timer."""
        if self._running:
            return
        self._running = True
        self.registry.add_listener(self.syncWithRegistry)
        self.syncWithRegistry()
        self._timer.start()

    def cleanup(self) -> None:
        """Stop the timer, stop listening to the list and stop every listener and poller."""
        self._timer.stop()
        if self._running:
            self.registry.remove_listener(self.syncWithRegistry)
        self._running = False
        self.service.stop_all()

    def addStatusListener(self, listener) -> None:
        """Call ``listener(status)`` now for every known status and then on every change."""
        self.statusListeners.append(listener)
        for status in list(self.statuses.values()):
            listener(status)

    # -- the server list -----------------------------------------------------------------------

    def _server(self, name: str):
        """The current record of a server (any thread: reads one dict the main thread swaps)."""
        return self._servers.get(name)

    def syncWithRegistry(self) -> None:
        """Make the running notifications match the server list (a registry listener)."""
        servers = self.registry.servers
        self._servers = {server.name: server for server in servers}
        for name in [n for n in self.statuses if n not in self._servers]:
            del self.statuses[name]
        for status in self.service.sync(servers):
            self._setStatus(status)

    def _setStatus(self, status) -> None:
        if status.server not in self._servers:
            return
        if self.statuses.get(status.server) == status:
            return
        self.statuses[status.server] = status
        for listener in list(self.statusListeners):
            try:
                listener(status)
            except Exception:  # a broken listener must not stop the notifications
                log.exception("notification status listener %r failed", listener)

    def summary(self) -> str:
        """One line for a status bar: the mode of every server with notifications on."""
        parts = []
        for name, status in self.statuses.items():
            if status.mode == MODE_OFF:
                continue
            if status.mode == MODE_LISTENER:
                parts.append(f"{name}: listening on {listenerAddress(status.listener_url)}")
            elif status.mode == MODE_POLLING:
                parts.append(f"{name}: polling every {status.poll_interval_s:g} s")
            else:
                parts.append(f"{name}: unavailable")
        return ("Notifications: " + "; ".join(parts)) if parts else ""

    # -- the main-thread poll ------------------------------------------------------------------

    def poll(self) -> None:
        """Take status changes, events and refresh results (runs on the main thread)."""
        for status in self.service.drain_status_changes():
            self._setStatus(status)
        events = self.service.drain(MAX_EVENTS_PER_TICK)
        if events:
            self._handleEvents(events)
        for name, result in self.refresher.drain_results():
            if result.ok:
                self._pendingRefresh.add(name)
            else:
                log.warning("notifications: refreshing %s failed: %s", name, result.diagnosis)
        self._refreshBrowser()

    def _handleEvents(self, events) -> None:
        plan = plan_actions(events, self._servers, auto_retrieve=True)
        for name in plan.refresh_servers:
            server = self._servers.get(name)
            restCache = server is not None and server.rest_enabled and server.rest_url.strip()
            if not restCache:  # a REST server's browser refresh waits for its cache refresh
                self._pendingRefresh.add(name)
        if plan.messages:
            self._show(plan.messages)
        for event in plan.retrieve:
            self._retrieve(event)

    def _show(self, messages) -> None:
        self.messages.extend(messages)
        text = messages[-1]
        if len(messages) > 1:
            text = f"{messages[0]} (and {len(messages) - 1} more new studies)"
        if self.showMessage is not None:
            self.showMessage(text)

    def _browser(self, create: bool):
        if self.browser is None:
            return None
        try:
            return self.browser(create)
        except Exception:
            log.exception("notifications: no study browser")
            return None

    def _refreshBrowser(self) -> None:
        if not self._pendingRefresh:
            return
        browser = self._browser(False)
        current = browser.currentServer() if browser is not None else None
        if current is None or current.name not in self._pendingRefresh:
            # Other servers' lists are read when the user chooses them (the cache is current).
            self._pendingRefresh.clear()
            return
        now = time.monotonic()
        if now - self._lastBrowserRefresh < MIN_BROWSER_REFRESH_S:
            return
        if browser.refreshKeepingView():
            self._pendingRefresh.clear()
            self._lastBrowserRefresh = now

    def _retrieve(self, event) -> None:
        server = self._servers.get(event.server)
        key = (event.server, event.study_uid)
        if server is None or not server.notifications_auto_retrieve or key in self._retrievedKeys:
            return
        browser = self._browser(True)
        if browser is None:
            return
        requestId = browser.retrieveNewStudy(event.server, studyFromEvent(event))
        if requestId is None:
            return
        self._retrievedKeys.add(key)
        self.retrieved.append((event.server, event.study_uid, requestId))
        self._show([f"Retrieving automatically: {event.describe()}"])
