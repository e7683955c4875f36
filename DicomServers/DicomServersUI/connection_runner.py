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
import inspect
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


#: How the steps of the core's connection test are titled in the panel.
STEP_TITLES = {
    "connect": "Network",
    "echo": "C-ECHO (verification)",
    "find": "C-FIND (query)",
    "get": "C-GET (retrieve)",
    "move": "C-MOVE (retrieve)",
    "rest": "REST API",
}


def _attr(obj: Any, names: Sequence[str], default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def toTestStep(step: Any) -> TestStep:
    """Convert a step of the core's connection test (``dimse.outcome.StepResult``) to a TestStep.

    A step that passed reads "passed in 12 ms" (plus its note, if any); a skipped step is
    neither passed nor failed; a failed step carries its diagnosis (what to do) and the
    technical detail.
    """
    if isinstance(step, TestStep):
        return step
    raw = str(_attr(step, ("step", "name", "title"), "step"))
    ok = _attr(step, ("ok", "passed"))
    skipped = bool(_attr(step, ("skipped",), False))
    note = str(_attr(step, ("diagnosis",), "") or "")
    technical = str(_attr(step, ("detail",), "") or "")
    seconds = _attr(step, ("duration_s",), None)
    status = _attr(step, ("status",), None)
    if skipped:
        return TestStep(STEP_TITLES.get(raw, raw), None, "skipped" + (f": {note}" if note else ""))
    if ok:
        detail = "passed" if seconds is None else f"passed in {float(seconds) * 1000:.0f} ms"
        return TestStep(STEP_TITLES.get(raw, raw), True, detail + (f" — {note}" if note else ""))
    if isinstance(status, int) and f"0x{status:04X}" not in technical:
        technical = f"status 0x{status:04X}" + (f", {technical}" if technical else "")
    return TestStep(STEP_TITLES.get(raw, raw), False, technical or "failed", note)


def toTestOutcome(result: Any, steps: Sequence[TestStep]) -> TestOutcome:
    """Convert the core's connection-test result (``ConnectionTestResult``) to a TestOutcome."""
    if isinstance(result, TestOutcome):
        return result
    resultSteps = _attr(result, ("steps",), None)
    allSteps = tuple(toTestStep(s) for s in resultSteps) if resultSteps else tuple(steps)
    ok = _attr(result, ("ok",))
    if ok is None:
        ok = bool(allSteps) and all(s.ok is not False for s in allSteps)
    failed = [s for s in allSteps if s.ok is False]
    if ok:
        summary = (
            "Connection OK (" + ", ".join(s.name.split(" ")[0] for s in allSteps if s.ok) + ")"
        )
    else:
        summary = f"Failed at {failed[0].name}" if failed else "Connection failed"
    diagnosis = _attr(result, ("diagnosis",), "") or (failed[0].diagnosis if failed else "")
    return TestOutcome(bool(ok), summary, allSteps, str(diagnosis or ""))


def _keywords(function: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def wrapCoreTest(run: Callable[..., Any]) -> ConnectionTester:
    """Adapt the core's ``test_connection(server, ...)`` to the :class:`ConnectionTester` protocol.

    Each step is reported as it finishes when the core offers a step callback (``on_step``);
    cancelling goes through its progress callback (returning False cancels) or cancel token.
    """
    accepted = _keywords(run)

    def tester(
        server: DicomServer, report: Callable[[TestStep], None], cancel: CancelToken
    ) -> TestOutcome:
        seen: list[TestStep] = []

        def onStep(step: Any) -> bool:
            converted = toTestStep(step)
            seen.append(converted)
            report(converted)
            return not cancel.cancelled

        kwargs: dict[str, Any] = {}
        if "on_step" in accepted:
            kwargs["on_step"] = onStep
        if "progress" in accepted:
            kwargs["progress"] = lambda _value: not cancel.cancelled
        if "cancel" in accepted:
            kwargs["cancel"] = cancel
        result = run(server, **kwargs)
        if not seen:
            for step in _attr(result, ("steps",), None) or ():
                report(toTestStep(step))
        return toTestOutcome(result, seen)

    return tester


def echoTester(
    server: DicomServer, report: Callable[[TestStep], None], cancel: CancelToken
) -> TestOutcome:
    """The smallest connection test: one C-ECHO (``DicomServersLib.dimse.echo``)."""
    from DicomServersLib.dimse.echo import echo

    step = toTestStep(echo(server))
    report(step)
    return toTestOutcome(None, [step])


def defaultConnectionTester() -> ConnectionTester | None:
    """Return the core's deep connection test, else a C-ECHO test, else None.

    None means the DIMSE part of the core cannot be imported (pynetdicom missing): the panel
    then says the test is not available.
    """
    try:
        module = importlib.import_module("DicomServersLib.dimse.connection_test")
    except ImportError:
        module = None
    run = getattr(module, "test_connection", None)
    if run is not None:
        return wrapCoreTest(run)
    try:
        importlib.import_module("DicomServersLib.dimse.echo")
    except ImportError:
        return None
    return echoTester
