"""Fixtures of the study-browser tests: the PySide6 harness, a server list, a recording host.

The browser runs offscreen on the harness ``qt`` module (:mod:`DicomServersUI.pyside_qt`); its
peers are real (Orthanc, DCMTK ``storescp``) and started by the rig's fixtures. The cache folder
(REST study lists, folder indexes) is a temporary folder of each test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from browser_driver import RecordingHost
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.transfer_queue import TransferQueue
from DicomServersUI.study_browser import StudyBrowser
from ui import ui_driver


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


@pytest.fixture(autouse=True)
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """REST caches and folder indexes of this test only."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DICOMSERVERS_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def registry() -> ServerRegistry:
    """An in-memory server list."""
    return ServerRegistry()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """The destination folder of retrieves."""
    folder = tmp_path / "retrieved"
    folder.mkdir()
    return folder


@pytest.fixture
def make_browser(
    qapp: Any, registry: ServerRegistry, dest: Path
) -> Iterator[Callable[..., StudyBrowser]]:
    """Return a function building a shown browser: ``make_browser(inPlace=False, **kwargs)``."""
    browsers: list[StudyBrowser] = []

    def make(inPlace: bool = False, **kwargs: Any) -> StudyBrowser:
        kwargs.setdefault("host", RecordingHost(dest, inPlace=inPlace))
        kwargs.setdefault("transferQueue", TransferQueue())
        browser = StudyBrowser(kwargs.pop("registry", registry), **kwargs)
        browser.widget.resize(900, 900)
        browser.widget.show()
        ui_driver.process_events()
        browsers.append(browser)
        return browser

    yield make
    for browser in browsers:
        browser.cleanup()
        browser.queue.close()
        browser.widget.close()
        browser.widget.deleteLater()
    ui_driver.process_events()
