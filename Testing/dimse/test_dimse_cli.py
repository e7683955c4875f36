"""The network commands of the CLI: output, --json and exit codes (0 ok, 1 failure, 2 input)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from DicomServersLib import cli
from DicomServersLib.cli_network import ProgressBar
from DicomServersLib.progress import Progress
from rig.ports import free_port

REPO = Path(__file__).resolve().parents[2]


class Cli:
    """Runs the CLI in-process on its own settings file, secrets in memory."""

    def __init__(self, folder: Path) -> None:
        self.settings = folder / "DicomServers.ini"

    def __call__(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["--settings", str(self.settings), *args], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def add(self, name: str, **fields: object) -> None:
        pairs = [f"{key}={value}" for key, value in fields.items()]
        code, _, err = self("servers", "add", "--name", name, *pairs)
        assert code == 0, err


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pacs) -> Cli:
    monkeypatch.setenv("DICOMSERVERS_SECRET_STORE", "memory")
    runner = Cli(tmp_path)
    port = pacs.orthanc.dicom_port
    common = {"host": "127.0.0.1", "calling_ae_title": "DSTEST", "search_limit": 0}
    runner.add("PACS", called_ae_title="ORTHANC", port=port, **common)
    runner.add(
        "MOVE",
        called_ae_title="ORTHANC",
        port=port,
        retrieve_method="c-move",
        move_destination_ae_title="DSMOVE",
        storage_port=pacs.storage_port,
        **common,
    )
    runner.add("DOWN", called_ae_title="ORTHANC", port=free_port(), timeout_s=2, **common)
    return runner


def test_echo(run: Cli) -> None:
    code, out, err = run("echo", "PACS")
    assert code == 0 and out.startswith("echo  ok") and err == ""


def test_deep_echo_json(run: Cli) -> None:
    code, out, _ = run("echo", "MOVE", "--deep", "--json", "--listen-host", "127.0.0.1")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    assert [step["step"] for step in data["steps"]] == ["echo", "find", "move"]


def test_echo_of_a_server_that_is_down(run: Cli) -> None:
    code, out, err = run("echo", "DOWN", "--deep")
    assert code == 1
    assert "FAILED" in out and "skipped" in out
    assert err.startswith("error: Connection refused")


def test_unknown_server_is_invalid_input(run: Cli) -> None:
    code, _, err = run("echo", "NOPE")
    assert code == 2 and "NOPE" in err


def test_query(run: Cli) -> None:
    code, out, err = run("query", "PACS", "--all-dates", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["cut_off"] == ""
    assert len([s for s in data["studies"] if s["accession_number"].startswith("ACC")]) == 7
    code, out, err = run("query", "PACS", "--patient-name", "Müller*", "--all-dates")
    assert code == 0 and out.count("Müller^Jürgen") == 2 and "2 studies" in err
    code, out, err = run("query", "PACS", "--all-dates", "--limit", "2", "--via", "dimse")
    assert code == 0 and "cut off by this server's search limit (2)" in err


def test_query_series(run: Cli, pacs) -> None:
    study = pacs.samples.study("ACC0002")
    code, out, err = run("query", "PACS", "--series", study.study_instance_uid)
    assert code == 0 and "T1 sagittal" in out and "T2 axial" in out and "2 series" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "2024-13-01"],
        ["--last", "5x"],
        ["--from", "2024-01-01", "--last", "7d"],
        ["--limit", "-3"],
        ["--study-uid", "1.2.03"],
    ],
    ids=["bad-date", "bad-last", "both", "negative-limit", "bad-uid"],
)
def test_query_bad_input(run: Cli, args: list[str]) -> None:
    code, _, _ = run("query", "PACS", *args)
    assert code == 2


@pytest.mark.parametrize("server", ["PACS", "MOVE"])
def test_retrieve_and_rerun(run: Cli, pacs, tmp_path: Path, server: str) -> None:
    study = pacs.samples.study("ACC0001")
    dest = tmp_path / "out"
    args = ["retrieve", server, study.study_instance_uid, "--dest", str(dest)]
    code, out, err = run(*args, "--listen-host", "127.0.0.1")
    assert code == 0, err
    assert out.startswith("7 received, 0 already present, 0 failed")
    assert len(list(dest.rglob("*.dcm"))) == 7
    code, out, _ = run(*args, "--json", "--listen-host", "127.0.0.1")
    data = json.loads(out)
    assert code == 0 and (data["received"], data["skipped"], len(data["files"])) == (0, 7, 7)


def test_retrieve_one_series_and_bad_uid(run: Cli, pacs, tmp_path: Path) -> None:
    study = pacs.samples.study("ACC0002")
    series = study.series[0].series_instance_uid
    args = ["retrieve", "PACS", study.study_instance_uid, "--series", series]
    code, out, _ = run(*args, "--dest", str(tmp_path / "one"))
    assert code == 0 and out.startswith("3 received")
    code, _, err = run("retrieve", "PACS", "1.2.x", "--dest", str(tmp_path / "bad"))
    assert code == 2 and "study_uid" in err


def test_retrieve_from_a_server_that_is_down(run: Cli, tmp_path: Path) -> None:
    code, _, err = run("retrieve", "DOWN", "1.2.3", "--dest", str(tmp_path / "x"))
    assert code == 1 and "Connection refused" in err


def test_send(run: Cli, orthanc_factory, sample_studies, tmp_path: Path) -> None:
    target = orthanc_factory(dicomweb=False)
    run.add("TARGET", called_ae_title="ORTHANC", host="127.0.0.1", port=target.dicom_port)
    study = sample_studies.study("ACC0005")
    code, out, err = run("send", "TARGET", str(study.directory))
    assert code == 0 and out.count("ok ") == 4 and "4 of 4 file(s) stored" in err
    assert target.statistics()["CountInstances"] == 4
    junk = tmp_path / "junk.txt"
    junk.write_text("x")
    code, out, _ = run("send", "TARGET", str(junk), "--json")
    assert code == 1 and json.loads(out)["items"][0]["ok"] is False


def test_worklist(run: Cli) -> None:
    code, out, err = run("worklist", "PACS", "--station", "NOBODY", "--json")
    assert code == 0 and json.loads(out)["items"] == []
    code, _, err = run("worklist", "PACS", "--date", "2024-02-30")
    assert code == 2 and "--date" in err


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = ProgressBar(screen, width=10)
    bar(Progress(completed=5, remaining=5, bytes_done=2_000_000))
    bar.close()
    assert screen.getvalue().startswith("\r[#####.....] 5/10 images")
    quiet = io.StringIO()
    ProgressBar(quiet)(Progress(completed=1))
    assert quiet.getvalue() == ""


def test_exit_codes_as_a_user_sees_them(run: Cli) -> None:
    env = dict(
        os.environ, PYTHONPATH=str(REPO / "DicomServers"), DICOMSERVERS_SECRET_STORE="memory"
    )
    base = [sys.executable, "-m", "DicomServersLib", "--settings", str(run.settings)]
    codes = []
    for name in ("PACS", "DOWN", "NOPE"):
        done = subprocess.run(
            [*base, "echo", name], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        codes.append(done.returncode)
    assert codes == [0, 1, 2]
