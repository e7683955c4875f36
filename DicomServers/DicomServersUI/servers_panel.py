"""The DICOM Servers panel: the ordered server list, its actions and every setting of a server.

Built from ``Resources/UI/DicomServersPanel.ui`` and written in Slicer's PythonQt idiom (Qt
properties as attributes, signals with ``.connect``), so the same file runs in Slicer's module
panel and in the PySide6 harness (:mod:`DicomServersUI.pyside_qt`).

What the panel does, after the DICOM Servers page of the specification:

- the list shows the servers in order, each with its connection status icon (tooltip: time of
  the last test), a mark on the default server and a delete icon (deleting asks first);
- Add (default settings), Duplicate (exact copy named ``<name> (n)``), Move up and Move down;
- selecting an entry shows its configuration below; Ctrl-click on the selected entry deselects
  it and hides the configuration;
- each field is checked as the user types (:func:`DicomServersLib.validation.parse_field`): an
  invalid field is highlighted with the reason next to it and is never saved; every valid edit
  is saved at once through :meth:`DicomServersLib.registry.ServerRegistry.update` (the password
  when the field is left); an edit that cannot be saved is kept in the form, and leaving the
  server asks whether to keep editing or discard it;
- Export… saves the list as JSON without passwords; Import… merges a file by name after showing
  what it adds, changes and leaves unchanged (errors per entry; all or nothing);
- Test connection runs the connection test on a worker thread; a ``qt.QTimer`` picks up its
  steps on the main thread, so the UI never freezes.
"""

from __future__ import annotations

import datetime as _dt
import html
import logging
from pathlib import Path

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from DicomServersLib import connection_status
from DicomServersLib.background import BackgroundJob
from DicomServersLib.server import FIELD_INFO
from DicomServersLib.server_exchange import apply_import, export_file, plan_import, read_document
from DicomServersLib.validation import ValidationError, check_names_unique, parse_field

from . import icons
from .connection_runner import (
    FAILED,
    OK,
    RUNNING,
    UNKNOWN,
    ConnectionStatus,
    ConnectionTester,
    TestOutcome,
    defaultConnectionTester,
    toTestStep,
)
from .notifications_controller import notificationStatusText
from .server_form import FIELD_WIDGETS, TOGGLE_VALUES, ServerForm
from .ui_loader import (
    childWidgetVariables,
    execDialog,
    loadUI,
    resourcePath,
    setContentsMargins,
)

#: Typed fields: checked at each key press, saved when the user presses Enter or leaves the
#: field (so half-typed values such as a partial server name are never saved).
DEFERRED_FIELDS = frozenset(b.field for b in FIELD_WIDGETS if b.kind == "line")

#: How often the main thread picks up connection-test progress (milliseconds).
TEST_POLL_INTERVAL_MS = 30

SERVER_ID_ROLE = qt.Qt.UserRole
MIN_VISIBLE_ROWS = 3
MAX_VISIBLE_ROWS = 8
WARNING_STYLE = "color: #b45309;"
ERROR_COLOR = "#c62828"
OK_COLOR = "#2e7d32"
ERROR_STYLE = f"color: {ERROR_COLOR};"


class _Row:
    """The widgets of one list entry."""

    def __init__(self, widget, statusLabel, nameLabel, defaultLabel, deleteButton) -> None:
        self.widget = widget
        self.statusLabel = statusLabel
        self.nameLabel = nameLabel
        self.defaultLabel = defaultLabel
        self.deleteButton = deleteButton


class DicomServersPanel:
    """The server list and the selected server's configuration.

    Parameters
    ----------
    registry
        The ordered server list (:class:`DicomServersLib.registry.ServerRegistry`); every change
        the user makes goes through it and is saved at once.
    connectionTester
        Runs a server's connection test on a worker thread
        (:class:`~DicomServersUI.connection_runner.ConnectionTester`); default: the core's deep
        test when installed.
    secretStoreWarning
        Shown under the password field (e.g. passwords only remembered for this session).

    Attributes
    ----------
    widget
        The panel's top-level widget, to put in a layout.
    ui
        Its named child widgets (``ui.serverListWidget``, ``ui.nameLineEdit``...).
    """

    def __init__(
        self,
        registry,
        connectionTester: ConnectionTester | None = None,
        secretStoreWarning: str = "",
    ):
        self.registry = registry
        self.connectionTester = (
            connectionTester if connectionTester is not None else defaultConnectionTester()
        )
        self.secretStoreWarning = secretStoreWarning
        self.widget = loadUI(resourcePath("UI/DicomServersPanel.ui"))
        self.ui = childWidgetVariables(self.widget)
        self.form = ServerForm(self.ui)
        self._currentId = None
        self._pending: dict = {}
        self._updating = False
        self._listIds: list = []
        self._rows: dict = {}
        self._statuses: dict = {}
        self._notificationStatuses: dict = {}
        self._jobs: dict = {}
        self._jobTimer = qt.QTimer(self.widget)
        self._jobTimer.interval = TEST_POLL_INTERVAL_MS
        self._jobTimer.timeout.connect(self._drainJobs)
        self._loadStatuses()
        self._setupActions()
        self._connectFields()
        self._showLoadProblems()
        self._refreshList()
        self._showCurrent()
        self.registry.add_listener(self._onRegistryChanged)

    # -- set-up ----------------------------------------------------------------------------------

    def _setupActions(self) -> None:
        ui = self.ui
        actions = (
            (
                ui.addServerButton,
                "add",
                "Add a new DICOM server with default settings to the list",
                self.onAddServer,
            ),
            (
                ui.duplicateServerButton,
                "duplicate",
                "Duplicate the selected server: an exact copy of its configuration, named with a"
                " numerical suffix",
                self.onDuplicateServer,
            ),
            (
                ui.moveUpButton,
                "up",
                "Move the selected server up. The list order is the order of the server"
                " drop-down in the study browser.",
                self.onMoveUp,
            ),
            (
                ui.moveDownButton,
                "down",
                "Move the selected server down. The list order is the order of the server"
                " drop-down in the study browser.",
                self.onMoveDown,
            ),
        )
        for button, iconName, toolTip, slot in actions:
            button.icon = icons.icon(iconName)
            button.toolTip = toolTip
            button.clicked.connect(lambda *args, slot=slot: slot())
        listWidget = ui.serverListWidget
        listWidget.toolTip = (
            "Select a server to see its configuration; Ctrl-click the selected server to hide it."
        )
        listWidget.itemSelectionChanged.connect(self._onListSelectionChanged)
        deleteShortcut = qt.QShortcut(qt.QKeySequence(qt.QKeySequence.Delete), listWidget)
        deleteShortcut.context = qt.Qt.WidgetShortcut
        deleteShortcut.activated.connect(self._onDeleteKey)
        self._deleteShortcut = deleteShortcut
        ui.storageFolderBrowseButton.icon = icons.icon("folder")
        ui.storageFolderBrowseButton.clicked.connect(lambda *args: self.onBrowseStorageFolder())
        ui.testConnectionButton.clicked.connect(lambda *args: self.onTestConnection())
        ui.exportServersButton.toolTip = (
            "Save the server list to a JSON file to share or back it up (passwords are never"
            " exported)"
        )
        ui.exportServersButton.clicked.connect(lambda *args: self.onExportServers())
        ui.importServersButton.toolTip = (
            "Add or update servers from an exported JSON file (merged by name); what would"
            " change is shown before anything is applied"
        )
        ui.importServersButton.clicked.connect(lambda *args: self.onImportServers())
        ui.testConnectionButton.toolTip = (
            "Test the connection to this server in the background: network, association,"
            " C-ECHO, query and (when on) the REST API"
        )

    def _connectFields(self) -> None:
        for binding in FIELD_WIDGETS:
            editor = self.form.widget(binding.widget)
            field = binding.field
            if binding.kind == "line":
                editor.textEdited.connect(lambda *args, field=field: self._onFieldEdited(field))
                editor.editingFinished.connect(lambda *args: self._flushDeferred())
            elif binding.kind == "check":
                editor.toggled.connect(lambda *args, field=field: self._onFieldEdited(field))
            elif binding.kind == "combo":
                editor.currentIndexChanged.connect(
                    lambda *args, field=field: self._onFieldEdited(field)
                )
            elif binding.kind == "date":
                editor.dateChanged.connect(lambda *args, field=field: self._onFieldEdited(field))
            elif binding.kind == "spin":
                editor.valueChanged.connect(lambda *args, field=field: self._onFieldEdited(field))
        for toggle in TOGGLE_VALUES:
            self.form.widget(toggle).toggled.connect(
                lambda checked, toggle=toggle: self._onPairToggled(toggle, checked)
            )

    # -- reading the registry ----------------------------------------------------------------------

    def _serverById(self, serverId):
        if serverId is None:
            return None
        for server in self.registry.servers:
            if server.id == serverId:
                return server
        return None

    def currentServer(self):
        """Return (a copy of) the server shown in the form, or None."""
        return self._serverById(self._currentId)

    @property
    def pendingEdits(self) -> dict:
        """Edits shown in the form but not saved (invalid, or waiting for the field to be left)."""
        return dict(self._pending)

    def status(self, serverId) -> ConnectionStatus:
        """Return the connection status of a server (``unknown`` before its first test)."""
        return self._statuses.get(serverId) or ConnectionStatus()

    def _settings(self):
        return getattr(getattr(self.registry, "store", None), "settings", None)

    def _loadStatuses(self) -> None:
        settings = self._settings()
        if settings is None:
            return
        for serverId, record in connection_status.load_records(settings).items():
            self._statuses[serverId] = ConnectionStatus(
                record.state, record.tested_at, record.summary, [], record.diagnosis
            )

    def _saveStatus(self, serverId, status: ConnectionStatus) -> None:
        settings = self._settings()
        if settings is None or status.testedAt is None:
            return
        record = connection_status.TestRecord(
            status.state, status.testedAt, status.summary, status.diagnosis
        )
        try:
            connection_status.save_record(settings, serverId, record)
        except OSError as error:  # informative only: never stop the UI for it
            logging.warning("DICOM Servers: the connection status was not saved: %s", error)

    # -- the list ---------------------------------------------------------------------------------

    def _onRegistryChanged(self) -> None:
        self._refreshList()
        if self._currentId is not None and self.currentServer() is None:
            self._pending.clear()
            self._currentId = None
            self._showCurrent()

    def _makeRow(self, server) -> _Row:
        widget = qt.QWidget()
        widget.objectName = "serverRow"
        layout = qt.QHBoxLayout(widget)
        setContentsMargins(layout, 4, 2, 2, 2)
        layout.spacing = 6
        statusLabel = qt.QLabel()
        statusLabel.objectName = "statusIconLabel"
        nameLabel = qt.QLabel()
        nameLabel.objectName = "nameLabel"
        defaultLabel = qt.QLabel()
        defaultLabel.objectName = "defaultLabel"
        defaultLabel.toolTip = "Default server: preselected when the application opens"
        deleteButton = qt.QToolButton()
        deleteButton.objectName = "deleteButton"
        deleteButton.icon = icons.icon("delete")
        deleteButton.autoRaise = True
        deleteButton.toolTip = "Delete this server…"
        serverId = server.id
        deleteButton.clicked.connect(lambda *args, serverId=serverId: self.onDeleteServer(serverId))
        layout.addWidget(statusLabel)
        layout.addWidget(nameLabel)
        layout.addWidget(defaultLabel)
        layout.addStretch(1)
        layout.addWidget(deleteButton)
        return _Row(widget, statusLabel, nameLabel, defaultLabel, deleteButton)

    def _refreshList(self) -> None:
        listWidget = self.ui.serverListWidget
        servers = self.registry.servers
        ids = [server.id for server in servers]
        wasUpdating = self._updating
        self._updating = True
        listWidget.blockSignals(True)
        try:
            if ids != self._listIds:
                listWidget.clear()
                self._rows = {}
                for server in servers:
                    item = qt.QListWidgetItem()
                    item.setData(SERVER_ID_ROLE, server.id)
                    listWidget.addItem(item)
                    row = self._makeRow(server)
                    listWidget.setItemWidget(item, row.widget)
                    self._rows[server.id] = row
                self._listIds = ids
            for server in servers:
                self._updateRow(server)
            self._selectInList(self._currentId)
        finally:
            listWidget.blockSignals(False)
            self._updating = wasUpdating
        self._updateRowHighlight()
        self._updateActions()
        self._fitListHeight()

    def _fitListHeight(self) -> None:
        """Show 3 to 8 entries without empty space below the last one."""
        listWidget = self.ui.serverListWidget
        rowHeight = 28
        for row in self._rows.values():
            rowHeight = max(row.widget.sizeHint.height(), 20)
            break
        rows = max(MIN_VISIBLE_ROWS, min(len(self._listIds), MAX_VISIBLE_ROWS))
        height = rows * (rowHeight + 2 * listWidget.spacing) + 2 * listWidget.frameWidth + 2
        listWidget.minimumHeight = height
        listWidget.maximumHeight = height

    def _updateRow(self, server) -> None:
        row = self._rows.get(server.id)
        if row is None:
            return
        row.nameLabel.text = server.name
        font = row.nameLabel.font
        font.setBold(bool(server.is_default))
        row.nameLabel.font = font
        if server.is_default:
            row.defaultLabel.pixmap = icons.pixmap("default", 16)
            row.defaultLabel.visible = True
        else:
            row.defaultLabel.visible = False
        row.deleteButton.toolTip = f"Delete “{server.name}”…"
        self._updateRowStatus(server.id)
        item = self._itemFor(server.id)
        if item is not None:
            item.setToolTip(f"{server.name}: {server.called_ae_title}@{server.host}:{server.port}")
            item.setSizeHint(row.widget.sizeHint)

    def _updateRowStatus(self, serverId) -> None:
        row = self._rows.get(serverId)
        if row is None:
            return
        status = self.status(serverId)
        iconName = {OK: "status-ok", FAILED: "status-failed", RUNNING: "status-running"}.get(
            status.state, "status-unknown"
        )
        row.statusLabel.pixmap = icons.pixmap(iconName, 16)
        row.statusLabel.toolTip = status.toolTip()
        row.statusLabel.setProperty("connectionState", status.state)

    def _updateRowHighlight(self) -> None:
        for serverId, row in self._rows.items():
            selected = serverId == self._currentId
            row.nameLabel.styleSheet = "color: palette(highlighted-text);" if selected else ""

    def _itemFor(self, serverId):
        listWidget = self.ui.serverListWidget
        for index in range(listWidget.count):
            item = listWidget.item(index)
            if item.data(SERVER_ID_ROLE) == serverId:
                return item
        return None

    def _rowOf(self, serverId) -> int:
        return self._listIds.index(serverId) if serverId in self._listIds else -1

    def _selectInList(self, serverId) -> None:
        listWidget = self.ui.serverListWidget
        blocked = listWidget.blockSignals(True)
        try:
            row = self._rowOf(serverId)
            if row < 0:
                listWidget.clearSelection()
                listWidget.currentRow = -1
            else:
                listWidget.currentRow = row
                item = listWidget.item(row)
                if not item.isSelected():
                    item.setSelected(True)
        finally:
            listWidget.blockSignals(blocked)

    def _selectedId(self):
        items = self.ui.serverListWidget.selectedItems()
        return items[0].data(SERVER_ID_ROLE) if items else None

    def _updateActions(self) -> None:
        row = self._rowOf(self._currentId)
        count = len(self._listIds)
        self.ui.duplicateServerButton.enabled = row >= 0
        self.ui.moveUpButton.enabled = row > 0
        self.ui.moveDownButton.enabled = 0 <= row < count - 1

    def _onListSelectionChanged(self) -> None:
        if self._updating:
            return
        newId = self._selectedId()
        if newId == self._currentId:
            return
        self._flushDeferred()
        if self._pending:
            # Keep the server with the unsaved edit selected until the user decides; ask once
            # the click that changed the selection is fully handled.
            self._selectInList(self._currentId)
            qt.QTimer.singleShot(0, lambda: self._askBeforeSwitching(newId))
            return
        self._switchTo(newId)

    def _askBeforeSwitching(self, newId) -> None:
        if self.confirmLeave():
            if newId is not None and self._serverById(newId) is None:
                newId = None
            self._switchTo(newId)

    def confirmLeave(self) -> bool:
        """Return True when the server shown can be left: nothing unsaved, or the user agreed.

        An edit that cannot be saved is never dropped silently: the user chooses between
        keeping on editing (False) and discarding it (True).
        """
        self._flushDeferred()
        if not self._pending:
            return True
        server = self.currentServer()
        name = server.name if server else "this server"
        errors = self.form.errors
        reasons = list(dict.fromkeys(errors.values())) or [
            f"{FIELD_INFO[field].label}: not saved"
            for field in self._pending
            if field in FIELD_INFO
        ]
        answer = self.ask(
            "Unsaved changes",
            f"Some settings of “{name}” are not valid and have not been saved.",
            [
                ("keep", "Keep editing", qt.QMessageBox.RejectRole),
                ("discard", "Discard changes", qt.QMessageBox.DestructiveRole),
            ],
            default="keep",
            informativeText="\n".join(reasons),
            icon=qt.QMessageBox.Warning,
        )
        if answer != "discard":
            self._focusFirstError()
            return False
        self._pending.clear()
        self.form.showErrors({})
        return True

    def _switchTo(self, serverId) -> None:
        self._pending.clear()
        self._currentId = serverId if self._serverById(serverId) is not None else None
        self._selectInList(self._currentId)
        self._updateRowHighlight()
        self._updateActions()
        self._showCurrent()

    def selectServer(self, name) -> bool:
        """Select the server called ``name`` (None: no server) as if clicked; False if refused."""
        serverId = None if name is None else self.registry.get(name).id
        if serverId == self._currentId:
            return True
        if not self.confirmLeave():
            return False
        self._switchTo(serverId)
        return True

    # -- the form -------------------------------------------------------------------------------

    def _showCurrent(self) -> None:
        server = self.currentServer()
        hasServers = bool(self._listIds)
        self.ui.noSelectionLabel.text = (
            "Select a server in the list to see and edit its configuration."
            if hasServers
            else "No DICOM server yet: click Add to create one."
        )
        self.ui.noSelectionLabel.visible = server is None
        self.ui.configurationWidget.visible = server is not None
        if server is None:
            return
        wasUpdating = self._updating
        self._updating = True
        try:
            self.form.setServer(server)
            self.form.showErrors({})
        finally:
            self._updating = wasUpdating
        self._showPasswordStore()
        self._showConnectionStatus()
        self._showNotificationStatus()

    def _showPasswordStore(self) -> None:
        """Say under the password where it is kept; warn when only for this session."""
        store = getattr(getattr(self.registry, "store", None), "secrets", None)
        label = self.ui.passwordStoreLabel
        location = getattr(store, "location", "this session only (not saved)")
        if store is not None and getattr(store, "persistent", False):
            label.text = f"Kept in: {location}"
            label.styleSheet = ""
            label.toolTip = f"Where the password is kept: {location}"
            return
        warning = self.secretStoreWarning or "Passwords are only remembered for this session."
        # The first sentence under the field; the advice (how to keep it) in the tooltip.
        label.text = "⚠ " + warning.split(". ")[0].rstrip(".") + "."
        label.styleSheet = WARNING_STYLE
        label.toolTip = warning

    def setNotificationStatus(self, status) -> None:
        """Show how a server's notifications work and why (a notification status listener)."""
        self._notificationStatuses[status.server] = status
        self._showNotificationStatus()

    def notificationStatusText(self) -> str:
        """Return the notification status shown for the selected server ("" when none)."""
        return self.ui.notificationStatusLabel.text

    def _showNotificationStatus(self) -> None:
        server = self.currentServer()
        status = self._notificationStatuses.get(server.name) if server is not None else None
        label = self.ui.notificationStatusLabel
        label.text = notificationStatusText(status) if status is not None else ""
        label.visible = status is not None
        warn = status is not None and status.mode in ("polling", "unavailable")
        label.styleSheet = WARNING_STYLE if warn else ""

    def _onFieldEdited(self, field) -> None:
        if self._updating or self._currentId is None:
            return
        self._pending[field] = self.form.fieldValue(field)
        self.form.updateEnabledState()
        self._trySave(flush=field not in DEFERRED_FIELDS)

    def _onPairToggled(self, toggle, checked) -> None:
        if self._updating or self._currentId is None:
            return
        field, value = TOGGLE_VALUES[toggle]
        if checked:
            self._updating = True
            try:
                self.form.setPairValue(field, value)
            finally:
                self._updating = False
        self._pending[field] = self.form.pairValue(field)
        if field == "date_filter" and self._pending[field] == "from_date":
            # The date picker always shows a date: filtering by date uses the one shown.
            self._pending["filter_from_date"] = self.form.fieldValue("filter_from_date")
        self.form.updateEnabledState()
        self._trySave(flush=False)

    def _flushDeferred(self) -> None:
        if any(field in DEFERRED_FIELDS for field in self._pending):
            self._trySave(flush=True)

    def _trySave(self, flush: bool) -> None:
        """Save what can be saved of the pending edits; show why the rest cannot."""
        server = self.currentServer()
        if server is None:
            self._pending.clear()
            return
        parseErrors: dict = {}
        parsed: dict = {}
        for field, raw in list(self._pending.items()):
            value, reason = parse_field(field, raw)
            if not reason and field == "name":
                reason = self._nameTaken(value)
            if reason:
                parseErrors[field] = reason
            elif getattr(server, field) == value:
                del self._pending[field]  # back to the stored value: nothing to save
            elif flush or field not in DEFERRED_FIELDS:
                parsed[field] = value
        saveErrors = self._save(parsed) if parsed else {}
        self.form.showErrors({**saveErrors, **parseErrors})

    def _save(self, parsed: dict) -> dict:
        """Save ``parsed`` values together, else each one that can be saved on its own."""
        remaining = dict(parsed)
        errors: dict = {}
        while remaining:
            try:
                self._update(remaining)
            except ValidationError as error:
                errors = self._errorsByField(error)
            except OSError as error:
                self.showError(f"The settings could not be saved: {error}")
                return {field: f"{field}: not saved ({error})" for field in remaining}
            else:
                for field in remaining:
                    self._pending.pop(field, None)
                return {}
            if len(remaining) == 1:
                return errors
            savedAny = False
            for field in list(remaining):
                try:
                    self._update({field: remaining[field]})
                except (ValidationError, OSError):
                    continue
                del remaining[field]
                self._pending.pop(field, None)
                savedAny = True
            if not savedAny:
                return errors
        return {}

    def _nameTaken(self, name) -> str:
        """Return why ``name`` cannot be used by the current server ("" if it can)."""
        others = [s.name for s in self.registry.servers if s.id != self._currentId]
        errors = check_names_unique([*others, name])
        return errors[0][1] if errors else ""

    def _update(self, values: dict) -> None:
        server = self.currentServer()
        self.registry.update(server.name, **values)

    @staticmethod
    def _errorsByField(error: ValidationError) -> dict:
        errors: dict = {}
        for field, message in error.errors:
            info = FIELD_INFO.get(field)
            prefix = f"{info.label} ({field}): " if info else ""
            position = message.find(prefix) if prefix else -1
            errors.setdefault(field, message[position:] if position > 0 else message)
        return errors

    def _focusFirstError(self) -> None:
        errors = self.form.errors
        for binding in FIELD_WIDGETS:
            if binding.field in errors:
                self.form.widget(binding.widget).setFocus()
                return

    def onBrowseStorageFolder(self) -> None:
        """Let the user pick the PACS storage folder; it is then checked and saved like typing."""
        current = self.ui.storageFolderLineEdit.text
        folder = self.chooseFolder("PACS storage folder", current)
        if not folder:
            return
        self.ui.storageFolderLineEdit.text = folder
        self._onFieldEdited("storage_folder")
        self._flushDeferred()

    # -- actions --------------------------------------------------------------------------------

    def onAddServer(self) -> None:
        """Add a server with default settings and show it for completing its configuration."""
        if not self.confirmLeave():
            return
        try:
            server = self.registry.add()
        except (ValidationError, OSError) as error:
            self.showError(f"The server could not be added: {error}")
            return
        self._switchTo(server.id)
        self.ui.nameLineEdit.setFocus()
        self.ui.nameLineEdit.selectAll()

    def onDuplicateServer(self) -> None:
        """Insert an exact copy of the selected server after it and select the copy."""
        server = self.currentServer()
        if server is None or not self.confirmLeave():
            return
        try:
            copy = self.registry.duplicate(server.name)
        except (ValidationError, OSError) as error:
            self.showError(f"The server could not be duplicated: {error}")
            return
        self._switchTo(copy.id)

    def onMoveUp(self) -> None:
        """Move the selected server one place up."""
        self._move(-1)

    def onMoveDown(self) -> None:
        """Move the selected server one place down."""
        self._move(+1)

    def _move(self, step: int) -> None:
        server = self.currentServer()
        if server is None:
            return
        try:
            if step < 0:
                self.registry.move_up(server.name)
            else:
                self.registry.move_down(server.name)
        except (ValidationError, OSError) as error:
            self.showError(f"The server could not be moved: {error}")

    def _onDeleteKey(self) -> None:
        if self._currentId is not None:
            self.onDeleteServer(self._currentId)

    def onDeleteServer(self, serverId) -> None:
        """Delete a server after the user confirms."""
        server = self._serverById(serverId)
        if server is None:
            return
        details = "Its settings and its stored password are removed. This cannot be undone."
        if serverId == self._currentId and self._pending:
            details += "\nThe changes not saved yet are lost too."
        answer = self.ask(
            "Delete DICOM server",
            f"Delete the server “{server.name}”?",
            [
                ("delete", "Delete", qt.QMessageBox.DestructiveRole),
                ("cancel", "Cancel", qt.QMessageBox.RejectRole),
            ],
            default="cancel",
            informativeText=details,
            icon=qt.QMessageBox.Question,
        )
        if answer != "delete":
            return
        job = self._jobs.pop(serverId, None)
        if job is not None:
            job.cancel()
        if serverId == self._currentId:
            self._pending.clear()
            self._currentId = None
        try:
            self.registry.remove(server.name)
        except (ValidationError, OSError) as error:
            self.showError(f"The server could not be deleted: {error}")
        self._statuses.pop(serverId, None)
        settings = self._settings()
        if settings is not None:
            try:
                connection_status.forget(settings, [serverId])
            except OSError as error:
                logging.warning("DICOM Servers: %s", error)
        self._refreshList()
        self._showCurrent()

    # -- export and import ----------------------------------------------------------------------

    def onExportServers(self) -> None:
        """Save the list (no passwords) to a JSON file the user picks."""
        path = self.chooseFile("Export DICOM servers", save=True)
        if not path:
            return
        servers = self.registry.servers
        try:
            export_file(servers, Path(path))
        except OSError as error:
            self.showError(f"The server list could not be exported to {path}: {error}")
            return
        self.ask(
            "Export DICOM servers",
            f"Exported {len(servers)} server(s) to {path}.",
            [("ok", "OK", qt.QMessageBox.AcceptRole)],
            informativeText="Passwords and tokens are not in the file: enter them after"
            " importing it elsewhere.",
            icon=qt.QMessageBox.Information,
        )

    def onImportServers(self) -> None:
        """Merge servers from a JSON file by name, after showing what would change."""
        if not self.confirmLeave():
            return
        path = self.chooseFile("Import DICOM servers", save=False)
        if not path:
            return
        try:
            plan = plan_import(self.registry, read_document(Path(path)))
        except ValidationError as error:
            self.showError(f"Nothing was imported from {path}: {error}")
            return
        if not plan.ok:
            self.showError(
                f"Nothing was imported from {path}: it has {len(plan.errors)} error(s).\n"
                + "\n".join(f"• {error}" for error in plan.errors)
            )
            return
        if not plan.added and not plan.changed:
            self.ask(
                "Import DICOM servers",
                f"Nothing to import: the {len(plan.unchanged)} server(s) in {path} are already"
                " in the list, unchanged.",
                [("ok", "OK", qt.QMessageBox.AcceptRole)],
                icon=qt.QMessageBox.Information,
            )
            return
        answer = self.ask(
            "Import DICOM servers",
            f"Import {path}: {len(plan.added)} added, {len(plan.changed)} changed,"
            f" {len(plan.unchanged)} unchanged?",
            [
                ("import", "Import", qt.QMessageBox.AcceptRole),
                ("cancel", "Cancel", qt.QMessageBox.RejectRole),
            ],
            default="import",
            informativeText=self._planText(plan),
            icon=qt.QMessageBox.Question,
        )
        if answer != "import":
            return
        try:
            apply_import(self.registry, plan)
        except (ValidationError, OSError) as error:
            self.showError(f"Nothing was imported: {error}")

    @staticmethod
    def _planText(plan) -> str:
        """The dry-run plan in plain words: added, changed (which settings), unchanged."""
        lines = []
        if plan.added:
            lines.append("Added: " + ", ".join(plan.added))
        for name, fields in plan.changed.items():
            labels = [FIELD_INFO[f].label if f in FIELD_INFO else f for f in fields]
            lines.append(f"Changed: {name} ({', '.join(labels)})")
        if plan.unchanged:
            lines.append("Unchanged: " + ", ".join(plan.unchanged))
        lines.append("Passwords are not in the file: changed servers keep theirs.")
        return "\n".join(lines)

    # -- connection test ------------------------------------------------------------------------

    def onTestConnection(self) -> None:
        """Start (or cancel) the connection test of the selected server, in the background."""
        serverId = self._currentId
        if serverId is None:
            return
        if serverId in self._jobs:
            self._jobs[serverId].cancel()
            self.ui.connectionTestStatusLabel.text = "Cancelling…"
            return
        if self.connectionTester is None:
            self.ui.connectionTestStatusLabel.text = (
                "The connection test is not available in this installation."
            )
            self.ui.connectionTestStatusLabel.styleSheet = ERROR_STYLE
            return
        self._flushDeferred()
        if self._pending:
            self.ui.connectionTestStatusLabel.text = (
                "Fix the highlighted settings first: the test uses the saved settings."
            )
            self.ui.connectionTestStatusLabel.styleSheet = ERROR_STYLE
            self._focusFirstError()
            return
        server = self.currentServer()
        tester = self.connectionTester
        previous = self.status(serverId)
        self._statuses[serverId] = ConnectionStatus(RUNNING, previous.testedAt, "", [])
        job = BackgroundJob(
            lambda emit, cancel: tester(server, emit, cancel),
            name=f"DicomServers-test-{server.name}",
        )
        self._jobs[serverId] = job.start()
        if not self._jobTimer.active:
            self._jobTimer.start()
        self._updateRowStatus(serverId)
        self._showConnectionStatus()

    def isTesting(self, serverId=None) -> bool:
        """True while a connection test runs (for ``serverId``, or for any server)."""
        return bool(self._jobs) if serverId is None else serverId in self._jobs

    def _drainJobs(self) -> None:
        for serverId, job in list(self._jobs.items()):
            status = self._statuses.setdefault(serverId, ConnectionStatus(RUNNING))
            for event in job.drain():
                status.steps.append(toTestStep(event))
            if job.done:
                del self._jobs[serverId]
                self._finishTest(serverId, job, status)
            if serverId == self._currentId:
                self._showConnectionStatus()
            self._updateRowStatus(serverId)
        if not self._jobs:
            self._jobTimer.stop()

    def _finishTest(self, serverId, job, status: ConnectionStatus) -> None:
        try:
            outcome = job.result()
        except Exception as error:  # the tester itself broke: say so, keep the UI alive
            logging.exception("DICOM Servers: the connection test failed unexpectedly")
            outcome = TestOutcome(
                False,
                f"The connection test stopped unexpectedly: {error}",
                tuple(status.steps),
                "This is a bug in the connection test; please report it with the log.",
            )
        if job.cancelled:
            self._statuses[serverId] = ConnectionStatus(
                UNKNOWN, None, "Test cancelled", list(outcome.steps) or status.steps
            )
            return
        self._statuses[serverId] = ConnectionStatus(
            OK if outcome.ok else FAILED,
            _dt.datetime.now().replace(microsecond=0),
            outcome.summary,
            list(outcome.steps) or status.steps,
            outcome.diagnosis,
        )
        if self._serverById(serverId) is not None:
            self._saveStatus(serverId, self._statuses[serverId])

    def _showConnectionStatus(self) -> None:
        serverId = self._currentId
        status = self.status(serverId)
        running = serverId in self._jobs
        self.ui.testConnectionButton.text = "Cancel test" if running else "Test connection"
        label = self.ui.connectionTestStatusLabel
        label.styleSheet = ""
        if running:
            label.text = "Testing…"
        elif status.state == OK:
            label.text = f"✔ {status.summary or 'Connection OK'}"
            label.styleSheet = f"color: {OK_COLOR};"
        elif status.state == FAILED:
            label.text = f"✖ {status.summary or 'Connection failed'}"
            label.styleSheet = ERROR_STYLE
        else:
            label.text = status.summary or "Not tested yet."
        label.toolTip = status.toolTip()
        self.ui.connectionStepsLabel.text = self._stepsHtml(status)
        self.ui.connectionStepsLabel.visible = bool(status.steps or status.diagnosis)

    @staticmethod
    def _stepsHtml(status: ConnectionStatus) -> str:
        rows = []
        for step in status.steps:
            mark, color = {True: ("✔", OK_COLOR), False: ("✖", ERROR_COLOR)}.get(
                step.ok, ("–", "#757575")
            )
            detail = html.escape(step.detail)
            rows.append(
                f'<tr><td style="color:{color}; padding-right:6px">{mark}</td>'
                f"<td style='padding-right:8px'><b>{html.escape(step.name)}</b></td>"
                f"<td>{detail}</td></tr>"
            )
            if step.ok is False and step.diagnosis:
                rows.append(
                    f'<tr><td></td><td colspan="2" style="color:{ERROR_COLOR}">'
                    f"{html.escape(step.diagnosis)}</td></tr>"
                )
        text = "<table cellspacing='2'>" + "".join(rows) + "</table>" if rows else ""
        shown = {s.diagnosis for s in status.steps if s.ok is False}
        if status.diagnosis and status.diagnosis not in shown:
            text += f"<p>{html.escape(status.diagnosis)}</p>"
        return text

    # -- messages and dialogs (the only modal UI; tests answer them like a user) -----------------

    def _showLoadProblems(self) -> None:
        problems = list(getattr(getattr(self.registry, "load_result", None), "problems", []) or [])
        label = self.ui.loadProblemsLabel
        label.visible = bool(problems)
        if problems:
            label.text = (
                "⚠ Problems in the stored server list (nothing was deleted):\n"
                + "\n".join(f"• {p}" for p in problems)
            )
            label.styleSheet = WARNING_STYLE

    def ask(self, title, text, choices, default=None, informativeText="", icon=None):
        """Ask a question in a message box; return the key of the chosen button.

        ``choices`` is a list of ``(key, button text, qt.QMessageBox role)``; closing the box
        (Escape) chooses the button with the reject role.
        """
        box = qt.QMessageBox(self.widget)
        box.objectName = "DicomServersQuestion"
        box.windowTitle = title
        box.text = text
        if informativeText:
            box.informativeText = informativeText
        if icon is not None:
            box.icon = icon
        buttons = []
        for key, label, role in choices:
            button = box.addButton(label, role)
            button.objectName = f"{key}Button"
            buttons.append((key, button))
            if key == default:
                box.setDefaultButton(button)
            if role == qt.QMessageBox.RejectRole:
                box.setEscapeButton(button)
        execDialog(box)
        clicked = box.clickedButton()
        answer = next((key for key, button in buttons if button == clicked), None)
        box.deleteLater()
        return answer

    def showError(self, text) -> None:
        """Show an error message box (settings could not be written, ...)."""
        logging.error("DICOM Servers: %s", text)
        box = qt.QMessageBox(self.widget)
        box.objectName = "DicomServersError"
        box.windowTitle = "DICOM Servers"
        box.icon = qt.QMessageBox.Critical
        box.text = text
        execDialog(box)
        box.deleteLater()

    def chooseFile(self, title, save=False):
        """Ask for a JSON file to save or to open; return its path, or "" when cancelled."""
        dialog = qt.QFileDialog(self.widget, title)
        dialog.objectName = "DicomServersFileDialog"
        dialog.setNameFilter("DICOM server lists (*.json)")
        if save:
            dialog.acceptMode = qt.QFileDialog.AcceptSave
            dialog.fileMode = qt.QFileDialog.AnyFile
            dialog.defaultSuffix = "json"
            dialog.selectFile("dicom-servers.json")
        else:
            dialog.fileMode = qt.QFileDialog.ExistingFile
        accepted = execDialog(dialog)
        files = dialog.selectedFiles() if accepted else []
        dialog.deleteLater()
        return files[0] if files else ""

    def chooseFolder(self, title, start=""):
        """Ask for a folder; return its path, or an empty string when cancelled."""
        dialog = qt.QFileDialog(self.widget, title, start)
        dialog.objectName = "DicomServersFolderDialog"
        dialog.fileMode = qt.QFileDialog.Directory
        dialog.setOption(qt.QFileDialog.ShowDirsOnly, True)
        accepted = execDialog(dialog)
        files = dialog.selectedFiles() if accepted else []
        dialog.deleteLater()
        return files[0] if files else ""

    # -- lifetime ---------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Save a pending password, stop the tests and stop listening to the registry."""
        self._flushDeferred()
        for job in self._jobs.values():
            job.cancel()
        self._jobs.clear()
        self._jobTimer.stop()
        self.registry.remove_listener(self._onRegistryChanged)
