"""Export / Import buttons and the DICOM TLS settings of the panel, driven as a user would
(issue 8 §2 and §3). Dialogs are answered like a user: the file dialog gets a typed path, the
confirmation shows the dry-run plan and is accepted or cancelled. Assertions are on the file
written and on what a fresh settings store reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ui_driver as ud
from __feature__ import true_property  # noqa: F401
from DicomServersLib.secret_store import secret_key
from DicomServersLib.server_exchange import export_document


def error_of(panel, label_name: str) -> str:
    label = getattr(panel.ui, label_name)
    return label.text if label.visible else ""


def write_export(path: Path, entries: list[dict]) -> Path:
    path.write_text(
        json.dumps({"format": "dicomservers-servers", "version": 1, "servers": entries}),
        encoding="utf-8",
    )
    return path


# -- Export… ------------------------------------------------------------------------------------


def test_export_writes_the_list_without_passwords(make_panel, three_servers, tmp_path):
    three_servers.update("Research Orthanc", rest_password="s3cret-of-the-test")
    panel = make_panel()
    target = tmp_path / "shared" / "servers.json"
    target.parent.mkdir()
    with ud.choosing_folder(str(target)), ud.answering("okButton") as done:
        ud.click(panel.ui.exportServersButton)
    assert "Exported 3 server(s)" in done.text and "not in the file" in done.informative_text
    text = target.read_text(encoding="utf-8")
    assert "s3cret-of-the-test" not in text
    document = json.loads(text)
    assert [s["name"] for s in document["servers"]] == [
        "Hospital PACS",
        "Research Orthanc",
        "Teaching files",
    ]
    assert all("rest_password" not in s and "id" not in s for s in document["servers"])


def test_export_cancelled_writes_nothing(make_panel, three_servers, tmp_path, monkeypatch):
    panel = make_panel()
    monkeypatch.setattr(panel, "chooseFile", lambda title, save=False: "")
    ud.click(panel.ui.exportServersButton)
    assert list(tmp_path.rglob("*.json")) == []


# -- Import… ------------------------------------------------------------------------------------


@pytest.fixture
def incoming(three_servers, tmp_path) -> Path:
    """A file adding one server, changing one (host and port) and repeating one unchanged."""
    document = export_document(three_servers.servers)
    entries = document["servers"]
    entries[0].update(host="10.0.0.9", port=11112)  # Hospital PACS changed
    entries.pop(2)  # Teaching files not in the file: left alone
    entries.append({"name": "Night PACS", "host": "10.1.1.1", "called_ae_title": "NIGHT"})
    return write_export(tmp_path / "incoming.json", entries)


def test_import_shows_the_plan_then_applies_it(
    make_panel, three_servers, incoming, stored, secrets
):
    three_servers.update("Hospital PACS", rest_password="kept-password")
    hospital_id = three_servers.get("Hospital PACS").id
    panel = make_panel()
    with ud.choosing_folder(str(incoming)), ud.answering("importButton") as plan:
        ud.click(panel.ui.importServersButton)
    assert plan.title == "Import DICOM servers"
    assert "1 added, 1 changed, 1 unchanged" in plan.text
    assert "Added: Night PACS" in plan.informative_text
    assert "Changed: Hospital PACS (Remote IP, Remote port)" in plan.informative_text
    assert "Unchanged: Research Orthanc" in plan.informative_text
    assert sorted(plan.buttons) == ["Cancel", "Import"]
    assert ud.entry_names(panel) == [
        "Hospital PACS",
        "Research Orthanc",
        "Teaching files",
        "Night PACS",
    ]
    saved = stored()
    hospital = saved.get("Hospital PACS")
    assert (hospital.host, hospital.port, hospital.id) == ("10.0.0.9", 11112, hospital_id)
    assert secrets.get(secret_key(hospital_id, "rest_password")) == "kept-password"
    assert saved.get("Night PACS").called_ae_title == "NIGHT"


def test_import_cancelled_changes_nothing(make_panel, three_servers, incoming, stored):
    panel = make_panel()
    with ud.choosing_folder(str(incoming)), ud.answering("cancelButton"):
        ud.click(panel.ui.importServersButton)
    assert stored().names() == ["Hospital PACS", "Research Orthanc", "Teaching files"]
    assert stored().get("Hospital PACS").host == "10.0.0.5"


def test_import_with_an_invalid_entry_applies_nothing(make_panel, three_servers, tmp_path, stored):
    path = write_export(
        tmp_path / "bad.json",
        [
            {"name": "Good new", "host": "10.2.2.2"},
            {"name": "Bad port", "port": 0},
            {"name": "Hospital PACS", "called_ae_title": "WAY-TOO-LONG-AE-TITLE"},
        ],
    )
    panel = make_panel()
    with ud.choosing_folder(str(path)), ud.answering("OK") as error:
        ud.click(panel.ui.importServersButton)
    assert "Nothing was imported" in error.text and "2 error(s)" in error.text
    assert "entry 2 (Bad port): Remote port (port): must be from 1 to 65535" in error.text
    assert "entry 3 (Hospital PACS): AE Title (called_ae_title)" in error.text
    assert stored().names() == ["Hospital PACS", "Research Orthanc", "Teaching files"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [("{not json", "is not valid JSON"), ('{"format": "other", "servers": []}', "format")],
)
def test_import_of_a_file_that_is_not_a_server_list(
    make_panel, three_servers, tmp_path, stored, content, reason
):
    path = tmp_path / "junk.json"
    path.write_text(content, encoding="utf-8")
    panel = make_panel()
    with ud.choosing_folder(str(path)), ud.answering("OK") as error:
        ud.click(panel.ui.importServersButton)
    assert "Nothing was imported" in error.text and reason in error.text
    assert stored().names() == ["Hospital PACS", "Research Orthanc", "Teaching files"]


def test_import_of_the_same_list_says_nothing_to_import(
    make_panel, three_servers, tmp_path, stored
):
    path = write_export(tmp_path / "same.json", export_document(three_servers.servers)["servers"])
    panel = make_panel()
    with ud.choosing_folder(str(path)), ud.answering("okButton") as info:
        ud.click(panel.ui.importServersButton)
    assert "Nothing to import" in info.text
    assert stored().names() == ["Hospital PACS", "Research Orthanc", "Teaching files"]


# -- DICOM TLS and the REST CA bundle --------------------------------------------------------


TLS_WIDGETS = (
    "tlsCaFileLineEdit",
    "tlsCertFileLineEdit",
    "tlsKeyFileLineEdit",
    "tlsVerifyCheckBox",
)


def test_tls_settings_are_enabled_by_their_toggle_and_saved(make_panel, registry, stored):
    registry.add("Main PACS")
    panel = make_panel()
    ud.click_entry(panel, 0)
    assert not panel.ui.tlsEnabledCheckBox.checked
    assert not any(getattr(panel.ui, name).enabled for name in TLS_WIDGETS)
    assert panel.ui.tlsVerifyCheckBox.checked  # verification is on by default
    ud.click(panel.ui.tlsEnabledCheckBox)
    assert all(getattr(panel.ui, name).enabled for name in TLS_WIDGETS)
    ud.type_into(panel.ui.tlsCaFileLineEdit, "/etc/pki/hospital-ca.pem")
    ud.type_into(panel.ui.tlsCertFileLineEdit, "/etc/pki/slicer.pem")
    ud.type_into(panel.ui.tlsKeyFileLineEdit, "/etc/pki/slicer.key")
    saved = stored().get("Main PACS")
    assert saved.tls_enabled and saved.tls_verify
    assert (saved.tls_ca_file, saved.tls_cert_file, saved.tls_key_file) == (
        "/etc/pki/hospital-ca.pem",
        "/etc/pki/slicer.pem",
        "/etc/pki/slicer.key",
    )
    ud.click(panel.ui.tlsVerifyCheckBox)
    assert stored().get("Main PACS").tls_verify is False


def test_tls_file_must_be_an_absolute_path(make_panel, registry, stored):
    registry.add("Main PACS", tls_enabled=True)
    panel = make_panel()
    ud.click_entry(panel, 0)
    ud.type_into(panel.ui.tlsCaFileLineEdit, "ca.pem")
    assert "must be an absolute file path" in error_of(panel, "tlsCaFileErrorLabel")
    assert stored().get("Main PACS").tls_ca_file == ""


def test_rest_ca_bundle_follows_the_rest_toggle(make_panel, registry, stored):
    registry.add("Main PACS")
    panel = make_panel()
    ud.click_entry(panel, 0)
    assert not panel.ui.restCaBundleLineEdit.enabled
    ud.click(panel.ui.restEnabledCheckBox)
    ud.type_into(panel.ui.restUrlLineEdit, "https://pacs.example.org/dicom-web")
    ud.type_into(panel.ui.restCaBundleLineEdit, "/etc/ssl/hospital.pem")
    assert stored().get("Main PACS").rest_ca_bundle == "/etc/ssl/hospital.pem"
