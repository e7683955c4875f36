"""Fixtures of the DIMSE tests: an Orthanc that knows our move destination, and its studies.

The session ``orthanc`` of the rig (sample studies, read-only) serves the query tests. The
retrieve tests need an Orthanc that knows our storage listener as a C-MOVE destination, and a
study large enough to cancel or kill part-way: :func:`pacs` starts one per test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from DicomServersLib.dimse import retrieve as retrieve_module
from dimse_helpers import MOVE_AE
from rig.orthanc import OrthancOptions, OrthancServer, RemoteModality
from rig.ports import free_port
from rig.studies import SAMPLE_PATIENTS, SampleSet, StudyInfo, make_ct_series, make_study


@dataclass
class Pacs:
    """An Orthanc for retrieve tests.

    Attributes
    ----------
    orthanc : OrthancServer
        The server (``DicomModalities`` has our move destination).
    storage_port : int
        The port our storage listener must use (registered on Orthanc).
    samples : SampleSet
        The sample studies it holds.
    long_study : StudyInfo
        A 2-series study of 40 small images, for cancel and kill tests.
    """

    orthanc: OrthancServer
    storage_port: int
    samples: SampleSet
    long_study: StudyInfo


@pytest.fixture(scope="module")
def pacs(sample_studies: SampleSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pacs]:
    """An Orthanc (per test module) knowing ``DSMOVE`` at 127.0.0.1:<storage_port>."""
    storage_port = free_port()
    folder = tmp_path_factory.mktemp("dimse-pacs")
    study = make_study(
        folder / "studies",
        SAMPLE_PATIENTS[4],
        description="Long study",
        accession_number="LONG0001",
        seed=7,
    )
    make_ct_series(study, slices=20, rows=96, columns=96)
    make_ct_series(study, description="Second", slices=20, rows=96, columns=96)
    options = OrthancOptions(
        modalities={"slicer": RemoteModality(MOVE_AE, storage_port)}, dicomweb=False
    )
    server = OrthancServer(folder / "orthanc", options)
    try:
        server.start()
        server.upload([*sample_studies.paths, *study.paths])
        yield Pacs(server, storage_port, sample_studies, study)
    finally:
        server.kill()
        server.session.close()


@pytest.fixture
def instant_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Report retrieve progress at every instance (tests cancel after an exact count)."""
    monkeypatch.setattr(retrieve_module, "PROGRESS_INTERVAL_S", 0.0)


@pytest.fixture
def short_cancel_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Abort 0.3 s after C-CANCEL when the PACS ignores it (instead of 5 s)."""
    monkeypatch.setattr(retrieve_module, "CANCEL_GRACE_S", 0.3)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A destination folder for retrieved files."""
    return tmp_path / "dest"
