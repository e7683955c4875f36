"""The `servers` commands, run as a user runs them: a subprocess on a settings file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import REPO, run


def names(settings: Path) -> list[str]:
    return [s["name"] for s in json.loads(run(settings, "servers", "list", "--json").stdout)]


def test_full_session(ini_path: Path) -> None:
    assert run(ini_path, "servers", "add").returncode == 0
    assert (
        run(
            ini_path,
            "servers",
            "add",
            "--name",
            "Main",
            "host=10.1.2.3",
            "port=104",
            "called_ae_title=ORTHANC",
        ).returncode
        == 0
    )
    assert run(ini_path, "servers", "duplicate", "main").returncode == 0
    assert names(ini_path) == ["New server", "Main", "Main (2)"]
    assert run(ini_path, "servers", "move", "Main (2)", "--up").returncode == 0
    assert run(ini_path, "servers", "move", "New server", "--to", "2").returncode == 0
    assert names(ini_path) == ["Main (2)", "Main", "New server"]
    assert run(ini_path, "servers", "default", "Main").returncode == 0
    shown = json.loads(run(ini_path, "servers", "show", "Main", "--json").stdout)
    assert (shown["is_default"], shown["host"], shown["port"], shown["called_ae_title"]) == (
        True,
        "10.1.2.3",
        104,
        "ORTHANC",
    )
    text = run(ini_path, "servers", "list").stdout
    assert " * Main " in text
    assert run(ini_path, "servers", "remove", "Main").returncode == 0
    assert names(ini_path) == ["Main (2)", "New server"]
    assert run(ini_path, "servers", "default", "--clear").returncode == 0


def test_json_has_canonical_fields_and_no_secret(tmp_path: Path) -> None:
    ini = tmp_path / "s.ini"
    run(
        ini,
        "servers",
        "add",
        "--name",
        "R",
        "rest_enabled=true",
        "rest_url=pacs:8042",
        "rest_user=u",
        "--password-stdin",
        stdin="pw-123\n",
    )
    entry = json.loads(run(ini, "servers", "list", "--json").stdout)[0]
    assert entry["rest_url"] == "http://pacs:8042"
    assert "rest_password" not in entry and "pw-123" not in json.dumps(entry)
    for field in (
        "called_ae_title",
        "host",
        "port",
        "calling_ae_title",
        "retrieve_method",
        "load_mode",
        "date_filter",
    ):
        assert field in entry


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["servers", "set", "A", "port=0"], "Remote port (port): must be from 1 to 65535"),
        (
            ["servers", "set", "A", "called_ae_title=WAY_TOO_LONG_AE_TITLE"],
            "AE Title (called_ae_title): at most 16",
        ),
        (["servers", "set", "A", "filter_from_date=2023-02-29"], "not a real calendar date"),
        (["servers", "set", "A", "rest_enabled=true"], "PACS REST URL (rest_url): is required"),
        (["servers", "set", "A", "colour=red"], "colour: unknown field"),
        (["servers", "set", "A", "rest_password=oops"], "--password-stdin"),
        (["servers", "set", "A", "noequals"], "expected field=value"),
        (["servers", "set", "Ghost", "port=1"], "no server named 'Ghost'"),
        (["servers", "add", "--name", "a"], "already used"),
        (["servers", "move", "A", "--to", "5"], "Position (index)"),
    ],
)
def test_invalid_input_exits_2_naming_field_and_rule(
    tmp_path: Path, args: list[str], message: str
) -> None:
    ini = tmp_path / "s.ini"
    run(ini, "servers", "add", "--name", "A")
    before = ini.read_bytes()
    result = run(ini, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert ini.read_bytes() == before  # nothing was stored


def test_other_failures_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run(blocker / "s.ini", "servers", "add")  # parent is a file: cannot write
    assert result.returncode == 1
    assert "error:" in result.stderr


def test_password_from_stdin_with_file_store(tmp_path: Path) -> None:
    ini, secrets = tmp_path / "s.ini", tmp_path / "cred" / "credentials.json"
    env = {"DICOMSERVERS_SECRET_STORE": "file", "DICOMSERVERS_SECRET_FILE": str(secrets)}
    run(
        ini,
        "servers",
        "add",
        "--name",
        "R",
        "rest_enabled=true",
        "rest_url=http://r",
        "--password-stdin",
        stdin="s3cr3t\n",
        env=env,
    )
    assert "s3cr3t" not in ini.read_text()
    assert "s3cr3t" in secrets.read_text()
    assert secrets.stat().st_mode & 0o777 == 0o600
    shown = run(ini, "servers", "show", "R", env=env).stdout
    assert "rest_password = (set, kept in" in shown and "s3cr3t" not in shown


def test_memory_store_warns_that_password_is_not_kept(tmp_path: Path) -> None:
    result = run(tmp_path / "s.ini", "servers", "add", "--password-stdin", stdin="pw\n")
    assert result.returncode == 0
    assert "only remembered for this session" in result.stderr


def test_settings_from_environment(tmp_path: Path) -> None:
    ini = tmp_path / "env.ini"
    environment = dict(
        os.environ,
        PYTHONPATH=str(REPO / "DicomServers"),
        DICOMSERVERS_SETTINGS=str(ini),
        DICOMSERVERS_SECRET_STORE="memory",
    )
    subprocess.run(
        [sys.executable, "-m", "DicomServersLib", "servers", "add"],
        env=environment,
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert "New server" in ini.read_text()


def test_bad_secret_store_choice_is_invalid_input(tmp_path: Path) -> None:
    result = run(tmp_path / "s.ini", "servers", "list", env={"DICOMSERVERS_SECRET_STORE": "vault"})
    assert result.returncode == 2
    assert "DICOMSERVERS_SECRET_STORE" in result.stderr


def test_corrupted_entry_is_reported_on_list(tmp_path: Path) -> None:
    ini = tmp_path / "s.ini"
    ini.write_text(
        '[DicomServers]\nServers="{\\"schema_version\\":1,\\"servers\\":[{\\"name\\":\\"X\\",\\"port\\":0}]}"\n'
    )
    result = run(ini, "servers", "list")
    assert result.returncode == 0
    assert "entry 1 (X)" in result.stderr and "Remote port (port)" in result.stderr


def test_notification_token_from_stdin_is_a_secret(tmp_path: Path) -> None:
    ini, secrets = tmp_path / "s.ini", tmp_path / "credentials.json"
    env = {"DICOMSERVERS_SECRET_STORE": "file", "DICOMSERVERS_SECRET_FILE": str(secrets)}
    result = run(
        ini,
        "servers",
        "add",
        "--name",
        "N",
        "notifications_enabled=true",
        "--password-stdin",
        "--token-stdin",
        stdin="pw\ntok-42\n",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "tok-42" not in ini.read_text() and "tok-42" in secrets.read_text()
    shown = run(ini, "servers", "show", "N", env=env).stdout
    assert "notification_token = (set" in shown and "rest_password = (set" in shown
    assert run(ini, "servers", "set", "N", "notification_token=x").returncode == 2


def test_name_as_a_field(tmp_path: Path) -> None:
    ini = tmp_path / "s.ini"
    assert run(ini, "servers", "add", "name=From field", "port=104").returncode == 0
    assert names(ini) == ["From field"]
    result = run(ini, "servers", "add", "--name", "A", "name=B")
    assert result.returncode == 2 and "give the name once" in result.stderr
