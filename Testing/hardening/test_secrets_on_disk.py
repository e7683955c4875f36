"""Secrets never land on disk, in output, in diagnoses or in logs (issue 8 §1).

A user's real flows run against a real Orthanc whose password is unique to the test: the CLI
adds and changes a server with ``--password-stdin`` / ``--token-stdin``, refreshes the REST
study-list cache, queries, retrieves, exports, fails a login with a wrong password and tries a
URL with credentials in it. Then every file under the settings folder and the cache folder is
searched (bytes) for each secret: none may hold one, except the file secret store, which must be
readable by the user only (mode 0600). In-process runs of the same flows with every logger at
DEBUG check that no log record carries a secret either.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from DicomServersLib.dimse.echo import echo
from DicomServersLib.rest import check_rest_login, refresh, retrieve_study, search_studies
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import parse_field
from rig.orthanc import OrthancServer
from rig.studies import SampleSet

REPO = Path(__file__).resolve().parents[2]


class Home:
    """A user's folders: settings (``XDG_CONFIG_HOME``), cache, file secret store, downloads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config"
        self.cache = root / "cache"
        self.settings = self.config / "slicer.org" / "Slicer.ini"
        self.secret_file = self.config / "DicomServers" / "credentials.json"
        self.downloads = root / "downloads"
        self.env = dict(
            os.environ,
            HOME=str(root / "home"),
            XDG_CONFIG_HOME=str(self.config),
            XDG_CACHE_HOME=str(self.cache),
            DICOMSERVERS_CACHE_DIR=str(self.cache / "DicomServers"),
            DICOMSERVERS_SECRET_STORE="file",
            PYTHONPATH=str(REPO / "DicomServers"),
        )
        self.env.pop("DICOMSERVERS_SECRET_FILE", None)
        self.env.pop("DICOMSERVERS_SETTINGS", None)
        self.outputs: list[str] = []

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run ``python -m DicomServersLib --settings <Slicer.ini> ARGS…``; keep its output."""
        done = subprocess.run(
            [sys.executable, "-m", "DicomServersLib", "--settings", str(self.settings), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def files(self) -> list[Path]:
        """Every file under the settings and cache folders."""
        return sorted(p for folder in (self.config, self.cache) for p in folder.rglob("*"))


def holding(files: list[Path], secret: str) -> list[Path]:
    """The files whose bytes contain ``secret`` (UTF-8, or UTF-16 as Qt may write)."""
    needles = [secret.encode("utf-8"), secret.encode("utf-16-le")]
    return [p for p in files if p.is_file() and any(n in p.read_bytes() for n in needles)]


@pytest.fixture
def secret_orthanc(
    orthanc_factory: Callable[..., OrthancServer], sample_studies: SampleSet
) -> OrthancServer:
    """An Orthanc whose password exists nowhere else."""
    password = f"pw-{uuid.uuid4().hex}"
    return orthanc_factory(
        preload=[*sample_studies.study("ACC0001").paths, *sample_studies.study("ACC0005").paths],
        password=password,
        dicomweb=False,
        worklists=False,
    )


@pytest.mark.slow
def test_no_secret_in_any_file_output_or_diagnosis(
    secret_orthanc: OrthancServer, sample_studies: SampleSet, tmp_path: Path
) -> None:
    home = Home(tmp_path)
    password = secret_orthanc.password
    token = f"tok-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    study = sample_studies.study("ACC0005")
    fields = [
        "rest_enabled=true",
        f"rest_url={secret_orthanc.http_url}",
        f"rest_user={secret_orthanc.user}",
        "host=127.0.0.1",
        f"port={secret_orthanc.dicom_port}",
        f"called_ae_title={secret_orthanc.aet}",
        "cache_threshold=5",
        "notification_port=1",  # never started here: only the token's storage matters
    ]
    steps: list[tuple[tuple[str, ...], str, int]] = [
        (("servers", "add", "--name", "PACS", *fields, "--password-stdin"), password, 0),
        (("servers", "set", "PACS", "timeout_s=12", "--token-stdin"), token, 0),
        (("servers", "set", "PACS", "--password-stdin"), password, 0),
        (("servers", "show", "PACS"), "", 0),
        (("servers", "show", "PACS", "--json"), "", 0),
        (("servers", "list", "--json"), "", 0),
        (("servers", "duplicate", "PACS"), "", 0),
        (("studies", "PACS", "--refresh"), "", 0),
        (("query", "PACS", "--via", "rest", "--json"), "", 0),
        (("retrieve", "PACS", study.study_instance_uid, "--dest", str(home.downloads)), "", 0),
        (("echo", "PACS"), "", 0),
        (("servers", "export", str(home.config / "servers-export.json")), "", 0),
    ]
    for args, stdin, expected in steps:
        done = home.cli(*args, stdin=stdin)
        assert done.returncode == expected, (args, done.stdout, done.stderr)
    assert list((home.cache / "DicomServers").rglob("*.sqlite")), "the REST cache was not filled"
    assert len(list(home.downloads.rglob("*.dcm"))) == len(study.instances)

    # A wrong password: the 401 diagnosis names neither the wrong nor the right password.
    assert home.cli("servers", "set", "PACS (2)", "--password-stdin", stdin=wrong).returncode == 0
    failed = home.cli("studies", "PACS (2)", "--refresh")
    assert failed.returncode == 1 and "401" in failed.stderr + failed.stdout
    # A URL carrying credentials is refused without echoing them.
    with_credentials = secret_orthanc.http_url.replace("//", f"//dicom:{password}@")
    refused = home.cli("servers", "set", "PACS", f"rest_url={with_credentials}")
    assert refused.returncode == 2 and "must not contain a user name or password" in refused.stderr

    files = home.files()
    assert home.settings in files
    for secret in (password, token, wrong):
        leaks = [p for p in holding(files, secret) if p != home.secret_file]
        assert leaks == [], f"a secret is in {leaks}"
        assert not any(secret in text for text in home.outputs), "a secret was printed"
    # The file store holds them, readable by the user only.
    assert holding([home.secret_file], password) and holding([home.secret_file], token)
    assert stat.S_IMODE(home.secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.secret_file.parent.stat().st_mode) & 0o077 == 0


def test_no_secret_in_logs_or_diagnoses(
    secret_orthanc: OrthancServer,
    sample_studies: SampleSet,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DICOMSERVERS_CACHE_DIR", str(tmp_path / "cache"))
    password = secret_orthanc.password
    wrong = f"wrong-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)  # every logger, pynetdicom's and urllib3's included
    base: dict[str, Any] = {
        "name": "PACS",
        "rest_enabled": True,
        "rest_url": secret_orthanc.http_url,
        "rest_user": secret_orthanc.user,
        "rest_password": password,
        "host": "127.0.0.1",
        "port": secret_orthanc.dicom_port,
        "called_ae_title": secret_orthanc.aet,
        "timeout_s": 10.0,
        "search_limit": 0,
    }
    server = DicomServer(**base)
    texts: list[str] = []
    assert check_rest_login(server).ok
    synced = refresh(server)
    assert synced.ok, synced.diagnosis
    found = search_studies(server)
    assert found.ok
    got = retrieve_study(
        server, sample_studies.study("ACC0001").study_instance_uid, tmp_path / "dest"
    )
    assert got.ok
    assert echo(server).ok
    bad = DicomServer(**{**base, "rest_password": wrong})
    login = check_rest_login(bad)
    assert not login.ok and login.status == 401
    failed_sync = refresh(bad)
    failed_search = search_studies(bad)
    texts += [login.diagnosis, failed_sync.diagnosis, failed_search.diagnosis]
    assert not failed_search.ok and failed_search.diagnosis
    with_credentials = secret_orthanc.http_url.replace("//", f"//dicom:{password}@")
    value, reason = parse_field("rest_url", with_credentials)
    assert value is None and "must not contain a user name or password" in reason
    texts.append(reason)
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for secret in (password, wrong):
        assert not any(secret in text for text in texts)
    assert password not in repr(server)  # the dataclass repr hides secrets
    cache_files = list((tmp_path / "cache").rglob("*"))
    assert any(p.suffix == ".sqlite" for p in cache_files)
    assert holding(cache_files, password) == [] and holding(cache_files, wrong) == []
