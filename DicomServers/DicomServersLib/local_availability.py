"""Whether a study or series listed by a server is already here, and where.

Two places count:

- **Slicer's DICOM database**, through an injected lookup (the Slicer layer asks
  ``slicer.dicomDatabase``; outside Slicer there is none);
- **the destination folder** of retrieves (``<dest>/<Study>/<Series>/<SOP>.dcm``, see
  :mod:`DicomServersLib.dicom_files`), counted from the file names without opening a file.

The browser asks for the rows it shows, so the answers are cached per study until
:meth:`LocalAvailability.forget` (after a transfer or a new search).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .dicom_files import TEMP_PREFIX
from .query_model import SeriesRecord, StudyRecord

NOT_HERE = ""
PARTIAL = "partial"
RETRIEVED = "retrieved"
IN_DATABASE = "in_database"
IN_FOLDER = "in_folder"

#: ``lookup(study_uid) -> {series_uid: instances}`` of what Slicer's DICOM database holds.
DatabaseLookup = Callable[[str], Mapping[str, int]]


@dataclass(frozen=True)
class LocalState:
    """Where a study or series is: ``state`` is one of the module's constants."""

    state: str = NOT_HERE
    present: int = 0
    expected: int | None = None

    def text(self) -> str:
        """Return the short text of the browser's "Local" column."""
        if self.state == IN_DATABASE:
            return "In Slicer"
        if self.state == RETRIEVED:
            return "Retrieved"
        if self.state == IN_FOLDER:
            return "PACS folder"
        if self.state == PARTIAL:
            return f"Partial ({self.present}/{self.expected})"
        return ""


class LocalAvailability:
    """Answers "is it here?" for the rows of the study browser.

    Parameters
    ----------
    dest : pathlib.Path or None
        The destination folder of retrieves (None: not counted).
    database : DatabaseLookup, optional
        What Slicer's DICOM database holds of a study.
    in_folder : bool, optional
        The server is in folder mode: everything it lists is in its storage folder.
    """

    def __init__(
        self,
        dest: Path | None,
        database: DatabaseLookup | None = None,
        *,
        in_folder: bool = False,
    ) -> None:
        self.dest = Path(dest) if dest is not None else None
        self.database = database
        self.in_folder = in_folder
        self._study_dirs: set[str] | None = None
        self._disk: dict[str, dict[str, int]] = {}
        self._db: dict[str, dict[str, int]] = {}

    def forget(self, study_uid: str | None = None) -> None:
        """Drop cached answers (of one study, or all) so they are looked up again."""
        self._study_dirs = None
        if study_uid is None:
            self._disk.clear()
            self._db.clear()
        else:
            self._disk.pop(study_uid, None)
            self._db.pop(study_uid, None)

    # -- counting ------------------------------------------------------------------------------

    def _on_disk(self, study_uid: str) -> dict[str, int]:
        cached = self._disk.get(study_uid)
        if cached is not None:
            return cached
        counts: dict[str, int] = {}
        if self.dest is not None:
            if self._study_dirs is None:
                try:
                    self._study_dirs = {e.name for e in os.scandir(self.dest) if e.is_dir()}
                except OSError:
                    self._study_dirs = set()
            if study_uid in self._study_dirs:
                try:
                    for series in os.scandir(self.dest / study_uid):
                        if series.is_dir():
                            counts[series.name] = sum(
                                1
                                for f in os.scandir(series.path)
                                if f.name.endswith(".dcm") and not f.name.startswith(TEMP_PREFIX)
                            )
                except OSError:
                    counts = {}
        self._disk[study_uid] = counts
        return counts

    def _in_database(self, study_uid: str) -> dict[str, int]:
        cached = self._db.get(study_uid)
        if cached is not None:
            return cached
        counts = dict(self.database(study_uid)) if self.database is not None else {}
        self._db[study_uid] = counts
        return counts

    @staticmethod
    def _state(present: int, expected: int | None, complete: str) -> LocalState:
        if present == 0:
            return LocalState(NOT_HERE, 0, expected)
        if expected is not None and present < expected:
            return LocalState(PARTIAL, present, expected)
        return LocalState(complete, present, expected)

    # -- answers -------------------------------------------------------------------------------

    def study(self, study: StudyRecord) -> LocalState:
        """Return where a study is: Slicer's database first, then the destination folder."""
        expected = study.instance_count
        in_db = self._in_database(study.study_uid)
        if in_db:
            return self._state(sum(in_db.values()), expected, IN_DATABASE)
        if self.in_folder:
            return LocalState(IN_FOLDER, expected or 0, expected)
        return self._state(sum(self._on_disk(study.study_uid).values()), expected, RETRIEVED)

    def series(self, series: SeriesRecord) -> LocalState:
        """Return where a series is."""
        expected = series.instance_count
        in_db = self._in_database(series.study_uid).get(series.series_uid, 0)
        if in_db:
            return self._state(in_db, expected, IN_DATABASE)
        if self.in_folder:
            return LocalState(IN_FOLDER, expected or 0, expected)
        present = self._on_disk(series.study_uid).get(series.series_uid, 0)
        return self._state(present, expected, RETRIEVED)

    def series_here(self, series: SeriesRecord) -> bool:
        """True when a series is complete in Slicer's database or the destination folder."""
        return self.series(series).state in (IN_DATABASE, RETRIEVED, IN_FOLDER)
