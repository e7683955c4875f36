"""Sending DICOM files to a server over REST: STOW-RS (DICOMweb) or Orthanc ``POST /instances``.

Each file gets its own result (:class:`~DicomServersLib.transfer_model.SendItemResult`):
stored, or refused with the server's reason. Files that are not DICOM are reported without
being sent. STOW-RS sends the files in batches (one ``multipart/related`` request each,
streamed from disk, PS3.18 §10.5); Orthanc receives one file per request, several in
parallel. A progress callback reports files and bytes and cancels between requests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from DicomServersLib.dicom_compat import read_header
from DicomServersLib.progress import Progress, ProgressCallback, report
from DicomServersLib.rest.diagnosis import RestError
from DicomServersLib.rest.dicomweb import DicomwebClient
from DicomServersLib.rest.orthanc import OrthancClient
from DicomServersLib.rest.session import build_session, rest_base_url
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import SendItemResult, SendResult

#: STOW-RS batches: at most this many files or bytes per request.
BATCH_FILES = 100
BATCH_BYTES = 64 * 1024 * 1024
#: Parallel uploads to Orthanc.
ORTHANC_WORKERS = 4


def _sop_uid(path: Path) -> str:
    header = read_header(path)
    return str(header.SOPInstanceUID)


_Item = tuple[Path, str, int, int]  # path, SOP Instance UID, size, position in the request


def _batches(items: Sequence[_Item]) -> Iterable[list[_Item]]:
    batch: list[_Item] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= BATCH_FILES or size + item[2] > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        yield batch


def send_files(
    server: DicomServer,
    paths: Iterable[str | Path],
    *,
    session: requests.Session | None = None,
    progress: ProgressCallback | None = None,
) -> SendResult:
    """Send DICOM files to the server's REST API (STOW-RS, or Orthanc's ``/instances``).

    Parameters
    ----------
    server : DicomServer
        ``rest_flavor`` picks STOW-RS or Orthanc; URL, login and timeout are used.
    paths : iterable of str or pathlib.Path
        DICOM Part-10 files.
    session : requests.Session, optional
        Default: :func:`~DicomServersLib.rest.session.build_session`.
    progress : ProgressCallback, optional
        Called after each request; returning False stops before the next one.

    Returns
    -------
    SendResult
        One item per file, in the order given; ``ok`` only when every file was stored.
        Files not sent because of a cancel or an earlier failure say so.
    """
    started = time.monotonic()
    files = [Path(p) for p in paths]
    results: dict[int, SendItemResult] = {}
    ready: list[_Item] = []
    for index, path in enumerate(files):
        try:
            ready.append((path, _sop_uid(path), os.path.getsize(path), index))
        except OSError as error:
            results[index] = SendItemResult(path, False, diagnosis=f"cannot read the file: {error}")
        except Exception:
            results[index] = SendItemResult(path, False, diagnosis="not a DICOM file: not sent")
    bytes_total = sum(item[2] for item in ready)
    own = session is None
    active = session if session is not None else build_session(server)
    base = rest_base_url(server)
    stopped = ""
    done_bytes = 0

    def progressed(message: str) -> bool:
        sent = [r for r in results.values() if r.ok]
        failed = [r for r in results.values() if not r.ok]
        return report(
            progress,
            Progress(
                completed=len(sent),
                remaining=len(files) - len(results),
                failed=len(failed),
                bytes_done=done_bytes,
                bytes_total=bytes_total,
                message=message,
            ),
        )

    try:
        if server.rest_flavor == "dicomweb":
            client = DicomwebClient(active, base)
            for batch in _batches(ready):
                try:
                    outcome = client.store([item[0] for item in batch])
                except RestError as error:
                    stopped = error.diagnosis
                    break
                for path, uid, size, index in batch:
                    done_bytes += size
                    if uid in outcome.failed:
                        results[index] = SendItemResult(
                            path, False, outcome.status, uid, outcome.failed[uid]
                        )
                    elif uid in outcome.stored:
                        results[index] = SendItemResult(
                            path, True, outcome.status, uid, outcome.warnings.get(uid, "")
                        )
                    else:
                        results[index] = SendItemResult(
                            path,
                            False,
                            outcome.status,
                            uid,
                            "the server did not confirm this instance",
                        )
                if not progressed("Sending (STOW-RS)"):
                    stopped = "The send was cancelled."
                    break
        else:
            orthanc = OrthancClient(active, base)

            def upload(item: _Item) -> SendItemResult:
                path, uid, _, _ = item
                with path.open("rb") as handle:
                    answer = orthanc.upload(handle)
                status = str(answer.get("Status", ""))
                return SendItemResult(
                    path,
                    status in ("Success", "AlreadyStored"),
                    200,
                    uid,
                    "" if status == "Success" else status,
                )

            with ThreadPoolExecutor(max_workers=ORTHANC_WORKERS) as pool:
                for start in range(0, len(ready), ORTHANC_WORKERS):
                    chunk = ready[start : start + ORTHANC_WORKERS]
                    futures = [pool.submit(upload, item) for item in chunk]
                    for item, future in zip(chunk, futures):
                        try:
                            results[item[3]] = future.result()
                        except RestError as error:
                            if (
                                error.status is not None
                                and error.status < 500
                                and error.status not in (401, 403, 404)
                            ):
                                results[item[3]] = SendItemResult(
                                    item[0],
                                    False,
                                    error.status,
                                    item[1],
                                    f"Orthanc refused the file: {error.diagnosis}",
                                )
                            else:
                                stopped = error.diagnosis
                        done_bytes += item[2]
                    if stopped:
                        break
                    if not progressed("Sending (Orthanc REST)"):
                        stopped = "The send was cancelled."
                        break
    finally:
        if own:
            active.close()
    for index, path in enumerate(files):
        if index not in results:
            results[index] = SendItemResult(
                path, False, diagnosis=f"not sent: {stopped or 'stopped'}"
            )
    items = [results[i] for i in range(len(files))]
    ok = all(item.ok for item in items)
    diagnosis = stopped
    if not ok and not diagnosis:
        failed = sum(1 for item in items if not item.ok)
        diagnosis = f"{failed} of {len(items)} files were not stored (see each file)."
    return SendResult(
        items=items, ok=ok, diagnosis=diagnosis, duration_s=time.monotonic() - started
    )
