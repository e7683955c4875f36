"""Benchmark: the REST study list of a real Orthanc holding 5,000 studies (issue 4 §6).

One run, own data, the reference tool in the same run:

- cold list load (empty cache: /changes, /statistics, the listing, parsing, SQLite) vs the raw
  ``POST /tools/find`` (``Expand``) with curl (target: ours <= 1.2x curl). Ours lists with
  ``GET /studies?expand``, which Orthanc answers in about half the time of an empty
  ``/tools/find``; that route with curl is printed too, for a like-for-like ratio;
- warm refresh with no change on the server (target: <= 30 ms);
- refresh after 50 new studies (incremental; target: <= 10 % of the cold load);
- for information: the same list over DICOMweb (QIDO-RS) vs curl.

The studies are generated (one small CT image each, dates spread over ten years) and stored in
parallel through ``POST /instances``. Orthanc runs on a free loopback port with authentication
on; it is stopped at the end.

Run: ``.venv/bin/python bench/rest_list.py [--studies 5000] [--quick]`` (``--quick``: 500).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
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
from DicomServersLib.dicom_compat import write_dataset  # noqa: E402
from DicomServersLib.rest.cache import StudyCache  # noqa: E402
from DicomServersLib.rest.sync import refresh  # noqa: E402
from DicomServersLib.server import DicomServer  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian  # noqa: E402
from rig.orthanc import OrthancOptions, OrthancServer  # noqa: E402

UID_ROOT = "1.2.826.0.1.3680043.10.4"
TODAY = dt.date.today()


def instance_bytes(number: int, day: dt.date, batch: int = 0) -> bytes:
    """Return one small CT instance (8 x 8 pixels) of study ``number`` as a Part-10 file."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = f"{UID_ROOT}.3.{batch}.{number}"
    ds.StudyInstanceUID = f"{UID_ROOT}.1.{batch}.{number}"
    ds.SeriesInstanceUID = f"{UID_ROOT}.2.{batch}.{number}"
    ds.PatientName = f"Bench^Patient{number % 997}"
    ds.PatientID = f"BENCH{number % 997:04d}"
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = day.strftime("%Y%m%d")
    ds.StudyTime = f"{8 + number % 10:02d}{number % 60:02d}00"
    ds.AccessionNumber = f"B{batch}{number:06d}"
    ds.StudyDescription = "Benchmark study"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = bytes(128)
    buffer = io.BytesIO()
    write_dataset(ds, buffer)
    return buffer.getvalue()


def store(orthanc: OrthancServer, blobs: list[bytes], workers: int = 4) -> float:
    """POST instances in parallel (one keep-alive session per worker); return seconds."""
    sessions = [requests.Session() for _ in range(workers)]
    for session in sessions:
        session.trust_env = False
        session.auth = (orthanc.user, orthanc.password)
    url = f"{orthanc.http_url}/instances"

    def post(index: int) -> None:
        response = sessions[index % workers].post(
            url, data=blobs[index], headers={"Expect": ""}, timeout=60
        )
        response.raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(len(blobs))))
    for session in sessions:
        session.close()
    return time.perf_counter() - start


def curl_seconds(args: list[str]) -> float:
    """Run curl and return its own ``time_total`` (transfer time, without process start)."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return float(out)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="500 studies, fewer repeats")
    args = parser.parse_args()
    count = 500 if args.quick else args.studies
    repeats = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        orthanc = OrthancServer(root / "orthanc", OrthancOptions(worklists=False, stable_age=3600))
        orthanc.start()
        try:
            days = [TODAY - dt.timedelta(days=(n * 3653) // count) for n in range(count)]
            blobs = [instance_bytes(n, days[n]) for n in range(count)]
            loaded = store(orthanc, blobs)
            print(f"studies: {count} (stored in {loaded:.1f} s, {count / loaded:.0f}/s)")
            server = DicomServer(
                name="bench",
                rest_enabled=True,
                rest_flavor="orthanc",
                rest_url=orthanc.http_url,
                rest_user=orthanc.user,
                rest_password=orthanc.password,
                cache_threshold=100,
            )
            auth = f"{orthanc.user}:{orthanc.password}"
            find = ["-u", auth, "-X", "POST", "-d", '{"Level":"Study","Query":{},"Expand":true}',
                    f"{orthanc.http_url}/tools/find"]  # fmt: skip
            curl_seconds(find)  # warm Orthanc's caches for both
            listing = ["-u", auth, f"{orthanc.http_url}/studies?expand&since=0&limit=10000"]
            curl_seconds(listing)
            curl_times, curl_listing, ours = [], [], []
            for runs in range(repeats):
                curl_times.append(curl_seconds(find))
                curl_listing.append(curl_seconds(listing))
                with StudyCache(root / f"cold{runs}.sqlite") as cache:
                    result = refresh(server, cache=cache)
                    assert result.ok and result.mode == "full" and result.total == count
                    ours.append(result.duration_s)
            curl_t, cold = median(curl_times), median(ours)
            curl_l = median(curl_listing)
            print(f"raw /tools/find with curl : {curl_t * 1000:8.1f} ms")
            print(
                f"our cold list load        : {cold * 1000:8.1f} ms   ours/curl = "
                f"{cold / curl_t:4.2f}x (target <= 1.2x)"
            )
            print(
                f"  (same route as ours, raw GET /studies?expand with curl: {curl_l * 1000:.1f} ms;"
                f" ours/curl = {cold / curl_l:.2f}x)"
            )
            with StudyCache(root / "warm.sqlite") as cache:
                refresh(server, cache=cache)
                warm = []
                for _ in range(repeats * 4):
                    result = refresh(server, cache=cache)
                    assert result.ok and result.mode == "unchanged", result.reason
                    warm.append(result.duration_s)
                print(
                    f"warm refresh, no change   : {median(warm) * 1000:8.1f} ms   (target <= 30 ms)"
                )
                incremental = []
                for batch in range(1, repeats + 1):
                    store(orthanc, [instance_bytes(n, TODAY, batch) for n in range(50)])
                    result = refresh(server, cache=cache)
                    assert result.ok and result.mode == "incremental" and result.added == 50, (
                        result.mode,
                        result.reason,
                    )
                    incremental.append(result.duration_s)
                inc = median(incremental)
                print(
                    f"refresh after 50 new      : {inc * 1000:8.1f} ms   = "
                    f"{100 * inc / cold:4.1f} % of cold (target <= 10 %)"
                )
            # For information: the same list over DICOMweb.
            web = server.copy(rest_flavor="dicomweb", rest_url=orthanc.dicomweb_url)
            qido = ["-u", auth, "-H", "Accept: application/dicom+json",
                    f"{orthanc.dicomweb_url}/studies?includefield=00081030&limit=1000"]  # fmt: skip
            total = count + 50 * repeats
            pages = -(-total // 1000) + (1 if total % 1000 == 0 else 0)
            curl_web = []
            for _ in range(2):
                curl_web.append(
                    sum(
                        curl_seconds([*qido[:-1], f"{qido[-1]}&offset={p * 1000}"])
                        for p in range(pages)
                    )  # fmt: skip
                )
            with StudyCache(root / "web.sqlite") as cache:
                result = refresh(web, cache=cache)
                assert result.ok and result.total == total, (result.total, total)
                web_cold = result.duration_s
                web_warm = median([refresh(web, cache=cache).duration_s for _ in range(5)])
            print(
                f"DICOMweb: QIDO pages curl : {min(curl_web) * 1000:8.1f} ms, ours cold"
                f" {web_cold * 1000:.1f} ms ({web_cold / min(curl_web):.2f}x),"
                f" warm {web_warm * 1000:.1f} ms"
            )
        finally:
            orthanc.kill()
            orthanc.session.close()


if __name__ == "__main__":
    main()
