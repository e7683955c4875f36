"""The last connection test of each server, remembered across sessions.

Kept in the application settings under ``DicomServers/ConnectionStatus`` as one JSON object
keyed by server ``id`` (so a rename keeps it): the outcome (``ok`` or ``failed``), when the test
ran (ISO 8601, local time), a one-line summary and the diagnosis. The list shows it as each
entry's status icon and tooltip. It is informative only: a broken or unknown value is ignored
(the server then shows as not tested), never an error.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .settings_store import SettingsLike

KEY_STATUS = "DicomServers/ConnectionStatus"
STATES = ("ok", "failed")


@dataclass(frozen=True)
class TestRecord:
    """The outcome of one server's last connection test."""

    __test__ = False  # not a pytest test class

    state: str
    tested_at: _dt.datetime
    summary: str = ""
    diagnosis: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return the JSON-ready form."""
        return {
            "state": self.state,
            "tested_at": self.tested_at.isoformat(timespec="seconds"),
            "summary": self.summary,
            "diagnosis": self.diagnosis,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TestRecord | None:
        """Return the record stored in ``data``, or None when it is not a valid one."""
        if not isinstance(data, dict) or data.get("state") not in STATES:
            return None
        try:
            tested_at = _dt.datetime.fromisoformat(str(data.get("tested_at", "")))
        except ValueError:
            return None
        return cls(
            data["state"], tested_at, str(data.get("summary", "")), str(data.get("diagnosis", ""))
        )


def _read(settings: SettingsLike) -> dict[str, Any]:
    raw = settings.value(KEY_STATUS)
    if isinstance(raw, (list, tuple)):  # QSettings splits unquoted commas
        raw = ", ".join(str(part) for part in raw)
    if not raw:
        return {}
    try:
        document = json.loads(str(raw))
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def load_records(settings: SettingsLike) -> dict[str, TestRecord]:
    """Return the stored records by server id (invalid entries are skipped)."""
    records = {}
    for server_id, data in _read(settings).items():
        record = TestRecord.from_dict(data)
        if record is not None:
            records[str(server_id)] = record
    return records


def _write(settings: SettingsLike, document: dict[str, Any]) -> None:
    settings.setValue(KEY_STATUS, json.dumps(document, ensure_ascii=True, separators=(",", ":")))
    settings.sync()


def save_record(settings: SettingsLike, server_id: str, record: TestRecord) -> None:
    """Remember ``record`` as the last test of ``server_id`` (other servers' records are kept)."""
    document = _read(settings)
    document[server_id] = record.to_dict()
    _write(settings, document)


def forget(settings: SettingsLike, server_ids: Iterable[str]) -> None:
    """Drop the records of servers that no longer exist."""
    document = _read(settings)
    dropped = [server_id for server_id in server_ids if server_id in document]
    for server_id in dropped:
        del document[server_id]
    if dropped:
        _write(settings, document)
