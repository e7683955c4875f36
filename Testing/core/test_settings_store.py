"""Settings: JSON with a schema version under DicomServers/, nothing lost, foreign keys untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.settings_store import KEY_REJECTED, KEY_SERVERS, SCHEMA_VERSION, SettingsStore


def foreign_lines(path: Path) -> list[str]:
    """Every line of the file outside our [DicomServers] section."""
    lines, ours = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            ours = line == "[DicomServers]"
        if not ours and line.strip():
            lines.append(line)
    return lines


def write_servers(path: Path, document: object) -> None:
    settings = IniSettings(path)
    settings.setValue(KEY_SERVERS, document if isinstance(document, str) else json.dumps(document))
    settings.sync()


def test_schema_version_and_foreign_keys_untouched(
    registry: ServerRegistry, ini_path: Path
) -> None:
    before = foreign_lines(ini_path)
    registry.add("A")
    registry.add("B")
    registry.remove("A")
    assert foreign_lines(ini_path) == before
    document = json.loads(IniSettings(ini_path).value(KEY_SERVERS))
    assert document["schema_version"] == SCHEMA_VERSION
    assert [s["name"] for s in document["servers"]] == ["B"]


def test_unknown_fields_survive_a_round_trip(ini_path: Path, secrets: MemorySecretStore) -> None:
    write_servers(
        ini_path, {"schema_version": 1, "servers": [{"name": "A", "future_field": {"x": 1}}]}
    )
    registry = ServerRegistry(SettingsStore(IniSettings(ini_path), secrets))
    registry.update("A", port=4242)
    stored = json.loads(IniSettings(ini_path).value(KEY_SERVERS))["servers"][0]
    assert stored["future_field"] == {"x": 1} and stored["port"] == 4242


def test_invalid_entry_reported_and_kept_aside(ini_path: Path, secrets: MemorySecretStore) -> None:
    bad = {"name": "Broken", "port": 99999}
    write_servers(
        ini_path,
        {"schema_version": 1, "servers": [{"name": "Good"}, bad, "junk", {"name": "good"}]},
    )
    store = SettingsStore(IniSettings(ini_path), secrets)
    registry = ServerRegistry(store)
    assert registry.names() == ["Good"]
    problems = registry.load_result.problems
    assert any("entry 2 (Broken)" in p and "Remote port (port)" in p for p in problems)
    assert any("entry 3" in p and "not a JSON object" in p for p in problems)
    assert any("entry 4 (good)" in p and "already used" in p for p in problems)
    registry.add("Other")  # a save keeps the rejected entries aside, never drops them
    rejected = json.loads(IniSettings(ini_path).value(KEY_REJECTED))
    assert bad in [r["entry"] for r in rejected]
    assert "junk" in [r["entry"] for r in rejected]


def test_corrupted_json_is_kept_aside(ini_path: Path, secrets: MemorySecretStore) -> None:
    write_servers(ini_path, '{"schema_version": 1, "servers": [{"name": "A"')
    registry = ServerRegistry(SettingsStore(IniSettings(ini_path), secrets))
    assert registry.names() == []
    assert "not valid JSON" in registry.load_result.problems[0]
    registry.add("Fresh")
    rejected = json.loads(IniSettings(ini_path).value(KEY_REJECTED))
    assert rejected[0]["entry"].startswith('{"schema_version": 1')


def test_two_defaults_in_file_keep_the_first(ini_path: Path, secrets: MemorySecretStore) -> None:
    write_servers(ini_path, [{"name": "A", "is_default": True}, {"name": "B", "is_default": True}])
    registry = ServerRegistry(SettingsStore(IniSettings(ini_path), secrets))
    assert [s.is_default for s in registry.servers] == [True, False]
    assert any("more than one default" in p for p in registry.load_result.problems)


def test_newer_schema_is_read_and_reported(ini_path: Path, secrets: MemorySecretStore) -> None:
    write_servers(ini_path, {"schema_version": 99, "servers": [{"name": "A", "new_thing": 1}]})
    registry = ServerRegistry(SettingsStore(IniSettings(ini_path), secrets))
    assert registry.names() == ["A"]
    assert "newer DicomServers" in registry.load_result.problems[0]


def test_crash_mid_save_leaves_old_file_whole(
    registry: ServerRegistry, ini_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.add("A")
    before = ini_path.read_bytes()

    def crash(*_args: object) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.add("B")
    monkeypatch.undo()
    assert ini_path.read_bytes() == before
    assert registry.names() == ["A"]  # the in-memory list did not change either
    assert not [p for p in ini_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_password_never_in_settings_file(registry: ServerRegistry, ini_path: Path) -> None:
    registry.add(
        "A", rest_enabled=True, rest_url="http://a", rest_user="u", rest_password="Top$ecret-42"
    )
    assert "Top$ecret-42" not in ini_path.read_text(encoding="utf-8")
    assert "rest_password" not in IniSettings(ini_path).value(KEY_SERVERS)


def test_changes_by_another_writer_are_merged(registry: ServerRegistry, ini_path: Path) -> None:
    """Like QSettings, a sync applies only our own changes on top of the file as it is now."""
    other = IniSettings(ini_path)
    registry.add("A")
    other.setValue("DICOM/RunListenerAtStart", "true")
    other.sync()
    registry.add("B")
    fresh = IniSettings(ini_path)
    assert fresh.value("DICOM/RunListenerAtStart") == "true"
    assert [s["name"] for s in json.loads(fresh.value(KEY_SERVERS))["servers"]] == ["A", "B"]
