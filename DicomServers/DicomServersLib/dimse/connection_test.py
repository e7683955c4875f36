"""The deep connection test: does every DICOM path to a server work?

Steps, each a :class:`~.outcome.StepResult` (ok, duration, DICOM status, diagnosis):

1. ``echo``: C-ECHO (network, port, AE titles).
2. ``find``: a study-level C-FIND limited to one result (query permission, information model;
   an echo alone proves little, Orthanc added ``DicomEchoChecksFind`` for that reason).
3. ``move`` or ``get`` (the server's retrieve method): one instance of that study retrieved
   into a scratch folder. For C-MOVE this proves the return route (the PACS knows our move
   destination and can reach our storage listener), the most common failure of all. For
   C-GET it proves the PACS really sends images back on our connection.

A step runs only when the ones before passed; later steps are marked skipped.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from DicomServersLib.date_filters import DateRange
from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.echo import echo
from DicomServersLib.dimse.find import STUDY_ROOT_FIND, FindSession, Match
from DicomServersLib.dimse.outcome import (
    NOT_FOUND,
    STATUS,
    ConnectionTestResult,
    Failure,
    StepResult,
)
from DicomServersLib.dimse.query import (
    NETWORK_FIELDS,
    instance_identifier,
    require_server_fields,
    series_identifier,
    study_identifier,
)
from DicomServersLib.dimse.retrieve import retrieve_detailed
from DicomServersLib.dimse.storage_scp import ALL_INTERFACES
from DicomServersLib.progress import CancelToken
from DicomServersLib.query_model import QueryFilters
from DicomServersLib.server import DicomServer

__all__ = ["StepCallback", "check_connection", "test_connection"]

#: Told each step as it finishes; returning False cancels the remaining steps.
StepCallback = Callable[[StepResult], "bool | None"]


def _skipped(step: str, why: str) -> StepResult:
    return StepResult(step, False, skipped=True, diagnosis=why)


def _one_instance(
    server: DicomServer, study_uid: str, timeouts: Timeouts
) -> tuple[str, str] | None:
    """(series UID, SOP Instance UID) of one instance of a study, or None."""
    with FindSession(server, [STUDY_ROOT_FIND], timeouts) as session:
        if session.failure is not None:
            return None
        series: list[str] = []
        session.find(
            STUDY_ROOT_FIND,
            series_identifier(study_uid),
            lambda match: series.append(_uid(match, 0x0020000E)),
            limit=1,
        )
        if not series or not series[0] or session.assoc is None:
            return None
        instances: list[str] = []
        session.find(
            STUDY_ROOT_FIND,
            instance_identifier(study_uid, series[0]),
            lambda match: instances.append(_uid(match, 0x00080018)),
            limit=1,
        )
        if not instances or not instances[0]:
            return None
        return series[0], instances[0]


def _uid(match: Match, element_tag: int) -> str:
    found = match.elements.get(element_tag)
    return match.decoder.ascii(found[1]) if found else ""


def check_connection(
    server: DicomServer,
    *,
    deep: bool = True,
    timeouts: Timeouts | None = None,
    listen_host: str = ALL_INTERFACES,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
) -> ConnectionTestResult:
    """Test a server: C-ECHO, then (``deep``) C-FIND and a one-instance C-MOVE or C-GET.

    Parameters
    ----------
    server : DicomServer
        The server.
    deep : bool, optional
        Run the find and retrieve steps too (default); False runs the echo only.
    timeouts : Timeouts, optional
        Defaults to the server's timeout.
    listen_host : str, optional
        Interface of our storage listener for the C-MOVE step (default: all).
    on_step : callable, optional
        Called with each :class:`StepResult` as soon as it is known; returning False cancels
        the steps not yet run (they are reported as skipped).
    cancel : CancelToken, optional
        Another way to cancel the remaining steps.

    Returns
    -------
    ConnectionTestResult
        One step result per step; ``ok`` only when every step passed.

    Raises
    ------
    ValidationError
        Invalid server fields (misuse).
    """
    require_server_fields(server, NETWORK_FIELDS)
    timeouts = timeouts or Timeouts.for_server(server)
    result = ConnectionTestResult(server.name)
    names = ["echo"] + (
        ["find", "move" if server.retrieve_method == "c-move" else "get"] if deep else []
    )
    stopped = ""

    def add(step: StepResult) -> None:
        nonlocal stopped
        result.steps.append(step)
        if (
            on_step is not None
            and on_step(step) is False
            or cancel is not None
            and cancel.cancelled
        ):
            stopped = "not run: cancelled"
        elif not step.ok and not step.skipped:
            stopped = f"not run: the {step.step} failed"

    add(echo(server, timeouts=timeouts))
    studies: list[str] = []
    if len(names) > 1 and not stopped:
        add(_find_step(server, timeouts, studies))
    if len(names) > 2 and not stopped:
        add(_retrieve_step(server, names[2], studies, timeouts, listen_host))
    for name in names[len(result.steps) :]:
        add(_skipped(name, stopped))
    return result


def test_connection(
    server: DicomServer,
    *,
    deep: bool = True,
    timeouts: Timeouts | None = None,
    listen_host: str = ALL_INTERFACES,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
) -> ConnectionTestResult:
    """The same as :func:`check_connection` (the name the panel's test runner looks for)."""
    return check_connection(
        server,
        deep=deep,
        timeouts=timeouts,
        listen_host=listen_host,
        on_step=on_step,
        cancel=cancel,
    )


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _find_step(server: DicomServer, timeouts: Timeouts, studies: list[str]) -> StepResult:
    """A study-level C-FIND limited to one answer; the study found goes to ``studies``."""
    started = time.monotonic()
    with FindSession(server, [STUDY_ROOT_FIND], timeouts) as session:
        failure = session.failure
        status = None
        if failure is None:
            run = session.find(
                STUDY_ROOT_FIND,
                study_identifier(QueryFilters(), DateRange()),
                lambda match: studies.append(_uid(match, 0x0020000D)),
                limit=1,
            )
            failure, status = run.failure, run.status
    duration = time.monotonic() - started
    if failure is not None:
        return StepResult.failed("find", failure, duration)
    note = "" if studies else "The PACS answered but holds no study."
    return StepResult("find", True, duration, status, note)


def _retrieve_step(
    server: DicomServer,
    step: str,
    studies: list[str],
    timeouts: Timeouts,
    listen_host: str,
) -> StepResult:
    """Retrieve one instance of the study found into a scratch folder."""
    started = time.monotonic()
    target = None
    study_uid = ""
    if studies:
        study_uid = studies[0]
        target = _one_instance(server, study_uid, timeouts)
    if target is None:
        # An empty PACS: nothing to retrieve. (Probing with a study that does not exist
        # proves nothing: Orthanc answers 0xC000 for that and for an unknown destination.)
        method = "C-MOVE" if step == "move" else "C-GET"
        return StepResult(
            step,
            True,
            time.monotonic() - started,
            diagnosis=f"Nothing to retrieve: {method} could not be tried (the PACS holds no image).",
        )
    series_uid, sop_uid = target
    with tempfile.TemporaryDirectory(prefix="dicomservers-test-") as scratch:
        outcome, failure = retrieve_detailed(
            server,
            study_uid,
            Path(scratch),
            series_uids=[series_uid],
            sop_uids=[sop_uid],
            method="c-move" if step == "move" else "c-get",
            timeouts=timeouts,
            max_associations=1,
            listen_host=listen_host,
        )
        if failure is not None and failure.kind == NOT_FOUND:
            failure = Failure(
                STATUS, "The PACS reported success but the image never arrived.", outcome.status
            )
    duration = time.monotonic() - started
    if failure is None:
        return StepResult(step, True, duration, outcome.status)
    return StepResult.failed(step, failure, duration)
