"""The ``qt`` module for PySide6, so the Slicer widget code runs outside Slicer unchanged.

Slicer's ``qt`` module (PythonQt) puts every Qt class in one namespace and reads Qt properties
as attributes (``lineEdit.text``). This module *is* such a namespace, merged from PySide6's
QtCore, QtGui, QtWidgets and QtUiTools; :func:`install` registers it as ``qt``. Each widget
module then enables PySide6's ``true_property`` feature (``from __feature__ import
true_property``, guarded by ``try``/``except ImportError`` so the same file runs under PythonQt)
to get PythonQt's attribute access.

This is the only Qt-binding-specific file of the project. It is used by the standalone window,
the screenshot tour and the test harness, never inside Slicer (Slicer brings its own ``qt``).

Differences from PythonQt seen on PySide6 6.12 with ``true_property``, and the idiom that works
under both bindings:

- write properties as attributes too (``lineEdit.text = "x"``, ``widget.enabled = False``):
  under the feature, property setters such as ``setText()`` are not callable on every class;
- ``comboBox.currentData`` is a method in PySide6 but a property in PythonQt: use
  ``comboBox.itemData(comboBox.currentIndex)``;
- ``dialog.exec_()`` (Slicer's habit) is deprecated in PySide6: use
  :func:`DicomServersUI.ui_loader.execDialog`.

``true_property`` is chosen per module: PySide6 switches each class between the property view
and the plain view according to the module of the code that touches it. A module it does not
know keeps whatever view was used last, so, for example, a test helper calling
``widget.objectName()`` right after the panel's code ran fails with "'str' object is not
callable". :func:`install` therefore gives every module the plain view unless the module selects
``true_property`` itself (:func:`useDefaultFeatureSelection`).

PySide6 6.12 on Python 3.11 drops a reference to ``None`` on every call of a C++ method that
returns nothing (``w.setFocus()``, ``w.toolTip = "x"``...); after some ten thousand calls
Python aborts with "none_dealloc: deallocating None". Python 3.12+ is not affected (``None`` is
immortal there, PEP 683); :func:`protectNone` gives 3.11 the same protection and
:func:`install` applies it.
"""

from __future__ import annotations

import ctypes
import sys
import types

from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets

HARNESS = "PySide6 " + QtCore.qVersion()


def _merge() -> None:
    namespace = globals()
    for source in (QtCore, QtGui, QtWidgets, QtUiTools):
        for name in dir(source):
            if not name.startswith("_") and name not in namespace:
                namespace[name] = getattr(source, name)
    # PythonQt spells Python-declared signals, slots and properties like this.
    namespace["Signal"] = QtCore.Signal
    namespace["Slot"] = QtCore.Slot
    namespace["Property"] = QtCore.Property


def protectNone() -> None:
    """Make ``None`` practically immortal on CPython < 3.12 (see the module documentation).

    Adds 2**40 to the reference count of ``None`` once, as Python 3.12 does for immortal
    objects; ``None`` is never deallocated anyway, so nothing else changes.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    if getattr(protectNone, "done", False):
        return
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt, first field of PyObject
    refcount.value += 1 << 40
    protectNone.done = True  # type: ignore[attr-defined]


#: Modules whose feature selection PySide6 manages itself.
_PYSIDE_PACKAGES = ("PySide6", "shiboken6", "__feature__", "signature_bootstrap", "shibokensupport")


def _selectNoFeature(name: str, table: dict) -> None:
    if name not in table and not name.startswith(_PYSIDE_PACKAGES):
        table[name] = 0


def useDefaultFeatureSelection() -> None:
    """Give every module, loaded now or later, PySide6's plain view unless it selects a feature.

    A module that runs ``from __feature__ import true_property`` still gets the property view
    (the import overrides this default); all others read ``widget.objectName()`` as usual.
    """
    if getattr(useDefaultFeatureSelection, "done", False):
        return
    import __feature__  # PySide6's feature module (installed when PySide6 is imported)

    table = __feature__.pyside_feature_dict
    for name in list(sys.modules):
        _selectNoFeature(name, table)

    class PlainViewFinder:
        """Sees every module about to be loaded (first on ``sys.meta_path``); loads none."""

        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> None:
            _selectNoFeature(name, table)

    sys.meta_path.insert(0, PlainViewFinder())
    useDefaultFeatureSelection.done = True  # type: ignore[attr-defined]


def install() -> types.ModuleType:
    """Register this module as ``qt`` in ``sys.modules`` (once) and return it.

    Raises
    ------
    RuntimeError
        Another ``qt`` module (Slicer's PythonQt) is already imported.
    """
    protectNone()
    useDefaultFeatureSelection()
    module = sys.modules[__name__]
    existing = sys.modules.get("qt")
    if existing is None:
        sys.modules["qt"] = module
        return module
    if getattr(existing, "HARNESS", "").startswith("PySide6"):
        return existing
    raise RuntimeError(
        "a different 'qt' module is already imported (Slicer's PythonQt?); the PySide6 harness"
        " must not replace it"
    )


_merge()
protectNone()
