"""Running work on a worker thread while the UI stays responsive.

A :class:`BackgroundJob` runs ``work(emit, cancel)`` on its own daemon thread. The work reports
intermediate events with ``emit(event)`` and returns a result; nothing is pushed to the caller.
The UI layer polls :meth:`BackgroundJob.drain` on its own (main) thread, e.g. from a
``qt.QTimer``, so a worker never touches a widget (Qt objects belong to the thread that made
them). Cancellation is cooperative through a :class:`~DicomServersLib.progress.CancelToken`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .progress import CancelToken

T = TypeVar("T")

Emit = Callable[[Any], None]
Work = Callable[[Emit, CancelToken], T]


class BackgroundJob(Generic[T]):
    """One piece of work on a worker thread, polled from the UI thread.

    Parameters
    ----------
    work
        Called on the worker thread as ``work(emit, cancel)``; its return value is the result,
        an exception it raises is re-raised by :meth:`result`.
    name
        Thread name (shows in debuggers and ``faulthandler`` dumps).
    """

    def __init__(self, work: Work[T], name: str = "DicomServers-job") -> None:
        self._work = work
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._done = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None
        self.cancel_token = CancelToken()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> BackgroundJob[T]:
        """Start the worker thread (once) and return the job."""
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._result = self._work(self._events.put, self.cancel_token)
        except BaseException as error:  # handed to the UI thread by result()
            self._error = error
        finally:
            self._done.set()

    def cancel(self) -> None:
        """Ask the work to stop (it checks the token between steps)."""
        self.cancel_token.cancel()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.cancel_token.cancelled

    @property
    def done(self) -> bool:
        """True when the work has returned or raised (events may still wait in :meth:`drain`)."""
        return self._done.is_set()

    def drain(self) -> list[Any]:
        """Return the events emitted since the last call, without blocking."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work is done (not on a UI thread); return False on timeout."""
        return self._done.wait(timeout)

    def result(self) -> T:
        """Return the work's result, or raise its exception.

        Raises
        ------
        RuntimeError
            The work has not finished yet.
        """
        if not self.done:
            raise RuntimeError("the background job has not finished")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
