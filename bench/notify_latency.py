"""Benchmark: how long from "Orthanc stored an instance" to "the event is in our queue" (issue 7).

A real Orthanc 1.10.1 on loopback runs the shipped Lua plugin, posting to our listener; each
sample instance is uploaded alone (``POST /instances``), and the time from just before the
upload to the event's arrival in the :class:`EventQueue` is one sample. The same is measured in
polling mode (port taken, Orthanc ``/changes`` polled every ``--poll-interval`` seconds), and
for the series/study events (which Orthanc raises ``StableAge`` seconds after the last instance).

The UI drains the queue from a QTimer: add half its period on average (125 ms for 250 ms) to
get event-to-UI latency.

Run: ``.venv/bin/python bench/notify_latency.py [--instances 30] [--poll-interval 1.0]``.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]

from DicomServersLib.notifications.event_queue import EventQueue  # noqa: E402
from DicomServersLib.notifications.events import NotificationEvent  # noqa: E402
from DicomServersLib.notifications.service import NotificationService  # noqa: E402
from DicomServersLib.server import DicomServer  # noqa: E402
from rig.orthanc import OrthancOptions, OrthancServer  # noqa: E402
from rig.ports import free_port  # noqa: E402
from rig.studies import write_sample_studies  # noqa: E402

LUA = REPO / "Resources" / "PACS" / "orthanc" / "dicomservers-notify.lua"


def configured(url: str) -> str:
    """The shipped plugin with NOTIFY_URL set."""
    lines = LUA.read_text(encoding="utf-8").splitlines()
    lines[0] = f'local NOTIFY_URL = "{url}"'
    return "\n".join(lines) + "\n"


def wait_event(queue: EventQueue, sop_uid: str, timeout: float) -> NotificationEvent | None:
    """Wait for the instance event of ``sop_uid`` (other events are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = queue.get(timeout=deadline - time.monotonic())
        if event is not None and event.kind == "instance" and event.sop_instance_uid == sop_uid:
            return event
    return None


def figures(label: str, samples_ms: list[float], missed: int) -> None:
    """Print median, 95th percentile and maximum."""
    if not samples_ms:
        print(f"{label}: no event arrived ({missed} missed)")
        return
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(
        f"{label}: n={len(ordered)} median {statistics.median(ordered):.1f} ms,"
        f" p95 {p95:.1f} ms, min {ordered[0]:.1f} ms, max {ordered[-1]:.1f} ms"
        + (f", {missed} missed" if missed else "")
    )


def measure(
    orthanc: OrthancServer,
    service: NotificationService,
    paths: list[tuple[Path, str]],
    jitter_s: float = 0.0,
) -> tuple[list[float], int]:
    """Upload each file alone; return latencies (ms) and the number of events that never came.

    ``jitter_s``: wait a random time up to this before each upload, so uploads do not fall in
    step with the polling period.
    """
    samples, missed = [], 0
    rng = random.Random(7)
    for path, sop_uid in paths:
        time.sleep(rng.uniform(0.0, jitter_s))
        started = time.time()
        orthanc.upload([path])
        event = wait_event(service.queue, sop_uid, timeout=15)
        if event is None:
            missed += 1
        else:
            samples.append((event.received_at - started) * 1000.0)
    return samples, missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run (smaller data, fewer runs)"
    )
    parser.add_argument("--instances", type=int, default=30, help="instances per mode")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds (polling mode)")
    parser.add_argument("--stable-age", type=int, default=2, help="Orthanc StableAge (s)")
    args = parser.parse_args()
    if args.quick:
        args.instances = 10

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = write_sample_studies(root / "samples")
        files = [(i.path, i.sop_instance_uid) for i in samples.instances][: args.instances]

        # Listener mode: the Lua plugin posts to us.
        port = free_port()
        service = NotificationService(queue=EventQueue(dedup_window_s=0), watchdog_interval_s=0)
        server = DicomServer(name="bench", notifications_enabled=True, notification_port=port)
        status = service.start(server)
        options = OrthancOptions(lua_scripts=[configured(status.listener_url)])
        options.stable_age = args.stable_age
        with OrthancServer(root / "orthanc-listener", options) as orthanc:
            latencies, missed = measure(orthanc, service, files)
            figures("listener (Lua plugin), store -> queue", latencies, missed)
            # Study event: StableAge after the last instance.
            started = time.time()
            study = samples.studies[-1]
            orthanc.upload(study.paths)
            while True:
                event = service.queue.get(timeout=args.stable_age + 15)
                if event is None or (
                    event.kind == "study" and event.study_uid == study.study_instance_uid
                ):
                    break
            if event is not None:
                print(
                    f"listener, last instance stored -> study event: "
                    f"{(event.received_at - started) * 1000:.0f} ms (StableAge {args.stable_age} s)"
                )
        service.stop_all()

        # Polling mode: the port is taken.
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            with OrthancServer(root / "orthanc-polling", OrthancOptions()) as orthanc:
                service = NotificationService(
                    queue=EventQueue(dedup_window_s=0), poll_interval_s=args.poll_interval
                )
                server = DicomServer(
                    name="bench",
                    notifications_enabled=True,
                    notification_port=squatter.getsockname()[1],
                    rest_enabled=True,
                    rest_url=orthanc.http_url,
                    rest_user=orthanc.user,
                    rest_password=orthanc.password,
                )
                print(service.start(server).describe())
                worker = service.worker_for("bench")
                while worker is not None and worker.last_outcome is None:
                    time.sleep(0.05)
                count = min(len(files), 10)
                latencies, missed = measure(
                    orthanc, service, files[:count], jitter_s=args.poll_interval
                )
                figures(
                    f"polling every {args.poll_interval:g} s, store -> queue", latencies, missed
                )
                service.stop_all()
    print("event-to-UI: add the UI's drain period / 2 on average (QTimer 250 ms: +125 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
