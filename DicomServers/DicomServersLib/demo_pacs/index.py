"""The demo PACS' index of its storage folder: file headers, searched at every level.

Every file under the storage folder is read once, without its pixel data, and kept in memory
(a few kilobytes per instance: plenty for a demo PACS or a test peer). C-STORE adds files as
they arrive. Searches follow the Query/Retrieve Information Models of PS3.4 C.6:

- Patient Root (C.6.1): levels PATIENT, STUDY, SERIES, IMAGE;
- Study Root (C.6.2): levels STUDY, SERIES, IMAGE (patient attributes are study attributes).

Keys are matched per PS3.4 C.2.2.2 (:mod:`.matching`) against the instance headers, so a key of
a lower level (``Modality`` in a STUDY query) selects the studies that hold such a series; its
value is returned empty, as the level asked for has no such attribute. Queries are relational
(C.4.1.2.2.2): the unique keys of the levels above need not be given. The answers carry the
attributes computed by the PACS (``ModalitiesInStudy``, ``NumberOfStudyRelatedInstances``...,
C.3.4) and the Specific Character Set of the instance they come from.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from DicomServersLib.dicom_compat import read_header
from DicomServersLib.dicom_files import TEMP_PREFIX, check_uid

from .matching import QueryKeyError, match_key

__all__ = [
    "LEVELS",
    "PATIENT_ROOT",
    "STUDY_ROOT",
    "UNIQUE_KEYS",
    "InstanceEntry",
    "PacsIndex",
    "QueryKey",
    "attribute_level",
    "copy_sequence",
    "empty_element",
    "match_dataset",
    "query_keys",
    "query_level",
]

LOGGER = logging.getLogger(__name__)

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
"""Query/Retrieve levels, top to bottom (PS3.4 C.6)."""

PATIENT_ROOT = "patient"
"""Patient Root Query/Retrieve Information Model (PS3.4 C.6.1)."""

STUDY_ROOT = "study"
"""Study Root Query/Retrieve Information Model (PS3.4 C.6.2)."""

UNIQUE_KEYS = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
"""The unique (or, for PATIENT, primary) key of each level (PS3.4 C.6.1.1, C.6.2.1)."""

_PATIENT_ATTRIBUTES = frozenset(
    {
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientSex",
        "EthnicGroup",
        "PatientComments",
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
    }
)
_STUDY_ATTRIBUTES = frozenset(
    {
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "IssuerOfAccessionNumberSequence",
        "StudyID",
        "StudyInstanceUID",
        "ReferringPhysicianName",
        "StudyDescription",
        "ProcedureCodeSequence",
        "NameOfPhysiciansReadingStudy",
        "AdmittingDiagnosesDescription",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "Occupation",
        "AdditionalPatientHistory",
        "OtherStudyNumbers",
        "ModalitiesInStudy",
        "SOPClassesInStudy",
        "AnatomicRegionsInStudyCodeSequence",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    }
)
_SERIES_ATTRIBUTES = frozenset(
    {
        "Modality",
        "SeriesNumber",
        "SeriesInstanceUID",
        "SeriesDescription",
        "SeriesDate",
        "SeriesTime",
        "BodyPartExamined",
        "Laterality",
        "ProtocolName",
        "PerformingPhysicianName",
        "OperatorsName",
        "InstitutionName",
        "StationName",
        "Manufacturer",
        "ManufacturerModelName",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence",
        "NumberOfSeriesRelatedInstances",
    }
)

# Keys of the identifier that are not matched (they steer the query or describe its encoding).
_CONTROL_TAGS = frozenset({Tag(0x0008, 0x0005), Tag(0x0008, 0x0052), Tag(0x0008, 0x0054)})


def attribute_level(keyword: str) -> int:
    """Return the index in :data:`LEVELS` of the level an attribute belongs to.

    Attributes not known to belong to the patient, study or series level are instance
    (IMAGE) attributes.
    """
    if keyword in _PATIENT_ATTRIBUTES:
        return 0
    if keyword in _STUDY_ATTRIBUTES:
        return 1
    if keyword in _SERIES_ATTRIBUTES:
        return 2
    return 3


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return str(value).strip(" \0") if value is not None else ""


@dataclass(frozen=True)
class InstanceEntry:
    """One stored instance: where its file is and its header (no pixel data).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    header : pydicom.dataset.Dataset
        Its data set up to (not including) the pixel data, every element already decoded.
    size : int
        File size in bytes.
    """

    path: Path
    header: Dataset = field(repr=False)
    size: int = 0

    @property
    def patient_id(self) -> str:
        """PatientID (0010,0020)."""
        return _text(self.header, "PatientID")

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID (0020,000D)."""
        return _text(self.header, "StudyInstanceUID")

    @property
    def series_uid(self) -> str:
        """SeriesInstanceUID (0020,000E)."""
        return _text(self.header, "SeriesInstanceUID")

    @property
    def sop_uid(self) -> str:
        """SOPInstanceUID (0008,0018)."""
        return _text(self.header, "SOPInstanceUID")

    @property
    def sop_class_uid(self) -> str:
        """SOPClassUID (0008,0016)."""
        return _text(self.header, "SOPClassUID")

    @property
    def transfer_syntax_uid(self) -> str:
        """Transfer Syntax UID of the file (0002,0010), Implicit VR Little Endian if absent."""
        meta = getattr(self.header, "file_meta", None)
        value = meta.get("TransferSyntaxUID", "") if meta is not None else ""
        return str(value) or "1.2.840.10008.1.2"

    def group_key(self, level: str) -> str:
        """Return the key of the entity this instance belongs to at ``level``."""
        if level == "PATIENT":
            return self.patient_id
        if level == "STUDY":
            return self.study_uid
        if level == "SERIES":
            return self.series_uid
        return self.sop_uid

    def sort_key(self) -> tuple[str, str, str, int, str, int, str]:
        """Order of answers: patient, study date, study, series number, series, instance."""
        return (
            self.patient_id,
            _text(self.header, "StudyDate"),
            self.study_uid,
            _number(self.header, "SeriesNumber"),
            self.series_uid,
            _number(self.header, "InstanceNumber"),
            self.sop_uid,
        )


def _number(ds: Dataset, keyword: str) -> int:
    try:
        return int(str(ds.get(keyword, "")).strip() or 0)
    except ValueError:
        return 0


@dataclass
class _Summary:
    """What the PACS computes over its holdings (PS3.4 C.3.4 and C.6.1.1.x)."""

    patient_studies: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    patient_series: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    patient_instances: Counter[str] = field(default_factory=Counter)
    study_series: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    study_instances: Counter[str] = field(default_factory=Counter)
    study_modalities: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    study_sop_classes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    series_instances: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, entries: list[InstanceEntry]) -> _Summary:
        summary = cls()
        for e in entries:
            summary.patient_studies[e.patient_id].add(e.study_uid)
            summary.patient_series[e.patient_id].add(e.series_uid)
            summary.patient_instances[e.patient_id] += 1
            summary.study_series[e.study_uid].add(e.series_uid)
            summary.study_instances[e.study_uid] += 1
            modality = _text(e.header, "Modality")
            if modality:
                summary.study_modalities[e.study_uid].add(modality)
            summary.study_sop_classes[e.study_uid].add(e.sop_class_uid)
            summary.series_instances[e.series_uid] += 1
        return summary

    def computed(self, keyword: str, entry: InstanceEntry) -> tuple[str, Any] | None:
        """Return ``(VR, value)`` of an attribute the PACS computes, or None."""
        if keyword == "NumberOfPatientRelatedStudies":
            return "IS", len(self.patient_studies[entry.patient_id])
        if keyword == "NumberOfPatientRelatedSeries":
            return "IS", len(self.patient_series[entry.patient_id])
        if keyword == "NumberOfPatientRelatedInstances":
            return "IS", self.patient_instances[entry.patient_id]
        if keyword == "NumberOfStudyRelatedSeries":
            return "IS", len(self.study_series[entry.study_uid])
        if keyword == "NumberOfStudyRelatedInstances":
            return "IS", self.study_instances[entry.study_uid]
        if keyword == "NumberOfSeriesRelatedInstances":
            return "IS", self.series_instances[entry.series_uid]
        if keyword == "ModalitiesInStudy":
            return "CS", sorted(self.study_modalities[entry.study_uid])
        if keyword == "SOPClassesInStudy":
            return "UI", sorted(self.study_sop_classes[entry.study_uid])
        if keyword == "InstanceAvailability":
            return "CS", "ONLINE"
        return None


def query_level(identifier: Dataset, model: str) -> str:
    """Return the Query/Retrieve Level of an identifier, checked against the model.

    Raises
    ------
    QueryKeyError
        The level is missing, unknown, or PATIENT in the Study Root model.
    """
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    allowed = LEVELS if model == PATIENT_ROOT else LEVELS[1:]
    if level not in allowed:
        root = "Patient Root" if model == PATIENT_ROOT else "Study Root"
        raise QueryKeyError(
            "QueryRetrieveLevel",
            f"{level or 'empty'} is not a level of the {root} model (use {', '.join(allowed)})",
        )
    return level


@dataclass(frozen=True)
class QueryKey:
    """One key of a query identifier: its tag, keyword, VR and requested value."""

    tag: BaseTag
    keyword: str
    vr: str
    value: Any


def query_keys(identifier: Dataset) -> list[QueryKey]:
    """Return the keys of an identifier that are matched and answered.

    QueryRetrieveLevel, SpecificCharacterSet, RetrieveAETitle, group lengths and private
    elements are left out.
    """
    keys = []
    for elem in identifier:
        if elem.tag in _CONTROL_TAGS or elem.tag.is_private or elem.tag.element == 0:
            continue
        keys.append(QueryKey(elem.tag, elem.keyword or str(elem.tag), elem.VR, elem.value))
    return keys


def _matches_sequence(key: QueryKey, value: Any) -> bool:
    """Sequence matching (PS3.4 C.2.2.2.6): one item of the entity matches the key's item."""
    items = list(key.value or [])
    if not items or not any(True for _ in items[0]):
        return True
    return any(match_dataset(items[0], item) for item in (value or []))


def match_dataset(query: Dataset, entity: Dataset) -> bool:
    """Tell whether every key of ``query`` matches ``entity`` (sequences item by item).

    Parameters
    ----------
    query : pydicom.dataset.Dataset
        The keys; empty values are universal.
    entity : pydicom.dataset.Dataset
        The data set matched against.

    Raises
    ------
    QueryKeyError
        A key is invalid for its VR.
    """
    for key in query_keys(query):
        value = entity[key.tag].value if key.tag in entity else None
        if key.vr == "SQ":
            if not _matches_sequence(key, value):
                return False
        elif not match_key(key.keyword, key.vr, key.value, value):
            return False
    return True


def empty_element(tag: BaseTag, vr: str) -> DataElement:
    """Return an element without value (an empty sequence for SQ)."""
    return DataElement(tag, vr, [] if vr == "SQ" else None)


def copy_sequence(key: QueryKey, value: Any) -> Sequence:
    """Return the items of an entity's sequence with the keys the query asked for."""
    items = list(key.value or [])
    wanted = items[0] if items else None
    result = []
    for item in value or []:
        if wanted is None or not any(True for _ in wanted):
            result.append(copy.deepcopy(item))
            continue
        answer = Dataset()
        for sub in wanted:
            answer.add(
                copy.deepcopy(item[sub.tag]) if sub.tag in item else empty_element(sub.tag, sub.VR)
            )
        result.append(answer)
    return Sequence(result)


class PacsIndex:
    """The headers of every instance under a storage folder, searchable per PS3.4 C.6.

    Parameters
    ----------
    storage : str or pathlib.Path
        The folder; it is searched recursively. Files that are not DICOM, lack one of the UIDs
        or the PatientID level key are skipped (and logged).
    """

    def __init__(self, storage: str | os.PathLike[str]) -> None:
        self.storage = Path(storage)
        self._lock = threading.Lock()
        self._entries: dict[str, InstanceEntry] = {}
        self._summary: _Summary | None = None

    # -- contents ----------------------------------------------------------------------------

    def scan(self) -> int:
        """Read every file under the storage folder (again); return how many are indexed."""
        found: dict[str, InstanceEntry] = {}
        if self.storage.is_dir():
            for root, dirs, files in os.walk(self.storage):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith((".", TEMP_PREFIX)):
                        continue
                    entry = self._read(Path(root, name))
                    if entry is not None:
                        found[entry.sop_uid] = entry
        with self._lock:
            self._entries = found
            self._summary = None
        return len(found)

    def add_file(self, path: str | os.PathLike[str]) -> InstanceEntry | None:
        """Index one file (replacing an entry with the same SOP Instance UID).

        Returns
        -------
        InstanceEntry or None
            The entry, or None when the file cannot be indexed.
        """
        entry = self._read(Path(path))
        if entry is not None:
            with self._lock:
                self._entries[entry.sop_uid] = entry
                self._summary = None
        return entry

    @staticmethod
    def _read(path: Path) -> InstanceEntry | None:
        try:
            header = read_header(path)
            size = path.stat().st_size
        except (InvalidDicomError, OSError, ValueError, EOFError) as error:
            LOGGER.debug("not indexed, not a readable DICOM file: %s (%s)", path, error)
            return None
        for _ in header:  # decode every element now, once, instead of lazily in many threads
            pass
        entry = InstanceEntry(path=path, header=header, size=size)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            ok, reason = check_uid(_text(header, keyword))
            if not ok:
                LOGGER.warning("not indexed: %s: %s %s", path, keyword, reason)
                return None
        return entry

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def entries(self) -> list[InstanceEntry]:
        """Return every entry, in answer order."""
        return self._snapshot()[0]

    def _snapshot(self) -> tuple[list[InstanceEntry], _Summary]:
        with self._lock:
            entries = sorted(self._entries.values(), key=InstanceEntry.sort_key)
            if self._summary is None:
                self._summary = _Summary.of(entries)
            return entries, self._summary

    # -- searching ---------------------------------------------------------------------------

    def _matching_groups(
        self,
        level: str,
        keys: list[QueryKey],
        cancelled: Callable[[], bool] | None = None,
    ) -> tuple[list[InstanceEntry], dict[str, InstanceEntry], _Summary]:
        """Return all entries, the first matching entry of each matching group, the summary."""
        entries, summary = self._snapshot()
        matched: dict[str, InstanceEntry] = {}
        for entry in entries:
            if cancelled is not None and cancelled():
                break
            group = entry.group_key(level)
            if group in matched or not group:
                continue
            if all(self._entry_matches(entry, key, summary) for key in keys):
                matched[group] = entry
        return entries, matched, summary

    @staticmethod
    def _entry_matches(entry: InstanceEntry, key: QueryKey, summary: _Summary) -> bool:
        computed = summary.computed(key.keyword, entry)
        if computed is not None:
            return match_key(key.keyword, computed[0], key.value, computed[1])
        value = entry.header[key.tag].value if key.tag in entry.header else None
        if key.vr == "SQ":
            return _matches_sequence(key, value)
        return match_key(key.keyword, key.vr, key.value, value)

    def find(
        self,
        identifier: Dataset,
        model: str = STUDY_ROOT,
        *,
        retrieve_ae_title: str = "",
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[Dataset]:
        """Answer a C-FIND request (PS3.4 C.4.1): one identifier per matching entity.

        Parameters
        ----------
        identifier : pydicom.dataset.Dataset
            The request identifier: QueryRetrieveLevel and the keys.
        model : str, optional
            :data:`STUDY_ROOT` or :data:`PATIENT_ROOT`.
        retrieve_ae_title : str, optional
            Returned as RetrieveAETitle (0008,0054) when not empty.
        cancelled : callable, optional
            Polled between entities; True stops the search.

        Yields
        ------
        pydicom.dataset.Dataset
            The answers, each with the requested keys (values of levels below the query level
            empty), QueryRetrieveLevel and the SpecificCharacterSet of its instance.

        Raises
        ------
        QueryKeyError
            The level or a key is invalid (raised before the first answer).
        """
        level = query_level(identifier, model)
        keys = query_keys(identifier)
        _, matched, summary = self._matching_groups(level, keys, cancelled)
        rank = LEVELS.index(level)
        for entry in matched.values():
            if cancelled is not None and cancelled():
                return
            yield self._answer(entry, level, rank, keys, summary, retrieve_ae_title)

    @staticmethod
    def _answer(
        entry: InstanceEntry,
        level: str,
        rank: int,
        keys: list[QueryKey],
        summary: _Summary,
        retrieve_ae_title: str,
    ) -> Dataset:
        answer = Dataset()
        charset = entry.header.get("SpecificCharacterSet")
        if charset:
            answer.SpecificCharacterSet = charset
        answer.QueryRetrieveLevel = level
        if retrieve_ae_title:
            answer.RetrieveAETitle = retrieve_ae_title
        for key in keys:
            if attribute_level(key.keyword) > rank:
                answer.add(empty_element(key.tag, key.vr))
                continue
            computed = summary.computed(key.keyword, entry)
            if computed is not None:
                answer.add(DataElement(key.tag, computed[0], computed[1]))
            elif key.tag in entry.header:
                found = entry.header[key.tag]
                if found.VR == "SQ":
                    answer.add(DataElement(key.tag, "SQ", copy_sequence(key, found.value)))
                else:
                    answer.add(DataElement(key.tag, found.VR, copy.deepcopy(found.value)))
            else:
                answer.add(empty_element(key.tag, key.vr))
        return answer

    def select(self, identifier: Dataset, model: str = STUDY_ROOT) -> list[InstanceEntry]:
        """Return the instances a C-GET or C-MOVE identifier asks for (PS3.4 C.4.2, C.4.3).

        The identifier must hold the unique key of its level (a UID, or a list of UIDs;
        PatientID at PATIENT level); every instance of the matching entities is returned.

        Raises
        ------
        QueryKeyError
            The level is invalid or its unique key is missing.
        """
        level = query_level(identifier, model)
        unique = UNIQUE_KEYS[level]
        if not str(identifier.get(unique, "") or "").strip(" \0"):
            raise QueryKeyError(
                unique, f"a retrieve at {level} level needs the {unique} of what to retrieve"
            )
        entries, matched, _ = self._matching_groups(level, query_keys(identifier))
        return [e for e in entries if e.group_key(level) in matched]
