"""Driving the study browser as a user would (offscreen, PySide6 harness).

Reads Qt properties as attributes (``label.text``), like the widget code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ui import ui_driver
from ui.ui_driver import click, process_events, wait_until

from __feature__ import true_property  # noqa: F401  # isort: skip
from DicomServersUI.study_browser import BrowserHost

__all__ = [
    "LOG_HTTP_LUA",
    "RecordingHost",
    "dimse_fields",
    "rest_fields",
    "click",
    "dcm_files",
    "http_requests",
    "process_events",
    "search_done",
    "transfer_finished",
    "wait_until",
]


def search_done(browser: Any, timeout: float = 30.0) -> None:
    """Wait until no search or series listing is under way."""
    wait_until(lambda: not browser._jobs, timeout, "the search to finish")


def transfer_finished(browser: Any, request_id: int, timeout: float = 60.0) -> Any:
    """Wait until the transfer list shows ``request_id`` finished; return its status."""

    def finished() -> Any:
        for status in browser.transferModel.items:
            if status.request_id == request_id and status.finished:
                return status
        return None

    return wait_until(finished, timeout, f"transfer {request_id} to finish")


def dcm_files(folder: Path) -> list[Path]:
    """Every ``.dcm`` file under ``folder`` (temporary files excluded)."""
    return sorted(p for p in Path(folder).rglob("*.dcm") if not p.name.startswith(".part-"))


def http_requests(orthanc: Any) -> list[str]:
    """The REST requests Orthanc received (logged by the test Lua callback)."""
    marker = "DicomServersTest HTTP "
    return [
        line.split(marker, 1)[1].strip()
        for line in orthanc.log_text(tail=None).splitlines()
        if marker in line
    ]


def settle(milliseconds: int = 600) -> None:
    """Let timers run (the selection delay, the poll) for ``milliseconds``."""
    ui_driver.process_events(milliseconds)


#: Orthanc Lua callback logging every REST request, so a test can tell what Orthanc was asked.
LOG_HTTP_LUA = """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  print("DicomServersTest HTTP " .. method .. " " .. uri)
  return true
end
"""


class RecordingHost(BrowserHost):
    """A host that loads too (like Slicer's) and records what it was asked to import and load."""

    canLoad = True

    def __init__(self, destination: Path, inPlace: bool = False) -> None:
        super().__init__(destination)
        self.inPlace = inPlace


def rest_fields(orthanc: Any, **changes: Any) -> dict[str, Any]:
    """Server fields for a real Orthanc over its REST API (DIMSE fields set too)."""
    fields = {
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "called_ae_title": orthanc.aet,
        "rest_enabled": True,
        "rest_flavor": "orthanc",
        "rest_url": orthanc.http_url,
        "rest_user": orthanc.user,
        "rest_password": orthanc.password,
        "timeout_s": 10.0,
    }
    fields.update(changes)
    return fields


def dimse_fields(orthanc: Any, **changes: Any) -> dict[str, Any]:
    """Server fields for a real Orthanc over DIMSE."""
    fields = {
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "called_ae_title": orthanc.aet,
        "timeout_s": 10.0,
    }
    fields.update(changes)
    return fields
