"""The panel's icons: ``Resources/Icons/<name>.png`` when present, else a Qt standard icon."""

from __future__ import annotations

import os

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from .ui_loader import resourcePath

#: Icon name -> QStyle standard pixmap used when the PNG is missing.
FALLBACKS = {
    "add": "SP_FileDialogNewFolder",
    "duplicate": "SP_FileDialogContentsView",
    "up": "SP_ArrowUp",
    "down": "SP_ArrowDown",
    "delete": "SP_TrashIcon",
    "status-unknown": "SP_MessageBoxQuestion",
    "status-ok": "SP_DialogApplyButton",
    "status-failed": "SP_MessageBoxCritical",
    "status-running": "SP_BrowserReload",
    "default": "SP_DialogYesButton",
    "folder": "SP_DirOpenIcon",
}

_cache: dict = {}


def iconPath(name: str) -> str:
    """Return the path of the PNG for ``name`` (it may not exist)."""
    return resourcePath(os.path.join("Icons", name + ".png"))


def icon(name: str):
    """Return the ``qt.QIcon`` called ``name`` (see :data:`FALLBACKS`)."""
    if name in _cache:
        return _cache[name]
    path = iconPath(name)
    if os.path.isfile(path):
        result = qt.QIcon(path)
    else:
        style = qt.QApplication.style()
        standard = getattr(qt.QStyle, FALLBACKS.get(name, "SP_FileIcon"), None)
        if standard is None:  # an older Qt without this standard pixmap
            standard = qt.QStyle.SP_FileIcon
        result = style.standardIcon(standard)
    _cache[name] = result
    return result


def pixmap(name: str, size: int = 16):
    """Return the icon ``name`` as a ``qt.QPixmap`` of ``size`` pixels."""
    return icon(name).pixmap(size, size)
