"""The server list behaves as the DICOM Servers page says, and persists every accepted change."""

from __future__ import annotations

from pathlib import Path

import pytest
from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry, next_free_name, strip_suffix
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.settings_store import SettingsStore
from DicomServersLib.validation import ValidationError


def reopen(ini_path: Path, secrets: MemorySecretStore) -> ServerRegistry:
    return ServerRegistry(SettingsStore(IniSettings(ini_path), secrets))


def test_add_uses_defaults_and_numbered_names(registry: ServerRegistry) -> None:
    first = registry.add()
    assert (first.name, first.host, first.port, first.called_ae_title) == (
        "New server",
        "localhost",
        11112,
        "PACS",
    )
    assert (first.retrieve_method, first.load_mode, first.rest_enabled) == ("c-get", "auto", False)
    assert registry.add().name == "New server (2)"
    assert registry.add().name == "New server (3)"
    registry.remove("New server (2)")
    assert registry.add().name == "New server (2)"  # smallest free n >= 2


def test_duplicate_inserts_exact_copy_right_after(registry: ServerRegistry) -> None:
    registry.add("A", host="10.0.0.1", port=104, is_default=True, rest_password="pw")
    registry.add("B")
    copy = registry.duplicate("A")
    assert registry.names() == ["A", "A (2)", "B"]
    original = registry.get("A")
    assert copy.is_default is False and original.is_default is True
    assert copy.id != original.id
    same = {
        k: v
        for k, v in original.to_dict(include_secrets=True).items()
        if k not in ("name", "is_default", "id")
    }
    assert {k: v for k, v in copy.to_dict(include_secrets=True).items() if k in same} == same
    assert registry.duplicate("A (2)").name == "A (3)"  # base without its (k) suffix
    assert registry.names() == ["A", "A (2)", "A (3)", "B"]


def test_suffix_helpers() -> None:
    assert strip_suffix("PACS (12)") == "PACS"
    assert strip_suffix("PACS (x)") == "PACS (x)"
    assert next_free_name("PACS", ["pacs", "PACS (2)"], use_base=True) == "PACS (3)"


@pytest.mark.parametrize("bad", ["", "   ", "b", " B "])
def test_rename_trimmed_nonempty_unique_ignoring_case(registry: ServerRegistry, bad: str) -> None:
    registry.add("A")
    registry.add("B")
    with pytest.raises(ValidationError) as err:
        registry.rename("A", bad)
    assert "name" in err.value.errors[0][0]
    assert registry.names() == ["A", "B"]


def test_rename_trims(registry: ServerRegistry) -> None:
    registry.add("A")
    assert registry.rename("a", "  Main PACS  ").name == "Main PACS"


def test_move_orders_the_list(registry: ServerRegistry) -> None:
    for name in "ABC":
        registry.add(name)
    registry.move_up("C")
    assert registry.names() == ["A", "C", "B"]
    registry.move_down("A")
    assert registry.names() == ["C", "A", "B"]
    registry.move_up("C")  # already first: nothing happens
    registry.move_down("B")  # already last
    assert registry.names() == ["C", "A", "B"]
    registry.move("B", 0)
    assert registry.names() == ["B", "C", "A"]
    with pytest.raises(ValidationError, match="index"):
        registry.move("B", 3)


def test_default_is_unique_and_removal_leaves_none(registry: ServerRegistry) -> None:
    registry.add("A")
    registry.add("B")
    assert registry.preselected().name == "A"  # type: ignore[union-attr]  # no default: the first
    registry.set_default("B")
    assert registry.default_server().name == "B"  # type: ignore[union-attr]
    registry.update("A", is_default=True)
    assert [s.name for s in registry.servers if s.is_default] == ["A"]
    registry.remove("A")
    assert registry.default_server() is None
    assert registry.preselected().name == "B"  # type: ignore[union-attr]
    registry.set_default("B")
    registry.set_default(None)
    assert registry.default_server() is None


def test_rejected_change_leaves_list_and_settings_untouched(
    registry: ServerRegistry, ini_path: Path, secrets: MemorySecretStore
) -> None:
    registry.add("A")
    before = ini_path.read_bytes()
    with pytest.raises(ValidationError) as err:
        registry.update_text(
            "A", {"port": "70000", "called_ae_title": "X" * 17, "host": "ok.example"}
        )
    fields = sorted(f for f, _ in err.value.errors)
    assert fields == ["called_ae_title", "port"]
    assert ini_path.read_bytes() == before
    assert registry.get("A").host == "localhost"  # the valid part was not applied either
    with pytest.raises(ValidationError):
        registry.update("A", rest_enabled=True)  # REST on without URL
    assert reopen(ini_path, secrets).get("A").rest_enabled is False


def test_unknown_server_and_field(registry: ServerRegistry) -> None:
    with pytest.raises(KeyError, match="no server named"):
        registry.get("ghost")
    registry.add("A")
    with pytest.raises(ValidationError, match="unknown field"):
        registry.update("A", colour="red")


def test_every_change_persists(
    registry: ServerRegistry, ini_path: Path, secrets: MemorySecretStore
) -> None:
    registry.add("A", host="pacs.example.org", port=104)
    registry.add("B", rest_enabled=True, rest_url="http://b:8042", rest_password="s3cret")
    registry.duplicate("A")
    registry.move("B", 0)
    registry.set_default("A (2)")
    again = reopen(ini_path, secrets)
    assert again.names() == ["B", "A", "A (2)"]
    assert again.get("A (2)").is_default
    assert again.get("B").rest_password == "s3cret"
    assert "s3cret" not in ini_path.read_text(encoding="utf-8")


def test_toggle_off_keeps_dependent_values(
    registry: ServerRegistry, ini_path: Path, secrets: MemorySecretStore
) -> None:
    registry.add("A", rest_enabled=True, rest_url="http://pacs:8042", rest_limit=50)
    registry.update("A", rest_enabled=False, date_filter="none")
    again = reopen(ini_path, secrets).get("A")
    assert (again.rest_enabled, again.rest_url, again.rest_limit) == (False, "http://pacs:8042", 50)


def test_remove_forgets_the_secret(registry: ServerRegistry, secrets: MemorySecretStore) -> None:
    server = registry.add("A", rest_password="pw")
    assert secrets.values
    registry.remove("A")
    assert not any(k.startswith(server.id) for k in secrets.values)


def test_listeners_called_after_accepted_changes_only(registry: ServerRegistry) -> None:
    calls: list[int] = []
    registry.add_listener(lambda: calls.append(len(registry)))
    registry.add("A")
    with pytest.raises(ValidationError):
        registry.add("a")
    assert calls == [1]
