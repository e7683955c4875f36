"""Progress reports and cancellation for long work (query, retrieve, send, indexing).

Long operations take ``progress: ProgressCallback | None``. The worker calls it with a
:class:`Progress` value; returning ``False`` asks the worker to cancel (it then sends C-CANCEL,
closes the HTTP stream, …). The callback never touches widgets: the UI layer hands the value
to the main thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Where a transfer stands (DICOM sub-operation counts, PS3.4 C.4.2.1.5, plus bytes)."""

    completed: int = 0
    remaining: int | None = None
    failed: int = 0
    warning: int = 0
    bytes_done: int = 0
    bytes_total: int | None = None
    message: str = ""

    @property
    def total(self) -> int | None:
        """Completed + failed + warning + remaining, when the remaining count is known."""
        if self.remaining is None:
            return None
        return self.completed + self.failed + self.warning + self.remaining


ProgressCallback = Callable[[Progress], bool | None]


class CancelToken:
    """A thread-safe cancel flag; also usable as a progress callback wrapper."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def wrap(self, progress: ProgressCallback | None) -> ProgressCallback:
        """Return a callback that reports to ``progress`` and cancels when the token is set."""

        def callback(value: Progress) -> bool:
            keep_going = True
            if progress is not None:
                keep_going = progress(value) is not False
            return keep_going and not self.cancelled

        return callback


def report(progress: ProgressCallback | None, value: Progress) -> bool:
    """Call ``progress`` (if any) and return True to continue, False to cancel."""
    if progress is None:
        return True
    return progress(value) is not False
