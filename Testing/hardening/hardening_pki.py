"""Certificates made during the test run, with the ``openssl`` command line tool.

A test CA signs a server certificate for ``127.0.0.1`` / ``localhost`` and a client
certificate; a second, unrelated CA is the "wrong" one a user might configure. RSA 2048 keys,
valid two days, unencrypted PEM files readable by the user only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_DAYS = "2"


@dataclass(frozen=True)
class TestPki:
    """The files of a test PKI.

    Attributes
    ----------
    ca, wrong_ca : pathlib.Path
        PEM certificates of the CA that signed everything and of an unrelated CA.
    server_cert, server_key : pathlib.Path
        The server's certificate (``IP:127.0.0.1``, ``DNS:localhost``) and key.
    server_combined : pathlib.Path
        Key and certificate in one PEM file.
    client_cert, client_key : pathlib.Path
        A client certificate (CN ``DSTEST``) signed by the CA, and its key.
    rogue_client_cert, rogue_client_key : pathlib.Path
        A client certificate signed by the wrong CA.
    other_host_cert, other_host_key : pathlib.Path
        A server certificate signed by the CA for ``pacs.example.org`` only.
    """

    __test__ = False  # not a pytest test class

    ca: Path
    wrong_ca: Path
    server_cert: Path
    server_key: Path
    server_combined: Path
    client_cert: Path
    client_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path
    other_host_cert: Path
    other_host_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("the openssl command line tool is needed to make test certificates")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60, text=True)


def _make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        _DAYS,
        "-subj",
        f"/CN=DicomServers test {name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        cwd=folder,
    )
    return cert, key


def _make_leaf(
    folder: Path, name: str, subject: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    cert, key, request = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions, encoding="ascii")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key),
        "-out", str(request), cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", _DAYS, "-out", str(cert), "-extfile", str(ext), cwd=folder,
    )  # fmt: skip
    return cert, key


def make_pki(folder: Path) -> TestPki:
    """Write a test PKI into ``folder`` (see :class:`TestPki`)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(folder, "ca")
    wrong = _make_ca(folder, "wrong-ca")
    server = _make_leaf(
        folder,
        "server",
        "/CN=127.0.0.1",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth,clientAuth\n",
    )
    client = _make_leaf(
        folder,
        "client",
        "/CN=DSTEST",
        ca,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    rogue = _make_leaf(
        folder,
        "rogue-client",
        "/CN=DSTEST",
        wrong,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    other = _make_leaf(
        folder,
        "other-host",
        "/CN=pacs.example.org",
        ca,
        "subjectAltName=DNS:pacs.example.org\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n",
    )
    combined = folder / "server-combined.pem"
    combined.write_bytes(server[1].read_bytes() + server[0].read_bytes())
    for path in folder.iterdir():
        os.chmod(path, 0o600)
    return TestPki(
        ca=ca[0],
        wrong_ca=wrong[0],
        server_cert=server[0],
        server_key=server[1],
        server_combined=combined,
        client_cert=client[0],
        client_key=client[1],
        rogue_client_cert=rogue[0],
        rogue_client_key=rogue[1],
        other_host_cert=other[0],
        other_host_key=other[1],
    )
