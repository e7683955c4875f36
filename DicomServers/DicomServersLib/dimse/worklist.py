"""Modality Worklist: the procedures scheduled for a station (PS3.4 Annex K).

A C-FIND on the Modality Worklist Information Model - FIND (PS3.4 K.6.1) to the server's
``worklist_ae_title`` (on the same host and port as the PACS; the PACS's own AE title when
empty), matching the Scheduled Procedure Step's Scheduled Station AE Title
(``scheduled_station_ae_title``; every station when empty) and its start date (PS3.4
K.6.1.2.2).
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from DicomServersLib.dimse.association import Timeouts
from DicomServersLib.dimse.elements import clean_text
from DicomServersLib.dimse.find import MODALITY_WORKLIST_FIND, FindSession, Match
from DicomServersLib.dimse.query import NETWORK_FIELDS, UTF8, require_server_fields
from DicomServersLib.progress import ProgressCallback
from DicomServersLib.server import DicomServer
from DicomServersLib.validation import ValidationError, check_ae_title

__all__ = ["WorklistItem", "WorklistResult", "find_worklist", "worklist_identifier"]


@dataclass
class WorklistItem:
    """One scheduled procedure step (first step of the item's sequence)."""

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    accession_number: str = ""
    study_uid: str = ""
    requested_procedure_id: str = ""
    requested_procedure_description: str = ""
    referring_physician_name: str = ""
    modality: str = ""
    scheduled_station_ae_title: str = ""
    scheduled_station_name: str = ""
    scheduled_date: str = ""  # YYYYMMDD
    scheduled_time: str = ""
    step_id: str = ""
    step_description: str = ""
    performing_physician_name: str = ""
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return asdict(self)


@dataclass
class WorklistResult:
    """The outcome of a worklist query."""

    items: list[WorklistItem] = field(default_factory=list)
    ok: bool = True
    diagnosis: str = ""
    status: int | None = None
    cut_off: str = ""
    duration_s: float = 0.0
    date: str = ""  # the date asked for, YYYYMMDD, "" for any
    station_ae_title: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "status": self.status,
            "cut_off": self.cut_off,
            "duration_s": round(self.duration_s, 3),
            "date": self.date,
            "station_ae_title": self.station_ae_title,
            "items": [item.to_dict() for item in self.items],
        }


def worklist_identifier(station_ae_title: str, date: str, modality: str = "") -> Dataset:
    """Return the Modality Worklist C-FIND identifier (PS3.4 K.6.1.2.2 keys).

    Parameters
    ----------
    station_ae_title : str
        Scheduled Station AE Title to match ("" matches every station).
    date : str
        Scheduled Procedure Step Start Date ``YYYYMMDD`` or a range; "" for any.
    modality : str, optional
        Modality to match.
    """
    step = Dataset()
    step.ScheduledStationAETitle = station_ae_title
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = ""
    step.Modality = modality
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledStationName = ""
    step.ScheduledProcedureStepLocation = ""
    step.ScheduledProcedureStepID = ""
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = ""
    ds.RequestedProcedureDescription = ""
    ds.RequestedProcedureID = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    """A value as text (pydicom decodes it with the item's character set); lists joined."""
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    return clean_text(str(value))


def _item(match: Match) -> WorklistItem:
    ds = match.dataset()
    steps = ds.get("ScheduledProcedureStepSequence") or [Dataset()]
    step = steps[0]
    return WorklistItem(
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        accession_number=_text(ds, "AccessionNumber"),
        study_uid=_text(ds, "StudyInstanceUID"),
        requested_procedure_id=_text(ds, "RequestedProcedureID"),
        requested_procedure_description=_text(ds, "RequestedProcedureDescription"),
        referring_physician_name=_text(ds, "ReferringPhysicianName"),
        modality=_text(step, "Modality"),
        scheduled_station_ae_title=_text(step, "ScheduledStationAETitle"),
        scheduled_station_name=_text(step, "ScheduledStationName"),
        scheduled_date=_text(step, "ScheduledProcedureStepStartDate"),
        scheduled_time=_text(step, "ScheduledProcedureStepStartTime"),
        step_id=_text(step, "ScheduledProcedureStepID"),
        step_description=_text(step, "ScheduledProcedureStepDescription"),
        performing_physician_name=_text(step, "ScheduledPerformingPhysicianName"),
        location=_text(step, "ScheduledProcedureStepLocation"),
    )


def find_worklist(
    server: DicomServer,
    *,
    date: _dt.date | None = None,
    any_date: bool = False,
    station_ae_title: str | None = None,
    modality: str = "",
    timeouts: Timeouts | None = None,
    progress: ProgressCallback | None = None,
    limit: int = 0,
) -> WorklistResult:
    """Query the modality worklist of a server.

    Parameters
    ----------
    server : DicomServer
        Host and port; ``worklist_ae_title`` is called (``called_ae_title`` when empty);
        ``scheduled_station_ae_title`` is matched unless ``station_ae_title`` is given.
    date : datetime.date, optional
        The scheduled date; today by default.
    any_date : bool, optional
        Match every date instead.
    station_ae_title : str, optional
        Scheduled Station AE Title to match instead of the server's ("" for every station).
    modality : str, optional
        Modality to match (e.g. ``CT``).
    timeouts : Timeouts, optional
        Defaults to the server's timeout.
    progress : ProgressCallback, optional
        Told the number of items; returning False cancels (C-CANCEL).
    limit : int, optional
        Keep at most this many items (0: all).

    Returns
    -------
    WorklistResult
        The items in the order the server sent them, or the diagnosis of a failure.

    Raises
    ------
    ValidationError
        Invalid server fields or station AE title (misuse).
    """
    require_server_fields(server, NETWORK_FIELDS)
    station = server.scheduled_station_ae_title if station_ae_title is None else station_ae_title
    errors = []
    for name, value in (
        ("worklist_ae_title", server.worklist_ae_title),
        ("scheduled_station_ae_title", station),
    ):
        ok, reason = check_ae_title(value, optional=True)
        if not ok:
            errors.append((name, f"{name}: {reason}"))
    if errors:
        raise ValidationError(errors)
    day = "" if any_date else (date or _dt.date.today()).strftime("%Y%m%d")
    result = WorklistResult(date=day, station_ae_title=station)
    started = time.monotonic()
    with FindSession(
        server,
        [MODALITY_WORKLIST_FIND],
        timeouts or Timeouts.for_server(server),
        service="MWL",
        called_ae_title=server.worklist_ae_title or server.called_ae_title,
    ) as session:
        if session.failure is not None:
            result.ok = False
            result.diagnosis = session.failure.diagnosis
            result.status = session.failure.status
        else:
            run = session.find(
                MODALITY_WORKLIST_FIND,
                worklist_identifier(station, day, modality.upper()),
                lambda match: result.items.append(_item(match)),
                limit=limit,
                progress=progress,
                what="worklist items",
            )
            result.status = run.status
            result.cut_off = run.cut_off
            if run.failure is not None:
                result.ok = False
                result.diagnosis = run.failure.diagnosis
                if run.failure.status is not None:
                    result.status = run.failure.status
    result.duration_s = time.monotonic() - started
    return result
