"""Slicer's DICOM boundary, faked on top of :mod:`harness.fake_slicer` (no Slicer runs here).

What the study browser's Slicer adapter (``DicomServersUI/slicer_dicom.py``) and the module's
console API touch, with the names and behaviour of Slicer and CTK (cited per item; CTK as
pinned by Slicer 5.12, ``5056664``):

- ``slicer.dicomDatabase``: a ``ctkDICOMDatabase`` stand-in (``isOpen``,
  ``databaseDirectory``, ``seriesForStudy``, ``instancesForSeries``, ``filesForSeries``:
  CTK ``Libs/DICOM/Core/ctkDICOMDatabase.h``) filled from the real headers of indexed files;
- ``ctk.ctkDICOMIndexer``: ``backgroundImportEnabled``, ``addListOfFiles(db, files, copy)``,
  ``waitForImportFinished()``, signal ``indexingComplete(int,int,int,int)`` emitted from the
  event loop when background import is on (CTK ``Libs/DICOM/Core/ctkDICOMIndexer.{h,cpp}``);
- ``DICOMLib.DICOMUtils.loadSeriesByUID`` (Slicer ``Modules/Scripted/DICOMLib/DICOMUtils.py``):
  the same argument checks, files from the database, recorded; ``TemporaryDICOMDatabase``;
- ``slicer.modules.DICOMWidget`` once "created": ``ui.networkingFrame`` (a group box with a
  ``QFormLayout``, as in Slicer's ``DICOM.ui``) and ``browserWidget.dicomVisualBrowser`` whose
  ``serverSettingsWidget()`` reads and writes ``DICOM/ServerNodes/<i>`` exactly as
  ``ctkDICOMServerNodeWidget2::readSettings/saveSettings`` do (JSON parsed from the settings
  text; the example servers when the count is 0);
- the legacy ``ctkDICOMQueryRetrieveWidget`` as a parentless top-level widget with a child
  ``ServerNodeWidget`` whose ``readSettings()`` reads ``ServerNodes/<i>`` QVariantMaps
  (CTK ``ctkDICOMServerNodeWidget.cpp``), and ``slicer.app.topLevelWidgets()``;
- ``slicer.util.moduleSelector()`` with the ``moduleSelected(QString)`` signal and
  ``slicer.util.selectModule`` (Slicer ``Base/Python/slicer/util.py``).

Use :func:`install` inside :func:`harness.fake_slicer.install`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from DicomServersLib.dicom_header import read_header
from PySide6 import QtCore, QtWidgets

from harness.fake_slicer import FakeSlicer

EXAMPLE_SERVERS = ("ExampleHost", "MedicalConnections")


@dataclass
class DicomCalls:
    """What the fake DICOM boundary was asked to do."""

    index: list[tuple[list[str], bool, bool]] = field(default_factory=list)  # files, copy, bg
    waits: int = 0
    load: list[list[str]] = field(default_factory=list)
    visual_reads: int = 0
    visual_saves: int = 0
    legacy_reads: int = 0
    selected_modules: list[str] = field(default_factory=list)


class FakeDicomDatabase:
    """``ctkDICOMDatabase``: what was indexed, by study and series."""

    def __init__(self, directory: Path) -> None:
        self.isOpen = True
        self.databaseDirectory = str(directory)
        self._files: dict[str, tuple[str, str, str]] = {}

    def insert(self, path: str) -> None:
        header = read_header(Path(path))
        self._files[str(path)] = (
            str(header.get("StudyInstanceUID")),
            str(header.get("SeriesInstanceUID")),
            str(header.get("SOPInstanceUID")),
        )

    def seriesForStudy(self, studyUID: str) -> list[str]:
        return sorted({se for st, se, _ in self._files.values() if st == studyUID})

    def instancesForSeries(self, seriesUID: str, hits: int = -1) -> list[str]:
        return sorted({sop for _, se, sop in self._files.values() if se == seriesUID})

    def filesForSeries(self, seriesUID: str, hits: int = -1) -> list[str]:
        return sorted(p for p, (_, se, _) in self._files.items() if se == seriesUID)


class FakeIndexer(QtCore.QObject):
    """``ctkDICOMIndexer``."""

    indexingComplete = QtCore.Signal(int, int, int, int)
    calls: DicomCalls

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.backgroundImportEnabled = False
        self._pending: list[tuple[FakeDicomDatabase, list[str]]] = []

    def addListOfFiles(self, database: Any, files: Any, copyFile: bool = False) -> None:
        files = [str(f) for f in files]
        self.calls.index.append((files, bool(copyFile), bool(self.backgroundImportEnabled)))
        self._pending.append((database, files))
        if self.backgroundImportEnabled:
            QtCore.QTimer.singleShot(0, self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        added = 0
        while self._pending:
            database, files = self._pending.pop(0)
            for path in files:
                database.insert(path)
                added += 1
        self.indexingComplete.emit(0, 0, 0, added)

    def waitForImportFinished(self, msecTimeout: int = -1) -> None:
        self.calls.waits += 1
        self._finish()


class FakeServerNodeWidget2:
    """``ctkDICOMServerNodeWidget2``: the visual browser's server table and its settings."""

    def __init__(self, settings: QtCore.QSettings, calls: DicomCalls) -> None:
        self.settings = settings
        self.calls = calls
        self.rows: list[dict[str, Any]] = []
        self.storage: dict[str, Any] = {}

    def readSettings(self) -> None:
        self.calls.visual_reads += 1
        count = int(self.settings.value("DICOM/ServerNodeCount", 0) or 0)
        if count == 0:
            self.rows = [{"Name": name} for name in EXAMPLE_SERVERS]
            return
        self.storage = {
            key: self.settings.value(f"DICOM/{key}")
            for key in ("StorageEnabled", "StorageAETitle", "StoragePort")
        }
        # QJsonDocument::fromJson(settings.value(...).toString().toUtf8())
        self.rows = [
            json.loads(str(self.settings.value(f"DICOM/ServerNodes/{row}"))) for row in range(count)
        ]

    def saveSettings(self) -> None:
        self.calls.visual_saves += 1
        self.settings.remove("DICOM/ServerNodes")
        self.settings.setValue("DICOM/ServerNodeCount", len(self.rows))
        for row, node in enumerate(self.rows):
            self.settings.setValue(f"DICOM/ServerNodes/{row}", json.dumps(node, indent=4))
        self.settings.sync()


class FakeVisualBrowser:
    """``ctkDICOMVisualBrowserWidget`` (only ``serverSettingsWidget()``)."""

    def __init__(self, nodeWidget: FakeServerNodeWidget2) -> None:
        self._nodeWidget = nodeWidget

    def serverSettingsWidget(self) -> FakeServerNodeWidget2:
        return self._nodeWidget


class FakeLegacyServerNodeWidget(QtWidgets.QWidget):
    """``ctkDICOMServerNodeWidget``: reads the root ``ServerNodes/<i>`` maps."""

    def __init__(self, settings: QtCore.QSettings, calls: DicomCalls, parent: Any) -> None:
        super().__init__(parent)
        self.setObjectName("ServerNodeWidget")
        self.settings = settings
        self.calls = calls
        self.rows: list[dict[str, Any]] = []

    def readSettings(self) -> None:
        self.calls.legacy_reads += 1
        count = int(self.settings.value("ServerNodeCount", 0) or 0)
        self.rows = [dict(self.settings.value(f"ServerNodes/{row}")) for row in range(count)]


class FakeQueryRetrieveWidget(QtWidgets.QWidget):
    """``ctkDICOMQueryRetrieveWidget``, created without a parent by ``ctkDICOMBrowser``."""

    def className(self) -> str:  # PythonQt's QObject.className()
        return "ctkDICOMQueryRetrieveWidget"


class FakeModuleSelector(QtCore.QObject):
    """``qSlicerModuleSelectorToolBar``: ``moduleSelected(QString)``."""

    moduleSelected = QtCore.Signal(str)


@dataclass
class FakeDicom:
    """The installed DICOM boundary."""

    fake: FakeSlicer
    database: FakeDicomDatabase
    calls: DicomCalls
    selector: FakeModuleSelector
    visual: FakeServerNodeWidget2
    legacy: FakeLegacyServerNodeWidget | None = None
    dicomWidget: Any = None
    loaded_node_count: int = 0

    def createDicomModuleWidget(self) -> Any:
        """Create the DICOM module widget and the legacy dialog (as opening the module does)."""
        frame = QtWidgets.QGroupBox("DICOM networking")
        frame.setObjectName("networkingFrame")
        QtWidgets.QFormLayout(frame)
        browser = types.SimpleNamespace(dicomVisualBrowser=FakeVisualBrowser(self.visual))
        self.dicomWidget = types.SimpleNamespace(
            ui=types.SimpleNamespace(networkingFrame=frame), browserWidget=browser
        )
        self.fake.slicer.modules.DICOMWidget = self.dicomWidget  # type: ignore[attr-defined]
        dialog = FakeQueryRetrieveWidget()
        self.legacy = FakeLegacyServerNodeWidget(self.fake.settings, self.calls, dialog)
        self._dialog = dialog
        return self.dicomWidget

    def close(self) -> None:
        if self.dicomWidget is not None:
            self.dicomWidget.ui.networkingFrame.deleteLater()
        dialog = getattr(self, "_dialog", None)
        if dialog is not None:
            dialog.deleteLater()


def _make_dicomutils(dicom: FakeDicom) -> types.ModuleType:
    utils = types.ModuleType("DICOMLib.DICOMUtils")

    def loadSeriesByUID(seriesUIDs: Any, messages: Any = None, **kwargs: Any) -> list[str]:
        if not isinstance(seriesUIDs, list):
            raise ValueError("SeriesUIDs must contain a list")
        if seriesUIDs is None or len(seriesUIDs) == 0:
            raise ValueError("No series UIDs given")
        if not dicom.database.isOpen:
            raise OSError("DICOM module or database cannot be accessed")
        dicom.calls.load.append(list(seriesUIDs))
        nodes = []
        for seriesUID in seriesUIDs:
            if dicom.database.filesForSeries(seriesUID):
                dicom.loaded_node_count += 1
                nodes.append(f"vtkMRMLScalarVolumeNode{dicom.loaded_node_count}")
        return nodes

    class TemporaryDICOMDatabase:
        """Swap ``slicer.dicomDatabase`` for an empty temporary one (DICOMUtils' context)."""

        def __enter__(self) -> FakeDicomDatabase:
            import tempfile

            self.original = dicom.fake.slicer.dicomDatabase  # type: ignore[attr-defined]
            self.folder = tempfile.mkdtemp(prefix="TemporaryDICOMDatabase-")
            dicom.database = FakeDicomDatabase(Path(self.folder))
            dicom.fake.slicer.dicomDatabase = dicom.database  # type: ignore[attr-defined]
            return dicom.database

        def __exit__(self, *exc: object) -> None:
            import shutil

            dicom.database = self.original
            dicom.fake.slicer.dicomDatabase = self.original  # type: ignore[attr-defined]
            shutil.rmtree(self.folder, ignore_errors=True)

    utils.loadSeriesByUID = loadSeriesByUID  # type: ignore[attr-defined]
    utils.TemporaryDICOMDatabase = TemporaryDICOMDatabase  # type: ignore[attr-defined]
    return utils


@contextlib.contextmanager
def install(fake: FakeSlicer, database_dir: Path) -> Iterator[FakeDicom]:
    """Add the DICOM boundary to an installed fake Slicer; remove it on exit."""
    database_dir.mkdir(parents=True, exist_ok=True)
    calls = DicomCalls()
    selector = FakeModuleSelector()
    dicom = FakeDicom(
        fake=fake,
        database=FakeDicomDatabase(database_dir),
        calls=calls,
        selector=selector,
        visual=FakeServerNodeWidget2(fake.settings, calls),
    )
    slicer = fake.slicer
    slicer.dicomDatabase = dicom.database  # type: ignore[attr-defined]
    slicer.modules = types.SimpleNamespace()  # type: ignore[attr-defined]
    slicer.app.topLevelWidgets = QtWidgets.QApplication.topLevelWidgets  # type: ignore[attr-defined]
    slicer.util.moduleSelector = lambda: selector  # type: ignore[attr-defined]

    def selectModule(name: str) -> None:
        calls.selected_modules.append(name)
        selector.moduleSelected.emit(name)

    slicer.util.selectModule = selectModule  # type: ignore[attr-defined]
    ctk = sys.modules["ctk"]
    FakeIndexer.calls = calls
    ctk.ctkDICOMIndexer = FakeIndexer  # type: ignore[attr-defined]
    dicomlib = types.ModuleType("DICOMLib")
    dicomlib.DICOMUtils = _make_dicomutils(dicom)  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("DICOMLib", "DICOMLib.DICOMUtils")}
    sys.modules["DICOMLib"] = dicomlib
    sys.modules["DICOMLib.DICOMUtils"] = dicomlib.DICOMUtils  # type: ignore[attr-defined]
    try:
        yield dicom
    finally:
        dicom.close()
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
