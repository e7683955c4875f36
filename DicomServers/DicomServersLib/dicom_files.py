"""Where retrieved instances go on disk, and how they get there safely.

Layout: ``<dest>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. The UIDs come
from the PACS, so each is checked against the UID syntax (PS3.5 §9.1: digits and dots, at most
64 characters, no empty or zero-led components) before it becomes part of a path: ``../``,
absolute paths and over-long values can never escape ``dest``.

Files are written atomically: to a hidden temporary name in the target folder, then renamed.
A crash of either side, a kill or a cancel never leaves a partial ``.dcm`` visible, and an
instance already present is skipped, so a rerun fetches only what is missing.

Files are not fsynced one by one: that made a 400-file retrieve about ten times slower on
disk (0.07 s vs 0.72 s for 200 MB here) and protects only against an OS crash or power loss.
After one of those, a file renamed in the last seconds may be empty or incomplete on some file
systems; a rerun does not trust such a file (:func:`looks_complete`) and fetches it again.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
TEMP_PREFIX = ".part-"


def check_uid(value: str) -> tuple[bool, str]:
    """Check a UID (PS3.5 §9.1): 1-64 characters, digits and dots, no empty or zero-led parts."""
    if not isinstance(value, str) or not value:
        return False, "a UID must not be empty"
    if len(value) > 64:
        return False, f"a UID has at most 64 characters, got {len(value)}"
    if not _UID.match(value):
        return False, f"{value[:80]!r} is not a valid UID (digits and dots, PS3.5 §9.1)"
    return True, ""


class UnsafeUIDError(ValueError):
    """A UID from the PACS cannot be used in a file path."""


def _safe(value: str, what: str) -> str:
    ok, reason = check_uid(str(value).strip("\0 "))
    if not ok:
        raise UnsafeUIDError(f"{what}: {reason}")
    return str(value).strip("\0 ")


def instance_path(dest: Path, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    """Return where an instance is stored under ``dest`` (UIDs validated).

    Raises
    ------
    UnsafeUIDError
        A UID is not valid and cannot name a file.
    """
    return (
        Path(dest)
        / _safe(study_uid, "StudyInstanceUID")
        / _safe(series_uid, "SeriesInstanceUID")
        / (_safe(sop_uid, "SOPInstanceUID") + ".dcm")
    )


def write_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` atomically and return the number of bytes written.

    The data goes to a temporary file in the same folder and is renamed once complete;
    on any error (or cancel raised by the iterator) the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def copy_atomic(source: Path, path: Path) -> int:
    """Copy ``source`` to ``path`` atomically (never a hard link: the copy is independent).

    Returns the number of bytes copied. The copy goes to a temporary file beside ``path``
    (the operating system's fast copy where there is one) and is renamed once complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def open_atomic(path: Path) -> tuple[BinaryIO, Path]:
    """Open a temporary file beside ``path`` for streaming; finish with :func:`commit_atomic`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    return os.fdopen(fd, "wb"), Path(tmp)


def commit_atomic(handle: BinaryIO, tmp: Path, path: Path) -> None:
    """Close and rename a file opened with :func:`open_atomic`."""
    try:
        handle.close()
        os.replace(tmp, path)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise


def discard_atomic(handle: BinaryIO, tmp: Path) -> None:
    """Close and remove a temporary file opened with :func:`open_atomic`."""
    handle.close()
    tmp.unlink(missing_ok=True)


def looks_complete(path: Path) -> bool:
    """Return True when ``path`` starts like a Part-10 file (preamble and ``DICM``, PS3.10 §7.1).

    A file emptied by a power loss right after its rename fails this check, so a rerun fetches
    it again instead of trusting its name.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def present_by_series(dest: Path, study_uid: str) -> dict[str, set[str]]:
    """Return the SOP Instance UIDs already stored for a study, by Series Instance UID."""
    folder = Path(dest) / _safe(study_uid, "StudyInstanceUID")
    present: dict[str, set[str]] = {}
    if folder.is_dir():
        for path in folder.glob("*/*.dcm"):
            if not path.name.startswith(TEMP_PREFIX) and looks_complete(path):
                present.setdefault(path.parent.name, set()).add(path.stem)
    return present


def present_instances(dest: Path, study_uid: str) -> set[str]:
    """Return the SOP Instance UIDs already stored for a study under ``dest``."""
    return {uid for uids in present_by_series(dest, study_uid).values() for uid in uids}


def remove_stale_temporaries(dest: Path) -> int:
    """Remove temporary files left by a crash under ``dest``; return how many were removed."""
    removed = 0
    for tmp in Path(dest).rglob(f"{TEMP_PREFIX}*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed
