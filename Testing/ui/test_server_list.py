"""The server list and its actions, driven as a user would (spec: "Dicom Servers" and
"Dicom Servers Actions"). Each test quotes the sentence of the specification it checks."""

from __future__ import annotations

import json

import pytest
import ui_driver as ud
from __feature__ import true_property  # noqa: F401
from DicomServersLib.secret_store import secret_key
from DicomServersLib.server import DicomServer
from DicomServersUI import icons


def test_list_shows_the_servers_in_order_with_the_default_marked(make_panel, three_servers):
    """Spec: "Manage ... DICOM PACS servers": the ordered list; the default server is marked."""
    panel = make_panel()
    assert ud.entry_names(panel) == ["Hospital PACS", "Research Orthanc", "Teaching files"]
    marks = [ud.row_child(panel, row, "defaultLabel").visible for row in range(3)]
    assert marks == [False, True, False]
    assert ud.row_child(panel, 1, "nameLabel").font.bold()
    assert "Default server" in ud.row_child(panel, 1, "defaultLabel").toolTip
    # Nothing is selected at first: the configuration is hidden and the user is told what to do.
    assert not panel.ui.configurationWidget.visible
    assert panel.ui.noSelectionLabel.visible
    assert "Select a server" in panel.ui.noSelectionLabel.text


def test_every_entry_has_an_unknown_connection_status_until_tested(make_panel, three_servers):
    """Each entry shows a connection status icon; its tooltip gives the time of the last test."""
    panel = make_panel()
    for row in range(3):
        status = ud.row_child(panel, row, "statusIconLabel")
        assert status.visible
        assert not status.pixmap.isNull()
        assert status.property("connectionState") == "unknown"
        assert status.toolTip == "Connection not tested yet"


def test_selecting_an_entry_shows_its_configuration(make_panel, three_servers):
    """Spec: "The configuration of each DICOM server can be seen by selecting it from the list by
    pressing on an entry." """
    panel = make_panel()
    ud.click_entry(panel, 0)
    assert panel.ui.configurationWidget.visible
    assert not panel.ui.noSelectionLabel.visible
    assert panel.ui.nameLineEdit.text == "Hospital PACS"
    assert panel.ui.hostLineEdit.text == "10.0.0.5"
    assert panel.ui.portLineEdit.text == "104"
    assert panel.ui.calledAeTitleLineEdit.text == "HOSPITAL"
    ud.click_entry(panel, 1)
    assert panel.ui.nameLineEdit.text == "Research Orthanc"
    assert panel.ui.isDefaultCheckBox.checked
    assert panel.ui.restEnabledCheckBox.checked
    assert panel.ui.restUrlLineEdit.text == "http://127.0.0.1:8042"


def test_ctrl_click_on_the_selected_entry_deselects_it_and_hides_the_configuration(
    make_panel, three_servers
):
    """Spec: "Deselect a server to hide its information by holding the CTRL key and pressing on the
    selected entry in the list." """
    panel = make_panel()
    ud.click_entry(panel, 2)
    assert panel.ui.configurationWidget.visible
    ud.click_entry(panel, 2, ctrl=True)
    assert panel.ui.serverListWidget.selectedItems() == []
    assert not panel.ui.configurationWidget.visible
    assert panel.ui.noSelectionLabel.visible
    assert panel.currentServer() is None
    # Without Ctrl, pressing the selected entry keeps it selected.
    ud.click_entry(panel, 2)
    ud.click_entry(panel, 2)
    assert panel.currentServer().name == "Teaching files"
    assert panel.ui.configurationWidget.visible


def test_delete_icon_asks_first_and_cancel_keeps_the_server(make_panel, three_servers, stored):
    """Spec: "Remove servers by using the delete icon next to each entry." Deleting asks first."""
    panel = make_panel()
    delete = ud.row_child(panel, 0, "deleteButton")
    assert not delete.icon.isNull()
    assert delete.toolTip == "Delete “Hospital PACS”…"
    with ud.answering("cancelButton") as dialog:
        ud.click(delete)
    assert "Hospital PACS" in dialog.text
    assert sorted(dialog.buttons) == ["Cancel", "Delete"]
    assert ud.entry_names(panel) == ["Hospital PACS", "Research Orthanc", "Teaching files"]
    assert stored().names() == ["Hospital PACS", "Research Orthanc", "Teaching files"]


def test_delete_icon_confirmed_removes_the_server_and_its_password(
    make_panel, registry, stored, secrets
):
    """The delete icon next to an entry removes that server (and its secret) once confirmed."""
    registry.add("Old PACS", rest_password="s3cret")
    registry.add("Kept PACS")
    old_id = registry.get("Old PACS").id
    panel = make_panel()
    ud.click_entry(panel, 0)
    with ud.answering("deleteButton") as dialog:
        ud.click(ud.row_child(panel, 0, "deleteButton"))
    assert dialog.title == "Delete DICOM server"
    assert ud.entry_names(panel) == ["Kept PACS"]
    assert stored().names() == ["Kept PACS"]
    assert secrets.get(secret_key(old_id, "rest_password")) is None
    # The deleted server was the one shown: its configuration is hidden.
    assert not panel.ui.configurationWidget.visible


def test_delete_key_on_the_list_deletes_the_selected_server_after_confirmation(
    make_panel, three_servers, stored
):
    panel = make_panel()
    ud.click_entry(panel, 1)
    with ud.answering("deleteButton"):
        ud.QTest.keyClick(panel.ui.serverListWidget, ud.Qt.Key.Key_Delete)
    assert stored().names() == ["Hospital PACS", "Teaching files"]


def test_add_appends_a_server_with_default_parameters_and_selects_it(make_panel, registry, stored):
    """Spec: "Add new Dicom Server to the list above. The server is initially added with default
    parameters. Complete the server configuration by selecting it from the list and updating
    the necessary parameters." """
    registry.add("Hospital PACS")
    panel = make_panel()
    ud.click(panel.ui.addServerButton)
    assert ud.entry_names(panel) == ["Hospital PACS", "New server"]
    assert panel.currentServer().name == "New server"
    assert panel.ui.configurationWidget.visible
    assert panel.widget.focusWidget() == panel.ui.nameLineEdit
    defaults = DicomServer()
    added = stored().get("New server")
    for field in ("called_ae_title", "host", "port", "calling_ae_title", "retrieve_method"):
        assert getattr(added, field) == getattr(defaults, field)
        assert panel.form.fieldValue(field) in (getattr(defaults, field), str(defaults.port))
    # A second Add gets a free name; typing a name completes the configuration.
    ud.click(panel.ui.addServerButton)
    assert ud.entry_names(panel)[-1] == "New server (2)"
    ud.type_into(panel.ui.nameLineEdit, "Cardiology PACS")
    assert stored().names() == ["Hospital PACS", "New server", "Cardiology PACS"]


def test_duplicate_makes_an_exact_copy_with_a_numerical_suffix(make_panel, registry, stored):
    """Spec: "Duplicate Dicom Server by creating an exact copy of the selected DICOM server and its
    configuration. The duplicated server will automatically have an appended numerical suffix
    to its name to distinguish it from the original." """
    registry.add(
        "Hospital PACS",
        is_default=True,
        host="10.1.2.3",
        port=4242,
        called_ae_title="HOSP",
        rest_enabled=True,
        rest_url="http://10.1.2.3:8042",
        rest_user="reader",
        rest_password="pw",
        load_mode="manual",
        date_filter="relative",
        filter_relative_count=3,
        filter_relative_unit="months",
    )
    registry.add("Other")
    panel = make_panel()
    assert not panel.ui.duplicateServerButton.enabled  # nothing selected yet
    ud.click_entry(panel, 0)
    ud.click(panel.ui.duplicateServerButton)
    assert ud.entry_names(panel) == ["Hospital PACS", "Hospital PACS (2)", "Other"]
    assert panel.currentServer().name == "Hospital PACS (2)"
    original, copy = stored().get("Hospital PACS"), stored().get("Hospital PACS (2)")
    different = {"name", "id", "is_default"}
    for field, value in original.to_dict(include_secrets=True).items():
        if field not in different:
            assert getattr(copy, field) == value, field
    assert copy.rest_password == "pw"
    assert copy.id != original.id
    assert not copy.is_default  # only one default server
    # Duplicating the copy numbers on from the original name.
    ud.click(panel.ui.duplicateServerButton)
    assert ud.entry_names(panel)[2] == "Hospital PACS (3)"


def test_move_up_and_down_reorder_the_list_that_orders_every_dropdown(
    make_panel, three_servers, stored, settings_path
):
    """Spec: "Reorder DICOM servers by using the Move up and Move down arrows. The order of the DICOM
    servers in the list defines the order in the drop-down menu in the Study Browser." """
    panel = make_panel()
    ud.click_entry(panel, 0)
    assert not panel.ui.moveUpButton.enabled  # already at the top
    ud.click(panel.ui.moveDownButton)
    assert ud.entry_names(panel) == ["Research Orthanc", "Hospital PACS", "Teaching files"]
    ud.click(panel.ui.moveDownButton)
    assert ud.entry_names(panel) == ["Research Orthanc", "Teaching files", "Hospital PACS"]
    assert not panel.ui.moveDownButton.enabled  # at the bottom
    assert panel.currentServer().name == "Hospital PACS"  # the moved server stays selected
    assert panel.ui.serverListWidget.currentRow == 2
    ud.click(panel.ui.moveUpButton)
    expected = ["Research Orthanc", "Hospital PACS", "Teaching files"]
    assert ud.entry_names(panel) == expected
    assert stored().names() == expected
    # The stored order is the order of the JSON list in the settings file.
    from DicomServersLib.ini_settings import IniSettings

    document = json.loads(IniSettings(settings_path).value("DicomServers/Servers"))
    assert [s["name"] for s in document["servers"]] == expected


def test_actions_have_icons_and_tooltips(make_panel, three_servers):
    """Add, Duplicate, Move up and Move down each have an icon and a tooltip."""
    panel = make_panel()
    for name, words in (
        ("addServerButton", "default settings"),
        ("duplicateServerButton", "exact copy"),
        ("moveUpButton", "drop-down"),
        ("moveDownButton", "drop-down"),
    ):
        button = getattr(panel.ui, name)
        assert not button.icon.isNull(), name
        assert words in button.toolTip, name
    assert icons.iconPath("add").endswith("Icons/add.png")


def test_empty_list_tells_the_user_to_add_a_server(make_panel):
    panel = make_panel()
    assert panel.ui.serverListWidget.count == 0
    assert "click Add" in panel.ui.noSelectionLabel.text
    assert not panel.ui.duplicateServerButton.enabled
    assert not panel.ui.moveUpButton.enabled and not panel.ui.moveDownButton.enabled


def test_stored_entries_that_cannot_be_used_are_reported_not_lost(make_panel, settings_path):
    """Nothing is lost without a warning: an unusable stored entry is shown and kept aside."""
    from DicomServersLib.ini_settings import IniSettings
    from DicomServersLib.registry import ServerRegistry
    from DicomServersLib.secret_store import MemorySecretStore
    from DicomServersLib.settings_store import SettingsStore

    settings = IniSettings(settings_path)
    bad = {"name": "Broken", "port": 70000}
    good = DicomServer(name="Good").to_dict()
    settings.setValue(
        "DicomServers/Servers", json.dumps({"schema_version": 1, "servers": [good, bad]})
    )
    settings.sync()
    registry = ServerRegistry(
        SettingsStore(IniSettings(settings_path), MemorySecretStore(values={}))
    )
    panel = make_panel(registry=registry)
    assert ud.entry_names(panel) == ["Good"]
    assert panel.ui.loadProblemsLabel.visible
    assert "Broken" in panel.ui.loadProblemsLabel.text
    assert "nothing was deleted" in panel.ui.loadProblemsLabel.text


@pytest.mark.parametrize("row", [0, 2])
def test_clicking_the_delete_icon_of_another_entry_keeps_the_selection(
    make_panel, three_servers, row
):
    panel = make_panel()
    ud.click_entry(panel, 1)
    with ud.answering("deleteButton"):
        ud.click(ud.row_child(panel, row, "deleteButton"))
    assert panel.currentServer().name == "Research Orthanc"
    assert panel.ui.nameLineEdit.text == "Research Orthanc"
    assert len(ud.entry_names(panel)) == 2
