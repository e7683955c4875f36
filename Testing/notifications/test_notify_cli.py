"""``watch NAME [--json]`` as a user runs it: a subprocess, a real Orthanc, Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from notify_helpers import REPO, configured_script
from rig.ports import wait_for_port


class Cli:
    """The CLI on one settings file, secrets in a file (shared between runs)."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = tmp_path / "DicomServers.ini"
        self.env = dict(
            os.environ,
            PYTHONPATH=str(REPO / "DicomServers"),
            DICOMSERVERS_SECRET_STORE="file",
            DICOMSERVERS_SECRET_FILE=str(tmp_path / "secrets.json"),
            DICOMSERVERS_CACHE_DIR=str(tmp_path / "cache"),
        )

    def args(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "DicomServersLib", "--settings", str(self.settings), *args]

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(*args),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> Watch:
        process = subprocess.Popen(
            self.args(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(self.env, **(env or {})),
        )
        return Watch(process)


class Watch:
    """A running ``watch``: its output lines arrive in queues."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        for stream, lines in ((process.stdout, self.out), (process.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream, lines: queue.Queue[str]) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    def line(self, lines: queue.Queue[str], timeout: float = 20.0) -> str:
        return lines.get(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def test_watch_prints_plugin_events_as_json(tmp_path, orthanc_factory, sample_studies, free_port):
    cli = Cli(tmp_path)
    added = cli.run(
        "servers", "add", "--name", "lab", "notifications_enabled=true",
        "notification_ip=127.0.0.1", f"notification_port={free_port}",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    watch = cli.start(
        "watch", "lab", "--json", "--count", "1", "--timeout", "60",
        env={"DICOMSERVERS_NOTIFY_TOKEN": "tok"},
    )  # fmt: skip
    try:
        status = json.loads(watch.line(watch.err))
        assert status["status"] == "listener"
        assert f"http://127.0.0.1:{free_port}/notify" in status["message"]
        wait_for_port("127.0.0.1", free_port)
        url = f"http://127.0.0.1:{free_port}/notify"
        orthanc = orthanc_factory(lua_scripts=[configured_script(url, "tok", "lab")])
        instance = sample_studies.studies[0].instances[0]
        orthanc.upload([instance.path])
        event = json.loads(watch.line(watch.out))
        assert watch.process.wait(20) == 0
    finally:
        watch.stop()
    assert event["kind"] == "instance"
    assert event["sop_instance_uid"] == instance.sop_instance_uid
    assert event["server"] == "lab" and event["source"] == "listener"
    assert event["received_at_iso"].endswith("Z")


def test_watch_falls_back_to_polling_and_stops_on_ctrl_c(tmp_path, orthanc_factory, sample_studies):
    orthanc = orthanc_factory()
    cli = Cli(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        added = cli.run(
            "servers", "add", "--name", "lab", "notifications_enabled=true",
            f"notification_port={port}", "rest_enabled=true", f"rest_url={orthanc.http_url}",
            f"rest_user={orthanc.user}", "--password-stdin",
            stdin=orthanc.password + "\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        watch = cli.start("watch", "lab", "--interval", "0.2")
        try:
            status = watch.line(watch.err)
            assert "polling every 0.2 s" in status
            assert f"another program already uses port {port}" in status
            series = sample_studies.studies[2].series[0]
            orthanc.upload(series.paths[:1])
            line = watch.line(watch.out)
            assert "New image on lab: Żółć Łukasz (ID DS-P002)" in line
            watch.process.send_signal(signal.SIGINT)
            assert watch.process.wait(20) == 0  # a clean stop, not a traceback
            later = [watch.line(watch.err, 5)]
            while "stopped" not in later[-1]:
                later.append(watch.line(watch.err, 5))
            assert not any("Traceback" in line for line in later)
        finally:
            watch.stop()


def test_watch_refuses_unknown_server_and_bad_options(tmp_path):
    cli = Cli(tmp_path)
    unknown = cli.run("watch", "nope")
    assert unknown.returncode == 2
    assert "nope" in unknown.stderr
    cli.run("servers", "add", "--name", "lab")
    bad = cli.run("watch", "lab", "--count", "0")
    assert bad.returncode == 2
    assert "--count: must be at least 1" in bad.stderr
