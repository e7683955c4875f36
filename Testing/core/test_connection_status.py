"""The last connection test of each server, kept in the settings file (``connection_status``)."""

from __future__ import annotations

import datetime as dt
import json

from DicomServersLib.connection_status import (
    KEY_STATUS,
    TestRecord,
    forget,
    load_records,
    save_record,
)
from DicomServersLib.ini_settings import IniSettings


def test_records_round_trip_through_the_settings_file(tmp_path):
    path = tmp_path / "Slicer.ini"
    when = dt.datetime(2026, 3, 4, 10, 11, 12)
    save_record(IniSettings(path), "a1", TestRecord("ok", when, "Connection OK (C-ECHO)"))
    save_record(IniSettings(path), "b2", TestRecord("failed", when, "Failed", "Check the port"))
    records = load_records(IniSettings(path))
    assert records == {
        "a1": TestRecord("ok", when, "Connection OK (C-ECHO)"),
        "b2": TestRecord("failed", when, "Failed", "Check the port"),
    }
    forget(IniSettings(path), ["a1", "unknown"])
    assert list(load_records(IniSettings(path))) == ["b2"]


def test_broken_or_unknown_values_are_ignored(tmp_path):
    settings = IniSettings(tmp_path / "Slicer.ini")
    assert load_records(settings) == {}
    settings.setValue(KEY_STATUS, "{not json")
    assert load_records(settings) == {}
    settings.setValue(
        KEY_STATUS,
        json.dumps(
            {
                "x": {"state": "maybe", "tested_at": "2026-01-01T00:00:00"},
                "y": {"state": "ok", "tested_at": "yesterday"},
                "z": "ok",
                "w": {"state": "ok", "tested_at": "2026-01-01T00:00:00"},
            }
        ),
    )
    assert list(load_records(settings)) == ["w"]
