"""Peak memory of very large queries and retrievals (issue 8 §6): 100,000 studies, 1 GB.

Each scenario runs in a fresh process (its own peak RSS), against a peer in another process
(so the figures are the client's): a raw C-FIND peer answering 100,000 studies, a QIDO-RS
server paging 100,000 studies, a C-GET peer sending 1 GB of CT images, a WADO-RS server
streaming 1 GB as ``multipart/related``. Printed: time, RSS after imports, peak RSS, their
difference, and (``--heap``) the peak of the Python heap (tracemalloc; slower).

Run: ``.venv/bin/python bench/memory_bounds.py [--quick] [--heap] [--only NAME]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(REPO / "DicomServers"),
    str(REPO / "Testing"),
    str(REPO / "Testing" / "hardening"),
]

MB = 1 << 20
#: name -> (what, peer kind, peer arguments, quick arguments)
SCENARIOS: dict[str, tuple[str, str, tuple[int, ...], tuple[int, ...]]] = {
    "cfind-all": ("C-FIND, no limit: every study kept", "c-find", (100_000,), (20_000,)),
    "cfind-limit": ("C-FIND, search limit 1,000", "c-find", (100_000,), (20_000,)),
    "qido-all": ("QIDO-RS search, no limit", "qido", (100_000,), (20_000,)),
    "qido-refresh": ("QIDO-RS full refresh into the cache", "qido", (100_000,), (20_000,)),
    "cget-big": ("C-GET, a few huge images", "c-get", (1024 * MB, 256 * MB), (256 * MB, 64 * MB)),
    "cget-many": ("C-GET, many 16 MB images", "c-get", (1024 * MB, 16 * MB), (256 * MB, 16 * MB)),
    "wado-big": (
        "WADO-RS, a few huge images",
        "wado-rs",
        (1024 * MB, 256 * MB),
        (256 * MB, 64 * MB),
    ),
}


def rss_mb() -> float:
    """Peak RSS of this process so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current RSS (MB), from /proc when available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
    except OSError:
        return rss_mb()


def run_scenario(name: str, quick: bool, heap: bool) -> dict[str, Any]:
    """Run one scenario in this process and return its figures."""
    from big_peers import big_instances, peer_process
    from DicomServersLib.dimse.query import find_studies
    from DicomServersLib.dimse.retrieve import retrieve
    from DicomServersLib.rest import refresh, retrieve_study, search_studies
    from DicomServersLib.server import DicomServer

    what, kind, args, quick_args = SCENARIOS[name]
    args = quick_args if quick else args
    work = Path(tempfile.mkdtemp(prefix="memory-bounds-"))
    os.environ["DICOMSERVERS_CACHE_DIR"] = str(work / "cache")
    try:
        with peer_process(kind, *args) as port:
            dimse = DicomServer(
                name="Big",
                called_ae_title="MANY" if kind == "c-find" else "BIGPACS",
                host="127.0.0.1",
                port=port,
                calling_ae_title="DSTEST",
                timeout_s=60.0,
                search_limit=1000 if name == "cfind-limit" else 0,
            )
            rest = DicomServer(
                name="Big REST",
                rest_enabled=True,
                rest_flavor="dicomweb",
                rest_url=f"http://127.0.0.1:{port}/dicom-web",
                timeout_s=60.0,
                search_limit=0,
                rest_limit=0,
            )
            baseline = current_rss_mb()
            if heap:
                tracemalloc.start()
            started = time.perf_counter()
            if name.startswith("cfind"):
                result = find_studies(dimse)
                count, ok = len(result.studies), result.ok
            elif name == "qido-all":
                result = search_studies(rest)
                count, ok = len(result.studies), result.ok
            elif name == "qido-refresh":
                synced = refresh(rest, full=True)
                count, ok = synced.total, synced.ok
            else:
                instances = big_instances(*args)
                what += f" ({len(instances)} x {instances[0].pixel_bytes // MB} MB)"
                if kind == "c-get":
                    got = retrieve(dimse, instances[0].study_uid, work / "dest")
                else:
                    got = retrieve_study(rest, instances[0].study_uid, work / "dest")
                count, ok = got.bytes_received // MB, got.ok
            seconds = time.perf_counter() - started
            heap_peak = tracemalloc.get_traced_memory()[1] / MB if heap else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = rss_mb()
    return {
        "name": name,
        "what": what,
        "ok": ok,
        "count": count,
        "unit": "MB" if kind in ("c-get", "wado-rs") else "studies",
        "seconds": round(seconds, 2),
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(peak, 1),
        "delta_mb": round(peak - baseline, 1),
        "heap_peak_mb": None if heap_peak is None else round(heap_peak, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 studies and 256 MB")
    parser.add_argument("--heap", action="store_true", help="also trace the Python heap")
    parser.add_argument("--only", action="append", default=[], help="scenario name")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.quick, args.heap)))
        return 0
    names = args.only or list(SCENARIOS)
    print(
        f"{'scenario':<14} {'what':<48} {'size':>14} {'time':>7} {'RSS base':>9}"
        f" {'RSS peak':>9} {'delta':>8} {'heap':>7}"
    )
    failed = False
    for name in names:
        command = [sys.executable, __file__, "--scenario", name]
        command += ["--quick"] * args.quick + ["--heap"] * args.heap
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            failed = True
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        failed |= not row["ok"]
        heap = "" if row["heap_peak_mb"] is None else f"{row['heap_peak_mb']:.0f} MB"
        print(
            f"{name:<14} {row['what']:<48} {row['count']:>8,} {row['unit']:<5}"
            f" {row['seconds']:>6.1f}s {row['baseline_mb']:>6.0f} MB {row['peak_mb']:>6.0f} MB"
            f" {row['delta_mb']:>5.0f} MB {heap:>7}" + ("" if row["ok"] else "  FAILED"),
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
