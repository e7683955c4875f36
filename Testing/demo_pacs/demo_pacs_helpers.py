"""Helpers of the demo PACS tests (see ``conftest.py`` for the sample table)."""

from __future__ import annotations

import datetime as dt

import pydicom
from DicomServersLib.demo_pacs.samples import sample_uid
from pydicom.dataset import Dataset
from rig.dcmtk import ToolRun

REFERENCE = dt.date(2024, 6, 14)
"""'Today' of the samples in these tests."""

AE_TITLE = "DEMOPACS"


def study_uid(accession: str) -> str:
    """Return the StudyInstanceUID of a sample study."""
    return sample_uid("study", accession)


def series_uid(accession: str, number: int) -> str:
    """Return the SeriesInstanceUID of a sample series (numbered from 1)."""
    return sample_uid("series", accession, number)


def answers(run: ToolRun) -> list[Dataset]:
    """Read the responses a ``findscu --extract`` run wrote, in order."""
    assert run.ok, run.output
    return [pydicom.dcmread(path) for path in sorted(run.files)]
