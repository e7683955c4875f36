"""``python -m DicomServersLib`` (also ``PythonSlicer -m DicomServersLib``)."""

import sys

from .cli import main

sys.exit(main())
