"""DICOM TLS and HTTPS with certificates made for the test run (issue 8 §3).

Peers: a real Orthanc serving DICOM only over TLS (DCMTK's TLS layer: ``DicomTlsEnabled``),
with and without a required client certificate; a pynetdicom Q/R SCP over TLS (Python's
``ssl``, TLS 1.3) requiring a client certificate; Orthanc's REST API behind an HTTPS front
(Orthanc 1.10.1's own HTTPS crashes, see :mod:`tls_peers`). Every certificate comes from
:mod:`hardening_pki` (a test CA, and an unrelated "wrong" CA).

Both DIMSE paths are covered: pynetdicom associations (C-ECHO, C-STORE) and direct ones
(C-FIND, C-GET).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import tls_orthanc_options
from DicomServersLib.dimse import outcome
from DicomServersLib.dimse.echo import echo
from DicomServersLib.dimse.query import find_studies
from DicomServersLib.dimse.retrieve import retrieve
from DicomServersLib.dimse.send import send
from DicomServersLib.rest import check_rest_login, retrieve_study, search_studies
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import check_server, parse_field
from hardening_pki import TestPki
from pydicom import dcmread
from rig.orthanc import OrthancServer
from rig.studies import SampleSet
from tls_peers import TlsFront, TlsQRSCP, server_context

LOOPBACK = "127.0.0.1"


def tls_server(peer: Any, pki: TestPki, **changes: Any) -> DicomServer:
    """A server record for a TLS peer, trusting the test CA."""
    fields: dict[str, Any] = {
        "name": "TLS PACS",
        "called_ae_title": getattr(peer, "aet", None) or peer.ae_title,
        "host": LOOPBACK,
        "port": getattr(peer, "dicom_port", None) or peer.port,
        "calling_ae_title": "DSTEST",
        "timeout_s": 5.0,
        "search_limit": 0,
        "tls_enabled": True,
        "tls_ca_file": str(pki.ca),
    }
    fields.update(changes)
    return DicomServer(**fields)


def dcm_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm")) if folder.exists() else []


# -- Orthanc with DICOM TLS ----------------------------------------------------------------


def test_echo_query_retrieve_and_send_over_tls(
    tls_orthanc: OrthancServer, pki: TestPki, sample_studies: SampleSet, dest: Path
) -> None:
    server = tls_server(tls_orthanc, pki)
    study = sample_studies.study("ACC0001")
    step = echo(server)
    assert step.ok, step.diagnosis
    found = find_studies(server)
    assert found.ok, found.diagnosis
    assert [s.study_uid for s in found.studies] == [study.study_instance_uid]
    result = retrieve(server, study.study_instance_uid, dest)
    assert result.ok, result.diagnosis
    assert result.received == len(study.instances)
    assert {p.stem for p in dcm_files(dest)} == {i.sop_instance_uid for i in study.instances}
    other = sample_studies.study("ACC0005")
    sent = send(server, other.paths)
    assert sent.ok, sent.diagnosis
    assert other.study_instance_uid in tls_orthanc.study_uids()


@pytest.mark.parametrize("operation", ["echo", "find", "retrieve", "send"])
def test_wrong_ca_fails_with_a_clear_diagnosis(
    tls_orthanc: OrthancServer,
    pki: TestPki,
    sample_studies: SampleSet,
    dest: Path,
    operation: str,
) -> None:
    server = tls_server(tls_orthanc, pki, tls_ca_file=str(pki.wrong_ca))
    study = sample_studies.study("ACC0001")
    started = time.monotonic()
    if operation == "echo":
        outcome_ = echo(server)
        ok, text, kind = outcome_.ok, outcome_.diagnosis, outcome_.kind
    elif operation == "find":
        found = find_studies(server)
        ok, text, kind = found.ok, found.diagnosis, None
    elif operation == "retrieve":
        got = retrieve(server, study.study_instance_uid, dest)
        ok, text, kind = got.ok, got.diagnosis, None
        assert dcm_files(dest) == []
    else:
        sent = send(server, sample_studies.study("ACC0002").paths)
        ok, text, kind = sent.ok, sent.diagnosis, None
    assert not ok
    assert f"not signed by the CA in {pki.wrong_ca}" in text, text
    assert "tls_ca_file" in text
    assert kind in (None, outcome.TLS)
    assert time.monotonic() - started < 10


def test_verification_can_be_turned_off(tls_orthanc: OrthancServer, pki: TestPki) -> None:
    server = tls_server(tls_orthanc, pki, tls_ca_file=str(pki.wrong_ca), tls_verify=False)
    step = echo(server)
    assert step.ok, step.diagnosis
    assert find_studies(server).ok


def test_system_trust_store_does_not_trust_a_private_ca(
    tls_orthanc: OrthancServer, pki: TestPki
) -> None:
    step = echo(tls_server(tls_orthanc, pki, tls_ca_file=""))
    assert not step.ok and step.kind == outcome.TLS
    assert "not signed by an authority this computer trusts" in step.diagnosis


def test_host_name_must_match_the_certificate(
    tls_orthanc: OrthancServer, pki: TestPki, sample_studies: SampleSet
) -> None:
    assert echo(tls_server(tls_orthanc, pki, host="localhost")).ok  # named by the certificate
    scp = TlsQRSCP(server_context(pki.other_host_cert, pki.other_host_key)).start()
    try:
        server = tls_server(scp, pki)  # 127.0.0.1, but the certificate names pacs.example.org
        for result in (echo(server), find_studies(server)):
            assert not result.ok
            assert "issued for another host name than '127.0.0.1'" in result.diagnosis
    finally:
        scp.stop()


def test_tls_on_a_plain_port_and_plain_on_a_tls_port(
    tls_orthanc: OrthancServer, orthanc: OrthancServer, pki: TestPki
) -> None:
    plain = tls_server(orthanc, pki)  # TLS on, but the session Orthanc speaks plain DICOM
    for outcome_ in (echo(plain), find_studies(plain)):
        assert not outcome_.ok
        assert "does not speak TLS" in outcome_.diagnosis or "TLS handshake" in outcome_.diagnosis
    cleartext = tls_server(tls_orthanc, pki, tls_enabled=False)
    started = time.monotonic()
    step = echo(cleartext)
    assert not step.ok and step.diagnosis
    assert time.monotonic() - started < 2 * cleartext.timeout_s + 3


@pytest.mark.parametrize(
    ("field", "make_bad", "reason"),
    [
        ("tls_ca_file", lambda tmp, pki: tmp / "missing.pem", "does not exist"),
        ("tls_ca_file", lambda tmp, pki: _write(tmp / "junk.pem", b"not a pem"), "PEM"),
        ("tls_cert_file", lambda tmp, pki: tmp / "missing.pem", "does not exist"),
    ],
)
def test_unusable_files_are_named(
    tls_orthanc: OrthancServer, pki: TestPki, tmp_path: Path, field: str, make_bad, reason: str
) -> None:
    bad = make_bad(tmp_path, pki)
    changes: dict[str, Any] = {field: str(bad)}
    if field == "tls_cert_file":
        changes["tls_key_file"] = str(pki.client_key)
    server = tls_server(tls_orthanc, pki, **changes)
    for result in (echo(server), find_studies(server)):
        assert not result.ok
        assert f"({field}) file {bad} cannot be used" in result.diagnosis
        assert reason in result.diagnosis


def test_key_of_another_certificate_is_named(tls_orthanc: OrthancServer, pki: TestPki) -> None:
    server = tls_server(
        tls_orthanc, pki, tls_cert_file=str(pki.client_cert), tls_key_file=str(pki.server_key)
    )
    step = echo(server)
    assert not step.ok and step.kind == outcome.TLS
    assert "does not belong to the certificate" in step.diagnosis


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.slow
def test_orthanc_requiring_a_client_certificate(
    make_orthanc, pki: TestPki, sample_studies: SampleSet, dest: Path
) -> None:
    orthanc = make_orthanc(
        tls_orthanc_options(pki, client_certificate=True),
        preload=sample_studies.study("ACC0005").paths,
    )
    anonymous = tls_server(orthanc, pki)
    step = echo(anonymous)
    assert not step.ok and step.kind == outcome.TLS, step.diagnosis
    found = find_studies(anonymous)
    assert not found.ok and "client certificate" in found.diagnosis, found.diagnosis
    rogue = tls_server(
        orthanc,
        pki,
        tls_cert_file=str(pki.rogue_client_cert),
        tls_key_file=str(pki.rogue_client_key),
    )
    step = echo(rogue)
    assert not step.ok and step.kind == outcome.TLS, step.diagnosis
    known = tls_server(
        orthanc, pki, tls_cert_file=str(pki.client_cert), tls_key_file=str(pki.client_key)
    )
    assert echo(known).ok
    study = sample_studies.study("ACC0005")
    result = retrieve(known, study.study_instance_uid, dest)
    assert result.ok and result.received == len(study.instances), result.diagnosis


# -- a pynetdicom peer over TLS 1.3 ----------------------------------------------------------


@pytest.fixture
def tls13_pacs(pki: TestPki, sample_studies: SampleSet) -> Iterator[TlsQRSCP]:
    study = sample_studies.study("ACC0005")
    scp = TlsQRSCP(
        server_context(pki.server_cert, pki.server_key, client_ca=pki.ca),
        datasets=[dcmread(path) for path in study.paths],
    )
    scp.start()
    yield scp
    scp.stop()


def test_tls13_peer_requiring_a_client_certificate(
    tls13_pacs: TlsQRSCP, pki: TestPki, sample_studies: SampleSet, dest: Path
) -> None:
    anonymous = tls_server(tls13_pacs, pki)
    step = echo(anonymous)
    assert not step.ok and step.kind == outcome.TLS
    assert "requires a client certificate" in step.diagnosis, step.diagnosis
    got = retrieve(anonymous, sample_studies.study("ACC0005").study_instance_uid, dest)
    assert not got.ok and "requires a client certificate" in got.diagnosis, got.diagnosis
    assert dcm_files(dest) == []
    rogue = tls_server(
        tls13_pacs,
        pki,
        tls_cert_file=str(pki.rogue_client_cert),
        tls_key_file=str(pki.rogue_client_key),
    )
    step = echo(rogue)
    assert not step.ok and "refused our client certificate" in step.diagnosis, step.diagnosis
    known = tls_server(
        tls13_pacs, pki, tls_cert_file=str(pki.client_cert), tls_key_file=str(pki.client_key)
    )
    assert echo(known).ok
    study = sample_studies.study("ACC0005")
    result = retrieve(known, study.study_instance_uid, dest)
    assert result.ok and result.received == len(study.instances), result.diagnosis


# -- REST over HTTPS with a custom CA bundle -------------------------------------------------


@pytest.fixture
def https_orthanc(orthanc: OrthancServer, pki: TestPki) -> Iterator[TlsFront]:
    front = TlsFront(orthanc.http_port, server_context(pki.server_cert, pki.server_key))
    yield front
    front.stop()


def rest_record(orthanc: OrthancServer, url: str, **changes: Any) -> DicomServer:
    values: dict[str, Any] = {
        "name": "HTTPS PACS",
        "rest_enabled": True,
        "rest_url": url,
        "rest_user": orthanc.user,
        "rest_password": orthanc.password,
        "timeout_s": 5.0,
        "search_limit": 0,
    }
    values.update(changes)
    return DicomServer(**values)


@pytest.mark.parametrize("flavor", ["orthanc", "dicomweb"])
def test_https_rest_with_a_custom_ca_bundle(
    https_orthanc: TlsFront,
    orthanc: OrthancServer,
    pki: TestPki,
    sample_studies: SampleSet,
    dest: Path,
    flavor: str,
) -> None:
    url = https_orthanc.url + ("/dicom-web" if flavor == "dicomweb" else "")
    server = rest_record(orthanc, url, rest_flavor=flavor, rest_ca_bundle=str(pki.ca))
    check = check_rest_login(server)
    assert check.ok, check.diagnosis
    found = search_studies(server)
    assert found.ok and len(found.studies) == len(sample_studies.studies), found.diagnosis
    study = sample_studies.study("ACC0005")
    result = retrieve_study(server, study.study_instance_uid, dest)
    assert result.ok and result.received == len(study.instances), result.diagnosis
    wrong = rest_record(orthanc, url, rest_flavor=flavor, rest_ca_bundle=str(pki.wrong_ca))
    check = check_rest_login(wrong)
    assert not check.ok and check.kind == "tls"
    assert f"not signed by the CA in {pki.wrong_ca}" in check.diagnosis, check.diagnosis
    assert orthanc.password not in check.diagnosis
    failed = search_studies(wrong)
    assert not failed.ok and f"not signed by the CA in {pki.wrong_ca}" in failed.diagnosis


def test_missing_rest_ca_bundle_is_named(
    https_orthanc: TlsFront, orthanc: OrthancServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.pem"
    server = rest_record(orthanc, https_orthanc.url, rest_ca_bundle=str(missing))
    check = check_rest_login(server)
    assert not check.ok
    assert f"rest_ca_bundle) {missing} cannot be read" in check.diagnosis, check.diagnosis


# -- the settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "ok"),
    [
        ("tls_enabled", "yes", True),
        ("tls_verify", "maybe", False),
        ("tls_ca_file", "/etc/pki/ca.pem", True),
        ("tls_ca_file", "~/ca.pem", True),
        ("tls_ca_file", "relative/ca.pem", False),
        ("tls_cert_file", "", True),
        ("tls_key_file", "/k\x00ey.pem", False),
        ("rest_ca_bundle", "/etc/ssl/hospital.pem", True),
        ("rest_ca_bundle", "ca.pem", False),
    ],
)
def test_tls_field_rules(field: str, text: str, ok: bool) -> None:
    value, reason = parse_field(field, text)
    assert (reason == "") is ok, reason
    if not ok:
        assert field in reason


def test_a_key_needs_its_certificate() -> None:
    server = DicomServer(tls_enabled=True, tls_key_file="/etc/pki/client.key")
    errors = dict(check_server(server))
    assert "needs the client certificate (tls_cert_file)" in errors["tls_key_file"]
    assert DicomServer().tls_verify is True  # verification is on by default
