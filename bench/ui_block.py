"""Benchmark: the longest UI-thread block while the DICOM Servers panel tests a slow server (issue 5).

The panel (PySide6 harness, offscreen) tests a slow pynetdicom SCP on loopback: every C-ECHO
answer takes ``--echo-delay`` seconds and every query response ``--stall`` seconds. A 1 ms
precise ``QTimer`` on the UI thread stamps each event-loop turn; the longest gap between two
stamps, from the click on "Test connection" until the result is shown, is the longest time the
UI could not react. The same measurement on an idle panel gives the timer's own jitter.

Target: at most 100 ms.

Run: ``.venv/bin/python bench/ui_block.py [--runs 5] [--echo-delay 1.5] [--stall 0.5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from DicomServersUI import pyside_qt  # noqa: E402

pyside_qt.install()

from __feature__ import true_property  # noqa: E402, F401
from DicomServersLib.ini_settings import IniSettings  # noqa: E402
from DicomServersLib.registry import ServerRegistry  # noqa: E402
from DicomServersLib.secret_store import MemorySecretStore  # noqa: E402
from DicomServersLib.settings_store import SettingsStore  # noqa: E402
from DicomServersUI.connection_runner import defaultConnectionTester  # noqa: E402
from DicomServersUI.servers_panel import DicomServersPanel  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
from rig.scp import FakeQRSCP  # noqa: E402

TARGET_MS = 100.0


class SlowPacs(FakeQRSCP):
    """A Q/R SCP that answers C-ECHO after ``echo_delay_s`` seconds."""

    def __init__(self, *args: object, echo_delay_s: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.echo_delay_s = echo_delay_s

    def _on_echo(self, event: object) -> int:
        self._pause(self.echo_delay_s)
        return super()._on_echo(event)


def measure(panel: DicomServersPanel, start_test: bool, idle_s: float = 1.0) -> tuple[float, float]:
    """Return (longest gap ms, duration s) of the UI loop during one test (or idle period)."""
    stamps: list[float] = []
    loop = QtCore.QEventLoop()
    ticker = QtCore.QTimer()
    ticker.timerType = QtCore.Qt.TimerType.PreciseTimer
    ticker.interval = 1
    ticker.timeout.connect(lambda: stamps.append(time.perf_counter()))
    began = time.perf_counter()

    def start() -> None:
        if start_test:
            panel.onTestConnection()  # what the button's clicked signal calls

    def check() -> None:
        finished = not panel.isTesting() if start_test else time.perf_counter() - began > idle_s
        if finished and len(stamps) > 2:
            loop.quit()

    watcher = QtCore.QTimer()
    watcher.interval = 5
    watcher.timeout.connect(check)
    ticker.start()
    QtCore.QTimer.singleShot(20, start)
    QtCore.QTimer.singleShot(25, watcher.start)
    loop.exec()
    ticker.stop()
    watcher.stop()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return max(gaps) * 1000, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run (smaller data, fewer runs)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--echo-delay", type=float, default=1.5, help="seconds per C-ECHO")
    parser.add_argument("--stall", type=float, default=0.5, help="seconds per query response")
    args = parser.parse_args()
    if args.quick:
        args.runs = 2
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    tester = defaultConnectionTester()
    if tester is None:
        sys.exit("the DIMSE connection test of the core cannot be imported (pynetdicom?)")
    scp = SlowPacs("SLOWPACS", echo_delay_s=args.echo_delay, stall_seconds=args.stall)
    scp.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            registry = ServerRegistry(
                SettingsStore(IniSettings(Path(tmp) / "Slicer.ini"), MemorySecretStore(values={}))
            )
            registry.add("Slow PACS", host="127.0.0.1", port=scp.port, called_ae_title="SLOWPACS")
            panel = DicomServersPanel(registry, connectionTester=tester)
            panel.widget.resize(450, 1200)
            panel.widget.show()
            panel.selectServer("Slow PACS")
            app.processEvents()
            idle, _ = measure(panel, start_test=False)
            results = [measure(panel, start_test=True) for _ in range(args.runs)]
            state = panel.status(panel.currentServer().id).state
            panel.cleanup()
    finally:
        scp.stop()
    blocks = [gap for gap, _ in results]
    print(f"slow server: C-ECHO answered after {args.echo_delay} s, queries stall {args.stall} s")
    print(f"connection tests          : {args.runs}, last result {state!r}")
    print(f"test duration (mean)      : {statistics.mean(d for _, d in results):6.2f} s")
    print(f"idle UI loop, longest gap : {idle:6.1f} ms (timer jitter)")
    print(
        f"longest UI-thread block   : {max(blocks):6.1f} ms (median {statistics.median(blocks):.1f})"
    )
    verdict = "OK" if max(blocks) <= TARGET_MS else "OVER TARGET"
    print(f"target <= {TARGET_MS:.0f} ms           : {verdict}")


if __name__ == "__main__":
    main()
