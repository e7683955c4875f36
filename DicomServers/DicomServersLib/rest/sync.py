"""Keeping a server's cached study list up to date: incremental or complete refresh.

The decision (the spec's *PACS Cache Threshold*): measure how far the server has moved since
the last sync; if that difference is at most ``cache_threshold`` studies, fetch only what
changed (incremental); above it, or when the cache cannot be trusted, reload the whole list.

**Orthanc.** The cache keeps the changes-log position (``/changes`` ``Last``) and the server's
study count (``/statistics`` CountStudies) of its last sync. A refresh reads the log from that
position, collecting the studies with a ``NewStudy`` / ``StableStudy`` / ``ModifiedStudy``
entry, and stops as soon as more than the threshold have changed. Orthanc logs no entry for a
deletion (it even removes the deleted study's own entries), so deletions are found by counting:
``expected = synced count + new studies``; when CountStudies differs, the study identifiers are
listed (``/tools/find`` without ``Expand``, identifiers only) and the cached ones that vanished
are removed. The difference is the number of changed studies plus the number of deleted ones.

**DICOMweb.** There is no changes log and no count, so the cache keeps a date window: the
study dates from the day before the last sync on. A refresh asks QIDO-RS for the studies of that
window, with a ``limit`` of the cached studies in it plus the threshold plus one: more answers
than that means more than the threshold changed (complete refresh); otherwise new studies are
added, studies of the window that are gone are removed, and the others updated. Studies stored
with an older date, and deletions of older studies, are only seen by a complete refresh, which
is therefore done at least once a day (``dicomweb_full_after_s``).

**REST limit** (``rest_limit``, 0 = all): the list holds the server's most recent studies by
study date and time. Orthanc 1.10 has no ``OrderBy`` in ``/tools/find`` and QIDO-RS has no
order at all, so the most recent N are found with study-date windows walked back from today:
7 days, then the 14 days before, then 28... (each window a server-side ``StudyDate`` range
query, so no study is fetched twice) until N studies are found or the date filter's start (or
the beginning of time) is reached; the studies found are sorted locally and the first N kept.
Undated studies sort last and are only listed when fewer than N dated ones exist. When a
deletion leaves a limited list short, the walk continues below its oldest study to refill it.

**Date filter**: the server's own filter (``date_filter``) goes to the server as a StudyDate
range in every request; cached studies that fall out of a relative window are dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from DicomServersLib.date_filters import DateRange, server_date_range
from DicomServersLib.progress import Progress, ProgressCallback, report
from DicomServersLib.query_model import StudyRecord
from DicomServersLib.rest.cache import (
    MODE_FULL,
    MODE_INCREMENTAL,
    MODE_UNCHANGED,
    StudyCache,
    SyncState,
    sort_key,
)
from DicomServersLib.rest.diagnosis import MALFORMED_ANSWER, RestError, malformed_answer
from DicomServersLib.rest.dicomweb import DicomwebClient, iter_pages
from DicomServersLib.rest.dicomweb import study_record as dicomweb_study
from DicomServersLib.rest.orthanc import STUDY_CHANGES, OrthancClient
from DicomServersLib.rest.orthanc import study_record as orthanc_study
from DicomServersLib.rest.session import build_session, rest_base_url
from DicomServersLib.server import DicomServer

#: Cut-off reason of a list that holds only the most recent ``rest_limit`` studies.
CUT_OFF_REST_LIMIT = "rest_limit"

#: First study-date window of the REST-limit walk, in days; each next window is twice as long.
FIRST_WINDOW_DAYS = 7
#: Below this date the walk asks for everything older at once.
EARLIEST_DATE = dt.date(1900, 1, 1)
#: Changes-log entries read at most before giving up on an incremental refresh.
MAX_CHANGES_SCANNED = 200_000
#: DICOMweb: days before the last sync that an incremental refresh reads again.
DICOMWEB_WINDOW_MARGIN_DAYS = 1
#: DICOMweb: a complete refresh at least this often (seconds), to see deletions of old studies.
DICOMWEB_FULL_AFTER_S = 24 * 3600.0
#: QIDO-RS page size for complete lists.
QIDO_PAGE = 1000
#: Parallel requests when fetching changed Orthanc studies one by one.
FETCH_WORKERS = 4


class SyncCancelledError(Exception):
    """The progress callback asked to stop; the cache is left as it was."""


@dataclass
class SyncResult:
    """The outcome of a refresh.

    Attributes
    ----------
    ok : bool
        False when the server could not be reached or answered badly (see ``diagnosis``);
        the cache is then unchanged and still shown.
    diagnosis : str
        Plain-language explanation of a failure.
    mode : str
        ``full``, ``incremental`` or ``unchanged``; ``""`` when it failed or was cancelled.
    reason : str
        Why that mode.
    added, updated, removed : int
        Studies changed in the cache.
    total : int
        Studies in the cache afterwards.
    cut_off : str
        ``"rest_limit"`` when the list holds only the most recent ``rest_limit`` studies.
    cancelled : bool
        The refresh was cancelled.
    duration_s : float
        Seconds taken.
    state : SyncState
        The cache's sync state afterwards.
    """

    ok: bool = True
    diagnosis: str = ""
    mode: str = ""
    reason: str = ""
    added: int = 0
    updated: int = 0
    removed: int = 0
    total: int = 0
    cut_off: str = ""
    cancelled: bool = False
    duration_s: float = 0.0
    state: SyncState = field(default_factory=SyncState)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "mode": self.mode,
            "reason": self.reason,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "total": self.total,
            "cut_off": self.cut_off,
            "cancelled": self.cancelled,
            "duration_s": round(self.duration_s, 3),
            "state": self.state.to_dict(),
        }


# -- helpers ---------------------------------------------------------------------------------


def _dicom_date(value: dt.date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def range_text(start: dt.date | None, end: dt.date | None) -> str:
    """Return a DICOM date range (``A-B``, ``A-``, ``-B``) or ``""`` for no restriction."""
    return DateRange(start, end).to_dicom() if (start or end) else ""


def scope_signature(server: DicomServer) -> str:
    """Return what the cached list depends on besides the server: REST limit and date filter."""
    return json.dumps(
        {
            "rest_limit": server.rest_limit,
            "date_filter": server.date_filter,
            "from": server.filter_from_date if server.date_filter == "from_date" else "",
            "relative": (
                [server.filter_relative_count, server.filter_relative_unit]
                if server.date_filter == "relative"
                else []
            ),
        },
        sort_keys=True,
    )


def _in_scope(record: StudyRecord, scope: DateRange) -> bool:
    if scope.start is None and scope.end is None:
        return True
    key = sort_key(record)
    if not key:
        return False  # a date range never matches a study without a date
    date = dt.date(int(key[:4]), int(key[4:6]), int(key[6:8]))
    return scope.contains(date)


def _by_recency(records: Iterable[StudyRecord]) -> list[StudyRecord]:
    ordered = sorted(records, key=lambda r: r.study_uid)
    return sorted(ordered, key=sort_key, reverse=True)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class _Fetcher(Protocol):
    def __call__(self, start: dt.date | None, end: dt.date | None) -> list[StudyRecord]: ...


def most_recent(
    fetch: _Fetcher,
    limit: int,
    scope: DateRange,
    today: dt.date,
    *,
    below: dt.date | None = None,
    check: Callable[[str], None] | None = None,
) -> tuple[dict[str, StudyRecord], bool]:
    """Collect at least ``limit`` of the most recent studies with study-date windows.

    Parameters
    ----------
    fetch : callable
        ``fetch(start, end)`` returns the studies dated in ``[start, end]`` (None: open end;
        both None: every study, undated ones included), filtered on the server.
    limit : int
        How many studies are wanted (> 0).
    scope : DateRange
        The server's date filter (``start`` stops the walk).
    today : datetime.date
        Where the first window ends (it is open towards the future).
    below : datetime.date, optional
        Start the walk at this date (inclusive) instead of today: refilling a list whose
        studies down to that date are known.
    check : callable, optional
        Called with a message before each request (raises to cancel).

    Returns
    -------
    tuple
        ``({study UID: record}, exhausted)``: every study dated at or after the last window's
        start, and whether the walk covered the whole scope (no older study left).
    """
    found: dict[str, StudyRecord] = {}
    end: dt.date | None = below if below is not None else scope.end
    top = end or today
    span = FIRST_WINDOW_DAYS
    while True:
        start: dt.date | None = top - dt.timedelta(days=span - 1)
        last = False
        assert start is not None
        if scope.start is not None and start <= scope.start:
            start, last = scope.start, True
        elif start < EARLIEST_DATE:
            start, end, last = None, None, True
        if check:
            check(f"Listing studies from {_dicom_date(start) or 'the beginning'}")
        if start is None and scope.start is None and scope.end is None:
            batch = fetch(None, None)  # everything, so that undated studies come too
        else:
            batch = fetch(start, end)
        for record in batch:
            found[record.study_uid] = record
        if last or len(found) >= limit:
            return found, last
        assert start is not None
        end = start - dt.timedelta(days=1)
        top = end
        span *= 2


# -- the two servers -------------------------------------------------------------------------


class _Sync:
    """One refresh of one server's cache (common parts)."""

    def __init__(
        self,
        server: DicomServer,
        cache: StudyCache,
        session: requests.Session,
        progress: ProgressCallback | None,
        today: dt.date,
        now: dt.datetime,
    ) -> None:
        self.server = server
        self.cache = cache
        self.session = session
        self.progress = progress
        self.today = today
        self.now = now
        self.scope = server_date_range(server, today)
        self.limit = max(0, int(server.rest_limit))
        self.threshold = max(0, int(server.cache_threshold))
        self.signature = scope_signature(server)
        self.done = 0

    def check(self, message: str) -> None:
        """Report progress; raise :class:`SyncCancelledError` if asked to stop."""
        if not report(self.progress, Progress(completed=self.done, message=message)):
            raise SyncCancelledError

    def fetch(self, start: dt.date | None, end: dt.date | None) -> list[StudyRecord]:
        raise NotImplementedError

    def scoped_fetch(self, start: dt.date | None, end: dt.date | None) -> list[StudyRecord]:
        """Fetch a date range intersected with the server's date filter."""
        if self.scope.start and (start is None or start < self.scope.start):
            start = self.scope.start
        if self.scope.end and (end is None or end > self.scope.end):
            end = self.scope.end
        records = [r for r in self.fetch(start, end) if r.study_uid]
        self.done += len(records)
        return records

    def load_list(self) -> tuple[list[StudyRecord], str]:
        """Load the list a complete refresh stores: the most recent ``rest_limit`` in scope."""
        if self.limit == 0:
            self.check("Listing studies")
            records = self.scoped_fetch(self.scope.start, self.scope.end)
            return records, ""  # the cache orders on reading
        found, exhausted = most_recent(
            self.scoped_fetch, self.limit, self.scope, self.today, check=self.check
        )
        ordered = _by_recency(found.values())
        cut = CUT_OFF_REST_LIMIT if len(ordered) > self.limit or not exhausted else ""
        return ordered[: self.limit], cut

    def trim(
        self, keys: dict[str, str], added: dict[str, StudyRecord], state: SyncState
    ) -> tuple[list[StudyRecord], set[str]]:
        """Apply the date filter and the REST limit to the merged list.

        ``keys`` maps the UIDs kept from the cache to their sort keys; ``added`` holds new or
        updated records. Returns the records to write and the UIDs to remove; refills a
        limited list left short.
        """
        scope_start = _dicom_date(self.scope.start)
        removals: set[str] = set()
        if self.scope.start or self.scope.end:
            scope_end = _dicom_date(self.scope.end) or "99999999"
            for uid, key in list(keys.items()):
                if not key or key[:8] < scope_start or key[:8] > scope_end:
                    removals.add(uid)
                    del keys[uid]
        for uid, record in list(added.items()):
            if not _in_scope(record, self.scope):
                del added[uid]
                if uid in keys:
                    removals.add(uid)
                    del keys[uid]
        merged = dict(keys)
        merged.update({uid: sort_key(r) for uid, r in added.items()})
        if self.limit:
            if len(merged) < self.limit and state.cut_off:
                oldest = min((k for k in merged.values() if k), default="")
                below = (
                    dt.date(int(oldest[:4]), int(oldest[4:6]), int(oldest[6:8]))
                    if oldest
                    else self.today
                )
                found, exhausted = most_recent(
                    self.scoped_fetch,
                    self.limit,
                    self.scope,
                    self.today,
                    below=below,
                    check=self.check,
                )
                for uid, record in found.items():
                    if uid not in merged:
                        added[uid] = record
                        merged[uid] = sort_key(record)
                if exhausted and len(merged) <= self.limit:
                    state.cut_off = ""
            ranked = sorted(sorted(merged), key=lambda u: merged[u], reverse=True)
            for uid in ranked[self.limit :]:
                removals.add(uid)
                added.pop(uid, None)
            if len(ranked) > self.limit:
                state.cut_off = CUT_OFF_REST_LIMIT
        removals -= set(added)
        return list(added.values()), removals

    def new_state(self, mode: str, reason: str, previous: SyncState) -> SyncState:
        """Return the state to save after a refresh in ``mode``."""
        stamp = self.now.isoformat(timespec="seconds")
        return SyncState(
            last_sync=stamp,
            last_full_sync=stamp if mode == MODE_FULL else previous.last_full_sync,
            mode=mode,
            reason=reason,
            change_seq=previous.change_seq,
            server_count=previous.server_count,
            window_start=previous.window_start,
            scope=self.signature,
            cut_off=previous.cut_off,
        )

    def full(self, reason: str) -> SyncResult:
        raise NotImplementedError

    def incremental(self, state: SyncState) -> SyncResult:
        raise NotImplementedError

    def run(self, force_full: bool) -> SyncResult:
        """Decide the mode and refresh."""
        state = self.cache.state()
        if force_full:
            return self.full("a complete refresh was asked for")
        if not state.last_sync:
            return self.full("first load of this server")
        if state.scope != self.signature:
            return self.full("the REST limit or the date filter changed")
        return self.incremental(state)

    def finish_full(
        self, records: list[StudyRecord], cut: str, reason: str, state: SyncState
    ) -> SyncResult:
        """Store a complete list and describe it."""
        before = self.cache.all_keys()
        state.cut_off = cut
        state.added = sum(1 for r in records if r.study_uid not in before)
        uids = {r.study_uid for r in records}
        state.removed = sum(1 for uid in before if uid not in uids)
        state.updated = len(records) - state.added
        self.check("Saving the study list")
        self.cache.replace_all(records, state)
        return SyncResult(mode=MODE_FULL, reason=reason, cut_off=cut, state=state)

    def finish_incremental(
        self,
        keys: dict[str, str] | None,
        changed: dict[str, StudyRecord],
        removed: set[str],
        diff_reason: str,
        state: SyncState,
        unchanged: bool,
    ) -> SyncResult:
        """Merge the changes into the cache and describe them (``keys``: the cache's, or None)."""
        if unchanged and not (self.scope.start or self.scope.end):
            state.mode, state.reason = MODE_UNCHANGED, diff_reason
            self.cache.save_state(state)
            return SyncResult(
                mode=MODE_UNCHANGED, reason=diff_reason, cut_off=state.cut_off, state=state
            )
        if keys is None and not self.limit and not (self.scope.start or self.scope.end):
            # Nothing to trim: only the changed studies matter (no need to read the list).
            cached = self.cache.existing(changed) | removed
            return self._store(list(changed.values()), removed, cached, diff_reason, state)
        keys = self.cache.all_keys() if keys is None else keys
        cached = set(keys)
        for uid in removed:
            keys.pop(uid, None)
        upserts, removals = self.trim(keys, changed, state)
        removals |= removed & cached
        return self._store(upserts, removals, cached, diff_reason, state, unchanged)

    def _store(
        self,
        upserts: list[StudyRecord],
        removals: set[str],
        cached: set[str],
        diff_reason: str,
        state: SyncState,
        unchanged: bool = False,
    ) -> SyncResult:
        """Write an incremental change and describe it."""
        removals = removals - {r.study_uid for r in upserts}
        mode = MODE_UNCHANGED if unchanged and not upserts and not removals else MODE_INCREMENTAL
        state.mode = mode
        state.reason = diff_reason
        state.added = sum(1 for r in upserts if r.study_uid not in cached)
        state.updated = len(upserts) - state.added
        state.removed = len(removals)
        if mode == MODE_UNCHANGED:
            self.cache.save_state(state)
        else:
            self.cache.apply(upserts, removals, state)
        return SyncResult(mode=mode, reason=diff_reason, cut_off=state.cut_off, state=state)


class _OrthancSync(_Sync):
    """Refresh from Orthanc's REST API."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = OrthancClient(self.session, rest_base_url(self.server))

    def fetch(self, start: dt.date | None, end: dt.date | None) -> list[StudyRecord]:
        text = range_text(start, end)
        if not text:  # everything: listing is far cheaper for Orthanc than a lookup
            records: list[StudyRecord] = []
            for page in self.client.all_studies():
                records += [orthanc_study(r) for r in page]
                self.check(f"Listing studies ({len(records)})")
            return records
        answers = self.client.find("Study", {"StudyDate": text}, expand=True)
        return [orthanc_study(r) for r in answers]

    def full(self, reason: str) -> SyncResult:
        self.check("Reading the server's state")
        # Position and count first: changes made while listing are replayed next time.
        seq = self.client.last_change()
        count = self.client.count_studies()
        previous = self.cache.state()
        state = self.new_state(MODE_FULL, reason, previous)
        state.change_seq, state.server_count = seq, count
        if self.limit and not (self.scope.start or self.scope.end) and count <= self.limit:
            self.check("Listing studies")
            records, cut = self.scoped_fetch(None, None), ""
        else:
            records, cut = self.load_list()
        return self.finish_full(records, cut, reason, state)

    def incremental(self, state: SyncState) -> SyncResult:
        if state.change_seq is None or state.server_count is None:
            return self.full("the cache has no changes-log position")
        self.check("Reading the changes log")
        touched: dict[str, str] = {}
        position, scanned = state.change_seq, 0
        while True:
            page = self.client.changes(position)
            if page.last < state.change_seq:
                return self.full("the server's changes log restarted (new database?)")
            for change in page.changes:
                if change.resource_type != "Study" or change.change_type not in STUDY_CHANGES:
                    continue
                if change.change_type == "NewStudy" or change.resource_id not in touched:
                    touched[change.resource_id] = change.change_type
            scanned += len(page.changes)
            position = max(position, page.last)
            if len(touched) > self.threshold:
                return self.full(f"more than {self.threshold} studies changed (cache threshold)")
            if page.done or not page.changes:
                break
            if scanned > MAX_CHANGES_SCANNED:
                return self.full("too many changes to replay")
        count = self.client.count_studies()
        by_id = self.cache.uids_of_resources(touched)
        new_ids = [i for i, kind in touched.items() if kind == "NewStudy" and i not in by_id]
        expected = state.server_count + len(new_ids)
        removed_ids: set[str] = set()
        if count != expected:
            self.check("Checking for deleted studies")
            by_id = self.cache.resource_ids()
            on_server = set(self.client.study_ids())
            removed_ids = {i for i in by_id if i not in on_server}
            complete = not state.cut_off and not (self.scope.start or self.scope.end)
            if complete:
                for missing in on_server - set(by_id) - set(touched):
                    touched[missing] = "NewStudy"
        difference = len(touched) + len(removed_ids)
        if difference > self.threshold:
            return self.full(
                f"{difference} studies differ, more than the cache threshold {self.threshold}"
            )
        changed, gone = self._fetch_studies(list(touched))
        removed_ids |= gone
        removed = {by_id[i] for i in removed_ids if i in by_id}
        new_state = self.new_state(MODE_INCREMENTAL, "", state)
        new_state.change_seq, new_state.server_count = position, count
        reason = (
            f"{difference} studies differ (cache threshold {self.threshold})"
            if difference
            else "no change on the server"
        )
        return self.finish_incremental(
            None, changed, removed, reason, new_state, unchanged=not difference
        )

    def _fetch_studies(self, ids: list[str]) -> tuple[dict[str, StudyRecord], set[str]]:
        """Fetch changed studies in bulk; return the records and the ids now gone."""
        if not ids:
            return {}, set()
        self.check(f"Fetching {len(ids)} changed studies")
        answers = self.client.studies_content(ids)
        records = {}
        seen = set()
        for answer in answers:
            record = orthanc_study(answer)
            seen.add(str(answer.get("ID", "")))
            if record.study_uid:
                records[record.study_uid] = record
        gone = {i for i in ids if i not in seen}  # deleted since their change was logged
        self.done += len(records)
        return records, gone


class _DicomwebSync(_Sync):
    """Refresh from a DICOMweb server (QIDO-RS)."""

    def __init__(
        self, *args: Any, full_after_s: float = DICOMWEB_FULL_AFTER_S, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.client = DicomwebClient(self.session, rest_base_url(self.server))
        self.full_after_s = full_after_s

    def fetch(
        self, start: dt.date | None, end: dt.date | None, limit: int = 0
    ) -> list[StudyRecord]:
        params: dict[str, str] = {}
        text = range_text(start, end)
        if text:
            params["StudyDate"] = text
        records: list[StudyRecord] = []
        for page in iter_pages(self.client, params, QIDO_PAGE, limit):
            records += [dicomweb_study(item) for item in page.items]
            self.check(f"Listing studies ({len(records)})")
        return records

    def window_start(self) -> str:
        """Return the first date an incremental refresh after this one reads again."""
        return _dicom_date(self.today - dt.timedelta(days=DICOMWEB_WINDOW_MARGIN_DAYS))

    def full(self, reason: str) -> SyncResult:
        previous = self.cache.state()
        state = self.new_state(MODE_FULL, reason, previous)
        state.window_start = self.window_start()
        records, cut = self.load_list()
        return self.finish_full(records, cut, reason, state)

    def incremental(self, state: SyncState) -> SyncResult:
        if not state.window_start:
            return self.full("the cache has no synced date window")
        last_full = _parse_time(state.last_full_sync)
        if last_full is None or (self.now - last_full).total_seconds() > self.full_after_s:
            return self.full("the last complete refresh is more than a day old")
        start = dt.date.fromisoformat(
            f"{state.window_start[:4]}-{state.window_start[4:6]}-{state.window_start[6:8]}"
        )
        if self.scope.start and self.scope.start > start:
            start = self.scope.start
        floor = ""
        if state.cut_off:
            # A limited list: nothing older than its oldest study can enter it, so the window
            # need not reach further back (a busy day may hold more than the limit).
            keys = [k for k in self.cache.all_keys().values() if k]
            floor = min(keys, default="")
            if floor and _dicom_date(start) < floor[:8]:
                start = dt.date(int(floor[:4]), int(floor[4:6]), int(floor[6:8]))
        cached = self.cache.keys_from(_dicom_date(start))
        probe = len(cached) + self.threshold + 1
        self.check(f"Listing studies since {_dicom_date(start)}")
        end = self.scope.end
        # A limited list's window is bounded by its oldest study, not capped: it holds the
        # studies of that day that rank below the limit, which are no differences.
        records = [r for r in self.fetch(start, end, limit=0 if floor else probe) if r.study_uid]
        if not floor and len(records) >= probe:
            return self.full(
                f"more than {self.threshold} new studies since {_dicom_date(start)}"
                " (cache threshold)"
            )
        returned = {r.study_uid: r for r in records}
        # Studies ranked below a limited list's oldest one are not differences: trimmed anyway.
        new = [uid for uid, r in returned.items() if uid not in cached and sort_key(r) > floor]
        gone = {uid for uid in cached if uid not in returned}
        difference = len(new) + len(gone)
        if difference > self.threshold:
            return self.full(
                f"{difference} studies differ, more than the cache threshold {self.threshold}"
            )
        new_state = self.new_state(MODE_INCREMENTAL, "", state)
        new_state.window_start = self.window_start()
        fresh = set(new)
        changed = {
            uid: r
            for uid, r in returned.items()
            if uid in fresh or (uid in cached and self.cache.get(uid) != r)
        }
        reason = (
            f"{difference} studies differ since {_dicom_date(start)}"
            f" (cache threshold {self.threshold})"
            if difference
            else f"no change since {_dicom_date(start)}"
        )
        return self.finish_incremental(
            None,
            changed,
            gone,
            reason,
            new_state,
            unchanged=not changed and not gone,
        )


def refresh(
    server: DicomServer,
    *,
    cache: StudyCache | None = None,
    session: requests.Session | None = None,
    full: bool = False,
    progress: ProgressCallback | None = None,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    dicomweb_full_after_s: float = DICOMWEB_FULL_AFTER_S,
) -> SyncResult:
    """Bring a server's cached study list up to date (incrementally when the change is small).

    Parameters
    ----------
    server : DicomServer
        Its REST settings (URL, user, password, flavour, ``rest_limit``,
        ``cache_threshold``, date filter) are used.
    cache : StudyCache, optional
        The cache to update (default: the server's own, opened and closed here).
    session : requests.Session, optional
        Default: :func:`build_session`.
    full : bool, optional
        Reload the whole list whatever the difference.
    progress : ProgressCallback, optional
        Called between requests; returning False cancels (the cache stays as it was).
    today, now : optional
        The local date and the current time (UTC), for tests.
    dicomweb_full_after_s : float, optional
        DICOMweb: do a complete refresh when the last one is older than this.

    Returns
    -------
    SyncResult
        Never raises for network problems: ``ok`` is False with a diagnosis.
    """
    started = time.monotonic()
    if not server.rest_url.strip():
        return SyncResult(
            ok=False,
            diagnosis="The PACS REST URL (rest_url) is empty: set it to load the study list.",
        )
    own_cache = cache is None
    own_session = session is None
    active_cache = cache if cache is not None else StudyCache.open(server)
    active_session = session if session is not None else build_session(server)
    args = (
        server,
        active_cache,
        active_session,
        progress,
        today or dt.date.today(),
        now or _utc_now(),
    )
    try:
        if server.rest_flavor == "dicomweb":
            sync: _Sync = _DicomwebSync(*args, full_after_s=dicomweb_full_after_s)
        else:
            sync = _OrthancSync(*args)
        try:
            result = sync.run(full)
        except SyncCancelledError:
            result = SyncResult(ok=False, cancelled=True, diagnosis="The refresh was cancelled.")
        except RestError as error:
            result = SyncResult(ok=False, diagnosis=error.diagnosis)
        except MALFORMED_ANSWER as error:
            diagnosis = malformed_answer(rest_base_url(server), error).diagnosis
            result = SyncResult(ok=False, diagnosis=diagnosis)
        if result.ok:
            result.added = result.state.added
            result.updated = result.state.updated
            result.removed = result.state.removed
        else:
            result.state = active_cache.state()
        result.total = active_cache.count()
        if result.ok:
            result.state.total = result.total
        result.duration_s = time.monotonic() - started
        if result.ok:
            result.state.duration_s = result.duration_s
            active_cache.save_state(result.state)
        return result
    finally:
        if own_cache:
            active_cache.close()
        if own_session:
            active_session.close()
