"""Table models of the study browser: studies, the series of one study, and the transfers.

Plain ``qt.QAbstractTableModel`` subclasses over Python lists (PythonQt wraps the class with a
shell that forwards the virtual methods to Python, as PySide6 does). Only the rows on screen
are asked for their text, so 100,000 studies fill the view in milliseconds; a
``QTreeView`` was measured at 1.3 s for the same list, because it lays out every top-level row
through Python calls (``index``, ``hasChildren``, ``flags``), hence a table of studies and the
selected study's series in a second table (the preview).
"""

from __future__ import annotations

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from DicomServersLib.transfer_queue import CANCELLED, DONE, FAILED, QUEUED, RUNNING

STUDY_UID_ROLE = qt.Qt.UserRole
RIGHT = qt.Qt.AlignRight | qt.Qt.AlignVCenter
NO_PARENT = qt.QModelIndex()


def formatDate(text: str) -> str:
    """``20240131`` → ``2024-01-31`` (other text unchanged)."""
    digits = "".join(c for c in text if c.isdigit())
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if len(digits) >= 8 else text


def formatTime(text: str) -> str:
    """``083000.123`` → ``08:30``."""
    digits = "".join(c for c in text.split(".")[0] if c.isdigit())
    return f"{digits[:2]}:{digits[2:4]}" if len(digits) >= 4 else text


def formatSize(count: int) -> str:
    """Return a byte count as ``12.3 MB``."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def personName(text: str) -> str:
    """``Doe^Jane`` → ``Doe, Jane`` (first component group only for display)."""
    first = text.split("=")[0]
    parts = [p.strip() for p in first.split("^")]
    family, given = (parts + ["", ""])[:2]
    return f"{family}, {given}" if given else family or text


def _count(value) -> str:
    return "" if value is None else str(value)


class _ListModel(qt.QAbstractTableModel):
    """A table over a Python list; subclasses give ``COLUMNS`` and ``text(item, column)``."""

    COLUMNS: tuple = ()
    NUMERIC: frozenset = frozenset()

    def __init__(self, parent=None):
        qt.QAbstractTableModel.__init__(self, parent)
        self.items: list = []

    def setItems(self, items) -> None:
        """Replace every row."""
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def item(self, row: int):
        """Return the item of ``row`` (None when out of range)."""
        return self.items[row] if 0 <= row < len(self.items) else None

    def rowCount(self, parent=NO_PARENT):
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent=NO_PARENT):
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=qt.Qt.DisplayRole):
        if orientation == qt.Qt.Horizontal and role == qt.Qt.DisplayRole:
            return self.COLUMNS[section] if 0 <= section < len(self.COLUMNS) else None
        return None

    def data(self, index, role=qt.Qt.DisplayRole):
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if row >= len(self.items):
            return None
        if role == qt.Qt.DisplayRole:
            return self.text(self.items[row], column)
        if role == qt.Qt.ToolTipRole:
            return self.toolTip(self.items[row], column)
        if role == qt.Qt.TextAlignmentRole and column in self.NUMERIC:
            return RIGHT
        return self.otherData(self.items[row], column, role)

    def text(self, item, column: int) -> str:
        return ""

    def toolTip(self, item, column: int):
        return None

    def otherData(self, item, column: int, role):
        return None


class StudyTableModel(_ListModel):
    """The studies found: one row per :class:`DicomServersLib.query_model.StudyRecord`.

    ``availability`` (a :class:`DicomServersLib.local_availability.LocalAvailability`) fills
    the "Local" column for the rows on screen.
    """

    COLUMNS = (
        "Patient name",
        "Patient ID",
        "Date",
        "Modality",
        "Description",
        "Accession",
        "Series",
        "Instances",
        "Local",
    )
    DATE_COLUMN = 2
    LOCAL_COLUMN = 8
    NUMERIC = frozenset({6, 7})

    def __init__(self, parent=None):
        _ListModel.__init__(self, parent)
        self.availability = None
        self.sortColumn = self.DATE_COLUMN
        self.descending = True

    def setStudies(self, studies) -> None:
        """Show ``studies``, in the current sort order."""
        self.beginResetModel()
        self.items = self._sorted(list(studies))
        self.endResetModel()

    def study(self, row: int):
        """Return the study of ``row``."""
        return self.item(row)

    def rowOf(self, studyUID: str) -> int:
        """Return the row of a study, or -1."""
        for row, study in enumerate(self.items):
            if study.study_uid == studyUID:
                return row
        return -1

    _KEYS = (
        lambda s: s.patient_name.casefold(),
        lambda s: s.patient_id,
        lambda s: s.study_date + s.study_time,  # one string: 3x faster to sort than a tuple
        lambda s: "/".join(s.modalities),
        lambda s: s.study_description.casefold(),
        lambda s: s.accession_number,
        lambda s: s.series_count if s.series_count is not None else -1,
        lambda s: s.instance_count if s.instance_count is not None else -1,
        lambda s: s.study_uid,
    )

    def _sorted(self, studies: list) -> list:
        if 0 <= self.sortColumn < len(self._KEYS):
            studies.sort(key=self._KEYS[self.sortColumn], reverse=self.descending)
        return studies

    def sort(self, column, order=qt.Qt.AscendingOrder):
        """Sort by ``column`` (Qt calls this when a header is clicked)."""
        self.sortColumn = column
        self.descending = order == qt.Qt.DescendingOrder
        self.beginResetModel()
        self.items = self._sorted(self.items)
        self.endResetModel()

    def text(self, study, column: int) -> str:
        if column == 0:
            return personName(study.patient_name)
        if column == 1:
            return study.patient_id
        if column == 2:
            date = formatDate(study.study_date)
            time = formatTime(study.study_time)
            return f"{date} {time}" if date and time else date
        if column == 3:
            return "/".join(study.modalities)
        if column == 4:
            return study.study_description
        if column == 5:
            return study.accession_number
        if column == 6:
            return _count(study.series_count)
        if column == 7:
            return _count(study.instance_count)
        if column == 8 and self.availability is not None:
            return self.availability.study(study).text()
        return ""

    def toolTip(self, study, column: int):
        if column == 0:
            return study.patient_name
        if column == 2 and not study.study_date:
            return "This study has no date: a date filter never finds it."
        if column == 8:
            return "Where the study already is: in Slicer's DICOM database, or retrieved"
        return None


class SeriesTableModel(_ListModel):
    """The series of the selected study (:class:`DicomServersLib.query_model.SeriesRecord`)."""

    COLUMNS = ("#", "Modality", "Description", "Instances", "Local")
    NUMERIC = frozenset({0, 3})

    def __init__(self, parent=None):
        _ListModel.__init__(self, parent)
        self.availability = None

    def series(self, row: int):
        """Return the series of ``row``."""
        return self.item(row)

    def text(self, series, column: int) -> str:
        if column == 0:
            return series.series_number
        if column == 1:
            return series.modality
        if column == 2:
            return series.series_description
        if column == 3:
            return _count(series.instance_count)
        if column == 4 and self.availability is not None:
            return self.availability.series(series).text()
        return ""


_STATE_TEXT = {
    QUEUED: "Queued",
    RUNNING: "Running",
    DONE: "Done",
    FAILED: "Failed",
    CANCELLED: "Cancelled",
}


class TransferTableModel(_ListModel):
    """Queued, running and finished transfers (:class:`TransferStatus`, by request id)."""

    COLUMNS = ("Study", "Series", "Instances", "Size", "State")
    NUMERIC = frozenset({2, 3})

    def update(self, status) -> None:
        """Add or refresh the row of a transfer."""
        for row, known in enumerate(self.items):
            if known.request_id == status.request_id:
                self.items[row] = status
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
                return
        row = len(self.items)
        self.beginInsertRows(qt.QModelIndex(), row, row)
        self.items.append(status)
        self.endInsertRows()

    def requestId(self, row: int):
        """Return the request id of ``row``, or None."""
        status = self.item(row)
        return status.request_id if status is not None else None

    def text(self, status, column: int) -> str:
        request = status.request
        if column == 0:
            return request.label or request.study_uid
        if column == 1:
            if request.series_uids:
                return str(len(request.series_uids))
            return f"all ({request.series_count})" if request.series_count else "all"
        if column == 2:
            total = status.instances_total
            done = status.instances_done
            return f"{done} / {total}" if total else str(done)
        if column == 3:
            return formatSize(status.bytes_done)
        if column == 4:
            text = _STATE_TEXT.get(status.state, status.state)
            if request.dest is None and status.state == DONE:
                text += " (in place)"
            return text
        return ""

    def toolTip(self, status, column: int):
        result = status.result
        if result is not None and result.diagnosis:
            return result.diagnosis
        return status.progress.message or None
