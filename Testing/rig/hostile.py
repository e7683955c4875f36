"""Hostile and broken input a peer may send: invalid UIDs, control characters, bad values.

Used with :class:`rig.scp.FakeQRSCP` to check that clients never turn peer-supplied values into
file paths or display them unescaped. The values break PS3.5 on purpose, so pydicom warns when
it encodes them.
"""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset
from pydicom.uid import UID

__all__ = ["HOSTILE_UIDS", "hostile_identifier", "hostile_instance", "is_sendable_uid"]

HOSTILE_UIDS: tuple[str, ...] = (
    "../../etc/passwd",
    "..\\..\\Windows\\System32",
    "/etc/shadow",
    "1.2.3/../../../tmp/x",
    "1.2.840." + "9" * 80,
    "1.2.3\x00.4",
    "CON",
)
"""UIDs a hostile or broken peer may send: path traversal, absolute paths, over-long (> 64),
an embedded NUL, a Windows device name. None of them is a valid UID (PS3.5 §9.1). All can be
sent in C-FIND answers; only those passing :func:`is_sendable_uid` as C-GET/C-MOVE instances."""


def hostile_identifier(uid: str, level: str = "STUDY") -> Dataset:
    """Return a C-FIND answer whose UIDs are ``uid`` (see :data:`HOSTILE_UIDS`).

    Parameters
    ----------
    uid : str
        The hostile value, used for the Study, Series and SOP Instance UIDs.
    level : str, optional
        QueryRetrieveLevel of the answer.

    Returns
    -------
    pydicom.dataset.Dataset
        The identifier; also carries a patient name with control characters.
    """
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.PatientName = "Evil^Eve\r\n\x1b[31m"
    ds.PatientID = "../../PID"
    ds.StudyInstanceUID = uid
    if level in ("SERIES", "IMAGE"):
        ds.SeriesInstanceUID = uid
    if level == "IMAGE":
        ds.SOPInstanceUID = uid
    ds.StudyDate = "20240230"  # not a date
    ds.StudyDescription = "x" * 200  # longer than LO allows
    return ds


def is_sendable_uid(uid: str) -> bool:
    """Tell whether pynetdicom can carry ``uid`` in a C-STORE request (see :data:`HOSTILE_UIDS`).

    Parameters
    ----------
    uid : str
        A UID, possibly hostile.

    Returns
    -------
    bool
        False for values with a backslash (multi-valued) or longer than 64 characters.
    """
    return "\\" not in uid and len(uid) <= 64


def hostile_instance(template: Dataset, uid: str) -> Dataset:
    """Return a copy of an instance whose Study/Series/SOP Instance UIDs are ``uid``.

    Parameters
    ----------
    template : pydicom.dataset.Dataset
        A valid instance (e.g. read from the sample studies).
    uid : str
        The hostile value.

    Returns
    -------
    pydicom.dataset.Dataset
        The copy, file meta updated to match.

    Raises
    ------
    ValueError
        If ``uid`` holds a backslash or is longer than 64 characters: pynetdicom cannot put
        such a value in a C-STORE request (it fails the sub-operation and then the final
        C-GET/C-MOVE response), so it can only be sent in C-FIND answers.
    """
    if not is_sendable_uid(uid):
        raise ValueError(f"pynetdicom cannot send {uid!r} as an AffectedSOPInstanceUID")
    ds = copy.deepcopy(template)
    ds.StudyInstanceUID = uid
    ds.SeriesInstanceUID = uid
    ds.SOPInstanceUID = uid
    if hasattr(ds, "file_meta"):
        ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
    return ds
