"""The study browser: pick a server, search its studies, look at a study's series, bring them here.

Built from ``Resources/UI/StudyBrowser.ui`` in Slicer's PythonQt idiom (Qt properties as
attributes, signals with ``.connect``), so the same file runs in Slicer's module panel and in
the PySide6 harness (:mod:`DicomServersUI.pyside_qt`). What it shows:

- a server dropdown in the order of the DICOM Servers list, the default server preselected
  (the first one when there is no default), kept in step with the list through a registry
  listener;
- search fields (patient name, ID, accession, modality, description) and the study-date filter,
  preset from the server's own date filter (from a date, or the last N days/months/years) and
  editable for each search;
- the studies found (date, modality, counts, and whether they are already here), a clear note
  when the list was cut off and by which limit, with "Load more"; a REST server's cached list
  is shown at once with "last synced …", then refreshed in the background;
- the selected study's series (the preview) with Transfer and Load;
- every transfer with its progress (series, instances, bytes), Cancel and Cancel all.

How images move depends on the server's loading mode
(:class:`DicomServersLib.loading_mode.LoadingPolicy`): *auto* retrieves a study as soon as it is
selected, *manual* only when Transfer is pressed, *folder* reads the PACS storage folder with no
network transfer. Searches run in :class:`DicomServersLib.background.BackgroundJob` workers and
transfers in the :class:`DicomServersLib.transfer_queue.TransferQueue`; one ``qt.QTimer`` picks
their results up on the main thread, so the UI never waits for the network or the disk.

What happens to retrieved files is the host's business (:class:`BrowserHost`): outside Slicer
they stay in the destination folder; in Slicer (:mod:`DicomServersUI.slicer_dicom`) they are
imported into ``slicer.dicomDatabase`` and the chosen series are loaded.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import logging
import os
from pathlib import Path

import qt

try:  # PySide6 harness: Qt properties read as attributes, as in PythonQt
    from __feature__ import true_property  # noqa: F401
except ImportError:  # Slicer (PythonQt)
    pass

from DicomServersLib import sources
from DicomServersLib.background import BackgroundJob
from DicomServersLib.date_filters import DateRange, relative_range, server_date_range
from DicomServersLib.loading_mode import MODE_FOLDER, MODE_MANUAL, LoadingPolicy, study_label
from DicomServersLib.local_availability import (
    IN_DATABASE,
    IN_FOLDER,
    RETRIEVED,
    LocalAvailability,
)
from DicomServersLib.query_model import (
    CUT_OFF_CANCELLED,
    CUT_OFF_ERROR,
    CUT_OFF_OUR_LIMIT,
    CUT_OFF_SERVER_LIMIT,
    QueryFilters,
)
from DicomServersLib.rest.sync import CUT_OFF_REST_LIMIT
from DicomServersLib.transfer_queue import (
    CANCELLED,
    EVENT_FINISHED,
    FAILED,
    QUEUED,
    RUNNING,
    TransferQueue,
)

from .study_models import (
    SeriesTableModel,
    StudyTableModel,
    TransferTableModel,
    formatSize,
    personName,
)
from .ui_loader import childWidgetVariables, loadUI, resourcePath

#: How often the main thread picks up search results and transfer progress (milliseconds).
POLL_INTERVAL_MS = 50
#: Pause after a study is selected before an automatic retrieve starts (keyboard scrolling).
SELECT_DELAY_MS = 250

MODALITIES = ("", "CT", "MR", "US", "CR", "DX", "MG", "NM", "PT", "XA", "RF", "OT", "SEG", "SR")
DATE_ANY, DATE_FROM, DATE_LAST = 0, 1, 2
UNITS = ("days", "months", "years")

LOAD_TAG = "load"
AUTO_TAG = "auto"
NOTIFY_TAG = "notification"

ERROR_COLOR = "#c62828"


class BrowserHost:
    """Where retrieved files go and what happens to them (outside Slicer: nothing more).

    The Slicer host (:class:`DicomServersUI.slicer_dicom.SlicerDicomHost`) imports them into
    Slicer's DICOM database and loads series; tests and the standalone window use this one.

    Parameters
    ----------
    destination
        Folder receiving retrieved studies (``<Study>/<Series>/<SOP>.dcm``).
    """

    #: Folder mode: use the PACS folder's files where they are (False: link/copy them here).
    inPlace = False
    #: The host can load series into a scene (shows the Load button).
    canLoad = False

    def __init__(self, destination):
        self.destination = Path(destination)
        self.imported: list = []
        self.loaded: list = []

    def databaseLookup(self, studyUID: str) -> dict:
        """Return ``{series UID: instances}`` of a study in the host's DICOM database."""
        return {}

    def importFiles(self, files, inPlace: bool, done) -> None:
        """Make ``files`` available to the host, then call ``done()`` on the main thread."""
        self.imported.append((list(files), inPlace))
        done()

    def loadSeries(self, seriesUIDs) -> str:
        """Load series into the host's scene; return a message for the status line."""
        self.loaded.append(list(seriesUIDs))
        return ""


def _wildcardContains(text: str) -> str:
    """Return ``*text*`` for a "contains" search, unless the user typed wildcards."""
    text = text.strip()
    if not text or "*" in text or "?" in text:
        return text
    return f"*{text}*"


def _when(stamp: str) -> str:
    try:
        moment = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


class StudyBrowser:
    """The study browser widget and its behaviour.

    Parameters
    ----------
    registry
        The ordered server list (:class:`DicomServersLib.registry.ServerRegistry`).
    host
        A :class:`BrowserHost` (default: files stay in ``<cache>/retrieved``).
    transferQueue
        The :class:`TransferQueue` to use (default: a new one, closed by :meth:`cleanup`).

    Attributes
    ----------
    widget
        The top-level widget, to put in a layout or a window.
    ui
        Its named children (``ui.serverComboBox``, ``ui.studyTableView``...).
    studyModel, seriesModel, transferModel
        The table models.
    """

    def __init__(self, registry, host=None, transferQueue=None):
        self.registry = registry
        self.host = host if host is not None else BrowserHost(defaultDestination())
        self._ownQueue = transferQueue is None
        self.queue = transferQueue if transferQueue is not None else TransferQueue()
        self.widget = loadUI(resourcePath("UI/StudyBrowser.ui"))
        self.ui = childWidgetVariables(self.widget)
        self.studyModel = StudyTableModel(self.widget)
        self.seriesModel = SeriesTableModel(self.widget)
        self.transferModel = TransferTableModel(self.widget)
        self.availability = None
        self.lastResult = None
        self.lastError = ""
        self.statusText = ""
        self.cutOffReason = ""
        self._serverId = None
        self._serverSnapshot = None
        self._study = None
        self._jobs: list = []
        self._generation = 0
        self._limit = None
        self._autoRequests: set = set()
        self._updatingServers = False
        self._timer = qt.QTimer(self.widget)
        self._timer.interval = POLL_INTERVAL_MS
        self._timer.timeout.connect(self._poll)
        self._selectTimer = qt.QTimer(self.widget)
        self._selectTimer.setProperty("singleShot", True)  # PySide6: the attribute is not it
        self._selectTimer.interval = SELECT_DELAY_MS
        self._selectTimer.timeout.connect(self._onStudySettled)
        self._setupWidgets()
        self.registry.add_listener(self._onRegistryChanged)
        self._fillServers()
        self._onServerChanged()

    # -- set-up --------------------------------------------------------------------------------

    def _setupWidgets(self) -> None:
        ui = self.ui
        for name in MODALITIES:
            ui.modalityComboBox.addItem(name)
        for text in ("Any date", "From date", "Last"):
            ui.dateModeComboBox.addItem(text)
        for unit in UNITS:
            ui.lastUnitComboBox.addItem(unit)
        ui.studyTableView.setModel(self.studyModel)
        ui.seriesTableView.setModel(self.seriesModel)
        ui.transferTableView.setModel(self.transferModel)
        for view in (ui.studyTableView, ui.seriesTableView, ui.transferTableView):
            view.verticalHeader().visible = False
            view.horizontalHeader().stretchLastSection = True
        for column, width in enumerate((170, 100, 130, 70, 200, 100, 55, 70)):
            ui.studyTableView.setColumnWidth(column, width)
        for column, width in enumerate((40, 70, 240, 70)):
            ui.seriesTableView.setColumnWidth(column, width)
        for column, width in enumerate((260, 70, 90, 80)):
            ui.transferTableView.setColumnWidth(column, width)
        header = ui.studyTableView.horizontalHeader()
        header.setSortIndicator(StudyTableModel.DATE_COLUMN, qt.Qt.DescendingOrder)
        self.studyModel.modelReset.connect(self._reselectStudy)
        ui.studyTableView.selectionModel().currentRowChanged.connect(self._onStudyRowChanged)
        ui.seriesTableView.selectionModel().selectionChanged.connect(self._updateButtons)
        ui.transferTableView.selectionModel().selectionChanged.connect(self._updateButtons)
        ui.serverComboBox.currentIndexChanged.connect(self._onServerChanged)
        ui.dateModeComboBox.currentIndexChanged.connect(self._updateDateWidgets)
        ui.searchButton.clicked.connect(self.search)
        ui.refreshButton.clicked.connect(self.refresh)
        ui.clearSearchButton.clicked.connect(self.clearSearch)
        ui.loadMoreButton.clicked.connect(self.loadMore)
        ui.transferButton.clicked.connect(self.transfer)
        ui.loadButton.clicked.connect(self.load)
        ui.cancelTransferButton.clicked.connect(self.cancelSelectedTransfer)
        ui.cancelAllButton.clicked.connect(self.cancelAllTransfers)
        ui.clearFinishedButton.clicked.connect(self.clearFinishedTransfers)
        for lineEdit in (
            ui.patientNameLineEdit,
            ui.patientIDLineEdit,
            ui.accessionLineEdit,
            ui.descriptionLineEdit,
        ):
            lineEdit.returnPressed.connect(self.search)
        ui.loadButton.visible = bool(self.host.canLoad)
        ui.cutOffFrame.visible = False
        self._updateDateWidgets()
        self._updateButtons()

    # -- servers -------------------------------------------------------------------------------

    def _fillServers(self) -> None:
        """Fill the dropdown in list order; keep the current server, else preselect."""
        combo = self.ui.serverComboBox
        servers = self.registry.servers
        keep = self._serverId
        if keep is None or keep not in {s.id for s in servers}:
            preselected = self.registry.preselected()
            keep = preselected.id if preselected is not None else None
        self._updatingServers = True
        try:
            combo.clear()
            for server in servers:
                combo.addItem(server.name, server.id)
                if server.is_default:
                    combo.setItemData(combo.count - 1, "Default server", qt.Qt.ToolTipRole)
            index = next((i for i, s in enumerate(servers) if s.id == keep), -1)
            combo.currentIndex = index
        finally:
            self._updatingServers = False
        self.ui.searchGroupBox.enabled = bool(servers)
        self.ui.refreshButton.enabled = bool(servers)

    def _onRegistryChanged(self) -> None:
        """The server list changed: refresh the dropdown; search again if our server changed."""
        before = self._serverSnapshot
        self._fillServers()
        server = self.currentServer()
        newId = server.id if server is not None else None
        if newId != self._serverId:
            self._onServerChanged()
            return
        if server is not None and before is not None:
            ignored = ("name", "is_default")
            old = {k: v for k, v in before.to_dict().items() if k not in ignored}
            new = {k: v for k, v in server.to_dict().items() if k not in ignored}
            if old != new:
                self._onServerChanged()

    def serverNames(self) -> list:
        """Return the dropdown's entries, in order."""
        combo = self.ui.serverComboBox
        return [combo.itemText(i) for i in range(combo.count)]

    def currentServer(self):
        """Return the server chosen in the dropdown (a copy), or None."""
        combo = self.ui.serverComboBox
        if combo.currentIndex < 0:
            return None
        serverId = combo.itemData(combo.currentIndex)
        return next((s for s in self.registry.servers if s.id == serverId), None)

    def setServer(self, name: str) -> None:
        """Choose the server called ``name`` in the dropdown.

        Raises
        ------
        KeyError
            No server has that name.
        """
        index = self.registry.index_of(name)
        self.ui.serverComboBox.currentIndex = index

    @property
    def policy(self):
        """The :class:`LoadingPolicy` of the current server."""
        server = self.currentServer()
        return LoadingPolicy.for_server(server) if server is not None else LoadingPolicy("auto")

    def _onServerChanged(self, *args) -> None:
        if self._updatingServers:
            return
        server = self.currentServer()
        self._serverId = server.id if server is not None else None
        self._serverSnapshot = server
        self._cancelJobs()
        self._setStudy(None)
        self.studyModel.setStudies([])
        self.lastResult = None
        self._limit = None
        self._showCutOff("", 0)
        if server is None:
            self.ui.modeLabel.text = "No DICOM server: add one in the DICOM Servers list."
            self._setStatus("")
            return
        policy = LoadingPolicy.for_server(server)
        self.ui.modeLabel.text = policy.description
        self.availability = LocalAvailability(
            self._destination(),
            self.host.databaseLookup,
            in_folder=policy.mode == MODE_FOLDER,
        )
        self.studyModel.availability = self.availability
        self.seriesModel.availability = self.availability
        self._presetDateFilter(server)
        self.search()

    def _destination(self) -> Path:
        return Path(self.host.destination)

    # -- search fields -------------------------------------------------------------------------

    def _presetDateFilter(self, server) -> None:
        """Set the date controls to the server's own date filter (the preset)."""
        ui = self.ui
        if server.date_filter == "from_date" and server.filter_from_date:
            day = _dt.date.fromisoformat(server.filter_from_date)
            ui.fromDateEdit.date = qt.QDate(day.year, day.month, day.day)
            ui.dateModeComboBox.currentIndex = DATE_FROM
        elif server.date_filter == "relative":
            ui.lastCountSpinBox.value = max(1, int(server.filter_relative_count))
            unit = server.filter_relative_unit
            ui.lastUnitComboBox.currentIndex = UNITS.index(unit) if unit in UNITS else 0
            ui.dateModeComboBox.currentIndex = DATE_LAST
        else:
            today = _dt.date.today()
            ui.fromDateEdit.date = qt.QDate(today.year, today.month, today.day)
            ui.dateModeComboBox.currentIndex = DATE_ANY
        self._updateDateWidgets()

    def _updateDateWidgets(self, *args) -> None:
        mode = self.ui.dateModeComboBox.currentIndex
        self.ui.fromDateEdit.visible = mode == DATE_FROM
        self.ui.lastCountSpinBox.visible = mode == DATE_LAST
        self.ui.lastUnitComboBox.visible = mode == DATE_LAST

    def dateRange(self) -> DateRange:
        """Return the study-date range of the date controls."""
        ui = self.ui
        mode = ui.dateModeComboBox.currentIndex
        if mode == DATE_FROM:
            day = _dt.date.fromisoformat(ui.fromDateEdit.date.toString("yyyy-MM-dd"))
            return DateRange(start=day)
        if mode == DATE_LAST:
            unit = UNITS[max(0, ui.lastUnitComboBox.currentIndex)]
            return relative_range(int(ui.lastCountSpinBox.value), unit)
        return DateRange()

    def filters(self) -> QueryFilters:
        """Return the search fields as :class:`QueryFilters` (name and description: contains)."""
        ui = self.ui
        return QueryFilters(
            patient_name=_wildcardContains(ui.patientNameLineEdit.text),
            patient_id=ui.patientIDLineEdit.text.strip(),
            accession_number=ui.accessionLineEdit.text.strip(),
            modality=ui.modalityComboBox.currentText.strip().upper(),
            study_description=_wildcardContains(ui.descriptionLineEdit.text),
            date_range=self.dateRange(),
        )

    def _searchFieldsEmpty(self, server) -> bool:
        """True when nothing is typed and the date controls still hold the server's preset."""
        f = self.filters()
        typed = (f.patient_name, f.patient_id, f.accession_number, f.modality)
        if any(typed) or f.study_description:
            return False
        return f.date_range == server_date_range(server)

    def clearSearch(self) -> None:
        """Empty the search fields, restore the server's date filter and search again."""
        ui = self.ui
        for lineEdit in (
            ui.patientNameLineEdit,
            ui.patientIDLineEdit,
            ui.accessionLineEdit,
            ui.descriptionLineEdit,
        ):
            lineEdit.text = ""
        ui.modalityComboBox.currentIndex = 0
        ui.modalityComboBox.currentText = ""
        server = self.currentServer()
        if server is not None:
            self._presetDateFilter(server)
        self.search()

    # -- searching -----------------------------------------------------------------------------

    def _startJob(self, work, onDone, onEvent=None, name="DicomServers-search"):
        job = BackgroundJob(work, name=name).start()
        self._jobs.append((job, self._generation, onDone, onEvent))
        self._timer.start()
        return job

    def _cancelJobs(self) -> None:
        self._generation += 1
        for job, _, _, _ in self._jobs:
            job.cancel()
        self._jobs = []

    def search(self, *args, limit=None) -> None:
        """Search the current server with the search fields (in the background)."""
        server = self.currentServer()
        if server is None:
            return
        self._cancelJobs()
        self._limit = limit
        self.lastError = ""
        rest = sources.source_of(server) == sources.SOURCE_REST
        if limit is None and rest and self._searchFieldsEmpty(server):
            self._showCachedList(server, refresh=True)
            return
        filters = self.filters()
        filters.limit = limit

        def work(emit, cancel):
            def progress(value):
                emit(value)
                return not cancel.cancelled

            return sources.search_studies(server, filters, progress=progress)

        self._setStatus(f"Searching {server.name}…")
        self._startJob(work, lambda result: self._showResult(server, result), self._onSearchEvent)

    def refresh(self) -> None:
        """Search again (a REST server's cached list is refreshed from the server first)."""
        self.search()

    def refreshKeepingView(self) -> bool:
        """Show the current server's list again (new studies arrived), keeping the view.

        A REST server's cached list is read again (the notification's hook refreshed the cache);
        a search with typed fields, or another server, is searched again with the same fields
        and limit. The selected study stays selected (its series are not listed again) and the
        list stays where the user scrolled (:meth:`_restoreView`).

        Returns
        -------
        bool
            False when nothing was done: no server, or a search is under way (its result will
            hold the new studies or the caller tries again).
        """
        server = self.currentServer()
        if server is None or self._jobs:
            return False
        view = self._captureView()
        rest = sources.source_of(server) == sources.SOURCE_REST
        if self._limit is None and rest and self._searchFieldsEmpty(server):

            def shown(cached):
                self._showCached(server, cached, refreshing=False)
                self._restoreView(view)

            self._startJob(lambda emit, cancel: sources.cached_list(server), shown)
            return True
        filters = self.filters()
        filters.limit = self._limit

        def found(result):
            self._showResult(server, result)
            self._restoreView(view)

        self._startJob(
            lambda emit, cancel: sources.search_studies(
                server, filters, progress=lambda value: not cancel.cancelled
            ),
            found,
        )
        return True

    def _captureView(self) -> tuple:
        """Return ``(scroll value, study UID at the top of the view)`` of the study list."""
        view = self.ui.studyTableView
        value = int(view.verticalScrollBar().value)
        top = self.studyModel.study(view.rowAt(0)) if value > 0 else None
        return value, top.study_uid if top is not None else None

    def _restoreView(self, state: tuple) -> None:
        """Scroll back to ``state``: the top stays the top (new studies show there); otherwise
        the study that was at the top of the view stays there (rows inserted above it do not
        push it away), or the same scroll value when that study is gone."""
        value, topUID = state
        view = self.ui.studyTableView
        bar = view.verticalScrollBar()
        row = self.studyModel.rowOf(topUID) if topUID is not None else -1
        # The view lays its rows out later (a queued layout): do it now so the range is right.
        view.doItemsLayout()
        if row >= 0:
            view.scrollTo(self.studyModel.index(row, 0), qt.QAbstractItemView.PositionAtTop)
        else:
            bar.value = min(value, int(bar.maximum))

    def retrieveNewStudy(self, serverName: str, study) -> int | None:
        """Queue the transfer of a study that just arrived on ``serverName``; return its id.

        Used by the automatic retrieve of new studies (notifications): the whole study, the
        server's way (:class:`LoadingPolicy`), into this browser's destination; the transfer
        shows in the transfer list and its files go to the host as any other.
        """
        server = next((s for s in self.registry.servers if s.name == serverName), None)
        if server is None:
            return None
        request = LoadingPolicy.for_server(server).request(
            server, study, self._destination(), in_place=bool(self.host.inPlace), tag=NOTIFY_TAG
        )
        return self._submit(request)

    def loadMore(self) -> None:
        """Search again with a larger limit (or the whole database instead of the REST list)."""
        server = self.currentServer()
        if server is None:
            return
        shown = len(self.studyModel.items)
        step = server.search_limit or shown or 100
        self.search(limit=max(shown, self._limit or 0) + step)

    def _onSearchEvent(self, value) -> None:
        message = getattr(value, "message", "")
        if message:
            self._setStatus(message)

    def _showCachedList(self, server, refresh: bool) -> None:
        """Show a REST server's cached list at once, then refresh it in the background."""
        self._setStatus(f"Reading the cached study list of {server.name}…")

        def read(emit, cancel):
            return sources.cached_list(server)

        def shown(cached):
            self._showCached(server, cached, refreshing=refresh)
            if refresh:
                self._startJob(
                    lambda emit, cancel: sources.refresh_cached_list(
                        server, progress=lambda value: not cancel.cancelled
                    ),
                    lambda result: self._onRefreshed(server, result),
                )

        self._startJob(read, shown)

    def _showCached(self, server, cached, refreshing: bool) -> None:
        self.studyModel.setStudies(cached.studies)
        if cached.last_sync:
            when = f"last synced {_when(cached.last_sync)}"
            if cached.mode:
                when += f" ({cached.mode})"
        else:
            when = "never synced"
        text = f"{len(cached.studies)} studies of {server.name} (cached list, {when})"
        if refreshing:
            text += "; refreshing…"
        self._setStatus(text)
        self.lastResult = cached
        if cached.cut_off:
            self._showCutOff(CUT_OFF_REST_LIMIT, len(cached.studies), server.rest_limit)
        else:
            self._showCutOff("", len(cached.studies))

    def _onRefreshed(self, server, result) -> None:
        if not result.ok:
            self.lastError = result.diagnosis
            self._setStatus(
                f"{len(self.studyModel.items)} studies of {server.name} (cached list); the refresh"
                f" failed: {result.diagnosis}",
                error=True,
            )
            return
        self._startJob(
            lambda emit, cancel: sources.cached_list(server),
            lambda cached: self._showCached(server, cached, refreshing=False),
        )

    def _showResult(self, server, result) -> None:
        self.lastResult = result
        self.studyModel.setStudies(result.studies)
        count = len(result.studies)
        if not result.ok and not result.cut_off:
            self.lastError = result.diagnosis
            self._setStatus(f"The search failed: {result.diagnosis}", error=True)
        else:
            where = "the PACS folder of " if self.policy.mode == MODE_FOLDER else ""
            self._setStatus(f"{count} studies found in {where}{server.name}.")
        self._showCutOff(result.cut_off, count, result.limit, result.diagnosis)

    def _showCutOff(self, reason: str, shown: int, limit: int = 0, diagnosis: str = "") -> None:
        """Say when and why the list was cut off; offer "Load more" when it can help."""
        ui = self.ui
        texts = {
            CUT_OFF_OUR_LIMIT: f"Only the first {shown} studies are shown: the search limit"
            f" ({limit}) was reached. Load more, or narrow the search.",
            CUT_OFF_SERVER_LIMIT: f"Only {shown} studies are shown: the server's own limit cut the"
            " list off (Load more cannot go past it). Narrow the search to see the others.",
            CUT_OFF_REST_LIMIT: f"The cached list holds the {shown} most recent studies (REST"
            f" limit {limit}). Load more searches the whole database.",
            CUT_OFF_CANCELLED: f"The search was cancelled after {shown} studies.",
            CUT_OFF_ERROR: f"The search stopped after {shown} studies: {diagnosis}",
        }
        self.cutOffReason = reason
        ui.cutOffFrame.visible = bool(reason)
        ui.cutOffLabel.text = texts.get(reason, "")
        ui.loadMoreButton.enabled = reason not in ("", CUT_OFF_SERVER_LIMIT)
        ui.loadMoreButton.text = (
            "Search again" if reason in (CUT_OFF_CANCELLED, CUT_OFF_ERROR) else "Load more"
        )

    def _setStatus(self, text: str, error: bool = False) -> None:
        self.statusText = text
        label = self.ui.statusLabel
        label.text = (
            f'<span style="color: {ERROR_COLOR};">{html.escape(text)}</span>'
            if error
            else html.escape(text)
        )

    # -- the selected study --------------------------------------------------------------------

    def selectStudy(self, row: int) -> None:
        """Select the study of ``row`` (as a click on it)."""
        view = self.ui.studyTableView
        view.setCurrentIndex(self.studyModel.index(row, 0))

    def currentStudy(self):
        """Return the selected study, or None."""
        return self._study

    def _onStudyRowChanged(self, current, previous=None) -> None:
        study = self.studyModel.study(current.row()) if current.isValid() else None
        if study is self._study or (
            study is not None
            and self._study is not None
            and study.study_uid == self._study.study_uid
        ):
            return
        self._setStudy(study)
        if study is not None:
            self._selectTimer.start()

    def _reselectStudy(self) -> None:
        """After a sort or a new list, select the same study again if it is still listed."""
        if self._study is None:
            return
        row = self.studyModel.rowOf(self._study.study_uid)
        if row < 0:
            self._setStudy(None)
            return
        view = self.ui.studyTableView
        selection = view.selectionModel()
        selection.blockSignals(True)
        try:
            view.setCurrentIndex(self.studyModel.index(row, 0))
        finally:
            selection.blockSignals(False)

    def _setStudy(self, study) -> None:
        self._study = study
        self.seriesModel.setItems([])
        ui = self.ui
        if study is None:
            ui.previewLabel.text = "Select a study to see its series."
            ui.previewHintLabel.text = ""
            self._updateButtons()
            return
        parts = [f"<b>{html.escape(personName(study.patient_name) or '(no name)')}</b>"]
        if study.patient_id:
            parts.append(f"ID {html.escape(study.patient_id)}")
        if study.study_date:
            parts.append(html.escape(study_label(study).split(", ")[-1].split(" – ")[0]))
        if study.study_description:
            parts.append(html.escape(study.study_description))
        if study.accession_number:
            parts.append(f"accession {html.escape(study.accession_number)}")
        ui.previewLabel.text = " · ".join(parts)
        ui.previewHintLabel.text = self.policy.description + " Listing its series…"
        server = self.currentServer()
        if server is not None:
            studyUID = study.study_uid

            def listed(result):
                if self._study is None or self._study.study_uid != studyUID:
                    return
                self.seriesModel.setItems(result.series)
                hint = self.policy.description
                if not result.ok:
                    hint = f"The series could not be listed: {result.diagnosis}"
                ui.previewHintLabel.text = hint
                self._updateButtons()

            self._startJob(lambda emit, cancel: sources.search_series(server, studyUID), listed)
        self._updateButtons()

    def _onStudySettled(self) -> None:
        """The selection rested: in auto and folder mode, bring the whole study here."""
        self._selectTimer.stop()  # one shot, whatever the binding makes of ``singleShot``
        study = self._study
        server = self.currentServer()
        if study is None or server is None:
            return
        policy = LoadingPolicy.for_server(server)
        request = policy.on_select(
            server, study, self._destination(), in_place=bool(self.host.inPlace)
        )
        if request is None:
            return
        # A study left behind before its automatic retrieve started is not wanted any more.
        for requestId in list(self._autoRequests):
            status = self.queue.status(requestId)
            if (
                status is not None
                and status.state == QUEUED
                and status.request.study_uid != study.study_uid
            ):
                self.queue.cancel(requestId)
        requestId = self._submit(dataclasses.replace(request, tag=AUTO_TAG))
        self._autoRequests.add(requestId)

    # -- transfer and load ---------------------------------------------------------------------

    def selectedSeries(self) -> list:
        """Return the series selected in the preview (empty: the whole study)."""
        rows = sorted(
            {index.row() for index in self.ui.seriesTableView.selectionModel().selectedRows()}
        )
        return [self.seriesModel.series(row) for row in rows if self.seriesModel.series(row)]

    def selectSeries(self, rows) -> None:
        """Select series rows in the preview (as Ctrl-clicks)."""
        view = self.ui.seriesTableView
        selection = view.selectionModel()
        selection.clearSelection()
        for row in rows:
            selection.select(
                self.seriesModel.index(row, 0),
                qt.QItemSelectionModel.Select | qt.QItemSelectionModel.Rows,
            )

    def transfer(self) -> int | None:
        """Queue the selected series (or the whole study) for transfer; return the request id."""
        study = self._study
        server = self.currentServer()
        if study is None or server is None:
            return None
        series = tuple(s.series_uid for s in self.selectedSeries())
        request = self.policy.request(
            server,
            study,
            self._destination(),
            series_uids=series,
            in_place=bool(self.host.inPlace),
        )
        return self._submit(request)

    def load(self) -> int | None:
        """Load the selected series (or the whole study) into Slicer, transferring first if needed.

        Returns the id of the transfer request queued, or None when nothing had to move.
        """
        study = self._study
        server = self.currentServer()
        if study is None or server is None or not self.host.canLoad:
            return None
        chosen = self.selectedSeries() or list(self.seriesModel.items)
        seriesUIDs = [s.series_uid for s in chosen]
        if chosen and all(self.availability.series(s).state == IN_DATABASE for s in chosen):
            self._loadNow(seriesUIDs)
            return None
        policy = self.policy
        if policy.mode == MODE_MANUAL and not all(self.availability.series_here(s) for s in chosen):
            self._setStatus("Press Transfer first: this server transfers images manually.")
            return None
        request = policy.request(
            server,
            study,
            self._destination(),
            series_uids=tuple(seriesUIDs) if self.selectedSeries() else (),
            in_place=bool(self.host.inPlace),
            tag=(LOAD_TAG, tuple(seriesUIDs)),
        )
        return self._submit(request)

    def _loadNow(self, seriesUIDs) -> None:
        if not seriesUIDs:
            return
        try:
            message = self.host.loadSeries(list(seriesUIDs))
        except Exception as error:  # a loading failure is shown, never raised into Qt
            logging.exception("Loading series failed")
            self._setStatus(f"Loading failed: {error}", error=True)
            return
        self._setStatus(message or f"Loaded {len(seriesUIDs)} series.")

    def _submit(self, request) -> int:
        requestId = self.queue.submit(request)
        self._timer.start()
        self._poll()
        return requestId

    def cancelSelectedTransfer(self) -> None:
        """Cancel the transfer selected in the transfer list."""
        rows = self.ui.transferTableView.selectionModel().selectedRows()
        for index in rows:
            requestId = self.transferModel.requestId(index.row())
            if requestId is not None:
                self.queue.cancel(requestId)
        self._poll()

    def cancelTransfer(self, requestId: int) -> bool:
        """Cancel one transfer by id."""
        cancelled = self.queue.cancel(requestId)
        self._poll()
        return cancelled

    def cancelAllTransfers(self) -> None:
        """Cancel every queued and running transfer."""
        self.queue.cancel_all()
        self._poll()

    def clearFinishedTransfers(self) -> None:
        """Remove finished transfers from the list."""
        self.queue.forget_finished()
        keep = [s for s in self.transferModel.items if not s.finished]
        self.transferModel.setItems(keep)
        self._updateTransferSummary()

    def _onTransferFinished(self, status) -> None:
        self._autoRequests.discard(status.request_id)
        result = status.result
        request = status.request
        files = [str(p) for p in (result.files if result is not None else [])]

        def imported():
            if self.availability is not None:
                self.availability.forget(request.study_uid)
            self.ui.studyTableView.viewport().update()
            self.ui.seriesTableView.viewport().update()
            self._updateButtons()
            tag = request.tag
            loadWhenDone = isinstance(tag, tuple) and tag and tag[0] == LOAD_TAG
            if loadWhenDone and result is not None and result.ok:
                self._loadNow(tag[1])

        if files and result is not None and (result.ok or result.cancelled or result.received):
            try:
                self.host.importFiles(files, request.dest is None, imported)
            except Exception as error:
                logging.exception("Importing retrieved files failed")
                self._setStatus(f"Importing the files failed: {error}", error=True)
        else:
            imported()

    # -- the main-thread poll ------------------------------------------------------------------

    def _poll(self) -> None:
        """Pick up finished searches and transfer events (runs on the main thread)."""
        for entry in list(self._jobs):
            job, generation, onDone, onEvent = entry
            events = job.drain()
            if onEvent is not None:
                for event in events:
                    onEvent(event)
            if not job.done:
                continue
            self._jobs.remove(entry)
            if generation != self._generation:
                continue
            try:
                result = job.result()
            except Exception as error:  # ValidationError and the like: shown, not raised
                self.lastError = str(error)
                self._setStatus(str(error), error=True)
                continue
            onDone(result)
        # Asked before draining: once nothing is busy, every event has been queued already.
        transfersBusy = self.queue.busy
        finished = []
        for event in self.queue.drain():
            self.transferModel.update(event.status)
            if event.kind == EVENT_FINISHED:
                finished.append(event.status)
        for status in finished:
            self._onTransferFinished(status)
        self._updateTransferSummary()
        if not self._jobs and not transfersBusy:
            self._timer.stop()

    @property
    def busy(self) -> bool:
        """True while a search or a transfer is under way."""
        return bool(self._jobs) or self.queue.busy

    def _updateTransferSummary(self) -> None:
        statuses = self.transferModel.items
        running = sum(1 for s in statuses if s.state == RUNNING)
        queued = sum(1 for s in statuses if s.state == QUEUED)
        failed = [s for s in statuses if s.state == FAILED]
        received = sum(s.bytes_done for s in statuses)
        if not statuses:
            text = "No transfers."
        else:
            parts = []
            if running:
                parts.append(f"{running} running")
            if queued:
                parts.append(f"{queued} queued")
            if not parts:
                parts.append("all finished")
            text = ", ".join(parts) + f" · {formatSize(received)} received"
            if failed and failed[-1].result is not None:
                text += f" · last failure: {failed[-1].result.diagnosis}"
        self.ui.transferSummaryLabel.text = text
        self._updateButtons()

    def _updateButtons(self, *args) -> None:
        ui = self.ui
        study = self._study
        policy = self.policy
        ui.transferButton.enabled = study is not None
        ui.transferButton.text = "Load from folder" if policy.mode == MODE_FOLDER else "Transfer"
        if self.host.canLoad:
            chosen = self.selectedSeries() or list(self.seriesModel.items)
            here = bool(chosen) and all(
                self.availability is not None
                and self.availability.series(s).state in (IN_DATABASE, RETRIEVED, IN_FOLDER)
                for s in chosen
            )
            ui.loadButton.enabled = study is not None and (policy.mode != MODE_MANUAL or here)
        statuses = self.transferModel.items
        rows = ui.transferTableView.selectionModel().selectedRows()
        ui.cancelTransferButton.enabled = any(
            not self.transferModel.item(i.row()).finished
            for i in rows
            if self.transferModel.item(i.row()) is not None
        )
        ui.cancelAllButton.enabled = any(not s.finished for s in statuses)
        ui.clearFinishedButton.enabled = any(
            s.state in (CANCELLED, FAILED) or s.finished for s in statuses
        )

    # -- tear-down -----------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop the timers and workers and stop listening to the server list."""
        self.registry.remove_listener(self._onRegistryChanged)
        self._timer.stop()
        self._selectTimer.stop()
        self._cancelJobs()
        if self._ownQueue:
            self.queue.close()


def defaultDestination() -> Path:
    """Return the folder retrieved studies go to outside Slicer (``$DICOMSERVERS_RETRIEVE_DIR``)."""
    from DicomServersLib.user_paths import cache_dir

    return Path(os.environ.get("DICOMSERVERS_RETRIEVE_DIR") or cache_dir() / "retrieved")
