"""The notification event: a new instance, series or study arrived on a server.

An event reaches DicomServers in one of two ways:

- **pushed** by the PACS-side plugin we ship (``Resources/PACS/orthanc/dicomservers-notify.lua``)
  as JSON in an HTTP ``POST /notify`` to the client's listener (see :mod:`.listener`);
- **polled** from the server when no listener can run (see :mod:`.polling`).

Both give the same :class:`NotificationEvent` value.

Wire format (what the plugin posts)
-----------------------------------
One JSON object per request, UTF-8, at most :data:`MAX_BODY_BYTES` bytes::

    {
      "version": 1,                          # optional; this client understands 1
      "server": "Orthanc lab",               # optional: the server's name in the client's list
      "kind": "instance",                    # "instance" | "series" | "study"
      "study_uid": "1.2.826.0.1.3680043...", # StudyInstanceUID (always)
      "series_uid": "1.2.826...",            # SeriesInstanceUID (instance, series)
      "sop_instance_uid": "1.2.826...",      # SOPInstanceUID (instance)
      "patient_id": "12345",                 # optional
      "patient_name": "DOE^JOHN",            # optional
      "study_description": "CT CHEST",       # optional
      "modality": "CT",                      # optional (instance, series)
      "resource_id": "6b9e...",              # optional: the PACS's own id (Orthanc's hash)
      "sent_at": "2024-05-01T10:00:00Z"      # optional, informative only
    }

Unknown keys are ignored (newer plugins may send more). :data:`EVENT_JSON_SCHEMA` is the same
contract as a JSON Schema (draft 2020-12), for PACS administrators writing their own sender.

Which server an event belongs to
--------------------------------
One listener (one ``notification_ip:notification_port``) may serve several servers of the list.
The ``server`` field names the server as it is named in the client's list (set in the plugin's
first lines). When it is empty, the listener picks the only server it serves, or the one whose
shared-secret token the request carries; otherwise the request is refused (HTTP 400). See
:meth:`DicomServersLib.notifications.listener.NotificationListener.resolve_server`.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from DicomServersLib.dicom_files import check_uid

#: Kinds of event, from the smallest to the largest resource.
EVENT_KINDS: tuple[str, ...] = ("instance", "series", "study")

#: Wire-format version this client writes and understands.
SCHEMA_VERSION = 1

#: Largest request body the listener accepts (bytes); larger ones are refused with HTTP 413.
MAX_BODY_BYTES = 64 * 1024

#: Longest text accepted in a descriptive field (patient name, description...).
MAX_TEXT_LENGTH = 256

#: Where an event came from.
SOURCE_LISTENER = "listener"
SOURCE_POLLING = "polling"

_TEXT_FIELDS = ("patient_id", "patient_name", "study_description", "modality", "resource_id")

Check = tuple[bool, str]

#: The wire format as a JSON Schema (documentation for PACS administrators; the client checks
#: the same rules in :func:`parse_event`).
EVENT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "DicomServers notification",
    "type": "object",
    "required": ["kind", "study_uid"],
    "properties": {
        "version": {"type": ["integer", "string"], "description": '1 (or "1")'},
        "server": {"type": "string", "maxLength": 64},
        "kind": {"enum": list(EVENT_KINDS)},
        "study_uid": {"type": "string", "pattern": r"^[0-9.]{1,64}$"},
        "series_uid": {"type": "string", "pattern": r"^[0-9.]{1,64}$"},
        "sop_instance_uid": {"type": "string", "pattern": r"^[0-9.]{1,64}$"},
        **{name: {"type": "string", "maxLength": MAX_TEXT_LENGTH} for name in _TEXT_FIELDS},
        "sent_at": {"type": "string"},
    },
    "allOf": [
        {
            "if": {"properties": {"kind": {"const": "series"}}},
            "then": {"required": ["series_uid"]},
        },
        {
            "if": {"properties": {"kind": {"const": "instance"}}},
            "then": {"required": ["series_uid", "sop_instance_uid"]},
        },
    ],
}


@dataclass(frozen=True)
class NotificationEvent:
    """A new instance, series or study on a server.

    Attributes
    ----------
    server : str
        Name of the server in the list.
    kind : str
        ``"instance"`` (one instance stored), ``"series"`` or ``"study"`` (the series or study
        is complete: no new instance for the PACS's stable age).
    study_uid : str
        StudyInstanceUID (0020,000D).
    series_uid : str
        SeriesInstanceUID (0020,000E); empty for study events.
    sop_instance_uid : str
        SOPInstanceUID (0008,0018); empty unless ``kind`` is ``"instance"``.
    patient_id, patient_name : str
        PatientID (0010,0020) and PatientName (0010,0010), when known.
    study_description, modality : str
        StudyDescription (0008,1030) and Modality (0008,0060), when known.
    resource_id : str
        The PACS's own identifier of the resource (Orthanc's id), when known.
    received_at : float
        When this client received (or polled) it: seconds since the epoch (``time.time()``).
    source : str
        :data:`SOURCE_LISTENER` or :data:`SOURCE_POLLING`.
    sender : str
        IP address the notification came from (listener only).
    """

    server: str
    kind: str
    study_uid: str
    series_uid: str = ""
    sop_instance_uid: str = ""
    patient_id: str = ""
    patient_name: str = ""
    study_description: str = ""
    modality: str = ""
    resource_id: str = ""
    received_at: float = 0.0
    source: str = SOURCE_LISTENER
    sender: str = ""

    @property
    def uid(self) -> str:
        """The UID of the resource the event is about (SOP, series or study UID)."""
        if self.kind == "instance":
            return self.sop_instance_uid
        if self.kind == "series":
            return self.series_uid
        return self.study_uid

    @property
    def key(self) -> tuple[str, str, str]:
        """``(server, kind, uid)``: two events with the same key report the same arrival."""
        return (self.server, self.kind, self.uid)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as JSON-ready data (``received_at`` also as ISO 8601 UTC)."""
        data = asdict(self)
        data["received_at_iso"] = (
            _dt.datetime.fromtimestamp(self.received_at, tz=_dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        return data

    def to_json(self) -> str:
        """Return :meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    def describe(self) -> str:
        """Return a one-line, plain-language description for a status bar or the CLI."""
        who = self.patient_name.replace("^", " ").strip() or "unknown patient"
        if self.patient_id:
            who += f" (ID {self.patient_id})"
        what = {"instance": "New image", "series": "New series", "study": "New study"}[self.kind]
        extra = self.study_description or self.modality
        detail = f" – {extra}" if extra else ""
        return f"{what} on {self.server}: {who}{detail}"


def _text(value: Any) -> str:
    return value.strip("\0 ") if isinstance(value, str) else ""


def check_payload(data: Any) -> Check:
    """Check a decoded notification body against the wire format.

    Parameters
    ----------
    data : Any
        The decoded JSON.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "")`` or ``(False, reason)``; the reason names the field and the rule.
    """
    if not isinstance(data, dict):
        return False, "the body must be a JSON object"
    version = data.get("version", SCHEMA_VERSION)
    if isinstance(version, str) and version.isdigit():  # Orthanc's DumpJson(x, true) quotes
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return False, "version: must be a whole number >= 1"
    if version > SCHEMA_VERSION:
        return False, f"version: this client understands version {SCHEMA_VERSION}, got {version}"
    kind = data.get("kind")
    if kind not in EVENT_KINDS:
        return False, f"kind: must be one of {', '.join(EVENT_KINDS)}, got {kind!r}"
    required = {"study": ["study_uid"], "series": ["study_uid", "series_uid"]}.get(
        kind, ["study_uid", "series_uid", "sop_instance_uid"]
    )
    for name in ("study_uid", "series_uid", "sop_instance_uid"):
        value = data.get(name, "")
        if value in ("", None) and name not in required:
            continue
        if not isinstance(value, str):
            return False, f"{name}: must be a UID string"
        ok, reason = check_uid(value.strip("\0 "))
        if not ok:
            return False, f"{name}: {reason}"
    server = data.get("server", "")
    if not isinstance(server, str) or len(server) > 64:
        return False, "server: must be text of at most 64 characters"
    for name in _TEXT_FIELDS:
        value = data.get(name, "")
        if value is None:
            continue
        if not isinstance(value, str):
            return False, f"{name}: must be text"
        if len(value) > MAX_TEXT_LENGTH:
            return False, f"{name}: at most {MAX_TEXT_LENGTH} characters, got {len(value)}"
    return True, ""


def event_from_payload(
    data: dict[str, Any], *, server: str, received_at: float, sender: str = ""
) -> NotificationEvent:
    """Build the event from a body accepted by :func:`check_payload`.

    Parameters
    ----------
    data : dict
        The decoded JSON (checked).
    server : str
        The server the event was attributed to (see the module's notes).
    received_at : float
        Reception time, seconds since the epoch.
    sender : str, optional
        The sender's IP address.

    Returns
    -------
    NotificationEvent
        Series and SOP UIDs above the event's level are dropped.
    """
    kind = str(data["kind"])
    return NotificationEvent(
        server=server,
        kind=kind,
        study_uid=_text(data.get("study_uid")),
        series_uid=_text(data.get("series_uid")) if kind != "study" else "",
        sop_instance_uid=_text(data.get("sop_instance_uid")) if kind == "instance" else "",
        patient_id=_text(data.get("patient_id")),
        patient_name=_text(data.get("patient_name")),
        study_description=_text(data.get("study_description")),
        modality=_text(data.get("modality")),
        resource_id=_text(data.get("resource_id")),
        received_at=received_at,
        source=SOURCE_LISTENER,
        sender=sender,
    )
