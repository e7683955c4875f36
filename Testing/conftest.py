"""Shared pytest configuration: the fixtures of the real-peer test rig (``Testing/rig``)."""

from __future__ import annotations

import pytest
from DicomServersUI.pyside_qt import protectNone

# Fixtures are found by name in this module's namespace, hence the "unused" imports.
from rig.fixtures import (  # noqa: F401
    add_peer_markers,
    free_port,
    orthanc,
    orthanc_factory,
    pynetdicom_scp_factory,
    sample_studies,
    storescp_factory,
    wlmscpfs_factory,
)

# PySide6 6.12 on Python 3.11 drops a reference to None on some calls, which aborts Python after
# many Qt calls (see DicomServersUI/pyside_qt.py); protect every test process, not only GUI ones.
protectNone()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests with the peers their fixtures start (``orthanc``, ``dcmtk``)."""
    add_peer_markers(items)
