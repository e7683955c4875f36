"""Fault injection for the hardening tests: a connection cutter, a raw DICOM peer, a watcher.

- :class:`CutProxy` relays TCP on loopback and cuts a connection after a given number of bytes
  in one direction: a PACS dying in the middle of a PDU, an HTTP body or a multipart part.
- :class:`RawSCP` is a scripted DICOM acceptor built on our own upper layer
  (:class:`DicomServersLib.dimse.upper_layer.DirectAssociation`): it answers C-FIND, C-GET and
  C-MOVE with whatever a test gives it, including what pynetdicom refuses to send (UIDs with
  ``../``, over 64 characters or with a backslash; truncated or garbage data sets; broken PDUs).
- :class:`DirWatcher` scans a destination folder while a retrieve runs and records every
  ``.dcm`` it ever saw that was not complete: "no partial file is ever visible".
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from DicomServersLib.dicom_files import TEMP_PREFIX
from DicomServersLib.dimse import commands
from DicomServersLib.dimse.upper_layer import (
    DirectAssociation,
    Message,
    UpperLayerError,
    encode_command,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

LOOPBACK = "127.0.0.1"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
PENDING = 0xFF00
SUCCESS = 0x0000


# -- the connection cutter -------------------------------------------------------------------


class CutProxy:
    """A loopback TCP relay to ``target_port`` that can cut connections part-way.

    Parameters
    ----------
    target_port : int
        Where connections are relayed (on 127.0.0.1).
    cut_after : int or None
        Cut a connection (both directions, RST-free shutdown) once this many bytes went
        through in the ``direction`` watched; None relays everything.
    direction : str
        ``"down"`` counts bytes from the target to the client (a PACS answering), ``"up"``
        bytes from the client to the target (a PACS sending C-STOREs to our listener).
    on_cut : callable, optional
        Called when a connection is cut (e.g. to SIGKILL the PACS at that very byte).

    Attributes
    ----------
    cuts : int
        How many connections were cut.
    """

    def __init__(
        self,
        target_port: int,
        cut_after: int | None = None,
        *,
        direction: str = "down",
        on_cut: Callable[[], object] | None = None,
    ) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.direction = direction
        self.on_cut = on_cut
        self.cuts = 0
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self.listener.getsockname()[1])
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True, name="CutProxy")
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((LOOPBACK, self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        with self._lock:
            self._connections += [client, upstream]
        limit = self.cut_after
        cut = threading.Event()

        def close_both() -> None:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        def pump(source: socket.socket, sink: socket.socket, watched: bool) -> None:
            sent = 0
            try:
                while not cut.is_set():
                    data = source.recv(65536)
                    if not data:
                        break
                    if watched and limit is not None and sent + len(data) >= limit:
                        sink.sendall(data[: max(0, limit - sent)])
                        with self._lock:
                            self.cuts += 1
                        cut.set()
                        if self.on_cut is not None:
                            self.on_cut()
                        break
                    sink.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                close_both()

        down = threading.Thread(
            target=pump, args=(upstream, client, self.direction == "down"), daemon=True
        )
        down.start()
        pump(client, upstream, self.direction == "up")
        down.join(10)
        client.close()
        upstream.close()

    def stop(self) -> None:
        """Stop accepting and close every relayed connection."""
        self.listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# -- the watcher -----------------------------------------------------------------------------


class DirWatcher:
    """Scan ``folder`` every few milliseconds; record each visible ``.dcm`` that is not whole.

    A file is whole when pydicom reads it to the end and its SOP Instance UID is its name.
    Temporary files (``.part-*``) are ignored: they are the way files are written.

    Attributes
    ----------
    partial : list of str
        Descriptions of the incomplete files seen (must stay empty).
    checked : int
        How many distinct ``.dcm`` files were checked.
    """

    def __init__(self, folder: Path, interval_s: float = 0.005) -> None:
        self.folder = folder
        self.interval_s = interval_s
        self.partial: list[str] = []
        self._seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="DirWatcher")

    @property
    def checked(self) -> int:
        return len(self._seen)

    def __enter__(self) -> DirWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.scan()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(self.interval_s)

    def scan(self) -> None:
        if not self.folder.exists():
            return
        for path in self.folder.rglob("*.dcm"):
            if path.name.startswith(TEMP_PREFIX) or path in self._seen:
                continue
            problem = incomplete(path)
            self._seen.add(path)
            if problem:
                self.partial.append(f"{path}: {problem}")


def incomplete(path: Path) -> str:
    """Why ``path`` is not a whole DICOM file named after its SOP Instance UID ("" if it is)."""
    try:
        ds = dcmread(path)
        ds.PixelData  # noqa: B018 - the last element must be there in full
        if str(ds.SOPInstanceUID) != path.stem:
            return f"SOPInstanceUID {ds.SOPInstanceUID} is not its name"
    except FileNotFoundError:
        return ""  # removed by the test's cleanup between listing and reading
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return ""


def temporaries(folder: Path) -> list[Path]:
    """Temporary files left anywhere under ``folder``."""
    return sorted(folder.rglob(f"{TEMP_PREFIX}*")) if folder.exists() else []


def dcm_files(folder: Path) -> list[Path]:
    """Every ``.dcm`` under ``folder``."""
    return sorted(folder.rglob("*.dcm")) if folder.exists() else []


def data_set_bytes(path: Path) -> bytes:
    """The data set of a Part-10 file (after its File Meta Information)."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM", f"{path} is not a Part-10 file"
    group_length = int.from_bytes(raw[140:144], "little")
    return raw[144 + group_length :]


# -- the raw DICOM peer -----------------------------------------------------------------------


@dataclass
class Stored:
    """One C-STORE the raw peer sends: data set bytes (already encoded) and command UIDs."""

    sop_class_uid: str
    sop_instance_uid: str
    data: bytes


def stored_from(ds: Dataset, *, sop_instance_uid: str | None = None) -> Stored:
    """Encode a data set (explicit VR little endian) for :class:`RawSCP`."""
    data = encode(ds, False, True)
    assert data is not None
    return Stored(str(ds.SOPClassUID), sop_instance_uid or str(ds.SOPInstanceUID), data)


def _ui(value: str) -> bytes:
    raw = value.encode("latin-1")
    return raw + b"\0" if len(raw) % 2 else raw


def store_rq(message_id: int, item: Stored) -> bytes:
    """A C-STORE-RQ command (PS3.7 §9.3.1.1) carrying any SOP Instance UID, valid or not."""
    return encode_command(
        [
            (0x0002, _ui(item.sop_class_uid)),
            (0x0100, struct.pack("<H", commands.C_STORE_RQ)),
            (0x0110, struct.pack("<H", message_id)),
            (0x0700, struct.pack("<H", 0)),
            (0x0800, struct.pack("<H", 0)),
            (0x1000, _ui(item.sop_instance_uid)),
        ]
    )


def sub_rsp(request: Message, command: int, status: int, counts: Sequence[int]) -> bytes:
    """A C-GET/C-MOVE-RSP with sub-operation counts (remaining, completed, failed, warning)."""
    elements = [
        (0x0002, request.command.get(0x0002, _ui("1.2"))),
        (0x0100, struct.pack("<H", command)),
        (0x0120, request.command.get(0x0110, b"\0\0")),
        (0x0800, struct.pack("<H", 0x0101)),
        (0x0900, struct.pack("<H", status)),
    ]
    for element, value in zip((0x1020, 0x1021, 0x1022, 0x1023), counts, strict=True):
        elements.append((element, struct.pack("<H", value)))
    return encode_command(sorted(elements))


def find_rsp(request: Message, status: int) -> bytes:
    """A C-FIND-RSP, with a data set when ``status`` is pending."""
    elements = [
        (0x0002, request.command.get(0x0002, _ui("1.2"))),
        (0x0100, struct.pack("<H", commands.C_FIND_RSP)),
        (0x0120, request.command.get(0x0110, b"\0\0")),
        (0x0800, struct.pack("<H", 0x0000 if status == PENDING else 0x0101)),
        (0x0900, struct.pack("<H", status)),
    ]
    return encode_command(sorted(elements))


@dataclass
class RawSCP:
    """A scripted Q/R SCP on 127.0.0.1 speaking through our own upper layer.

    Parameters
    ----------
    ae_title : str
        Its AE title (any called AE title is accepted).
    find_answers : callable or sequence of bytes
        Encoded identifiers (explicit VR little endian) answered to each C-FIND as pending
        results; a callable gets the request's identifier bytes.
    stores : sequence of Stored
        What a C-GET sends back as C-STOREs, in order.
    raw_after_stores : bytes or None
        Bytes written on the socket after the C-STOREs instead of the final C-GET-RSP (a
        broken PDU); the connection is then closed.
    final_status : int
        Status of the final C-GET-RSP.

    Attributes
    ----------
    received : list of str
        The services requested (``C-FIND``, ``C-GET``...).
    store_statuses : list of int
        The status our client answered to each C-STORE.
    """

    ae_title: str = "RAWPACS"
    find_answers: Callable[[bytes], Iterable[bytes]] | Sequence[bytes] = ()
    stores: Sequence[Stored] = ()
    raw_after_stores: bytes | None = None
    final_status: int = SUCCESS
    received: list[str] = field(default_factory=list)
    store_statuses: list[int] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._listener: socket.socket | None = None
        self._open: list[DirectAssociation] = []

    @property
    def host(self) -> str:
        return LOOPBACK

    def start(self) -> RawSCP:
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True, name="RawSCP").start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for assoc in list(self._open):
            assoc.abort()

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    @staticmethod
    def _choose(abstract: str, syntaxes: Sequence[str]) -> str | None:
        for preferred in (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN):
            if preferred in syntaxes:
                return preferred
        return None

    def _handle(self, sock: socket.socket) -> None:
        try:
            assoc = DirectAssociation.accept(sock, self._choose, acse_timeout=10, idle_timeout=10)
        except UpperLayerError:
            return
        self._open.append(assoc)
        try:
            while True:
                message = assoc.receive_message()
                field_ = message.command_field
                if field_ == commands.C_FIND_RQ:
                    self.received.append("C-FIND")
                    self._find(assoc, message)
                elif field_ == commands.C_GET_RQ:
                    self.received.append("C-GET")
                    if not self._get(assoc, message):
                        return
                elif field_ == commands.C_ECHO_RQ:
                    assoc.send_message(message.context_id, commands.echo_rsp(message))
                elif field_ == commands.C_CANCEL_RQ:
                    continue
                else:
                    assoc.abort()
                    return
        except UpperLayerError:
            return
        finally:
            with contextlib.suppress(Exception):
                assoc.abort()

    def _find(self, assoc: DirectAssociation, message: Message) -> None:
        answers = self.find_answers
        items = answers(message.dataset or b"") if callable(answers) else answers
        for item in items:
            assoc.send_message(message.context_id, find_rsp(message, PENDING), item)
        assoc.send_message(message.context_id, find_rsp(message, SUCCESS))

    def _get(self, assoc: DirectAssociation, message: Message) -> bool:
        total = len(self.stores)  # iterated lazily: a generated sequence is never held whole
        failed = 0
        for index, item in enumerate(self.stores):
            context = next(
                (c for c in assoc.accepted.values() if c.abstract_syntax == item.sop_class_uid),
                None,
            )
            if context is None:
                failed += 1
                continue
            assoc.send_message(context.context_id, store_rq(index + 1, item), item.data)
            answer = assoc.receive_message()
            status = answer.status if answer.status is not None else -1
            self.store_statuses.append(status)
            if status != SUCCESS:
                failed += 1
            remaining = total - index - 1
            assoc.send_message(
                message.context_id,
                sub_rsp(
                    message, commands.C_GET_RSP, PENDING, (remaining, index + 1 - failed, failed, 0)
                ),
            )
        if self.raw_after_stores is not None:
            with contextlib.suppress(OSError):
                assoc._sock.sendall(self.raw_after_stores)  # a broken peer writes raw bytes
                time.sleep(0.2)
            assoc.abort()
            return False
        status = self.final_status if not failed else 0xB000
        assoc.send_message(
            message.context_id,
            sub_rsp(message, commands.C_GET_RSP, status, (0, total - failed, failed, 0)),
        )
        return True


def qr_answers(datasets: Sequence[Dataset]) -> Callable[[Dataset], list[Dataset]]:
    """C-FIND answers of a plain Study Root PACS holding ``datasets`` (for FakeQRSCP).

    STUDY level: the study with SOPClassesInStudy; SERIES: each series with its instance
    count; IMAGE: each instance of the series asked for.
    """

    def answer(identifier: Dataset) -> list[Dataset]:
        level = str(identifier.get("QueryRetrieveLevel", "STUDY"))
        study = str(identifier.get("StudyInstanceUID", "") or "")
        chosen = [ds for ds in datasets if not study or ds.StudyInstanceUID == study]
        answers: list[Dataset] = []
        if level == "STUDY":
            for uid in dict.fromkeys(ds.StudyInstanceUID for ds in chosen):
                item = Dataset()
                item.QueryRetrieveLevel = "STUDY"
                item.StudyInstanceUID = uid
                classes = sorted({str(ds.SOPClassUID) for ds in chosen})
                item.SOPClassesInStudy = classes if len(classes) > 1 else classes[0]
                answers.append(item)
        elif level == "SERIES":
            for uid in dict.fromkeys(ds.SeriesInstanceUID for ds in chosen):
                item = Dataset()
                item.QueryRetrieveLevel = "SERIES"
                item.StudyInstanceUID = study
                item.SeriesInstanceUID = uid
                item.NumberOfSeriesRelatedInstances = sum(
                    1 for ds in chosen if ds.SeriesInstanceUID == uid
                )
                answers.append(item)
        else:
            series = str(identifier.get("SeriesInstanceUID", "") or "")
            for ds in chosen:
                if series and ds.SeriesInstanceUID != series:
                    continue
                item = Dataset()
                item.QueryRetrieveLevel = "IMAGE"
                item.StudyInstanceUID = ds.StudyInstanceUID
                item.SeriesInstanceUID = ds.SeriesInstanceUID
                item.SOPInstanceUID = ds.SOPInstanceUID
                item.SOPClassUID = ds.SOPClassUID
                answers.append(item)
        return answers

    return answer
