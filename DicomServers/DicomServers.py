"""DICOM Servers: the Slicer module of the DicomServers extension.

This file only wires Slicer to the pure core in ``DicomServersLib/`` (which never imports
Slicer or Qt) and to the Qt widgets in ``DicomServersUI/``. It follows Slicer's scripted-module
template (Slicer ``Utilities/Templates/Modules/Scripted/TemplateKey.py``) and its base classes
(``Base/Python/slicer/ScriptedLoadableModule.py``): Module (metadata), Widget (module panel),
Logic (work that runs without the GUI) and Test (``Reload and Test``, ctest ``py_DicomServers``).
"""

import importlib
import importlib.util
import logging
import os
import sys
import tempfile

import qt
import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

try:  # Slicer's translation functions (Base/Python/slicer/i18n.py)
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # a Slicer without i18n: show the English text

    def _(text):
        return text

    def translate(context, text):
        return text


# Slicer puts this module's folder on sys.path before loading it
# (Base/QTGUI/qSlicerScriptedLoadableModuleFactory.cxx), so the packages beside it import.
from DicomServersLib import requirements
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore, open_secret_store
from DicomServersLib.settings_store import SettingsStore

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
RESOURCES_DIR = os.path.join(MODULE_DIR, "Resources")
HOMEPAGE = "https://github.com/dicomservers/SlicerDicomServers"
RELOADED_PACKAGES = ("DicomServersLib", "DicomServersUI")
SETTINGS_GROUP = "DicomServers"


#
# DicomServers
#


class DicomServers(ScriptedLoadableModule):
    """Module metadata; Slicer loads the icon from ``Resources/Icons/DicomServers.png``."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("DICOM Servers")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Informatics")]
        self.parent.dependencies = []
        self.parent.contributors = ["DicomServers contributors (" + HOMEPAGE + ")"]
        self.parent.helpText = _(
            "Keep an ordered list of DICOM servers (PACS): add, duplicate, reorder, test and"
            " remove them, search their studies, pull studies into Slicer, send results back,"
            " read the modality worklist and hear when new studies arrive."
            ' See the <a href="{homepage}">documentation</a>.'
        ).format(homepage=HOMEPAGE)
        self.parent.acknowledgementText = _(
            "DicomServers is open source (Apache License 2.0). It talks DICOM through"
            " pydicom and pynetdicom and builds on 3D Slicer's DICOM module and CTK."
        )
        # Slicer's own DICOM browsers list our servers, and the DICOM module gets our server
        # dropdown, once the application has started (``startupCompleted()`` of
        # qSlicerApplication, connected the way Modules/Scripted/DICOM/DICOM.py does it).
        if hasattr(slicer.app, "connect"):
            slicer.app.connect("startupCompleted()", installSlicerIntegration)


def sharedLogic():
    """Return the one :class:`DicomServersLogic` of the session (panel, browser, DICOM module)."""
    if DicomServersLogic.shared is None:
        DicomServersLogic.shared = DicomServersLogic()
    return DicomServersLogic.shared


def installSlicerIntegration():
    """Keep Slicer's DICOM browsers' server tables in our order; hook the DICOM module panel."""
    try:
        sharedLogic().installSlicerIntegration()
    except Exception:  # never break Slicer's startup
        logging.exception("DICOM Servers: could not hook into Slicer's DICOM module")


def openStudyBrowser(serverName=None):
    """Show the DICOM Servers module with its study browser on ``serverName``."""
    slicer.util.selectModule("DicomServers")  # Slicer Base/Python/slicer/util.py
    return slicer.modules.DicomServersWidget.showStudyBrowser(serverName)


#
# Python dependencies
#


def ensurePythonDependencies(requester=None):
    """Install the Python packages the network features need (pynetdicom), if missing.

    The module widget calls it when the module is first opened. The requirements file is
    chosen by the core (``DicomServersLib/requirements.py``) from the pydicom Slicer ships:
    ``Resources/requirements.txt`` for pydicom 3 (Slicer 5.12+),
    ``Resources/requirements-slicer-5.10.txt`` for pydicom 2.4. On Slicer 5.12+ this is
    ``slicer.packaging.pip_ensure`` (asks the user, skipped under ``--testing``); on 5.10 the
    same steps are done here around ``slicer.util.pip_install``.

    Raises
    ------
    RuntimeError
        The user declined the installation.
    """
    requester = requester or _("DICOM Servers")
    pydicomVersion = requirements.installed_version("pydicom") or "3"
    path = os.path.join(RESOURCES_DIR, requirements.requirements_file_for(pydicomVersion))
    try:
        import slicer.packaging as packaging  # Slicer 5.12+ (Base/Python/slicer/packaging.py)
    except ImportError:
        packaging = None
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(packaging.load_requirements(path), requester=requester)
        return
    missing = [
        str(r) for r in requirements.missing_requirements(requirements.read_requirements(path))
    ]
    if not missing:
        return
    if slicer.app.testingEnabled():
        logging.info("Testing mode: not installing %s", ", ".join(missing))
        return
    message = _("{requester} needs these Python packages, which will be installed now:").format(
        requester=requester
    )
    if not slicer.util.confirmOkCancelDisplay(message + "\n\n" + "\n".join(missing)):
        raise RuntimeError(
            _("Installation of {packages} was declined").format(packages=", ".join(missing))
        )
    slicer.util.pip_install(missing)  # a list: each item is one argument (Slicer 5.10 util.py)


#
# DicomServersWidget
#


class DicomServersWidget(ScriptedLoadableModuleWidget):
    """The module panel. The server panel itself is built in ``DicomServersUI/``."""

    def __init__(self, parent=None):
        """Called when the user opens the module the first time."""
        self.logic = None
        self.ui = None
        self.panel = None  # hook: the server-list panel from DicomServersUI, created in setup()
        self.notifications = None  # the NotificationsController, created in setup()
        ScriptedLoadableModuleWidget.__init__(self, parent)

    def setup(self):
        """Build the panel: the Designer file if present, then the server panel (self.panel)."""
        ScriptedLoadableModuleWidget.setup(self)
        # The network features need pynetdicom (and keyring keeps passwords): offer to install
        # them when the module is first opened, before the panel looks for them. A refusal
        # leaves the list editable; the connection test and the browser then say what is missing.
        try:
            ensurePythonDependencies()
        except Exception as error:  # declined, or pip failed: never break the module panel
            logging.warning("DICOM Servers: Python packages not installed: %s", error)
        self.logic = sharedLogic()
        uiPath = self.resourcePath("UI/DicomServers.ui")
        if os.path.isfile(uiPath):
            uiWidget = slicer.util.loadUI(uiPath)
            self.layout.addWidget(uiWidget)
            self.ui = slicer.util.childWidgetVariables(uiWidget)
        # The server list and its settings (DicomServersUI/servers_panel.py), on self.logic.
        self.panel = self.createServersPanel()
        self.layout.addWidget(self.panel.widget)
        # The study browser (DicomServersUI/study_browser.py), built when first opened.
        from DicomServersUI.slicer_dicom import StudyBrowserSection

        self.studyBrowserSection = StudyBrowserSection(
            self.layout, self.logic.registry, self.logic.transferQueue
        )
        self.layout.addStretch(1)
        # New studies on the servers (DicomServersUI/notifications_controller.py): messages in
        # Slicer's status bar, the browser refreshed in place, the mode shown in the panel.
        self.notifications = self.createNotificationsController()

    def createNotificationsController(self):
        """Return the controller of the servers' notifications, started."""
        from DicomServersUI.notifications_controller import (
            MESSAGE_DURATION_MS,
            NotificationsController,
        )

        section = self.studyBrowserSection
        controller = NotificationsController(
            self.logic.registry,
            # Base/Python/slicer/util.py: showStatusMessage(message, duration) shows it in the
            # main window's status bar (non-modal) for ``duration`` ms.
            showMessage=lambda text: slicer.util.showStatusMessage(text, MESSAGE_DURATION_MS),
            browser=lambda create: section.ensureBrowser() if create else section.browser,
        )
        controller.addStatusListener(self.panel.setNotificationStatus)
        return controller

    def showStudyBrowser(self, serverName=None):
        """Open the study browser section on ``serverName``; return the browser."""
        return self.studyBrowserSection.show(serverName)

    def createServersPanel(self):
        """Return the DICOM servers panel (list, actions, settings) on the logic's registry."""
        from DicomServersUI.servers_panel import DicomServersPanel

        registry = self.logic.registry  # opens the secret store, which may leave a warning
        return DicomServersPanel(registry, secretStoreWarning=self.logic.secretStoreWarning)

    def cleanup(self):
        """Called when the application closes and the module widget is destroyed."""
        if getattr(self, "notifications", None) is not None:
            self.notifications.cleanup()  # stops every listener and poller
            self.notifications = None
        if self.panel is not None and hasattr(self.panel, "cleanup"):
            self.panel.cleanup()
        self.panel = None
        if getattr(self, "studyBrowserSection", None) is not None:
            self.studyBrowserSection.cleanup()
            self.studyBrowserSection = None

    def onReload(self):
        """Reload the core and UI packages too, then the module (Slicer only reloads this file)."""
        reloadPackages()
        ScriptedLoadableModuleWidget.onReload(self)


def reloadPackages(packages=RELOADED_PACKAGES):
    """Re-import every loaded submodule of ``packages`` from disk; return their names.

    All of them leave ``sys.modules`` first so that a module never binds to a stale copy of
    another (``from .server import DicomServer``), then ``importlib`` loads them again, parents
    first. (``imp.reload``, which SlicerNNUnet uses, is gone in Python 3.12.)
    """
    names = sorted(name for name in sys.modules if name.split(".")[0] in packages)
    for name in names:
        del sys.modules[name]
    importlib.invalidate_caches()
    for name in names:
        importlib.import_module(name)
    return names


#
# DicomServersLogic
#


class DicomServersLogic(ScriptedLoadableModuleLogic):
    """What the module does, usable without the GUI (Python console, other modules, tests).

    It holds the ordered server list, a :class:`DicomServersLib.registry.ServerRegistry` saved in
    Slicer's application settings (``DicomServers/Servers`` in ``Slicer.ini``) with passwords in
    the secret store chosen by ``DICOMSERVERS_SECRET_STORE``. Query, retrieve and send on those
    servers join here later.

    Parameters
    ----------
    settings
        A QSettings-like object; default ``slicer.app.userSettings()``.
    secrets
        A secret store; default the one ``open_secret_store()`` chooses.
    """

    #: The logic of the session, shared by the panel, the browser and the DICOM module hook.
    shared = None

    def __init__(self, settings=None, secrets=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self._settings = settings
        self._secrets = secrets
        self._registry = None
        self._transferQueue = None
        self.slicerIntegration = None
        self.secretStoreWarning = ""

    @property
    def registry(self):
        """The server list (:class:`ServerRegistry`), read from the settings on first use."""
        if self._registry is None:
            settings = self._settings if self._settings is not None else slicer.app.userSettings()
            self._registry = ServerRegistry(SettingsStore(settings, self._secretStore()))
            for problem in self._registry.load_result.problems:
                logging.warning("DICOM Servers settings: %s", problem)
        return self._registry

    def _secretStore(self):
        if self._secrets is not None:
            return self._secrets
        try:
            opened = open_secret_store()
        except ValueError as error:  # a wrong DICOMSERVERS_SECRET_STORE value
            self.secretStoreWarning = _(
                "{error}. Passwords are only remembered for this session."
            ).format(error=error)
            logging.error(self.secretStoreWarning)
            return MemorySecretStore()
        self.secretStoreWarning = opened.warning
        if opened.warning:
            logging.warning(opened.warning)
        return opened.store

    def servers(self):
        """Return copies of the servers (:class:`DicomServersLib.server.DicomServer`), in order."""
        return self.registry.servers

    def loadProblems(self):
        """Return what was wrong in the stored list at load time (entries kept aside, and why)."""
        return list(self.registry.load_result.problems)

    # -- query, retrieve, load, send (the Python console; DicomServersLib/console_api.py) --

    @property
    def transferQueue(self):
        """The study browser's :class:`DicomServersLib.transfer_queue.TransferQueue`."""
        if self._transferQueue is None:
            from DicomServersLib.transfer_queue import TransferQueue

            self._transferQueue = TransferQueue()
        return self._transferQueue

    def _console(self):
        from DicomServersLib.console_api import ServerConsole
        from DicomServersUI.slicer_dicom import SlicerDicomHost

        host = SlicerDicomHost()
        return ServerConsole(
            self.registry, host.destination, importer=host.importFilesNow, in_place=True
        )

    def query(self, serverName, **filters):
        """Search a server's studies; return a :class:`DicomServersLib.query_model.QueryResult`.

        Keywords: ``patient_name``, ``patient_id``, ``accession_number``, ``modality``,
        ``study_description``, ``study_uid`` (``*`` and ``?`` are wildcards); ``date_from`` /
        ``date_to`` (``"YYYY-MM-DD"``) or ``last`` (``"7d"``, ``"3m"``, ``"1y"``) instead of the
        server's date filter; ``limit`` instead of its search limit (0: none). ``result.ok``
        is False with a ``diagnosis`` when the server could not be searched; ``result.cut_off``
        says if (and by which limit) the list was cut. Folder-mode servers are searched in
        their storage folder. Example: ``logic.query("PACS", patient_name="Doe*", last="1y")``.
        """
        return self._console().query(serverName, **filters)

    def series(self, serverName, studyUID):
        """Return the series of a study (:class:`DicomServersLib.query_model.SeriesRecord`)."""
        result = self._console().series(serverName, studyUID)
        if not result.ok:
            raise RuntimeError(result.diagnosis)
        return result.series

    def retrieve(self, serverName, studyUID, seriesUIDs=None):
        """Bring a study (or some of its series) into Slicer's DICOM database; wait for it.

        The server's loading mode is honoured: *folder* indexes the files of its storage folder
        where they are (no network); *auto* and *manual* retrieve over the network (C-GET,
        C-MOVE or REST, as the server is set up) into ``<DICOM database>/DicomServers``. Returns
        a :class:`DicomServersLib.transfer_model.RetrieveResult` (``ok``, ``diagnosis``,
        ``received``, ``files``). Then load with :meth:`loadSeries`.
        """
        return self._console().retrieve(serverName, studyUID, seriesUIDs)

    def loadSeries(self, seriesUIDs):
        """Load series from Slicer's DICOM database into the scene; return the node IDs.

        Uses ``DICOMUtils.loadSeriesByUID`` (Slicer ``Modules/Scripted/DICOMLib/DICOMUtils.py``).
        """
        from DICOMLib import DICOMUtils

        if isinstance(seriesUIDs, str):
            seriesUIDs = [seriesUIDs]
        return DICOMUtils.loadSeriesByUID(list(seriesUIDs))

    def send(self, serverName, paths):
        """Send DICOM files or folders to a server (REST when on, else C-STORE).

        Returns a :class:`DicomServersLib.transfer_model.SendResult` with one item per file.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        return self._console().send(serverName, paths)

    def installSlicerIntegration(self):
        """Sync Slicer's server tables with our list and hook the DICOM module (once)."""
        if self.slicerIntegration is None:
            from DicomServersUI.slicer_dicom import SlicerIntegration

            self.slicerIntegration = SlicerIntegration(self.registry, openStudyBrowser)
            self.slicerIntegration.install()
        return self.slicerIntegration


#
# DicomServersTest
#


class DicomServersTest(ScriptedLoadableModuleTest):
    """Runs in Slicer (Reload and Test, or ctest py_DicomServers).

    Under ``--testing`` Slicer's settings are a temporary file; otherwise the test uses an INI
    file of its own, so the user's server list is never touched.
    """

    def setUp(self):
        """Give the test empty settings and an in-memory secret store."""
        self.tempDir = None
        if slicer.app.testingEnabled():
            self.settings = slicer.app.userSettings()
        else:
            self.tempDir = tempfile.mkdtemp(prefix="DicomServersTest-")
            self.settings = qt.QSettings(
                os.path.join(self.tempDir, "Slicer.ini"), qt.QSettings.IniFormat
            )
        self.settings.remove(SETTINGS_GROUP)
        self.secrets = MemorySecretStore(values={})

    def tearDown(self):
        """Leave no server list behind."""
        self.settings.remove(SETTINGS_GROUP)
        self.settings.sync()
        if self.tempDir is not None:
            import shutil

            self.settings = None
            shutil.rmtree(self.tempDir, ignore_errors=True)

    def runTest(self):
        """Run every test of the module."""
        self.setUp()
        try:
            self.test_ServerListThroughLogic()
        finally:
            self.tearDown()
        if importlib.util.find_spec("DICOMLib") is not None:  # always, inside Slicer
            self.setUp()
            try:
                self.test_AddQueryRetrieveLoadDemoPacs()
            finally:
                self.tearDown()

    def test_ServerListThroughLogic(self):
        """Add, duplicate, move and remove servers; the order survives a fresh logic."""
        self.delayDisplay("Server list through the logic")
        logic = DicomServersLogic(settings=self.settings, secrets=self.secrets)
        registry = logic.registry
        self.assertEqual(logic.servers(), [])
        registry.add()
        registry.add()
        copy = registry.duplicate("New server")
        self.assertEqual(copy.name, "New server (3)")
        self.assertEqual(registry.names(), ["New server", "New server (3)", "New server (2)"])
        registry.move_down("New server (3)")
        registry.remove("New server")
        self.assertEqual(registry.names(), ["New server (2)", "New server (3)"])

        reloaded = DicomServersLogic(settings=self.settings, secrets=self.secrets)
        self.assertEqual([s.name for s in reloaded.servers()], ["New server (2)", "New server (3)"])
        self.assertEqual(reloaded.loadProblems(), [])
        self.delayDisplay("Test passed")

    def test_AddQueryRetrieveLoadDemoPacs(self):
        """Add a server, query it, retrieve a study and load it, against a local PACS.

        The PACS is the embedded demo PACS (``DicomServersLib/demo_pacs``: pynetdicom, sample
        studies, loopback, a free port); the study goes into a temporary DICOM database. This
        test needs Slicer (``Slicer --testing``); it is not run by the pytest suite.
        """
        # DICOMUtils.TemporaryDICOMDatabase swaps slicer.dicomDatabase for a temporary one
        # (Slicer Modules/Scripted/DICOMLib/DICOMUtils.py).
        from DICOMLib import DICOMUtils

        ensurePythonDependencies()  # pynetdicom (skipped under --testing: then this fails)
        from DicomServersLib.demo_pacs import DemoPacs

        self.delayDisplay("Starting the embedded demo PACS")
        folder = tempfile.mkdtemp(prefix="DicomServersDemoPacs-")
        with DemoPacs(folder) as pacs, DICOMUtils.TemporaryDICOMDatabase():
            logic = DicomServersLogic(settings=self.settings, secrets=self.secrets)
            server = logic.registry.add_server(pacs.demo_server_record(name="Self-test PACS"))
            self.assertEqual(logic.registry.names(), ["Self-test PACS"])

            self.delayDisplay("Query")
            found = logic.query(server.name, patient_id="DEMO-001")
            self.assertTrue(found.ok, found.diagnosis)
            self.assertTrue(found.studies)
            study = found.studies[0]

            self.delayDisplay("Retrieve (C-GET) into the DICOM database")
            retrieved = logic.retrieve(server.name, study.study_uid)
            self.assertTrue(retrieved.ok, retrieved.diagnosis)
            self.assertTrue(retrieved.files)
            series = logic.series(server.name, study.study_uid)
            self.assertTrue(series)
            self.assertEqual(
                sorted(slicer.dicomDatabase.seriesForStudy(study.study_uid)),
                sorted(s.series_uid for s in series),
            )

            self.delayDisplay("Load")
            nodeIDs = logic.loadSeries([series[0].series_uid])
            self.assertTrue(nodeIDs)
        self.delayDisplay("Test passed")
