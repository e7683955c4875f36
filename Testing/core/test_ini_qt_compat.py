"""Our INI writer and Qt's QSettings read each other's files (the format of Slicer.ini)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from DicomServersLib.ini_settings import IniSettings, escape_key, unescape_key
from DicomServersLib.settings_store import KEY_SERVERS
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QSettings

REPO = Path(__file__).resolve().parents[2]


def qsettings(path: Path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


def cli(path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PYTHONPATH=str(REPO / "DicomServers"), DICOMSERVERS_SECRET_STORE="memory"
    )
    return subprocess.run(
        [sys.executable, "-m", "DicomServersLib", "--settings", str(path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_written_ini_reads_back_through_qsettings(ini_path: Path) -> None:
    qt_before = qsettings(ini_path)
    foreign = {k: qt_before.value(k) for k in qt_before.allKeys()}
    del qt_before
    assert (
        cli(
            ini_path, "servers", "add", "--name", "Müller's PACS, Zürich", "host=::1", "port=4242"
        ).returncode
        == 0
    )
    assert cli(ini_path, "servers", "duplicate", "Müller's PACS, Zürich").returncode == 0
    qt_after = qsettings(ini_path)
    for key, value in foreign.items():
        assert qt_after.value(key) == value, key
    document = json.loads(qt_after.value(KEY_SERVERS))
    assert [s["name"] for s in document["servers"]] == [
        "Müller's PACS, Zürich",
        "Müller's PACS, Zürich (2)",
    ]
    assert document["servers"][0]["host"] == "::1" and document["servers"][0]["port"] == 4242
    listed = json.loads(cli(ini_path, "servers", "list", "--json").stdout)
    assert listed == document["servers"]


def test_qsettings_written_ini_reads_through_ours(tmp_path: Path) -> None:
    path = tmp_path / "qt.ini"
    qt = qsettings(path)
    values = {
        "DicomServers/Servers": '{"a": [1, 2], "b": "x=y; z"}',
        "DICOM/ServerNodes/0": '{\n  "Name": "Ünïcødé"\n}\n',
        "Plain": "  padded  ",
        "At": "@not-a-variant",
        "Group/Sub/Key": "tab\there",
        "List": ["a", "b,c"],
    }
    for key, value in values.items():
        qt.setValue(key, value)
    qt.sync()
    ours = IniSettings(path)
    for key, value in values.items():
        assert ours.value(key) == value, key


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_any_string_round_trips_through_qsettings(tmp_path_factory: object, text: str) -> None:
    folder = tmp_path_factory.mktemp("ini")  # type: ignore[attr-defined]
    path = Path(folder) / "x.ini"
    ours = IniSettings(path)
    ours.setValue("DicomServers/Value", text)
    ours.sync()
    assert qsettings(path).value("DicomServers/Value", "") == text
    assert IniSettings(path).value("DicomServers/Value") == text


@given(st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and "\\" not in s))
def test_key_escaping_round_trips(key: str) -> None:
    assert unescape_key(escape_key(key)) == key
