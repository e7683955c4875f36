"""Retrieve a study, series or instances with C-GET or C-MOVE (PS3.4 C.4.3 / C.4.2).

How a retrieve runs:

1. A survey on one association (C-FIND, :mod:`.find`): the study's series with their
   instance counts; for series of which some files are already on disk, their instances
   (so those can be skipped); for C-GET, the study's SOP classes (SOPClassesInStudy) to
   propose storage contexts for. A series with nothing on disk is requested whole (SERIES
   level); a partly present one instance by instance (IMAGE level with a list of SOP Instance
   UIDs, PS3.4 C.4.2.2.1), so a rerun after a failure or a cancel fetches only what is
   missing. When the survey is impossible, the study or series is requested whole.
2. The requests run on up to ``max_associations`` associations in parallel (one per series,
   a large partly-present series split in parts), with the server's ``retrieve_method``:
   C-GET (instances come back on the same association, PS3.4 C.4.3.3) or C-MOVE to our own
   storage listener (:mod:`.storage_scp`).
3. Each instance is written as received, never decoded and re-encoded, atomically, under
   ``<dest>/<Study>/<Series>/<SOP>.dcm`` from validated UIDs (:mod:`.instance_store`).

The associations are :class:`~.upper_layer.DirectAssociation` objects: each request's PDUs are
read in its own thread and each C-STORE answered at once, which keeps up with DCMTK's
``getscu`` (pynetdicom's three-thread pipeline spends milliseconds per instance in hand-overs,
see ``bench/retrieve_dimse.py``).

A progress callback hears completed / remaining / failed / warning sub-operations and bytes;
returning False cancels: C-CANCEL is sent on every association, which is aborted if the PACS
has not stopped within :data:`CANCEL_GRACE_S`. The connection timeout, the idle timeout
(longest silence of the PACS) and the overall timeout are explicit (:class:`Timeouts`). A PACS
killed mid-transfer leaves no partial file: only complete data sets are ever written, and
under a temporary name until they are whole on disk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from DicomServersLib.dicom_files import (
    UnsafeUIDError,
    check_uid,
    instance_path,
    present_by_series,
)
from DicomServersLib.dimse import commands, diagnosis, outcome
from DicomServersLib.dimse.association import Timeouts, diagnose_direct, open_direct
from DicomServersLib.dimse.contexts import (
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    common_storage_sop_classes,
    get_storage_contexts,
)
from DicomServersLib.dimse.elements import tag
from DicomServersLib.dimse.find import STUDY_ROOT_FIND, FindSession, Match
from DicomServersLib.dimse.instance_store import (
    InstanceWriter,
    ReceivedInstance,
    UnreadableInstanceError,
)
from DicomServersLib.dimse.outcome import Failure
from DicomServersLib.dimse.query import NETWORK_FIELDS, require_server_fields
from DicomServersLib.dimse.storage_scp import (
    ALL_INTERFACES,
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    Route,
    acquire_listener,
    next_move_message_id,
    release_listener,
)
from DicomServersLib.dimse.upper_layer import (
    DirectAssociation,
    Message,
    ProtocolError,
    RequestedContext,
    UpperLayerError,
)
from DicomServersLib.progress import Progress, ProgressCallback
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import RetrieveResult
from DicomServersLib.validation import ValidationError

__all__ = [
    "CANCEL_GRACE_S",
    "STUDY_ROOT_GET",
    "STUDY_ROOT_MOVE",
    "retrieve",
    "retrieve_detailed",
]

STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
"""Study Root Query/Retrieve Information Model - GET (PS3.4 C.6.2.1)."""

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
"""Study Root Query/Retrieve Information Model - MOVE (PS3.4 C.6.2.1)."""

CANCEL_GRACE_S = 5.0
"""Seconds a PACS has to stop after C-CANCEL before the association is aborted."""

PROGRESS_INTERVAL_S = 0.05
"""The progress callback is told at most this often while instances arrive."""

HEARTBEAT_S = 0.25
"""How often the progress callback is asked (to notice a cancel) when nothing arrives."""

SPLIT_SERIES_AT = 200
"""A partly present series missing more instances than this is split across associations."""

SUCCESS = 0x0000
_SERIES_UID = tag(0x0020, 0x000E)
_SOP_UID = tag(0x0008, 0x0018)
_SOP_CLASS = tag(0x0008, 0x0016)
_SOP_CLASSES_IN_STUDY = tag(0x0008, 0x0062)
_SERIES_INSTANCES = tag(0x0020, 0x1209)


@dataclass
class _Job:
    """One C-GET or C-MOVE request and its state while it runs."""

    level: str  # STUDY, SERIES or IMAGE
    series_uid: str = ""
    sop_uids: list[str] = field(default_factory=list)
    expected: int | None = None
    assoc: DirectAssociation | None = None
    message_id: int = 1
    context_id: int | None = None
    cancel_sent: bool = False
    aborted_by_us: bool = False
    remaining: int | None = None
    status: int | None = None
    failure: Failure | None = None
    server_failed: int = 0
    server_warning: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def identifier(self, study_uid: str) -> Dataset:
        """The C-GET/C-MOVE identifier (PS3.4 C.4.2.1.4)."""
        ds = Dataset()
        ds.QueryRetrieveLevel = self.level
        ds.StudyInstanceUID = study_uid
        if self.level in ("SERIES", "IMAGE"):
            ds.SeriesInstanceUID = self.series_uid
        if self.level == "IMAGE":
            ds.SOPInstanceUID = self.sop_uids if len(self.sop_uids) > 1 else self.sop_uids[0]
        return ds


@dataclass
class _Plan:
    """What to request, and what should be on disk afterwards."""

    jobs: list[_Job] = field(default_factory=list)
    skipped: int = 0
    sop_classes: list[str] = field(default_factory=list)
    wanted: dict[str, set[str]] = field(default_factory=dict)  # series → SOP UIDs, if listed
    expected: dict[str, int] = field(default_factory=dict)  # series → instance count, if known
    surveyed: bool = False
    found: bool | None = None  # False: the PACS lists no series for the request

    @property
    def planned(self) -> int | None:
        """Instances requested, when every job's size is known."""
        sizes = [job.expected for job in self.jobs]
        return None if any(size is None for size in sizes) else sum(s or 0 for s in sizes)


# -- survey and plan --------------------------------------------------------------------------


def _series_query(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.NumberOfSeriesRelatedInstances = None
    return ds


def _instance_query(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    return ds


def _study_query(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    ds.SOPClassesInStudy = ""
    return ds


def _text(match: Match, element_tag: int) -> str:
    found = match.elements.get(element_tag)
    return match.decoder.ascii(found[1]) if found else ""


def _survey(
    server: DicomServer,
    study_uid: str,
    series_list: list[str],
    sop_list: list[str],
    dest: Path,
    method: str,
    timeouts: Timeouts,
    max_associations: int,
) -> tuple[_Plan, Failure | None]:
    """Ask the PACS what the request holds and plan the jobs (see the module docstring)."""
    plan = _Plan()
    present = present_by_series(dest, study_uid)
    with FindSession(server, [STUDY_ROOT_FIND], timeouts) as session:
        if session.failure is not None:
            return plan, session.failure
        counts: dict[str, int | None] = {}

        def on_series(match: Match) -> None:
            uid = _text(match, _SERIES_UID)
            text = _text(match, _SERIES_INSTANCES)
            counts[uid] = int(text) if text.isdigit() else None

        run = session.find(STUDY_ROOT_FIND, _series_query(study_uid), on_series)
        if not run.ok or run.cut_off or session.assoc is None:
            return plan, None
        wanted_series = series_list or list(counts)
        if not counts or any(uid not in counts for uid in wanted_series):
            plan.found = False  # not listed: still request it (C-FIND may be restricted)
            return plan, None
        classes: set[str] = set()
        for series_uid in wanted_series:
            have = present.get(series_uid, set())
            count = counts[series_uid]
            if not have and not sop_list:
                plan.jobs.append(_Job("SERIES", series_uid, expected=count))
                if count is not None:
                    plan.expected[series_uid] = count
                continue
            listed: list[tuple[str, str]] = []

            def on_instance(match: Match, listed: list[tuple[str, str]] = listed) -> None:
                listed.append((_text(match, _SOP_UID), _text(match, _SOP_CLASS)))

            run = session.find(STUDY_ROOT_FIND, _instance_query(study_uid, series_uid), on_instance)
            if not run.ok or run.cut_off or session.assoc is None:
                return _Plan(), None
            if count is not None and len(listed) < count:
                return _Plan(), None  # the PACS limits instance answers: cannot trust the list
            uids = [uid for uid, _ in listed if not sop_list or uid in sop_list]
            classes.update(sop_class for uid, sop_class in listed if sop_class)
            plan.wanted[series_uid] = set(uids)
            missing = [uid for uid in uids if uid not in have]
            plan.skipped += len(uids) - len(missing)
            parts = 1
            if max_associations > 1 and len(wanted_series) == 1 and len(missing) > SPLIT_SERIES_AT:
                parts = max_associations
            size = max(1, -(-len(missing) // parts))
            for start in range(0, len(missing), size):
                chunk = missing[start : start + size]
                plan.jobs.append(_Job("IMAGE", series_uid, chunk, expected=len(chunk)))
        if method == "c-get":
            found: list[str] = []
            run = session.find(
                STUDY_ROOT_FIND,
                _study_query(study_uid),
                lambda match: found.extend(
                    v for v in _text(match, _SOP_CLASSES_IN_STUDY).split("\\") if v
                ),
            )
            classes.update(found)
        plan.sop_classes = sorted(classes)
        plan.surveyed = True
    return plan, None


def _blind_plan(series_list: list[str], sop_list: list[str]) -> _Plan:
    """Jobs when the PACS cannot tell what the study holds: request it whole."""
    if sop_list:
        return _Plan(jobs=[_Job("IMAGE", series_list[0], sop_list)])
    if series_list:
        return _Plan(jobs=[_Job("SERIES", uid) for uid in series_list])
    return _Plan(jobs=[_Job("STUDY")])


# -- the shared state of one retrieve -------------------------------------------------------


class _Run:
    """Counters, writer, progress and cancel of one retrieve."""

    def __init__(
        self,
        server: DicomServer,
        study_uid: str,
        dest: Path,
        plan: _Plan,
        progress: ProgressCallback | None,
        timeouts: Timeouts,
    ) -> None:
        self.server = server
        self.study_uid = study_uid
        self.dest = dest
        self.plan = plan
        self.jobs = plan.jobs
        self.planned = plan.planned
        self.progress = progress
        self.timeouts = timeouts
        self.writer = InstanceWriter()
        self.lock = threading.Lock()
        self.progress_lock = threading.Lock()
        self.cancelled = threading.Event()
        self.overall_expired = threading.Event()
        self.received = 0
        self.refused = 0
        self.unsafe: list[str] = []
        self.bytes = 0
        self.last_report = 0.0
        self.local_host: str | None = None

    def snapshot(self) -> Progress:
        """Where the retrieve stands."""
        with self.lock:
            # The PACS counts our refusals among its failed sub-operations.
            failed = max(self.refused, sum(job.server_failed for job in self.jobs))
            warning = sum(job.server_warning for job in self.jobs)
            remaining: int | None = None
            if self.planned is not None:
                remaining = max(0, self.planned - self.received - failed)
            elif all(job.remaining is not None for job in self.jobs):
                remaining = sum(job.remaining or 0 for job in self.jobs)
            total = "" if self.planned is None else f"/{self.planned}"
            return Progress(
                completed=self.received,
                remaining=remaining,
                failed=failed,
                warning=warning,
                bytes_done=self.bytes,
                message=f"{self.received}{total} images",
            )

    def report(self, force: bool = False) -> None:
        """Tell the progress callback (at most every PROGRESS_INTERVAL_S); False cancels."""
        if self.progress is None or self.cancelled.is_set():
            return
        now = time.monotonic()
        if not force and now - self.last_report < PROGRESS_INTERVAL_S:
            return
        with self.progress_lock:
            self.last_report = now
            keep_going = self.progress(self.snapshot()) is not False
        if not keep_going:
            self.cancel()

    def cancel(self) -> None:
        """Cancel every running request (C-CANCEL, then abort after the grace period)."""
        self.cancelled.set()
        for job in self.jobs:
            _send_cancel(job)

    def accept(self, instance: ReceivedInstance) -> int:
        """Write one received instance; return the C-STORE status to answer."""
        if instance.study_uid != self.study_uid:
            with self.lock:
                self.refused += 1
            return CANNOT_UNDERSTAND
        try:
            path = instance_path(
                self.dest, instance.study_uid, instance.series_uid, instance.sop_uid
            )
        except UnsafeUIDError as error:
            with self.lock:
                self.refused += 1
                self.unsafe.append(str(error))
            return CANNOT_UNDERSTAND
        if self.writer.failed:
            with self.lock:
                self.refused += 1
            return OUT_OF_RESOURCES
        self.writer.submit(path, (instance.meta, instance.data))
        with self.lock:
            self.received += 1
            self.bytes += instance.size
        self.report()
        return SUCCESS


def _send_cancel(job: _Job) -> None:
    """Send C-CANCEL for a job once, and abort it if the PACS ignores it."""
    with job.lock:
        assoc = job.assoc
        if assoc is None or job.cancel_sent or job.context_id is None:
            return
        job.cancel_sent = True
    try:
        assoc.send_message(job.context_id, commands.cancel_rq(job.message_id))
    except UpperLayerError:
        return

    def abort_if_running() -> None:
        with job.lock:
            running = job.assoc is assoc
            if running:
                job.aborted_by_us = True
        if running:
            assoc.abort()

    timer = threading.Timer(CANCEL_GRACE_S, abort_if_running)
    timer.daemon = True
    timer.start()


def _abort(job: _Job) -> None:
    with job.lock:
        assoc = job.assoc
        if assoc is None:
            return
        job.aborted_by_us = True
    assoc.abort()


# -- C-GET and C-MOVE -----------------------------------------------------------------------


def _run_job(run: _Run, job: _Job, method: str, listen_host: str) -> None:
    """Run one C-GET or C-MOVE job to the end; its outcome is left in ``job``."""
    if run.cancelled.is_set():
        return
    if method == "c-get":
        classes = run.plan.sop_classes or common_storage_sop_classes()
        contexts = [RequestedContext(STUDY_ROOT_GET, UNCOMPRESSED_TRANSFER_SYNTAXES)]
        contexts += get_storage_contexts(classes, budget=127)
        _request(run, job, "C-GET", STUDY_ROOT_GET, contexts)
        return
    server = run.server
    try:
        listener = acquire_listener(server, bind_host=listen_host, timeouts=run.timeouts)
    except OSError as error:
        job.failure = diagnosis.storage_port_busy(server, error)
        return
    job.message_id = next_move_message_id()
    route = Route(
        study_uid=run.study_uid,
        series_uids=frozenset([job.series_uid]) if job.series_uid else None,
        sop_uids=frozenset(job.sop_uids) if job.sop_uids else None,
        originator_ae_title=server.calling_ae_title,
        message_id=job.message_id,
        accept=run.accept,
    )
    listener.add_route(route)
    try:
        contexts = [RequestedContext(STUDY_ROOT_MOVE, UNCOMPRESSED_TRANSFER_SYNTAXES)]
        _request(run, job, "C-MOVE", STUDY_ROOT_MOVE, contexts)
    finally:
        listener.remove_route(route)
        release_listener(listener)


def _request(
    run: _Run, job: _Job, service: str, model: str, contexts: Sequence[RequestedContext]
) -> None:
    """Open an association, send the C-GET/C-MOVE and handle everything that comes back."""
    server, timeouts = run.server, run.timeouts
    assoc, failure = open_direct(
        server, contexts, timeouts=timeouts, service=service, required=[model]
    )
    if assoc is None:
        job.failure = failure
        return
    run.local_host = run.local_host or assoc.local_host
    context = assoc.context_for(model)
    assert context is not None
    if service == "C-GET" and len(assoc.accepted) < 2:
        assoc.release()
        job.failure = diagnosis.service_not_supported(
            server, "C-GET", " (it accepted none of the image types on our connection)"
        )
        return
    job.context_id = context.context_id
    with job.lock:
        job.assoc = assoc
    if run.cancelled.is_set():
        _send_cancel(job)
    data = encode(job.identifier(run.study_uid), not context.explicit_vr, True)
    if service == "C-GET":
        command = commands.get_rq(model, job.message_id)
    else:
        command = commands.move_rq(model, job.message_id, server.move_destination_ae_title)
    expected_response = commands.C_GET_RSP if service == "C-GET" else commands.C_MOVE_RSP
    try:
        assoc.send_message(context.context_id, command, data)
        while True:
            message = assoc.receive_message()
            field_ = message.command_field
            if field_ == commands.C_STORE_RQ and service == "C-GET":
                status = _store(run, assoc, message)
                assoc.send_message(message.context_id, commands.store_rsp(message, status))
                continue
            if field_ != expected_response:
                raise ProtocolError(f"unexpected command 0x{field_ or 0:04X} during {service}")
            if _response(run, job, service, message, assoc.local_host):
                break
    except UpperLayerError as error:
        if not job.aborted_by_us:
            job.failure = diagnose_direct(server, error, service, timeouts, assoc.local_host)
        assoc.abort()  # a silent or broken peer would not answer A-RELEASE either
    finally:
        with job.lock:
            job.assoc = None
        if not assoc.closed:
            assoc.release()


def _store(run: _Run, assoc: DirectAssociation, message: Message) -> int:
    """Handle one C-STORE-RQ of a C-GET."""
    context = assoc.accepted.get(message.context_id)
    if context is None:
        return CANNOT_UNDERSTAND
    try:
        instance = ReceivedInstance.from_message(
            message, context.transfer_syntax, assoc.peer_ae_title
        )
    except UnreadableInstanceError:
        with run.lock:
            run.refused += 1
        return CANNOT_UNDERSTAND
    return run.accept(instance)


def _response(run: _Run, job: _Job, service: str, message: Message, local_host: str | None) -> bool:
    """Handle a C-GET/C-MOVE-RSP; return True when it is the final one."""
    status = message.status
    if status is None:
        raise ProtocolError(f"{service} response without a status")
    remaining, _, failed, warning = commands.sub_operation_counts(message)
    with run.lock:
        if remaining is not None:
            job.remaining = remaining
        if failed is not None:
            job.server_failed = failed
        if warning is not None:
            job.server_warning = warning
    category = diagnosis.status_category(status)
    if category == diagnosis.CATEGORY_PENDING:
        run.report()
        return False
    job.status = status
    if category == diagnosis.CATEGORY_FAILURE:
        job.failure = diagnosis.status_failure(
            run.server,
            service,
            status,
            message.text(0x0902),
            local_host,
            job.server_failed,
            received=run.received,
        )
    return True


# -- the retrieve ---------------------------------------------------------------------------


def _check_request(
    server: DicomServer,
    study_uid: str,
    series_uids: Sequence[str],
    sop_uids: Sequence[str],
    method: str,
    max_associations: int,
) -> None:
    fields = list(NETWORK_FIELDS)
    if method == "c-move":
        fields += ["move_destination_ae_title", "storage_port"]
    require_server_fields(server, fields)
    errors = []
    for name, values in (
        ("study_uid", [study_uid]),
        ("series_uids", series_uids),
        ("sop_uids", sop_uids),
    ):
        for value in values:
            ok, reason = check_uid(value)
            if not ok:
                errors.append((name, f"{name}: {reason}"))
    if sop_uids and len(series_uids) != 1:
        errors.append(("sop_uids", "sop_uids: name exactly one series with the instances"))
    if method not in ("c-get", "c-move"):
        errors.append(("method", f"method: must be c-get or c-move, got {method!r}"))
    if max_associations < 1:
        errors.append(("max_associations", "max_associations: must be 1 or more"))
    if errors:
        raise ValidationError(errors)


def retrieve(
    server: DicomServer,
    study_uid: str,
    dest: str | Path,
    *,
    series_uids: Iterable[str] = (),
    sop_uids: Iterable[str] = (),
    method: str | None = None,
    progress: ProgressCallback | None = None,
    timeouts: Timeouts | None = None,
    max_associations: int = 2,
    listen_host: str = ALL_INTERFACES,
) -> RetrieveResult:
    """Retrieve a study, some of its series, or some instances of one series.

    Parameters
    ----------
    server : DicomServer
        The server; ``retrieve_method`` chooses C-GET or C-MOVE unless ``method`` is given.
    study_uid : str
        The study.
    dest : str or pathlib.Path
        Destination folder; files go to ``<dest>/<Study>/<Series>/<SOP>.dcm``.
    series_uids : iterable of str, optional
        Only these series.
    sop_uids : iterable of str, optional
        Only these instances (of the single series in ``series_uids``).
    method : str, optional
        ``c-get`` or ``c-move``, overriding the server's.
    progress : ProgressCallback, optional
        Told completed / remaining / failed / warning and bytes; returning False cancels.
    timeouts : Timeouts, optional
        Connection, idle and overall timeouts; defaults to the server's timeout (no overall).
    max_associations : int, optional
        Parallel associations (one per series, or parts of a large series), at least 1.
    listen_host : str, optional
        Interface our C-MOVE storage listener binds (default: all).

    Returns
    -------
    RetrieveResult
        What arrived, what was skipped, what failed, and a diagnosis when not ok. ``files``
        lists every file of the request now on disk.

    Raises
    ------
    ValidationError
        Invalid UIDs, method or server fields (misuse).
    """
    return retrieve_detailed(
        server,
        study_uid,
        dest,
        series_uids=series_uids,
        sop_uids=sop_uids,
        method=method,
        progress=progress,
        timeouts=timeouts,
        max_associations=max_associations,
        listen_host=listen_host,
    )[0]


def retrieve_detailed(
    server: DicomServer,
    study_uid: str,
    dest: str | Path,
    *,
    series_uids: Iterable[str] = (),
    sop_uids: Iterable[str] = (),
    method: str | None = None,
    progress: ProgressCallback | None = None,
    timeouts: Timeouts | None = None,
    max_associations: int = 2,
    listen_host: str = ALL_INTERFACES,
) -> tuple[RetrieveResult, Failure | None]:
    """:func:`retrieve`, also returning the :class:`~.outcome.Failure` (its kind) if any."""
    method = method or server.retrieve_method
    series_list = list(dict.fromkeys(series_uids))
    sop_list = list(dict.fromkeys(sop_uids))
    _check_request(server, study_uid, series_list, sop_list, method, max_associations)
    timeouts = timeouts or Timeouts.for_server(server)
    started = time.monotonic()
    deadline = None if timeouts.overall_s is None else started + timeouts.overall_s
    dest = Path(dest)
    result = RetrieveResult(method=method)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        local = diagnosis.local_failure(
            f"Cannot use the destination folder {dest}: {error.strerror or error}.", error
        )
        return _finish(result, local, started)
    plan, failure = _survey(
        server, study_uid, series_list, sop_list, dest, method, timeouts, max_associations
    )
    if failure is not None and failure.kind in (
        outcome.HOST_UNKNOWN,
        outcome.REFUSED,
        outcome.CONNECT_TIMEOUT,
        outcome.UNREACHABLE,
        outcome.NO_ANSWER,
        outcome.REJECTED,
    ):
        return _finish(result, failure, started)
    if not plan.surveyed:
        found = plan.found
        plan = _blind_plan(series_list, sop_list)
        plan.found = found
    result.skipped = plan.skipped
    run = _Run(server, study_uid, dest, plan, progress, timeouts)
    try:
        if plan.jobs:
            _run_jobs(run, method, listen_host, max_associations, deadline)
    finally:
        run.writer.close()
    if run.progress is not None and not run.cancelled.is_set():
        run.progress(run.snapshot())  # the final count (its answer no longer matters)
    return _collect(run, result, series_list, started)


def _run_jobs(
    run: _Run, method: str, listen_host: str, max_associations: int, deadline: float | None
) -> None:
    """Run the jobs in parallel while watching for cancel and the overall deadline."""
    run.report(force=True)
    workers = min(max_associations, len(run.jobs))
    with ThreadPoolExecutor(workers, thread_name_prefix="DicomServers-retrieve") as pool:
        futures: list[Future[None]] = [
            pool.submit(_run_job, run, job, method, listen_host) for job in run.jobs
        ]
        while True:
            running = [future for future in futures if not future.done()]
            if not running:
                break
            try:
                wait(running, timeout=HEARTBEAT_S, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Ctrl-C (CLI, console): cancel properly; a second one aborts at once.
                if run.cancelled.is_set():
                    for job in run.jobs:
                        _abort(job)
                else:
                    run.cancel()
                continue
            if deadline is not None and time.monotonic() > deadline:
                if not run.overall_expired.is_set():
                    run.overall_expired.set()
                    run.cancelled.set()
                    for job in run.jobs:
                        _abort(job)
            elif not run.cancelled.is_set():
                run.report()
        for future in futures:
            future.result()


def _collect(
    run: _Run, result: RetrieveResult, series_list: list[str], started: float
) -> tuple[RetrieveResult, Failure | None]:
    """Gather the jobs' outcomes and what is on disk into the result."""
    server, plan, jobs = run.server, run.plan, run.jobs
    result.received = len(run.writer.written)
    result.bytes_received = run.writer.bytes_written
    result.warning = sum(job.server_warning for job in jobs)
    server_failed = sum(job.server_failed for job in jobs)
    result.failed = max(run.refused, server_failed) + len(run.writer.errors)
    statuses = [job.status for job in jobs if job.status is not None]
    result.status = next((s for s in statuses if s != SUCCESS), statuses[-1] if statuses else None)
    on_disk = present_by_series(run.dest, run.study_uid)
    missing = 0
    for series_uid, uids in plan.wanted.items():
        missing += len(uids - on_disk.get(series_uid, set()))
    for series_uid, count in plan.expected.items():
        missing += max(0, count - len(on_disk.get(series_uid, set())))
    result.files = _files(run.dest, run.study_uid, series_list, plan, on_disk)
    failure: Failure | None
    if run.overall_expired.is_set() and run.timeouts.overall_s is not None:
        failure = diagnosis.timed_out(server, "The retrieve", run.timeouts.overall_s, overall=True)
    elif run.cancelled.is_set():
        result.cancelled = True
        failure = diagnosis.cancelled("The retrieve")
    else:
        failure = next((job.failure for job in jobs if job.failure is not None), None)
    if failure is None and run.writer.errors:
        _, error = run.writer.errors[0]
        failure = diagnosis.local_failure(
            f"Could not write {len(run.writer.errors)} image(s) to {run.dest}"
            f" ({error.strerror or error}). Free some disk space or choose another folder;"
            " a new attempt fetches only what is missing.",
            error,
        )
    if failure is None and run.unsafe:
        failure = diagnosis.protocol_error(
            server, "the retrieve", f"{len(run.unsafe)} image(s) with invalid UIDs were refused"
        )
    if failure is None and result.failed:
        failure = diagnosis.status_failure(
            server,
            "C-GET" if result.method == "c-get" else "C-MOVE",
            diagnosis.SUB_OPERATIONS_WARNING,
            local_host=run.local_host,
            failed=result.failed,
        )
    nothing = not result.files and not result.received
    if nothing and plan.found is False and (failure is None or failure.kind == outcome.STATUS):
        # Orthanc answers 0xC000 to a retrieve of something it does not hold.
        failure = None
    if failure is None and nothing:
        failure = Failure(
            outcome.NOT_FOUND,
            f"The PACS sent nothing: it holds no study {run.study_uid}"
            + (" with the series or images asked for." if series_list else "."),
            status=result.status,
        )
    if failure is None and missing:
        failure = Failure(
            outcome.STATUS,
            f"{missing} image(s) did not arrive although the PACS reported success. Retry; if"
            " it persists, ask the PACS administrator.",
            status=result.status,
        )
    return _finish(result, failure, started)


def _files(
    dest: Path,
    study_uid: str,
    series_list: list[str],
    plan: _Plan,
    on_disk: dict[str, set[str]],
) -> list[Path]:
    """Every file of the request now on disk."""
    series = series_list or list(on_disk)
    files: list[Path] = []
    for series_uid in series:
        uids = on_disk.get(series_uid, set())
        if series_uid in plan.wanted:
            uids = uids & plan.wanted[series_uid]
        files.extend(dest / study_uid / series_uid / f"{uid}.dcm" for uid in uids)
    return sorted(files)


def _finish(
    result: RetrieveResult, failure: Failure | None, started: float
) -> tuple[RetrieveResult, Failure | None]:
    if failure is not None:
        result.ok = False
        result.diagnosis = failure.diagnosis
        if failure.status is not None:
            result.status = failure.status
    result.duration_s = time.monotonic() - started
    return result, failure
