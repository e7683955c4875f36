"""Benchmark: filling the study browser's result list with 100,000 studies (issue 6 §7).

The study browser (PySide6 harness, offscreen, 1000 × 800 px) gets a search result of N
synthetic studies (default 100,000) the way a finished search hands it over on the UI thread
(``StudyBrowser._showResult``: sorted by date, model reset, status and cut-off note); the time
runs until the view has repainted. Then: scrolling to the end, sorting by patient name (a header
click) and selecting a study, each until repainted.

Target: filling the view at most 0.5 s.

Run: ``.venv/bin/python bench/browser_model.py [--studies 100000] [--runs 5]``.
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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from DicomServersUI import pyside_qt  # noqa: E402

pyside_qt.install()

from __feature__ import true_property  # noqa: E402, F401
from DicomServersLib.query_model import QueryResult, StudyRecord  # noqa: E402
from DicomServersLib.registry import ServerRegistry  # noqa: E402
from DicomServersLib.transfer_queue import TransferQueue  # noqa: E402
from DicomServersUI.study_browser import BrowserHost, StudyBrowser  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

TARGET_S = 0.5
FAMILY = ("Müller", "Doe", "Yamada", "Papadopoulos", "Smith", "Nguyen", "García", "Kowalski")
GIVEN = ("Jane", "John", "Tarou", "Eleni", "Łukasz", "Åse", "Wei", "Maria")
DESCRIPTIONS = ("Thorax nativ", "CT head", "MR knee", "Abdomen CT", "Chest X-ray", "PET-CT")


def make_studies(count: int, seed: int = 1) -> list[StudyRecord]:
    """Return ``count`` varied studies (names, dates over 20 years, modalities, counts)."""
    rng = random.Random(seed)
    studies = []
    for number in range(count):
        year = 2006 + rng.randrange(20)
        studies.append(
            StudyRecord(
                study_uid=f"1.2.826.0.1.3680043.10.9.{number}",
                patient_name=f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}",
                patient_id=f"P{rng.randrange(10**7):07d}",
                study_date=f"{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}",
                study_time=f"{rng.randrange(24):02d}{rng.randrange(60):02d}00",
                accession_number=f"A{number:08d}",
                study_description=rng.choice(DESCRIPTIONS),
                modalities=rng.choice((["CT"], ["MR"], ["CT", "PT"], ["CR"])),
                series_count=rng.randrange(1, 12),
                instance_count=rng.randrange(1, 2000),
            )
        )
    return studies


def timed(app: QtWidgets.QApplication, view: QtWidgets.QTableView, action) -> float:
    """Seconds from ``action()`` until the view has processed events and repainted."""
    start = time.perf_counter()
    action()
    app.processEvents()
    view.viewport().repaint()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run (smaller data, fewer runs)"
    )
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.studies, args.runs = 10_000, 2
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    studies = make_studies(args.studies)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "empty-pacs-folder"
        folder.mkdir()
        registry = ServerRegistry()
        registry.add("Big PACS", load_mode="manual", host="127.0.0.1", search_limit=0)
        registry.add("Folder", load_mode="folder", storage_folder=str(folder), is_default=True)
        queue = TransferQueue()
        browser = StudyBrowser(registry, host=BrowserHost(Path(tmp) / "dest"), transferQueue=queue)
        browser.widget.resize(1000, 800)
        browser.widget.show()
        deadline = time.monotonic() + 10
        while browser.busy and time.monotonic() < deadline:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        server = browser.currentServer()
        view = browser.ui.studyTableView
        fills, scrolls, sorts, selects = [], [], [], []
        for _ in range(args.runs):
            result = QueryResult(studies=list(studies), limit=0)
            timed(app, view, lambda: browser._showResult(server, QueryResult()))
            fills.append(timed(app, view, lambda r=result: browser._showResult(server, r)))
            scrolls.append(timed(app, view, view.scrollToBottom))
            header = view.horizontalHeader()
            sorts.append(
                timed(app, view, lambda h=header: h.setSortIndicator(0, QtCore.Qt.AscendingOrder))
            )
            header.setSortIndicator(2, QtCore.Qt.DescendingOrder)
            app.processEvents()
            view.scrollToTop()
            selects.append(timed(app, view, lambda: browser.selectStudy(10)))
        shown = browser.studyModel.rowCount()
        browser.cleanup()
        queue.close()
    print(f"studies in the result view : {shown:,}")
    print(
        f"fill (sort by date + reset + repaint): median {statistics.median(fills):.3f} s,"
        f" worst {max(fills):.3f} s over {args.runs} runs (target ≤ {TARGET_S} s)"
    )
    print(f"scroll to the end          : median {statistics.median(scrolls) * 1000:.0f} ms")
    print(f"sort by patient name       : median {statistics.median(sorts) * 1000:.0f} ms")
    print(f"select a study             : median {statistics.median(selects) * 1000:.0f} ms")
    verdict = "PASS" if max(fills) <= TARGET_S else "FAIL"
    print(f"{verdict}: worst fill {max(fills):.3f} s vs target {TARGET_S} s")


if __name__ == "__main__":
    main()
