"""The server record: one DICOM server with every setting of the DICOM Servers page.

A :class:`DicomServer` is a plain dataclass. Its field names are canonical: the same spelling is
used in the settings JSON, the CLI (``field=value``), ``--json`` output and the panel. Each field's
label and explanation (the spec's wording) live in :data:`FIELD_INFO`, the single place the
panel's tooltips and the validators' messages read them from.

Fields that depend on a toggle (REST, loading from a folder, date filters, notifications) keep
their values while the toggle is off.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

#: Secret fields: never written to the settings file, exports, logs or ``--json`` output.
SECRET_FIELDS: frozenset[str] = frozenset({"rest_password", "notification_token"})

RETRIEVE_METHODS = ("c-get", "c-move")
REST_FLAVORS = ("orthanc", "dicomweb")
LOAD_MODES = ("auto", "manual", "folder")
DATE_FILTERS = ("none", "from_date", "relative")
RELATIVE_UNITS = ("days", "months", "years")

DEFAULT_NAME = "New server"


def new_server_id() -> str:
    """Return a new stable identity for a server (survives renames; keys its secrets)."""
    return uuid.uuid4().hex


@dataclass
class DicomServer:
    """One DICOM server and how Slicer talks to it.

    Defaults are those of a newly added server: ``localhost:11112``, called AE ``PACS``,
    C-GET, automatic loading, REST off.
    """

    # General
    name: str = DEFAULT_NAME
    is_default: bool = False
    # DIMSE (the spec's "StoreSCU settings" plus what query/retrieve needs)
    called_ae_title: str = "PACS"
    host: str = "localhost"
    port: int = 11112
    calling_ae_title: str = "SLICER"
    retrieve_method: str = "c-get"
    move_destination_ae_title: str = "SLICER"
    storage_port: int = 11113
    timeout_s: float = 30.0
    # DICOM TLS (PS3.15 Annex B secure transport connection profiles)
    tls_enabled: bool = False
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_verify: bool = True
    # PACS REST API
    rest_enabled: bool = False
    rest_flavor: str = "orthanc"
    rest_url: str = ""
    rest_user: str = ""
    rest_password: str = field(default="", repr=False)
    rest_ca_bundle: str = ""
    rest_limit: int = 0
    search_limit: int = 1000
    cache_threshold: int = 100
    # Loading
    load_mode: str = "auto"
    storage_folder: str = ""
    # Worklist
    worklist_ae_title: str = ""
    scheduled_station_ae_title: str = ""
    # Notifications
    notifications_enabled: bool = False
    notification_ip: str = "127.0.0.1"
    notification_port: int = 8765
    notification_token: str = field(default="", repr=False)
    notifications_auto_retrieve: bool = False
    # Filters
    date_filter: str = "none"
    filter_from_date: str = ""
    filter_relative_count: int = 7
    filter_relative_unit: str = "days"
    # Identity and forward compatibility
    id: str = field(default_factory=new_server_id)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """Return the record as JSON-ready data with canonical field names.

        Unknown fields read from a newer version (``extras``) are merged back in so that a
        round trip never drops them. Secrets are left out unless asked for.
        """
        data: dict[str, Any] = dict(self.extras)
        for name in FIELD_NAMES:
            if name in SECRET_FIELDS and not include_secrets:
                continue
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DicomServer:
        """Build a record from stored data without validating it.

        Unknown keys go to ``extras``; missing keys take their defaults. Values are taken as
        they are: use :func:`DicomServersLib.validation.check_server` before trusting them.
        """
        known = {k: v for k, v in data.items() if k in FIELD_NAMES}
        extras = {k: v for k, v in data.items() if k not in FIELD_NAMES and k != "extras"}
        server = cls(**known)
        server.extras = extras
        if not server.id:
            server.id = new_server_id()
        return server

    def copy(self, **changes: Any) -> DicomServer:
        """Return a copy (extras copied too) with ``changes`` applied."""
        clone = dataclasses.replace(self, **changes)
        clone.extras = dict(self.extras)
        return clone


#: Canonical field names, in display order (``extras`` excluded).
FIELD_NAMES: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(DicomServer) if f.name != "extras"
)

#: Field types, for converting text (CLI, settings) into values.
FIELD_TYPES: dict[str, type] = {
    f.name: {"str": str, "bool": bool, "int": int, "float": float}[str(f.type)]
    for f in dataclasses.fields(DicomServer)
    if f.name != "extras"
}


@dataclass(frozen=True)
class FieldInfo:
    """What the user sees of a field: its label on the page and its explanation (tooltip)."""

    label: str
    help: str
    group: str


#: Labels and explanations, worded as on the specification page. One place for all of them.
FIELD_INFO: dict[str, FieldInfo] = {
    "name": FieldInfo(
        "Server name",
        "Unique identifier for each DICOM server. It represents the server in the Study Browser"
        " dropdown.",
        "General",
    ),
    "is_default": FieldInfo(
        "Set as default server",
        "Mark this server as the default DICOM server when opening the application.",
        "General",
    ),
    "called_ae_title": FieldInfo(
        "AE Title",
        "Application Entity Title of the server when communicating via the DICOM Query/Retrieve"
        " protocol (C-FIND, C-GET, C-MOVE, C-STORE messages).",
        "StoreSCU",
    ),
    "host": FieldInfo(
        "Remote IP",
        "IP address (IPv4 or IPv6) or host name of the server on the DICOM network.",
        "StoreSCU",
    ),
    "port": FieldInfo(
        "Remote port", "The port number of the server on the DICOM network.", "StoreSCU"
    ),
    "calling_ae_title": FieldInfo(
        "Calling AE Title",
        "Our own Application Entity Title, as registered on the PACS.",
        "DIMSE",
    ),
    "retrieve_method": FieldInfo(
        "Retrieve method",
        "C-GET fetches images on the same connection; C-MOVE asks the PACS to send them to our"
        " storage listener (the PACS must know our AE title, IP and storage port).",
        "DIMSE",
    ),
    "move_destination_ae_title": FieldInfo(
        "Move destination AE Title",
        "AE title of our storage listener for C-MOVE, as registered on the PACS.",
        "DIMSE",
    ),
    "storage_port": FieldInfo(
        "Storage port",
        "Port our storage listener uses to receive C-MOVE results.",
        "DIMSE",
    ),
    "timeout_s": FieldInfo(
        "Timeout (s)",
        "Seconds to wait for the server to connect or answer before giving up.",
        "DIMSE",
    ),
    "tls_enabled": FieldInfo(
        "DICOM TLS",
        "Encrypt the DICOM connections to this server with TLS (PS3.15 Annex B). The PACS must"
        " offer DICOM TLS on the remote port.",
        "DICOM TLS",
    ),
    "tls_ca_file": FieldInfo(
        "TLS CA bundle",
        "PEM file of the certificate authorities that sign the PACS certificate (a hospital's"
        " own CA). Empty: the system's trusted authorities.",
        "DICOM TLS",
    ),
    "tls_cert_file": FieldInfo(
        "TLS client certificate",
        "PEM file of our own certificate, for a PACS that requires clients to identify"
        " themselves. Optional.",
        "DICOM TLS",
    ),
    "tls_key_file": FieldInfo(
        "TLS client key",
        "PEM file of the private key of our certificate (unencrypted, readable by you only)."
        " Empty when the certificate file holds the key too.",
        "DICOM TLS",
    ),
    "tls_verify": FieldInfo(
        "Verify the server certificate",
        "Check that the PACS certificate is signed by a trusted authority and names the"
        " server's host. Turn off only to diagnose a connection: anyone could then pose as the"
        " PACS.",
        "DICOM TLS",
    ),
    "rest_enabled": FieldInfo(
        "PACS REST API",
        "Activate the REST API configuration for this server. The REST parameters are disabled"
        " while it is off.",
        "PACS REST API",
    ),
    "rest_flavor": FieldInfo(
        "REST API type",
        "Orthanc's REST API or DICOMweb (QIDO-RS / WADO-RS / STOW-RS).",
        "PACS REST API",
    ),
    "rest_url": FieldInfo(
        "PACS REST URL", "URL or IP address of the REST API server.", "PACS REST API"
    ),
    "rest_user": FieldInfo(
        "PACS User",
        "Username required to authenticate the connection to the REST API.",
        "PACS REST API",
    ),
    "rest_password": FieldInfo(
        "PACS Password",
        "Password required to authenticate the connection to the REST API. Kept in the secret"
        " store, never in the settings file.",
        "PACS REST API",
    ),
    "rest_ca_bundle": FieldInfo(
        "PACS REST CA bundle",
        "PEM file of the certificate authorities that sign the certificate of an https:// REST"
        " URL (a hospital's own CA). Empty: the system's trusted authorities.",
        "PACS REST API",
    ),
    "rest_limit": FieldInfo(
        "PACS REST Limit",
        "Limit the number of studies loaded from the REST API. Use 0 to always load all studies"
        " from the server.",
        "PACS REST API",
    ),
    "search_limit": FieldInfo(
        "PACS Search Limit",
        "Limit the number of studies when searching the entire database. Use 0 for no limit.",
        "PACS REST API",
    ),
    "cache_threshold": FieldInfo(
        "PACS Cache Threshold",
        "Allowed difference between the server and the loaded cache before a complete refresh:"
        " smaller differences are refreshed incrementally.",
        "PACS REST API",
    ),
    "load_mode": FieldInfo(
        "Loading mode",
        "manual: transfer images with the Transfer button; folder: read images directly from"
        " the PACS storage folder; auto (neither): the whole study downloads when it is"
        " selected.",
        "Loading",
    ),
    "storage_folder": FieldInfo(
        "PACS Storage Folder",
        "Path to the folder where the PACS stores its DICOM files.",
        "Loading",
    ),
    "worklist_ae_title": FieldInfo(
        "Worklist AET",
        "Application Entity Title used to query the modality worklist on this server.",
        "Worklist",
    ),
    "scheduled_station_ae_title": FieldInfo(
        "Scheduled AET",
        "Application Entity Title of the scheduled station (modality) whose worklist is shown.",
        "Worklist",
    ),
    "notifications_enabled": FieldInfo(
        "Enable Notifications",
        "Receive notifications when a new study, series or instance arrives on the server"
        " (needs the notification plugin configured on the server).",
        "Notifications",
    ),
    "notification_ip": FieldInfo(
        "Notification IP",
        "The IP address of this client as configured in the notification plugin.",
        "Notifications",
    ),
    "notification_port": FieldInfo(
        "Notification Port",
        "The port number of this client as configured in the notification plugin.",
        "Notifications",
    ),
    "notification_token": FieldInfo(
        "Notification Token",
        "Shared secret the notification plugin sends with each event (NOTIFY_TOKEN in the"
        " plugin). Kept in the secret store, never in the settings file. Empty: no token.",
        "Notifications",
    ),
    "notifications_auto_retrieve": FieldInfo(
        "Retrieve new studies automatically",
        "When a new study is complete on the server (its study notification), retrieve it at"
        " once. Only in the automatic loading mode (neither Load manually nor Load from folder);"
        " off by default.",
        "Notifications",
    ),
    "date_filter": FieldInfo(
        "Date filter",
        "none, from a date (from_date), or the last N days, months or years (relative).",
        "Filters",
    ),
    "filter_from_date": FieldInfo(
        "Filter by Date",
        "Studies are fetched from this date on (YYYY-MM-DD).",
        "Filters",
    ),
    "filter_relative_count": FieldInfo(
        "Filter by D/M/Y",
        "Number of days, months or years back from today whose studies are fetched.",
        "Filters",
    ),
    "filter_relative_unit": FieldInfo("Filter unit", "days, months or years.", "Filters"),
    "id": FieldInfo("Identity", "Stable internal identity of the server.", "General"),
}
