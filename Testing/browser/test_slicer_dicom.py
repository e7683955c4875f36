"""The Slicer side of the study browser, with the Slicer boundary faked (no Slicer runs here).

The fakes (``Testing/harness/fake_slicer.py`` + ``fake_dicom_module.py``) stand in for
``slicer``, ``ctk`` and ``DICOMLib`` only; settings are a real INI file read back with a second
PySide6 ``QSettings`` (visual table: JSON parsed from the text, as CTK's
``QJsonDocument::fromJson``; legacy table: QVariantMaps), files and peers are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_driver import (
    click,
    dcm_files,
    rest_fields,
    search_done,
    transfer_finished,
    wait_until,
)
from harness import fake_dicom_module, fake_slicer
from PySide6 import QtCore, QtWidgets
from rig.studies import write_sample_studies

from __feature__ import true_property  # noqa: F401  # isort: skip
from DicomServersLib.registry import ServerRegistry
from DicomServersLib.secret_store import MemorySecretStore
from DicomServersLib.validation import ValidationError


@pytest.fixture
def slicer_fakes(qapp: Any, tmp_path: Path) -> Iterator[fake_dicom_module.FakeDicom]:
    """Slicer under ``--testing`` with its DICOM database and module faked."""
    with (
        fake_slicer.install(tmp_path / "Slicer.ini") as fake,
        fake_dicom_module.install(fake, tmp_path / "SlicerDICOMDatabase") as dicom,
    ):
        yield dicom


def fresh_settings(dicom: fake_dicom_module.FakeDicom) -> QtCore.QSettings:
    dicom.fake.settings.sync()
    return QtCore.QSettings(str(dicom.fake.settings_path), QtCore.QSettings.Format.IniFormat)


def visual_rows(settings: QtCore.QSettings) -> list[dict[str, Any]]:
    """The visual browser's table as CTK reads it (count, then JSON text per row)."""
    count = int(settings.value("DICOM/ServerNodeCount"))
    return [json.loads(str(settings.value(f"DICOM/ServerNodes/{i}"))) for i in range(count)]


def legacy_rows(settings: QtCore.QSettings) -> list[dict[str, Any]]:
    """The legacy dialog's table (count, then a QVariantMap per row)."""
    count = int(settings.value("ServerNodeCount"))
    return [dict(settings.value(f"ServerNodes/{i}")) for i in range(count)]


def test_slicer_tables_follow_every_change_of_the_list(
    slicer_fakes: fake_dicom_module.FakeDicom,
) -> None:
    from DicomServersUI.slicer_dicom import SlicerServerTablesSync

    dicom = slicer_fakes
    dicom.createDicomModuleWidget()
    registry = ServerRegistry()
    sync = SlicerServerTablesSync(registry)
    registry.add(
        "Hospital PACS",
        host="10.0.0.5",
        port=104,
        called_ae_title="HOSPITAL",
        calling_ae_title="SLICER1",
        retrieve_method="c-move",
        move_destination_ae_title="SLICERMOVE",
        storage_port=11120,
    )
    registry.add(
        "Research", host="127.0.0.1", port=4242, called_ae_title="ORTHANC", is_default=True
    )
    settings = fresh_settings(dicom)

    visual = visual_rows(settings)
    assert [row["Name"] for row in visual] == ["Hospital PACS", "Research"]
    assert visual[0]["Retrieve Protocol"] == "CMOVE"
    assert visual[1]["Retrieve Protocol"] == "CGET"
    assert visual[0]["Called AETitle"] == "HOSPITAL"
    assert visual[0]["Calling AETitle"] == "SLICER1"
    assert visual[0]["Address"] == "10.0.0.5"
    assert visual[0]["Port"] == "104"
    assert all(row["QueryRetrieveCheckState"] == 2 for row in visual)
    legacy = legacy_rows(settings)
    assert [row["Name"] for row in legacy] == ["Hospital PACS", "Research"]
    assert [row["CheckState"] for row in legacy] == [0, 2]  # the default server is checked
    assert [row["CGET"] for row in legacy] == [0, 2]
    assert settings.value("CallingAETitle") == "SLICER"  # the default server's

    # The live widgets re-read the tables (the visual one also saves, for its scheduler).
    assert dicom.calls.visual_reads == 2 and dicom.calls.visual_saves == 2
    assert dicom.calls.legacy_reads == 2
    assert [row["Name"] for row in dicom.visual.rows] == ["Hospital PACS", "Research"]
    assert [row["Name"] for row in dicom.legacy.rows] == ["Hospital PACS", "Research"]

    registry.move("Research", 0)
    assert [row["Name"] for row in visual_rows(fresh_settings(dicom))] == [
        "Research",
        "Hospital PACS",
    ]
    assert [row["Name"] for row in dicom.legacy.rows] == ["Research", "Hospital PACS"]

    registry.remove("Hospital PACS")
    settings = fresh_settings(dicom)
    assert [row["Name"] for row in visual_rows(settings)] == ["Research"]
    assert [row["Name"] for row in legacy_rows(settings)] == ["Research"]
    assert not settings.contains("ServerNodes/1")  # no stale rows left behind
    assert not settings.contains("DICOM/ServerNodes/1")
    assert sync.warnings == []

    # Slicer's own listener on the port our C-MOVE listener uses: the user is warned.
    dicom.fake.settings.setValue("DICOM/RunListenerAtStart", "true")
    registry.update("Research", retrieve_method="c-move")
    assert any("11113" in warning for warning in sync.warnings)
    sync.remove()
    registry.add("Later", host="127.0.0.1")
    assert [row["Name"] for row in visual_rows(fresh_settings(dicom))] == ["Research"]


def test_dicom_module_gets_our_dropdown_when_opened(
    slicer_fakes: fake_dicom_module.FakeDicom,
) -> None:
    from DicomServersUI.slicer_dicom import HOOK_OBJECT_NAME, SlicerIntegration

    dicom = slicer_fakes
    registry = ServerRegistry()
    # A fresh installation (our list empty) leaves the user's own Slicer tables alone.
    dicom.fake.settings.setValue("DICOM/ServerNodeCount", 1)
    dicom.fake.settings.setValue("DICOM/ServerNodes/0", json.dumps({"Name": "Users own"}))
    untouched = SlicerIntegration(registry, lambda name: None)
    untouched.install()
    assert [row["Name"] for row in visual_rows(fresh_settings(dicom))] == ["Users own"]
    untouched.remove()

    registry.add("Hospital PACS", host="10.0.0.5")
    registry.add("Research", host="127.0.0.1", is_default=True)
    opened: list[str] = []
    integration = SlicerIntegration(registry, opened.append)
    integration.install()  # the DICOM module widget does not exist yet
    assert [row["Name"] for row in visual_rows(fresh_settings(dicom))] == [
        "Hospital PACS",
        "Research",
    ]
    dicom.selector.moduleSelected.emit("Data")
    assert integration.hook.serverComboBox is None

    dicom.createDicomModuleWidget()
    dicom.selector.moduleSelected.emit("DICOM")
    frame = dicom.dicomWidget.ui.networkingFrame
    hooks = frame.findChildren(QtWidgets.QWidget, HOOK_OBJECT_NAME)
    assert len(hooks) == 1
    combo = integration.hook.serverComboBox
    assert [combo.itemText(i) for i in range(combo.count)] == ["Hospital PACS", "Research"]
    assert combo.currentText == "Research"  # the default, preselected

    registry.add("Teaching", host="127.0.0.1")
    registry.move("Teaching", 0)
    assert [combo.itemText(i) for i in range(combo.count)] == [
        "Teaching",
        "Hospital PACS",
        "Research",
    ]
    assert combo.currentText == "Research"
    frame.show()
    combo.currentIndex = 1
    click(integration.hook.openButton)
    assert opened == ["Hospital PACS"]

    assert not integration.hook.warningLabel.visible
    dicom.fake.settings.setValue("DICOM/RunListenerAtStart", "true")
    registry.update("Research", retrieve_method="c-move")  # same port as Slicer's listener
    assert integration.hook.warningLabel.visible
    assert "port 11113" in integration.hook.warningLabel.text

    integration.hookDicomModule()  # once only
    assert len(frame.findChildren(QtWidgets.QWidget, HOOK_OBJECT_NAME)) == 1
    integration.remove()


def test_browser_imports_in_place_into_slicer_database_and_loads(
    slicer_fakes: fake_dicom_module.FakeDicom, tmp_path: Path
) -> None:
    from DicomServersUI.slicer_dicom import SlicerDicomHost
    from DicomServersUI.study_browser import StudyBrowser

    dicom = slicer_fakes
    samples = write_sample_studies(tmp_path / "pacs-folder")
    registry = ServerRegistry()
    registry.add("PACS folder", load_mode="folder", storage_folder=str(samples.root))
    host = SlicerDicomHost()
    assert host.destination == Path(dicom.database.databaseDirectory) / "DicomServers"
    browser = StudyBrowser(registry, host=host)
    try:
        browser.widget.show()
        wait_until(lambda: len(browser.studyModel.items) == len(samples.studies), 30)
        search_done(browser)
        study = samples.study("ACC0002")
        browser.selectStudy(browser.studyModel.rowOf(study.study_instance_uid))
        wait_until(lambda: browser.transferModel.items, 10)
        status = transfer_finished(browser, browser.transferModel.items[0].request_id)
        assert status.state == "done"
        wait_until(lambda: dicom.database.seriesForStudy(study.study_instance_uid), 10)
        files, copy, background = dicom.calls.index[-1]
        assert sorted(files) == sorted(str(p) for p in study.paths)  # the folder's own files
        assert copy is False and background is True
        row = browser.studyModel.rowOf(study.study_instance_uid)
        wait_until(
            lambda: browser.studyModel.data(browser.studyModel.index(row, 8)) == "In Slicer", 10
        )
        wait_until(lambda: len(browser.seriesModel.items) == len(study.series), 10)
        click(browser.ui.loadButton)
        wait_until(lambda: dicom.calls.load, 10, "DICOMUtils.loadSeriesByUID")
        assert dicom.calls.load == [[s.series_instance_uid for s in study.series]]
        assert "Loaded 2 series" in browser.statusText
    finally:
        browser.cleanup()
        browser.widget.close()


def test_console_api_query_retrieve_load_send(
    slicer_fakes: fake_dicom_module.FakeDicom,
    orthanc: Any,
    orthanc_factory: Any,
    sample_studies: Any,
    tmp_path: Path,
) -> None:
    dicom = slicer_fakes
    module = fake_slicer.import_module_file()
    logic = module.DicomServersLogic(secrets=MemorySecretStore(values={}))
    logic.registry.add("PACS", **rest_fields(orthanc))
    empty = orthanc_factory()
    logic.registry.add("Archive", **rest_fields(empty))
    assert [s.name for s in logic.servers()] == ["PACS", "Archive"]

    found = logic.query("PACS", patient_id="DS-P005")
    assert found.ok, found.diagnosis
    assert [s.accession_number for s in found.studies] == ["ACC0007"]
    study = sample_studies.study("ACC0007")
    with pytest.raises(ValidationError, match="patient: unknown search keyword"):
        logic.query("PACS", patient="Doe")
    with pytest.raises(KeyError, match="no server named 'Nowhere'"):
        logic.query("Nowhere")

    result = logic.retrieve("PACS", study.study_instance_uid)
    assert result.ok, result.diagnosis
    destination = Path(dicom.database.databaseDirectory) / "DicomServers"
    assert len(dcm_files(destination)) == len(study.instances)
    assert dicom.calls.waits == 1  # the console waits for the import
    series = logic.series("PACS", study.study_instance_uid)
    assert [s.series_uid for s in series] == [s.series_instance_uid for s in study.series]
    assert dicom.database.seriesForStudy(study.study_instance_uid) == sorted(
        s.series_uid for s in series
    )
    nodes = logic.loadSeries(series[0].series_uid)
    assert nodes == ["vtkMRMLScalarVolumeNode1"]

    sent = logic.send("Archive", [study.directory])
    assert sent.ok, sent.diagnosis
    assert len(sent.items) == len(study.instances)
    assert empty.study_uids() == {study.study_instance_uid}


def test_module_panel_opens_the_study_browser(
    slicer_fakes: fake_dicom_module.FakeDicom, tmp_path: Path
) -> None:
    module = fake_slicer.import_module_file()
    logic = module.sharedLogic()
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    logic.registry.add("Folder PACS", load_mode="folder", storage_folder=str(folder))
    parent = QtWidgets.QWidget()
    QtWidgets.QVBoxLayout(parent)
    widget = module.DicomServersWidget(parent)
    widget.setup()
    try:
        section = widget.studyBrowserSection
        assert section.browser is None  # nothing is searched until the section opens
        assert section.button.collapsed
        browser = widget.showStudyBrowser("Folder PACS")
        assert not section.button.collapsed
        assert browser.currentServer().name == "Folder PACS"
        assert browser.queue is logic.transferQueue
        search_done(browser)
        assert browser.statusText == "0 studies found in the PACS folder of Folder PACS."
    finally:
        widget.cleanup()
        parent.deleteLater()


def test_in_slicer_self_test_round_trip_on_the_fakes(
    slicer_fakes: fake_dicom_module.FakeDicom,
) -> None:
    """The module's self-test (add, query, retrieve, load) against the embedded demo PACS.

    In Slicer it runs under ``Slicer --testing``; here the same code runs on the faked
    DICOM boundary, with the real demo PACS (pynetdicom, loopback) and a real C-GET.
    """
    dicom = slicer_fakes
    module = fake_slicer.import_module_file()
    test = module.DicomServersTest()
    test.setUp()
    try:
        test.test_AddQueryRetrieveLoadDemoPacs()
    finally:
        test.tearDown()
    assert dicom.calls.waits == 1  # imported and waited for
    assert len(dicom.calls.load) == 1
