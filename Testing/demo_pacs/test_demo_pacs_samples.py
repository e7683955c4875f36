"""The demo samples, their first-start installation, the server record, and the command line
``python -m DicomServersLib.demo_pacs``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from demo_pacs_helpers import REFERENCE
from DicomServersLib.demo_pacs import DemoFolder, DemoPacs, install_samples
from DicomServersLib.demo_pacs.samples import SAMPLE_STUDIES, write_samples
from DicomServersLib.validation import check_server
from rig.dcmtk import echoscu

REPO = Path(__file__).resolve().parents[2]


def test_samples_are_small_realistic_and_deterministic(tmp_path: Path) -> None:
    first = write_samples(tmp_path / "a", tmp_path / "a-wl", REFERENCE)
    second = write_samples(tmp_path / "b", reference_date=REFERENCE)
    assert len(first) == 64 == sum(s.slices for st in SAMPLE_STUDIES for s in st.series)
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    assert sum(p.stat().st_size for p in first) < 1_000_000
    ds = pydicom.dcmread(first[0])
    assert (ds.Rows, ds.Columns, ds.Modality) == (64, 64, "CT")
    assert len(ds.PixelData) == 64 * 64 * 2
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.ImageOrientationPatient == [1, 0, 0, 0, 1, 0]
    assert sorted(p.name for p in (tmp_path / "a-wl").iterdir()) == [
        f"DEMO200{i}.wl" for i in range(1, 5)
    ]


def test_samples_are_installed_once_and_never_into_a_used_folder(tmp_path: Path) -> None:
    folder = DemoFolder.of(tmp_path / "demo")
    assert install_samples(folder, REFERENCE) is True
    assert json.loads(folder.marker.read_text())["reference_date"] == "2024-06-14"
    assert len(list(folder.storage.rglob("*.dcm"))) == 64
    assert not (folder.root / ".samples-staging").exists()
    assert install_samples(folder, REFERENCE) is False

    used = DemoFolder.of(tmp_path / "used")
    (used.storage / "x").mkdir(parents=True)
    (used.storage / "x" / "mine.dcm").write_bytes(b"not ours")
    assert install_samples(used, REFERENCE) is False
    assert [p.name for p in used.storage.rglob("*") if p.is_file()] == ["mine.dcm"]


def test_demo_server_record_is_a_valid_default_server(tmp_path: Path) -> None:
    with DemoPacs(tmp_path / "demo", reference_date=REFERENCE) as pacs:
        record = pacs.demo_server_record()
        assert echoscu(record.port, record.called_ae_title).ok
    assert check_server(record) == []
    assert (record.name, record.is_default, record.host) == ("Demo PACS", True, "127.0.0.1")
    assert record.port == pacs.port
    assert record.storage_folder == str(tmp_path / "demo" / "storage")
    assert record.retrieve_method == "c-get"
    assert record.worklist_ae_title == "DEMOPACS"
    assert pacs.demo_server_record(name="Other").name == "Other"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"ae_title": "A" * 17}, "AE title"),
        ({"ae_title": "BAD\\AE"}, "AE title"),
        ({"port": 70000}, "port"),
        ({"move_destinations": {"X": ("127.0.0.1", 0)}}, "move destination X"),
        ({"move_destinations": {"": ("127.0.0.1", 104)}}, "move destination AE title"),
    ],
)
def test_invalid_settings_are_refused_with_the_field_and_rule(
    tmp_path: Path, kwargs: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        DemoPacs(tmp_path, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "storage").exists()


def test_a_port_in_use_is_an_error_when_starting(tmp_path: Path) -> None:
    with DemoPacs(tmp_path / "a", samples=False) as first:
        second = DemoPacs(tmp_path / "b", samples=False, port=first.port)
        with pytest.raises(OSError):
            second.start()
        assert not second.running
        second.stop()  # harmless when not running
        assert echoscu(first.port, "DEMOPACS").ok


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "DicomServersLib.demo_pacs", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "DicomServers"), env.get("PYTHONPATH", "")])
    return env


def test_the_command_line_runs_in_the_foreground_and_logs_associations(tmp_path: Path) -> None:
    log = tmp_path / "pacs.log"
    args = _cli("--port", "0", "--aet", "CLIPACS", "--folder", str(tmp_path / "pacs"), "--json")
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [*args, "--reference-date", "2024-06-14"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_env(),
        )
        try:
            assert process.stdout is not None
            record = json.loads(process.stdout.readline())
            assert record["called_ae_title"] == "CLIPACS" and record["name"] == "Demo PACS"
            assert echoscu(record["port"], "CLIPACS").ok
            deadline = time.monotonic() + 10
            while "released" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    lines = [line for line in log.read_text().splitlines() if "DICOMSERVERS@127.0.0.1" in line]
    assert len(lines) == 1 and "released" in lines[0] and "C-ECHO x1" in lines[0]
    assert "sample studies written" in log.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--move", "NOPORT"], "AE=HOST:PORT"),
        (["--aet", "WAY-TOO-LONG-AE-TITLE"], "AE title"),
        (["--reference-date", "14.06.2024"], "YYYY-MM-DD"),
    ],
)
def test_the_command_line_refuses_bad_options(
    tmp_path: Path, args: list[str], message: str
) -> None:
    run = subprocess.run(
        _cli("--folder", str(tmp_path), "--port", "0", *args),
        capture_output=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert message in run.stderr.decode()
    assert not (tmp_path / "storage").exists()
