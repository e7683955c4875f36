"""Peers producing very large answers without holding them: 100,000 C-FIND or QIDO-RS matches,
gigabytes of C-GET or WADO-RS images (issue 8 §6).

Everything is generated as it is sent: identifiers and instances are one encoded template whose
UID digits (fixed width) are rewritten per item, and the pixel data of big instances are
repeated blocks. Used by ``Testing/hardening/test_bounded_resources.py`` (functional checks)
and ``bench/memory_bounds.py`` (peak memory figures).
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from DicomServersLib.dicom_compat import write_dataset
from fake_rest import FakeRest, Reply, json_reply
from fault_peers import RawSCP, Stored
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.dsutils import encode

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT = "1.2.826.0.1.3680043.8.498.77"
DIGITS = 8  # fixed-width counter in every generated UID


def uid(kind: int, number: int) -> str:
    """A generated UID: ``<root>.<kind>.1<number on DIGITS digits>`` (fixed width, valid)."""
    return f"{STUDY_ROOT}.{kind}.1{number:0{DIGITS}d}"


PLACEHOLDER = uid(1, 0).encode("ascii")


def study_identifier_template() -> bytes:
    """An encoded STUDY-level C-FIND answer (explicit VR LE) whose StudyInstanceUID is
    :data:`PLACEHOLDER`."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = "20240614"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "ACC00000001"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "PID00000001"
    ds.PatientBirthDate = "19700101"
    ds.StudyDescription = "Generated study"
    ds.ModalitiesInStudy = "CT"
    ds.NumberOfStudyRelatedSeries = "1"
    ds.NumberOfStudyRelatedInstances = "1"
    ds.StudyInstanceUID = uid(1, 0)
    data = encode(ds, False, True)
    assert data is not None and data.count(PLACEHOLDER) == 1
    return data


def many_identifiers(count: int) -> Iterator[bytes]:
    """``count`` distinct study identifiers, made one at a time."""
    template = study_identifier_template()
    head, tail = template.split(PLACEHOLDER)
    for number in range(1, count + 1):
        yield head + uid(1, number).encode("ascii") + tail


def many_studies_peer(count: int) -> RawSCP:
    """A raw C-FIND peer answering every query with ``count`` studies (not started)."""
    return RawSCP(ae_title="MANY", find_answers=lambda identifier: many_identifiers(count))


# -- big instances -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BigInstance:
    """One generated CT instance of ``pixel_bytes`` bytes of pixel data."""

    study_uid: str
    series_uid: str
    sop_uid: str
    pixel_bytes: int


def _header(instance: BigInstance) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = instance.sop_uid
    ds.StudyInstanceUID = instance.study_uid
    ds.SeriesInstanceUID = instance.series_uid
    ds.Modality = "CT"
    ds.PatientName = "BIG^STUDY"
    ds.PatientID = "BIG0001"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    rows = 512
    ds.Rows = rows
    ds.Columns = rows
    ds.NumberOfFrames = instance.pixel_bytes // (rows * rows * 2)
    return ds


def big_instances(total_bytes: int, per_instance: int, study: int = 1) -> list[BigInstance]:
    """Instances of ``per_instance`` bytes of pixels (a multiple of a 512×512 frame) adding up
    to at least ``total_bytes``, in one series."""
    frame = 512 * 512 * 2
    per_instance = max(frame, per_instance // frame * frame)
    count = -(-total_bytes // per_instance)
    return [
        BigInstance(uid(2, study), uid(3, study), uid(4, n), per_instance)
        for n in range(1, count + 1)
    ]


def pixel_chunks(size: int, block: int = 1 << 20) -> Iterator[bytes]:
    """``size`` bytes of pixel data in blocks (one block object, repeated)."""
    data = bytes(range(256)) * (block // 256)
    sent = 0
    while sent < size:
        piece = data if size - sent >= block else data[: size - sent]
        yield piece
        sent += len(piece)


def _pixel_element_header(size: int) -> bytes:
    """(7FE0,0010) OW with a 32-bit length, explicit VR little endian."""
    return struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, size)


def data_set_bytes(instance: BigInstance) -> bytes:
    """The whole data set of an instance, in memory (for a C-STORE of the raw peer)."""
    head = encode(_header(instance), False, True)
    assert head is not None
    return (
        head
        + _pixel_element_header(instance.pixel_bytes)
        + b"".join(pixel_chunks(instance.pixel_bytes))
    )


def part10_chunks(instance: BigInstance) -> Iterator[bytes]:
    """The instance as a Part-10 file, generated in chunks (for WADO-RS)."""
    ds = _header(instance)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    write_dataset(ds, buffer)
    yield buffer.getvalue() + _pixel_element_header(instance.pixel_bytes)
    yield from pixel_chunks(instance.pixel_bytes)


class LazyStores:
    """A sequence of C-STOREs made on demand from one template data set (memory: one copy)."""

    def __init__(self, instances: list[BigInstance]) -> None:
        self.instances = instances
        self.template = bytearray(data_set_bytes(instances[0]))
        self.first = instances[0].sop_uid.encode()
        self.offset = bytes(self.template).index(self.first)

    def __len__(self) -> int:
        return len(self.instances)

    def __iter__(self) -> Iterator[Stored]:
        for instance in self.instances:
            self.template[self.offset : self.offset + len(self.first)] = instance.sop_uid.encode()
            yield Stored(CT_IMAGE, instance.sop_uid, bytes(self.template))


def big_get_peer(instances: list[BigInstance]) -> RawSCP:
    """A raw C-GET peer sending ``instances`` (generated one at a time; not started)."""
    return RawSCP(ae_title="BIGPACS", stores=LazyStores(instances))  # type: ignore[arg-type]


# -- REST ------------------------------------------------------------------------------------------


def qido_study(number: int) -> dict[str, object]:
    """One DICOM JSON study of a QIDO-RS answer."""
    return {
        "0020000D": {"vr": "UI", "Value": [uid(1, number)]},
        "00080020": {"vr": "DA", "Value": ["20240614"]},
        "00080030": {"vr": "TM", "Value": ["120000"]},
        "00080050": {"vr": "SH", "Value": [f"ACC{number:08d}"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00100020": {"vr": "LO", "Value": [f"PID{number:08d}"]},
        "00081030": {"vr": "LO", "Value": ["Generated study"]},
        "00080061": {"vr": "CS", "Value": ["CT"]},
        "00201206": {"vr": "IS", "Value": [1]},
        "00201208": {"vr": "IS", "Value": [1]},
    }


def qido_pages(fake: FakeRest, count: int) -> None:
    """Serve ``/dicom-web/studies`` with ``count`` studies, honouring limit and offset."""

    def studies(request, match) -> Reply:
        offset = int((request.query.get("offset") or ["0"])[0])
        limit = int((request.query.get("limit") or [str(count)])[0]) or count
        numbers = range(offset + 1, min(count, offset + limit) + 1)

        def body() -> Iterator[bytes]:
            yield b"["
            for index, number in enumerate(numbers):
                yield (b"," if index else b"") + json.dumps(qido_study(number)).encode()
            yield b"]"

        return Reply(200, {"Content-Type": "application/dicom+json"}, body())

    fake.route("GET", "/dicom-web/studies", studies)


def wado_big_study(
    fake: FakeRest, instances: list[BigInstance], boundary: str = "BIGB0UND"
) -> None:
    """Serve QIDO series and a WADO-RS series answer streaming ``instances``."""
    first = instances[0]
    qido = json.dumps(
        [
            {
                "0020000E": {"vr": "UI", "Value": [first.series_uid]},
                "00201209": {"vr": "IS", "Value": [len(instances)]},
            }
        ]
    )
    fake.route("GET", rf"/dicom-web/studies/{first.study_uid}/series", json_reply(qido))

    def body() -> Iterator[bytes]:
        mark = boundary.encode()
        for instance in instances:
            yield b"--" + mark + b"\r\nContent-Type: application/dicom\r\n\r\n"
            yield from part10_chunks(instance)
            yield b"\r\n"
        yield b"--" + mark + b"--\r\n"

    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    fake.route(
        "GET",
        rf"/dicom-web/studies/{first.study_uid}/series/{first.series_uid}",
        lambda request, match: Reply(200, {"Content-Type": content_type}, body()),
    )


# -- peers in their own process (so that a measurement sees the client alone) ----------------------


def _serve(kind: str, args: tuple[int, ...], conn: Connection) -> None:
    """Run one big peer until told to stop (the target of :func:`peer_process`)."""
    if kind == "c-find":
        peer = many_studies_peer(args[0]).start()
        port, stop = peer.port, peer.stop
    elif kind == "c-get":
        peer = big_get_peer(big_instances(*args)).start()
        port, stop = peer.port, peer.stop
    else:
        fake = FakeRest()
        if kind == "qido":
            qido_pages(fake, args[0])
        else:
            wado_big_study(fake, big_instances(*args))
        port, stop = fake.port, fake.stop
    conn.send(port)
    try:
        conn.recv()
    except EOFError:
        pass
    stop()


@contextlib.contextmanager
def peer_process(kind: str, *args: int) -> Iterator[int]:
    """Run a big peer in a child process on 127.0.0.1; yield its port.

    ``kind``: ``c-find`` (count), ``c-get`` (total bytes, bytes per instance), ``qido``
    (count) or ``wado-rs`` (total bytes, bytes per instance).
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(kind, args, child), daemon=True)
    process.start()
    try:
        if not parent.poll(120):
            raise RuntimeError(f"the {kind} peer did not start")
        yield int(parent.recv())
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
