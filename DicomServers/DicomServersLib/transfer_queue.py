"""A queue of retrieve requests run by worker threads, for a user interface that never waits.

The study browser submits a :class:`TransferRequest` (a study, or some of its series, of one
server) and gets a request id at once; worker threads run the requests in order through
:func:`DicomServersLib.sources.retrieve` (folder, REST, C-GET or C-MOVE, whatever the server
uses). The UI picks up :class:`TransferEvent` values on its own thread with :meth:`drain`
(e.g. from a ``qt.QTimer``): ``queued``, ``started``, ``progress`` (instances and bytes,
throttled) and exactly one ``finished`` per request, carrying its
:class:`~DicomServersLib.transfer_model.RetrieveResult`. Workers never touch Qt.

- **Cancel** one request or all: a queued request finishes at once as cancelled; a running one
  is told through its progress callback (the protocol then sends C-CANCEL, closes its HTTP
  streams, …) and finishes as cancelled with no partial file left.
- **Further requests queue**: submitting while a transfer runs never blocks; the same study
  and series asked for again while queued or running returns the existing request.

Workers are :class:`DicomServersLib.background.BackgroundJob` threads (the project's one
worker-to-main-thread pattern); :meth:`TransferQueue.close` stops them.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .background import BackgroundJob, Emit
from .progress import CancelToken, Progress, ProgressCallback
from .server import DicomServer
from .transfer_model import RetrieveResult

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL_STATES = frozenset({DONE, FAILED, CANCELLED})

EVENT_QUEUED = "queued"
EVENT_STARTED = "started"
EVENT_PROGRESS = "progress"
EVENT_FINISHED = "finished"

#: ``retrieve(server, study_uid, series_uids, dest, progress=...)``, as sources.retrieve.
RetrieveFunction = Callable[..., RetrieveResult]


@dataclass(frozen=True)
class TransferRequest:
    """What to bring here: a study, or some of its series, of one server.

    Attributes
    ----------
    server : DicomServer
        The server (its loading mode decides folder or network).
    study_uid : str
        StudyInstanceUID.
    series_uids : tuple of str
        Only these series; empty for the whole study.
    dest : pathlib.Path or None
        Destination folder; None only in folder mode, to use the PACS folder's files in place.
    label : str
        What the user sees (patient and study description).
    series_count, instance_count : int or None
        Size of the request when known from the search (for the progress display).
    tag : Any
        Anything the caller wants back with the events (e.g. "load when done").
    """

    server: DicomServer
    study_uid: str
    series_uids: tuple[str, ...] = ()
    dest: Path | None = None
    label: str = ""
    series_count: int | None = None
    instance_count: int | None = None
    tag: Any = field(default=None, compare=False)

    def key(self) -> tuple[str, str, tuple[str, ...], str]:
        """Identity used to recognise the same request asked for twice."""
        return (self.server.id, self.study_uid, tuple(sorted(self.series_uids)), str(self.dest))


@dataclass
class TransferStatus:
    """Where one request stands (copies are handed out; the queue keeps the original)."""

    request_id: int
    request: TransferRequest
    state: str = QUEUED
    progress: Progress = field(default_factory=Progress)
    result: RetrieveResult | None = None
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the request is done, failed or cancelled."""
        return self.state in FINAL_STATES

    @property
    def instances_done(self) -> int:
        """Instances transferred (or already present) so far."""
        if self.result is not None:
            return self.result.received + self.result.skipped
        return self.progress.completed

    @property
    def instances_total(self) -> int | None:
        """Instances of the request, when known."""
        if self.result is not None and self.finished and not self.result.cancelled:
            return self.result.received + self.result.skipped + self.result.failed
        total = self.progress.total
        return total if total is not None else self.request.instance_count

    @property
    def bytes_done(self) -> int:
        """Bytes transferred so far."""
        if self.result is not None:
            return self.result.bytes_received
        return self.progress.bytes_done

    def snapshot(self) -> TransferStatus:
        """Return a copy that later changes do not affect."""
        return dataclasses.replace(self)


@dataclass(frozen=True)
class TransferEvent:
    """Something that happened to a request (``kind`` is one of the ``EVENT_*`` values)."""

    kind: str
    status: TransferStatus

    @property
    def request_id(self) -> int:
        """The request the event is about."""
        return self.status.request_id


class TransferQueue:
    """Retrieve requests run by worker threads; events drained by the UI thread.

    Parameters
    ----------
    retrieve : callable, optional
        ``retrieve(server, study_uid, series_uids, dest, progress=...)`` returning a
        :class:`RetrieveResult`; default :func:`DicomServersLib.sources.retrieve`.
    workers : int, optional
        Requests running at the same time (each protocol parallelises inside a request).
    progress_interval_s : float, optional
        Least time between two progress events of one request (the last one always comes).
    """

    def __init__(
        self,
        retrieve: RetrieveFunction | None = None,
        *,
        workers: int = 1,
        progress_interval_s: float = 0.05,
    ) -> None:
        if retrieve is None:
            from .sources import retrieve as default_retrieve

            retrieve = default_retrieve
        if workers < 1:
            raise ValueError(f"workers: at least 1, got {workers}")
        self._retrieve = retrieve
        self._interval = progress_interval_s
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._statuses: dict[int, TransferStatus] = {}
        self._tokens: dict[int, CancelToken] = {}
        self._finished: dict[int, threading.Event] = {}
        self._pending: queue.Queue[int | None] = queue.Queue()
        self._events: queue.SimpleQueue[TransferEvent] = queue.SimpleQueue()
        self._closed = False
        self._workers = [
            BackgroundJob(self._work, name=f"DicomServers-transfer-{n}").start()
            for n in range(1, workers + 1)
        ]

    # -- asking --------------------------------------------------------------------------------

    def submit(self, request: TransferRequest) -> int:
        """Queue a request and return its id at once (the same id if already queued/running).

        Raises
        ------
        RuntimeError
            The queue was closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the transfer queue is closed")
            for status in self._statuses.values():
                if not status.finished and status.request.key() == request.key():
                    return status.request_id
            request_id = next(self._ids)
            status = TransferStatus(request_id, request, queued_at=time.monotonic())
            self._statuses[request_id] = status
            self._tokens[request_id] = CancelToken()
            self._finished[request_id] = threading.Event()
            self._events.put(TransferEvent(EVENT_QUEUED, status.snapshot()))
        self._pending.put(request_id)
        return request_id

    def cancel(self, request_id: int) -> bool:
        """Cancel a request; return False if it had already finished (or is unknown)."""
        with self._lock:
            status = self._statuses.get(request_id)
            if status is None or status.finished:
                return False
            self._tokens[request_id].cancel()
            if status.state == QUEUED:
                result = RetrieveResult(
                    ok=False, cancelled=True, diagnosis="Cancelled before it started."
                )
                self._finish_locked(status, result, self._events.put)
        return True

    def cancel_all(self) -> int:
        """Cancel every queued and running request; return how many were cancelled."""
        with self._lock:
            ids = [s.request_id for s in self._statuses.values() if not s.finished]
        return sum(1 for request_id in ids if self.cancel(request_id))

    # -- reading -------------------------------------------------------------------------------

    def drain(self) -> list[TransferEvent]:
        """Return the events since the last call, in order per request, without blocking."""
        events: list[TransferEvent] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        for worker in self._workers:
            events += worker.drain()
        return events

    def status(self, request_id: int) -> TransferStatus | None:
        """Return a copy of a request's status, or None if unknown."""
        with self._lock:
            status = self._statuses.get(request_id)
            return status.snapshot() if status is not None else None

    def statuses(self) -> list[TransferStatus]:
        """Return copies of every request's status, in the order they were submitted."""
        with self._lock:
            return [s.snapshot() for s in self._statuses.values()]

    @property
    def busy(self) -> bool:
        """True while a request is queued or running."""
        with self._lock:
            return any(not s.finished for s in self._statuses.values())

    def wait(self, request_id: int, timeout: float | None = None) -> TransferStatus | None:
        """Block until a request finishes (console and tests, never a UI thread).

        Returns
        -------
        TransferStatus or None
            Its final status; None if unknown or still running after ``timeout`` seconds.
        """
        finished = self._finished.get(request_id)
        if finished is None or not finished.wait(timeout):
            return None
        return self.status(request_id)

    def forget_finished(self) -> None:
        """Drop the statuses of finished requests (the UI's "clear finished")."""
        with self._lock:
            for request_id in [r for r, s in self._statuses.items() if s.finished]:
                del self._statuses[request_id]
                del self._tokens[request_id]
                del self._finished[request_id]

    def close(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the workers (waits up to ``timeout`` seconds each)."""
        with self._lock:
            self._closed = True
        self.cancel_all()
        for worker in self._workers:
            worker.cancel()
            self._pending.put(None)
        for worker in self._workers:
            worker.wait(timeout)

    # -- the workers ---------------------------------------------------------------------------

    def _work(self, emit: Emit, stop: CancelToken) -> None:
        while not stop.cancelled:
            request_id = self._pending.get()
            if request_id is None:
                return
            self._run(request_id, emit)

    def _run(self, request_id: int, emit: Emit) -> None:
        with self._lock:
            status = self._statuses.get(request_id)
            if status is None or status.state != QUEUED:
                return  # cancelled while queued (already finished) or forgotten
            status.state = RUNNING
            status.started_at = time.monotonic()
            token = self._tokens[request_id]
            emit(TransferEvent(EVENT_STARTED, status.snapshot()))
        request = status.request
        last = [0.0]

        def progress(value: Progress) -> bool:
            now = time.monotonic()
            with self._lock:
                status.progress = value
                if now - last[0] >= self._interval or value.remaining == 0:
                    last[0] = now
                    emit(TransferEvent(EVENT_PROGRESS, status.snapshot()))
            return not token.cancelled

        callback: ProgressCallback = progress
        try:
            result = self._retrieve(
                request.server,
                request.study_uid,
                request.series_uids,
                request.dest,
                progress=callback,
            )
        except Exception as error:  # misuse (bad settings, bad UID): a value for the UI
            result = RetrieveResult(ok=False, diagnosis=str(error) or type(error).__name__)
        if token.cancelled and not result.cancelled:
            result.cancelled = True
            result.ok = False
            result.diagnosis = result.diagnosis or "Cancelled."
        with self._lock:
            self._finish_locked(status, result, emit)

    def _finish_locked(self, status: TransferStatus, result: RetrieveResult, emit: Emit) -> None:
        status.result = result
        status.finished_at = time.monotonic()
        status.state = CANCELLED if result.cancelled else DONE if result.ok else FAILED
        emit(TransferEvent(EVENT_FINISHED, status.snapshot()))
        self._finished[status.request_id].set()
