"""The pure parts of the DIMSE layer: data set reading, character sets, PDUs, command sets.

Encodings are checked against independent implementations (pydicom writes the data sets,
pynetdicom decodes our PDUs and command sets), not against our own reading of the standard.
"""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from DicomServersLib.dimse import commands
from DicomServersLib.dimse.contexts import (
    COMPRESSED_TRANSFER_SYNTAXES,
    choose_storage_syntax,
    get_storage_contexts,
)
from DicomServersLib.dimse.elements import (
    MalformedDataError,
    TextDecoder,
    clean_text,
    read_elements,
    tag,
)
from DicomServersLib.dimse.instance_store import file_meta
from DicomServersLib.dimse.upper_layer import (
    AssociationRequest,
    Message,
    RequestedContext,
    decode_associate_ac,
    decode_associate_rq,
    decode_command,
    encode_associate_ac,
    encode_associate_rq,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from rig.studies import SAMPLE_PATIENTS

CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def _encoded(ds: Dataset, implicit: bool) -> bytes:
    data = encode(ds, implicit, True)
    assert data is not None
    return data


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("patient", SAMPLE_PATIENTS, ids=[p.patient_id for p in SAMPLE_PATIENTS])
def test_names_decode_in_their_character_set(patient, implicit: bool) -> None:
    ds = Dataset()
    if patient.character_set is not None:
        charset = patient.character_set
        ds.SpecificCharacterSet = list(charset) if isinstance(charset, tuple) else charset
    ds.PatientName = patient.name
    ds.StudyDescription = "Schädel" if patient.character_set == "ISO_IR 100" else "Head"
    elements = read_elements(_encoded(ds, implicit), not implicit)
    decoder = TextDecoder.for_elements(elements)
    assert decoder.person_name(elements[tag(0x0010, 0x0010)][1]) == patient.name
    assert decoder.text(elements[tag(0x0008, 0x1030)][1]) == str(ds.StudyDescription)


def _element(group: int, element: int, vr: bytes, value: bytes, implicit: bool) -> bytes:
    undefined = value is None
    length = 0xFFFFFFFF if undefined else len(value)
    head = struct.pack("<HH", group, element)
    if implicit or group == 0xFFFE:
        return head + struct.pack("<L", length) + (b"" if undefined else value)
    if vr in (b"SQ", b"OB", b"UN"):
        return head + vr + b"\0\0" + struct.pack("<L", length) + (b"" if undefined else value)
    return head + vr + struct.pack("<H", length) + value


def _undefined_length_sequences(implicit: bool) -> bytes:
    """Nested sequences and items of undefined length, written byte by byte (PS3.5 §7.5)."""

    def el(group: int, element: int, vr: bytes, value: bytes | None) -> bytes:
        return _element(group, element, vr, value, implicit)  # type: ignore[arg-type]

    item_end = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
    sequence_end = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    inner_item = el(0x0008, 0x0104, b"LO", b"inner ")
    inner = (
        el(0x0040, 0xA043, b"SQ", None)
        + el(0xFFFE, 0xE000, b"", inner_item)  # an item of defined length
        + sequence_end
    )
    outer = (
        el(0x0008, 0x1032, b"SQ", None)
        + el(0xFFFE, 0xE000, b"", None)
        + el(0x0008, 0x0100, b"SH", b"1 ")
        + inner
        + item_end
        + sequence_end
    )
    return (
        el(0x0008, 0x0050, b"SH", b"A1") + outer + el(0x0010, 0x0020, b"LO", b"after-the-sequence")
    )


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_undefined_length_sequences_are_skipped_whole(implicit: bool) -> None:
    data = _undefined_length_sequences(implicit)
    elements = read_elements(data, not implicit)
    assert set(elements) == {tag(0x0008, 0x0050), tag(0x0008, 0x1032), tag(0x0010, 0x0020)}
    assert TextDecoder.ascii(elements[tag(0x0010, 0x0020)][1]) == "after-the-sequence"


def test_header_reading_stops_at_the_series_uid() -> None:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.InstanceNumber = 7
    ds.BitsAllocated = 16
    ds.PixelData = b"\0" * 64
    elements = read_elements(_encoded(ds, False), True, stop_after=tag(0x0020, 0x000E))
    assert tag(0x0020, 0x0013) not in elements and tag(0x7FE0, 0x0010) not in elements
    assert TextDecoder.ascii(elements[tag(0x0020, 0x000E)][1]) == "1.2.3.4.5"


@pytest.mark.parametrize(
    "data",
    [b"\x10\x00\x10\x00PN\x20\x00short", b"\x10\x00", b"\xfe\xff\x00\xe0\xff\xff\xff\xff"],
    ids=["value-past-end", "truncated-header", "stray-item"],
)
def test_malformed_data_sets_raise(data: bytes) -> None:
    with pytest.raises(MalformedDataError):
        read_elements(data, True)


def test_control_characters_never_come_through() -> None:
    assert clean_text("Evil^Eve\r\n\x1b[31m ") == "Evil^Eve\ufffd\ufffd\ufffd[31m"


def test_associate_rq_is_what_pynetdicom_reads() -> None:
    contexts = [
        RequestedContext(FIND),
        RequestedContext(CT, ("1.2.840.10008.1.2.4.70",), scp_role=True),
    ]
    pdu = encode_associate_rq("ORTHANC", "DSTEST", contexts, max_pdu_length=65536)
    decoded = A_ASSOCIATE_RQ()
    decoded.decode(pdu)
    assert decoded.called_ae_title.strip() == "ORTHANC"
    assert decoded.calling_ae_title.strip() == "DSTEST"
    items = decoded.presentation_context
    assert [(i.context_id, str(i.abstract_syntax)) for i in items] == [(1, FIND), (3, CT)]
    assert [str(t) for t in items[1].transfer_syntax] == ["1.2.840.10008.1.2.4.70"]
    user = decoded.user_information
    assert user.maximum_length == 65536
    roles = {str(r.sop_class_uid): (r.scu_role, r.scp_role) for r in user.role_selection.values()}
    assert roles == {CT: (False, True)}
    # and our own acceptor reads it the same way
    request = decode_associate_rq(pdu[6:])
    assert request.contexts[1] == (3, CT, ["1.2.840.10008.1.2.4.70"])
    assert request.max_pdu_length == 65536


def test_associate_ac_round_trip_with_pynetdicom() -> None:
    request = AssociationRequest(
        "DSMOVE", "ORTHANC", [(1, CT, ["1.2.840.10008.1.2.1"]), (3, "1.2.3.4", ["1.2.3"])], 0
    )
    pdu = encode_associate_ac(request, {1: "1.2.840.10008.1.2.1", 3: None}, 1 << 20)
    decoded = A_ASSOCIATE_AC()
    decoded.decode(pdu)
    results = {
        i.context_id: (i.result, str(i.transfer_syntax)) for i in decoded.presentation_context
    }
    assert results[1] == (0, "1.2.840.10008.1.2.1")
    assert results[3][0] == 3  # abstract syntax not supported
    accepted, max_length = decode_associate_ac(
        pdu[6:], [RequestedContext(CT), RequestedContext("1.2.3.4")]
    )
    assert list(accepted) == [1] and accepted[1].transfer_syntax == "1.2.840.10008.1.2.1"
    assert max_length == 1 << 20


def test_command_sets_decode_with_pynetdicom() -> None:
    find = decode(BytesIO(commands.find_rq(FIND, 7)), True, True)
    assert (find.CommandField, find.MessageID, find.CommandDataSetType) == (0x0020, 7, 0)
    assert find.AffectedSOPClassUID == FIND
    move = decode(BytesIO(commands.move_rq(FIND, 9, "DSMOVE")), True, True)
    assert (move.CommandField, move.MoveDestination.strip()) == (0x0021, "DSMOVE")
    cancel = decode(BytesIO(commands.cancel_rq(9)), True, True)
    assert (cancel.CommandField, cancel.MessageIDBeingRespondedTo) == (0x0FFF, 9)
    assert cancel.CommandDataSetType == 0x0101
    request = Message(1, decode_command(commands.get_rq(FIND, 3)), None)
    request.command[0x1000] = b"1.2.3\0"
    answer = decode(BytesIO(commands.store_rsp(request, 0xA700)), True, True)
    assert (answer.CommandField, answer.Status, answer.MessageIDBeingRespondedTo) == (
        0x8001,
        0xA700,
        3,
    )
    assert answer.AffectedSOPInstanceUID == "1.2.3"


def test_file_meta_makes_a_part10_file_pydicom_reads() -> None:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Doe^Jane"
    raw = file_meta(CT, "1.2.3.4", "1.2.840.10008.1.2", "ORTHANC") + _encoded(ds, True)
    read = dcmread(BytesIO(raw))
    assert read.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert read.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert read.file_meta.SourceApplicationEntityTitle.strip() == "ORTHANC"
    assert read.PatientName == "Doe^Jane"
    group_length = struct.unpack("<L", raw[140:144])[0]
    assert len(raw) - 144 - group_length == len(_encoded(ds, True))


def test_storage_contexts_stay_within_128() -> None:
    many = [f"1.2.840.10008.5.1.4.1.1.{n}" for n in range(200)]
    assert len(get_storage_contexts(many)) == 127
    two = get_storage_contexts([CT, "1.2.840.10008.5.1.4.1.1.4"])
    assert len(two) == 2 * (1 + len(COMPRESSED_TRANSFER_SYNTAXES))
    assert all(context.scp_role for context in two)


@pytest.mark.parametrize(
    ("abstract", "offered", "chosen"),
    [
        (CT, ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1"], "1.2.840.10008.1.2.4.70"),
        (CT, ["1.2.840.10008.1.2.2"], None),  # big endian: not stored as received
        (CT, ["1.2.840.10008.1.2.1.99"], None),  # deflated
        (FIND, ["1.2.840.10008.1.2"], None),  # not a storage class
        ("1.2.840.10008.1.1", ["1.2.840.10008.1.2"], "1.2.840.10008.1.2"),
        ("1.3.6.1.4.1.9590.100.1.2.1", ["1.2.840.10008.1.2"], "1.2.840.10008.1.2"),  # private
    ],
)
def test_listener_chooses_storable_syntaxes(
    abstract: str, offered: list[str], chosen: str | None
) -> None:
    assert choose_storage_syntax(abstract, offered) == chosen
