"""DicomServers core: DICOM servers for 3D Slicer, without Slicer.

This package is pure Python. It never imports ``slicer``, ``qt``, ``ctk`` or ``vtk``, so the same
code serves the Slicer module, the command line (``python -m DicomServersLib``) and the
standalone window.
"""

__version__ = "0.1.0"
