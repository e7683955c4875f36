"""An index of a PACS storage folder, for the "load from the PACS folder" mode.

The spec's folder mode reads images straight from the folder where the PACS keeps its files
(Orthanc's storage area, a DCMTK ``storescp`` output folder, a shared drive), with no network
transfer. Finding one study among hundreds of thousands of files needs an index:

- built from header-only reads (:mod:`DicomServersLib.dicom_header`);
- incremental: a re-scan compares each file's path, size and modification time with the index
  and reads only new or changed files; vanished files are dropped;
- stored in SQLite in the user's cache folder, one database per folder.

Layouts do not matter (Orthanc names files by UUID without extension, storescp by modality and
UID): every regular file is a candidate, non-DICOM files are remembered as such so they are not
read again until they change.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .dicom_files import copy_atomic, instance_path, present_instances
from .dicom_header import read_header
from .progress import Progress, ProgressCallback, report
from .query_model import SeriesRecord, StudyRecord
from .transfer_model import RetrieveResult
from .user_paths import cache_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    is_dicom INTEGER NOT NULL,
    study_uid TEXT, series_uid TEXT, sop_uid TEXT,
    patient_id TEXT, patient_name TEXT, birth_date TEXT,
    study_date TEXT, study_time TEXT, accession TEXT, study_description TEXT,
    modality TEXT, series_number TEXT, series_description TEXT, instance_number TEXT
);
CREATE INDEX IF NOT EXISTS files_study ON files(study_uid);
CREATE INDEX IF NOT EXISTS files_series ON files(series_uid);
"""
_COLUMNS = (
    ("StudyInstanceUID", "study_uid"),
    ("SeriesInstanceUID", "series_uid"),
    ("SOPInstanceUID", "sop_uid"),
    ("PatientID", "patient_id"),
    ("PatientName", "patient_name"),
    ("PatientBirthDate", "birth_date"),
    ("StudyDate", "study_date"),
    ("StudyTime", "study_time"),
    ("AccessionNumber", "accession"),
    ("StudyDescription", "study_description"),
    ("Modality", "modality"),
    ("SeriesNumber", "series_number"),
    ("SeriesDescription", "series_description"),
    ("InstanceNumber", "instance_number"),
)


@dataclass
class IndexStats:
    """What an update did."""

    files: int = 0
    read: int = 0
    unchanged: int = 0
    removed: int = 0
    not_dicom: int = 0
    duration_s: float = 0.0
    cancelled: bool = False


def default_index_path(folder: Path) -> Path:
    """Return where the index of ``folder`` is kept in the user's cache folder."""
    key = hashlib.sha1(str(Path(folder).resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_dir() / "folder-index" / f"{key}.sqlite"


def _walk(folder: Path) -> Iterator[os.DirEntry[str]]:
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False) and not entry.name.startswith("."):
                        yield entry
        except (PermissionError, FileNotFoundError):
            continue


class FolderIndex:
    """The index of one storage folder (see the module documentation).

    Parameters
    ----------
    folder
        The PACS storage folder.
    db_path
        Where the SQLite index lives; by default in the user's cache folder.
    """

    def __init__(self, folder: Path, db_path: Path | None = None) -> None:
        self.folder = Path(folder).expanduser()
        self.db_path = Path(db_path) if db_path else default_index_path(self.folder)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._known: dict[str, tuple[int, int]] | None = None

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> FolderIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- updating ------------------------------------------------------------------------------

    def update(self, progress: ProgressCallback | None = None) -> IndexStats:
        """Bring the index up to date with the folder and return what changed.

        Raises
        ------
        FileNotFoundError
            The folder does not exist (an unmounted share, a typo in the settings).
        """
        start = time.perf_counter()
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"PACS Storage Folder (storage_folder): {self.folder} is not a folder"
            )
        stats = IndexStats()
        with self._lock:
            if self._known is None:  # kept in memory between updates of this object
                self._known = {
                    path: (size, mtime)
                    for path, size, mtime in self._db.execute(
                        "SELECT path, size, mtime_ns FROM files"
                    )
                }
            known = self._known
            seen: set[str] = set()
            batch: list[tuple[object, ...]] = []
            for entry in _walk(self.folder):
                stats.files += 1
                seen.add(entry.path)
                info = entry.stat(follow_symlinks=False)
                if known.get(entry.path) == (info.st_size, info.st_mtime_ns):
                    stats.unchanged += 1
                    continue
                batch.append(self._row(entry.path, info.st_size, info.st_mtime_ns, stats))
                known[entry.path] = (info.st_size, info.st_mtime_ns)
                stats.read += 1
                if len(batch) >= 500:
                    self._store(batch)
                    batch = []
                    message = f"indexed {stats.read} files"
                    if not report(progress, Progress(completed=stats.files, message=message)):
                        stats.cancelled = True
                        break
            self._store(batch)
            if not stats.cancelled:
                gone = [p for p in known if p not in seen]
                stats.removed = len(gone)
                self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
                for path in gone:
                    del known[path]
            if stats.read or stats.removed:
                self._db.commit()
        stats.duration_s = time.perf_counter() - start
        return stats

    @staticmethod
    def _row(path: str, size: int, mtime_ns: int, stats: IndexStats) -> tuple[object, ...]:
        try:
            header = read_header(Path(path))
        except (ValueError, OSError):
            stats.not_dicom += 1
            return (path, size, mtime_ns, 0, *([None] * len(_COLUMNS)))
        return (path, size, mtime_ns, 1, *(header.get(name) for name, _ in _COLUMNS))

    def _store(self, rows: list[tuple[object, ...]]) -> None:
        if rows:
            marks = ", ".join("?" * (4 + len(_COLUMNS)))
            self._db.executemany(f"INSERT OR REPLACE INTO files VALUES ({marks})", rows)

    # -- looking up ----------------------------------------------------------------------------

    def study_instances(
        self, study_uid: str, series_uids: list[str] | None = None
    ) -> list[tuple[Path, str, str]]:
        """Return ``(path, series UID, SOP instance UID)`` of a study's files (or some series'),
        in series and number order, as indexed (no file is read)."""
        query = "SELECT path, series_uid, sop_uid FROM files WHERE is_dicom = 1 AND study_uid = ?"
        args: list[str] = [study_uid]
        if series_uids:
            query += f" AND series_uid IN ({', '.join('?' * len(series_uids))})"
            args += series_uids
        query += " ORDER BY series_uid, CAST(instance_number AS INTEGER), path"
        with self._lock:
            return [
                (Path(path), series, sop) for path, series, sop in self._db.execute(query, args)
            ]

    def study_files(self, study_uid: str, series_uids: list[str] | None = None) -> list[Path]:
        """Return the files of a study (or of some of its series), in series and number order."""
        return [path for path, _, _ in self.study_instances(study_uid, series_uids)]

    def studies(self) -> list[StudyRecord]:
        """Return every study in the folder, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid, MAX(patient_name), MAX(patient_id), MAX(birth_date),"
                " MAX(study_date), MAX(study_time), MAX(accession), MAX(study_description),"
                " GROUP_CONCAT(DISTINCT modality), COUNT(DISTINCT series_uid), COUNT(*)"
                " FROM files WHERE is_dicom = 1 GROUP BY study_uid"
                " ORDER BY MAX(study_date) DESC, MAX(study_time) DESC"
            ).fetchall()
        return [
            StudyRecord(
                study_uid=r[0],
                patient_name=r[1] or "",
                patient_id=r[2] or "",
                patient_birth_date=r[3] or "",
                study_date=r[4] or "",
                study_time=r[5] or "",
                accession_number=r[6] or "",
                study_description=r[7] or "",
                modalities=sorted(m for m in (r[8] or "").split(",") if m),
                series_count=r[9],
                instance_count=r[10],
            )
            for r in rows
        ]

    def series(self, study_uid: str) -> list[SeriesRecord]:
        """Return the series of a study."""
        with self._lock:
            rows = self._db.execute(
                "SELECT series_uid, MAX(modality), MAX(series_number), MAX(series_description),"
                " COUNT(*) FROM files WHERE is_dicom = 1 AND study_uid = ? GROUP BY series_uid"
                " ORDER BY CAST(MAX(series_number) AS INTEGER)",
                (study_uid,),
            ).fetchall()
        return [
            SeriesRecord(study_uid, r[0], r[1] or "", r[2] or "", r[3] or "", r[4]) for r in rows
        ]


def retrieve_from_folder(
    index: FolderIndex,
    study_uid: str,
    series_uids: list[str] | None = None,
    dest: Path | None = None,
    progress: ProgressCallback | None = None,
) -> RetrieveResult:
    """Get a study's files from the PACS folder, with no network transfer.

    With ``dest`` None the files are used where they are (Slicer imports them in place);
    otherwise they are copied (never hard-linked: the PACS's files stay untouched) into ``dest`` in the usual
    ``Study/Series/SOP.dcm`` layout, atomically, skipping instances already there.
    """
    start = time.perf_counter()
    result = RetrieveResult(method="folder")
    try:
        index.update()
    except FileNotFoundError as exc:
        result.ok, result.diagnosis = False, str(exc)
        return result
    instances = index.study_instances(study_uid, series_uids)
    if not instances:
        result.ok = False
        result.diagnosis = f"study {study_uid} is not in the PACS folder {index.folder}"
        return result
    if dest is None:
        result.files = [path for path, _, _ in instances]
        result.received = len(instances)
        result.duration_s = time.perf_counter() - start
        return result
    present = present_instances(Path(dest), study_uid)
    for number, (source, series_uid, sop_uid) in enumerate(instances, start=1):
        target = instance_path(Path(dest), study_uid, series_uid, sop_uid)
        if sop_uid in present:
            result.skipped += 1
        else:
            result.bytes_received += copy_atomic(source, target)
            result.received += 1
        result.files.append(target)
        value = Progress(
            completed=number, remaining=len(instances) - number, bytes_done=result.bytes_received
        )
        if not report(progress, value):
            result.cancelled, result.ok = True, False
            result.diagnosis = "cancelled"
            break
    result.duration_s = time.perf_counter() - start
    return result
