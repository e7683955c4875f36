"""Fixtures for the core tests: a registry on a real INI file and a memory secret store."""

from __future__ import annotations

from pathlib import Path

import pytest
from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.settings_store import SettingsStore


@pytest.fixture
def secrets() -> MemorySecretStore:
    """A secret store of this test only."""
    return MemorySecretStore(values={})


@pytest.fixture
def ini_path(tmp_path: Path) -> Path:
    """An INI file in Slicer's format that already holds Slicer's and CTK's own keys."""
    path = tmp_path / "Slicer.ini"
    path.write_text(
        "[General]\n"
        "ServerNodeCount=1\n"
        "ServerNodes\\0=@Variant(\\0\\0\\0\\b\\0\\0\\0\\x1\\0\\0\\0\\b\\0N\\0\\x61\\0m\\0\\x65"
        "\\0\\0\\0\\n\\0\\0\\0\\0\\b\\0P\\0\\x41\\0\\x43\\0S)\n"
        "CallingAETitle=CTKSTORE\n"
        "StoragePort=11112\n"
        "\n"
        "[DICOM]\n"
        "RunListenerAtStart=false\n"
        "ServerNodeCount=1\n"
        'ServerNodes\\0="{\\n    \\"Name\\": \\"ExampleHost\\",\\n    \\"Port\\": \\"11112\\"\\n}\\n"\n'
        "\n"
        "[MainWindow]\n"
        "geometry=@ByteArray(\\x1\\xd9\\xd0\\xcb\\0\\x3)\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def store(ini_path: Path, secrets: MemorySecretStore) -> SettingsStore:
    """A settings store on the INI file."""
    return SettingsStore(IniSettings(ini_path), secrets)


@pytest.fixture
def registry(store: SettingsStore) -> ServerRegistry:
    """An empty registry persisted to the INI file."""
    return ServerRegistry(store)
