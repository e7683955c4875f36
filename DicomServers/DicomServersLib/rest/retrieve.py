"""Retrieving a study or a series over REST: Orthanc's REST API or DICOMweb WADO-RS.

The same guarantees as a DIMSE retrieve: instances land at
``<dest>/<Study>/<Series>/<SOP>.dcm`` (UIDs checked before they become paths), each written
atomically (a temporary file renamed when complete, see :mod:`DicomServersLib.dicom_files`);
instances already on disk are skipped, so a rerun after a cancel or a failure fetches only what
is missing; a progress callback reports instances and bytes and cancels by returning False.

- **Orthanc**: the study's instances are listed (``/studies/{id}/series`` and
  ``/instances``) and each stored file is downloaded from ``/instances/{id}/file`` (the bytes
  Orthanc received, unchanged) over several keep-alive connections in parallel.
- **DICOMweb**: the instances are listed with QIDO-RS, then each series still missing is
  retrieved with WADO-RS (one request per series, several series in parallel; one request per
  instance for a series that is partly on disk). The ``multipart/related`` answer is parsed as
  it streams (:class:`~DicomServersLib.rest.multipart.MultipartParser`), each part going
  straight to its temporary file; nothing is held whole in memory. Instances are asked for as
  stored (``transfer-syntax=*``, PS3.18 §8.7.3.5.2) so the files are the server's, byte for byte.
"""

from __future__ import annotations

import queue
import struct
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import requests

from DicomServersLib.dicom_files import (
    check_uid,
    commit_atomic,
    discard_atomic,
    instance_path,
    open_atomic,
    present_instances,
    remove_stale_temporaries,
)
from DicomServersLib.dicom_header import read_header
from DicomServersLib.progress import Progress, ProgressCallback, report
from DicomServersLib.rest.diagnosis import (
    KIND_AUTH,
    KIND_CONNECTION,
    KIND_DNS,
    KIND_FORBIDDEN,
    KIND_PROTOCOL,
    KIND_REFUSED,
    KIND_TIMEOUT,
    KIND_TLS,
    MALFORMED_ANSWER,
    RestError,
    diagnose_exception,
    malformed_answer,
)
from DicomServersLib.rest.dicomweb import (
    TAG_SERIES_INSTANCE_COUNT,
    TAG_SERIES_UID,
    DicomwebClient,
    number,
    text,
)
from DicomServersLib.rest.multipart import (
    PART_DATA,
    PART_END,
    PART_HEADERS,
    MultipartError,
    MultipartParser,
    boundary_of,
    parse_content_type,
)
from DicomServersLib.rest.orthanc import OrthancClient
from DicomServersLib.rest.session import DEFAULT_POOL_SIZE, build_session, rest_base_url
from DicomServersLib.server import DicomServer
from DicomServersLib.transfer_model import RetrieveResult

METHOD_ORTHANC = "orthanc-rest"
METHOD_WADO = "wado-rs"

#: Parallel downloads (Orthanc instances, or WADO-RS series).
DEFAULT_WORKERS = 4
#: Bytes read from the network at a time.
CHUNK_SIZE = 1 << 20
#: Threads that write, close and rename finished files while the transfer goes on.
COMMIT_WORKERS = 8
#: Finished files waiting for a writer thread, at most (the network thread waits beyond).
PARTS_IN_FLIGHT = 16
#: Threads writing the parts of one WADO-RS stream (in turn, one part each).
WRITERS_PER_STREAM = 2
#: Chunks waiting for a WADO-RS stream's writer thread, at most.
WRITE_QUEUE = 8
#: Bytes of each WADO-RS part kept to read its file meta (PS3.10 §7.1).
HEAD_BYTES = 1024
#: Seconds between progress reports while bytes flow.
REPORT_EVERY_S = 0.2

#: Failures that concern the whole server: stop at once instead of failing every instance.
_FATAL_KINDS = frozenset(
    {KIND_AUTH, KIND_FORBIDDEN, KIND_REFUSED, KIND_DNS, KIND_TLS, KIND_TIMEOUT, KIND_CONNECTION}
)


class _CancelledError(Exception):
    """Raised inside a worker when the transfer was cancelled."""


@dataclass
class _Transfer:
    """Counters shared by the workers and the reporting thread."""

    study_uid: str
    dest: Path
    present: set[str]
    total: int | None
    bytes_total: int | None
    cancel: threading.Event = field(default_factory=threading.Event)
    changed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_done: int = 0
    files: list[Path] = field(default_factory=list)
    diagnosis: str = ""
    fatal: bool = False
    committer: ThreadPoolExecutor | None = None
    commits: list[Future[None]] = field(default_factory=list)
    in_flight: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(PARTS_IN_FLIGHT)
    )

    def in_background(self, work: Callable[[], None]) -> None:
        """Run file work (write, close, rename) on the writer threads, off the network thread.

        Writing hundreds of files is a large part of a retrieve on most
        disks; done by several threads it overlaps the transfer of the next instances. At most
        :data:`PARTS_IN_FLIGHT` pieces of work wait: the network thread blocks beyond that.
        """
        if self.committer is None:
            work()
            return
        self.in_flight.acquire()

        def run() -> None:
            try:
                work()
            finally:
                self.in_flight.release()

        future = self.committer.submit(run)
        with self.lock:
            self.commits.append(future)

    def commit(self, handle: BinaryIO, tmp: Path, path: Path) -> None:
        """Make a complete temporary file final (close, rename) in the background."""

        def run() -> None:
            commit_atomic(handle, tmp, path)
            self.stored(path)

        self.in_background(run)

    def wait_commits(self) -> None:
        """Wait for every commit; a failed one counts as a failed instance."""
        while True:
            with self.lock:
                pending, self.commits = self.commits, []
            if not pending:
                return
            for future in pending:
                error = future.exception()
                if error is not None:
                    self.fail(f"Could not write the files under {self.dest}: {error}.")

    def add_bytes(self, count: int) -> None:
        with self.lock:
            self.bytes_done += count

    def stored(self, path: Path) -> None:
        with self.lock:
            self.received += 1
            self.files.append(path)
        self.changed.set()

    def fail(self, diagnosis: str, fatal: bool = False) -> None:
        with self.lock:
            self.failed += 1
            if not self.diagnosis:
                self.diagnosis = diagnosis
            if fatal:
                self.fatal = True
                self.cancel.set()
        self.changed.set()

    def check(self) -> None:
        if self.cancel.is_set():
            raise _CancelledError

    def snapshot(self, message: str) -> Progress:
        with self.lock:
            remaining = (
                max(0, self.total - self.received - self.failed) if self.total is not None else None
            )
            return Progress(
                completed=self.received,
                remaining=remaining,
                failed=self.failed,
                bytes_done=self.bytes_done,
                bytes_total=self.bytes_total,
                message=message,
            )


def _run_jobs(
    transfer: _Transfer,
    jobs: list[Callable[[], None]],
    workers: int,
    progress: ProgressCallback | None,
    message: str,
) -> bool:
    """Run download jobs in parallel, reporting progress; return False if cancelled.

    The calling thread reports: after each stored instance (reports coalesce when instances
    arrive faster than the callback returns) and every :data:`REPORT_EVERY_S` while bytes flow.
    """
    cancelled = False
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        pending: set[Future[None]] = set()
        for job in jobs:
            future = pool.submit(job)
            pending.add(future)
            future.add_done_callback(lambda _: transfer.changed.set())
        while pending:
            transfer.changed.wait(REPORT_EVERY_S)
            transfer.changed.clear()
            done = {future for future in pending if future.done()}
            pending -= done
            for future in done:
                error = None if future.cancelled() else future.exception()
                if error is None or isinstance(error, _CancelledError):
                    continue
                if isinstance(error, RestError):
                    transfer.fail(error.diagnosis, fatal=error.kind in _FATAL_KINDS)
                elif isinstance(error, requests.RequestException):
                    url = str(getattr(error.request, "url", "") or "")
                    diagnosed = diagnose_exception(error, url)
                    transfer.fail(diagnosed.diagnosis, fatal=diagnosed.kind in _FATAL_KINDS)
                elif isinstance(error, MultipartError):
                    transfer.fail(f"The transfer from the server was cut: {error}.")
                elif isinstance(error, OSError):
                    transfer.fail(f"Could not write the files under {transfer.dest}: {error}.")
                else:
                    transfer.cancel.set()
                    raise error
            if not cancelled and not report(progress, transfer.snapshot(message)):
                cancelled = True
                transfer.cancel.set()
            if transfer.cancel.is_set():
                for future in pending:
                    future.cancel()
    transfer.wait_commits()
    if not cancelled:
        report(progress, transfer.snapshot(message))
    return not cancelled


def _result(transfer: _Transfer, method: str, cancelled: bool, started: float) -> RetrieveResult:
    files = sorted(set(transfer.files))
    ok = not cancelled and transfer.failed == 0 and not transfer.diagnosis
    diagnosis = transfer.diagnosis
    if cancelled:
        diagnosis = "The retrieve was cancelled; run it again to fetch the missing instances."
    return RetrieveResult(
        ok=ok,
        diagnosis=diagnosis,
        method=method,
        files=files,
        received=transfer.received,
        skipped=transfer.skipped,
        failed=transfer.failed,
        bytes_received=transfer.bytes_done,
        cancelled=cancelled,
        duration_s=time.monotonic() - started,
    )


def _check_uid_argument(name: str, value: str | None) -> None:
    if value is None:
        return
    ok, reason = check_uid(value)
    if not ok:
        raise ValueError(f"{name}: {reason}")


# -- Orthanc ---------------------------------------------------------------------------------


def _not_on_server(
    method: str, study_uid: str, series: list[str] | None, started: float
) -> RetrieveResult:
    what = f"study {study_uid}"
    if series:
        what = (
            f"series {', '.join(series)} of the study" if len(series) > 1 else f"series {series[0]}"
        )
    return RetrieveResult(
        ok=False,
        method=method,
        diagnosis=f"The {what} is not on the server (any more): refresh the study list.",
        duration_s=time.monotonic() - started,
    )


def _retrieve_orthanc(
    client: OrthancClient,
    study_uid: str,
    series: list[str] | None,
    dest: Path,
    progress: ProgressCallback | None,
    workers: int,
    started: float,
    committer: ThreadPoolExecutor,
) -> RetrieveResult:
    study_id = client.lookup(study_uid, "Study")
    if study_id is None:
        return _not_on_server(METHOD_ORTHANC, study_uid, None, started)
    if series is not None and len(series) == 1:
        series_id = client.lookup(series[0], "Series")
        if series_id is None:
            return _not_on_server(METHOD_ORTHANC, study_uid, series, started)
        refs = client.instances_of(study_id, series_id)
    else:
        refs = client.instances_of(study_id)
        if series is not None:
            refs = [r for r in refs if r.series_instance_uid in series]
    if not refs:
        return _not_on_server(METHOD_ORTHANC, study_uid, series, started)
    # UIDs name the files: a listed instance whose UIDs are not UIDs is refused, not filed.
    unsafe = [
        r
        for r in refs
        if not (check_uid(r.series_instance_uid)[0] and check_uid(r.sop_instance_uid)[0])
    ]
    refs = [r for r in refs if all(r is not bad for bad in unsafe)]
    present = present_instances(dest, study_uid)
    todo = [r for r in refs if r.sop_instance_uid not in present]
    sizes = [r.size for r in todo]
    transfer = _Transfer(
        study_uid,
        dest,
        present,
        total=len(todo),
        bytes_total=sum(s for s in sizes if s) if all(s is not None for s in sizes) else None,
    )
    transfer.committer = committer
    for bad in unsafe:
        transfer.fail(
            f"The server listed {len(unsafe)} image(s) with invalid UIDs (e.g."
            f" {(bad.sop_instance_uid or bad.series_instance_uid)[:80]!r}); they were refused."
        )
    for ref in refs:
        if ref.sop_instance_uid in present:
            transfer.skipped += 1
            transfer.files.append(
                instance_path(dest, study_uid, ref.series_instance_uid, ref.sop_instance_uid)
            )

    def download(ref_path: tuple[str, Path]) -> Callable[[], None]:
        instance_id, path = ref_path

        def job() -> None:
            transfer.check()
            handle, tmp = open_atomic(path)
            head = b""
            try:
                with client.open_instance_file(instance_id) as response:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        transfer.check()
                        if len(head) < HEAD_BYTES:
                            head += chunk[: HEAD_BYTES - len(head)]
                        handle.write(chunk)
                        transfer.add_bytes(len(chunk))
                _check_is_instance(
                    head, handle, tmp, path.stem, client.url(f"/instances/{instance_id}/file")
                )
            except BaseException:
                discard_atomic(handle, tmp)
                raise
            transfer.commit(handle, tmp, path)

        return job

    jobs = [
        download(
            (
                r.instance_id,
                instance_path(dest, study_uid, r.series_instance_uid, r.sop_instance_uid),
            )
        )
        for r in todo
    ]
    completed = True
    if jobs:
        completed = _run_jobs(transfer, jobs, workers, progress, f"Retrieving {study_uid}")
    return _result(transfer, METHOD_ORTHANC, not completed, started)


# -- DICOMweb --------------------------------------------------------------------------------


def sop_uid_from_file_meta(head: bytes) -> str:
    """Return MediaStorageSOPInstanceUID (0002,0003) from the start of a Part-10 file, or ``""``.

    The File Meta Information follows the 128-byte preamble and ``DICM``, always in explicit
    VR little endian (PS3.10 §7.1), so the UID is found in the first few hundred bytes without
    parsing the data set.
    """
    if head[128:132] != b"DICM":
        return ""
    pos = 132
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            return ""
        vr = head[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            if pos + 12 > len(head):
                return ""
            (length,) = struct.unpack_from("<I", head, pos + 8)
            pos += 12
        else:
            (length,) = struct.unpack_from("<H", head, pos + 6)
            pos += 8
        if element == 0x0003:
            value = head[pos : pos + length]
            return value.decode("ascii", "replace").strip("\0 ") if len(value) == length else ""
        pos += length
    return ""


def _check_is_instance(head: bytes, handle: BinaryIO, tmp: Path, sop_uid: str, url: str) -> None:
    """Refuse a downloaded file that is not the DICOM instance listed (an error page, junk).

    Raises
    ------
    RestError
        Not a Part-10 file, or one of another SOP Instance UID.
    """
    found = sop_uid_from_file_meta(head)
    if not found and head[128:132] == b"DICM":  # file meta longer than the head kept
        handle.flush()
        try:
            found = str(read_header(tmp).get("SOPInstanceUID") or "")
        except Exception:
            found = ""
    if found != sop_uid:
        what = f"instance {found}" if found else "not a DICOM file"
        raise RestError(
            f"The server sent a file that is not the image listed ({what} instead of"
            f" {sop_uid}); it was not stored. Retry; if it persists, ask the PACS administrator.",
            KIND_PROTOCOL,
            url=url,
        )


class _PartWriter:
    """Writes the parts of one WADO-RS answer to their files, atomically.

    Each part streams into a temporary file as it arrives (never held whole). Its SOP Instance
    UID comes from the file meta at its start; the series is the one asked for (else the file
    is read back). Closing and renaming go to the transfer's writer threads.
    """

    def __init__(self, transfer: _Transfer, series_hint: str | None) -> None:
        self.transfer = transfer
        self.series_hint = series_hint
        self.handle: BinaryIO | None = None
        self.tmp: Path | None = None
        self.head = b""

    def start(self) -> None:
        # Beside its final place when the series is known: the rename stays in one folder.
        study = self.transfer.dest / self.transfer.study_uid
        hint = self.series_hint
        folder = study / hint if hint and check_uid(hint)[0] else study
        self.handle, self.tmp = open_atomic(folder / "incoming.dcm")
        self.head = b""

    def write(self, data: bytes | memoryview) -> None:
        assert self.handle is not None
        self.handle.write(data)
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[: HEAD_BYTES - len(self.head)])
        self.transfer.add_bytes(len(data))

    def _uids(self) -> tuple[str, str]:
        assert self.handle is not None and self.tmp is not None
        sop = sop_uid_from_file_meta(self.head)
        if sop and self.series_hint:
            return sop, self.series_hint
        self.handle.flush()
        header = read_header(self.tmp)  # the file's start, from the page cache
        series = header.get("SeriesInstanceUID") or self.series_hint or ""
        return header.get("SOPInstanceUID"), series

    def end(self) -> None:
        assert self.handle is not None and self.tmp is not None
        try:
            sop, series = self._uids()
            path = instance_path(self.transfer.dest, self.transfer.study_uid, series, sop)
        except Exception as error:  # one bad part must not stop the others
            self.abort()
            self.transfer.fail(f"The server sent a part that cannot be stored: {error}.")
            return
        handle, tmp = self.handle, self.tmp
        self.handle = self.tmp = None
        if sop in self.transfer.present:
            discard_atomic(handle, tmp)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.transfer.commit(handle, tmp, path)

    def abort(self) -> None:
        if self.handle is not None and self.tmp is not None:
            discard_atomic(self.handle, self.tmp)
        self.handle = self.tmp = None


class _WriterThread:
    """Runs a :class:`_PartWriter`'s file work on its own thread, in order.

    The network thread only reads and parses; writing to disk (which releases the GIL)
    overlaps it. At most :data:`WRITE_QUEUE` chunks wait, so memory stays bounded.
    """

    def __init__(self, writer: _PartWriter) -> None:
        self.writer = writer
        self.queue: queue.Queue[tuple[str, bytes | memoryview | None]] = queue.Queue(WRITE_QUEUE)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="wado-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            kind, value = self.queue.get()
            if kind == "stop":
                return
            if self.error is not None:
                continue
            try:
                if kind == PART_HEADERS:
                    self.writer.start()
                elif kind == PART_DATA and value is not None:
                    self.writer.write(value)
                elif kind == PART_END:
                    self.writer.end()
            except BaseException as error:  # reported to the network thread
                self.error = error

    def put(self, kind: str, value: bytes | memoryview | None = None) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((kind, value))

    def close(self) -> None:
        """Finish the queued work (or drop it after an error) and stop the thread."""
        self.queue.put(("stop", None))
        self.thread.join()
        self.writer.abort()
        if self.error is not None:
            raise self.error


def _stream_parts(response: requests.Response, series: str | None, transfer: _Transfer) -> None:
    """Parse a WADO-RS answer as it arrives; writer threads write the parts, in turn."""
    media, _ = parse_content_type(response.headers.get("Content-Type", ""))
    threads = [_WriterThread(_PartWriter(transfer, series)) for _ in range(WRITERS_PER_STREAM)]
    turn = 0
    current = threads[0]
    try:
        if media.startswith("multipart/"):
            parser = MultipartParser(boundary_of(response.headers["Content-Type"]))
            for chunk in response.iter_content(CHUNK_SIZE):
                transfer.check()
                for kind, value in parser.feed(chunk):
                    if kind == PART_HEADERS:
                        current = threads[turn % len(threads)]
                        turn += 1
                        current.put(kind)
                    else:
                        assert not isinstance(value, dict)
                        current.put(kind, value)
            parser.finish()
        else:  # a single instance answered as application/dicom
            current.put(PART_HEADERS)
            for chunk in response.iter_content(CHUNK_SIZE):
                transfer.check()
                current.put(PART_DATA, chunk)
            current.put(PART_END)
    except BaseException:
        for thread in threads:
            thread.error = thread.error or _CancelledError()  # drop what is queued
        raise
    finally:
        response.close()
        errors = []
        for thread in threads:
            try:
                thread.close()
            except _CancelledError:
                pass
            except BaseException as error:
                errors.append(error)
        if errors:
            raise errors[0]


def _retrieve_dicomweb(
    client: DicomwebClient,
    study_uid: str,
    series: list[str] | None,
    dest: Path,
    progress: ProgressCallback | None,
    workers: int,
    started: float,
    committer: ThreadPoolExecutor,
) -> RetrieveResult:
    present = present_instances(dest, study_uid)
    transfer = _Transfer(study_uid, dest, present, total=None, bytes_total=None)
    transfer.committer = committer

    def job(series: str | None, sop: str | None) -> Callable[[], None]:
        def run() -> None:
            transfer.check()
            response = client.open_retrieve(study_uid, series, sop)
            _stream_parts(response, series, transfer)

        return run

    jobs: list[Callable[[], None]] = []
    if not present:
        # Nothing here yet: list the series only (cheap), then one stream per series.
        params = {"SeriesInstanceUID": series[0]} if series and len(series) == 1 else None
        series_list = client.search_series(study_uid, params).items
        if series is not None:
            series_list = [i for i in series_list if text(i, TAG_SERIES_UID) in series]
        counts = [number(item, TAG_SERIES_INSTANCE_COUNT) for item in series_list]
        if all(c is not None for c in counts):
            transfer.total = sum(c for c in counts if c is not None)
        jobs = [job(text(item, TAG_SERIES_UID), None) for item in series_list]
    else:
        # Some instances are here: list them all, fetch only the missing ones.
        refs = client.instances_of(study_uid, series[0] if series and len(series) == 1 else None)
        if series is not None:
            refs = [r for r in refs if r.series_instance_uid in series]
        by_series: dict[str, list[str]] = {}
        missing: dict[str, list[str]] = {}
        for ref in refs:
            by_series.setdefault(ref.series_instance_uid, []).append(ref.sop_instance_uid)
            if ref.sop_instance_uid in present:
                transfer.skipped += 1
                transfer.files.append(
                    instance_path(dest, study_uid, ref.series_instance_uid, ref.sop_instance_uid)
                )
            else:
                missing.setdefault(ref.series_instance_uid, []).append(ref.sop_instance_uid)
        transfer.total = sum(len(sops) for sops in missing.values())
        for one, sops in missing.items():
            if len(sops) == len(by_series[one]):
                jobs.append(job(one, None))
            else:
                jobs += [job(one, sop) for sop in sops]
        if not refs:
            jobs = []
    if not jobs and not transfer.skipped:
        return _not_on_server(METHOD_WADO, study_uid, series, started)
    completed = True
    if jobs:
        completed = _run_jobs(transfer, jobs, workers, progress, f"Retrieving {study_uid}")
    return _result(transfer, METHOD_WADO, not completed, started)


def retrieve_study(
    server: DicomServer,
    study_uid: str,
    dest: str | Path,
    *,
    series_uid: str | None = None,
    series_uids: Iterable[str] = (),
    session: requests.Session | None = None,
    progress: ProgressCallback | None = None,
    workers: int = DEFAULT_WORKERS,
) -> RetrieveResult:
    """Retrieve a study (or one of its series) over the server's REST API into ``dest``.

    Parameters
    ----------
    server : DicomServer
        ``rest_flavor`` picks Orthanc REST or WADO-RS; URL, login and timeout are used.
    study_uid : str
        StudyInstanceUID.
    dest : str or pathlib.Path
        Folder; files go to ``<dest>/<Study>/<Series>/<SOP>.dcm``.
    series_uid : str, optional
        Retrieve only this series.
    series_uids : iterable of str, optional
        Retrieve only these series (with ``series_uid``, if given); all in parallel.
    session : requests.Session, optional
        Default: :func:`~DicomServersLib.rest.session.build_session`, pooled for ``workers``.
    progress : ProgressCallback, optional
        Reports instances and bytes; returning False cancels (no partial file is left).
    workers : int, optional
        Parallel connections.

    Returns
    -------
    RetrieveResult
        ``files`` lists every instance of the request now on disk; ``received`` those
        transferred by this run and ``skipped`` those already there. Network failures give
        ``ok`` False with a diagnosis.

    Raises
    ------
    ValueError
        ``study_uid`` or ``series_uid`` is not a valid UID (named in the message).
    """
    _check_uid_argument("study_uid", study_uid)
    _check_uid_argument("series_uid", series_uid)
    wanted = ([series_uid] if series_uid else []) + [u for u in series_uids if u]
    for uid in wanted:
        _check_uid_argument("series_uids", uid)
    series = list(dict.fromkeys(wanted)) or None
    started = time.monotonic()
    folder = Path(dest)
    study_folder = folder / study_uid
    if study_folder.is_dir():
        remove_stale_temporaries(study_folder)
    own = session is None
    active = (
        session
        if session is not None
        else build_session(server, pool_size=max(workers, DEFAULT_POOL_SIZE))
    )
    base = rest_base_url(server)
    method = METHOD_WADO if server.rest_flavor == "dicomweb" else METHOD_ORTHANC
    committer = ThreadPoolExecutor(max_workers=COMMIT_WORKERS)
    try:
        if server.rest_flavor == "dicomweb":
            return _retrieve_dicomweb(
                DicomwebClient(active, base),
                study_uid,
                series,
                folder,
                progress,
                workers,
                started,
                committer,
            )
        return _retrieve_orthanc(
            OrthancClient(active, base),
            study_uid,
            series,
            folder,
            progress,
            workers,
            started,
            committer,
        )
    except RestError as error:
        return RetrieveResult(
            ok=False,
            method=method,
            diagnosis=error.diagnosis,
            duration_s=time.monotonic() - started,
        )
    except MALFORMED_ANSWER as error:
        return RetrieveResult(
            ok=False,
            method=method,
            diagnosis=malformed_answer(base, error).diagnosis,
            duration_s=time.monotonic() - started,
        )
    finally:
        committer.shutdown(wait=True)
        if own:
            active.close()
