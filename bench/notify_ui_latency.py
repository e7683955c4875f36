"""Benchmark: event-to-UI latency of notifications (issue 7): Orthanc stores, the user sees it.

A real Orthanc 1.10.1 on loopback runs the shipped Lua plugin, posting to the listener of a
:class:`DicomServersUI.notifications_controller.NotificationsController` driving a study
browser (offscreen, PySide6 harness, the Qt event loop running as in the application). Each
sample is a new one-image study uploaded alone (``POST /instances``); measured from just before
the upload to

- **message**: the controller's ``showMessage`` is called (the status bar message), i.e. the
  listener's event drained by the 250 ms ``QTimer`` and planned;
- **row**: the study is a row of the browser, i.e. the REST cache refreshed incrementally on the
  hook thread, then the cached list read again in the background and shown keeping the view.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/notify_ui_latency.py [--studies 20]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]

from DicomServersUI import pyside_qt  # noqa: E402

pyside_qt.install()

from DicomServersLib.notifications.service import NotificationService  # noqa: E402
from DicomServersLib.registry import ServerRegistry  # noqa: E402
from DicomServersLib.transfer_queue import TransferQueue  # noqa: E402
from DicomServersUI.notifications_controller import NotificationsController  # noqa: E402
from DicomServersUI.study_browser import BrowserHost, StudyBrowser  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
from rig.orthanc import OrthancOptions, OrthancServer  # noqa: E402
from rig.ports import free_port  # noqa: E402
from rig.studies import Patient, SeriesSpec, make_study  # noqa: E402

LUA = REPO / "Resources" / "PACS" / "orthanc" / "dicomservers-notify.lua"


def configured(url: str) -> str:
    """The shipped plugin with NOTIFY_URL and NOTIFY_SERVER set."""
    lines = LUA.read_text(encoding="utf-8").splitlines()
    lines[0] = f'local NOTIFY_URL = "{url}"'
    lines[2] = 'local NOTIFY_SERVER = "bench"'
    return "\n".join(lines) + "\n"


def run_until(condition, timeout: float):
    """Run the Qt event loop until ``condition()`` is true; return time.time() then, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if condition():
            return time.time()
        time.sleep(0.001)
    return None


def figures(label: str, samples_ms: list[float], missed: int) -> None:
    """Print median, 95th percentile, minimum and maximum."""
    if not samples_ms:
        print(f"{label}: nothing arrived ({missed} missed)")
        return
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(
        f"{label}: n={len(ordered)} median {statistics.median(ordered):.0f} ms,"
        f" p95 {p95:.0f} ms, min {ordered[0]:.0f} ms, max {ordered[-1]:.0f} ms"
        + (f", {missed} missed" if missed else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run (smaller data, fewer runs)"
    )
    parser.add_argument("--studies", type=int, default=20, help="new studies stored, one by one")
    args = parser.parse_args()
    if args.quick:
        args.studies = 5
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["DICOMSERVERS_CACHE_DIR"] = str(root / "cache")
        studies = [
            make_study(
                root / "studies",
                Patient(f"LAT-{i:03d}", f"Latency^{i:03d}"),
                series=[SeriesSpec("CT", "Axial", slices=1, rows=16, columns=16)],
                accession_number=f"LAT{i:03d}",
                study_date="20240101",
                seed=5000 + i,
            )
            for i in range(args.studies)
        ]
        port = free_port()
        options = OrthancOptions(lua_scripts=[configured(f"http://127.0.0.1:{port}/notify")])
        with OrthancServer(root / "orthanc", options) as orthanc:
            registry = ServerRegistry()
            registry.add(
                "bench",
                host="127.0.0.1",
                port=orthanc.dicom_port,
                rest_enabled=True,
                rest_url=orthanc.http_url,
                rest_user=orthanc.user,
                rest_password=orthanc.password,
                notifications_enabled=True,
                notification_ip="127.0.0.1",
                notification_port=port,
                load_mode="manual",
            )
            browser = StudyBrowser(
                registry, host=BrowserHost(root / "retrieved"), transferQueue=TransferQueue()
            )
            browser.widget.resize(900, 600)
            browser.widget.show()
            shown: list[tuple[float, str]] = []
            controller = NotificationsController(
                registry,
                service=NotificationService(watchdog_interval_s=0),
                showMessage=lambda text: shown.append((time.time(), text)),
                browser=lambda create: browser,
            )
            try:
                print(controller.statuses["bench"].describe())
                run_until(lambda: not browser._jobs, 30)
                message_ms: list[float] = []
                upload_ms: list[float] = []
                row_ms: list[float] = []
                missed_message = missed_row = 0
                rng = random.Random(7)
                for study in studies:
                    # Past the browser's refresh spacing (1 s), out of step with the 250 ms timer.
                    run_until(lambda: False, 1.2 + rng.uniform(0.0, 0.25))
                    shown.clear()
                    who = study.patient.patient_id
                    started = time.time()
                    orthanc.upload(study.paths)
                    upload_ms.append((time.time() - started) * 1000)
                    at = run_until(lambda who=who: any(who in text for _, text in shown), 10)
                    if at is None:
                        missed_message += 1
                    else:
                        message_ms.append((at - started) * 1000)
                    uid = study.study_instance_uid
                    at = run_until(lambda uid=uid: browser.studyModel.rowOf(uid) >= 0, 15)
                    if at is None:
                        missed_row += 1
                    else:
                        row_ms.append((at - started) * 1000)
                print("upload samples (ms):", " ".join(f"{v:.0f}" for v in upload_ms))
                print("message samples (ms):", " ".join(f"{v:.0f}" for v in message_ms))
                figures("store -> status message", message_ms, missed_message)
                figures("store -> row in the study browser", row_ms, missed_row)
            finally:
                controller.cleanup()
                browser.cleanup()
                browser.queue.close()
                browser.widget.close()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
