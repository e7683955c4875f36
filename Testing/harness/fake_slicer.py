"""A minimal fake of the Slicer Python boundary: ``slicer``, ``vtk`` (and ``qt`` if missing).

THIS IS THE ONLY FAKED BOUNDARY of the test suite: no Slicer application can run here, so
``DicomServers.py`` is imported against these stand-ins. Everything behind them is real: the
core, PySide6's ``QSettings`` on an INI file (the format of ``Slicer.ini``), the registry.

What is provided mirrors the parts of Slicer the module file uses, with the same names and
behaviour as Slicer's own code (cited per item); nothing more:

- ``slicer.app``: ``userSettings()`` (one PySide6 ``QSettings`` on a temporary INI, as
  Slicer returns one object), ``testingEnabled()``, ``temporaryPath``.
- ``slicer.util``: ``loadUI``, ``childWidgetVariables``, ``modulePath``, ``settingsValue``,
  ``toBool``, ``delayDisplay``, ``confirmOkCancelDisplay``, ``pip_install``,
  ``reloadScriptedModule`` (the last three record their calls).
- ``slicer.i18n``: ``tr`` and ``translate`` returning the English text.
- ``slicer.ScriptedLoadableModule``: the four base classes
  (Slicer ``Base/Python/slicer/ScriptedLoadableModule.py``).
- ``slicer.packaging`` (only when asked, as Slicer 5.12+ has it): ``load_requirements``,
  ``pip_ensure`` (recorded).
- ``vtk``: an empty stand-in module.
- ``ctk``: ``ctkCollapsibleButton`` (CTK ``Libs/Widgets/ctkCollapsibleButton.h``: the
  ``collapsed`` property and the ``contentsCollapsed(bool)`` signal) on a ``QGroupBox``;
  ``Testing/harness/fake_dicom_module.py`` adds the DICOM classes.
- ``qt``: the project's PySide6 ``qt`` module (``DicomServersUI/pyside_qt.py``) when it exists,
  otherwise a namespace merged from PySide6's QtCore, QtGui, QtWidgets and QtUiTools.

Use :func:`install` as a context manager; it restores ``sys.modules`` on exit.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
import unittest
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6 import QtCore

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "DicomServers"
FAKE_MODULES = (
    "slicer",
    "slicer.util",
    "slicer.i18n",
    "slicer.ScriptedLoadableModule",
    "slicer.packaging",
    "vtk",
    "ctk",
    "qt",
    "DicomServers",
)


@dataclass
class Calls:
    """What the fake recorded (pip installs, confirmations, reloads)."""

    pip_install: list[Any] = field(default_factory=list)
    pip_ensure: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    confirm: list[str] = field(default_factory=list)
    reload: list[str] = field(default_factory=list)
    delay: list[str] = field(default_factory=list)


@dataclass
class FakeSlicer:
    """The installed fake: the modules and the recorded calls."""

    slicer: types.ModuleType
    qt: types.ModuleType
    settings: QtCore.QSettings
    settings_path: Path
    calls: Calls
    confirm_answer: bool = True


def _qt_module() -> types.ModuleType:
    """Return the project's ``qt`` shim if it exists, else a namespace from PySide6."""
    if "qt" in sys.modules:
        return sys.modules["qt"]
    try:
        return importlib.import_module("DicomServersUI.pyside_qt")
    except ImportError:
        pass
    from PySide6 import QtGui, QtUiTools, QtWidgets

    qt = types.ModuleType("qt")
    qt.__doc__ = "PySide6 classes under Slicer's flat ``qt`` namespace (test stand-in)."
    for source in (QtCore, QtGui, QtWidgets, QtUiTools):
        for name in dir(source):
            if name.startswith("Q"):
                setattr(qt, name, getattr(source, name))
    qt.Signal = QtCore.Signal  # type: ignore[attr-defined]
    return qt


def _make_util(fake: FakeSlicer) -> types.ModuleType:
    util = types.ModuleType("slicer.util")
    calls = fake.calls

    def loadUI(path: str) -> Any:  # Slicer util.loadUI
        loader = fake.qt.QUiLoader()
        ui_file = QtCore.QFile(str(path))
        if not ui_file.open(QtCore.QIODevice.OpenModeFlag.ReadOnly):
            raise RuntimeError(f"Could not load UI file {path}")
        try:
            return loader.load(ui_file)
        finally:
            ui_file.close()

    def childWidgetVariables(widget: Any) -> types.SimpleNamespace:  # util.childWidgetVariables
        ui = types.SimpleNamespace()
        for child in widget.findChildren(QtCore.QObject):
            name = child.objectName()
            if name:
                setattr(ui, name, child)
        return ui

    def modulePath(moduleName: str) -> str:  # util.modulePath: the module's .py file
        return str(MODULE_DIR / f"{moduleName}.py")

    def toBool(value: Any) -> bool:  # util.toBool
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)

    def settingsValue(
        key: str, default: Any, converter: Any = lambda v: v, settings: Any = None
    ) -> Any:
        settings = settings if settings is not None else fake.settings
        return converter(settings.value(key)) if settings.contains(key) else default

    def delayDisplay(message: str, autoCloseMsec: int = 1000, **kwargs: Any) -> None:
        calls.delay.append(message)

    def confirmOkCancelDisplay(text: str, windowTitle: str | None = None, **kwargs: Any) -> bool:
        calls.confirm.append(text)
        return fake.confirm_answer

    def pip_install(requirements: Any) -> None:  # 5.10: one argument, str or list
        calls.pip_install.append(requirements)

    def reloadScriptedModule(moduleName: str) -> None:
        calls.reload.append(moduleName)

    for function in (
        loadUI,
        childWidgetVariables,
        modulePath,
        toBool,
        settingsValue,
        delayDisplay,
        confirmOkCancelDisplay,
        pip_install,
        reloadScriptedModule,
    ):
        setattr(util, function.__name__, function)
    return util


def _make_i18n() -> types.ModuleType:
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text  # type: ignore[attr-defined]
    i18n.translate = lambda context, text: text  # type: ignore[attr-defined]
    return i18n


def _make_packaging(fake: FakeSlicer) -> types.ModuleType:
    packaging = types.ModuleType("slicer.packaging")

    def load_requirements(path: str | Path) -> list[str]:  # returns Requirement objects in Slicer
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [s for s in (line.strip() for line in lines) if s and not s.startswith(("#", "-"))]

    def pip_ensure(requirements: Any, **kwargs: Any) -> None:
        fake.calls.pip_ensure.append((requirements, kwargs))

    packaging.load_requirements = load_requirements  # type: ignore[attr-defined]
    packaging.pip_ensure = pip_ensure  # type: ignore[attr-defined]
    return packaging


def _make_scripted_loadable_module(slicer: types.ModuleType) -> types.ModuleType:
    slm = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent: Any) -> None:
            self.parent = parent
            self.moduleName = self.__class__.__name__
            parent.title = ""
            parent.categories = []
            parent.dependencies = []
            parent.contributors = []
            parent.helpText = ""
            parent.acknowledgementText = ""
            # Slicer sets the icon from Resources/Icons/<ModuleName>.svg|.png
            module_dir = os.path.dirname(parent.path)
            parent.iconPath = None
            for extension in (".svg", ".png"):
                icon = os.path.join(module_dir, "Resources/Icons", self.moduleName + extension)
                if os.path.isfile(icon):
                    parent.iconPath = icon
                    break
            if not hasattr(slicer, "selfTests"):
                slicer.selfTests = {}  # type: ignore[attr-defined]
            slicer.selfTests[self.moduleName] = self.runTest

        def resourcePath(self, filename: str) -> str:
            return os.path.join(os.path.dirname(self.parent.path), "Resources", filename)

        def runTest(self, msec: int = 100, **kwargs: Any) -> None:
            module = importlib.import_module(self.__module__)
            test_case = getattr(module, self.moduleName + "Test")()
            test_case.messageDelay = msec
            test_case.runTest(**kwargs)

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent: Any = None) -> None:
            self.moduleName = self.__class__.__name__
            if self.moduleName.endswith("Widget"):
                self.moduleName = self.moduleName[:-6]
            self.developerMode = False
            self.parent = parent
            self.layout = parent.layout()

        def resourcePath(self, filename: str) -> str:
            module_path = slicer.util.modulePath(self.moduleName)
            return os.path.join(os.path.dirname(module_path), "Resources", filename)

        def setup(self) -> None:
            """The developer section (Reload and Test) is not built in the fake."""

        def cleanup(self) -> None:
            pass

        def onReload(self) -> None:
            slicer.util.reloadScriptedModule(self.moduleName)

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent: Any = None) -> None:
            self.moduleName = self.__class__.__name__
            if self.moduleName.endswith("Logic"):
                self.moduleName = self.moduleName[:-5]

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message: str, requestedDelay: Any = None, msec: Any = None) -> None:
            slicer.util.delayDisplay(message, msec or 100)

    for cls in (
        ScriptedLoadableModule,
        ScriptedLoadableModuleWidget,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleTest,
    ):
        cls.__module__ = slm.__name__
        setattr(slm, cls.__name__, cls)
    return slm


def _make_ctk() -> types.ModuleType:
    from PySide6 import QtWidgets

    ctk = types.ModuleType("ctk")

    class ctkCollapsibleButton(QtWidgets.QGroupBox):  # noqa: N801 - CTK's class name
        contentsCollapsed = QtCore.Signal(bool)

        def __init__(self, parent: Any = None) -> None:
            super().__init__(parent)
            self._collapsed = False

        @property
        def collapsed(self) -> bool:
            return self._collapsed

        @collapsed.setter
        def collapsed(self, value: bool) -> None:
            if bool(value) != self._collapsed:
                self._collapsed = bool(value)
                self.contentsCollapsed.emit(self._collapsed)

        @property
        def text(self) -> str:
            return str(self.title())

        @text.setter
        def text(self, value: str) -> None:
            self.setTitle(value)

    ctk.ctkCollapsibleButton = ctkCollapsibleButton  # type: ignore[attr-defined]
    return ctk


class _App:
    """``slicer.app``: the settings object and testing mode."""

    def __init__(self, fake: FakeSlicer, testing: bool, temporary_path: Path) -> None:
        self._fake = fake
        self._testing = testing
        self.temporaryPath = str(temporary_path)

    def userSettings(self) -> QtCore.QSettings:
        return self._fake.settings

    def testingEnabled(self) -> bool:
        return self._testing


@contextlib.contextmanager
def install(
    settings_path: Path, *, testing: bool = True, with_packaging: bool = False
) -> Iterator[FakeSlicer]:
    """Put the fake ``slicer``/``vtk``/``qt`` into ``sys.modules`` and import nothing else.

    Parameters
    ----------
    settings_path
        The INI file ``slicer.app.userSettings()`` reads and writes.
    testing
        What ``slicer.app.testingEnabled()`` returns (Slicer ``--testing``).
    with_packaging
        Provide ``slicer.packaging`` as Slicer 5.12+ does (absent in 5.10).
    """
    saved = {name: sys.modules.get(name) for name in FAKE_MODULES}
    settings_path = Path(settings_path)
    qt = _qt_module()
    slicer = types.ModuleType("slicer")
    slicer.__path__ = []  # a package, so ``import slicer.util`` works
    fake = FakeSlicer(
        slicer=slicer,
        qt=qt,
        settings=QtCore.QSettings(str(settings_path), QtCore.QSettings.Format.IniFormat),
        settings_path=settings_path,
        calls=Calls(),
    )
    slicer.app = _App(fake, testing, settings_path.parent)  # type: ignore[attr-defined]
    slicer.util = _make_util(fake)  # type: ignore[attr-defined]
    slicer.i18n = _make_i18n()  # type: ignore[attr-defined]
    slicer.ScriptedLoadableModule = _make_scripted_loadable_module(slicer)  # type: ignore[attr-defined]
    modules: dict[str, types.ModuleType] = {
        "slicer": slicer,
        "slicer.util": slicer.util,
        "slicer.i18n": slicer.i18n,
        "slicer.ScriptedLoadableModule": slicer.ScriptedLoadableModule,
        "vtk": types.ModuleType("vtk"),
        "ctk": _make_ctk(),
        "qt": qt,
    }
    if with_packaging:
        slicer.packaging = _make_packaging(fake)  # type: ignore[attr-defined]
        modules["slicer.packaging"] = slicer.packaging
    try:
        for name in FAKE_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(modules)
        if not with_packaging:
            sys.modules["slicer.packaging"] = None  # type: ignore[assignment]  # import fails
        yield fake
    finally:
        fake.settings.sync()
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def import_module_file() -> types.ModuleType:
    """Import ``DicomServers/DicomServers.py`` fresh (call inside :func:`install`)."""
    sys.modules.pop("DicomServers", None)
    return importlib.import_module("DicomServers")


def module_parent() -> types.SimpleNamespace:
    """Return a stand-in for the ``qSlicerScriptedLoadableModule`` a module class is given."""
    return types.SimpleNamespace(path=str(MODULE_DIR / "DicomServers.py"))
