"""Driving the DICOM Servers panel as a user would, on the PySide6 harness (offscreen).

Clicks, Ctrl-clicks and typing go through ``QTest`` to the widgets the user sees; modal dialogs
(confirmation, unsaved changes, folder picker) are answered by finding the dialog that is open
and clicking its button, while the panel waits in the dialog's event loop.

This module reads Qt properties as attributes (``lineEdit.text``), like the widget code
(PythonQt's idiom through PySide6's ``true_property``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from DicomServersUI import pyside_qt

pyside_qt.install()

from __feature__ import true_property  # noqa: E402, F401
from PySide6 import QtCore, QtWidgets  # noqa: E402 - after the harness qt module
from PySide6.QtTest import QTest  # noqa: E402

Qt = QtCore.Qt


def app() -> QtWidgets.QApplication:
    """Return the QApplication (one per test session)."""
    instance = QtWidgets.QApplication.instance()
    return instance if instance is not None else QtWidgets.QApplication([])


def process_events(milliseconds: int = 0) -> None:
    """Let Qt handle pending events (timers, deferred calls) for about ``milliseconds``."""
    deadline = time.monotonic() + milliseconds / 1000
    while True:
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if time.monotonic() >= deadline:
            return


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, message: str = "") -> Any:
    """Process events until ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)


def click(widget: QtWidgets.QWidget, modifier: Any = Qt.KeyboardModifier.NoModifier) -> None:
    """Left-click the middle of ``widget``."""
    assert widget.visible, f"{widget.objectName} is not visible"
    assert widget.enabled, f"{widget.objectName} is disabled"
    point = widget.rect.center()
    if isinstance(widget, QtWidgets.QCheckBox):  # on the box: the row may be wider than the text
        point = QtCore.QPoint(8, widget.rect.height() // 2)
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, modifier, point)
    process_events()


def list_row_widget(panel: Any, row: int) -> QtWidgets.QWidget:
    """Return the widget the user sees for list entry ``row``."""
    list_widget = panel.ui.serverListWidget
    return list_widget.itemWidget(list_widget.item(row))


def row_child(panel: Any, row: int, name: str) -> Any:
    """Return a named child (``nameLabel``, ``deleteButton``...) of list entry ``row``."""
    return list_row_widget(panel, row).findChild(QtCore.QObject, name)


def click_entry(panel: Any, row: int, ctrl: bool = False) -> None:
    """Click the name of list entry ``row`` (holding Ctrl when ``ctrl``)."""
    modifier = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    click(row_child(panel, row, "nameLabel"), modifier)


def entry_names(panel: Any) -> list[str]:
    """Return the names shown in the list, top to bottom."""
    count = panel.ui.serverListWidget.count
    return [row_child(panel, row, "nameLabel").text for row in range(count)]


def type_into(line_edit: QtWidgets.QLineEdit, text: str, enter: bool = True) -> None:
    """Replace the text of ``line_edit`` by typing ``text``, then press Enter (``enter``)."""
    line_edit.setFocus()
    line_edit.selectAll()
    if text:
        QTest.keyClicks(line_edit, text)
    else:
        QTest.keyClick(line_edit, Qt.Key.Key_Delete)
    if enter:
        QTest.keyClick(line_edit, Qt.Key.Key_Return)
    process_events()


def choose(combo: QtWidgets.QComboBox, text: str) -> None:
    """Pick the entry ``text`` of a combo box with the keyboard, as a user would."""
    index = combo.findText(text)
    assert index >= 0, f"{text!r} is not offered by {combo.objectName}"
    combo.setFocus()
    while combo.currentIndex != index:
        key = Qt.Key.Key_Down if combo.currentIndex < index else Qt.Key.Key_Up
        QTest.keyClick(combo, key)
    process_events()


class DialogAnswer:
    """What was seen in the dialog that was answered."""

    def __init__(self) -> None:
        self.seen = False
        self.title = ""
        self.text = ""
        self.informative_text = ""
        self.buttons: list[str] = []


@contextlib.contextmanager
def answering(button: str, timeout: float = 10.0) -> Iterator[DialogAnswer]:
    """Click ``button`` (object name, e.g. ``deleteButton``, or text) in the next message box.

    Use around the action that opens the box; fails if no box appeared.
    """
    answer = DialogAnswer()

    def poll() -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        if answer.seen or not isinstance(box, QtWidgets.QMessageBox):
            return
        answer.seen = True
        answer.title = box.windowTitle
        answer.text = box.text
        answer.informative_text = box.informativeText
        answer.buttons = [b.text for b in box.buttons()]
        target = box.findChild(QtWidgets.QAbstractButton, button) or next(
            (b for b in box.buttons() if b.text == button), None
        )
        assert target is not None, f"no button {button!r} in {answer.buttons}"
        QTest.mouseClick(target, Qt.MouseButton.LeftButton)

    timer = QtCore.QTimer()
    timer.interval = 10
    timer.timeout.connect(poll)
    timer.start()
    try:
        yield answer
        wait_until(lambda: answer.seen, timeout, f"a message box to click {button!r} in")
        process_events()
    finally:
        timer.stop()


@contextlib.contextmanager
def choosing_folder(path: str, timeout: float = 10.0) -> Iterator[DialogAnswer]:
    """Type ``path`` into the next folder dialog and press Choose."""
    answer = DialogAnswer()

    def poll() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if answer.seen or not isinstance(dialog, QtWidgets.QFileDialog):
            return
        answer.seen = True
        answer.title = dialog.windowTitle
        name_edit = dialog.findChild(QtWidgets.QLineEdit, "fileNameEdit")
        assert name_edit is not None
        name_edit.text = path
        QTest.keyClick(name_edit, Qt.Key.Key_Return)

    timer = QtCore.QTimer()
    timer.interval = 10
    timer.timeout.connect(poll)
    timer.start()
    try:
        yield answer
        wait_until(lambda: answer.seen, timeout, "a folder dialog")
        process_events()
    finally:
        timer.stop()
