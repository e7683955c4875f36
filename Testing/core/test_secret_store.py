"""Secret stores: memory, user-only file, keyring selection by DICOMSERVERS_SECRET_STORE."""

from __future__ import annotations

from pathlib import Path

import pytest
from DicomServersLib.secret_store import FileSecretStore, MemorySecretStore, open_secret_store


def test_memory_store() -> None:
    store = MemorySecretStore(values={})
    store.set("k", "v")
    assert store.get("k") == "v"
    store.set("k", "")
    assert store.get("k") is None
    assert store.persistent is False


def test_file_store_is_user_only_and_atomic(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "sub" / "cred.json")
    store.set("a/rest_password", "one")
    store.set("b/rest_password", "two")
    store.delete("a/rest_password")
    assert store.get("a/rest_password") is None and store.get("b/rest_password") == "two"
    assert (tmp_path / "sub" / "cred.json").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cred.json"]


def test_selection_by_environment(tmp_path: Path) -> None:
    assert open_secret_store({"DICOMSERVERS_SECRET_STORE": "memory"}).store.kind == "memory"
    opened = open_secret_store(
        {"DICOMSERVERS_SECRET_STORE": "file", "DICOMSERVERS_SECRET_FILE": str(tmp_path / "c.json")}
    )
    assert opened.store.kind == "file" and opened.store.location == str(tmp_path / "c.json")
    with pytest.raises(ValueError, match="keyring, file or memory"):
        open_secret_store({"DICOMSERVERS_SECRET_STORE": "vault"})


def test_default_falls_back_to_memory_with_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import DicomServersLib.secret_store as module

    monkeypatch.setattr(module, "keyring_usable", lambda: False)
    opened = open_secret_store({})
    assert opened.store.kind == "memory"
    assert "only remembered for this session" in opened.warning
    with pytest.raises(ValueError, match="no usable OS keyring"):
        open_secret_store({"DICOMSERVERS_SECRET_STORE": "keyring"})
