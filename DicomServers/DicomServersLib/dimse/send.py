"""Send files to a server with C-STORE (PS3.4 Annex B): the spec's "StoreSCU settings".

Files and folders (searched recursively) are sent to the server's called AE title, host and
port. Each file is offered in its own transfer syntax: one presentation context per
(SOP class, transfer syntax) found, so compressed images go as they are; an uncompressed file
may also go in the other uncompressed syntax if the PACS prefers it. More than 127 distinct
pairs are sent over several associations. The result has one entry per file: sent, or why
not (not DICOM, refused by the PACS, SOP class or transfer syntax not accepted, cancelled).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pynetdicom import build_context
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from DicomServersLib.dicom_compat import read_header
from DicomServersLib.dicom_files import TEMP_PREFIX
from DicomServersLib.dimse import diagnosis
from DicomServersLib.dimse.association import (
    Timeouts,
    close_association,
    open_association,
    silence_failure,
)
from DicomServersLib.dimse.contexts import UNCOMPRESSED_TRANSFER_SYNTAXES
from DicomServersLib.dimse.outcome import Failure
from DicomServersLib.dimse.query import NETWORK_FIELDS, require_server_fields
from DicomServersLib.progress import Progress, ProgressCallback, report
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import SendItemResult, SendResult

__all__ = ["collect_files", "send"]

_IMPLICIT = "1.2.840.10008.1.2"
_MAX_CONTEXTS = 127


@dataclass
class _File:
    path: Path
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    transfer_syntax: str = ""
    error: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.sop_class_uid, self.transfer_syntax


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of files.

    Hidden files and our own temporary files are left out. A path that does not exist is
    kept, so it is reported as an error in the result.
    """
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not p.name.startswith((".", TEMP_PREFIX))
            )
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def _inspect(path: Path) -> _File:
    """Read a file's header: SOP class and instance, transfer syntax."""
    entry = _File(path)
    try:
        ds = read_header(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        entry.error = f"not a readable DICOM file ({error})"
        return entry
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    sop_uid = ds.get("SOPInstanceUID") or (meta.get("MediaStorageSOPInstanceUID") if meta else None)
    if not sop_class or not sop_uid:
        entry.error = "not a DICOM instance (no SOP Class UID or SOP Instance UID)"
        return entry
    entry.sop_class_uid = str(sop_class)
    entry.sop_instance_uid = str(sop_uid)
    syntax = meta.get("TransferSyntaxUID") if meta else None
    entry.transfer_syntax = str(syntax or _IMPLICIT)
    return entry


def _contexts(keys: list[tuple[str, str]]) -> list[PresentationContext]:
    contexts = []
    for sop_class, syntax in keys:
        syntaxes = [syntax]
        if syntax in UNCOMPRESSED_TRANSFER_SYNTAXES:
            syntaxes += [s for s in UNCOMPRESSED_TRANSFER_SYNTAXES if s != syntax]
        contexts.append(build_context(sop_class, syntaxes))
    return contexts


def _batches(entries: list[_File]) -> list[list[_File]]:
    """Group files so that each association needs at most 127 contexts."""
    batches: list[list[_File]] = []
    keys: set[tuple[str, str]] = set()
    current: list[_File] = []
    for entry in entries:
        if entry.key not in keys and len(keys) >= _MAX_CONTEXTS:
            batches.append(current)
            current, keys = [], set()
        keys.add(entry.key)
        current.append(entry)
    if current:
        batches.append(current)
    return batches


def send(
    server: DicomServer,
    paths: Iterable[str | Path],
    *,
    progress: ProgressCallback | None = None,
    timeouts: Timeouts | None = None,
) -> SendResult:
    """C-STORE files and folders to a server.

    Parameters
    ----------
    server : DicomServer
        Called AE title, host, port and calling AE title.
    paths : iterable of str or pathlib.Path
        Files, or folders searched recursively.
    progress : ProgressCallback, optional
        Told files sent / remaining / failed; returning False cancels (files not sent yet
        are reported as not sent).
    timeouts : Timeouts, optional
        Defaults to the server's timeout.

    Returns
    -------
    SendResult
        One item per file, in path order; ``ok`` only when every file was stored.

    Raises
    ------
    ValidationError
        Invalid server fields (misuse).
    """
    require_server_fields(server, NETWORK_FIELDS)
    timeouts = timeouts or Timeouts.for_server(server)
    started = time.monotonic()
    entries = [_inspect(path) for path in collect_files(paths)]
    results: dict[Path, SendItemResult] = {}
    for entry in entries:
        if entry.error:
            results[entry.path] = SendItemResult(entry.path, False, diagnosis=entry.error)
    sendable = [entry for entry in entries if not entry.error]
    counter = {"done": 0, "failed": len(results)}
    stop: Failure | None = None
    for batch in _batches(sendable):
        if stop is not None:
            for entry in batch:
                results[entry.path] = _not_sent(entry, stop)
            continue
        stop = _send_batch(server, batch, timeouts, results, progress, counter, len(entries))
    result = SendResult(items=[results[entry.path] for entry in entries])
    result.ok = bool(entries) and all(item.ok for item in result.items)
    if not entries:
        result.diagnosis = "No files to send."
    elif not result.ok:
        failed = [item for item in result.items if not item.ok]
        first = stop.diagnosis if stop is not None else failed[0].diagnosis
        result.diagnosis = f"{len(failed)} of {len(entries)} file(s) not stored. {first}"
    result.duration_s = time.monotonic() - started
    return result


def _not_sent(entry: _File, failure: Failure) -> SendItemResult:
    return SendItemResult(
        entry.path,
        False,
        status=failure.status,
        sop_instance_uid=entry.sop_instance_uid,
        diagnosis=failure.diagnosis,
    )


def _send_batch(
    server: DicomServer,
    batch: list[_File],
    timeouts: Timeouts,
    results: dict[Path, SendItemResult],
    progress: ProgressCallback | None,
    counter: dict[str, int],
    total: int,
) -> Failure | None:
    """Send one association's worth of files; return a failure that stops the whole send."""
    keys = list(dict.fromkeys(entry.key for entry in batch))
    opened = open_association(server, _contexts(keys), timeouts=timeouts, service="C-STORE")
    if opened.failure is not None or opened.assoc is None:
        failure = opened.failure or diagnosis.association_aborted(server, "association")
        for entry in batch:
            results[entry.path] = _not_sent(entry, failure)
        return failure
    assoc = opened.assoc
    accepted = {
        (str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts
    }
    stop: Failure | None = None
    try:
        for entry in batch:
            if stop is not None:
                results[entry.path] = _not_sent(entry, stop)
                continue
            item = _send_one(server, assoc, entry, accepted, timeouts, opened.local_host)
            results[entry.path] = item
            counter["done" if item.ok else "failed"] += 1
            if item.status is None and not item.ok and not assoc.is_established:
                stop = Failure("aborted", item.diagnosis)
            keep_going = report(
                progress,
                Progress(
                    completed=counter["done"],
                    remaining=total - counter["done"] - counter["failed"],
                    failed=counter["failed"],
                    message=f"{counter['done']}/{total} files sent",
                ),
            )
            if not keep_going and stop is None:
                stop = diagnosis.cancelled("The send")
    finally:
        close_association(assoc)
    return stop


def _send_one(
    server: DicomServer,
    assoc: Association,
    entry: _File,
    accepted: set[tuple[str, str]],
    timeouts: Timeouts,
    local_host: str | None,
) -> SendItemResult:
    """C-STORE one file on an open association."""
    syntax_ok = entry.key in accepted or (
        entry.transfer_syntax in UNCOMPRESSED_TRANSFER_SYNTAXES
        and any((entry.sop_class_uid, s) in accepted for s in UNCOMPRESSED_TRANSFER_SYNTAXES)
    )
    if not syntax_ok:
        what = f" ({entry.sop_class_uid} in transfer syntax {entry.transfer_syntax})"
        failure = diagnosis.service_not_supported(server, "C-STORE", what)
        return _not_sent(entry, failure)
    try:
        ds = pydicom.dcmread(entry.path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        return SendItemResult(
            entry.path,
            False,
            sop_instance_uid=entry.sop_instance_uid,
            diagnosis=f"unreadable: {error}",
        )
    sent = time.monotonic()
    try:
        answer = assoc.send_c_store(ds)
    except (ValueError, AttributeError, RuntimeError) as error:
        return SendItemResult(
            entry.path,
            False,
            sop_instance_uid=entry.sop_instance_uid,
            diagnosis=f"cannot send: {error}",
        )
    status = answer.get("Status") if answer is not None else None
    if status is None:
        failure = silence_failure(server, assoc, "C-STORE", timeouts, time.monotonic() - sent)
        return _not_sent(entry, failure)
    status = int(status)
    category = diagnosis.status_category(status)
    if category in (diagnosis.CATEGORY_SUCCESS, diagnosis.CATEGORY_WARNING):
        note = (
            ""
            if category == diagnosis.CATEGORY_SUCCESS
            else diagnosis.status_meaning(status, "C-STORE")
        )
        return SendItemResult(entry.path, True, status, entry.sop_instance_uid, note)
    comment = str(answer.get("ErrorComment", "") or "")
    failure = diagnosis.status_failure(server, "C-STORE", status, comment, local_host)
    return _not_sent(entry, failure)
