"""pytest fixtures of the real-peer rig (imported by ``Testing/conftest.py``).

Every peer a fixture starts is stopped when the fixture ends, whatever the test did. If Orthanc
or DCMTK is missing the fixture *fails* with an explanation (never skips): ``make test``
installs them through ``scripts/install-system-deps.sh``.

Fixtures
--------
free_port
    A free TCP port on 127.0.0.1.
sample_studies
    (session) :class:`rig.studies.SampleSet` written once, dated relative to today.
orthanc
    (session) A running :class:`rig.orthanc.OrthancServer` holding the sample studies.
    Shared by all tests: treat it as read-only (use ``orthanc_factory`` to change state).
orthanc_factory
    ``orthanc_factory(preload=None, **OrthancOptions fields) -> OrthancServer``.
storescp_factory
    ``storescp_factory(ae_title="STORESCP", **kwargs) -> StoreSCP`` (DCMTK ``storescp``).
wlmscpfs_factory
    ``wlmscpfs_factory(ae_title="WLMSCP", items=(), **kwargs) -> WorklistSCP``.
pynetdicom_scp_factory
    :class:`PynetdicomSCPFactory` with ``.storage()``, ``.qr()`` and ``.silent()``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from rig.dcmtk import StoreSCP, WorklistSCP
from rig.orthanc import OrthancOptions, OrthancServer
from rig.ports import free_port as _free_port
from rig.processes import MissingPeerError
from rig.scp import FakeQRSCP, PynetdicomSCP, SilentPeer, StorageSCP
from rig.studies import SampleSet, write_sample_studies

__all__ = [
    "PynetdicomSCPFactory",
    "add_peer_markers",
    "free_port",
    "orthanc",
    "orthanc_factory",
    "pynetdicom_scp_factory",
    "sample_studies",
    "storescp_factory",
    "wlmscpfs_factory",
]


@contextlib.contextmanager
def peer_required() -> Iterator[None]:
    """Turn a missing peer program into a test failure with the install hint."""
    try:
        yield
    except MissingPeerError as error:
        pytest.fail(str(error), pytrace=False)


def add_peer_markers(items: Iterable[pytest.Item]) -> None:
    """Mark tests by the peers their fixtures start (``orthanc``, ``dcmtk``).

    Lets ``-m "not orthanc"`` select without relying on every test being marked by hand.

    Parameters
    ----------
    items : iterable of pytest.Item
        The collected tests (from ``pytest_collection_modifyitems``).
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"orthanc", "orthanc_factory"}:
            item.add_marker(pytest.mark.orthanc)
        if names & {"storescp_factory", "wlmscpfs_factory"}:
            item.add_marker(pytest.mark.dcmtk)


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound and released: bind it soon)."""
    return _free_port()


@pytest.fixture(scope="session")
def sample_studies(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    """The sample studies, written once per session, dated relative to today."""
    root = tmp_path_factory.mktemp("sample-studies")
    return write_sample_studies(root, reference_date=dt.date.today())


@pytest.fixture(scope="session")
def orthanc(
    sample_studies: SampleSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrthancServer]:
    """A session-wide Orthanc (default :class:`OrthancOptions`) holding the sample studies.

    Shared by every test: do not delete or modify what it stores; add worklist items under
    unique names only. Stopped gracefully at the end of the session.
    """
    server = OrthancServer(tmp_path_factory.mktemp("orthanc-session"), OrthancOptions())
    try:
        with peer_required():
            server.start()
        server.upload(sample_studies.paths)
        yield server
    finally:
        server.close()


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Callable[..., OrthancServer]]:
    """Start fresh Orthanc servers with custom options; all are killed at teardown.

    Call as ``orthanc_factory(preload=None, **options)``: ``options`` are the fields of
    :class:`rig.orthanc.OrthancOptions`; ``preload`` is a :class:`SampleSet` or file paths to
    upload. Teardown uses SIGKILL (the storage is thrown away; a graceful stop of Orthanc
    1.10.1 costs ~3.5 s); call ``server.stop()`` in the test to exercise a graceful one.
    """
    counter = itertools.count(1)
    with contextlib.ExitStack() as stack:

        def make(
            preload: SampleSet | Iterable[Path] | None = None, **options: Any
        ) -> OrthancServer:
            server = OrthancServer(tmp_path / f"orthanc{next(counter)}", OrthancOptions(**options))
            stack.callback(server.session.close)
            stack.callback(server.kill)
            with peer_required():
                server.start()
            if preload is not None:
                server.upload(preload.paths if isinstance(preload, SampleSet) else preload)
            return server

        yield make


@pytest.fixture
def storescp_factory(tmp_path: Path) -> Iterator[Callable[..., StoreSCP]]:
    """Start DCMTK ``storescp`` peers: ``storescp_factory(ae_title="STORESCP", **kwargs)``.

    ``kwargs`` go to :class:`rig.dcmtk.StoreSCP` (``accept_all``, ``extra_args``). All are
    stopped at teardown.
    """
    counter = itertools.count(1)
    with contextlib.ExitStack() as stack:

        def make(ae_title: str = "STORESCP", **kwargs: Any) -> StoreSCP:
            scp = StoreSCP(tmp_path / f"storescp{next(counter)}", ae_title, **kwargs)
            stack.callback(scp.stop)
            with peer_required():
                scp.start()
            return scp

        yield make


@pytest.fixture
def wlmscpfs_factory(tmp_path: Path) -> Iterator[Callable[..., WorklistSCP]]:
    """Start DCMTK ``wlmscpfs`` peers: ``wlmscpfs_factory(ae_title="WLMSCP", items=(), ...)``.

    ``items`` are worklist data sets written before it starts; more can be added with
    ``scp.add_item``. Other ``kwargs`` go to :class:`rig.dcmtk.WorklistSCP`. All are stopped
    at teardown.
    """
    counter = itertools.count(1)
    with contextlib.ExitStack() as stack:

        def make(
            ae_title: str = "WLMSCP", items: Iterable[Dataset] = (), **kwargs: Any
        ) -> WorklistSCP:
            scp = WorklistSCP(tmp_path / f"wlmscpfs{next(counter)}", ae_title, **kwargs)
            for index, item in enumerate(items, start=1):
                scp.add_item(item, name=f"item{index:03d}")
            stack.callback(scp.stop)
            with peer_required():
                scp.start()
            return scp

        yield make


class PynetdicomSCPFactory:
    """Starts in-process pynetdicom peers; the fixture stops them all at teardown."""

    def __init__(self) -> None:
        self._peers: list[PynetdicomSCP | SilentPeer] = []

    def storage(self, ae_title: str = "STORESCP", **kwargs: Any) -> StorageSCP:
        """Start a recording :class:`rig.scp.StorageSCP` (``kwargs`` as its constructor's)."""
        scp = StorageSCP(ae_title, **kwargs)
        self._peers.append(scp)
        scp.start()
        return scp

    def qr(self, ae_title: str = "FAKEPACS", **kwargs: Any) -> FakeQRSCP:
        """Start a :class:`rig.scp.FakeQRSCP` (``kwargs`` as its constructor's)."""
        scp = FakeQRSCP(ae_title, **kwargs)
        self._peers.append(scp)
        scp.start()
        return scp

    def silent(self) -> SilentPeer:
        """Start a :class:`rig.scp.SilentPeer` that accepts TCP and never answers."""
        peer = SilentPeer()
        self._peers.append(peer)
        return peer.start()

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every peer started, in parallel (each pynetdicom server takes up to 0.5 s).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for each one.
        """
        threads = [threading.Thread(target=peer.stop, daemon=True) for peer in self._peers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout)
        self._peers.clear()


@pytest.fixture
def pynetdicom_scp_factory() -> Iterator[PynetdicomSCPFactory]:
    """Start in-process pynetdicom SCPs on loopback (see :class:`PynetdicomSCPFactory`)."""
    factory = PynetdicomSCPFactory()
    try:
        yield factory
    finally:
        factory.stop_all()
