"""Benchmark: retrieving a 200 MB CT with C-GET and C-MOVE from a real Orthanc (issue 3 §6).

One run, own data, the reference tools in the same run: a 400-slice 512 x 512 CT (about
200 MB, generated with the test rig) is stored in Orthanc, then retrieved

- with DCMTK ``getscu`` and ``movescu``, with ``TCP_NODELAY=1`` (the reference) and with
  DCMTK's defaults (Nagle's algorithm on: what DCMTK-based clients such as Slicer's CTK DICOM
  browser get);
- with ours: :func:`DicomServersLib.dimse.retrieve.retrieve`, C-GET and C-MOVE (to our own
  storage listener), files written atomically (``dicom_files.write_atomic``), the resume
  survey included;
- with a plain pynetdicom C-GET (the obvious implementation, files written as received),
  to show where ours started.

Target: ours C-GET <= 1.0x ``getscu`` with ``TCP_NODELAY=1``.

Where the time went, and what was done (profiled with cProfile per thread):

- delayed acknowledgements: Orthanc (like DCMTK by default) keeps Nagle's algorithm on, so
  it sends a small PDU (the end of a data set, a response) only once the previous one is
  acknowledged, and Linux delays acknowledgements by up to 40 ms. Re-arming
  ``TCP_QUICKACK`` on each read halved our time (and is why ours beats ``getscu``, which
  only sets ``TCP_NODELAY`` on its own sends).
- pynetdicom runs each association in three threads that hand every PDU and message over
  through queues, polling with 1 ms sleeps; each C-STORE costs two such hand-overs (data
  in, response out), a few ms per instance on a loaded 2-core machine. Ours reads the PDUs
  and answers each C-STORE in one thread (``dimse/upper_layer.py``).
- decode/re-encode: none; the data set is written as received, after a File Meta group
  encoded by hand (pydicom's writer cost ~1 ms per instance).
- PDU size: we announce 1 MiB; Orthanc (DCMTK) caps its PDUs at 128 KiB anyway.
- writing: files are written atomically (temporary name, then rename) by a writer thread,
  so the next instance arrives while the previous one is being written.
- parallel associations: one per series (this study has one series, so one association).

Each is run ``--runs`` times (default 3) after a warm-up, interleaved; medians are printed.
DCMTK's defaults are run once (they take ~10x longer). Our files are checked against the
originals once.

Run: ``.venv/bin/python bench/retrieve_dimse.py [--quick]`` (``--quick``: a 40-slice CT, 20 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
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
from DicomServersLib.dimse.retrieve import retrieve  # noqa: E402
from DicomServersLib.server import DicomServer  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pynetdicom import AE, build_role, evt  # noqa: E402
from rig.dcmtk import dcmtk_binary  # noqa: E402
from rig.orthanc import OrthancOptions, OrthancServer, RemoteModality  # noqa: E402
from rig.ports import free_ports  # noqa: E402
from rig.studies import CT_IMAGE_STORAGE, make_big_ct_study  # noqa: E402

LOOPBACK = "127.0.0.1"
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"


def upload(orthanc: OrthancServer, paths: list[Path], workers: int = 4) -> None:
    """Store files in parallel through ``POST /instances``."""
    sessions = [requests.Session() for _ in range(workers)]
    for session in sessions:
        session.trust_env = False
        session.auth = (orthanc.user, orthanc.password)

    def post(index: int) -> None:
        response = sessions[index % workers].post(
            f"{orthanc.http_url}/instances", data=paths[index].read_bytes(), timeout=60
        )
        response.raise_for_status()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, range(len(paths))))
    for session in sessions:
        session.close()


def dcmtk(tool: str, args: list[str], nodelay: bool) -> float:
    """Run a DCMTK SCU (quiet) and return its wall-clock time."""
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    started = time.perf_counter()
    subprocess.run([dcmtk_binary(tool), *args], env=env, check=True, timeout=900,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def naive_pynetdicom_get(port: int, study_uid: str, out: Path) -> float:
    """A plain pynetdicom C-GET: default PDU size and handlers, files written as received."""
    out.mkdir(parents=True, exist_ok=True)

    def store(event: evt.Event) -> int:
        (out / f"{event.request.AffectedSOPInstanceUID}.dcm").write_bytes(event.encoded_dataset())
        return 0x0000

    started = time.perf_counter()
    ae = AE("NAIVE")
    ae.add_requested_context(GET_MODEL)
    ae.add_requested_context(CT_IMAGE_STORAGE)
    assoc = ae.associate(
        LOOPBACK,
        port,
        ae_title="ORTHANC",
        ext_neg=[build_role(CT_IMAGE_STORAGE, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, store)],
    )
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    for _ in assoc.send_c_get(identifier, GET_MODEL):
        pass
    assoc.release()
    return time.perf_counter() - started


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
        ours_port, movescu_port = free_ports(2)
        options = OrthancOptions(
            worklists=False,
            dicomweb=False,
            stable_age=3600,
            modalities={
                "ours": RemoteModality("DSMOVE", ours_port),
                "movescu": RemoteModality("MOVESCU", movescu_port),
            },
        )
        orthanc = OrthancServer(root / "orthanc", options)
        orthanc.start()
        try:
            started = time.perf_counter()
            upload(orthanc, study.paths)
            print(
                f"study: {slices} slices 512x512, {size / 1e6:.0f} MB"
                f" (stored in Orthanc in {time.perf_counter() - started:.1f} s)"
            )
            run(orthanc, study, size, ours_port, movescu_port, root, args.runs)
        finally:
            orthanc.kill()
            orthanc.session.close()


def run(orthanc, study, size, ours_port, movescu_port, root, runs) -> None:  # type: ignore[no-untyped-def]
    uid = study.study_instance_uid
    port = orthanc.dicom_port
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    common = ["-aet", "BENCH", "-aec", "ORTHANC", "-S"]
    server = DicomServer(
        called_ae_title="ORTHANC",
        host=LOOPBACK,
        port=port,
        calling_ae_title="BENCH",
        move_destination_ae_title="DSMOVE",
        storage_port=ours_port,
        timeout_s=60,
    )

    def getscu(out: Path, nodelay: bool = True) -> float:
        out.mkdir(parents=True, exist_ok=True)
        return dcmtk("getscu", [*common, "-od", str(out), *keys, LOOPBACK, str(port)], nodelay)

    def movescu(out: Path, nodelay: bool = True) -> float:
        out.mkdir(parents=True, exist_ok=True)
        arguments = [*common, "--port", str(movescu_port), "--move", "MOVESCU", "-od", str(out)]
        return dcmtk("movescu", [*arguments, *keys, LOOPBACK, str(port)], nodelay)

    def ours(method: str) -> Callable[[Path], float]:
        def go(out: Path) -> float:
            result = retrieve(server, uid, out, method=method, listen_host=LOOPBACK)
            assert result.ok and result.received == len(study.paths), result.diagnosis
            return result.duration_s

        return go

    tools: dict[str, Callable[[Path], float]] = {
        "getscu TCP_NODELAY=1": getscu,
        "ours C-GET": ours("c-get"),
        "movescu TCP_NODELAY=1": movescu,
        "ours C-MOVE": ours("c-move"),
        "pynetdicom C-GET (naive)": lambda out: naive_pynetdicom_get(port, uid, out),
    }
    getscu(root / "warm")  # Orthanc's files into the page cache
    shutil.rmtree(root / "warm")
    times: dict[str, list[float]] = {name: [] for name in tools}
    for index in range(runs):
        for name, tool in tools.items():
            out = root / f"out-{index}-{len(times[name])}"
            times[name].append(tool(out))
            if index == 0 and name.startswith("ours"):
                check_identical(study, out)
            shutil.rmtree(out)
    for name, tool in (("getscu defaults", getscu), ("movescu defaults", movescu)):
        out = root / "defaults"
        times[name] = [tool(out, nodelay=False)]
        shutil.rmtree(out)
    reference = statistics.median(times["getscu TCP_NODELAY=1"])
    print(f"{'':26} {'median s':>9} {'MB/s':>7} {'vs getscu':>10}   runs")
    for name, values in times.items():
        median = statistics.median(values)
        runs_text = " ".join(f"{v:.2f}" for v in values)
        print(
            f"{name:26} {median:9.2f} {size / median / 1e6:7.0f} {median / reference:9.2f}x"
            f"   {runs_text}"
        )
    get_ratio = statistics.median(times["ours C-GET"]) / reference
    move_ratio = statistics.median(times["ours C-MOVE"]) / statistics.median(
        times["movescu TCP_NODELAY=1"]
    )
    slicer_like = statistics.median(times["getscu defaults"]) / statistics.median(
        times["ours C-GET"]
    )
    print(f"ours C-GET / getscu TCP_NODELAY=1   = {get_ratio:.2f}x (target <= 1.0x)")
    print(f"ours C-MOVE / movescu TCP_NODELAY=1 = {move_ratio:.2f}x")
    print(f"DCMTK defaults (as in Slicer's CTK browser) / ours C-GET = {slicer_like:.1f}x slower")


def check_identical(study, dest: Path) -> None:  # type: ignore[no-untyped-def]
    """Our files hold the original data sets, byte for byte (after the file meta)."""
    for series in study.series:
        for instance in series.instances:
            ours = dest / study.study_instance_uid / series.series_instance_uid
            assert data_set(ours / f"{instance.sop_instance_uid}.dcm") == data_set(instance.path)


def data_set(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[144 + int.from_bytes(raw[140:144], "little") :]


if __name__ == "__main__":
    main()
