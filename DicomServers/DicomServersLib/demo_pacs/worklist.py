"""Modality Worklist C-FIND answered from a folder of worklist items (PS3.4 K).

The folder holds one DICOM file per item (``*.wl``, as DCMTK's ``wlmscpfs`` and Orthanc's
worklist plugin read them). Items are read at every query, so items dropped into the folder
while the PACS runs are served at once. Keys are matched per PS3.4 C.2.2.2 and K.2.2.1.1;
the Scheduled Procedure Step Sequence is matched item by item (sequence matching).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from DicomServersLib.dicom_compat import read_header

from .index import QueryKey, copy_sequence, empty_element, match_dataset, query_keys

__all__ = ["WORKLIST_SUFFIX", "WorklistFolder"]

LOGGER = logging.getLogger(__name__)

WORKLIST_SUFFIX = ".wl"
"""File name ending of worklist items."""


class WorklistFolder:
    """The worklist items of a folder, searched by Modality Worklist C-FIND.

    Parameters
    ----------
    folder : str or pathlib.Path
        Folder of ``*.wl`` files (not searched recursively).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def items(self) -> list[Dataset]:
        """Read every item of the folder, in file name order (unreadable files are skipped)."""
        if not self.folder.is_dir():
            return []
        items = []
        for path in sorted(self.folder.glob(f"*{WORKLIST_SUFFIX}")):
            if path.name.startswith("."):
                continue
            try:
                item = read_header(path, stop_before_pixels=False)
            except (InvalidDicomError, OSError, ValueError, EOFError) as error:
                LOGGER.warning(
                    "worklist item skipped, not a readable DICOM file: %s (%s)", path, error
                )
                continue
            for _ in item:
                pass
            items.append(item)
        return items

    def find(
        self, identifier: Dataset, *, cancelled: Callable[[], bool] | None = None
    ) -> Iterator[Dataset]:
        """Answer a Modality Worklist C-FIND: one identifier per matching item.

        Parameters
        ----------
        identifier : pydicom.dataset.Dataset
            The request keys (PS3.4 K.6.1.2).
        cancelled : callable, optional
            Polled between items; True stops the search.

        Yields
        ------
        pydicom.dataset.Dataset
            The requested keys filled from the item, with its SpecificCharacterSet.

        Raises
        ------
        QueryKeyError
            A key is invalid for its VR (raised before the first answer).
        """
        keys = query_keys(identifier)
        matched = [item for item in self.items() if match_dataset(identifier, item)]
        for item in matched:
            if cancelled is not None and cancelled():
                return
            yield _answer(item, keys)


def _answer(item: Dataset, keys: list[QueryKey]) -> Dataset:
    answer = Dataset()
    charset = item.get("SpecificCharacterSet")
    if charset:
        answer.SpecificCharacterSet = charset
    for key in keys:
        if key.tag not in item:
            answer.add(empty_element(key.tag, key.vr))
            continue
        found = item[key.tag]
        if found.VR == "SQ":
            answer.add(DataElement(key.tag, "SQ", copy_sequence(key, found.value)))
        else:
            answer.add(DataElement(key.tag, found.VR, found.value))
    return answer
