"""The local cache of a server's study list: one SQLite file per server identity.

Opening a server shows its cached list at once (:meth:`StudyCache.studies`); a refresh
(:mod:`DicomServersLib.rest.sync`) then brings it up to date and records how and when in a
:class:`SyncState`, which the UI shows as "last synced ...".

The identity of a cache is the server's stable ``id``, its REST API type and its normalised
REST URL: renaming a server keeps its cache, pointing it at another URL (or switching Orthanc /
DICOMweb) starts a new one. Files live in ``<cache_dir>/rest-studies/`` (see
:func:`DicomServersLib.user_paths.cache_dir`); a cache is disposable, so a damaged or outdated
file is simply rebuilt.

Every change is one SQLite transaction: a reader sees the list before or after a refresh,
never half of it, and a cancelled or failed refresh leaves the cache as it was.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from DicomServersLib.query_model import StudyRecord
from DicomServersLib.server import DicomServer
from DicomServersLib.user_paths import cache_dir
from DicomServersLib.validation import normalize_url

SCHEMA_VERSION = 2
CACHE_FOLDER = "rest-studies"

_UPSERT = "INSERT OR REPLACE INTO studies VALUES (?, ?, ?, ?)"

MODE_FULL = "full"
MODE_INCREMENTAL = "incremental"
MODE_UNCHANGED = "unchanged"


@dataclass
class SyncState:
    """How and when the cached list was last brought up to date.

    Attributes
    ----------
    last_sync : str
        ISO 8601 time (UTC) of the last successful refresh; ``""`` if never synced.
    last_full_sync : str
        Time of the last complete refresh.
    mode : str
        How the last refresh was done: ``full``, ``incremental`` or ``unchanged``.
    reason : str
        Why that mode was chosen, in plain words.
    change_seq : int or None
        Orthanc: the changes-log position the cache is synced up to.
    server_count : int or None
        Orthanc: the server's study count (``/statistics`` CountStudies) at that position.
    window_start : str
        DICOMweb: first study date (``YYYYMMDD``) an incremental refresh reads again.
    scope : str
        The REST limit and date filter the list was loaded with; a change forces a full refresh.
    added, updated, removed : int
        What the last refresh changed.
    total : int
        Studies in the cache.
    cut_off : str
        ``"rest_limit"`` when the cache holds only the server's most recent studies.
    duration_s : float
        How long the last refresh took.
    """

    last_sync: str = ""
    last_full_sync: str = ""
    mode: str = ""
    reason: str = ""
    change_seq: int | None = None
    server_count: int | None = None
    window_start: str = ""
    scope: str = ""
    added: int = 0
    updated: int = 0
    removed: int = 0
    total: int = 0
    cut_off: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncState:
        """Build a state from stored data (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def cache_identity(server: DicomServer) -> str:
    """Return the text that identifies a server's cache: id, REST type and normalised URL."""
    return f"{server.id}\n{server.rest_flavor}\n{normalize_url(server.rest_url)}"


def cache_path(server: DicomServer, root: Path | None = None) -> Path:
    """Return the cache file of a server (under :func:`user_paths.cache_dir` by default)."""
    digest = hashlib.sha256(cache_identity(server).encode("utf-8")).hexdigest()[:24]
    return Path(root if root is not None else cache_dir()) / CACHE_FOLDER / f"{digest}.sqlite"


def sort_key(record: StudyRecord) -> str:
    """Return the key that orders studies by date and time (``""`` for undated studies).

    ``YYYYMMDDHHMMSS``: StudyTime is cut to whole seconds and padded (``0830`` is 08:30:00).
    """
    date = "".join(c for c in record.study_date if c.isdigit())[:8]
    if len(date) != 8:
        return ""
    time = "".join(c for c in record.study_time.split(".")[0] if c.isdigit())[:6]
    return date + time.ljust(6, "0")


#: StudyRecord fields, in the order a stored record lists their values. They are kept in the
#: cache's ``meta``: a cache written with other fields (another version) is reloaded.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StudyRecord))
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def record_json(record: StudyRecord) -> str:
    """Return the JSON text a record is stored as: the list of its field values."""
    return _ENCODER.encode([getattr(record, name) for name in RECORD_FIELDS])


def record_from_json(text: str) -> StudyRecord:
    """Return the record stored as ``text`` (see :func:`record_json`)."""
    return StudyRecord(*json.loads(text))


def _resource_id(record: StudyRecord) -> str:
    return str(record.extra.get("orthanc_id", ""))


class StudyCache:
    """The cached study list of one server (thread-safe; one SQLite connection).

    Parameters
    ----------
    path : pathlib.Path
        The SQLite file (created if missing).
    identity : str, optional
        The server identity it belongs to (stored for inspection).
    """

    def __init__(self, path: Path, identity: str = "") -> None:
        self.path = Path(path)
        self.identity = identity
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError:
            self._discard_files()
            self._conn = self._connect()

    @classmethod
    def open(cls, server: DicomServer, root: Path | None = None) -> StudyCache:
        """Open (or create) the cache of a server."""
        return cls(cache_path(server, root), cache_identity(server))

    # -- storage -------------------------------------------------------------------------

    def _discard_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and json.loads(row[0]) != SCHEMA_VERSION:
                conn.execute("DROP TABLE IF EXISTS studies")
                conn.execute("DELETE FROM meta")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS studies ("
                " study_uid TEXT PRIMARY KEY,"
                " resource_id TEXT NOT NULL DEFAULT '',"
                " sort_key TEXT NOT NULL DEFAULT '',"
                " record TEXT NOT NULL)"
            )
            # No index: lists of thousands are read and written whole, and a scan of them
            # costs a millisecond, less than keeping an index up to date at every write.
            row = conn.execute("SELECT value FROM meta WHERE key='fields'").fetchone()
            stored = json.loads(row[0]) if row else None
            if stored is None:
                conn.execute(
                    "INSERT INTO meta VALUES ('fields', ?)", (json.dumps(list(RECORD_FIELDS)),)
                )
            elif tuple(stored) != RECORD_FIELDS:
                conn.execute("DELETE FROM studies")  # written by another version: reload
                conn.execute("DELETE FROM meta WHERE key='sync'")
                conn.execute(
                    "UPDATE meta SET value=? WHERE key='fields'", (json.dumps(list(RECORD_FIELDS)),)
                )
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema', ?), ('identity', ?)",
                (json.dumps(SCHEMA_VERSION), json.dumps(self.identity)),
            )
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StudyCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------

    def state(self) -> SyncState:
        """Return how and when the list was last synced (empty state if never)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='sync'").fetchone()
        return SyncState.from_dict(json.loads(row[0])) if row else SyncState()

    def count(self) -> int:
        """Return the number of cached studies."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0])

    def studies(self, limit: int | None = None) -> list[StudyRecord]:
        """Return the cached studies, most recent first (undated ones last)."""
        sql = "SELECT record FROM studies ORDER BY sort_key DESC, study_uid"
        params: tuple[Any, ...] = ()
        if limit:
            sql += " LIMIT ?"
            params = (limit,)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [record_from_json(row[0]) for row in rows]

    def get(self, study_uid: str) -> StudyRecord | None:
        """Return one cached study, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT record FROM studies WHERE study_uid=?", (study_uid,)
            ).fetchone()
        return record_from_json(row[0]) if row else None

    def resource_ids(self) -> dict[str, str]:
        """Return ``{server resource id: study UID}`` (Orthanc identifiers)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT resource_id, study_uid FROM studies WHERE resource_id != ''"
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def existing(self, uids: Iterable[str]) -> set[str]:
        """Return which of ``uids`` are cached."""
        wanted = list(uids)
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT study_uid FROM studies WHERE study_uid IN ({marks})", chunk
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def uids_of_resources(self, resource_ids: Iterable[str]) -> dict[str, str]:
        """Return ``{resource id: study UID}`` for those of ``resource_ids`` that are cached."""
        wanted = list(resource_ids)
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT resource_id, study_uid FROM studies WHERE resource_id IN ({marks})",
                    chunk,
                ).fetchall()
                found.update((str(r[0]), str(r[1])) for r in rows)
        return found

    def keys_from(self, first_key: str) -> dict[str, str]:
        """Return ``{study UID: sort key}`` of the studies whose sort key is ≥ ``first_key``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT study_uid, sort_key FROM studies WHERE sort_key >= ?", (first_key,)
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def all_keys(self) -> dict[str, str]:
        """Return ``{study UID: sort key}`` of every cached study."""
        with self._lock:
            rows = self._conn.execute("SELECT study_uid, sort_key FROM studies").fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    # -- writing -------------------------------------------------------------------------

    def _write_state(self, conn: sqlite3.Connection, state: SyncState) -> None:
        state.total = int(conn.execute("SELECT COUNT(*) FROM studies").fetchone()[0])
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('sync', ?)", (json.dumps(state.to_dict()),)
        )

    @staticmethod
    def _rows(records: Iterable[StudyRecord]) -> Iterator[tuple[str, str, str, str]]:
        for record in records:
            yield (
                record.study_uid,
                _resource_id(record),
                sort_key(record),
                record_json(record),
            )

    def replace_all(self, records: Iterable[StudyRecord], state: SyncState) -> None:
        """Replace the whole list and its state in one transaction (a full refresh)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM studies")
            conn.executemany(_UPSERT, self._rows(records))
            self._write_state(conn, state)

    def apply(
        self, upserts: Iterable[StudyRecord], removals: Iterable[str], state: SyncState
    ) -> None:
        """Add or update studies, remove others (by UID) and save the state, in one transaction."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM studies WHERE study_uid=?", ((uid,) for uid in removals))
            conn.executemany(_UPSERT, self._rows(upserts))
            self._write_state(conn, state)

    def save_state(self, state: SyncState) -> None:
        """Save the sync state alone (a refresh that found nothing to change)."""
        with self._transaction() as conn:
            self._write_state(conn, state)

    def clear(self) -> None:
        """Forget every study and the sync state."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM studies")
            conn.execute("DELETE FROM meta WHERE key='sync'")
