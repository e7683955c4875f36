"""The study browser through each loading mode, against real peers (Orthanc, DCMTK storescp).

- manual: selecting a study lists its series and nothing else; Orthanc is asked for no file
  until Transfer is pressed;
- auto: selecting a study retrieves the whole study in the background (REST and C-GET);
- folder: the study loads from Orthanc's storage folder with Orthanc stopped, and from a
  folder written by DCMTK's ``storescp``;
- cancel: a running and a queued transfer are cancelled, nothing partial is left, a new
  Transfer completes the study.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from browser_driver import (
    LOG_HTTP_LUA,
    click,
    dcm_files,
    dimse_fields,
    http_requests,
    rest_fields,
    search_done,
    settle,
    transfer_finished,
    wait_until,
)
from PySide6 import QtCore
from PySide6.QtTest import QTest
from rig.dcmtk import dcmtk_binary
from rig.studies import make_big_ct_study

from __feature__ import true_property  # noqa: F401  # isort: skip
from DicomServersLib.transfer_queue import CANCELLED, DONE, RUNNING
from DicomServersUI.study_browser import SELECT_DELAY_MS


def click_row(view: Any, row: int) -> None:
    """Click the first cell of ``row`` in a table view, as the user would."""
    index = view.model().index(row, 0)
    view.scrollTo(index)
    point = view.visualRect(index).center()
    QTest.mouseClick(
        view.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        QtCore.Qt.KeyboardModifier.NoModifier,
        point,
    )


def open_study(browser: Any, study_uid: str) -> None:
    """Click a study in the result list and wait for its series."""
    row = browser.studyModel.rowOf(study_uid)
    assert row >= 0, f"study {study_uid} is not listed"
    click_row(browser.ui.studyTableView, row)
    wait_until(lambda: browser.currentStudy() is not None, 5, "the study to be selected")
    assert browser.currentStudy().study_uid == study_uid
    wait_until(lambda: browser.seriesModel.items, 20, "the series to be listed")


def sop_uids(files: list[Path]) -> set[str]:
    return {f.stem for f in files}


def test_manual_mode_moves_nothing_before_transfer(
    orthanc_factory: Any, sample_studies: Any, registry: Any, make_browser: Any, dest: Path
) -> None:
    pacs = orthanc_factory(preload=sample_studies, lua_scripts=[LOG_HTTP_LUA])
    registry.add("Manual PACS", load_mode="manual", **rest_fields(pacs))
    browser = make_browser()
    study = sample_studies.study("ACC0001")
    wait_until(lambda: len(browser.studyModel.items) == len(sample_studies.studies), 30)
    search_done(browser)
    assert "last synced" in browser.statusText
    assert browser.ui.modeLabel.text.startswith("Images are transferred only when you press")

    open_study(browser, study.study_instance_uid)
    settle(2 * SELECT_DELAY_MS + 300)

    assert browser.queue.statuses() == []
    assert browser.transferModel.items == []
    assert dcm_files(dest) == []
    downloads = [r for r in http_requests(pacs) if "/file" in r or "/archive" in r]
    assert downloads == [], "Orthanc was asked for image data before Transfer was pressed"
    assert browser.ui.transferButton.enabled

    click(browser.ui.transferButton)
    wait_until(lambda: browser.transferModel.items, 5)
    status = transfer_finished(browser, browser.transferModel.items[0].request_id)
    assert status.state == DONE, status.result.diagnosis
    files = dcm_files(dest)
    assert sop_uids(files) == {i.sop_instance_uid for i in study.instances}
    downloads = [r for r in http_requests(pacs) if r.endswith("/file")]
    assert len(downloads) == len(study.instances)
    assert sorted(browser.host.imported[-1][0]) == sorted(map(str, files))
    assert browser.host.imported[-1][1] is False
    settle(100)
    assert (
        browser.studyModel.data(
            browser.studyModel.index(browser.studyModel.rowOf(study.study_instance_uid), 8)
        )
        == "Retrieved"
    )


@pytest.mark.parametrize("protocol", ["rest", "c-get"])
def test_auto_mode_selection_retrieves_the_study(
    protocol: str,
    orthanc: Any,
    sample_studies: Any,
    registry: Any,
    make_browser: Any,
    dest: Path,
) -> None:
    fields = rest_fields(orthanc) if protocol == "rest" else dimse_fields(orthanc)
    registry.add("Auto PACS", **fields)
    browser = make_browser()
    assert browser.ui.modeLabel.text == "Selecting a study retrieves it in the background."
    wait_until(lambda: len(browser.studyModel.items) == len(sample_studies.studies), 30)
    search_done(browser)
    study = sample_studies.study("ACC0002")

    open_study(browser, study.study_instance_uid)
    wait_until(lambda: browser.transferModel.items, 10, "the automatic transfer")
    status = transfer_finished(browser, browser.transferModel.items[0].request_id)
    assert status.state == DONE, status.result.diagnosis
    assert status.request.series_uids == ()  # the whole study
    files = dcm_files(dest / study.study_instance_uid)
    assert sop_uids(files) == {i.sop_instance_uid for i in study.instances}
    assert status.instances_done == len(study.instances)
    assert status.bytes_done > 0 or protocol == "c-get"
    assert sorted(browser.host.imported[-1][0]) == sorted(map(str, files))
    settle(3 * SELECT_DELAY_MS)
    assert len(browser.transferModel.items) == 1  # one selection, one transfer

    # Load one series: already here, so it is loaded without a new download.
    browser.selectSeries([0])
    assert browser.ui.loadButton.enabled
    click(browser.ui.loadButton)
    first_series = browser.seriesModel.series(0).series_uid
    wait_until(lambda: browser.host.loaded, 30, "the series to be loaded")
    assert browser.host.loaded == [[first_series]]
    assert len(dcm_files(dest)) == len(study.instances)


def test_folder_mode_reads_orthanc_storage_with_orthanc_stopped(
    orthanc_factory: Any, sample_studies: Any, registry: Any, make_browser: Any, dest: Path
) -> None:
    pacs = orthanc_factory(preload=sample_studies)
    storage = pacs.storage_dir
    pacs.stop()
    assert not pacs.running
    registry.add(
        "Orthanc folder", load_mode="folder", storage_folder=str(storage), **dimse_fields(pacs)
    )
    browser = make_browser(inPlace=True)
    assert browser.ui.modeLabel.text.startswith("Images are read from the PACS storage folder")
    wait_until(lambda: len(browser.studyModel.items) == len(sample_studies.studies), 30)
    search_done(browser)
    assert "PACS folder" in browser.statusText
    study = sample_studies.study("ACC0005")  # Japanese name (ISO 2022 IR 87)

    open_study(browser, study.study_instance_uid)
    assert [s.series_uid for s in browser.seriesModel.items] == [
        s.series_instance_uid for s in study.series
    ]
    wait_until(lambda: browser.transferModel.items, 10, "the folder load")
    status = transfer_finished(browser, browser.transferModel.items[0].request_id)
    assert status.state == DONE, status.result.diagnosis
    assert status.request.dest is None  # in place: nothing copied
    files = [Path(f) for f in browser.host.imported[-1][0]]
    assert browser.host.imported[-1][1] is True
    assert len(files) == len(study.instances)
    assert all(storage in f.parents for f in files)
    assert dcm_files(dest) == []

    click(browser.ui.loadButton)
    wait_until(lambda: browser.host.loaded, 30, "the series to be loaded")
    assert browser.host.loaded[-1] == [s.series_instance_uid for s in study.series]


def test_folder_mode_reads_a_storescp_folder(
    storescp_factory: Any, sample_studies: Any, registry: Any, make_browser: Any, dest: Path
) -> None:
    scp = storescp_factory(ae_title="STORESCP")
    study = sample_studies.study("ACC0001")
    other = sample_studies.study("ACC0003")
    paths = [str(p) for p in study.paths + other.paths]
    subprocess.run(
        [dcmtk_binary("storescu"), "-aec", "STORESCP", "127.0.0.1", str(scp.port), *paths],
        check=True,
        timeout=60,
        capture_output=True,
    )
    scp.wait_for_files(len(paths))
    registry.add(
        "storescp folder",
        load_mode="folder",
        storage_folder=str(scp.output_dir),
        host="127.0.0.1",
        port=scp.port,
        called_ae_title="STORESCP",
    )
    browser = make_browser(inPlace=False)
    wait_until(lambda: len(browser.studyModel.items) == 2, 30)
    search_done(browser)

    # The search fields work on the folder too.
    browser.ui.patientNameLineEdit.text = "müller"
    click(browser.ui.searchButton)
    wait_until(lambda: len(browser.studyModel.items) == 1, 10)
    search_done(browser)

    open_study(browser, study.study_instance_uid)
    wait_until(lambda: browser.transferModel.items, 10, "the folder load")
    status = transfer_finished(browser, browser.transferModel.items[0].request_id)
    assert status.state == DONE, status.result.diagnosis
    files = dcm_files(dest / study.study_instance_uid)
    assert sop_uids(files) == {i.sop_instance_uid for i in study.instances}
    assert browser.studyModel.data(browser.studyModel.index(0, 8)) == "PACS folder"


def test_cancel_running_and_queued_transfers(
    orthanc_factory: Any,
    sample_studies: Any,
    registry: Any,
    make_browser: Any,
    dest: Path,
    tmp_path: Path,
) -> None:
    big = make_big_ct_study(tmp_path / "big", slices=300, rows=256, columns=256, seed=7)
    small = sample_studies.study("ACC0001")
    pacs = orthanc_factory(preload=[*big.paths, *small.paths])
    registry.add("Manual PACS", load_mode="manual", **rest_fields(pacs))
    browser = make_browser()
    wait_until(lambda: len(browser.studyModel.items) == 2, 30)
    search_done(browser)

    open_study(browser, big.study_instance_uid)
    click(browser.ui.transferButton)
    open_study(browser, small.study_instance_uid)
    click(browser.ui.transferButton)
    wait_until(lambda: len(browser.transferModel.items) == 2, 5)
    running, queued = browser.transferModel.items
    assert running.request.study_uid == big.study_instance_uid

    def started() -> bool:
        status = browser.queue.status(running.request_id)
        return status.state == RUNNING and status.progress.completed > 0

    wait_until(started, 30, "the big transfer to start")
    assert browser.queue.status(queued.request_id).state == "queued"
    assert "1 running, 1 queued" in browser.ui.transferSummaryLabel.text
    click_row(browser.ui.transferTableView, 1)  # the queued one
    assert browser.ui.cancelTransferButton.enabled
    click(browser.ui.cancelTransferButton)
    assert browser.queue.status(queued.request_id).state == CANCELLED
    assert browser.queue.status(running.request_id).state == RUNNING
    click(browser.ui.cancelAllButton)  # the running one

    first = transfer_finished(browser, running.request_id)
    second = transfer_finished(browser, queued.request_id)
    assert first.state == CANCELLED
    assert first.result.cancelled
    assert first.result.received < len(big.instances)
    assert second.state == CANCELLED
    assert second.result.diagnosis == "Cancelled before it started."
    assert list(dest.rglob(".part-*")) == []  # nothing partial left behind
    kept = dcm_files(dest / big.study_instance_uid)
    assert len(kept) < len(big.instances)
    assert not (dest / small.study_instance_uid).exists()

    # Transfer again: only what is missing moves, and the study is complete.
    open_study(browser, big.study_instance_uid)
    click(browser.ui.transferButton)
    wait_until(lambda: len(browser.transferModel.items) == 3, 5)
    third = transfer_finished(browser, browser.transferModel.items[2].request_id)
    assert third.state == DONE, third.result.diagnosis
    assert third.result.skipped == len(kept)
    assert len(dcm_files(dest / big.study_instance_uid)) == len(big.instances)
