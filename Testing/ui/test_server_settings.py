"""Every setting of a server, edited as a user would (spec: "Dicom Server Settings" and the
sections after it). Each test quotes the sentence it checks; assertions are on the form and on
what a fresh settings store reads back from the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import ui_driver as ud
from __feature__ import true_property  # noqa: F401
from DicomServersLib.server import FIELD_INFO
from DicomServersUI.server_form import FIELD_WIDGET


@pytest.fixture
def panel(make_panel, registry):
    """The panel with two servers, the first ("Main PACS") selected."""
    registry.add("Main PACS")
    registry.add("Backup PACS")
    panel = make_panel()
    ud.click_entry(panel, 0)
    return panel


def error_of(panel, label_name):
    label = getattr(panel.ui, label_name)
    return label.text if label.visible else ""


# -- General ------------------------------------------------------------------------------------


def test_server_name_is_saved_as_typed_and_names_the_entry_in_the_list(panel, stored):
    """Spec: "Server name: Unique identifier for each DICOM server. The server name is crucial,
    as it represents the servers in the Study Browser dropdown." """
    ud.type_into(panel.ui.nameLineEdit, "Radiology PACS")
    assert ud.entry_names(panel) == ["Radiology PACS", "Backup PACS"]
    assert stored().names() == ["Radiology PACS", "Backup PACS"]
    assert panel.pendingEdits == {}


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("backup pacs", "'backup pacs' is already used"),
        ("  Backup PACS ", "'Backup PACS' is already used"),
        ("", "must not be empty"),
    ],
)
def test_server_name_must_be_unique_and_not_empty(panel, stored, typed, reason):
    """The name is a unique identifier: a name in use (ignoring case) or an empty one is refused."""
    ud.type_into(panel.ui.nameLineEdit, typed)
    assert reason in error_of(panel, "nameErrorLabel")
    assert panel.ui.nameLineEdit.property("invalid") is True
    assert "Server name (name)" in panel.ui.nameLineEdit.toolTip
    assert stored().names() == ["Main PACS", "Backup PACS"]  # never saved
    assert ud.entry_names(panel) == ["Main PACS", "Backup PACS"]
    assert panel.ui.nameLineEdit.text == typed  # what the user typed stays in the field
    # Fixing it saves it and clears the error.
    ud.type_into(panel.ui.nameLineEdit, "Main PACS 2")
    assert error_of(panel, "nameErrorLabel") == ""
    assert panel.ui.nameLineEdit.property("invalid") is False
    assert stored().names() == ["Main PACS 2", "Backup PACS"]


def test_set_as_default_server_marks_only_this_server(panel, stored):
    """Spec: "Set as default server: Mark the selected server as the default DICOM server when
    opening the application." """
    ud.click(panel.ui.isDefaultCheckBox)
    assert stored().default_server().name == "Main PACS"
    assert ud.row_child(panel, 0, "defaultLabel").visible
    ud.click_entry(panel, 1)
    assert not panel.ui.isDefaultCheckBox.checked
    ud.click(panel.ui.isDefaultCheckBox)
    assert stored().default_server().name == "Backup PACS"
    assert [ud.row_child(panel, r, "defaultLabel").visible for r in (0, 1)] == [False, True]
    ud.click(panel.ui.isDefaultCheckBox)
    assert stored().default_server() is None


# -- PACS REST API ------------------------------------------------------------------------------

REST_WIDGETS = (
    "restFlavorComboBox",
    "restUrlLineEdit",
    "restUserLineEdit",
    "restPasswordLineEdit",
    "restLimitLineEdit",
    "searchLimitLineEdit",
    "cacheThresholdLineEdit",
)


def test_rest_parameters_are_disabled_while_the_rest_api_is_off(panel, stored):
    """Spec: "PACS REST API: Activate the REST API configuration for the selected server. The
    additional parameters will be disabled if the PACS REST API is not activated." """
    assert not panel.ui.restEnabledCheckBox.checked
    assert not any(getattr(panel.ui, name).enabled for name in REST_WIDGETS)
    ud.click(panel.ui.restEnabledCheckBox)
    assert all(getattr(panel.ui, name).enabled for name in REST_WIDGETS)
    # The URL is required while the REST API is on: the toggle waits for it, unsaved.
    assert "is required while the PACS REST API is on" in error_of(panel, "restUrlErrorLabel")
    assert stored().get("Main PACS").rest_enabled is False
    ud.type_into(panel.ui.restUrlLineEdit, "http://127.0.0.1:8042")
    saved = stored().get("Main PACS")
    assert (saved.rest_enabled, saved.rest_url) == (True, "http://127.0.0.1:8042")
    assert error_of(panel, "restUrlErrorLabel") == ""
    # Off again: the parameters are disabled and keep their values.
    ud.click(panel.ui.restEnabledCheckBox)
    assert not panel.ui.restUrlLineEdit.enabled
    saved = stored().get("Main PACS")
    assert (saved.rest_enabled, saved.rest_url) == (False, "http://127.0.0.1:8042")


def test_turning_the_rest_api_off_again_drops_the_unsaved_requirement(panel, stored):
    ud.click(panel.ui.restEnabledCheckBox)
    assert error_of(panel, "restUrlErrorLabel")
    ud.click(panel.ui.restEnabledCheckBox)
    assert error_of(panel, "restUrlErrorLabel") == ""
    assert panel.pendingEdits == {}


def test_rest_api_type_is_saved(panel, registry, stored):
    registry.update("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
    ud.click_entry(panel, 1)
    ud.click_entry(panel, 0)
    ud.choose(panel.ui.restFlavorComboBox, "DICOMweb")
    assert stored().get("Main PACS").rest_flavor == "dicomweb"


def test_pacs_user_is_saved(panel, registry, stored):
    """Spec: "PACS User: Username required to authenticate the initiating connection to the
    REST API." """
    registry.update("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
    ud.click_entry(panel, 1)
    ud.click_entry(panel, 0)
    ud.type_into(panel.ui.restUserLineEdit, "radiologist")
    assert stored().get("Main PACS").rest_user == "radiologist"


def test_pacs_password_goes_to_the_secret_store_never_to_the_settings_file(
    panel, registry, stored, secrets, settings_path
):
    """Spec: "PACS Password: Password required to authenticate the initiating connection to the
    REST API." It is kept in the secret store; the field says where, and warns when it is only
    remembered for this session."""
    registry.update("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
    ud.click_entry(panel, 1)
    ud.click_entry(panel, 0)
    assert panel.ui.restPasswordLineEdit.echoMode == ud.QtWidgets.QLineEdit.EchoMode.Password
    store_label = panel.ui.passwordStoreLabel.text
    assert "only remembered for this session" in store_label
    ud.type_into(panel.ui.restPasswordLineEdit, "pass word;1", enter=False)
    assert "rest_password" in panel.pendingEdits  # saved when the field is left
    assert stored().get("Main PACS").rest_password == ""
    ud.QTest.keyClick(panel.ui.restPasswordLineEdit, ud.Qt.Key.Key_Return)
    assert panel.pendingEdits == {}
    assert stored().get("Main PACS").rest_password == "pass word;1"
    assert "pass word" not in settings_path.read_text(encoding="utf-8")


def test_password_field_names_a_persistent_store(make_panel, registry, tmp_path):
    from DicomServersLib.secret_store import FileSecretStore

    registry.store.secrets = FileSecretStore(tmp_path / "credentials.json")
    registry.add("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
    panel = make_panel()
    ud.click_entry(panel, 0)
    assert panel.ui.passwordStoreLabel.text == f"Kept in: {tmp_path / 'credentials.json'}"
    ud.type_into(panel.ui.restPasswordLineEdit, "secret")
    assert "secret" in (tmp_path / "credentials.json").read_text(encoding="utf-8")


# -- every typed field: checked as typed, saved when valid, never saved when invalid -----------

# field, toggle to turn on first, valid text, stored value, invalid text, part of the reason
TYPED_FIELDS = [
    (
        "rest_url",
        "restEnabledCheckBox",
        "pacs.example.org:8042",
        "http://pacs.example.org:8042",
        "ftp://pacs.example.org",
        "must start with http:// or https://",
    ),
    ("rest_limit", "restEnabledCheckBox", "0", 0, "-1", "must be 0 or more, got -1"),
    ("rest_limit", "restEnabledCheckBox", "500", 500, "all", "must be a whole number"),
    ("search_limit", "restEnabledCheckBox", "250", 250, "1e3", "must be a whole number"),
    ("cache_threshold", "restEnabledCheckBox", "50", 50, "-5", "must be 0 or more"),
    ("worklist_ae_title", None, "WORKLIST", "WORKLIST", "A" * 17, "at most 16 characters"),
    ("worklist_ae_title", None, "", "", "Ä-TITLE", "only ASCII characters"),
    ("scheduled_station_ae_title", None, "CT01", "CT01", "CT\\01", "backslash"),
    (
        "notification_ip",
        "notificationsEnabledCheckBox",
        "192.168.1.20",
        "192.168.1.20",
        "pacs.local",
        "must be an IPv4 or IPv6 address",
    ),
    ("notification_port", "notificationsEnabledCheckBox", "9000", 9000, "0", "from 1 to 65535"),
    ("called_ae_title", None, "ORTHANC", "ORTHANC", "   ", "must not be empty or only spaces"),
    ("host", None, "pacs.hospital.org", "pacs.hospital.org", "pacs..org", "not a valid host name"),
    ("host", None, "::1", "::1", "300.1.1.1", "not a valid IPv4 address"),
    ("port", None, "4242", 4242, "70000", "must be from 1 to 65535, got 70000"),
    ("calling_ae_title", None, "MYSLICER", "MYSLICER", "", "must not be empty"),
    ("move_destination_ae_title", "C-MOVE", "SLICERSTORE", "SLICERSTORE", "X" * 17, "at most 16"),
    ("storage_port", "C-MOVE", "11120", 11120, "port", "must be a whole number"),
    ("timeout_s", None, "12.5", 12.5, "0", "must be more than 0"),
    ("timeout_s", None, "30", 30.0, "ten", "must be a number"),
]


@pytest.mark.parametrize(
    ("field", "toggle", "valid", "value", "invalid", "reason"),
    TYPED_FIELDS,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(TYPED_FIELDS)],
)
def test_typed_field_is_checked_as_typed_and_saved_only_when_valid(
    panel, registry, stored, field, toggle, valid, value, invalid, reason
):
    """Fields validate as you type: an invalid field is highlighted and says why; valid edits are
    saved, invalid ones never reach the settings."""
    if toggle == "restEnabledCheckBox":
        registry.update("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
        ud.click_entry(panel, 1)
        ud.click_entry(panel, 0)
    elif toggle == "C-MOVE":
        ud.choose(panel.ui.retrieveMethodComboBox, "C-MOVE")
    elif toggle:
        ud.click(getattr(panel.ui, toggle))
    binding = FIELD_WIDGET[field]
    editor = getattr(panel.ui, binding.widget)
    assert editor.enabled
    before = getattr(stored().get("Main PACS"), field)

    ud.type_into(editor, invalid)
    assert reason in error_of(panel, binding.errorLabel)
    assert editor.property("invalid") is True
    assert "c62828" in editor.styleSheet  # highlighted
    assert FIELD_INFO[field].label in editor.toolTip and reason in editor.toolTip
    assert getattr(stored().get("Main PACS"), field) == before
    assert field in panel.pendingEdits

    ud.type_into(editor, valid)
    assert error_of(panel, binding.errorLabel) == ""
    assert editor.property("invalid") is False
    assert editor.toolTip == FIELD_INFO[field].help
    assert getattr(stored().get("Main PACS"), field) == value
    assert panel.pendingEdits == {}


def test_every_label_and_editor_carries_the_spec_explanation_as_tooltip(panel):
    """Tooltips carry the spec's explanations (FIELD_INFO, one place)."""
    for binding in FIELD_WIDGET.values():
        info = FIELD_INFO[binding.field]
        assert getattr(panel.ui, binding.widget).toolTip == info.help, binding.field
        if binding.label and binding.label.endswith("Label"):
            label = getattr(panel.ui, binding.label)
            assert label.text == info.label + ":"
            assert label.toolTip == info.help
    assert "Transfer button" in panel.ui.loadManuallyCheckBox.toolTip
    assert "most recent studies" in panel.ui.filterRelativeCheckBox.toolTip


# -- Loading ------------------------------------------------------------------------------------


def test_load_manually(panel, stored):
    """Spec: "Load DICOM Images Manually: Manually transfer DICOM images from the selected
    server by pressing the Transfer button in the study/series preview." """
    ud.click(panel.ui.loadManuallyCheckBox)
    assert stored().get("Main PACS").load_mode == "manual"
    ud.click(panel.ui.loadManuallyCheckBox)
    assert stored().get("Main PACS").load_mode == "auto"


def test_load_from_the_pacs_storage_folder_with_the_folder_picker(panel, stored, tmp_path):
    """Spec: "Load DICOM Images from ... Folder: Load all DICOM images directly from the PACS
    folder of the selected server." and "Storage Folder: Specify the path to the directory where
    the DICOM images are stored." """
    folder = tmp_path / "pacs-storage"
    folder.mkdir()
    ud.click(panel.ui.loadManuallyCheckBox)
    assert not panel.ui.storageFolderLineEdit.enabled
    ud.click(panel.ui.loadFromFolderCheckBox)
    assert not panel.ui.loadManuallyCheckBox.checked  # one or the other
    assert panel.ui.storageFolderLineEdit.enabled and panel.ui.storageFolderBrowseButton.enabled
    # No folder yet: the choice waits for one, unsaved.
    assert "is required to load from the folder" in error_of(panel, "storageFolderErrorLabel")
    assert stored().get("Main PACS").load_mode == "manual"
    with ud.choosing_folder(str(folder)) as dialog:
        ud.click(panel.ui.storageFolderBrowseButton)
    assert dialog.title == "PACS storage folder"
    assert panel.ui.storageFolderLineEdit.text == str(folder)
    saved = stored().get("Main PACS")
    assert (saved.load_mode, saved.storage_folder) == ("folder", str(folder))
    assert error_of(panel, "storageFolderErrorLabel") == ""


def test_storage_folder_must_be_an_absolute_path(panel, stored):
    ud.click(panel.ui.loadFromFolderCheckBox)
    ud.type_into(panel.ui.storageFolderLineEdit, "relative/folder")
    assert "must be an absolute folder path" in error_of(panel, "storageFolderErrorLabel")
    assert stored().get("Main PACS").load_mode == "auto"
    ud.type_into(panel.ui.storageFolderLineEdit, "/srv/pacs/storage")
    saved = stored().get("Main PACS")
    assert (saved.load_mode, saved.storage_folder) == ("folder", "/srv/pacs/storage")


def test_with_neither_loading_option_the_whole_study_downloads(panel, stored):
    """Spec: "If none of the two options below are toggled on, the software will automatically
    download all DICOM images from the server whenever a new study is selected." """
    hint = panel.ui.loadingHintLabel
    assert hint.visible
    assert "With neither option on" in hint.text and "whole study" in hint.text
    assert not panel.ui.loadManuallyCheckBox.checked
    assert not panel.ui.loadFromFolderCheckBox.checked
    assert stored().get("Main PACS").load_mode == "auto"


# -- Worklist, notifications --------------------------------------------------------------------


def test_worklist_and_scheduled_ae_titles_are_saved(panel, stored):
    """Spec: "Worklist AET ..." and "Scheduled AET: Application Entity Title of the scheduled
    station ..." """
    ud.type_into(panel.ui.worklistAeTitleLineEdit, "RIS")
    ud.type_into(panel.ui.scheduledAeTitleLineEdit, "CT_SCANNER_1")
    saved = stored().get("Main PACS")
    assert (saved.worklist_ae_title, saved.scheduled_station_ae_title) == ("RIS", "CT_SCANNER_1")


def test_notifications_enable_ip_and_port(panel, stored):
    """Spec: "Enable Notifications", "Notification IP", "Notification Port"."""
    assert "notification plugin" in panel.ui.notificationsHintLabel.text
    assert not panel.ui.notificationIpLineEdit.enabled
    ud.click(panel.ui.notificationsEnabledCheckBox)
    assert panel.ui.notificationIpLineEdit.enabled and panel.ui.notificationPortLineEdit.enabled
    ud.type_into(panel.ui.notificationIpLineEdit, "10.0.0.7")
    ud.type_into(panel.ui.notificationPortLineEdit, "8800")
    saved = stored().get("Main PACS")
    assert (saved.notifications_enabled, saved.notification_ip, saved.notification_port) == (
        True,
        "10.0.0.7",
        8800,
    )
    ud.click(panel.ui.notificationsEnabledCheckBox)
    assert stored().get("Main PACS").notifications_enabled is False
    assert stored().get("Main PACS").notification_port == 8800  # kept while off


def test_notification_token_is_a_secret(panel, stored, settings_path):
    """The token the notification plugin sends (NOTIFY_TOKEN) is kept in the secret store."""
    assert not panel.ui.notificationTokenLineEdit.enabled
    ud.click(panel.ui.notificationsEnabledCheckBox)
    assert panel.ui.notificationTokenLineEdit.enabled
    assert panel.ui.notificationTokenLineEdit.echoMode == ud.QtWidgets.QLineEdit.EchoMode.Password
    ud.type_into(panel.ui.notificationTokenLineEdit, "tok-7f3a")
    assert stored().get("Main PACS").notification_token == "tok-7f3a"
    assert "tok-7f3a" not in settings_path.read_text(encoding="utf-8")


# -- Filters ------------------------------------------------------------------------------------


def test_filter_by_date_with_the_date_picker(panel, stored):
    """Spec: "Filter by Date: Toggle this option to set a date from which the studies will be
    retrieved from the server." """
    assert not panel.ui.filterFromDateEdit.enabled
    ud.click(panel.ui.filterByDateCheckBox)
    shown = panel.ui.filterFromDateEdit.date.toString("yyyy-MM-dd")
    saved = stored().get("Main PACS")
    assert (saved.date_filter, saved.filter_from_date) == ("from_date", shown)
    editor = panel.ui.filterFromDateEdit
    assert editor.calendarPopup and editor.enabled
    # Two years back, then one month back, with the keyboard on the date picker.
    expected = editor.date.addYears(-2).addMonths(-1).toString("yyyy-MM-dd")
    editor.setFocus()
    for key in ("Home", "Down", "Down", "Tab", "Down"):
        ud.QTest.keyClick(editor, getattr(ud.Qt.Key, "Key_" + key))
    ud.process_events()
    assert stored().get("Main PACS").filter_from_date == expected


def test_filter_by_days_months_or_years(panel, stored):
    """Spec: "Filter by D/M/Y: Toggle this option to set a specific number of days, months, or
    years by which the studies will be retrieved from the server." """
    ud.click(panel.ui.filterByDateCheckBox)
    ud.click(panel.ui.filterRelativeCheckBox)
    assert not panel.ui.filterByDateCheckBox.checked  # one filter or the other
    assert panel.ui.filterRelativeCountSpinBox.enabled
    assert not panel.ui.filterFromDateEdit.enabled
    spin = panel.ui.filterRelativeCountSpinBox
    spin.setFocus()
    spin.selectAll()
    ud.QTest.keyClicks(spin, "3")
    ud.choose(panel.ui.filterRelativeUnitComboBox, "months")
    saved = stored().get("Main PACS")
    assert (saved.date_filter, saved.filter_relative_count, saved.filter_relative_unit) == (
        "relative",
        3,
        "months",
    )
    ud.click(panel.ui.filterRelativeCheckBox)
    assert stored().get("Main PACS").date_filter == "none"


# -- StoreSCU and DIMSE -------------------------------------------------------------------------


def test_storescu_settings(panel, stored):
    """Spec: "AE Title", "Remote IP", "Remote port" of the StoreSCU settings."""
    ud.type_into(panel.ui.calledAeTitleLineEdit, "ORTHANC")
    ud.type_into(panel.ui.hostLineEdit, "127.0.0.1")
    ud.type_into(panel.ui.portLineEdit, "4242")
    saved = stored().get("Main PACS")
    assert (saved.called_ae_title, saved.host, saved.port) == ("ORTHANC", "127.0.0.1", 4242)


def test_retrieve_method_c_move_enables_the_move_destination(panel, stored):
    assert not panel.ui.moveDestinationAeTitleLineEdit.enabled
    ud.choose(panel.ui.retrieveMethodComboBox, "C-MOVE")
    assert panel.ui.moveDestinationAeTitleLineEdit.enabled
    assert panel.ui.storagePortLineEdit.enabled
    assert stored().get("Main PACS").retrieve_method == "c-move"
    # C-MOVE needs a destination AE title: clearing it is refused.
    ud.type_into(panel.ui.moveDestinationAeTitleLineEdit, "")
    assert "is required for C-MOVE" in error_of(panel, "moveDestinationAeTitleErrorLabel")
    assert stored().get("Main PACS").move_destination_ae_title == "SLICER"


# -- nothing the user typed is lost without a warning -------------------------------------------


def test_leaving_a_server_with_an_invalid_edit_asks_and_keep_editing_keeps_it(panel, stored):
    ud.type_into(panel.ui.portLineEdit, "99999")
    with ud.answering("keepButton") as dialog:
        ud.click_entry(panel, 1)
    assert "Main PACS" in dialog.text
    assert "must be from 1 to 65535" in dialog.informative_text
    assert panel.currentServer().name == "Main PACS"
    assert panel.ui.serverListWidget.currentRow == 0
    assert panel.ui.portLineEdit.text == "99999"
    assert "port" in panel.pendingEdits
    assert stored().get("Main PACS").port == 11112


def test_leaving_a_server_with_an_invalid_edit_can_discard_it(panel, stored):
    ud.type_into(panel.ui.portLineEdit, "99999")
    with ud.answering("discardButton"):
        ud.click_entry(panel, 1)
    assert panel.currentServer().name == "Backup PACS"
    assert panel.pendingEdits == {}
    ud.click_entry(panel, 0)
    assert panel.ui.portLineEdit.text == "11112"
    assert error_of(panel, "portErrorLabel") == ""


def test_ctrl_click_and_add_with_an_invalid_edit_ask_first(panel, stored):
    ud.type_into(panel.ui.calledAeTitleLineEdit, "WAY-TOO-LONG-AE-TITLE")
    with ud.answering("keepButton"):
        ud.click_entry(panel, 0, ctrl=True)
    assert panel.ui.configurationWidget.visible
    with ud.answering("keepButton"):
        ud.click(panel.ui.addServerButton)
    assert stored().names() == ["Main PACS", "Backup PACS"]
    with ud.answering("discardButton"):
        ud.click(panel.ui.addServerButton)
    assert stored().names() == ["Main PACS", "Backup PACS", "New server"]
    assert stored().get("Main PACS").called_ae_title == "PACS"


def test_a_pending_password_is_saved_before_switching(panel, registry, stored):
    registry.update("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
    ud.click_entry(panel, 1)
    ud.click_entry(panel, 0)
    panel.ui.restPasswordLineEdit.setFocus()
    ud.QTest.keyClicks(panel.ui.restPasswordLineEdit, "typed")
    ud.click_entry(panel, 1)
    assert stored().get("Main PACS").rest_password == "typed"


def test_valid_edits_are_saved_even_while_another_field_is_invalid(panel, stored, tmp_path):
    ud.type_into(panel.ui.portLineEdit, "0")
    ud.type_into(panel.ui.hostLineEdit, "pacs.example.org")
    saved = stored().get("Main PACS")
    assert (saved.host, saved.port) == ("pacs.example.org", 11112)
    # A toggle that waits for its folder does not hold back other valid edits either.
    ud.click(panel.ui.loadFromFolderCheckBox)
    ud.type_into(panel.ui.worklistAeTitleLineEdit, "RIS")
    saved = stored().get("Main PACS")
    assert (saved.worklist_ae_title, saved.load_mode) == ("RIS", "auto")
    assert set(panel.pendingEdits) == {"port", "load_mode"}
    assert Path(tmp_path).is_dir()


def test_password_field_warns_when_only_remembered_for_this_session(make_panel, registry):
    from DicomServersLib.secret_store import open_secret_store

    warning = open_secret_store({"DICOMSERVERS_SECRET_STORE": ""}).warning or (
        "Passwords are only remembered for this session: no OS keyring is available."
        " Set DICOMSERVERS_SECRET_STORE=file to keep them in a file readable only by you."
    )
    registry.add("Main PACS", rest_enabled=True, rest_url="http://127.0.0.1:8042")
    panel = make_panel(secretStoreWarning=warning)
    ud.click_entry(panel, 0)
    label = panel.ui.passwordStoreLabel
    assert label.text.startswith("⚠ Passwords are only remembered for this session")
    assert "DICOMSERVERS_SECRET_STORE=file" in label.toolTip  # how to keep them
