"""The REST login check and its diagnoses, against real Orthanc servers (both REST types)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from DicomServersLib.rest.connection_test import check_rest_login
from DicomServersLib.rest.diagnosis import (
    KIND_AUTH,
    KIND_NOT_FOUND,
    KIND_PROTOCOL,
    KIND_REFUSED,
    KIND_TIMEOUT,
    KIND_TLS,
)
from DicomServersLib.rest.session import build_session, rest_timeouts
from DicomServersLib.server import DicomServer
from rest_helpers import FLAVORS, RelayProxy, RequestLog, rest_server
from rig.orthanc import OrthancServer


@pytest.mark.parametrize("flavor", FLAVORS)
def test_login_ok_names_what_answered(rest_orthanc: OrthancServer, flavor: str) -> None:
    check = check_rest_login(rest_server(rest_orthanc, flavor))
    assert check.ok, check.diagnosis
    assert check.kind == "" and check.status == 200
    expected = "Orthanc 1.10" if flavor == "orthanc" else "DICOMweb"
    assert expected in check.server_info


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_password_is_a_401_diagnosis(rest_orthanc: OrthancServer, flavor: str) -> None:
    check = check_rest_login(rest_server(rest_orthanc, flavor, rest_password="not-the-password"))
    assert not check.ok
    assert (check.kind, check.status) == (KIND_AUTH, 401)
    assert "wrong user name or password" in check.diagnosis
    assert "PACS Password" in check.diagnosis


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_user_is_a_401_diagnosis(rest_orthanc: OrthancServer, flavor: str) -> None:
    check = check_rest_login(rest_server(rest_orthanc, flavor, rest_user="nobody"))
    assert (check.ok, check.kind) == (False, KIND_AUTH)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_path_is_a_404_diagnosis(rest_orthanc: OrthancServer, flavor: str) -> None:
    server = rest_server(rest_orthanc, flavor)
    check = check_rest_login(server.copy(rest_url=server.rest_url + "/not-here"))
    assert (check.ok, check.kind, check.status) == (False, KIND_NOT_FOUND, 404)
    assert "wrong URL or path" in check.diagnosis


def test_orthanc_url_given_as_dicomweb_is_a_404(rest_orthanc: OrthancServer) -> None:
    """The Orthanc root given for a DICOMweb server: QIDO-RS /studies is not there."""
    server = rest_server(rest_orthanc, "dicomweb", rest_url=rest_orthanc.http_url)
    check = check_rest_login(server)
    assert not check.ok
    assert check.kind == KIND_PROTOCOL
    assert "/dicom-web" in check.diagnosis


@pytest.mark.parametrize("flavor", FLAVORS)
def test_server_down_is_refused(free_port: int, flavor: str) -> None:
    server = DicomServer(
        rest_enabled=True, rest_flavor=flavor, rest_url=f"http://127.0.0.1:{free_port}"
    )
    check = check_rest_login(server)
    assert (check.ok, check.kind) == (False, KIND_REFUSED)
    assert "refused" in check.diagnosis and "firewall" in check.diagnosis
    assert f"127.0.0.1:{free_port}" in check.diagnosis


def test_stopped_orthanc_is_refused(fresh_orthanc: Callable[..., OrthancServer]) -> None:
    orthanc = fresh_orthanc()
    server = rest_server(orthanc)
    assert check_rest_login(server).ok
    orthanc.kill()
    check = check_rest_login(server)
    assert (check.ok, check.kind) == (False, KIND_REFUSED)


def test_silent_server_times_out(pynetdicom_scp_factory: object) -> None:
    """A peer that accepts the connection and never answers: the read timeout applies."""
    silent = pynetdicom_scp_factory.silent()  # type: ignore[attr-defined]
    server = DicomServer(
        rest_enabled=True,
        rest_flavor="orthanc",
        rest_url=f"http://127.0.0.1:{silent.port}",
        timeout_s=0.5,
    )
    check = check_rest_login(server)
    assert (check.ok, check.kind) == (False, KIND_TIMEOUT)
    assert "did not answer within 0.5 s" in check.diagnosis
    assert check.duration_s < 5


def test_empty_url_names_the_field() -> None:
    check = check_rest_login(DicomServer(rest_enabled=True, rest_url=""))
    assert not check.ok
    assert "rest_url" in check.diagnosis


@pytest.fixture
def tls_proxy(
    rest_orthanc: OrthancServer, tls_certificate: tuple[Path, Path]
) -> Iterator[RelayProxy]:
    key, cert = tls_certificate
    proxy = RelayProxy(rest_orthanc.http_port, cert, key)
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_untrusted_certificate_is_a_tls_diagnosis(
    rest_orthanc: OrthancServer,
    tls_proxy: RelayProxy,
    flavor: str,
    tls_certificate: tuple[Path, Path],
) -> None:
    suffix = "/dicom-web" if flavor == "dicomweb" else ""
    server = rest_server(rest_orthanc, flavor, rest_url=tls_proxy.url + suffix)
    check = check_rest_login(server)
    assert (check.ok, check.kind) == (False, KIND_TLS)
    assert "certificate" in check.diagnosis and "not trusted" in check.diagnosis
    # Trusting the authority that signed it (a hospital's CA bundle) makes it work.
    _, cert = tls_certificate
    trusted = server.copy()
    trusted.rest_ca_bundle = str(cert)  # the setting (kept in extras by older records)
    result = check_rest_login(trusted)
    assert result.ok, result.diagnosis


def test_http_to_an_https_port_fails_with_a_diagnosis(
    rest_orthanc: OrthancServer, tls_proxy: RelayProxy
) -> None:
    server = rest_server(rest_orthanc, rest_url=tls_proxy.url.replace("https", "http"))
    check = check_rest_login(server)
    assert not check.ok and check.diagnosis


def test_session_carries_login_timeouts_and_pool(rest_orthanc: OrthancServer) -> None:
    server = rest_server(rest_orthanc, timeout_s=7.0)
    session = build_session(server, pool_size=6)
    assert session.auth == (rest_orthanc.user, rest_orthanc.password)
    assert session.timeout == rest_timeouts(server) == (7.0, 7.0)
    assert session.trust_env is False  # loopback never goes through a proxy
    adapter = session.get_adapter(server.rest_url)
    assert adapter._pool_maxsize == 6  # type: ignore[attr-defined]
    log = RequestLog()
    log.attach(session)
    assert session.get(f"{server.rest_url}/system").status_code == 200
    assert log.paths() == ["/system"]
    session.close()


def test_long_timeouts_cap_the_connect_wait() -> None:
    assert rest_timeouts(DicomServer(timeout_s=120)) == (10.0, 120.0)


def test_no_user_sends_no_login(rest_orthanc: OrthancServer) -> None:
    check = check_rest_login(rest_server(rest_orthanc, rest_user="", rest_password=""))
    assert (check.ok, check.kind) == (False, KIND_AUTH)


def test_ca_bundle_setting_is_read_from_the_record(tmp_path: Path) -> None:
    from DicomServersLib.rest.session import rest_ca_bundle

    bundle = tmp_path / "hospital-ca.pem"
    bundle.write_text("not used here")
    server = DicomServer.from_dict({"rest_url": "https://pacs:8042", "rest_ca_bundle": str(bundle)})
    assert rest_ca_bundle(server) == str(bundle)
    assert build_session(server).verify == str(bundle)
    assert build_session(DicomServer(rest_url="https://pacs:8042")).verify is True
