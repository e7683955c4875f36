"""Loading Designer ``.ui`` files in Slicer and in the PySide6 harness: the one place that differs.

In Slicer the widgets come from ``slicer.util.loadUI`` and ``slicer.util.childWidgetVariables``
(Slicer ``Base/Python/slicer/util.py``); outside Slicer the same ``.ui`` file is loaded with
``qt.QUiLoader`` (the ``qt`` module of :mod:`DicomServersUI.pyside_qt`) and the named children are
collected the same way.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

RESOURCES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Resources"
)


def inSlicer() -> bool:
    """Return True when running inside Slicer (the ``slicer`` module is importable)."""
    if sys.modules.get("slicer") is not None:
        return True
    try:
        import slicer  # noqa: F401
    except ImportError:
        return False
    return True


def resourcePath(relativePath: str) -> str:
    """Return the path of ``Resources/<relativePath>`` of the DicomServers module."""
    return os.path.join(RESOURCES_DIR, relativePath)


def loadUI(path: str) -> Any:
    """Load a Designer ``.ui`` file and return its top-level widget.

    Raises
    ------
    RuntimeError
        The file does not exist or Qt could not build a widget from it.
    """
    if inSlicer():
        import slicer

        return slicer.util.loadUI(path)
    if not os.path.isfile(path):
        raise RuntimeError(f"Could not load UI file: file not found {path}")
    uiFile = qt.QFile(path)
    uiFile.open(qt.QIODevice.ReadOnly)
    try:
        widget = qt.QUiLoader().load(uiFile)
    finally:
        uiFile.close()
    if widget is None:
        raise RuntimeError(f"Could not load UI file: {path}")
    return widget


def childWidgetVariables(widget: Any) -> Any:
    """Return an object whose attributes are the named children of ``widget``.

    Like ``slicer.util.childWidgetVariables``: ``ui.nameLineEdit`` is the child whose
    ``objectName`` is ``nameLineEdit``.
    """
    if inSlicer():
        import slicer

        return slicer.util.childWidgetVariables(widget)
    ui = types.SimpleNamespace()
    pending = list(widget.children())
    while pending:
        child = pending.pop()
        pending.extend(child.children())
        name = child.objectName
        if name:
            setattr(ui, name, child)
    return ui


def execDialog(dialog: Any) -> Any:
    """Run a modal dialog and return its result (``exec_`` in Slicer, ``exec`` in PySide6)."""
    if inSlicer():
        return dialog.exec_()
    return dialog.exec()


def setContentsMargins(layout: Any, left: int, top: int, right: int, bottom: int) -> None:
    """Set a layout's margins (a method in PythonQt / Qt 5, a property under ``true_property``)."""
    try:
        layout.setContentsMargins(left, top, right, bottom)
    except AttributeError:
        layout.contentsMargins = qt.QMargins(left, top, right, bottom)
