"""The Qt widgets of the DicomServers module, in Slicer's PythonQt idiom.

The same files run in Slicer (PythonQt's ``qt``) and outside it on PySide6 (the ``qt`` module of
:mod:`DicomServersUI.pyside_qt`): the standalone window, the screenshot tour and the tests.
Widgets only wire the UI to the pure core in ``DicomServersLib``.
"""
