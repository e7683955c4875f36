"""Very large answers: 100,000-study lists and retrievals of hundreds of megabytes (issue 8 §6).

Functional checks, plus bounds on this process's Python heap (``tracemalloc``) where boundedness
is the property under test: a search limit keeps a query small whatever the PACS sends, and a
retrieve holds at most a few images (DIMSE: one data set plus the writer's 64 MB queue; WADO-RS:
a few 1 MB chunks) whatever the study's size. The peers run in a child process so the heap
measured is the client's. Peak figures for 100,000 studies and 1 GB are in
``bench/memory_bounds.py``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from big_peers import big_instances, peer_process
from DicomServersLib.dimse.query import find_studies
from DicomServersLib.dimse.retrieve import retrieve
from DicomServersLib.query_model import CUT_OFF_OUR_LIMIT
from DicomServersLib.rest import refresh, retrieve_study, search_studies
from DicomServersLib.server import DicomServer

LOOPBACK = "127.0.0.1"
MB = 1 << 20


def dimse_server(port: int, called: str, **changes: Any) -> DicomServer:
    return DicomServer(
        name="Big",
        called_ae_title=called,
        host=LOOPBACK,
        port=port,
        calling_ae_title="DSTEST",
        timeout_s=30.0,
        **changes,
    )


def rest_server(port: int, **changes: Any) -> DicomServer:
    return DicomServer(
        name="Big REST",
        rest_enabled=True,
        rest_flavor="dicomweb",
        rest_url=f"http://{LOOPBACK}:{port}/dicom-web",
        timeout_s=30.0,
        **changes,
    )


def heap_peak(work: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``work`` and return its result and the peak of the Python heap it used (bytes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - start


# -- 100,000-result queries --------------------------------------------------------------------


@pytest.mark.slow
def test_c_find_of_100k_studies() -> None:
    with peer_process("c-find", 100_000) as port:
        everything = find_studies(dimse_server(port, "MANY", search_limit=0))
        assert everything.ok, everything.diagnosis
        assert len(everything.studies) == 100_000 and not everything.cut_off
        assert len({s.study_uid for s in everything.studies}) == 100_000
        limited, peak = heap_peak(lambda: find_studies(dimse_server(port, "MANY")))
    assert limited.ok and len(limited.studies) == 1000 and limited.cut_off == CUT_OFF_OUR_LIMIT
    print(f"C-FIND, 1,000 of 100,000 kept: heap peak {peak / MB:.1f} MB")
    assert peak < 16 * MB  # the PACS offered 100,000: only the 1,000 kept cost memory


@pytest.mark.slow
def test_rest_list_of_100k_studies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOMSERVERS_CACHE_DIR", str(tmp_path / "cache"))
    with peer_process("qido", 100_000) as port:
        limited, peak = heap_peak(lambda: search_studies(rest_server(port)))
        assert limited.ok and len(limited.studies) == 1000 and limited.cut_off
        synced = refresh(rest_server(port, rest_limit=0), full=True)
    assert synced.ok and synced.total == 100_000, synced.diagnosis  # the whole list, cached
    print(f"QIDO-RS, 1,000 of 100,000 kept: heap peak {peak / MB:.1f} MB")
    assert peak < 16 * MB


# -- retrievals far larger than memory should hold ----------------------------------------------


def assert_files(dest: Path, instances: list, size: int) -> None:
    files = sorted(dest.rglob("*.dcm"))
    assert len(files) == len(instances)
    assert {p.stem for p in files} == {i.sop_uid for i in instances}
    assert all(p.stat().st_size > size for p in files)
    assert not list(dest.rglob(".part-*"))


@pytest.mark.slow
def test_c_get_of_384_mb_holds_a_few_images(tmp_path: Path) -> None:
    total, per = 384 * MB, 8 * MB
    instances = big_instances(total, per)
    dest = tmp_path / "dest"
    with peer_process("c-get", total, per) as port:
        result, peak = heap_peak(
            lambda: retrieve(dimse_server(port, "BIGPACS"), instances[0].study_uid, dest)
        )
    assert result.ok and result.received == len(instances), result.diagnosis
    assert_files(dest, instances, per)
    print(f"C-GET of {total / MB:.0f} MB: heap peak {peak / MB:.1f} MB")
    # One data set being received and joined, plus the writer's 64 MB queue: not the study.
    assert peak < 64 * MB + 6 * per + 16 * MB < total


@pytest.mark.slow
def test_wado_rs_of_512_mb_streams(tmp_path: Path) -> None:
    total, per = 512 * MB, 64 * MB
    instances = big_instances(total, per)
    dest = tmp_path / "dest"
    with peer_process("wado-rs", total, per) as port:
        result, peak = heap_peak(
            lambda: retrieve_study(rest_server(port), instances[0].study_uid, dest)
        )
    assert result.ok and result.received == len(instances), result.diagnosis
    assert_files(dest, instances, per)
    print(f"WADO-RS of {total / MB:.0f} MB: heap peak {peak / MB:.1f} MB")
    assert peak < 48 * MB < per  # less than one image: parts stream to disk
