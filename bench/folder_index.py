"""Benchmark: indexing a PACS storage folder (issue 6 §7).

Generates N small DICOM files (default 5,000) in a temporary folder, then measures in one run:

- cold index (our header reader + SQLite) vs a naive ``pydicom.dcmread(stop_before_pixels=True)``
  of every file (target: ours at least 2x faster);
- re-scan with nothing changed vs the cold index (target: at least 20x faster).

Run: ``.venv/bin/python bench/folder_index.py [--files 5000] [--quick]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "DicomServers"), str(REPO / "Testing")]

import pydicom  # noqa: E402
from DicomServersLib.folder_index import FolderIndex  # noqa: E402
from rig.studies import write_sample_studies  # noqa: E402


def make_files(folder: Path, count: int) -> list[Path]:
    """Copy the sample instances under new UIDs until ``count`` files exist (Orthanc-like names)."""
    samples = write_sample_studies(folder / "_samples")
    templates = [pydicom.dcmread(str(p)) for p in samples.paths]
    paths = []
    for number in range(count):
        ds = templates[number % len(templates)]
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.1{number:06d}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.2{number // 50:06d}"
        path = folder / f"{number % 256:02x}" / f"{number:032x}"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(str(path))
        paths.append(path)
    shutil.rmtree(folder / "_samples")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="500 files")
    args = parser.parse_args()
    count = 500 if args.quick else args.files
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pacs"
        paths = make_files(folder, count)
        start = time.perf_counter()
        for path in paths:
            pydicom.dcmread(str(path), stop_before_pixels=True)
        naive = time.perf_counter() - start
        with FolderIndex(folder, Path(tmp) / "index.sqlite") as index:
            cold = index.update().duration_s
            warm = sorted(index.update().duration_s for _ in range(5))[2]  # median of 5
        with FolderIndex(folder, Path(tmp) / "index.sqlite") as fresh:
            fresh_warm = fresh.update().duration_s  # a new process: the index is read from disk
    print(f"files: {count}")
    print(f"naive pydicom header read : {naive:8.3f} s")
    print(
        f"our cold index            : {cold:8.3f} s   naive/ours = {naive / cold:5.1f}x (target >= 2x)"
    )
    print(
        f"our re-scan, no change    : {warm:8.3f} s   cold/rescan = {cold / warm:5.1f}x (target >= 20x)"
    )
    print(
        f"  same, index read from disk: {fresh_warm:6.3f} s   cold/rescan = {cold / fresh_warm:5.1f}x"
    )


if __name__ == "__main__":
    main()
