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


_merge()


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


def install() -> types.ModuleType:
    """Register this module as ``qt`` in ``sys.modules`` (once) and return it.

    Raises
    ------
    RuntimeError
        Another ``qt`` module (Slicer's PythonQt) is already imported.
    """
    protectNone()
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
