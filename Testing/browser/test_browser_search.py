"""The study browser's server dropdown, search fields, cut-off note and REST cached list.

- the dropdown lists the servers in list order, the default preselected (the first one when
  there is no default), and follows every change of the list;
- the date controls are preset from the server's date filter and can be changed per search;
- a list cut off by the search limit says so and "Load more" brings the rest (real Orthanc,
  C-FIND); a REST server's cached list cut by the REST limit says so too;
- a REST server's cached list shows at once with "last synced …", even with the server down.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from browser_driver import click, dimse_fields, rest_fields, search_done, wait_until

from __feature__ import true_property  # noqa: F401  # isort: skip
from DicomServersLib.date_filters import DateRange, subtract
from DicomServersUI.study_browser import DATE_ANY, DATE_FROM, DATE_LAST


def folder_server(registry: Any, tmp_path: Path, name: str, **fields: Any) -> None:
    folder = tmp_path / name.replace(" ", "_")
    folder.mkdir()
    registry.add(name, load_mode="folder", storage_folder=str(folder), **fields)


def test_dropdown_follows_the_list_order_and_default(
    registry: Any, make_browser: Any, tmp_path: Path
) -> None:
    folder_server(registry, tmp_path, "Hospital PACS")
    folder_server(registry, tmp_path, "Research", is_default=True)
    folder_server(registry, tmp_path, "Teaching")
    browser = make_browser()
    combo = browser.ui.serverComboBox
    assert browser.serverNames() == ["Hospital PACS", "Research", "Teaching"]
    assert combo.currentText == "Research"  # the default is preselected

    registry.move("Teaching", 0)
    assert browser.serverNames() == ["Teaching", "Hospital PACS", "Research"]
    assert combo.currentText == "Research"  # the choice is kept
    registry.rename("Research", "Research PACS")
    assert browser.serverNames() == ["Teaching", "Hospital PACS", "Research PACS"]
    assert combo.currentText == "Research PACS"
    registry.add("New one", load_mode="folder", storage_folder=str(tmp_path))
    assert browser.serverNames()[-1] == "New one"

    browser.setServer("Hospital PACS")
    assert combo.currentText == "Hospital PACS"
    registry.remove("Hospital PACS")  # the chosen server goes: back to the default
    assert combo.currentText == "Research PACS"

    registry.set_default(None)
    second = make_browser()
    assert second.ui.serverComboBox.currentText == "Teaching"  # no default: the first


def test_date_filter_preset_and_per_search_change(
    registry: Any, make_browser: Any, tmp_path: Path
) -> None:
    folder_server(
        registry,
        tmp_path,
        "Last 3 months",
        date_filter="relative",
        filter_relative_count=3,
        filter_relative_unit="months",
    )
    folder_server(
        registry, tmp_path, "Since 2020", date_filter="from_date", filter_from_date="2020-02-29"
    )
    folder_server(registry, tmp_path, "Everything")
    browser = make_browser()
    ui = browser.ui

    browser.setServer("Last 3 months")
    assert ui.dateModeComboBox.currentIndex == DATE_LAST
    assert ui.lastCountSpinBox.value == 3
    assert ui.lastUnitComboBox.currentText == "months"
    assert ui.lastCountSpinBox.visible and not ui.fromDateEdit.visible
    today = dt.date.today()
    assert browser.dateRange() == DateRange(start=subtract(today, 3, "months"))

    ui.lastCountSpinBox.value = 10  # changed for this search only
    ui.lastUnitComboBox.currentIndex = 0
    assert browser.filters().date_range == DateRange(start=today - dt.timedelta(days=10))
    browser.setServer("Since 2020")
    assert ui.dateModeComboBox.currentIndex == DATE_FROM
    assert browser.dateRange() == DateRange(start=dt.date(2020, 2, 29))
    browser.setServer("Last 3 months")  # back: the server's preset again
    assert ui.lastCountSpinBox.value == 3
    browser.setServer("Everything")
    assert ui.dateModeComboBox.currentIndex == DATE_ANY
    assert browser.dateRange() == DateRange()
    assert not ui.fromDateEdit.visible and not ui.lastCountSpinBox.visible


def test_cut_off_note_and_load_more_over_c_find(
    orthanc: Any, sample_studies: Any, registry: Any, make_browser: Any
) -> None:
    registry.add("Limited", search_limit=3, load_mode="manual", **dimse_fields(orthanc))
    browser = make_browser()
    total = len(sample_studies.studies)
    wait_until(lambda: browser.lastResult is not None, 30)
    search_done(browser)
    assert len(browser.studyModel.items) == 3
    assert browser.cutOffReason == "our_limit"
    assert browser.ui.cutOffFrame.visible
    assert "search limit (3)" in browser.ui.cutOffLabel.text
    assert browser.ui.loadMoreButton.enabled

    click(browser.ui.loadMoreButton)
    wait_until(lambda: len(browser.studyModel.items) == 6, 30)
    search_done(browser)
    assert "search limit (6)" in browser.ui.cutOffLabel.text

    click(browser.ui.loadMoreButton)
    wait_until(lambda: len(browser.studyModel.items) == total, 30)
    search_done(browser)
    assert not browser.ui.cutOffFrame.visible
    assert browser.cutOffReason == ""

    # A narrower search fits in the limit: no note.
    browser.ui.modalityComboBox.currentText = "MR"
    click(browser.ui.searchButton)
    search_done(browser)
    wait_until(lambda: browser.lastResult is not None and not browser._jobs, 30)
    modalities = {tuple(s.modalities) for s in browser.studyModel.items}
    assert modalities == {("MR",)}
    assert len(browser.studyModel.items) == sum(
        1 for s in sample_studies.studies if "MR" in s.modalities
    )
    assert not browser.ui.cutOffFrame.visible


def test_rest_cached_list_at_once_then_refresh(
    orthanc_factory: Any, sample_studies: Any, registry: Any, make_browser: Any
) -> None:
    pacs = orthanc_factory(preload=sample_studies)
    registry.add("REST PACS", rest_limit=2, **rest_fields(pacs))
    first = make_browser()
    wait_until(lambda: "last synced" in first.statusText, 30, "the first sync")
    search_done(first)
    assert "refreshing" not in first.statusText
    assert len(first.studyModel.items) == 2  # the two most recent (REST limit)
    assert first.cutOffReason == "rest_limit"
    assert "REST limit 2" in first.ui.cutOffLabel.text
    expected = sorted(
        (s for s in sample_studies.studies if s.study_date),
        key=lambda s: (s.study_date, s.study_time),
        reverse=True,
    )[:2]
    assert {s.study_uid for s in first.studyModel.items} == {s.study_instance_uid for s in expected}

    click(first.ui.loadMoreButton)  # searches the whole database
    wait_until(lambda: len(first.studyModel.items) == len(sample_studies.studies), 30)
    search_done(first)
    assert not first.ui.cutOffFrame.visible

    # The server goes down: the cached list still shows at once, then the refresh fails.
    pacs.kill()
    second = make_browser()
    wait_until(lambda: second.studyModel.items, 10, "the cached list")
    assert len(second.studyModel.items) == 2
    wait_until(lambda: "refresh failed" in second.statusText, 30)
    search_done(second)
    assert "cached list" in second.statusText
    assert len(second.studyModel.items) == 2
