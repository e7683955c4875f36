"""Modality Worklist items as ``.wl`` files, served by Orthanc's worklist plugin and wlmscpfs.

A worklist item is a data set with the attributes of the Modality Worklist Information Model
(PS3.4 K.6.1.2): patient, requested procedure and one Scheduled Procedure Step. Both servers
read every ``*.wl`` file of their folder on each C-FIND, so items can be added while they run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from DicomServersLib.dicom_compat import write_dataset
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from rig.studies import Patient, make_uid

__all__ = ["MODALITY_WORKLIST_FIND", "make_worklist_item", "write_worklist_file"]

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
"""Modality Worklist Information Model - FIND SOP Class UID (PS3.4 K.4)."""


def make_worklist_item(
    patient: Patient,
    *,
    accession_number: str,
    scheduled_station_ae_title: str = "DICOMSERVERS",
    modality: str = "CT",
    scheduled_date: dt.date | None = None,
    scheduled_time: str = "090000",
    requested_procedure_description: str = "CT Thorax",
    step_description: str = "Thorax native",
    step_id: str = "SPS1",
    requested_procedure_id: str = "RP1",
    seed: int = 0,
) -> Dataset:
    """Build one worklist item with the attributes servers require to answer it.

    Parameters
    ----------
    patient : Patient
        Patient of the item; its character set is used for the whole item.
    accession_number : str
        AccessionNumber (0008,0050), also used to derive the StudyInstanceUID.
    scheduled_station_ae_title : str, optional
        ScheduledStationAETitle (0040,0001) of the step.
    modality : str, optional
        Modality (0008,0060) of the step.
    scheduled_date : datetime.date, optional
        ScheduledProcedureStepStartDate (0040,0002); defaults to today.
    scheduled_time : str, optional
        ScheduledProcedureStepStartTime (0040,0003), ``HHMMSS``.
    requested_procedure_description : str, optional
        RequestedProcedureDescription (0032,1060).
    step_description : str, optional
        ScheduledProcedureStepDescription (0040,0007).
    step_id : str, optional
        ScheduledProcedureStepID (0040,0009).
    requested_procedure_id : str, optional
        RequestedProcedureID (0040,1001).
    seed : int, optional
        Seed of the generated UIDs.

    Returns
    -------
    pydicom.dataset.Dataset
        The item, with file meta ready for :func:`write_worklist_file`.
    """
    date = (scheduled_date or dt.date.today()).strftime("%Y%m%d")
    ds = Dataset()
    if patient.character_set is not None:
        charset = patient.character_set
        ds.SpecificCharacterSet = list(charset) if isinstance(charset, tuple) else charset
    ds.AccessionNumber = accession_number
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = make_uid(seed, "worklist-study", accession_number)
    ds.RequestingPhysician = "Requester^Rolf"
    ds.RequestedProcedureDescription = requested_procedure_description
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = scheduled_station_ae_title
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = scheduled_time
    step.ScheduledPerformingPhysicianName = "Operator^Olga"
    step.ScheduledProcedureStepDescription = step_description
    step.ScheduledProcedureStepID = step_id
    step.ScheduledStationName = "STATION1"
    step.ScheduledProcedureStepLocation = "ROOM1"
    ds.ScheduledProcedureStepSequence = [step]
    ds.RequestedProcedureID = requested_procedure_id
    ds.RequestedProcedurePriority = "ROUTINE"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(MODALITY_WORKLIST_FIND)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(make_uid(seed, "worklist-item", accession_number))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def write_worklist_file(item: Dataset, folder: str | Path, name: str | None = None) -> Path:
    """Write a worklist item as ``<folder>/<name>.wl``.

    The file is written under a temporary name and renamed, so a server scanning the folder
    never reads a half-written item.

    Parameters
    ----------
    item : pydicom.dataset.Dataset
        The item (see :func:`make_worklist_item`).
    folder : str or pathlib.Path
        The worklist folder (created if needed).
    name : str, optional
        File name without extension; defaults to the item's AccessionNumber.

    Returns
    -------
    pathlib.Path
        The ``.wl`` file.
    """
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    stem = name or str(item.get("AccessionNumber", "")) or "item"
    path = directory / f"{stem}.wl"
    partial = directory / f".{stem}.wl.partial"
    write_dataset(item, partial)
    partial.replace(path)
    return path
