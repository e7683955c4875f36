"""Our list in Slicer's two DICOM browser tables, in CTK's reader formats (read back with Qt)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import run
from DicomServersLib.ini_settings import IniSettings
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.server import DicomServer
from DicomServersLib.slicer_tables import build_tables, listener_conflicts, write_tables
from PySide6.QtCore import QSettings


def servers() -> list[DicomServer]:
    return [
        DicomServer(
            name="Research",
            called_ae_title="RESEARCH",
            host="10.0.0.9",
            port=104,
            retrieve_method="c-move",
            move_destination_ae_title="SLICERMOVE",
            storage_port=11120,
            timeout_s=12.4,
        ),
        DicomServer(
            name="Clinical PACS",
            called_ae_title="CLIN",
            host="pacs.example.org",
            port=11112,
            is_default=True,
            calling_ae_title="MYSLICER",
            storage_port=11121,
        ),
        DicomServer(name="Zürich", called_ae_title="ZH", host="::1", port=4242),
    ]


def test_visual_browser_json_as_ctk_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "Slicer.ini"
    write_tables(IniSettings(path), servers())
    qt = QSettings(str(path), QSettings.Format.IniFormat)
    assert int(qt.value("DICOM/ServerNodeCount")) == 3
    nodes = [json.loads(str(qt.value(f"DICOM/ServerNodes/{i}"))) for i in range(3)]
    assert [n["Name"] for n in nodes] == ["Research", "Clinical PACS", "Zürich"]  # our order
    first = nodes[0]
    assert (
        first["Called AETitle"] == "RESEARCH"
        and first["Address"] == "10.0.0.9"
        and first["Port"] == "104"
    )
    assert first["Retrieve Protocol"] == "CMOVE" and nodes[1]["Retrieve Protocol"] == "CGET"
    assert first["Timeout"] == 12 and first["Calling AETitle"] == "SLICER"
    assert all(n["QueryRetrieveCheckState"] == 2 for n in nodes)
    expected = {
        "Name",
        "Verification",
        "QueryRetrieveCheckState",
        "StorageCheckState",
        "TrustedCheckState",
        "Calling AETitle",
        "Called AETitle",
        "Address",
        "Port",
        "Timeout",
        "Retrieve Protocol",
        "Retrieve Proxy",
    }
    assert set(first) == expected


def test_legacy_table_as_qvariantmaps(tmp_path: Path) -> None:
    path = tmp_path / "Slicer.ini"
    write_tables(IniSettings(path), servers())
    qt = QSettings(str(path), QSettings.Format.IniFormat)
    assert int(qt.value("ServerNodeCount")) == 3
    rows = [qt.value(f"ServerNodes/{i}") for i in range(3)]
    assert all(isinstance(r, dict) for r in rows)
    assert [r["Name"] for r in rows] == ["Research", "Clinical PACS", "Zürich"]
    assert [r["CheckState"] for r in rows] == [0, 2, 0]  # the default server is the checked one
    assert [r["CGET"] for r in rows] == [0, 2, 2]
    assert rows[1] == {
        "Name": "Clinical PACS",
        "CheckState": 2,
        "AETitle": "CLIN",
        "Address": "pacs.example.org",
        "Port": "11112",
        "CGET": 2,
    }
    assert qt.value("CallingAETitle") == "MYSLICER"
    assert qt.value("StoragePort") == "11121" and qt.value("DICOM/StoragePort") == "11121"


def test_rows_beyond_new_count_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "Slicer.ini"
    qt = QSettings(str(path), QSettings.Format.IniFormat)
    for i in range(5):
        qt.setValue(f"ServerNodes/{i}", {"Name": f"old{i}"})
        qt.setValue(f"DICOM/ServerNodes/{i}", "{}")
    qt.setValue("DICOM/RunListenerAtStart", "true")
    qt.setValue("MainWindow/geometry", b"\x01\xd9\xd0")
    qt.sync()
    del qt
    write_tables(IniSettings(path), servers()[:1])
    qt = QSettings(str(path), QSettings.Format.IniFormat)
    assert not qt.contains("ServerNodes/3") and not qt.contains("DICOM/ServerNodes/4")
    assert qt.value("DICOM/RunListenerAtStart") == "true"
    assert bytes(qt.value("MainWindow/geometry")) == b"\x01\xd9\xd0"


def test_empty_list() -> None:
    tables = build_tables([])
    assert tables.values == {"DICOM/ServerNodeCount": 0, "ServerNodeCount": 0}


def test_listener_conflicts(tmp_path: Path) -> None:
    settings = IniSettings(tmp_path / "s.ini")
    settings.setValue("DICOM/RunListenerAtStart", "true")
    settings.setValue("StoragePort", "11120")
    assert listener_conflicts(settings, servers()) == [
        "port 11120 is used by Slicer's DICOM listener (storescp) and our C-MOVE listener (Research):"
        " only one can listen at a time; change the storage port of one of them"
    ]
    settings.setValue("StoragePort", "11112")
    assert listener_conflicts(settings, servers()) == []


def test_cli_sync_slicer(ini_path: Path, tmp_path: Path) -> None:
    registry_file = tmp_path / "ours.ini"
    run(registry_file, "servers", "add", "--name", "A", "called_ae_title=AAA")
    run(registry_file, "servers", "add", "--name", "B", "retrieve_method=c-move")
    run(registry_file, "servers", "move", "B", "--up")
    result = run(registry_file, "servers", "sync-slicer", "--slicer-settings", str(ini_path))
    assert result.returncode == 0, result.stderr
    qt = QSettings(str(ini_path), QSettings.Format.IniFormat)
    assert [qt.value(f"ServerNodes/{i}")["Name"] for i in range(2)] == ["B", "A"]
    assert qt.value("DICOM/RunListenerAtStart") == "false"  # Slicer's own keys kept
    assert ServerRegistry().names() == []  # nothing global was touched
