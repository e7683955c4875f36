"""The ``studies`` command, run as a user runs it (a subprocess on a settings file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rest_helpers import Cli, add_server, study_maker_for, upload
from rig.orthanc import OrthancServer
from rig.studies import SampleSet


def test_studies_loads_then_refreshes_incrementally(
    cli: Cli,
    fresh_orthanc: Callable[..., OrthancServer],
    sample_studies: SampleSet,
    tmp_path: Path,
) -> None:
    orthanc = fresh_orthanc(preload=sample_studies)
    add_server(cli, orthanc)
    first = cli("studies", "PACS")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("PACS: 7 studies; last synced ")
    assert "(full: first load of this server); +7 new" in lines[0]
    assert lines[1].split()[:3] == ["DATE", "TIME", "PATIENT"]
    assert "ACC0001" in lines[2] and "Thorax nativ" in lines[2]

    cached = cli("studies", "PACS")  # no refresh: the cache at once
    assert cached.stdout.splitlines()[0] == lines[0]

    upload(orthanc, study_maker_for(tmp_path).many(2, sample_studies.reference_date))
    refreshed = cli("studies", "PACS", "--refresh", "--json")
    assert refreshed.returncode == 0, refreshed.stderr
    data = json.loads(refreshed.stdout)
    assert data["server"] == "PACS"
    assert data["refresh"]["mode"] == "incremental" and data["refresh"]["added"] == 2
    assert data["sync"]["mode"] == "incremental" and data["sync"]["total"] == 9
    assert len(data["studies"]) == 9
    assert data["studies"][0]["study_date"] == sample_studies.reference_date.strftime("%Y%m%d")

    full = cli("studies", "PACS", "--full", "--json")
    assert json.loads(full.stdout)["refresh"]["mode"] == "full"


def test_rest_limit_is_said(
    cli: Cli, fresh_orthanc: Callable[..., OrthancServer], sample_studies: SampleSet
) -> None:
    orthanc = fresh_orthanc(preload=sample_studies)
    add_server(cli, orthanc, rest_limit="2")
    done = cli("studies", "PACS")
    assert done.returncode == 0, done.stderr
    assert "only the 2 most recent studies (REST limit)" in done.stdout.splitlines()[0]
    assert len(done.stdout.splitlines()) == 4


def test_failed_refresh_prints_the_cache_and_fails(
    cli: Cli, fresh_orthanc: Callable[..., OrthancServer], sample_studies: SampleSet
) -> None:
    orthanc = fresh_orthanc(preload=sample_studies)
    add_server(cli, orthanc)
    assert cli("studies", "PACS").returncode == 0
    orthanc.kill()
    done = cli("studies", "PACS", "--refresh")
    assert done.returncode == 1
    assert "PACS: 7 studies" in done.stdout
    assert "refused" in done.stderr and "last successful sync" in done.stderr


def test_wrong_password_fails_with_the_diagnosis(
    cli: Cli, fresh_orthanc: Callable[..., OrthancServer]
) -> None:
    orthanc = fresh_orthanc()
    done = cli(
        "servers", "add", "--name", "PACS", "rest_enabled=true", f"rest_url={orthanc.http_url}",
        "rest_user=dicom", "--password-stdin", stdin="wrong",
    )  # fmt: skip
    assert done.returncode == 0
    failed = cli("studies", "PACS")
    assert failed.returncode == 1
    assert "wrong user name or password" in failed.stderr


def test_rest_off_or_unknown_server_is_invalid_input(cli: Cli) -> None:
    assert cli("servers", "add", "--name", "Plain").returncode == 0
    off = cli("studies", "Plain")
    assert off.returncode == 2
    assert "rest_enabled" in off.stderr
    assert cli("studies", "Nobody").returncode == 2
