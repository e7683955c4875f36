"""A small client for Orthanc's own REST API (Orthanc 1.10 and later).

Routes used (Orthanc Book, "REST API of Orthanc"; ``OrthancServer/Sources/OrthancRestApi/``):

- ``GET /system``: version and name; the login check.
- ``GET /statistics``: ``CountStudies`` and friends.
- ``GET /changes?since=N&limit=M`` and ``?last``: the changes log (``NewStudy``,
  ``StableStudy``...), with ``Last`` the newest sequence number reported and ``Done`` whether
  the log is exhausted. Deleting a resource removes its entries from the log (the SQLite index
  cascades) and logs no ``Deleted`` entry, so deletions are found by counting, not by reading
  the log.
- ``POST /tools/find`` with ``Level``, ``Query``, ``Expand``, ``Limit``, ``Since`` and
  ``CaseSensitive``. Orthanc 1.10 has no ``OrderBy`` (added in 1.12.5): answers come in no
  defined order, so "the most recent N studies" is built from study-date windows (see
  :mod:`DicomServersLib.rest.sync`).
- ``GET /studies?expand&since&limit``: every study with its main tags, paged; much cheaper
  for Orthanc than ``/tools/find`` with an empty query. ``GET /studies``: identifiers only.
- ``POST /tools/bulk-content`` (1.9.4+): several resources, expanded, in one request.
- ``POST /tools/lookup``: a DICOM UID to Orthanc identifiers.
- ``GET /studies/{id}``, ``/studies/{id}/series``, ``/studies/{id}/instances``,
  ``/series/{id}``, ``/series/{id}/instances``, ``/studies/{id}/statistics``,
  ``GET /instances/{id}/file`` (the stored file, byte for byte) and ``POST /instances``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests

from DicomServersLib.query_model import SeriesRecord, StudyRecord

from .diagnosis import RestError, checked_request, unexpected_answer

#: Answers per ``/changes`` page (Orthanc 1.10 has no upper bound; 100 by default).
CHANGES_PAGE = 2000

#: Studies per page of ``GET /studies?expand`` (a complete listing).
STUDIES_PAGE = 10_000

#: Studies per ``/tools/bulk-content`` request.
BULK_PAGE = 1000

#: Orthanc change types that concern one study.
STUDY_CHANGES = frozenset({"NewStudy", "StableStudy", "ModifiedStudy", "UpdatedAttachment"})


@dataclass(frozen=True)
class Change:
    """One entry of Orthanc's changes log."""

    seq: int
    change_type: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True)
class ChangesPage:
    """One page of ``/changes``: the entries, the last sequence number and whether it is all."""

    changes: list[Change]
    last: int
    done: bool


@dataclass(frozen=True)
class InstanceRef:
    """Where one instance of a study is, on the server and on disk."""

    instance_id: str
    sop_instance_uid: str
    series_instance_uid: str
    size: int | None = None


class OrthancClient:
    """Orthanc REST calls used by DicomServers; failures raise :class:`RestError`.

    Parameters
    ----------
    session : requests.Session
        The server's session (authentication, timeouts, TLS), from
        :func:`DicomServersLib.rest.session.build_session`.
    base_url : str
        Root of the REST API, e.g. ``http://127.0.0.1:8042``, without trailing slash.
    """

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")

    # -- plumbing --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Return the absolute URL of a route."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.url(path)
        response = checked_request(self.session, method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise unexpected_answer(url, "the JSON Orthanc sends") from exc

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """``GET`` a route and return its JSON."""
        return self._json("GET", path, **kwargs)

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        """``POST`` JSON to a route and return the JSON answer."""
        return self._json("POST", path, json=body, **kwargs)

    # -- server state ----------------------------------------------------------------------

    def system(self) -> dict[str, Any]:
        """Return ``/system`` (``Version``, ``Name``, ``ApiVersion``...)."""
        answer = self.get_json("/system")
        if not isinstance(answer, dict) or "Version" not in answer:
            raise unexpected_answer(self.url("/system"), "Orthanc's /system answer")
        return answer

    def statistics(self) -> dict[str, Any]:
        """Return ``/statistics`` (``CountStudies``, ``CountInstances``...)."""
        answer = self.get_json("/statistics")
        if not isinstance(answer, dict) or "CountStudies" not in answer:
            raise unexpected_answer(self.url("/statistics"), "Orthanc's /statistics answer")
        return answer

    def count_studies(self) -> int:
        """Return how many studies the server holds."""
        return int(self.statistics()["CountStudies"])

    def last_change(self) -> int:
        """Return the sequence number of the newest entry of the changes log (0 if empty)."""
        return int(self.get_json("/changes", params={"last": ""}).get("Last", 0))

    def changes(self, since: int, limit: int = CHANGES_PAGE) -> ChangesPage:
        """Return the changes logged after sequence number ``since`` (at most ``limit``)."""
        answer = self.get_json("/changes", params={"since": since, "limit": limit})
        try:
            items = [
                Change(int(c["Seq"]), str(c["ChangeType"]), str(c["ResourceType"]), str(c["ID"]))
                for c in answer["Changes"]
            ]
            return ChangesPage(items, int(answer["Last"]), bool(answer["Done"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise unexpected_answer(self.url("/changes"), "Orthanc's changes log") from exc

    # -- finding ---------------------------------------------------------------------------

    def find(
        self,
        level: str,
        query: Mapping[str, str],
        *,
        expand: bool = True,
        limit: int = 0,
        since: int = 0,
        case_sensitive: bool = False,
    ) -> list[Any]:
        """``POST /tools/find``: resources at ``level`` matching ``query`` (DICOM matching).

        Parameters
        ----------
        level : str
            ``Patient``, ``Study``, ``Series`` or ``Instance``.
        query : mapping
            Tag keyword to DICOM matching value (wildcards ``*``/``?``, date ranges ``A-B``).
        expand : bool, optional
            True returns the resources with their main tags; False only their identifiers.
        limit, since : int, optional
            At most ``limit`` answers (0: no limit) after skipping ``since`` of them.
        case_sensitive : bool, optional
            Case-sensitive matching of person names and texts.

        Returns
        -------
        list
            Expanded resources (dicts) or identifiers (str).
        """
        body: dict[str, Any] = {
            "Level": level,
            "Query": dict(query),
            "Expand": expand,
            "CaseSensitive": case_sensitive,
        }
        if limit:
            body["Limit"] = limit
        if since:
            body["Since"] = since
        answer = self.post_json("/tools/find", body)
        if not isinstance(answer, list):
            raise unexpected_answer(self.url("/tools/find"), "a list of resources")
        return answer

    def all_studies(self, page: int = STUDIES_PAGE) -> Iterator[list[dict[str, Any]]]:
        """Yield every study, expanded, in pages of ``GET /studies?expand&since&limit``.

        Much cheaper for Orthanc than ``/tools/find`` with an empty query (no lookup: the
        resources are listed and expanded), about half the time for 5,000 studies.
        """
        since = 0
        while True:
            answer = self.get_json("/studies", params={"expand": "", "since": since, "limit": page})
            if not isinstance(answer, list):
                raise unexpected_answer(self.url("/studies"), "a list of studies")
            yield answer
            if len(answer) < page:
                return
            since += len(answer)

    def study_ids(self) -> list[str]:
        """Return the identifiers of every study (``GET /studies``)."""
        answer = self.get_json("/studies")
        if not isinstance(answer, list):
            raise unexpected_answer(self.url("/studies"), "a list of study identifiers")
        return [str(item) for item in answer]

    def studies_content(self, ids: list[str]) -> list[dict[str, Any]]:
        """Return several studies, expanded, in few requests; unknown identifiers are left out.

        Uses ``POST /tools/bulk-content`` (Orthanc 1.9.4+), else one ``GET /studies/{id}`` per
        study.
        """
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), BULK_PAGE):
            chunk = ids[start : start + BULK_PAGE]
            try:
                answer = self.post_json(
                    "/tools/bulk-content", {"Resources": chunk, "Level": "Study"}
                )
            except RestError as error:
                if error.status not in (404, 405):
                    raise
                return found + self._one_by_one(ids[start:])
            if not isinstance(answer, list):
                raise unexpected_answer(self.url("/tools/bulk-content"), "a list of resources")
            found += [item for item in answer if isinstance(item, dict)]
        return found

    def _one_by_one(self, ids: list[str]) -> list[dict[str, Any]]:
        found = []
        for study_id in ids:
            try:
                found.append(self.study(study_id))
            except RestError as error:
                if error.status != 404:
                    raise
        return found

    def lookup(self, uid: str, resource_type: str) -> str | None:
        """Return the Orthanc identifier of a DICOM UID at a level (``Study``...), or None."""
        answer = self._json("POST", "/tools/lookup", data=uid.encode("ascii"))
        for item in answer if isinstance(answer, list) else []:
            if item.get("Type") == resource_type:
                return str(item["ID"])
        return None

    def study(self, study_id: str) -> dict[str, Any]:
        """Return ``/studies/{id}``."""
        answer: dict[str, Any] = self.get_json(f"/studies/{study_id}")
        return answer

    def study_series(self, study_id: str) -> list[dict[str, Any]]:
        """Return ``/studies/{id}/series`` (expanded series)."""
        answer: list[dict[str, Any]] = self.get_json(f"/studies/{study_id}/series")
        return answer

    def series(self, series_id: str) -> dict[str, Any]:
        """Return ``/series/{id}``."""
        answer: dict[str, Any] = self.get_json(f"/series/{series_id}")
        return answer

    def study_size(self, study_id: str) -> int | None:
        """Return the bytes stored for a study (``/studies/{id}/statistics`` ``DiskSize``)."""
        try:
            return int(self.get_json(f"/studies/{study_id}/statistics")["DiskSize"])
        except (RestError, KeyError, TypeError, ValueError):
            return None

    def instances_of(self, study_id: str, series_id: str | None = None) -> list[InstanceRef]:
        """Return the instances of a study (or of one of its series), with their UIDs."""
        series_list = (
            [self.series(series_id)] if series_id is not None else self.study_series(study_id)
        )
        series_uid = {s["ID"]: s["MainDicomTags"]["SeriesInstanceUID"] for s in series_list}
        path = (
            f"/series/{series_id}/instances"
            if series_id is not None
            else f"/studies/{study_id}/instances"
        )
        refs = []
        for item in self.get_json(path):
            parent = item.get("ParentSeries", series_id)
            size = item.get("FileSize")
            refs.append(
                InstanceRef(
                    instance_id=str(item["ID"]),
                    sop_instance_uid=str(item["MainDicomTags"]["SOPInstanceUID"]),
                    series_instance_uid=str(series_uid[parent]),
                    size=int(size) if size is not None else None,
                )
            )
        return refs

    # -- files -----------------------------------------------------------------------------

    def open_instance_file(self, instance_id: str) -> requests.Response:
        """Return the streamed answer of ``/instances/{id}/file`` (close it when done)."""
        return checked_request(
            self.session, "GET", self.url(f"/instances/{instance_id}/file"), stream=True
        )

    def iter_instance_file(self, instance_id: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the bytes of a stored instance file."""
        with self.open_instance_file(instance_id) as response:
            yield from response.iter_content(chunk_size)

    def upload(self, data: bytes | BinaryIO) -> dict[str, Any]:
        """``POST /instances`` one DICOM file; return Orthanc's answer (``ID``, ``Status``)."""
        answer: dict[str, Any] = self._json(
            "POST",
            "/instances",
            data=data,
            headers={"Content-Type": "application/dicom", "Expect": ""},
        )
        return answer


# -- records ---------------------------------------------------------------------------------


def study_record(resource: Mapping[str, Any]) -> StudyRecord:
    """Build a :class:`StudyRecord` from an expanded Orthanc study resource.

    Orthanc 1.10 does not return the modalities or the instance count of a study in
    ``/tools/find``; they stay empty / None (the series query fills them in).
    """
    tags = resource.get("MainDicomTags", {})
    patient = resource.get("PatientMainDicomTags", {})
    series = resource.get("Series")
    extra = {"orthanc_id": str(resource.get("ID", ""))}
    for key, name in (
        ("ReferringPhysicianName", "referring_physician_name"),
        ("InstitutionName", "institution_name"),
        ("StudyID", "study_id"),
    ):
        if tags.get(key):
            extra[name] = str(tags[key])
    return StudyRecord(
        study_uid=str(tags.get("StudyInstanceUID", "")),
        patient_name=str(patient.get("PatientName", "")),
        patient_id=str(patient.get("PatientID", "")),
        patient_birth_date=str(patient.get("PatientBirthDate", "")),
        study_date=str(tags.get("StudyDate", "")),
        study_time=str(tags.get("StudyTime", "")),
        accession_number=str(tags.get("AccessionNumber", "")),
        study_description=str(tags.get("StudyDescription", "")),
        series_count=len(series) if isinstance(series, list) else None,
        extra=extra,
    )


def series_record(resource: Mapping[str, Any], study_uid: str) -> SeriesRecord:
    """Build a :class:`SeriesRecord` from an expanded Orthanc series resource."""
    tags = resource.get("MainDicomTags", {})
    instances = resource.get("Instances")
    extra: dict[str, Any] = {"orthanc_id": str(resource.get("ID", ""))}
    if tags.get("BodyPartExamined"):
        extra["body_part_examined"] = str(tags["BodyPartExamined"])
    return SeriesRecord(
        study_uid=study_uid,
        series_uid=str(tags.get("SeriesInstanceUID", "")),
        modality=str(tags.get("Modality", "")),
        series_number=str(tags.get("SeriesNumber", "")),
        series_description=str(tags.get("SeriesDescription", "")),
        instance_count=len(instances) if isinstance(instances, list) else None,
        extra=extra,
    )
