"""Fixtures of the hardening tests (issue 8): a test PKI and peers that speak TLS.

Longer runs: ``--fuzz-inputs N`` (when this folder is given to pytest) or the environment
variable ``DICOMSERVERS_FUZZ_INPUTS=N`` sets how many inputs the notification-listener fuzz feeds
its validation path (default 100,000, bounded in time); ``bench/fuzz_listener.py --inputs N`` is
the long documented run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hardening_pki import TestPki, make_pki
from rig.orthanc import OrthancOptions, OrthancServer
from rig.studies import SampleSet

DEFAULT_FUZZ_INPUTS = 100_000


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--fuzz-inputs N``: inputs of the listener fuzz test (default 100,000)."""
    parser.addoption(
        "--fuzz-inputs",
        type=int,
        default=DEFAULT_FUZZ_INPUTS,
        help="inputs fed to the notification-listener validation fuzz (default 100000)",
    )


@pytest.fixture
def fuzz_inputs(request: pytest.FixtureRequest) -> int:
    """How many inputs the listener fuzz test runs (option, else environment, else 100,000)."""
    value = request.config.getoption("--fuzz-inputs", default=None)
    if value is None or value == DEFAULT_FUZZ_INPUTS:
        value = int(os.environ.get("DICOMSERVERS_FUZZ_INPUTS", DEFAULT_FUZZ_INPUTS))
    return int(value)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A CA, a server and a client certificate it signed, and an unrelated CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_orthanc_options(pki: TestPki, *, client_certificate: bool = False) -> OrthancOptions:
    """Orthanc options with DICOM TLS on (``DicomTls*``, Orthanc 1.9.0+)."""
    return OrthancOptions(
        dicomweb=False,
        worklists=False,
        extra={
            "DicomTlsEnabled": True,
            "DicomTlsCertificate": str(pki.server_cert),
            "DicomTlsPrivateKey": str(pki.server_key),
            "DicomTlsTrustedCertificates": str(pki.ca),
            "DicomTlsRemoteCertificateRequired": client_certificate,
        },
    )


@pytest.fixture(scope="module")
def tls_orthanc(
    pki: TestPki, sample_studies: SampleSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrthancServer]:
    """A real Orthanc serving DICOM only over TLS (no client certificate asked)."""
    server = OrthancServer(tmp_path_factory.mktemp("tls-orthanc"), tls_orthanc_options(pki))
    try:
        server.start()
        server.upload(sample_studies.study("ACC0001").paths)
        yield server
    finally:
        server.kill()
        server.session.close()


@pytest.fixture
def make_orthanc(orthanc_factory: Callable[..., OrthancServer]) -> Callable[..., OrthancServer]:
    """``orthanc_factory`` taking a whole :class:`OrthancOptions` (``preload`` as the rig's)."""

    def make(options: OrthancOptions, preload: Any = None) -> OrthancServer:
        fields = {name: getattr(options, name) for name in OrthancOptions.__dataclass_fields__}
        return orthanc_factory(preload=preload, **fields)

    return make


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A destination folder for retrieved files."""
    return tmp_path / "dest"
