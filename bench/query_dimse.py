"""Benchmark: a study-level C-FIND list of 5,000 studies from a real Orthanc (issue 3 §6).

One run, own data, the reference tool in the same run: 5,000 one-image studies (generated,
no pixel data) are stored in Orthanc, then the whole study list (no date filter, no limit)
is asked for

- with DCMTK ``findscu`` (the reference), with ``TCP_NODELAY=1`` and with its defaults,
  asking for the same return keys as ours;
- with ours: :func:`DicomServersLib.dimse.query.find_studies`, every answer decoded into a
  ``StudyRecord`` (names with their character set);
- with a plain pynetdicom C-FIND (the obvious implementation, every answer decoded by
  pydicom), to show where ours started.

Target: ours <= 1.5x ``findscu``.

Where the time went, and what was done: pynetdicom's three threads hand every PDU over
through queues (a C-FIND answer is two PDUs), and its logging handlers format each PDU and
identifier even when nothing is logged. Ours reads the answers in the caller's thread
(``dimse/upper_layer.py``), walks each identifier's elements with ``struct`` and decodes only
the values a study record needs (``dimse/elements.py``). ``TCP_QUICKACK`` is re-armed on each
read, so a PACS with Nagle's algorithm on is not held back by delayed acknowledgements.

Each is run ``--runs`` times (default 5) after a warm-up, interleaved; medians are printed.

Run: ``.venv/bin/python bench/query_dimse.py [--quick]`` (``--quick``: 500 studies).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]

import requests  # noqa: E402
from DicomServersLib.date_filters import DateRange  # noqa: E402
from DicomServersLib.dicom_compat import write_dataset  # noqa: E402
from DicomServersLib.dimse.query import find_studies, study_identifier  # noqa: E402
from DicomServersLib.query_model import QueryFilters  # noqa: E402
from DicomServersLib.server import DicomServer  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from pynetdicom import AE  # noqa: E402
from rig.dcmtk import dcmtk_binary  # noqa: E402
from rig.orthanc import OrthancOptions, OrthancServer  # noqa: E402

LOOPBACK = "127.0.0.1"
FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
NAMES = ("Müller^Jürgen", "Doe^Jane", "Żółć^Łukasz", "Smith^John")


def make_instance(index: int) -> bytes:
    """One small Part-10 instance of its own study."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["bench-sop", str(index)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["bench-study", str(index)])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["bench-series", str(index)])
    ds.PatientName = f"{NAMES[index % len(NAMES)]}{index:05d}"
    ds.PatientID = f"P{index % 1000:05d}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = f"20{10 + index % 14:02d}{1 + index % 12:02d}{1 + index % 28:02d}"
    ds.StudyTime = "120000"
    ds.AccessionNumber = f"A{index:06d}"
    ds.StudyDescription = f"Study {index}"
    ds.StudyID = str(index)
    ds.Modality = ("CT", "MR", "OT")[index % 3]
    buffer = io.BytesIO()
    write_dataset(ds, buffer)
    return buffer.getvalue()


def fill(orthanc: OrthancServer, count: int, workers: int = 4) -> None:
    """Store ``count`` one-image studies through ``POST /instances``."""
    sessions = [requests.Session() for _ in range(workers)]
    for session in sessions:
        session.trust_env = False
        session.auth = (orthanc.user, orthanc.password)

    def post(index: int) -> None:
        response = sessions[index % workers].post(
            f"{orthanc.http_url}/instances", data=make_instance(index), timeout=60
        )
        response.raise_for_status()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(count)))
    for session in sessions:
        session.close()


def findscu_keys() -> list[str]:
    """``-k`` options asking for exactly the keys of our study-level identifier."""
    identifier = study_identifier(QueryFilters(), DateRange())
    args = []
    for element in identifier:
        value = str(element.value) if element.value not in (None, "") else ""
        key = f"{element.tag.group:04X},{element.tag.element:04X}"
        args += ["-k", f"{key}={value}" if value else key]
    return args


def findscu(port: int, nodelay: bool) -> float:
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    args = [dcmtk_binary("findscu"), "-S", "-aet", "BENCH", "-aec", "ORTHANC", *findscu_keys()]
    started = time.perf_counter()
    subprocess.run([*args, LOOPBACK, str(port)], env=env, check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def naive_pynetdicom(port: int, expected: int) -> float:
    """A plain pynetdicom C-FIND: default settings, each answer decoded by pydicom."""
    started = time.perf_counter()
    ae = AE("NAIVE")
    ae.add_requested_context(FIND_MODEL)
    assoc = ae.associate(LOOPBACK, port, ae_title="ORTHANC")
    names = [
        str(identifier.PatientName)
        for _, identifier in assoc.send_c_find(
            study_identifier(QueryFilters(), DateRange()), FIND_MODEL
        )
        if identifier is not None
    ]
    assoc.release()
    assert len(names) == expected
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 studies")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    count = 500 if args.quick else 5000
    with tempfile.TemporaryDirectory() as tmp:
        orthanc = OrthancServer(
            Path(tmp) / "orthanc", OrthancOptions(worklists=False, dicomweb=False, stable_age=3600)
        )
        orthanc.start()
        try:
            started = time.perf_counter()
            fill(orthanc, count)
            print(f"{count} studies stored in Orthanc in {time.perf_counter() - started:.1f} s")
            measure(orthanc, count, args.runs)
        finally:
            orthanc.kill()
            orthanc.session.close()


def measure(orthanc: OrthancServer, count: int, runs: int) -> None:
    port = orthanc.dicom_port
    server = DicomServer(
        called_ae_title="ORTHANC", host=LOOPBACK, port=port, calling_ae_title="BENCH",
        search_limit=0, timeout_s=60,
    )  # fmt: skip

    def ours() -> float:
        result = find_studies(server, QueryFilters(date_range=DateRange()))
        assert result.ok and len(result.studies) == count, result.diagnosis
        assert result.studies[0].patient_name.startswith(NAMES)
        return result.duration_s

    tools: dict[str, Callable[[], float]] = {
        "findscu TCP_NODELAY=1": lambda: findscu(port, True),
        "ours": ours,
        "findscu defaults": lambda: findscu(port, False),
        "pynetdicom (naive)": lambda: naive_pynetdicom(port, count),
    }
    findscu(port, True)  # warm-up: Orthanc's index in the page cache
    times: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(runs):
        for name, tool in tools.items():
            times[name].append(tool())
    reference = statistics.median(times["findscu TCP_NODELAY=1"])
    print(f"{'':24} {'median s':>9} {'studies/s':>10} {'vs findscu':>11}   runs")
    for name, values in times.items():
        median = statistics.median(values)
        runs_text = " ".join(f"{v:.2f}" for v in values)
        print(
            f"{name:24} {median:9.3f} {count / median:10.0f} {median / reference:10.2f}x"
            f"   {runs_text}"
        )
    ratio = statistics.median(times["ours"]) / reference
    print(f"ours / findscu TCP_NODELAY=1 = {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
