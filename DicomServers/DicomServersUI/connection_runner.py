"""Running a server's connection test in the background and keeping each server's status.

The panel only knows the :class:`ConnectionTester` protocol: a callable that tests one server
on a worker thread, reports each step through a callback and returns a :class:`TestOutcome`.
The default is the deep test of ``DicomServersLib.dimse.connection_test`` when it is installed;
tests inject their own (against real peers). Workers never touch Qt: steps and outcomes are
queued by :class:`DicomServersLib.background.BackgroundJob` and picked up on the main thread.
"""

from __future__ import annotations

import datetime as _dt
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from DicomServersLib.progress import CancelToken
from DicomServersLib.server import DicomServer

UNKNOWN = "unknown"
RUNNING = "running"
OK = "ok"
FAILED = "failed"


@dataclass(frozen=True)
class TestStep:
    """One step of a connection test as the panel shows it.

    ``ok`` is None for a step that was skipped or does not apply (e.g. REST while it is off).
    """

    __test__ = False  # not a pytest test class

    name: str
    ok: bool | None
    detail: str = ""
    diagnosis: str = ""


@dataclass(frozen=True)
class TestOutcome:
    """The result of a whole connection test."""

    __test__ = False

    ok: bool
    summary: str
    steps: tuple[TestStep, ...] = ()
    diagnosis: str = ""


class ConnectionTester(Protocol):
    """Tests one server; runs on a worker thread and must never touch Qt."""

    def __call__(
        self, server: DicomServer, report: Callable[[TestStep], None], cancel: CancelToken
    ) -> TestOutcome:
        """Test ``server``; call ``report(step)`` after each step; stop early when cancelled."""
        ...


@dataclass
class ConnectionStatus:
    """What the list shows of a server's last connection test."""

    state: str = UNKNOWN
    testedAt: _dt.datetime | None = None
    summary: str = ""
    steps: list[TestStep] = field(default_factory=list)
    diagnosis: str = ""

    def toolTip(self) -> str:
        """Return the status tooltip: the state and the time of the last test."""
        if self.state == RUNNING:
            return "Connection test running…"
        if self.testedAt is None:
            return "Connection not tested yet"
        when = self.testedAt.strftime("%Y-%m-%d %H:%M:%S")
        verdict = "succeeded" if self.state == OK else "failed"
        text = f"Last connection test {verdict} on {when}"
        return text + (f"\n{self.summary}" if self.summary else "")


def _attr(obj: Any, names: Sequence[str], default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def toTestStep(step: Any) -> TestStep:
    """Convert a step of the core's connection test (name, ok, detail...) to a TestStep."""
    if isinstance(step, TestStep):
        return step
    ok = _attr(step, ("ok", "passed", "success"))
    status = _attr(step, ("status", "outcome", "state"))
    if ok is None and isinstance(status, str):
        ok = {"ok": True, "passed": True, "failed": False, "error": False}.get(status.lower())
    return TestStep(
        name=str(_attr(step, ("name", "title", "step", "label"), "step")),
        ok=None if ok is None else bool(ok),
        detail=str(_attr(step, ("detail", "details", "message", "summary"), "") or ""),
        diagnosis=str(_attr(step, ("diagnosis", "advice", "hint"), "") or ""),
    )


def toTestOutcome(result: Any, steps: Sequence[TestStep]) -> TestOutcome:
    """Convert the core's connection-test result to a TestOutcome."""
    if isinstance(result, TestOutcome):
        return result
    resultSteps = _attr(result, ("steps",), None)
    allSteps = tuple(toTestStep(s) for s in resultSteps) if resultSteps else tuple(steps)
    ok = _attr(result, ("ok", "passed", "success"))
    if ok is None:
        ok = bool(allSteps) and all(s.ok is not False for s in allSteps)
    failed = [s for s in allSteps if s.ok is False]
    summary = _attr(result, ("summary", "message"), "") or (
        "All steps passed" if ok else f"Failed at: {failed[0].name}" if failed else "Failed"
    )
    diagnosis = _attr(result, ("diagnosis",), "") or (failed[0].diagnosis if failed else "")
    return TestOutcome(bool(ok), str(summary), allSteps, str(diagnosis or ""))


def defaultConnectionTester() -> ConnectionTester | None:
    """Return the core's deep connection test, or None when it is not installed."""
    try:
        module = importlib.import_module("DicomServersLib.dimse.connection_test")
    except ImportError:
        return None
    run = getattr(module, "run_connection_test", None) or getattr(module, "test_connection", None)
    if run is None:
        return None

    def tester(
        server: DicomServer, report: Callable[[TestStep], None], cancel: CancelToken
    ) -> TestOutcome:
        seen: list[TestStep] = []

        def onStep(step: Any) -> bool:
            converted = toTestStep(step)
            seen.append(converted)
            report(converted)
            return not cancel.cancelled

        result = run(server, on_step=onStep, cancel=cancel)
        return toTestOutcome(result, seen)

    return tester
