"""Fixtures of the panel tests: the PySide6 harness, a real settings file, the panel on screen.

The settings are a real :class:`~DicomServersLib.settings_store.SettingsStore` on an
:class:`~DicomServersLib.ini_settings.IniSettings` file (Slicer.ini's format) with a memory
secret store of the test's own; tests assert on what a fresh store reads back from that file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import ui_driver
from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.settings_store import SettingsStore
from DicomServersUI.servers_panel import DicomServersPanel

PANEL_WIDTH = 450


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of this folder drives Qt widgets: mark it ``gui``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session")
def qapp() -> Any:
    """The QApplication of the test session (offscreen)."""
    return ui_driver.app()


@pytest.fixture
def secrets() -> MemorySecretStore:
    """A secret store of this test only ("only remembered for this session")."""
    return MemorySecretStore(values={})


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    """The settings file of this test."""
    return tmp_path / "Slicer.ini"


@pytest.fixture
def registry(settings_path: Path, secrets: MemorySecretStore) -> ServerRegistry:
    """The server list, saved in ``settings_path``."""
    return ServerRegistry(SettingsStore(IniSettings(settings_path), secrets))


@pytest.fixture
def stored(settings_path: Path, secrets: MemorySecretStore) -> Callable[[], ServerRegistry]:
    """Return a function that reads the stored list back with a fresh store (as a restart)."""

    def read() -> ServerRegistry:
        return ServerRegistry(SettingsStore(IniSettings(settings_path), secrets))

    return read


@pytest.fixture
def make_panel(qapp: Any, registry: ServerRegistry) -> Iterator[Callable[..., DicomServersPanel]]:
    """Return a function that builds the panel on ``registry`` and shows it, 450 px wide."""
    panels: list[DicomServersPanel] = []

    def make(**kwargs: Any) -> DicomServersPanel:
        panel = DicomServersPanel(kwargs.pop("registry", registry), **kwargs)
        panel.widget.resize(PANEL_WIDTH, 1600)
        panel.widget.show()
        ui_driver.process_events()
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.cleanup()
        panel.widget.close()
        panel.widget.deleteLater()
    ui_driver.process_events()


@pytest.fixture
def three_servers(registry: ServerRegistry) -> ServerRegistry:
    """Three servers, the second one the default."""
    registry.add("Hospital PACS", host="10.0.0.5", port=104, called_ae_title="HOSPITAL")
    registry.add(
        "Research Orthanc", is_default=True, rest_enabled=True, rest_url="http://127.0.0.1:8042"
    )
    registry.add("Teaching files", host="teaching.example.org")
    return registry
