"""The Slicer boundary of the study browser: Slicer's DICOM database and its DICOM module.

Everything Slicer- or CTK-specific the browser needs is here, and nothing else:

- :class:`SlicerDicomHost`: retrieved files are imported into ``slicer.dicomDatabase`` with a
  ``ctk.ctkDICOMIndexer`` (in the background for the browser, waited for from the console);
  folder-mode files are indexed where they are, in the PACS folder (no copy); series load with
  ``DICOMUtils.loadSeriesByUID``;
- :class:`SlicerServerTablesSync`: whenever our server list changes, both of Slicer's own server
  tables (the visual DICOM browser's and the legacy query/retrieve dialog's) are rewritten in
  our order (:mod:`DicomServersLib.slicer_tables`) and their live widgets re-read them;
- :class:`DicomModuleHook`: a server dropdown (our order, default preselected) and an
  "Open study browser" button in the DICOM module's "DICOM networking" section.

Every Slicer and CTK name used is cited with the file that defines it (CTK as pinned by Slicer
5.8 ``82cae57`` and 5.12 ``5056664``; Slicer tags v5.8.0 and v5.12.0). PythonQt reaches only
properties, signals, slots and ``Q_INVOKABLE`` methods of C++ classes, so only those are used.
``slicer``, ``ctk`` and ``DICOMLib`` are imported inside the functions, so the module imports
outside Slicer (tests fake that boundary).
"""

from __future__ import annotations

import logging
from pathlib import Path

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from DicomServersLib.slicer_tables import listener_conflicts, write_tables

from .study_browser import BrowserHost, StudyBrowser
from .ui_loader import setContentsMargins

log = logging.getLogger(__name__)

#: Sub-folder of the DICOM database folder receiving retrieved studies (indexed in place).
RETRIEVE_FOLDER = "DicomServers"
HOOK_OBJECT_NAME = "DicomServersDicomModuleHook"


def _className(obj) -> str:
    """Return the C++ class name of a Qt object (PythonQt's ``className()``, else meta-object)."""
    name = getattr(obj, "className", None)
    if callable(name):
        return str(name())
    return str(obj.metaObject().className())


def _database():
    """Return ``slicer.dicomDatabase`` (a ``ctkDICOMDatabase``) when it is open, else None.

    Slicer sets ``slicer.dicomDatabase`` in ``DICOM.initializeDICOMDatabase``
    (Slicer ``Modules/Scripted/DICOM/DICOM.py``); ``isOpen`` is a Q_PROPERTY of
    ``ctkDICOMDatabase`` (CTK ``Libs/DICOM/Core/ctkDICOMDatabase.h``).
    """
    import slicer

    database = getattr(slicer, "dicomDatabase", None)
    if database is None or not database.isOpen:
        return None
    return database


class SlicerDicomHost(BrowserHost):
    """The browser's host inside Slicer: Slicer's DICOM database and scene.

    Retrieved studies go to ``<DICOM database folder>/DicomServers`` and are indexed there
    (not copied again); folder-mode files are indexed in the PACS folder itself.
    """

    inPlace = True
    canLoad = True

    def __init__(self, destination=None):
        BrowserHost.__init__(self, destination or self.defaultDestination())
        self._indexer = None
        self._waiting: list = []

    @staticmethod
    def defaultDestination() -> Path:
        """Return ``<DICOM database folder>/DicomServers`` (Slicer's temporary folder if none).

        ``databaseDirectory`` is a Q_PROPERTY of ``ctkDICOMDatabase`` (CTK
        ``Libs/DICOM/Core/ctkDICOMDatabase.h``); ``slicer.app.temporaryPath`` is a property
        of ``qSlicerCoreApplication``.
        """
        import slicer

        database = _database()
        folder = database.databaseDirectory if database is not None else ""
        if not folder:
            folder = slicer.app.temporaryPath
        return Path(folder) / RETRIEVE_FOLDER

    def databaseLookup(self, studyUID: str) -> dict:
        """Return ``{series UID: instances}`` of a study in Slicer's DICOM database.

        ``seriesForStudy`` and ``instancesForSeries`` are ``Q_INVOKABLE`` on
        ``ctkDICOMDatabase`` (CTK ``Libs/DICOM/Core/ctkDICOMDatabase.h``).
        """
        database = _database()
        if database is None:
            return {}
        return {
            seriesUID: len(database.instancesForSeries(seriesUID))
            for seriesUID in database.seriesForStudy(studyUID)
        }

    def _getIndexer(self):
        """One background ``ctkDICOMIndexer`` for the browser (CTK ``ctkDICOMIndexer.h``).

        ``backgroundImportEnabled`` (Q_PROPERTY) makes ``addListOfFiles`` return at once and
        index in a worker thread; requests queue up; ``indexingComplete(int,int,int,int)`` is
        emitted when the queue is empty (CTK ``Libs/DICOM/Core/ctkDICOMIndexer.{h,cpp}``).
        """
        if self._indexer is None:
            import ctk

            self._indexer = ctk.ctkDICOMIndexer()
            self._indexer.backgroundImportEnabled = True
            self._indexer.indexingComplete.connect(self._onIndexingComplete)
        return self._indexer

    def importFiles(self, files, inPlace: bool, done) -> None:
        """Index ``files`` into Slicer's database in the background; ``done()`` when finished.

        Files are never copied (``copyFile`` False): retrieved files already sit in the
        database folder, and folder-mode files are used where they are.
        """
        database = _database()
        if database is None:
            raise RuntimeError(
                "Slicer's DICOM database is not open: open the DICOM module once to create it."
            )
        self.imported.append((list(files), inPlace))
        self._waiting.append(done)
        self._getIndexer().addListOfFiles(database, [str(f) for f in files], False)

    def _onIndexingComplete(self, *counts) -> None:
        waiting, self._waiting = self._waiting, []
        for done in waiting:
            done()

    def importFilesNow(self, files, inPlace: bool = False) -> None:
        """Index ``files`` and wait until they are in the database (the console's retrieve).

        ``addListOfFiles(db, files, copyFile)`` and ``waitForImportFinished(msecTimeout)`` are
        ``Q_INVOKABLE`` (CTK ``Libs/DICOM/Core/ctkDICOMIndexer.h``); this is what
        ``DICOMUtils.importDicom`` does for a folder (Slicer ``DICOMLib/DICOMUtils.py``).
        """
        import ctk

        database = _database()
        if database is None:
            raise RuntimeError(
                "Slicer's DICOM database is not open: open the DICOM module once to create it."
            )
        indexer = ctk.ctkDICOMIndexer()
        indexer.addListOfFiles(database, [str(f) for f in files], False)
        indexer.waitForImportFinished()
        self.imported.append((list(files), inPlace))

    def loadSeries(self, seriesUIDs) -> str:
        """Load series from Slicer's database into the scene; return what was loaded.

        ``DICOMUtils.loadSeriesByUID(list)`` returns the loaded node IDs
        (Slicer ``Modules/Scripted/DICOMLib/DICOMUtils.py``).
        """
        from DICOMLib import DICOMUtils

        nodeIDs = DICOMUtils.loadSeriesByUID(list(seriesUIDs))
        self.loaded.append(list(seriesUIDs))
        return f"Loaded {len(seriesUIDs)} series into the scene ({len(nodeIDs or [])} nodes)."


# -- Slicer's own server tables -------------------------------------------------------------


def visualServerSettingsWidget():
    """Return the visual DICOM browser's ``ctkDICOMServerNodeWidget2``, or None.

    ``slicer.modules.DICOMWidget`` exists once the DICOM module widget was created; its
    ``browserWidget`` is a ``DICOMLib.SlicerDICOMBrowser`` whose ``dicomVisualBrowser`` is a
    ``ctkDICOMVisualBrowserWidget`` (Slicer ``Modules/Scripted/DICOM/DICOM.py``,
    ``DICOMLib/DICOMBrowser.py``, 5.8+); ``serverSettingsWidget()`` is ``Q_INVOKABLE``
    (CTK ``Libs/DICOM/Widgets/ctkDICOMVisualBrowserWidget.h``).
    """
    import slicer

    dicomWidget = getattr(slicer.modules, "DICOMWidget", None)
    browser = getattr(dicomWidget, "browserWidget", None)
    visual = getattr(browser, "dicomVisualBrowser", None)
    if visual is None or not hasattr(visual, "serverSettingsWidget"):
        return None
    return visual.serverSettingsWidget()


def legacyServerNodeWidget():
    """Return the legacy query/retrieve dialog's ``ctkDICOMServerNodeWidget``, or None.

    ``ctkDICOMBrowser`` creates its ``ctkDICOMQueryRetrieveWidget`` without a parent, so it is
    a top-level widget (CTK ``Libs/DICOM/Widgets/ctkDICOMBrowser.cpp``); its server table is
    the child ``ServerNodeWidget`` (``Resources/UI/ctkDICOMQueryRetrieveWidget.ui``).
    """
    import slicer

    for widget in slicer.app.topLevelWidgets():
        if _className(widget) == "ctkDICOMQueryRetrieveWidget":
            child = widget.findChild(qt.QWidget, "ServerNodeWidget")
            if child is not None:
                return child
    return None


class SlicerServerTablesSync:
    """Keeps Slicer's two server tables equal to our list, in our order.

    On every change of the list: the keys of both tables are rewritten in Slicer's settings
    (:func:`DicomServersLib.slicer_tables.write_tables`, on ``slicer.app.userSettings()``),
    then the live widgets re-read them: the visual browser's server widget with
    ``readSettings()`` then ``saveSettings()`` (``saveSettings`` hands the servers to its
    scheduler), the legacy widget with ``readSettings()`` (both are slots: CTK
    ``ctkDICOMServerNodeWidget2.h``, ``ctkDICOMServerNodeWidget.h``). Our list is the source
    of truth: an edit made in Slicer's tables lasts until our list changes next.

    Parameters
    ----------
    registry
        Our server list.
    settings
        A QSettings-like object; default ``slicer.app.userSettings()``.
    """

    def __init__(self, registry, settings=None):
        self.registry = registry
        self._settings = settings
        self.warnings: list = []
        registry.add_listener(self.sync)

    def settings(self):
        """The settings written (Slicer's application settings by default)."""
        if self._settings is not None:
            return self._settings
        import slicer

        return slicer.app.userSettings()

    def sync(self) -> None:
        """Write both tables and refresh the live widgets; log listener-port conflicts."""
        servers = self.registry.servers
        settings = self.settings()
        write_tables(settings, servers)
        self.warnings = listener_conflicts(settings, servers)
        for warning in self.warnings:
            log.warning("DICOM Servers: %s", warning)
        visual = visualServerSettingsWidget()
        if visual is not None:
            visual.readSettings()
            visual.saveSettings()
        legacy = legacyServerNodeWidget()
        if legacy is not None:
            legacy.readSettings()

    def remove(self) -> None:
        """Stop following the list."""
        self.registry.remove_listener(self.sync)


# -- the DICOM module panel -----------------------------------------------------------------


class DicomModuleHook:
    """Our server dropdown and an "Open study browser" button in the DICOM module panel.

    They go into the layout of ``ui.networkingFrame`` ("DICOM networking", a
    ``ctkCollapsibleButton`` with a ``QFormLayout`` in Slicer
    ``Modules/Scripted/DICOM/Resources/UI/DICOM.ui``; ``DICOM.py`` itself adds widgets there).

    Parameters
    ----------
    registry
        Our server list (the dropdown follows it).
    openBrowser
        ``openBrowser(serverName)``: show our study browser on that server.
    """

    def __init__(self, registry, openBrowser, warnings=None):
        self.registry = registry
        self.openBrowser = openBrowser
        self.warnings = warnings or (lambda: [])
        self.container = None
        self.serverComboBox = None
        self.openButton = None
        self.warningLabel = None

    def installInto(self, dicomWidget) -> bool:
        """Add the dropdown and button to a DICOM module widget (once); True if added now."""
        frame = dicomWidget.ui.networkingFrame
        if frame.findChild(qt.QWidget, HOOK_OBJECT_NAME) is not None:
            return False
        container = qt.QWidget()
        container.objectName = HOOK_OBJECT_NAME
        layout = qt.QHBoxLayout(container)
        setContentsMargins(layout, 0, 0, 0, 0)
        combo = qt.QComboBox()
        combo.objectName = "DicomServersServerComboBox"
        combo.toolTip = "DICOM servers in the order of the DICOM Servers module's list"
        button = qt.QPushButton("Open study browser")
        button.objectName = "DicomServersOpenBrowserButton"
        button.toolTip = "Search this server and bring its studies into Slicer (DICOM Servers)"
        layout.addWidget(combo, 1)
        layout.addWidget(button)
        warning = qt.QLabel()
        warning.objectName = "DicomServersListenerWarningLabel"
        warning.wordWrap = True
        warning.styleSheet = "color: #b45309;"
        formLayout = frame.layout()
        if hasattr(formLayout, "addRow"):
            formLayout.addRow("DICOM Servers:", container)
            formLayout.addRow("", warning)
        else:
            formLayout.addWidget(container)
            formLayout.addWidget(warning)
        self.container, self.serverComboBox, self.openButton = container, combo, button
        self.warningLabel = warning
        button.clicked.connect(self.onOpenClicked)
        self.registry.add_listener(self.refresh)
        self.refresh()
        return True

    def refresh(self) -> None:
        """Fill the dropdown in list order; keep the choice, else preselect the default."""
        combo = self.serverComboBox
        if combo is None:
            return
        current = combo.currentText
        names = self.registry.names()
        preselected = self.registry.preselected()
        keep = current if current in names else (preselected.name if preselected else "")
        combo.clear()
        for name in names:
            combo.addItem(name)
        combo.currentIndex = names.index(keep) if keep in names else -1
        self.openButton.enabled = bool(names)
        warnings = self.warnings()
        self.warningLabel.text = "\n".join(warnings)
        self.warningLabel.visible = bool(warnings)

    def onOpenClicked(self) -> None:
        """Open our study browser on the chosen server."""
        name = self.serverComboBox.currentText
        if name:
            self.openBrowser(name)

    def remove(self) -> None:
        """Stop following the list (the widgets go with the DICOM module panel)."""
        self.registry.remove_listener(self.refresh)


class SlicerIntegration:
    """Everything DICOM Servers adds to Slicer's DICOM module, installed at startup.

    The tables are synced at once and on every change of the list; the panel hook is added
    when the DICOM module widget exists (now, or when the user first opens the module:
    ``moduleSelected(QString)`` of the module selector, Slicer
    ``Base/QTGUI/qSlicerModuleSelectorToolBar.h``; ``slicer.util.moduleSelector()`` in
    ``Base/Python/slicer/util.py``).
    """

    def __init__(self, registry, openBrowser, settings=None):
        self.tables = SlicerServerTablesSync(registry, settings)  # listens first: warnings ready
        self.hook = DicomModuleHook(registry, openBrowser, lambda: self.tables.warnings)
        self._selector = None

    def install(self) -> None:
        """Sync the tables now and hook into the DICOM module panel (now or when opened).

        An empty list of ours (a fresh installation) leaves Slicer's tables as the user had
        them; from the first change of our list on, they follow it.
        """
        import slicer

        if self.tables.registry.names():
            self.tables.sync()
        if not self.hookDicomModule():
            selector = slicer.util.moduleSelector()
            if selector is not None:
                self._selector = selector
                selector.moduleSelected.connect(self.onModuleSelected)

    def hookDicomModule(self) -> bool:
        """Add the dropdown if the DICOM module widget exists; True when it is in place."""
        import slicer

        dicomWidget = getattr(slicer.modules, "DICOMWidget", None)
        if dicomWidget is None or getattr(dicomWidget, "ui", None) is None:
            return False
        self.hook.installInto(dicomWidget)
        return True

    def onModuleSelected(self, name: str) -> None:
        """The user opened a module: when it is DICOM, add our dropdown (once)."""
        if name == "DICOM" and self.hookDicomModule() and self._selector is not None:
            self._selector.moduleSelected.disconnect(self.onModuleSelected)
            self._selector = None

    def remove(self) -> None:
        """Stop following the list and the module selector."""
        self.tables.remove()
        self.hook.remove()
        if self._selector is not None:
            self._selector.moduleSelected.disconnect(self.onModuleSelected)
            self._selector = None


# -- the study browser in our module panel --------------------------------------------------


class StudyBrowserSection:
    """The study browser in the DICOM Servers module panel: a collapsible section.

    The browser (and its first search) is only built when the section is first expanded or
    :meth:`show` is called. ``ctk.ctkCollapsibleButton`` has the ``collapsed`` property and the
    ``contentsCollapsed(bool)`` signal (CTK ``Libs/Widgets/ctkCollapsibleButton.h``).

    Parameters
    ----------
    parentLayout
        The module panel's layout.
    registry
        Our server list.
    transferQueue
        The logic's transfer queue (shared with the console).
    hostFactory
        Builds the browser's host (default :class:`SlicerDicomHost`).
    """

    def __init__(self, parentLayout, registry, transferQueue, hostFactory=SlicerDicomHost):
        import ctk

        self.registry = registry
        self.transferQueue = transferQueue
        self.hostFactory = hostFactory
        self.browser = None
        self.button = ctk.ctkCollapsibleButton()
        self.button.objectName = "StudyBrowserCollapsibleButton"
        self.button.text = "Study browser"
        self.button.collapsed = True
        self.layout = qt.QVBoxLayout(self.button)
        parentLayout.addWidget(self.button)
        self.button.contentsCollapsed.connect(self.onCollapsed)

    def onCollapsed(self, collapsed: bool) -> None:
        """Build the browser the first time the section opens."""
        if not collapsed:
            self.ensureBrowser()

    def ensureBrowser(self):
        """Return the browser, building it on first use."""
        if self.browser is None:
            self.browser = StudyBrowser(
                self.registry, host=self.hostFactory(), transferQueue=self.transferQueue
            )
            self.layout.addWidget(self.browser.widget)
        return self.browser

    def show(self, serverName: str | None = None):
        """Open the section (building the browser) on ``serverName``; return the browser."""
        browser = self.ensureBrowser()
        self.button.collapsed = False
        if serverName:
            browser.setServer(serverName)
        return browser

    def cleanup(self) -> None:
        """Stop the browser's timers and searches (the queue belongs to the logic)."""
        if self.browser is not None:
            self.browser.cleanup()
