"""Our ordered server list written into the server tables of Slicer's own DICOM browsers.

Slicer keeps two more server lists, read from the same settings file:

- the visual DICOM browser (CTK ``ctkDICOMServerNodeWidget2``): ``DICOM/ServerNodeCount`` and
  ``DICOM/ServerNodes/<row>`` as JSON text; ``saveSettings`` writes the keys ``Name``,
  ``Verification``, ``QueryRetrieveCheckState``, ``StorageCheckState``, ``TrustedCheckState``,
  ``Calling AETitle``, ``Called AETitle``, ``Address``, ``Port`` (text), ``Timeout`` (int),
  ``Retrieve Protocol`` (``CGET``/``CMOVE``) and ``Retrieve Proxy``; ``readSettings`` parses
  the text with ``QJsonDocument::fromJson`` (CTK
  ``Libs/DICOM/Widgets/ctkDICOMServerNodeWidget2.cpp``: ``saveSettings``, ``readSettings``,
  ``addServerNode``). Its storage listener is
  ``DICOM/StorageEnabled``, ``DICOM/StorageAETitle``, ``DICOM/StoragePort``.
- the legacy query/retrieve dialog (CTK ``ctkDICOMServerNodeWidget``): root ``ServerNodeCount``
  and ``ServerNodes/<row>`` as a ``QVariantMap`` with ``Name``, ``CheckState`` (0/2, "query this
  server"), ``AETitle``, ``Address``, ``Port`` (text), ``CGET`` (0/2); one global
  ``CallingAETitle``; ``StorageAETitle`` (the C-MOVE destination) and ``StoragePort``
  (CTK ``Libs/DICOM/Widgets/ctkDICOMServerNodeWidget.cpp``, ``saveSettings`` /
  ``addServerNode``). Root ``StoragePort`` is also the port of Slicer's own storescp
  listener (Slicer ``Modules/Scripted/DICOMLib/DICOMProcesses.py``).

Both tables get our servers in our order, Query/Retrieve on, C-GET/C-MOVE and AE titles
carried over. The default server (else the first) is the one checked in the legacy table and
gives the legacy table its single calling AE and both browsers their storage AE and port, so
that a PACS that knows our C-MOVE destination knows Slicer's too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .server import DicomServer
from .settings_store import SettingsLike

CHECKED = 2  # Qt::Checked
UNCHECKED = 0  # Qt::Unchecked


@dataclass
class SlicerTables:
    """Every settings key we write for Slicer's browsers, and what we remove first."""

    values: dict[str, Any] = field(default_factory=dict)
    remove_groups: tuple[str, ...] = ("DICOM/ServerNodes", "ServerNodes")

    def visual_nodes(self) -> list[dict[str, Any]]:
        """The visual browser's rows, decoded (for tests and display)."""
        count = int(self.values["DICOM/ServerNodeCount"])
        return [json.loads(self.values[f"DICOM/ServerNodes/{i}"]) for i in range(count)]

    def legacy_nodes(self) -> list[dict[str, Any]]:
        """The legacy dialog's rows."""
        count = int(self.values["ServerNodeCount"])
        return [dict(self.values[f"ServerNodes/{i}"]) for i in range(count)]


def _protocol(server: DicomServer) -> str:
    return "CMOVE" if server.retrieve_method == "c-move" else "CGET"


def visual_browser_node(server: DicomServer) -> dict[str, Any]:
    """Return the visual browser's JSON object for one server (keys as CTK writes them)."""
    return {
        "Name": server.name,
        "Verification": "unknown",
        "QueryRetrieveCheckState": CHECKED,
        "StorageCheckState": CHECKED,
        "TrustedCheckState": CHECKED,
        "Calling AETitle": server.calling_ae_title,
        "Called AETitle": server.called_ae_title,
        "Address": server.host,
        "Port": str(server.port),
        "Timeout": max(1, round(server.timeout_s)),
        "Retrieve Protocol": _protocol(server),
        "Retrieve Proxy": "",
    }


def legacy_node(server: DicomServer, *, checked: bool) -> dict[str, Any]:
    """Return the legacy dialog's QVariantMap for one server."""
    return {
        "Name": server.name,
        "CheckState": CHECKED if checked else UNCHECKED,
        "AETitle": server.called_ae_title,
        "Address": server.host,
        "Port": str(server.port),
        "CGET": CHECKED if server.retrieve_method == "c-get" else UNCHECKED,
    }


def build_tables(servers: list[DicomServer]) -> SlicerTables:
    """Return the keys that put ``servers`` (in order) into both of Slicer's server tables."""
    tables = SlicerTables()
    values = tables.values
    lead = next((s for s in servers if s.is_default), servers[0] if servers else None)
    values["DICOM/ServerNodeCount"] = len(servers)
    values["ServerNodeCount"] = len(servers)
    for row, server in enumerate(servers):
        node = visual_browser_node(server)
        values[f"DICOM/ServerNodes/{row}"] = json.dumps(node, indent=4, ensure_ascii=False) + "\n"
        values[f"ServerNodes/{row}"] = legacy_node(server, checked=server is lead)
    if lead is not None:
        values["CallingAETitle"] = lead.calling_ae_title
        move_ae = lead.move_destination_ae_title or lead.calling_ae_title
        values["StorageAETitle"] = move_ae
        values["StoragePort"] = str(lead.storage_port)
        values["DICOM/StorageAETitle"] = move_ae
        values["DICOM/StoragePort"] = str(lead.storage_port)
    return tables


def write_tables(settings: SettingsLike, servers: list[DicomServer]) -> SlicerTables:
    """Replace both tables in ``settings`` by ``servers`` and sync.

    Rows beyond the new count are removed (CTK's legacy widget leaves them behind).
    Slicer's listener switches (``DICOM/StorageEnabled``, ``DICOM/RunListenerAtStart``) are
    left as the user set them.
    """
    tables = build_tables(servers)
    for group in tables.remove_groups:
        settings.remove(group)
    for key, value in tables.values.items():
        settings.setValue(key, value)
    settings.sync()
    return tables


def listener_conflicts(settings: SettingsLike, servers: list[DicomServer]) -> list[str]:
    """Return plain-language warnings where two storage listeners would share one port.

    Slicer's storescp listener (root ``StoragePort``, started when ``DICOM/RunListenerAtStart``
    is true) and CTK's listener (``DICOM/StorageEnabled`` on ``DICOM/StoragePort``) both default
    to 11112; our C-MOVE listener uses each C-MOVE server's ``storage_port``.
    """

    def flag(key: str) -> bool:
        return str(settings.value(key, "false")).strip().lower() in ("true", "1")

    listeners: dict[int, list[str]] = {}
    if flag("DICOM/RunListenerAtStart"):
        port = str(settings.value("StoragePort", "11112"))
        if port.isdigit():
            listeners.setdefault(int(port), []).append("Slicer's DICOM listener (storescp)")
    if flag("DICOM/StorageEnabled"):
        port = str(settings.value("DICOM/StoragePort", "11112"))
        if port.isdigit():
            listeners.setdefault(int(port), []).append("the visual DICOM browser's listener")
    for server in servers:
        if server.retrieve_method == "c-move":
            users = listeners.setdefault(server.storage_port, [])
            label = f"our C-MOVE listener ({server.name})"
            if not any(u.startswith("our C-MOVE listener") for u in users):
                users.append(label)
    return [
        f"port {port} is used by " + " and ".join(users) + ": only one can listen at a time;"
        " change the storage port of one of them"
        for port, users in sorted(listeners.items())
        if len(users) > 1
    ]
