"""Helpers of the DIMSE tests: server records for the rig's peers, file comparisons, SCPs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from DicomServersLib.dicom_files import TEMP_PREFIX
from DicomServersLib.server import DicomServer
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    BasicWorklistManagementPresentationContexts,
    StoragePresentationContexts,
    VerificationPresentationContexts,
    build_context,
)
from rig.ports import LOOPBACK
from rig.scp import FakeQRSCP
from rig.studies import StudyInfo

MOVE_AE = "DSMOVE"
"""The AE title our storage listener answers as in the tests (registered on Orthanc)."""

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


def server_for(peer: Any, **changes: Any) -> DicomServer:
    """A server record for a rig peer (Orthanc, DCMTK or pynetdicom SCP) on loopback."""
    ae_title = getattr(peer, "aet", None) or getattr(peer, "ae_title", "PACS")
    port = getattr(peer, "dicom_port", None) or peer.port
    fields: dict[str, Any] = {
        "name": "Test PACS",
        "called_ae_title": ae_title,
        "host": LOOPBACK,
        "port": port,
        "calling_ae_title": "DSTEST",
        "move_destination_ae_title": MOVE_AE,
        "timeout_s": 10.0,
        "search_limit": 0,
    }
    fields.update(changes)
    return DicomServer(**fields)


def data_set_bytes(path: Path) -> bytes:
    """The data set of a Part-10 file, after its preamble and File Meta Information."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM", f"{path} is not a Part-10 file"
    group_length = int.from_bytes(raw[140:144], "little")
    return raw[144 + group_length :]


def temporaries(folder: Path) -> list[Path]:
    """Our temporary files left anywhere under ``folder``."""
    return [p for p in folder.rglob(f"{TEMP_PREFIX}*")] if folder.exists() else []


def dcm_files(folder: Path) -> list[Path]:
    """Every ``.dcm`` file under ``folder``."""
    return sorted(folder.rglob("*.dcm")) if folder.exists() else []


class NoGetSCP(FakeQRSCP):
    """A Q/R SCP that offers C-FIND and C-MOVE but not C-GET (as many real PACS)."""

    def configure(self, ae: AE) -> None:
        """Verification, Study Root FIND and MOVE, Worklist, Storage: no GET model."""
        ae.supported_contexts = VerificationPresentationContexts
        ae.add_supported_context(STUDY_ROOT_FIND)
        ae.add_supported_context(STUDY_ROOT_MOVE)
        for context in BasicWorklistManagementPresentationContexts + StoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax)


def context_for(uid: str) -> Any:
    """A presentation context (for SCPs configured by hand)."""
    return build_context(uid)


def qr_answers(studies: list[StudyInfo]) -> Callable[[Dataset], list[Dataset]]:
    """C-FIND answers of a hierarchical PACS holding ``studies`` (for :class:`FakeQRSCP`)."""

    def answer(identifier: Dataset) -> list[Dataset]:
        level = str(identifier.get("QueryRetrieveLevel", "STUDY"))
        wanted_study = str(identifier.get("StudyInstanceUID", "") or "")
        wanted_series = str(identifier.get("SeriesInstanceUID", "") or "")
        answers = []
        for study in studies:
            if wanted_study and wanted_study != study.study_instance_uid:
                continue
            if level == "STUDY":
                ds = Dataset()
                ds.QueryRetrieveLevel = "STUDY"
                ds.StudyInstanceUID = study.study_instance_uid
                ds.PatientID = study.patient.patient_id
                ds.AccessionNumber = study.accession_number
                answers.append(ds)
                continue
            for series in study.series:
                if wanted_series and wanted_series != series.series_instance_uid:
                    continue
                if level == "SERIES":
                    ds = Dataset()
                    ds.QueryRetrieveLevel = "SERIES"
                    ds.StudyInstanceUID = study.study_instance_uid
                    ds.SeriesInstanceUID = series.series_instance_uid
                    ds.Modality = series.modality
                    ds.NumberOfSeriesRelatedInstances = len(series.instances)
                    answers.append(ds)
                    continue
                for instance in series.instances:
                    ds = Dataset()
                    ds.QueryRetrieveLevel = "IMAGE"
                    ds.StudyInstanceUID = study.study_instance_uid
                    ds.SeriesInstanceUID = series.series_instance_uid
                    ds.SOPInstanceUID = instance.sop_instance_uid
                    ds.SOPClassUID = instance.sop_class_uid
                    answers.append(ds)
        return answers

    return answer


def datasets_of(study: StudyInfo) -> list[Dataset]:
    """The study's instances read back (what a :class:`FakeQRSCP` retrieves)."""
    return [dcmread(instance.path) for instance in study.instances]


def fake_pacs(
    factory: Any, study: StudyInfo, ae_title: str = "FAKEPACS", **kwargs: Any
) -> FakeQRSCP:
    """Start a :class:`FakeQRSCP` holding one study (answers every level, retrieves it)."""
    return factory.qr(
        ae_title, find_responses=qr_answers([study]), datasets=datasets_of(study), **kwargs
    )
