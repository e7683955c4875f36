"""Where the demo PACS keeps its files: one folder holding storage, worklist and a marker.

::

    <folder>/
        demo-pacs.json          marker: samples installed (version, reference date)
        storage/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
        worklists/*.wl          Modality Worklist items
        orthanc/                (Orthanc demo only) configuration, storage, index, log

The storage layout is the one of :func:`DicomServersLib.dicom_files.instance_path`, so the
"load from the PACS storage folder" mode reads it like any retrieved folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoFolder"]


@dataclass(frozen=True)
class DemoFolder:
    """The folders and files of a demo PACS under ``root``."""

    root: Path

    @classmethod
    def of(cls, folder: str | os.PathLike[str]) -> DemoFolder:
        """Return the layout under ``folder`` (made absolute; nothing is created)."""
        return cls(Path(folder).expanduser().resolve())

    @property
    def storage(self) -> Path:
        """The DICOM files, ``<Study>/<Series>/<SOP>.dcm``."""
        return self.root / "storage"

    @property
    def worklists(self) -> Path:
        """The Modality Worklist items (``*.wl``)."""
        return self.root / "worklists"

    @property
    def marker(self) -> Path:
        """Written once the sample data is installed."""
        return self.root / "demo-pacs.json"

    @property
    def orthanc(self) -> Path:
        """Orthanc's own files when the demo runs on Orthanc."""
        return self.root / "orthanc"
