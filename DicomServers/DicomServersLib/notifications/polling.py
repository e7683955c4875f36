"""The polling fallback: find new instances, series and studies by asking the server.

Used when the listener cannot bind its address, or when the server stores new data but no
notification arrives (the plugin is not installed or points elsewhere); see :mod:`.service`.
The same pollers also serve as the listener's watchdog (``resolve=False``: count, do not
describe).

Orthanc (:class:`OrthancChangesPoller`)
    Reads Orthanc's changes log, ``GET /changes?since=N&limit=M``, from the newest entry at
    start on (nothing older is reported): ``NewInstance`` gives instance events,
    ``StableSeries`` and ``StableStudy`` series and study events, as the Lua plugin does.
    UIDs and patient come from ``/instances/{id}``, ``/series/{id}`` and ``/studies/{id}``
    (series and studies are remembered, so a series of 300 images costs 302 requests, not 900).

DICOMweb (:class:`DicomwebStudiesPoller`)
    DICOMweb has no changes feed and QIDO-RS no order: each poll searches the studies dated
    from yesterday on (``StudyDate=yesterday-``) and reports those not seen before as study
    events. Studies with an older StudyDate (a prior arriving late) or none are not seen:
    only the listener reports those.

Every request goes through the REST client of :mod:`DicomServersLib.rest` (one session builder,
explicit timeouts); a failed poll is a value (:class:`PollOutcome` with a diagnosis), never an
exception through the caller.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from DicomServersLib.rest.diagnosis import RestError
from DicomServersLib.rest.dicomweb import DicomwebClient, study_record
from DicomServersLib.rest.orthanc import Change, OrthancClient

from .events import SOURCE_POLLING, NotificationEvent

log = logging.getLogger(__name__)

#: Seconds between two polls by default: modest, a server is not hammered.
DEFAULT_POLL_INTERVAL_S = 5.0

#: Orthanc change types reported, and the event kind each gives.
ORTHANC_CHANGE_KINDS = {"NewInstance": "instance", "StableSeries": "series", "StableStudy": "study"}

#: Change-log entries read per request, and at most per poll (the rest waits for the next).
CHANGES_BATCH = 200
MAX_CHANGES_PER_POLL = 2000

_CACHE_SIZE = 512


@dataclass
class PollOutcome:
    """What one poll found.

    Attributes
    ----------
    events : list of NotificationEvent
        New resources (empty when ``resolve`` was False).
    changes : int
        Relevant changes seen (new instances, stable series or studies; new studies for
        DICOMweb), described or not.
    resume_from : object
        Position before these changes, to :meth:`Poller.rewind` to (read them again).
    ok : bool
        False when the poll failed; ``diagnosis`` says why and what to check.
    diagnosis : str
        Plain-language reason of a failure.
    polled_at : float
        When the poll started (``time.time()``).
    """

    events: list[NotificationEvent] = field(default_factory=list)
    changes: int = 0
    resume_from: Any = None
    ok: bool = True
    diagnosis: str = ""
    polled_at: float = 0.0


class Poller(Protocol):
    """What :class:`PollingWorker` drives."""

    description: str

    def prime(self) -> None:
        """Start from the server's present state (raises :class:`RestError`)."""
        ...

    def poll(self, resolve: bool = True) -> PollOutcome:
        """Return what is new since the last poll (never raises)."""
        ...

    def rewind(self, position: Any) -> None:
        """Make the next poll report again what came after ``position``."""
        ...


def _main_tag(resource: dict[str, Any], name: str, group: str = "MainDicomTags") -> str:
    tags = resource.get(group)
    value = tags.get(name, "") if isinstance(tags, dict) else ""
    return value.strip() if isinstance(value, str) else ""


class OrthancChangesPoller:
    """Polls Orthanc's changes log (``/changes``).

    Parameters
    ----------
    server_name : str
        Name given to the events.
    client : OrthancClient
        The server's REST client.
    clock : callable, optional
        Wall clock for ``received_at``.
    """

    def __init__(
        self,
        server_name: str,
        client: OrthancClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_name = server_name
        self.client = client
        self.clock = clock
        self.description = f"Orthanc changes log of {client.base_url}"
        self.last_seq: int | None = None
        self._series: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        self._studies: OrderedDict[str, tuple[str, str, str, str]] = OrderedDict()

    def prime(self) -> None:
        """Start after the newest entry of the changes log."""
        self.last_seq = self.client.last_change()

    def rewind(self, position: Any) -> None:
        """Read the changes log again from sequence number ``position`` on."""
        if isinstance(position, int):
            self.last_seq = position

    def poll(self, resolve: bool = True) -> PollOutcome:
        """Read the new entries of the changes log (see the module's notes)."""
        outcome = PollOutcome(polled_at=self.clock(), resume_from=self.last_seq)
        try:
            if self.last_seq is None:
                self.prime()
                outcome.resume_from = self.last_seq
                return outcome
            read = 0
            while read < MAX_CHANGES_PER_POLL:
                page = self.client.changes(self.last_seq, CHANGES_BATCH)
                for change in page.changes:
                    kind = ORTHANC_CHANGE_KINDS.get(change.change_type)
                    if kind is not None:
                        outcome.changes += 1
                        event = self._describe(change, kind) if resolve else None
                        if event is not None:
                            outcome.events.append(event)
                    self.last_seq = max(self.last_seq, change.seq)
                read += len(page.changes)
                self.last_seq = max(self.last_seq, page.last)
                if page.done or not page.changes:
                    break
        except RestError as exc:
            outcome.ok = False
            outcome.diagnosis = exc.diagnosis
        return outcome

    # -- describing a change ---------------------------------------------------------------

    def _get(self, path: str) -> dict[str, Any] | None:
        """GET a resource; None when it is gone (deleted since it was logged)."""
        try:
            answer = self.client.get_json(path)
        except RestError as exc:
            if exc.status == 404:
                return None
            raise
        return answer if isinstance(answer, dict) else None

    def _study(self, study_id: str) -> tuple[str, str, str, str] | None:
        cached = self._studies.get(study_id)
        if cached is None:
            study = self._get(f"/studies/{study_id}")
            if study is None:
                return None
            cached = (
                _main_tag(study, "StudyInstanceUID"),
                _main_tag(study, "PatientID", "PatientMainDicomTags"),
                _main_tag(study, "PatientName", "PatientMainDicomTags"),
                _main_tag(study, "StudyDescription"),
            )
            self._remember(self._studies, study_id, cached)
        return cached

    def _series_info(self, series_id: str) -> tuple[str, str, str] | None:
        cached = self._series.get(series_id)
        if cached is None:
            series = self._get(f"/series/{series_id}")
            if series is None:
                return None
            cached = (
                _main_tag(series, "SeriesInstanceUID"),
                _main_tag(series, "Modality"),
                str(series.get("ParentStudy", "")),
            )
            self._remember(self._series, series_id, cached)
        return cached

    @staticmethod
    def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)

    def _describe(self, change: Change, kind: str) -> NotificationEvent | None:
        sop_uid = ""
        series_id = study_id = ""
        if kind == "instance":
            instance = self._get(f"/instances/{change.resource_id}")
            if instance is None:
                return None
            sop_uid = _main_tag(instance, "SOPInstanceUID")
            series_id = str(instance.get("ParentSeries", ""))
        elif kind == "series":
            series_id = change.resource_id
        else:
            study_id = change.resource_id
        series_uid = modality = ""
        if series_id:
            series = self._series_info(series_id)
            if series is None:
                return None
            series_uid, modality, study_id = series
        study = self._study(study_id)
        if study is None:
            return None
        study_uid, patient_id, patient_name, description = study
        return NotificationEvent(
            server=self.server_name,
            kind=kind,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_instance_uid=sop_uid,
            patient_id=patient_id,
            patient_name=patient_name,
            study_description=description,
            modality=modality if kind != "study" else "",
            resource_id=change.resource_id,
            received_at=self.clock(),
            source=SOURCE_POLLING,
        )


class DicomwebStudiesPoller:
    """Polls a DICOMweb server for studies dated from yesterday on that were not seen before.

    Parameters
    ----------
    server_name : str
        Name given to the events.
    client : DicomwebClient
        The server's DICOMweb client.
    window_days : int, optional
        How many days back the search reaches (1: yesterday and today).
    limit : int, optional
        Most studies asked for per search.
    clock, today : callable, optional
        Wall clock and today's date (injected by tests).
    """

    def __init__(
        self,
        server_name: str,
        client: DicomwebClient,
        *,
        window_days: int = 1,
        limit: int = 1000,
        clock: Callable[[], float] = time.time,
        today: Callable[[], _dt.date] = _dt.date.today,
    ) -> None:
        self.server_name = server_name
        self.client = client
        self.window_days = window_days
        self.limit = limit
        self.clock = clock
        self.today = today
        self.description = f"DICOMweb studies of {client.base_url} dated from yesterday on"
        self.seen: set[str] | None = None

    def _search(self) -> list[dict[str, Any]]:
        since = self.today() - _dt.timedelta(days=self.window_days)
        page = self.client.search_studies({"StudyDate": f"{since:%Y%m%d}-"}, limit=self.limit)
        return [item for item in page.items if isinstance(item, dict)]

    def prime(self) -> None:
        """Remember the studies the server holds now (they are not reported)."""
        self.seen = {study_record(item).study_uid for item in self._search()}

    def rewind(self, position: Any) -> None:
        """Forget the studies seen after ``position`` (a set of UIDs seen before)."""
        if isinstance(position, (set, frozenset)):
            self.seen = set(position)

    def poll(self, resolve: bool = True) -> PollOutcome:
        """Search again and report the studies not seen before."""
        outcome = PollOutcome(polled_at=self.clock())
        try:
            if self.seen is None:
                self.prime()
                outcome.resume_from = set(self.seen or ())
                return outcome
            outcome.resume_from = set(self.seen)
            for item in self._search():
                record = study_record(item)
                if not record.study_uid or record.study_uid in self.seen:
                    continue
                self.seen.add(record.study_uid)
                outcome.changes += 1
                if resolve:
                    outcome.events.append(
                        NotificationEvent(
                            server=self.server_name,
                            kind="study",
                            study_uid=record.study_uid,
                            patient_id=record.patient_id,
                            patient_name=record.patient_name,
                            study_description=record.study_description,
                            received_at=self.clock(),
                            source=SOURCE_POLLING,
                        )
                    )
        except RestError as exc:
            outcome.ok = False
            outcome.diagnosis = exc.diagnosis
        return outcome


class PollingWorker:
    """Runs a poller on a background thread every ``interval_s`` seconds.

    Parameters
    ----------
    poller : Poller
        What to poll.
    deliver : callable
        Receives each event while :attr:`emit` is True (must not block).
    interval_s : float, optional
        Seconds between polls.
    on_outcome : callable, optional
        Called on the worker thread after every poll (the service's watchdog and status).
    emit : bool, optional
        False polls without describing or delivering (watchdog of a listener).
    """

    def __init__(
        self,
        poller: Poller,
        deliver: Callable[[NotificationEvent], bool],
        *,
        interval_s: float = DEFAULT_POLL_INTERVAL_S,
        on_outcome: Callable[[PollOutcome], None] | None = None,
        emit: bool = True,
    ) -> None:
        self.poller = poller
        self.deliver = deliver
        self.interval_s = interval_s
        self.on_outcome = on_outcome
        self.emit = emit
        self.last_outcome: PollOutcome | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling (the first poll primes the poller: nothing older is reported)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"DicomServers poll {self.poller.description}", daemon=True
        )
        self._thread.start()

    def poll_now(self) -> None:
        """Poll at once instead of at the end of the interval."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the poll under way (each request has its own timeout)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.poller.poll(resolve=self.emit)
            except Exception as exc:  # a bug must not end polling silently
                log.exception("polling %s failed", self.poller.description)
                outcome = PollOutcome(ok=False, diagnosis=f"Polling failed: {exc}")
            self.last_outcome = outcome
            if self.emit:
                for event in outcome.events:
                    self.deliver(event)
            if self.on_outcome is not None:
                try:
                    self.on_outcome(outcome)
                except Exception:
                    log.exception("notification status update failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()
