"""DICOM Servers: the Slicer module of the DicomServers extension.

This file only wires Slicer to the pure core in ``DicomServersLib/`` (which never imports
Slicer or Qt) and to the Qt widgets in ``DicomServersUI/``. It follows Slicer's scripted-module
template (Slicer ``Utilities/Templates/Modules/Scripted/TemplateKey.py``) and its base classes
(``Base/Python/slicer/ScriptedLoadableModule.py``): Module (metadata), Widget (module panel),
Logic (work that runs without the GUI) and Test (``Reload and Test``, ctest ``py_DicomServers``).
"""

import importlib
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


#
# Python dependencies
#


def ensurePythonDependencies(requester=None):
    """Install the Python packages the network features need (pynetdicom), if missing.

    Call it where those features are first used, not at startup. The requirements file is
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
        ScriptedLoadableModuleWidget.__init__(self, parent)

    def setup(self):
        """Build the panel: the Designer file if present, then the server panel (self.panel)."""
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = DicomServersLogic()
        uiPath = self.resourcePath("UI/DicomServers.ui")
        if os.path.isfile(uiPath):
            uiWidget = slicer.util.loadUI(uiPath)
            self.layout.addWidget(uiWidget)
            self.ui = slicer.util.childWidgetVariables(uiWidget)
        # The server list and its settings (DicomServersUI/servers_panel.py), on self.logic.
        self.panel = self.createServersPanel()
        self.layout.addWidget(self.panel.widget)
        self.layout.addStretch(1)

    def createServersPanel(self):
        """Return the DICOM servers panel (list, actions, settings) on the logic's registry."""
        from DicomServersUI.servers_panel import DicomServersPanel

        registry = self.logic.registry  # opens the secret store, which may leave a warning
        return DicomServersPanel(registry, secretStoreWarning=self.logic.secretStoreWarning)

    def cleanup(self):
        """Called when the application closes and the module widget is destroyed."""
        if self.panel is not None and hasattr(self.panel, "cleanup"):
            self.panel.cleanup()
        self.panel = None

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

    def __init__(self, settings=None, secrets=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self._settings = settings
        self._secrets = secrets
        self._registry = None
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
