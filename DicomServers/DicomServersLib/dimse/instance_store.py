"""Instances received by C-STORE (from C-GET or C-MOVE) and how they reach the disk.

A received instance is kept as the bytes the PACS sent (never decoded and re-encoded) plus a File Meta Information group
(PS3.10 §7.1) naming its SOP class, SOP instance and the transfer syntax of the presentation
context it came on. Only the header is read, to learn the Study, Series and SOP Instance UIDs
that name the file: ``<dest>/<Study>/<Series>/<SOP>.dcm``, each UID validated before it
becomes part of a path (:func:`DicomServersLib.dicom_files.instance_path`).

:class:`InstanceWriter` writes files atomically (temporary name, then rename) in a
background thread, so the network thread answers the C-STORE at once and the next instance
arrives while the previous one is being written. A bounded queue keeps memory small.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from DicomServersLib.dicom_files import write_atomic
from DicomServersLib.dimse.elements import MalformedDataError, TextDecoder, read_elements, tag
from DicomServersLib.dimse.upper_layer import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    Message,
)

__all__ = ["InstanceWriter", "ReceivedInstance", "UnreadableInstanceError", "file_meta"]

_STUDY_UID = tag(0x0020, 0x000D)
_SERIES_UID = tag(0x0020, 0x000E)
_SOP_UID = tag(0x0008, 0x0018)
_SOP_CLASS = tag(0x0008, 0x0016)
_PREAMBLE = bytes(128) + b"DICM"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_UNREADABLE_SYNTAXES = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})


class UnreadableInstanceError(ValueError):
    """A received data set's header cannot be read (unsupported encoding or truncated)."""


@dataclass
class ReceivedInstance:
    """One instance received by C-STORE, still encoded as sent.

    Attributes
    ----------
    study_uid, series_uid, sop_uid, sop_class_uid : str
        From the data set's header (not yet validated as UIDs).
    transfer_syntax : str
        The transfer syntax of its presentation context.
    meta : bytes
        Preamble, ``DICM`` and the encoded File Meta Information.
    data : bytes
        The data set as received.
    move_originator_ae_title : str
        (0000,1030) of the C-STORE request, "" when absent (C-GET, or a PACS that omits it).
    move_originator_message_id : int or None
        (0000,1031) of the C-STORE request.
    """

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    meta: bytes
    data: bytes
    move_originator_ae_title: str = ""
    move_originator_message_id: int | None = None

    @property
    def size(self) -> int:
        """Bytes of the file that will be written."""
        return len(self.meta) + len(self.data)

    @classmethod
    def from_message(
        cls, message: Message, transfer_syntax: str, source_ae_title: str = ""
    ) -> ReceivedInstance:
        """Build from a C-STORE-RQ received on a direct association.

        Parameters
        ----------
        message : Message
            The C-STORE-RQ with its data set.
        transfer_syntax : str
            The transfer syntax of the presentation context it came on.
        source_ae_title : str, optional
            The sender's AE title, recorded in the file meta (0002,0016).

        Raises
        ------
        UnreadableInstanceError
            No data set, big-endian or deflated data, or a header that cannot be read.
        """
        if message.dataset is None:
            raise UnreadableInstanceError("C-STORE request without a data set")
        if transfer_syntax in _UNREADABLE_SYNTAXES:
            raise UnreadableInstanceError(
                f"transfer syntax {transfer_syntax} is not stored as received"
            )
        data = message.dataset
        try:
            elements = read_elements(
                data, transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN, stop_after=_SERIES_UID
            )
        except MalformedDataError as error:
            raise UnreadableInstanceError(f"unreadable header: {error}") from error

        def text(element_tag: int) -> str:
            found = elements.get(element_tag)
            return TextDecoder.ascii(found[1]) if found else ""

        sop_class = text(_SOP_CLASS) or message.text(0x0002)
        sop_uid = text(_SOP_UID) or message.text(0x1000)
        return cls(
            study_uid=text(_STUDY_UID),
            series_uid=text(_SERIES_UID),
            sop_uid=sop_uid,
            sop_class_uid=sop_class,
            transfer_syntax=transfer_syntax,
            meta=file_meta(sop_class, sop_uid, transfer_syntax, source_ae_title),
            data=data,
            move_originator_ae_title=message.text(0x1030),
            move_originator_message_id=message.us(0x1031),
        )


def _meta_element(element: int, vr: bytes, value: bytes, pad: bytes = b"\0") -> bytes:
    if len(value) % 2:
        value += pad
    if vr == b"OB":
        return struct.pack("<HH2sHL", 2, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 2, element, vr, len(value)) + value


def file_meta(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, source_ae_title: str = ""
) -> bytes:
    """Return the preamble, ``DICM`` and File Meta Information of a Part-10 file (PS3.10 §7.1).

    Parameters
    ----------
    sop_class_uid, sop_instance_uid : str
        Media Storage SOP Class / Instance UIDs (0002,0002) / (0002,0003).
    transfer_syntax : str
        Transfer Syntax UID (0002,0010) of the data set that follows.
    source_ae_title : str, optional
        Source Application Entity Title (0002,0016), the AE that sent the instance.

    Returns
    -------
    bytes
        Everything before the data set.
    """
    body = _meta_element(0x0001, b"OB", b"\x00\x01")
    body += _meta_element(0x0002, b"UI", sop_class_uid.encode("ascii", "replace"))
    body += _meta_element(0x0003, b"UI", sop_instance_uid.encode("ascii", "replace"))
    body += _meta_element(0x0010, b"UI", transfer_syntax.encode("ascii", "replace"))
    body += _meta_element(0x0012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii"))
    body += _meta_element(0x0013, b"SH", IMPLEMENTATION_VERSION_NAME.encode("ascii"), b" ")
    if source_ae_title:
        body += _meta_element(0x0016, b"AE", source_ae_title.encode("ascii", "replace")[:16], b" ")
    length = struct.pack("<HH2sHL", 2, 0, b"UL", 4, len(body))
    return _PREAMBLE + length + body


class InstanceWriter:
    """Writes received instances atomically in a background thread.

    Parameters
    ----------
    max_queued_bytes : int, optional
        :meth:`submit` blocks while more than this is waiting to be written.

    Attributes
    ----------
    written : list of pathlib.Path
        Files written, in order.
    bytes_written : int
        Their total size.
    errors : list of (pathlib.Path, OSError)
        Files that could not be written (disk full, permissions…).
    """

    def __init__(self, max_queued_bytes: int = 64 << 20) -> None:
        self.written: list[Path] = []
        self.bytes_written = 0
        self.errors: list[tuple[Path, OSError]] = []
        self._queue: queue.Queue[tuple[Path, Sequence[bytes]] | None] = queue.Queue()
        self._max_queued = max_queued_bytes
        self._queued = 0
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def failed(self) -> bool:
        """True once a write failed (the destination is probably full or read-only)."""
        return bool(self.errors)

    def submit(self, path: Path, chunks: Sequence[bytes]) -> None:
        """Queue a file; returns at once unless too much is already waiting.

        Raises
        ------
        RuntimeError
            The writer is closed (misuse).
        """
        if self._closed:
            raise RuntimeError("InstanceWriter.submit() after close()")
        size = sum(len(c) for c in chunks)
        with self._room:
            # Wait for room; a file larger than the limit waits for an empty queue.
            self._room.wait_for(
                lambda: self._queued == 0 or self._queued + size <= self._max_queued
            )
            self._queued += size
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="DicomServers-writer", daemon=True
                )
                self._thread.start()
        self._queue.put((path, chunks))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            path, chunks = item
            size = sum(len(c) for c in chunks)
            try:
                write_atomic(path, chunks)
            except OSError as error:
                with self._lock:
                    self.errors.append((path, error))
            else:
                with self._lock:
                    self.written.append(path)
                    self.bytes_written += size
            finally:
                with self._room:
                    self._queued -= size
                    self._room.notify_all()

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        self._closed = True
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()
