"""A small DICOMweb client: QIDO-RS search, WADO-RS retrieve (streamed), STOW-RS store.

PS3.18 (Web Services): QIDO-RS §10.6 (query parameters ``limit``, ``offset``, ``includefield``,
``fuzzymatching``; attribute matching of PS3.4 C.2.2.2 including date ranges), WADO-RS §10.4
(``multipart/related; type="application/dicom"``, one part per instance; ``transfer-syntax=*``
asks for the instances as stored, without transcoding), STOW-RS §10.5 (the answer lists the
stored and the failed instances in ReferencedSOPSequence / FailedSOPSequence). Results come in
the DICOM JSON model (PS3.18 Annex F.2).

QIDO-RS defines no order and no total count, so "the most recent N studies" is built from
study-date windows (see :mod:`DicomServersLib.rest.sync`), and a list is known to be cut off
when one more answer than asked for comes back, or when the server says so in a ``Warning``
header (PS3.18 §8.3.5.3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from DicomServersLib.query_model import SeriesRecord, StudyRecord

from .diagnosis import RestError, check_response, checked_request, send_request, unexpected_answer
from .multipart import MultipartBody

#: Tags (PS3.6) read from QIDO-RS answers.
TAG_SPECIFIC_CHARACTER_SET = "00080005"
TAG_STUDY_DATE = "00080020"
TAG_STUDY_TIME = "00080030"
TAG_ACCESSION_NUMBER = "00080050"
TAG_MODALITY = "00080060"
TAG_MODALITIES_IN_STUDY = "00080061"
TAG_REFERRING_PHYSICIAN = "00080090"
TAG_STUDY_DESCRIPTION = "00081030"
TAG_SERIES_DESCRIPTION = "0008103E"
TAG_SOP_INSTANCE_UID = "00080018"
TAG_PATIENT_NAME = "00100010"
TAG_PATIENT_ID = "00100020"
TAG_PATIENT_BIRTH_DATE = "00100030"
TAG_STUDY_UID = "0020000D"
TAG_SERIES_UID = "0020000E"
TAG_STUDY_ID = "00200010"
TAG_SERIES_NUMBER = "00200011"
TAG_SERIES_COUNT = "00201206"
TAG_STUDY_INSTANCE_COUNT = "00201208"
TAG_SERIES_INSTANCE_COUNT = "00201209"
TAG_FAILED_SOP_SEQUENCE = "00081198"
TAG_REFERENCED_SOP_SEQUENCE = "00081199"
TAG_REFERENCED_SOP_INSTANCE_UID = "00081155"
TAG_FAILURE_REASON = "00081197"
TAG_WARNING_REASON = "00081196"

#: Study attributes asked for in addition to the QIDO-RS defaults (PS3.18 Table 10.6.3-3).
STUDY_INCLUDE_FIELDS = (TAG_STUDY_DESCRIPTION,)

#: The smallest page size a server is assumed to cut QIDO-RS answers to.
MIN_SERVER_PAGE = 100

WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
WADO_ACCEPT_PLAIN = 'multipart/related; type="application/dicom"'
DICOM_JSON = "application/dicom+json, application/json"


@dataclass
class QidoPage:
    """One QIDO-RS answer: the matches, and whether the server warned of more."""

    items: list[dict[str, Any]]
    more_on_server: bool = False


@dataclass(frozen=True)
class InstanceRef:
    """An instance of a study as listed by QIDO-RS."""

    sop_instance_uid: str
    series_instance_uid: str


@dataclass
class StowOutcome:
    """What a STOW-RS request stored: the instances accepted, and the failures with reasons."""

    stored: set[str] = field(default_factory=set)
    warnings: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    status: int = 0


def _values(item: Mapping[str, Any], tag: str) -> list[Any]:
    element = item.get(tag) or item.get(tag.lower())
    if not isinstance(element, Mapping):
        return []
    values = element.get("Value")
    return list(values) if isinstance(values, list) else []


def _person_name(value: Any) -> str:
    if isinstance(value, Mapping):
        groups = [str(value.get(k, "")) for k in ("Alphabetic", "Ideographic", "Phonetic")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    return str(value)


def text(item: Mapping[str, Any], tag: str) -> str:
    """Return the first value of a tag in a DICOM JSON object as text (``""`` if absent)."""
    values = _values(item, tag)
    if not values or values[0] is None:
        return ""
    return _person_name(values[0])


def number(item: Mapping[str, Any], tag: str) -> int | None:
    """Return the first value of an integer tag (IS, US...), or None."""
    value = text(item, tag)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def study_record(item: Mapping[str, Any]) -> StudyRecord:
    """Build a :class:`StudyRecord` from a QIDO-RS study result."""
    extra: dict[str, Any] = {}
    named = ((TAG_REFERRING_PHYSICIAN, "referring_physician_name"), (TAG_STUDY_ID, "study_id"))
    for tag, name in named:
        value = text(item, tag)
        if value:
            extra[name] = value
    return StudyRecord(
        study_uid=text(item, TAG_STUDY_UID),
        patient_name=text(item, TAG_PATIENT_NAME),
        patient_id=text(item, TAG_PATIENT_ID),
        patient_birth_date=text(item, TAG_PATIENT_BIRTH_DATE),
        study_date=text(item, TAG_STUDY_DATE),
        study_time=text(item, TAG_STUDY_TIME),
        accession_number=text(item, TAG_ACCESSION_NUMBER),
        study_description=text(item, TAG_STUDY_DESCRIPTION),
        modalities=[str(v) for v in _values(item, TAG_MODALITIES_IN_STUDY) if v],
        series_count=number(item, TAG_SERIES_COUNT),
        instance_count=number(item, TAG_STUDY_INSTANCE_COUNT),
        extra=extra,
    )


def series_record(item: Mapping[str, Any], study_uid: str) -> SeriesRecord:
    """Build a :class:`SeriesRecord` from a QIDO-RS series result."""
    return SeriesRecord(
        study_uid=text(item, TAG_STUDY_UID) or study_uid,
        series_uid=text(item, TAG_SERIES_UID),
        modality=text(item, TAG_MODALITY),
        series_number=text(item, TAG_SERIES_NUMBER),
        series_description=text(item, TAG_SERIES_DESCRIPTION),
        instance_count=number(item, TAG_SERIES_INSTANCE_COUNT),
    )


class DicomwebClient:
    """DICOMweb calls used by DicomServers; failures raise :class:`RestError`.

    Parameters
    ----------
    session : requests.Session
        The server's session, from :func:`DicomServersLib.rest.session.build_session`.
    base_url : str
        The service root, e.g. ``http://127.0.0.1:8042/dicom-web``.
    """

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        """Return the absolute URL of a resource below the service root."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- QIDO-RS ---------------------------------------------------------------------------

    def qido(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        limit: int = 0,
        offset: int = 0,
        includefields: Sequence[str] = (),
    ) -> QidoPage:
        """Run one QIDO-RS search and return its matches.

        Parameters
        ----------
        path : str
            ``studies``, ``studies/{uid}/series``, ``studies/{uid}/instances``...
        params : mapping, optional
            Matching attributes by keyword or tag (``PatientName``, ``StudyDate``...).
        limit, offset : int, optional
            Paging (0: the server's default).
        includefields : sequence of str, optional
            Attributes to return besides the defaults.
        """
        query: list[tuple[str, str]] = [(k, v) for k, v in (params or {}).items() if v != ""]
        if limit:
            query.append(("limit", str(limit)))
        if offset:
            query.append(("offset", str(offset)))
        query += [("includefield", f) for f in includefields]
        url = self.url(path)
        if query:
            # Wildcards and list separators stay as they are: some servers (Orthanc's plugin
            # 1.7) do not decode %2A back to "*" before matching.
            url += "?" + urlencode(query, safe="*?,")
        response = checked_request(self.session, "GET", url, headers={"Accept": DICOM_JSON})
        if response.status_code == 204 or not response.content:
            return QidoPage([])
        try:
            items = response.json()
        except ValueError as exc:
            raise unexpected_answer(url, "DICOM JSON (QIDO-RS)") from exc
        if not isinstance(items, list):
            raise unexpected_answer(url, "a DICOM JSON list (QIDO-RS)")
        warning = response.headers.get("Warning", "")
        more = "299" in warning and "additional results" in warning.lower()
        return QidoPage(items, more)

    def search_studies(
        self,
        params: Mapping[str, str] | None = None,
        *,
        limit: int = 0,
        offset: int = 0,
    ) -> QidoPage:
        """QIDO-RS ``/studies`` with the study attributes DicomServers shows."""
        return self.qido(
            "studies", params, limit=limit, offset=offset, includefields=STUDY_INCLUDE_FIELDS
        )

    def search_series(self, study_uid: str, params: Mapping[str, str] | None = None) -> QidoPage:
        """QIDO-RS ``/studies/{uid}/series``."""
        return self.qido(f"studies/{study_uid}/series", params)

    def instances_of(self, study_uid: str, series_uid: str | None = None) -> list[InstanceRef]:
        """List the instances of a study (or of one series) with their series UIDs."""
        path = (
            f"studies/{study_uid}/series/{series_uid}/instances"
            if series_uid
            else f"studies/{study_uid}/instances"
        )
        page = self.qido(path, includefields=(TAG_SERIES_UID,))
        refs = []
        for item in page.items:
            sop = text(item, TAG_SOP_INSTANCE_UID)
            series = text(item, TAG_SERIES_UID) or (series_uid or "")
            if sop:
                refs.append(InstanceRef(sop, series))
        return refs

    # -- WADO-RS ---------------------------------------------------------------------------

    def open_retrieve(
        self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> requests.Response:
        """Start a WADO-RS retrieve and return the streamed answer (close it when done).

        The instances are asked for as stored (``transfer-syntax=*``); a server that refuses
        that (406, or 400) is asked again without a transfer syntax.
        """
        path = f"studies/{study_uid}"
        if series_uid:
            path += f"/series/{series_uid}"
            if sop_uid:
                path += f"/instances/{sop_uid}"
        url = self.url(path)
        for accept in (WADO_ACCEPT, WADO_ACCEPT_PLAIN):
            response = send_request(
                self.session, "GET", url, headers={"Accept": accept}, stream=True
            )
            if response.status_code in (400, 406) and accept == WADO_ACCEPT:
                response.close()
                continue
            return check_response(response)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- STOW-RS ---------------------------------------------------------------------------

    def store(self, paths: Sequence[Path], study_uid: str | None = None) -> StowOutcome:
        """Store DICOM files with one STOW-RS request (the body is streamed from the files).

        Returns
        -------
        StowOutcome
            Per SOP Instance UID: stored, stored with a warning, or failed with the reason.

        Raises
        ------
        RestError
            The request failed as a whole (connection, login, URL, server error).
        """
        body = MultipartBody(list(paths))
        path = f"studies/{study_uid}" if study_uid else "studies"
        url = self.url(path)
        headers = {"Content-Type": body.content_type, "Accept": DICOM_JSON, "Expect": ""}
        try:
            response = send_request(self.session, "POST", url, data=body, headers=headers)
        finally:
            body.close()
        outcome = StowOutcome(status=response.status_code)
        if response.status_code not in (200, 202, 409):
            check_response(response)
        try:
            answer = response.json() if response.content else {}
        except ValueError as exc:
            if response.status_code == 409:
                raise unexpected_answer(url, "a STOW-RS answer") from exc
            answer = {}
        if isinstance(answer, list):
            answer = answer[0] if answer else {}
        for item in _values(answer, TAG_REFERENCED_SOP_SEQUENCE):
            uid = text(item, TAG_REFERENCED_SOP_INSTANCE_UID)
            outcome.stored.add(uid)
            if _values(item, TAG_WARNING_REASON):
                outcome.warnings[uid] = f"warning {text(item, TAG_WARNING_REASON)}"
        for item in _values(answer, TAG_FAILED_SOP_SEQUENCE):
            uid = text(item, TAG_REFERENCED_SOP_INSTANCE_UID)
            outcome.failed[uid] = _failure_text(text(item, TAG_FAILURE_REASON))
        return outcome


def _failure_text(code: str) -> str:
    """Explain a STOW-RS failure reason (PS3.18 Table 10.5.3-2, PS3.4 Annex B status codes)."""
    try:
        value = int(code)
    except ValueError:
        return f"refused by the server ({code or 'no reason given'})"
    meaning = {
        0xA700: "the server is out of resources",
        0xA900: "the data set does not match its SOP class",
        0xC000: "the server cannot understand it",
        0x0110: "processing failure",
        0x0122: "the SOP class is not supported",
        0x0124: "not authorized",
        0xA770: "the transfer syntax is not supported",
        0xC122: "the referenced transfer syntax is not supported",
    }.get(value, "refused by the server")
    return f"{meaning} (status 0x{value:04X})"


def iter_pages(
    client: DicomwebClient,
    params: Mapping[str, str],
    page_size: int,
    limit: int = 0,
) -> Iterator[QidoPage]:
    """Yield QIDO-RS study pages until the server runs out of matches (or ``limit`` is reached).

    A server may silently answer fewer than ``page_size`` matches per request (its own
    maximum, :data:`MIN_SERVER_PAGE` or more). So a short first page of at least that many is
    followed by one more request: if that one is empty the list is complete, otherwise the
    short length is the server's page size from then on.
    """
    offset = 0
    size = page_size
    probed = False
    while True:
        want = size if not limit else min(size, limit - offset)
        if want <= 0:
            return
        page = client.search_studies(params, limit=want, offset=offset)
        yield page
        got = len(page.items)
        offset += got
        if got == 0:
            return
        if got < want and not page.more_on_server:
            if probed or got < MIN_SERVER_PAGE:
                return
            probed = True
            size = got


__all__ = [
    "DicomwebClient",
    "InstanceRef",
    "QidoPage",
    "RestError",
    "StowOutcome",
    "iter_pages",
    "series_record",
    "study_record",
]
