"""Benchmark: retrieving a 200 MB CT over REST from a real Orthanc (issue 4 §6).

One run, own data, the reference tool in the same run: a 400-slice 512 x 512 CT (about
200 MB, generated) is stored in Orthanc, then retrieved

- with curl: one WADO-RS request for the study, the multipart answer written to one file
  (the reference);
- with ours, WADO-RS: the multipart answer parsed as it streams, one atomic file per
  instance (target: ours <= 1.2x curl);
- with ours, Orthanc REST: ``/instances/{id}/file`` over 4 parallel connections.

Each is run 3 times after a warm-up (Orthanc's files in the page cache); medians are printed.
Our files are checked against the originals (byte for byte) once.

Run: ``.venv/bin/python bench/rest_retrieve.py [--quick]`` (``--quick``: a 40-slice CT, 20 MB).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]

import requests  # noqa: E402
from DicomServersLib.dicom_files import instance_path  # noqa: E402
from DicomServersLib.rest.retrieve import retrieve_study  # noqa: E402
from DicomServersLib.server import DicomServer  # noqa: E402
from rig.orthanc import OrthancOptions, OrthancServer  # noqa: E402
from rig.studies import make_big_ct_study  # noqa: E402


def upload(orthanc: OrthancServer, paths: list[Path], workers: int = 4) -> None:
    """Store files in parallel through ``POST /instances``."""
    sessions = [requests.Session() for _ in range(workers)]
    for session in sessions:
        session.trust_env = False
        session.auth = (orthanc.user, orthanc.password)

    def post(index: int) -> None:
        response = sessions[index % workers].post(
            f"{orthanc.http_url}/instances",
            data=paths[index].read_bytes(),
            headers={"Expect": ""},
            timeout=60,
        )
        response.raise_for_status()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(len(paths))))
    for session in sessions:
        session.close()


def curl_wado(orthanc: OrthancServer, study_uid: str, out: Path) -> float:
    """Retrieve the study with curl (WADO-RS, as stored); return curl's ``time_total``."""
    text = subprocess.run(
        [
            "curl",
            "-s",
            "-u",
            f"{orthanc.user}:{orthanc.password}",
            "-H",
            'Accept: multipart/related; type="application/dicom"; transfer-syntax=*',
            "-o",
            str(out),
            "-w",
            "%{time_total}",
            f"{orthanc.dicomweb_url}/studies/{study_uid}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 40-slice CT (20 MB)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    slices = 40 if args.quick else 400
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study = make_big_ct_study(root / "source", slices=slices)
        size = sum(p.stat().st_size for p in study.paths)
        orthanc = OrthancServer(root / "orthanc", OrthancOptions(worklists=False, stable_age=3600))
        orthanc.start()
        try:
            started = time.perf_counter()
            upload(orthanc, study.paths)
            print(
                f"study: {slices} slices, {size / 1e6:.0f} MB"
                f" (stored in {time.perf_counter() - started:.1f} s)"
            )
            uid = study.study_instance_uid
            web = DicomServer(
                rest_enabled=True,
                rest_flavor="dicomweb",
                rest_url=orthanc.dicomweb_url,
                rest_user=orthanc.user,
                rest_password=orthanc.password,
            )
            rest = web.copy(rest_flavor="orthanc", rest_url=orthanc.http_url)
            curl_wado(orthanc, uid, root / "warm.bin")  # page cache and Orthanc's caches
            times: dict[str, list[float]] = {"curl": [], "wado": [], "orthanc": []}
            for run in range(args.runs):
                out = root / "curl.bin"
                times["curl"].append(curl_wado(orthanc, uid, out))
                out.unlink()
                for name, server in (("wado", web), ("orthanc", rest)):
                    dest = root / f"{name}{run}"
                    result = retrieve_study(server, uid, dest)
                    assert result.ok and result.received == slices, result.diagnosis
                    times[name].append(result.duration_s)
                    if run == 0:
                        for series in study.series:
                            for inst in series.instances:
                                got = instance_path(
                                    dest, uid, series.series_instance_uid, inst.sop_instance_uid
                                )
                                assert got.read_bytes() == inst.path.read_bytes()
                    shutil.rmtree(dest)

            def line(label: str, name: str, target: str = "") -> None:
                med, best = statistics.median(times[name]), min(times[name])
                ratio = ""
                if name != "curl":
                    ratio = (
                        f"   ours/curl = {med / statistics.median(times['curl']):4.2f}x"
                        f" (best runs {best / min(times['curl']):4.2f}x){target}"
                    )
                print(f"{label}: {med:6.2f} s  {size / med / 1e6:6.0f} MB/s{ratio}")

            line("curl WADO-RS (one file)       ", "curl")
            line("ours WADO-RS (atomic files)   ", "wado", " (target <= 1.2x)")
            line("ours Orthanc REST (4 parallel)", "orthanc")
            print("(medians of the runs; 'best runs' compares the fastest run of each, which")
            print(" depends less on other work on the machine)")
        finally:
            orthanc.kill()
            orthanc.session.close()


if __name__ == "__main__":
    main()
