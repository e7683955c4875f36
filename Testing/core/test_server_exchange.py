"""Export without secrets; import merges by name with a dry-run diff and never half-applies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.server_exchange import apply_import, export_file, plan_import, read_document
from DicomServersLib.validation import ValidationError


def fill(registry: ServerRegistry) -> None:
    registry.add(
        "Main",
        host="10.0.0.1",
        is_default=True,
        rest_enabled=True,
        rest_url="http://m",
        rest_password="pw-main",
    )
    registry.add("Backup", host="10.0.0.2")


def test_export_has_no_secrets_and_is_versioned(registry: ServerRegistry, tmp_path: Path) -> None:
    fill(registry)
    path = tmp_path / "servers.json"
    export_file(registry.servers, path)
    text = path.read_text()
    document = json.loads(text)
    assert document["format"] == "dicomservers-servers" and document["version"] == 1
    assert [s["name"] for s in document["servers"]] == ["Main", "Backup"]
    assert "pw-main" not in text and "rest_password" not in text and '"id"' not in text


def test_merge_by_name_plan_and_apply(registry: ServerRegistry, tmp_path: Path) -> None:
    fill(registry)
    main_id = registry.get("Main").id
    entries = [
        {"name": "main", "host": "10.9.9.9"},  # changed, matched ignoring case
        {"name": "Backup", "host": "10.0.0.2"},  # unchanged
        {"name": "New one", "host": "pacs.example.org", "port": 104},  # added
    ]
    plan = plan_import(registry, entries)
    assert plan.ok and plan.added == ["New one"] and plan.unchanged == ["Backup"]
    assert plan.changed == {"main": ["name", "host"]}
    assert registry.get("Main").host == "10.0.0.1"  # planning changes nothing
    apply_import(registry, plan)
    assert registry.names() == ["main", "Backup", "New one"]
    merged = registry.get("main")
    assert merged.host == "10.9.9.9" and merged.id == main_id and merged.rest_password == "pw-main"


def test_errors_per_entry_and_nothing_applied(registry: ServerRegistry) -> None:
    fill(registry)
    before = registry.servers
    plan = plan_import(
        registry,
        [
            {"name": "Good", "port": 104},
            {"name": "Bad", "port": 0},
            "junk",
            {"name": "X", "called_ae_title": "A" * 20},
        ],
    )
    assert not plan.ok
    assert any(e.startswith("entry 2 (Bad)") and "Remote port (port)" in e for e in plan.errors)
    assert any(e.startswith("entry 3") and "not a JSON object" in e for e in plan.errors)
    assert any(e.startswith("entry 4 (X)") and "AE Title" in e for e in plan.errors)
    with pytest.raises(ValidationError):
        apply_import(registry, plan)
    assert [s.to_dict() for s in registry.servers] == [s.to_dict() for s in before]


def test_replace_and_default(registry: ServerRegistry) -> None:
    fill(registry)
    plan = plan_import(registry, [{"name": "Only", "is_default": True}], replace=True)
    assert plan.removed == ["Main", "Backup"]
    apply_import(registry, plan)
    assert registry.names() == ["Only"] and registry.default_server().name == "Only"  # type: ignore[union-attr]


def test_imported_default_wins(registry: ServerRegistry) -> None:
    fill(registry)
    apply_import(registry, plan_import(registry, [{"name": "Other", "is_default": True}]))
    assert registry.default_server().name == "Other"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "other", "servers": []}', "format must be"),
        ('{"format": "dicomservers-servers", "version": 7, "servers": []}', "newer"),
        ('{"x": 1}', "'servers' list"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(content)
    with pytest.raises(ValidationError, match=words):
        read_document(path)


def test_cli_export_import(tmp_path: Path) -> None:
    a, b, exported = tmp_path / "a.ini", tmp_path / "b.ini", tmp_path / "servers.json"
    run(a, "servers", "add", "--name", "One", "host=10.0.0.1")
    run(a, "servers", "add", "--name", "Two", "--password-stdin", stdin="pw\n")
    assert run(a, "servers", "export", str(exported)).returncode == 0
    run(b, "servers", "add", "--name", "two", "host=10.0.0.7")
    dry = run(b, "servers", "import", str(exported), "--dry-run")
    assert (
        dry.returncode == 0
        and "added      One" in dry.stdout
        and "changed    Two: name, host" in dry.stdout
    )
    assert "New server" not in b.read_text() and "One" not in b.read_text()
    assert run(b, "servers", "import", str(exported)).returncode == 0
    assert [s["name"] for s in json.loads(run(b, "servers", "list", "--json").stdout)] == [
        "Two",
        "One",
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('{"servers": [{"name": "Z", "port": 0}]}')
    before = b.read_bytes()
    result = run(b, "servers", "import", str(bad))
    assert (
        result.returncode == 2
        and "entry 1 (Z)" in result.stderr
        and "nothing was imported" in result.stderr
    )
    assert b.read_bytes() == before
