"""The sample studies and worklist items the demo PACS holds on first start.

Small and deterministic: six studies of five patients (64 single-frame 64×64 CT and MR images,
about 600 kB), made with pydicom and the standard library only. They show what a real PACS
shows:

- names that need different Specific Character Sets (PS3.3 C.12.1.1.2, PS3.5 §6.1): plain
  ASCII, Latin-1 (``ISO_IR 100``), Japanese with ISO 2022 code extensions
  (``\\ISO 2022 IR 87``), Greek (``ISO_IR 126``) and UTF-8 (``ISO_IR 192``);
- CT and MR, several series per study, dates spread from yesterday to three years back
  (relative to a reference date, today by default) and one study without a StudyDate;
- Modality Worklist items (PS3.4 K.6.1.2) scheduled today and tomorrow.

The UIDs depend only on the study, series and instance they name (not on the reference date),
so regenerating the samples rewrites the same instances. The images are a simple body phantom
with a proper Image Plane module, so they load as volumes in Slicer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from DicomServersLib.dicom_compat import write_dataset
from DicomServersLib.dicom_files import instance_path

from .layout import DemoFolder

__all__ = [
    "CT_IMAGE_STORAGE",
    "MODALITY_WORKLIST_FIND",
    "MR_IMAGE_STORAGE",
    "SAMPLES_VERSION",
    "SAMPLE_STUDIES",
    "SAMPLE_WORKLIST",
    "SamplePatient",
    "SampleSeries",
    "SampleStudy",
    "SampleWorklistItem",
    "install_samples",
    "sample_instances",
    "sample_uid",
    "sample_worklist_items",
    "write_samples",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
"""CT Image Storage SOP Class UID (PS3.4 B.5)."""

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
"""MR Image Storage SOP Class UID (PS3.4 B.5)."""

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
"""Modality Worklist Information Model - FIND SOP Class UID (PS3.4 K.4)."""

SAMPLES_VERSION = 1
"""Version of the sample set, written to the marker file."""

IMAGE_SIZE = 64
"""Rows and columns of every sample image."""

_INSTITUTION = "DicomServers Demo Hospital"


@dataclass(frozen=True)
class SamplePatient:
    """A patient of the samples; ``character_set`` is None for plain ASCII."""

    patient_id: str
    name: str
    character_set: str | tuple[str, ...] | None
    birth_date: str
    sex: str


@dataclass(frozen=True)
class SampleSeries:
    """A series: modality, description, number of slices and body part."""

    modality: str
    description: str
    slices: int
    body_part: str


@dataclass(frozen=True)
class SampleStudy:
    """A study; ``days_ago`` None gives a study without StudyDate and StudyTime."""

    patient: SamplePatient
    accession_number: str
    description: str
    days_ago: int | None
    time: str
    series: tuple[SampleSeries, ...]


@dataclass(frozen=True)
class SampleWorklistItem:
    """A scheduled procedure step: when (days from the reference date), where and what."""

    patient: SamplePatient
    accession_number: str
    modality: str
    station_ae_title: str
    days_ahead: int
    time: str
    procedure: str


_DOE = SamplePatient("DEMO-001", "Doe^Jane", None, "19800214", "F")
_MUELLER = SamplePatient("DEMO-002", "Müller^Jürgen", "ISO_IR 100", "19650312", "M")
_YAMADA = SamplePatient(
    "DEMO-003", "Yamada^Tarou=山田^太郎=やまだ^たろう", ("", "ISO 2022 IR 87"), "19720405", "M"
)
_PAPADOPOULOU = SamplePatient("DEMO-004", "Παπαδοπούλου^Ελένη", "ISO_IR 126", "19590821", "F")
_ODEGARD = SamplePatient("DEMO-005", "Ødegård^Åse", "ISO_IR 192", "19911103", "F")
_WANG = SamplePatient("DEMO-006", "Wang^XiaoDong=王^小東", "ISO_IR 192", "19850707", "M")

SAMPLE_STUDIES: tuple[SampleStudy, ...] = (
    SampleStudy(
        _DOE,
        "DEMO1001",
        "CT Thorax",
        1,
        "091500",
        (
            SampleSeries("CT", "Thorax 5 mm soft tissue", 8, "CHEST"),
            SampleSeries("CT", "Thorax 5 mm lung", 8, "CHEST"),
        ),
    ),
    SampleStudy(
        _DOE,
        "DEMO1002",
        "MR Brain",
        200,
        "143000",
        (
            SampleSeries("MR", "T1 axial", 6, "HEAD"),
            SampleSeries("MR", "T2 axial", 6, "HEAD"),
        ),
    ),
    SampleStudy(
        _MUELLER,
        "DEMO1003",
        "MR Knee left",
        14,
        "101000",
        (
            SampleSeries("MR", "PD fat sat", 6, "KNEE"),
            SampleSeries("MR", "T1", 6, "KNEE"),
        ),
    ),
    SampleStudy(
        _YAMADA,
        "DEMO1004",
        "CT Abdomen",
        45,
        "160500",
        (SampleSeries("CT", "Abdomen venous phase", 10, "ABDOMEN"),),
    ),
    SampleStudy(
        _PAPADOPOULOU,
        "DEMO1005",
        "CT Head",
        1100,
        "080000",
        (SampleSeries("CT", "Head 5 mm", 8, "HEAD"),),
    ),
    SampleStudy(
        _ODEGARD,
        "DEMO1006",
        "Outside study (no date)",
        None,
        "",
        (SampleSeries("MR", "T2 sagittal", 6, "SPINE"),),
    ),
)
"""The sample studies: 5 patients, 6 studies, 9 series, 64 instances."""

SAMPLE_WORKLIST: tuple[SampleWorklistItem, ...] = (
    SampleWorklistItem(_DOE, "DEMO2001", "CT", "SLICER", 0, "090000", "CT Thorax follow-up"),
    SampleWorklistItem(_MUELLER, "DEMO2002", "MR", "SLICER", 0, "103000", "MR Knee left"),
    SampleWorklistItem(_WANG, "DEMO2003", "CT", "SLICER", 0, "140000", "CT Head"),
    SampleWorklistItem(_PAPADOPOULOU, "DEMO2004", "MR", "MR01", 1, "083000", "MR Brain"),
)
"""The worklist items: three for station ``SLICER`` today, one for ``MR01`` tomorrow."""


def sample_uid(*parts: object) -> str:
    """Return the deterministic UID of a sample object named by ``parts``."""
    return str(generate_uid(entropy_srcs=["dicomservers-demo-pacs", *map(str, parts)]))


def _set_charset(ds: Dataset, patient: SamplePatient) -> None:
    charset = patient.character_set
    if charset is not None:
        ds.SpecificCharacterSet = list(charset) if isinstance(charset, tuple) else charset


def _date(reference: dt.date, days: int) -> str:
    return (reference + dt.timedelta(days=days)).strftime("%Y%m%d")


def _phantom(modality: str, body_part: str, slice_index: int, slices: int) -> bytes:
    """Return the 16-bit unsigned little-endian pixels of one phantom slice."""
    size = IMAGE_SIZE
    # Where along the body this slice is (-1..1), so the structures change through the volume.
    t = (2.0 * slice_index / max(1, slices - 1)) - 1.0 if slices > 1 else 0.0
    body_rx, body_ry = (0.9, 0.7) if body_part in ("CHEST", "ABDOMEN", "SPINE") else (0.75, 0.85)
    inner_r = 0.28 * math.sqrt(max(0.0, 1.0 - 0.6 * t * t))
    if modality == "CT":
        air, body, bone, organ = (
            0,
            1024 + 40,
            1024 + 700,
            1024 - 700 if body_part == "CHEST" else 1064,
        )
    else:
        air, body, bone, organ = 0, 420, 120, 780
    pixels = array("H", bytes(2 * size * size))
    for row in range(size):
        y = (row + 0.5) / size * 2.0 - 1.0
        for col in range(size):
            x = (col + 0.5) / size * 2.0 - 1.0
            outer = (x / body_rx) ** 2 + (y / body_ry) ** 2
            if outer > 1.0:
                value = air
            elif outer > 0.85:
                value = bone
            elif (x + 0.35) ** 2 + y * y < inner_r * inner_r or (x - 0.35) ** 2 + y * y < (
                inner_r * inner_r
            ):
                value = organ
            else:
                value = body + int(20 * math.sin(3 * x + 2 * y + t))
            pixels[row * size + col] = value
    if sys.byteorder != "little":
        pixels.byteswap()
    return pixels.tobytes()


def _image(
    study: SampleStudy,
    series: SampleSeries,
    series_number: int,
    index: int,
    reference: dt.date,
) -> Dataset:
    """Build one CT or MR image of a sample series."""
    patient = study.patient
    study_uid = sample_uid("study", study.accession_number)
    series_uid = sample_uid("series", study.accession_number, series_number)
    sop_uid = sample_uid("instance", study.accession_number, series_number, index)
    sop_class = CT_IMAGE_STORAGE if series.modality == "CT" else MR_IMAGE_STORAGE
    ds = Dataset()
    _set_charset(ds, patient)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    study_date = _date(reference, -study.days_ago) if study.days_ago is not None else ""
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = study.time
    ds.SeriesTime = study.time
    ds.AccessionNumber = study.accession_number
    ds.Modality = series.modality
    ds.Manufacturer = "DicomServers"
    ds.InstitutionName = _INSTITUTION
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = "Demo PACS phantom"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.BodyPartExamined = series.body_part
    ds.SliceThickness = "5"
    if series.modality == "CT":
        ds.KVP = "120"
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500" if series_number % 2 else "4000"
        ds.EchoTime = "15" if series_number % 2 else "90"
        ds.EchoTrainLength = "1"
        ds.MagneticFieldStrength = "1.5"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.accession_number[-4:]
    ds.SeriesNumber = str(series_number)
    ds.InstanceNumber = str(index + 1)
    z = 5.0 * index - 2.5 * (series.slices - 1)
    half = IMAGE_SIZE * 4.0 / 2.0
    ds.ImagePositionPatient = [f"{-half:g}", f"{-half:g}", f"{z:g}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = sample_uid("frame", study.accession_number, series_number)
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z:g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = IMAGE_SIZE
    ds.Columns = IMAGE_SIZE
    ds.PixelSpacing = ["4", "4"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if series.modality == "CT":
        ds.WindowCenter = "40" if "lung" not in series.description else "-600"
        ds.WindowWidth = "400" if "lung" not in series.description else "1500"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
    else:
        ds.WindowCenter = "400"
        ds.WindowWidth = "800"
    ds.PixelData = _phantom(series.modality, series.body_part, index, series.slices)
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def sample_instances(reference_date: dt.date | None = None) -> Iterator[Dataset]:
    """Yield every sample image, study by study, series by series.

    Parameters
    ----------
    reference_date : datetime.date, optional
        "Today" of the sample set (study dates are relative to it); defaults to today.

    Yields
    ------
    pydicom.dataset.Dataset
        One image with its file meta, ready for
        :func:`DicomServersLib.dicom_compat.write_dataset`.
    """
    reference = reference_date or dt.date.today()
    for study in SAMPLE_STUDIES:
        for number, series in enumerate(study.series, start=1):
            for index in range(series.slices):
                yield _image(study, series, number, index, reference)


def sample_worklist_items(reference_date: dt.date | None = None) -> list[Dataset]:
    """Return the sample Modality Worklist items (PS3.4 K.6.1.2), one per scheduled step.

    Parameters
    ----------
    reference_date : datetime.date, optional
        "Today" of the sample set; defaults to today.

    Returns
    -------
    list of pydicom.dataset.Dataset
        The items, with file meta, for writing as ``.wl`` files.
    """
    reference = reference_date or dt.date.today()
    items = []
    for spec in SAMPLE_WORKLIST:
        patient = spec.patient
        ds = Dataset()
        _set_charset(ds, patient)
        ds.AccessionNumber = spec.accession_number
        ds.ReferringPhysicianName = "Referrer^Rita"
        ds.PatientName = patient.name
        ds.PatientID = patient.patient_id
        ds.PatientBirthDate = patient.birth_date
        ds.PatientSex = patient.sex
        ds.StudyInstanceUID = sample_uid("worklist-study", spec.accession_number)
        ds.RequestingPhysician = "Requester^Rolf"
        ds.RequestedProcedureDescription = spec.procedure
        step = Dataset()
        step.Modality = spec.modality
        step.ScheduledStationAETitle = spec.station_ae_title
        step.ScheduledProcedureStepStartDate = _date(reference, spec.days_ahead)
        step.ScheduledProcedureStepStartTime = spec.time
        step.ScheduledPerformingPhysicianName = "Operator^Olga"
        step.ScheduledProcedureStepDescription = spec.procedure
        step.ScheduledProcedureStepID = f"SPS{spec.accession_number[-4:]}"
        step.ScheduledStationName = spec.station_ae_title
        step.ScheduledProcedureStepLocation = "Demo room"
        ds.ScheduledProcedureStepSequence = [step]
        ds.RequestedProcedureID = f"RP{spec.accession_number[-4:]}"
        ds.RequestedProcedurePriority = "ROUTINE"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(MODALITY_WORKLIST_FIND)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(
            sample_uid("worklist-item", spec.accession_number)
        )
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        items.append(ds)
    return items


def write_samples(
    storage: str | os.PathLike[str],
    worklists: str | os.PathLike[str] | None = None,
    reference_date: dt.date | None = None,
) -> list[Path]:
    """Write the sample images (and worklist items) as files.

    Parameters
    ----------
    storage : str or os.PathLike
        Folder receiving ``<Study>/<Series>/<SOP>.dcm``.
    worklists : str or os.PathLike, optional
        Folder receiving ``<AccessionNumber>.wl``; no worklist items when None.
    reference_date : datetime.date, optional
        "Today" of the sample set; defaults to today.

    Returns
    -------
    list of pathlib.Path
        The image files written.
    """
    written = []
    for ds in sample_instances(reference_date):
        path = instance_path(
            Path(storage), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_dataset(ds, path)
        written.append(path)
    if worklists is not None:
        Path(worklists).mkdir(parents=True, exist_ok=True)
        for item in sample_worklist_items(reference_date):
            write_dataset(item, Path(worklists) / f"{item.AccessionNumber}.wl")
    return written


def _empty_or_missing(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def install_samples(folder: DemoFolder, reference_date: dt.date | None = None) -> bool:
    """Put the samples into a demo folder on its first start.

    The samples are installed when the marker file is absent and the storage and worklist
    folders are empty or missing: a folder already holding DICOM files (a real storage folder
    served by the demo PACS) is never filled with samples. They are written to a temporary
    folder first and moved into place, so an interrupted first start leaves no half set.

    Parameters
    ----------
    folder : DemoFolder
        The demo PACS folder.
    reference_date : datetime.date, optional
        "Today" of the sample set; defaults to today.

    Returns
    -------
    bool
        True when the samples were installed now.
    """
    if folder.marker.exists():
        return False
    if not (_empty_or_missing(folder.storage) and _empty_or_missing(folder.worklists)):
        return False
    reference = reference_date or dt.date.today()
    folder.root.mkdir(parents=True, exist_ok=True)
    staging = folder.root / ".samples-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_samples(staging / "storage", staging / "worklists", reference)
        for name in ("storage", "worklists"):
            target = folder.root / name
            if target.exists():
                target.rmdir()  # empty (checked above)
            os.replace(staging / name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker = {"samples_version": SAMPLES_VERSION, "reference_date": reference.isoformat()}
    tmp = folder.marker.with_name(f".{folder.marker.name}.tmp")
    tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder.marker)
    return True
