"""The configuration form of one server: which widget shows which field, and how.

The widgets come from ``Resources/UI/DicomServersPanel.ui``; this module maps each canonical
field of :class:`DicomServersLib.server.DicomServer` to its widget, fills the form from a
record, reads what the user entered (as text or plain values for
:func:`DicomServersLib.validation.parse_field`), shows validation errors next to the fields and
enables the fields that depend on a toggle. Labels and tooltips come from
:data:`DicomServersLib.server.FIELD_INFO` (one place for the spec's wording).

Two settings are shown as a pair of toggles, as on the spec page: the loading mode
(``load_mode``: load manually / load from the PACS storage folder / neither = automatic) and the
date filter (``date_filter``: filter by date / filter by the last N days, months or years / none).
"""

from __future__ import annotations

from dataclasses import dataclass

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from DicomServersLib.server import FIELD_INFO, DicomServer

DATE_FORMAT = "yyyy-MM-dd"

REST_FLAVOR_LABELS = (("orthanc", "Orthanc REST API"), ("dicomweb", "DICOMweb"))
RETRIEVE_METHOD_LABELS = (("c-get", "C-GET"), ("c-move", "C-MOVE"))
RELATIVE_UNIT_LABELS = (("days", "days"), ("months", "months"), ("years", "years"))

INVALID_STYLE = "border: 1px solid #c62828; background-color: #fdecea;"
ERROR_LABEL_STYLE = "color: #c62828;"


@dataclass(frozen=True)
class FieldWidget:
    """Where a field is shown: its editor, kind of editor, label and error label (object names)."""

    field: str
    widget: str
    kind: str  # line, check, combo, date, spin
    label: str = ""
    errorLabel: str = ""


#: Every editable field of the form, in form order.
FIELD_WIDGETS: tuple[FieldWidget, ...] = (
    FieldWidget("name", "nameLineEdit", "line", "nameLabel", "nameErrorLabel"),
    FieldWidget("is_default", "isDefaultCheckBox", "check", "", "isDefaultErrorLabel"),
    FieldWidget("rest_enabled", "restEnabledCheckBox", "check", "", "restEnabledErrorLabel"),
    FieldWidget(
        "rest_flavor", "restFlavorComboBox", "combo", "restFlavorLabel", "restFlavorErrorLabel"
    ),
    FieldWidget("rest_url", "restUrlLineEdit", "line", "restUrlLabel", "restUrlErrorLabel"),
    FieldWidget("rest_user", "restUserLineEdit", "line", "restUserLabel", "restUserErrorLabel"),
    FieldWidget(
        "rest_password",
        "restPasswordLineEdit",
        "line",
        "restPasswordLabel",
        "restPasswordErrorLabel",
    ),
    FieldWidget("rest_limit", "restLimitLineEdit", "line", "restLimitLabel", "restLimitErrorLabel"),
    FieldWidget(
        "search_limit", "searchLimitLineEdit", "line", "searchLimitLabel", "searchLimitErrorLabel"
    ),
    FieldWidget(
        "cache_threshold",
        "cacheThresholdLineEdit",
        "line",
        "cacheThresholdLabel",
        "cacheThresholdErrorLabel",
    ),
    FieldWidget(
        "storage_folder",
        "storageFolderLineEdit",
        "line",
        "storageFolderLabel",
        "storageFolderErrorLabel",
    ),
    FieldWidget(
        "worklist_ae_title",
        "worklistAeTitleLineEdit",
        "line",
        "worklistAeTitleLabel",
        "worklistAeTitleErrorLabel",
    ),
    FieldWidget(
        "scheduled_station_ae_title",
        "scheduledAeTitleLineEdit",
        "line",
        "scheduledAeTitleLabel",
        "scheduledAeTitleErrorLabel",
    ),
    FieldWidget(
        "notifications_enabled",
        "notificationsEnabledCheckBox",
        "check",
        "",
        "notificationsEnabledErrorLabel",
    ),
    FieldWidget(
        "notification_ip",
        "notificationIpLineEdit",
        "line",
        "notificationIpLabel",
        "notificationIpErrorLabel",
    ),
    FieldWidget(
        "notification_port",
        "notificationPortLineEdit",
        "line",
        "notificationPortLabel",
        "notificationPortErrorLabel",
    ),
    FieldWidget(
        "notification_token",
        "notificationTokenLineEdit",
        "line",
        "notificationTokenLabel",
        "notificationTokenErrorLabel",
    ),
    FieldWidget(
        "notifications_auto_retrieve",
        "notificationsAutoRetrieveCheckBox",
        "check",
        "",
        "notificationsAutoRetrieveErrorLabel",
    ),
    FieldWidget(
        "filter_from_date",
        "filterFromDateEdit",
        "date",
        "filterByDateCheckBox",
        "filterFromDateErrorLabel",
    ),
    FieldWidget(
        "filter_relative_count",
        "filterRelativeCountSpinBox",
        "spin",
        "filterRelativeCheckBox",
        "filterRelativeCountErrorLabel",
    ),
    FieldWidget(
        "filter_relative_unit",
        "filterRelativeUnitComboBox",
        "combo",
        "",
        "filterRelativeCountErrorLabel",
    ),
    FieldWidget(
        "called_ae_title",
        "calledAeTitleLineEdit",
        "line",
        "calledAeTitleLabel",
        "calledAeTitleErrorLabel",
    ),
    FieldWidget("host", "hostLineEdit", "line", "hostLabel", "hostErrorLabel"),
    FieldWidget("port", "portLineEdit", "line", "portLabel", "portErrorLabel"),
    FieldWidget(
        "calling_ae_title",
        "callingAeTitleLineEdit",
        "line",
        "callingAeTitleLabel",
        "callingAeTitleErrorLabel",
    ),
    FieldWidget(
        "retrieve_method",
        "retrieveMethodComboBox",
        "combo",
        "retrieveMethodLabel",
        "retrieveMethodErrorLabel",
    ),
    FieldWidget(
        "move_destination_ae_title",
        "moveDestinationAeTitleLineEdit",
        "line",
        "moveDestinationAeTitleLabel",
        "moveDestinationAeTitleErrorLabel",
    ),
    FieldWidget(
        "storage_port", "storagePortLineEdit", "line", "storagePortLabel", "storagePortErrorLabel"
    ),
    FieldWidget("timeout_s", "timeoutLineEdit", "line", "timeoutLabel", "timeoutErrorLabel"),
    FieldWidget("tls_enabled", "tlsEnabledCheckBox", "check", "", "tlsEnabledErrorLabel"),
    FieldWidget(
        "tls_ca_file", "tlsCaFileLineEdit", "line", "tlsCaFileLabel", "tlsCaFileErrorLabel"
    ),
    FieldWidget(
        "tls_cert_file", "tlsCertFileLineEdit", "line", "tlsCertFileLabel", "tlsCertFileErrorLabel"
    ),
    FieldWidget(
        "tls_key_file", "tlsKeyFileLineEdit", "line", "tlsKeyFileLabel", "tlsKeyFileErrorLabel"
    ),
    FieldWidget("tls_verify", "tlsVerifyCheckBox", "check", "", "tlsVerifyErrorLabel"),
    FieldWidget(
        "rest_ca_bundle",
        "restCaBundleLineEdit",
        "line",
        "restCaBundleLabel",
        "restCaBundleErrorLabel",
    ),
)

FIELD_WIDGET = {binding.field: binding for binding in FIELD_WIDGETS}

#: The fields shown as a pair of toggles: field -> (error label, toggles).
TOGGLE_PAIRS = {
    "load_mode": ("loadModeErrorLabel", ("loadManuallyCheckBox", "loadFromFolderCheckBox")),
    "date_filter": ("dateFilterErrorLabel", ("filterByDateCheckBox", "filterRelativeCheckBox")),
}

#: Toggle -> value of its pair's field when it is on (off everywhere: the first value below).
TOGGLE_VALUES = {
    "loadManuallyCheckBox": ("load_mode", "manual"),
    "loadFromFolderCheckBox": ("load_mode", "folder"),
    "filterByDateCheckBox": ("date_filter", "from_date"),
    "filterRelativeCheckBox": ("date_filter", "relative"),
}
PAIR_OFF_VALUE = {"load_mode": "auto", "date_filter": "none"}

#: Help for the toggles of the pairs (the spec's sentences).
TOGGLE_HELP = {
    "loadManuallyCheckBox": "Transfer DICOM images from this server manually, with the Transfer"
    " button in the study/series preview.",
    "loadFromFolderCheckBox": "Load all DICOM images directly from the PACS storage folder of"
    " this server.",
    "filterByDateCheckBox": "Fetch only the studies from this date on.",
    "filterRelativeCheckBox": "Fetch only the studies of the last N days, months or years: for"
    " when the most recent studies are needed.",
}

#: Widgets enabled only while a toggle is on: toggle -> dependent widgets.
DEPENDENTS = {
    "restEnabledCheckBox": (
        "restFlavorLabel",
        "restFlavorComboBox",
        "restUrlLabel",
        "restUrlLineEdit",
        "restUserLabel",
        "restUserLineEdit",
        "restPasswordLabel",
        "restPasswordLineEdit",
        "passwordStoreLabel",
        "restLimitLabel",
        "restLimitLineEdit",
        "searchLimitLabel",
        "searchLimitLineEdit",
        "cacheThresholdLabel",
        "cacheThresholdLineEdit",
        "restCaBundleLabel",
        "restCaBundleLineEdit",
    ),
    "tlsEnabledCheckBox": (
        "tlsCaFileLabel",
        "tlsCaFileLineEdit",
        "tlsCertFileLabel",
        "tlsCertFileLineEdit",
        "tlsKeyFileLabel",
        "tlsKeyFileLineEdit",
        "tlsVerifyCheckBox",
    ),
    "loadFromFolderCheckBox": (
        "storageFolderLabel",
        "storageFolderLineEdit",
        "storageFolderBrowseButton",
    ),
    "notificationsEnabledCheckBox": (
        "notificationIpLabel",
        "notificationIpLineEdit",
        "notificationPortLabel",
        "notificationPortLineEdit",
        "notificationTokenLabel",
        "notificationTokenLineEdit",
        "notificationsAutoRetrieveCheckBox",
    ),
    "filterByDateCheckBox": ("filterFromDateEdit",),
    "filterRelativeCheckBox": ("filterRelativeCountSpinBox", "filterRelativeUnitComboBox"),
}


def errorLabelFor(field: str) -> str:
    """Return the object name of the label that shows ``field``'s error."""
    if field in TOGGLE_PAIRS:
        return TOGGLE_PAIRS[field][0]
    binding = FIELD_WIDGET.get(field)
    return binding.errorLabel if binding else ""


def shortReason(field: str, message: str) -> str:
    """Return ``message`` without the ``Label (field): `` prefix (the label is next to it)."""
    info = FIELD_INFO.get(field)
    prefix = f"{info.label} ({field}): " if info else f"{field}: "
    position = message.find(prefix)
    return message[position + len(prefix) :] if position >= 0 else message


class ServerForm:
    """Fills and reads the configuration form (widgets from the panel's ``ui``)."""

    def __init__(self, ui) -> None:
        self.ui = ui
        self._errors: dict[str, str] = {}
        self._fillChoices()
        self._applyLabelsAndTooltips()
        self.showErrors({})

    # -- set-up --------------------------------------------------------------------------------

    def widget(self, name: str):
        """Return the widget with object name ``name``."""
        return getattr(self.ui, name)

    def fieldWidget(self, field: str):
        """Return the editor of ``field``."""
        return self.widget(FIELD_WIDGET[field].widget)

    def _fillChoices(self) -> None:
        for comboName, choices in (
            ("restFlavorComboBox", REST_FLAVOR_LABELS),
            ("retrieveMethodComboBox", RETRIEVE_METHOD_LABELS),
            ("filterRelativeUnitComboBox", RELATIVE_UNIT_LABELS),
        ):
            combo = self.widget(comboName)
            combo.clear()
            for value, label in choices:
                combo.addItem(label, value)

    def _applyLabelsAndTooltips(self) -> None:
        for binding in FIELD_WIDGETS:
            info = FIELD_INFO[binding.field]
            editor = self.widget(binding.widget)
            editor.toolTip = info.help
            if binding.kind == "check" and binding.field != "rest_enabled":
                editor.text = info.label
            if binding.label and binding.label not in TOGGLE_HELP:
                label = self.widget(binding.label)
                label.text = info.label + ":"
                label.toolTip = info.help
        for name, help in TOGGLE_HELP.items():
            self.widget(name).toolTip = help
        self.widget("restEnabledCheckBox").toolTip = FIELD_INFO["rest_enabled"].help
        self.widget("storageFolderBrowseButton").toolTip = "Choose the PACS storage folder"

    # -- values ---------------------------------------------------------------------------------

    def setServer(self, server: DicomServer) -> None:
        """Show ``server`` in the form (no validation, no signals wanted: block them first)."""
        for binding in FIELD_WIDGETS:
            self.setFieldValue(binding.field, getattr(server, binding.field))
        for pairField in TOGGLE_PAIRS:
            self.setPairValue(pairField, getattr(server, pairField))
        self.updateEnabledState()

    def setFieldValue(self, field: str, value) -> None:
        """Show ``value`` in ``field``'s editor."""
        binding = FIELD_WIDGET[field]
        editor = self.widget(binding.widget)
        if binding.kind == "line":
            if isinstance(value, float):
                text = f"{value:g}"
            else:
                text = "" if value is None else str(value)
            if editor.text != text:
                editor.text = text
        elif binding.kind == "check":
            editor.checked = bool(value)
        elif binding.kind == "combo":
            index = editor.findData(value)
            editor.currentIndex = index if index >= 0 else 0
        elif binding.kind == "date":
            date = qt.QDate.fromString(value, DATE_FORMAT) if value else qt.QDate()
            editor.date = date if date.isValid() else qt.QDate.currentDate()
        elif binding.kind == "spin":
            editor.value = int(value)

    def fieldValue(self, field: str):
        """Return what the user entered for ``field``: text, or a bool/int/choice value."""
        if field in TOGGLE_PAIRS:
            return self.pairValue(field)
        binding = FIELD_WIDGET[field]
        editor = self.widget(binding.widget)
        if binding.kind == "line":
            return editor.text
        if binding.kind == "check":
            return bool(editor.checked)
        if binding.kind == "combo":
            return editor.itemData(editor.currentIndex)
        if binding.kind == "date":
            return editor.date.toString(DATE_FORMAT)
        return int(editor.value)

    def setPairValue(self, field: str, value: str) -> None:
        """Check the toggle of a pair that matches ``value`` (none for the 'off' value)."""
        for toggle in TOGGLE_PAIRS[field][1]:
            self.widget(toggle).checked = TOGGLE_VALUES[toggle][1] == value

    def pairValue(self, field: str) -> str:
        """Return the value of a pair of toggles (its 'off' value when neither is on)."""
        for toggle in TOGGLE_PAIRS[field][1]:
            if self.widget(toggle).checked:
                return TOGGLE_VALUES[toggle][1]
        return PAIR_OFF_VALUE[field]

    # -- state ----------------------------------------------------------------------------------

    def updateEnabledState(self) -> None:
        """Enable the widgets whose toggle is on (their values are kept while off)."""
        for toggle, dependents in DEPENDENTS.items():
            on = bool(self.widget(toggle).checked)
            for name in dependents:
                self.widget(name).enabled = on
        cMove = self.fieldValue("retrieve_method") == "c-move"
        for name in (
            "moveDestinationAeTitleLabel",
            "moveDestinationAeTitleLineEdit",
            "storagePortLabel",
            "storagePortLineEdit",
        ):
            self.widget(name).enabled = cMove
        # Retrieving new studies at once is the automatic loading mode's (neither toggle on).
        autoRetrieve = self.widget("notificationsAutoRetrieveCheckBox")
        autoRetrieve.enabled = bool(autoRetrieve.enabled) and self.pairValue("load_mode") == "auto"

    def showErrors(self, errors: dict[str, str]) -> None:
        """Highlight the fields in ``errors`` and show each reason next to its field."""
        self._errors = dict(errors)
        messages: dict[str, list[str]] = {}
        for field, message in errors.items():
            labelName = errorLabelFor(field)
            if labelName:
                messages.setdefault(labelName, []).append(shortReason(field, message))
        for name in self._allErrorLabels():
            label = self.widget(name)
            text = "\n".join(messages.get(name, []))
            label.text = text
            label.styleSheet = ERROR_LABEL_STYLE
            label.visible = bool(text)
        for binding in FIELD_WIDGETS:
            editor = self.widget(binding.widget)
            message = errors.get(binding.field, "")
            editor.setProperty("invalid", bool(message))
            if message:
                editor.styleSheet = INVALID_STYLE if binding.kind != "check" else "color: #c62828;"
                editor.toolTip = message
            else:
                editor.styleSheet = ""
                editor.toolTip = FIELD_INFO[binding.field].help
        for field, (_label, toggles) in TOGGLE_PAIRS.items():
            message = errors.get(field, "")
            for toggle in toggles:
                self.widget(toggle).styleSheet = "color: #c62828;" if message else ""

    @property
    def errors(self) -> dict[str, str]:
        """The errors shown now: field -> message."""
        return dict(self._errors)

    def _allErrorLabels(self) -> list[str]:
        names = [b.errorLabel for b in FIELD_WIDGETS if b.errorLabel]
        names += [label for label, _toggles in TOGGLE_PAIRS.values()]
        return sorted(set(names))
