"""Deterministic synthetic CT and MR studies, written as DICOM Part-10 files with pydicom.

The sample set (:func:`write_sample_studies`) has several patients whose names need different
Specific Character Sets (PS3.3 C.12.1.1.2; PS3.5 §6.1), CT and MR series, studies spread over
time relative to a reference date, and one study without StudyDate (as de-identified data often
is). The dataclasses returned describe everything written, so tests can assert on UIDs, dates
and file paths without reading the files back.

Everything is deterministic given ``seed`` (and ``reference_date`` for the sample set): the UIDs
come from :func:`pydicom.uid.generate_uid` with fixed entropy sources, the pixels from a seeded
NumPy generator. Nothing here touches the network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from DicomServersLib.dicom_compat import write_dataset
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = [
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "REFERENCE_DATE",
    "SAMPLE_PATIENTS",
    "InstanceInfo",
    "Patient",
    "SampleSet",
    "SeriesInfo",
    "SeriesSpec",
    "StudyInfo",
    "make_big_ct_study",
    "make_ct_series",
    "make_mr_series",
    "make_series",
    "make_study",
    "make_uid",
    "write_sample_studies",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
"""CT Image Storage SOP Class UID (PS3.4 B.5)."""

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
"""MR Image Storage SOP Class UID (PS3.4 B.5)."""

REFERENCE_DATE = dt.date(2024, 6, 14)
"""Default 'today' of the sample set, so that its dates are reproducible."""

_SOP_CLASS_BY_MODALITY = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}
_INSTITUTION = "DicomServers Test Hospital"


def make_uid(seed: int, *parts: object) -> str:
    """Return a valid, deterministic DICOM UID for ``seed`` and ``parts``.

    Parameters
    ----------
    seed : int
        Seed of the generated data.
    *parts : object
        Anything that tells this UID apart from the others of the same seed.

    Returns
    -------
    str
        A UID under pydicom's root (at most 64 characters, PS3.5 §9.1).
    """
    return str(generate_uid(entropy_srcs=["dicomservers-rig", str(seed), *map(str, parts)]))


# --------------------------------------------------------------------------------------------
# What is generated


@dataclass(frozen=True)
class Patient:
    """A patient of the test data.

    Attributes
    ----------
    patient_id : str
        PatientID (0010,0020).
    name : str
        PatientName (0010,0010) as text, components separated by ``^`` and component groups
        (alphabetic, ideographic, phonetic) by ``=``.
    character_set : str or tuple of str or None
        SpecificCharacterSet (0008,0005) needed to encode the name, or None for the default
        repertoire (ASCII), in which case the element is left out.
    birth_date : str
        PatientBirthDate (0010,0030), ``YYYYMMDD``.
    sex : str
        PatientSex (0010,0040): ``M``, ``F`` or ``O``.
    """

    patient_id: str
    name: str
    character_set: str | tuple[str, ...] | None = None
    birth_date: str = ""
    sex: str = "O"


@dataclass(frozen=True)
class SeriesSpec:
    """What a series to generate should look like.

    Attributes
    ----------
    modality : str
        ``"CT"`` or ``"MR"``.
    description : str
        SeriesDescription (0008,103E).
    slices : int
        Number of single-frame instances.
    rows, columns : int
        Image size in pixels (int16 pixels, so 2 bytes each).
    slice_thickness : float
        Distance between slices in mm.
    """

    modality: str
    description: str
    slices: int = 4
    rows: int = 64
    columns: int = 64
    slice_thickness: float = 5.0


@dataclass(frozen=True)
class InstanceInfo:
    """One written instance (one file).

    Attributes
    ----------
    sop_instance_uid, sop_class_uid : str
        SOPInstanceUID and SOPClassUID.
    instance_number : int
        InstanceNumber (0020,0013), from 1.
    path : pathlib.Path
        The file written.
    """

    sop_instance_uid: str
    sop_class_uid: str
    instance_number: int
    path: Path


@dataclass
class SeriesInfo:
    """One written series.

    Attributes
    ----------
    series_instance_uid : str
        SeriesInstanceUID.
    series_number : int
        SeriesNumber, from 1 within the study.
    modality : str
        Modality (0008,0060).
    description : str
        SeriesDescription.
    rows, columns : int
        Image size.
    instances : list of InstanceInfo
        The instances, in InstanceNumber order.
    """

    series_instance_uid: str
    series_number: int
    modality: str
    description: str
    rows: int
    columns: int
    instances: list[InstanceInfo] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        """The files of this series."""
        return [instance.path for instance in self.instances]


@dataclass
class StudyInfo:
    """One written study.

    Attributes
    ----------
    study_instance_uid : str
        StudyInstanceUID.
    patient : Patient
        Its patient.
    study_date, study_time : str or None
        StudyDate (``YYYYMMDD``) and StudyTime (``HHMMSS``), None when the element is absent.
    accession_number : str
        AccessionNumber (0008,0050).
    description : str
        StudyDescription (0008,1030).
    study_id : str
        StudyID (0020,0010).
    directory : pathlib.Path
        Folder holding the study's files (one sub-folder per series).
    series : list of SeriesInfo
        Its series, in SeriesNumber order.
    seed : int
        Seed the study and its series were generated with.
    """

    study_instance_uid: str
    patient: Patient
    study_date: str | None
    study_time: str | None
    accession_number: str
    description: str
    study_id: str
    directory: Path
    series: list[SeriesInfo] = field(default_factory=list)
    seed: int = 0

    @property
    def instances(self) -> list[InstanceInfo]:
        """All instances of the study."""
        return [instance for series in self.series for instance in series.instances]

    @property
    def paths(self) -> list[Path]:
        """All files of the study."""
        return [instance.path for instance in self.instances]

    @property
    def modalities(self) -> list[str]:
        """ModalitiesInStudy: the distinct modalities of its series, in order of appearance."""
        return list(dict.fromkeys(series.modality for series in self.series))


@dataclass
class SampleSet:
    """A set of written studies.

    Attributes
    ----------
    root : pathlib.Path
        Folder everything was written under.
    studies : list of StudyInfo
        The studies.
    reference_date : datetime.date
        The 'today' the study dates were computed from.
    """

    root: Path
    studies: list[StudyInfo]
    reference_date: dt.date = REFERENCE_DATE

    @property
    def patients(self) -> list[Patient]:
        """The distinct patients, in order of first appearance."""
        return list({study.patient.patient_id: study.patient for study in self.studies}.values())

    @property
    def series(self) -> list[SeriesInfo]:
        """All series."""
        return [series for study in self.studies for series in study.series]

    @property
    def instances(self) -> list[InstanceInfo]:
        """All instances."""
        return [instance for study in self.studies for instance in study.instances]

    @property
    def paths(self) -> list[Path]:
        """All files."""
        return [instance.path for instance in self.instances]

    def study(self, key: str) -> StudyInfo:
        """Return the study with this AccessionNumber or StudyInstanceUID.

        Parameters
        ----------
        key : str
            AccessionNumber or StudyInstanceUID.

        Returns
        -------
        StudyInfo
            The study.

        Raises
        ------
        KeyError
            If there is no such study.
        """
        for study in self.studies:
            if key in (study.accession_number, study.study_instance_uid):
                return study
        raise KeyError(key)

    def studies_of(self, patient_id: str) -> list[StudyInfo]:
        """Return the studies of one patient.

        Parameters
        ----------
        patient_id : str
            PatientID.

        Returns
        -------
        list of StudyInfo
            Possibly empty.
        """
        return [study for study in self.studies if study.patient.patient_id == patient_id]


# --------------------------------------------------------------------------------------------
# Writing


def make_study(
    dest_dir: str | Path,
    patient: Patient,
    *,
    series: Sequence[SeriesSpec] = (),
    description: str = "",
    accession_number: str = "",
    study_date: str | None = "20240614",
    study_time: str | None = "120000",
    study_id: str = "1",
    study_instance_uid: str | None = None,
    seed: int = 0,
) -> StudyInfo:
    """Write a study with the given series.

    Parameters
    ----------
    dest_dir : str or pathlib.Path
        Parent folder; the study gets its own sub-folder, named after its accession number (or
        its UID when there is none).
    patient : Patient
        Whose study it is.
    series : sequence of SeriesSpec, optional
        Series to write now; more can be added later with :func:`make_series`.
    description : str, optional
        StudyDescription.
    accession_number : str, optional
        AccessionNumber.
    study_date, study_time : str or None, optional
        StudyDate ``YYYYMMDD`` and StudyTime ``HHMMSS``; None leaves the element out.
    study_id : str, optional
        StudyID.
    study_instance_uid : str, optional
        Use this UID instead of a generated one.
    seed : int, optional
        Seed of the UIDs and pixels.

    Returns
    -------
    StudyInfo
        What was written.
    """
    uid = study_instance_uid or make_uid(
        seed, "study", patient.patient_id, accession_number, description, study_date
    )
    directory = Path(dest_dir) / (accession_number or uid)
    directory.mkdir(parents=True, exist_ok=True)
    study = StudyInfo(
        study_instance_uid=uid,
        patient=patient,
        study_date=study_date,
        study_time=study_time,
        accession_number=accession_number,
        description=description,
        study_id=study_id,
        directory=directory,
        seed=seed,
    )
    for spec in series:
        make_series(study, spec)
    return study


def make_series(study: StudyInfo, spec: SeriesSpec) -> SeriesInfo:
    """Write one more series into a study and append it to ``study.series``.

    Parameters
    ----------
    study : StudyInfo
        The study (from :func:`make_study`).
    spec : SeriesSpec
        What to write.

    Returns
    -------
    SeriesInfo
        What was written.

    Raises
    ------
    ValueError
        If the modality is neither CT nor MR.
    """
    if spec.modality not in _SOP_CLASS_BY_MODALITY:
        raise ValueError(f"unsupported modality {spec.modality!r} (CT or MR)")
    number = len(study.series) + 1
    series = SeriesInfo(
        series_instance_uid=make_uid(study.seed, study.study_instance_uid, "series", number),
        series_number=number,
        modality=spec.modality,
        description=spec.description,
        rows=spec.rows,
        columns=spec.columns,
    )
    directory = study.directory / f"S{number:03d}"
    directory.mkdir(parents=True, exist_ok=True)
    frame_of_reference = make_uid(study.seed, study.study_instance_uid, "frame", number)
    phantom = _Phantom(spec.rows, spec.columns, spec.modality)
    rng = np.random.default_rng([study.seed, number, spec.slices])
    for index in range(spec.slices):
        instance_number = index + 1
        ds = _image_dataset(study, series, spec, instance_number, frame_of_reference)
        pixels = phantom.slice(index, spec.slices, rng)
        ds.PixelData = pixels.astype("<i2").tobytes()
        path = directory / f"I{instance_number:04d}.dcm"
        write_dataset(ds, path)
        series.instances.append(
            InstanceInfo(
                sop_instance_uid=str(ds.SOPInstanceUID),
                sop_class_uid=str(ds.SOPClassUID),
                instance_number=instance_number,
                path=path,
            )
        )
    study.series.append(series)
    return series


def make_ct_series(
    study: StudyInfo,
    *,
    description: str = "Axial CT",
    slices: int = 4,
    rows: int = 64,
    columns: int = 64,
    slice_thickness: float = 5.0,
) -> SeriesInfo:
    """Write a CT series (int16 Hounsfield units) into a study.

    Parameters
    ----------
    study : StudyInfo
        The study (from :func:`make_study`).
    description : str, optional
        SeriesDescription.
    slices, rows, columns : int, optional
        Number of slices and image size; 400 × 512 × 512 makes a ~200 MB series.
    slice_thickness : float, optional
        Slice spacing in mm.

    Returns
    -------
    SeriesInfo
        What was written.
    """
    spec = SeriesSpec("CT", description, slices, rows, columns, slice_thickness)
    return make_series(study, spec)


def make_mr_series(
    study: StudyInfo,
    *,
    description: str = "T1 axial",
    slices: int = 4,
    rows: int = 64,
    columns: int = 64,
    slice_thickness: float = 5.0,
) -> SeriesInfo:
    """Write an MR series into a study (see :func:`make_ct_series` for the parameters).

    Parameters
    ----------
    study : StudyInfo
        The study (from :func:`make_study`).
    description : str, optional
        SeriesDescription.
    slices, rows, columns : int, optional
        Number of slices and image size.
    slice_thickness : float, optional
        Slice spacing in mm.

    Returns
    -------
    SeriesInfo
        What was written.
    """
    spec = SeriesSpec("MR", description, slices, rows, columns, slice_thickness)
    return make_series(study, spec)


def make_big_ct_study(
    dest_dir: str | Path,
    *,
    slices: int = 400,
    rows: int = 512,
    columns: int = 512,
    seed: int = 0,
    patient: Patient | None = None,
) -> StudyInfo:
    """Write one large CT study for benchmarks (default 400 × 512 × 512 int16, about 200 MB).

    Slices are generated and written one at a time, so memory stays small.

    Parameters
    ----------
    dest_dir : str or pathlib.Path
        Parent folder.
    slices, rows, columns : int, optional
        Size of the series.
    seed : int, optional
        Seed of the UIDs and pixels.
    patient : Patient, optional
        Defaults to an ASCII-named benchmark patient.

    Returns
    -------
    StudyInfo
        What was written.
    """
    patient = patient or Patient("DS-BENCH", "Bench^Mark", None, "19700101", "O")
    spec = SeriesSpec("CT", "Thin-slice CT", slices, rows, columns, 1.0)
    return make_study(
        dest_dir,
        patient,
        series=[spec],
        description="Big CT for benchmarks",
        accession_number=f"BIG{seed:04d}",
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# The sample set

SAMPLE_PATIENTS: tuple[Patient, ...] = (
    Patient("DS-P001", "Müller^Jürgen", "ISO_IR 100", "19650312", "M"),
    Patient("DS-P002", "Żółć^Łukasz", "ISO_IR 192", "19881130", "M"),
    Patient(
        "DS-P003", "Yamada^Tarou=山田^太郎=やまだ^たろう", ("", "ISO 2022 IR 87"), "19720405", "M"
    ),
    Patient("DS-P004", "Παπαδόπουλος^Διονύσιος", "ISO_IR 126", "19590821", "M"),
    Patient("DS-P005", "Doe^Jane", None, "19900101", "F"),
)
"""The patients of :func:`write_sample_studies`: Latin-1, UTF-8, Japanese ISO 2022, Greek,
and plain ASCII with no SpecificCharacterSet."""


def _sample_plan(
    today: dt.date,
) -> Iterator[tuple[Patient, str, str, int | None, str | None, list[SeriesSpec]]]:
    """Yield (patient, accession, description, days before today, time, series) per study."""
    p1, p2, p3, p4, p5 = SAMPLE_PATIENTS
    yield (
        p1,
        "ACC0001",
        "Thorax nativ",
        0,
        "083000",
        [SeriesSpec("CT", "Thorax 5 mm", 4), SeriesSpec("CT", "Lunge 1 mm", 3, slice_thickness=1)],
    )
    yield (
        p1,
        "ACC0002",
        "Schädel MRT",
        40,
        "141500",
        [SeriesSpec("MR", "T1 sagittal", 3), SeriesSpec("MR", "T2 axial", 3)],
    )
    yield (p2, "ACC0003", "Staw kolanowy – MR", 1, "101010", [SeriesSpec("MR", "PD fs", 3)])
    yield (p2, "ACC0004", "Jama brzuszna – TK", 400, "230000", [SeriesSpec("CT", "Żyła wrotna", 4)])
    yield (p3, "ACC0005", "Chest CT", 10, "091500", [SeriesSpec("CT", "Chest 5 mm", 4)])
    yield (p4, "ACC0006", "Εγκέφαλος MR", 3000, "120000", [SeriesSpec("MR", "FLAIR", 3)])
    yield (p5, "ACC0007", "Anonymised CT", None, None, [SeriesSpec("CT", "Head", 3)])


def write_sample_studies(
    dest_dir: str | Path, *, seed: int = 0, reference_date: dt.date | None = None
) -> SampleSet:
    """Write the standard sample set: 5 patients, 7 studies, CT and MR, about 30 small images.

    Studies are dated 0, 1, 10, 40, 400 and 3000 days before ``reference_date``; the study
    ``ACC0007`` has neither StudyDate nor StudyTime. Patient names use ISO_IR 100, ISO_IR 192,
    ISO 2022 IR 87, ISO_IR 126 and plain ASCII (see :data:`SAMPLE_PATIENTS`).

    Parameters
    ----------
    dest_dir : str or pathlib.Path
        Folder to write under (created if needed).
    seed : int, optional
        Seed of the UIDs and pixels.
    reference_date : datetime.date, optional
        'Today' for the study dates; defaults to :data:`REFERENCE_DATE` so the output is the
        same every day. Pass ``datetime.date.today()`` to test relative date filters.

    Returns
    -------
    SampleSet
        What was written.
    """
    today = reference_date or REFERENCE_DATE
    root = Path(dest_dir)
    studies = []
    for index, (patient, accession, description, days_ago, time, series) in enumerate(
        _sample_plan(today), start=1
    ):
        date = (
            None if days_ago is None else (today - dt.timedelta(days=days_ago)).strftime("%Y%m%d")
        )
        studies.append(
            make_study(
                root,
                patient,
                series=series,
                description=description,
                accession_number=accession,
                study_date=date,
                study_time=time,
                study_id=str(index),
                seed=seed,
            )
        )
    return SampleSet(root=root, studies=studies, reference_date=today)


# --------------------------------------------------------------------------------------------
# Data set and pixel construction


def _image_dataset(
    study: StudyInfo,
    series: SeriesInfo,
    spec: SeriesSpec,
    instance_number: int,
    frame_of_reference: str,
) -> Dataset:
    """Build the header of one CT or MR image (PS3.3 A.3 CT Image IOD, A.4 MR Image IOD)."""
    sop_class = _SOP_CLASS_BY_MODALITY[spec.modality]
    sop_instance = make_uid(study.seed, series.series_instance_uid, "instance", instance_number)
    patient = study.patient
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if patient.character_set is not None:
        charset = patient.character_set
        ds.SpecificCharacterSet = list(charset) if isinstance(charset, tuple) else charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    if study.study_date is not None:
        ds.StudyDate = study.study_date
        ds.SeriesDate = study.study_date
        ds.ContentDate = study.study_date
    if study.study_time is not None:
        ds.StudyTime = study.study_time
        ds.SeriesTime = study.study_time
        ds.ContentTime = study.study_time
    ds.AccessionNumber = study.accession_number
    ds.Modality = spec.modality
    ds.Manufacturer = "DicomServers"
    ds.InstitutionName = _INSTITUTION
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyDescription = study.description
    ds.SeriesDescription = spec.description
    ds.ManufacturerModelName = "Synthetic"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.BodyPartExamined = "HEAD" if spec.modality == "MR" else "CHEST"
    ds.SliceThickness = spec.slice_thickness
    if spec.modality == "CT":
        ds.KVP = 120
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = 500.0
        ds.EchoTime = 15.0
        ds.MagneticFieldStrength = 1.5
        ds.EchoTrainLength = 1
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.study_instance_uid
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    z = -(instance_number - 1) * spec.slice_thickness
    spacing = 250.0 / max(spec.rows, spec.columns)
    ds.ImagePositionPatient = [-spacing * spec.columns / 2, -spacing * spec.rows / 2, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = z
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.PixelSpacing = [spacing, spacing]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    if spec.modality == "CT":
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
    else:
        ds.WindowCenter = 400
        ds.WindowWidth = 800
    return ds


class _Phantom:
    """A cheap head/body phantom: an ellipse with an off-centre disc that drifts over slices."""

    def __init__(self, rows: int, columns: int, modality: str) -> None:
        y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
        self._u = (x - columns / 2) / (columns / 2)
        self._v = (y - rows / 2) / (rows / 2)
        self._body = (self._u / 0.85) ** 2 + (self._v / 0.7) ** 2 <= 1.0
        if modality == "CT":
            self._background, self._tissue, self._insert = -1000, 40, 700
        else:
            self._background, self._tissue, self._insert = 0, 300, 700

    def slice(self, index: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """Return slice ``index`` of ``count`` as int16, with seeded noise."""
        shift = (index / max(count - 1, 1)) - 0.5
        insert = (self._u - 0.3 * shift) ** 2 + (self._v + 0.2) ** 2 <= 0.04
        image = np.full(self._u.shape, self._background, dtype=np.int16)
        image[self._body] = self._tissue
        image[insert & self._body] = self._insert
        noise = rng.integers(-8, 9, size=image.shape, dtype=np.int16)
        return image + noise
