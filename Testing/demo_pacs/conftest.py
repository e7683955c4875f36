"""Fixtures of the demo PACS tests: the embedded PACS with its samples on loopback ports.

The samples are dated relative to :data:`REFERENCE` so the date-range tests are reproducible:

=========  ===========================  ==========  ====  =================
Accession  Patient                      StudyDate   Mod.  Instances
=========  ===========================  ==========  ====  =================
DEMO1001   Doe^Jane (ASCII)             20240613    CT    16 (2 series x 8)
DEMO1002   Doe^Jane                     20231127    MR    12 (2 x 6)
DEMO1003   Müller^Jürgen (ISO_IR 100)   20240531    MR    12 (2 x 6)
DEMO1004   Yamada^Tarou=山田^太郎=...   20240430    CT    10
DEMO1005   Παπαδοπούλου^Ελένη (IR 126)  20210610    CT    8
DEMO1006   Ødegård^Åse (ISO_IR 192)     (none)      MR    6
=========  ===========================  ==========  ====  =================
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_pacs_helpers import AE_TITLE, REFERENCE
from DicomServersLib.demo_pacs import DemoPacs


@pytest.fixture(scope="module")
def pacs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo folder with the samples installed (shared by the module's PACS)."""
    return tmp_path_factory.mktemp("demo-pacs")


@pytest.fixture(scope="module")
def pacs(pacs_folder: Path) -> Iterator[DemoPacs]:
    """The demo PACS with its samples (treat as read-only; C-MOVE destinations may be added)."""
    with DemoPacs(pacs_folder, ae_title=AE_TITLE, reference_date=REFERENCE, timeout_s=10) as pacs:
        yield pacs


@pytest.fixture(scope="module")
def slow_pacs(pacs: DemoPacs) -> Iterator[DemoPacs]:
    """A second PACS on the same folder that waits 0.3 s before each answer (C-CANCEL tests)."""
    slow = DemoPacs(
        pacs.folder.root,
        ae_title=AE_TITLE,
        reference_date=REFERENCE,
        timeout_s=10,
        response_delay_s=0.3,
    )
    with slow:
        yield slow


@pytest.fixture
def empty_pacs(tmp_path: Path) -> Iterator[DemoPacs]:
    """A demo PACS without samples, for storing into."""
    with DemoPacs(tmp_path / "empty-pacs", ae_title=AE_TITLE, samples=False, timeout_s=10) as pacs:
        yield pacs
