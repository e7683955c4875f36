"""Fixtures of the PACS REST API tests: real Orthanc servers (authentication on, DICOMweb).

Every Orthanc here is real (``/usr/sbin/Orthanc`` with the DICOMweb plugin, HTTP Basic
authentication on, loopback only), started by the rig with :data:`REST_ORTHANC_OPTIONS`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_helpers import REST_ORTHANC_OPTIONS, Cli, RequestLog, StudyMaker
from rig.orthanc import OrthancOptions, OrthancServer
from rig.studies import SampleSet


@pytest.fixture
def request_log() -> RequestLog:
    """An empty request log."""
    return RequestLog()


@pytest.fixture(scope="module")
def rest_orthanc(
    sample_studies: SampleSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrthancServer]:
    """One Orthanc for the read-only tests of a module, holding the sample studies."""
    server = OrthancServer(
        tmp_path_factory.mktemp("rest-orthanc"), OrthancOptions(**REST_ORTHANC_OPTIONS)
    )
    try:
        server.start()
        server.upload(sample_studies.paths)
        yield server
    finally:
        server.kill()
        server.session.close()


@pytest.fixture
def fresh_orthanc(
    orthanc_factory: Callable[..., OrthancServer],
) -> Callable[..., OrthancServer]:
    """Start an Orthanc of this test only (``preload`` and options as ``orthanc_factory``)."""

    def make(preload: Any = None, **options: Any) -> OrthancServer:
        return orthanc_factory(preload=preload, **{**REST_ORTHANC_OPTIONS, **options})

    return make


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The command line with its own settings file, secrets file and cache folder."""
    return Cli(tmp_path)


@pytest.fixture
def study_maker(tmp_path: Path) -> StudyMaker:
    """Writes new small studies under this test's folder."""
    return StudyMaker(tmp_path / "new-studies")


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: ``(key file, certificate file)``."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert
