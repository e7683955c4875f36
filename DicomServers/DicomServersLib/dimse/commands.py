"""DIMSE-C command sets (PS3.7 §9.3 and Annex E), encoded for :mod:`.upper_layer`.

Command sets are always implicit VR little endian (PS3.7 §6.3.1); elements are written in
ascending tag order. Only the requests and responses this package sends are here.
"""

from __future__ import annotations

import struct

from DicomServersLib.dimse.upper_layer import Message, encode_command

__all__ = [
    "C_CANCEL_RQ",
    "C_ECHO_RQ",
    "C_ECHO_RSP",
    "C_FIND_RQ",
    "C_FIND_RSP",
    "C_GET_RQ",
    "C_GET_RSP",
    "C_MOVE_RQ",
    "C_MOVE_RSP",
    "C_STORE_RQ",
    "C_STORE_RSP",
    "cancel_rq",
    "echo_rsp",
    "find_rq",
    "get_rq",
    "response",
    "move_rq",
    "store_rsp",
    "sub_operation_counts",
]

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF

DATA_SET_PRESENT = 0x0000
NO_DATA_SET = 0x0101
PRIORITY_MEDIUM = 0x0000

_AFFECTED_SOP_CLASS = 0x0002
_COMMAND_FIELD = 0x0100
_MESSAGE_ID = 0x0110
_RESPONDED_TO = 0x0120
_MOVE_DESTINATION = 0x0600
_PRIORITY = 0x0700
_DATA_SET_TYPE = 0x0800
_STATUS = 0x0900
_AFFECTED_SOP_INSTANCE = 0x1000


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def _ui(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _ae(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def _request(
    command: int, sop_class: str, message_id: int, extra: list[tuple[int, bytes]]
) -> bytes:
    elements = [
        (_AFFECTED_SOP_CLASS, _ui(sop_class)),
        (_COMMAND_FIELD, _us(command)),
        (_MESSAGE_ID, _us(message_id)),
        *extra,
    ]
    return encode_command(sorted(elements))


def find_rq(sop_class: str, message_id: int) -> bytes:
    """C-FIND-RQ (PS3.7 §9.3.2.1), medium priority, with an identifier."""
    return _request(
        C_FIND_RQ,
        sop_class,
        message_id,
        [(_PRIORITY, _us(PRIORITY_MEDIUM)), (_DATA_SET_TYPE, _us(DATA_SET_PRESENT))],
    )


def get_rq(sop_class: str, message_id: int) -> bytes:
    """C-GET-RQ (PS3.7 §9.3.3.1), medium priority, with an identifier."""
    return _request(
        C_GET_RQ,
        sop_class,
        message_id,
        [(_PRIORITY, _us(PRIORITY_MEDIUM)), (_DATA_SET_TYPE, _us(DATA_SET_PRESENT))],
    )


def move_rq(sop_class: str, message_id: int, destination: str) -> bytes:
    """C-MOVE-RQ (PS3.7 §9.3.4.1) to a Move Destination AE title, with an identifier."""
    return _request(
        C_MOVE_RQ,
        sop_class,
        message_id,
        [
            (_MOVE_DESTINATION, _ae(destination)),
            (_PRIORITY, _us(PRIORITY_MEDIUM)),
            (_DATA_SET_TYPE, _us(DATA_SET_PRESENT)),
        ],
    )


def cancel_rq(message_id: int) -> bytes:
    """C-CANCEL-RQ (PS3.7 §9.3.2.3) for the request with ``message_id``."""
    return encode_command(
        [
            (_COMMAND_FIELD, _us(C_CANCEL_RQ)),
            (_RESPONDED_TO, _us(message_id)),
            (_DATA_SET_TYPE, _us(NO_DATA_SET)),
        ]
    )


def response(request: Message, command: int, status: int) -> bytes:
    """A response (``command`` field) to any request, with its status and affected SOP."""
    elements = [
        (_COMMAND_FIELD, _us(command)),
        (_RESPONDED_TO, request.command.get(_MESSAGE_ID, _us(0))),
        (_DATA_SET_TYPE, _us(NO_DATA_SET)),
        (_STATUS, _us(status)),
    ]
    sop_class = request.command.get(_AFFECTED_SOP_CLASS)
    if sop_class is not None:
        elements.append((_AFFECTED_SOP_CLASS, sop_class))
    sop_instance = request.command.get(_AFFECTED_SOP_INSTANCE)
    if sop_instance is not None:
        elements.append((_AFFECTED_SOP_INSTANCE, sop_instance))
    return encode_command(sorted(elements))


def store_rsp(request: Message, status: int) -> bytes:
    """C-STORE-RSP (PS3.7 §9.3.1.2) answering a C-STORE-RQ."""
    return response(request, C_STORE_RSP, status)


def echo_rsp(request: Message, status: int = 0) -> bytes:
    """C-ECHO-RSP (PS3.7 §9.3.5.2) answering a C-ECHO-RQ."""
    return response(request, C_ECHO_RSP, status)


def sub_operation_counts(message: Message) -> tuple[int | None, int | None, int | None, int | None]:
    """(remaining, completed, failed, warning) sub-operations of a C-GET/C-MOVE-RSP
    (0000,1020)-(0000,1023), None where absent."""
    return (
        message.us(0x1020),
        message.us(0x1021),
        message.us(0x1022),
        message.us(0x1023),
    )
