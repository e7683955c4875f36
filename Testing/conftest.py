"""Shared pytest configuration: the fixtures of the real-peer test rig (``Testing/rig``)."""

from __future__ import annotations

import pytest

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests with the peers their fixtures start (``orthanc``, ``dcmtk``)."""
    add_peer_markers(items)
