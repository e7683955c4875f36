"""Presentation contexts for storage: which SOP classes and transfer syntaxes we take.

Received instances are written as they arrive, without decoding (see :mod:`.instance_store`),
so any little-endian transfer syntax is fine: uncompressed, or one of the encapsulated
(compressed) syntaxes of PS3.5 §A.4. Offering the compressed syntaxes lets a PACS send images
as it stores them instead of decompressing them for us. Deflated and big-endian syntaxes are
not taken: the header of such a data set cannot be read without inflating or swapping it.

A C-GET requestor proposes a storage context per SOP class it expects, taking the SCP role
(PS3.4 C.4.3.3, PS3.7 §D.3.3.4); :func:`get_storage_contexts` builds them within the limit of
128 presentation contexts per association (PS3.8 §9.3.2.2). Our storage listener (the C-MOVE
destination) picks a transfer syntax for each context proposed to it with
:func:`choose_storage_syntax`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from pydicom.uid import UID
from pynetdicom import StoragePresentationContexts

from DicomServersLib.dimse.upper_layer import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    RequestedContext,
)

__all__ = [
    "COMPRESSED_TRANSFER_SYNTAXES",
    "STORAGE_TRANSFER_SYNTAXES",
    "UNCOMPRESSED_TRANSFER_SYNTAXES",
    "VERIFICATION",
    "choose_storage_syntax",
    "common_storage_sop_classes",
    "get_storage_contexts",
    "is_storage_sop_class",
]

VERIFICATION = "1.2.840.10008.1.1"
"""Verification SOP Class UID (PS3.4 A.4)."""

UNCOMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)


def _known_to_pydicom(syntaxes: tuple[str, ...]) -> tuple[str, ...]:
    """Keep the transfer syntaxes the installed pydicom knows.

    pydicom 2.4 (Slicer 5.10) does not know HTJ2K; pynetdicom 2.1 then fails every C-STORE
    sub-operation of an association where such a context was accepted ("UID is not a transfer
    syntax", status 0xA702), so we never propose one it cannot describe.
    """
    return tuple(s for s in syntaxes if UID(s).is_transfer_syntax)


COMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = _known_to_pydicom(
    (
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless, first-order prediction (SV1)
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline (8-bit lossy)
        "1.2.840.10008.1.2.4.51",  # JPEG Extended (12-bit lossy)
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
        "1.2.840.10008.1.2.4.91",  # JPEG 2000
        "1.2.840.10008.1.2.5",  # RLE Lossless
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.203",  # HTJ2K
    )
)

STORAGE_TRANSFER_SYNTAXES: tuple[str, ...] = (
    UNCOMPRESSED_TRANSFER_SYNTAXES + COMPRESSED_TRANSFER_SYNTAXES
)
"""Every transfer syntax we store as received."""

_STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."
_DICOM_ROOT = "1.2.840.10008."


@lru_cache(maxsize=1)
def _common() -> tuple[str, ...]:
    return tuple(str(cx.abstract_syntax) for cx in StoragePresentationContexts)


def common_storage_sop_classes() -> list[str]:
    """The storage SOP classes pynetdicom lists as common (about 120), for unknown content."""
    return list(_common())


def is_storage_sop_class(uid: str) -> bool:
    """True for a storage SOP class: a standard one, or a private (non-DICOM-root) one."""
    return uid.startswith(_STORAGE_ROOT) or uid in _common() or not uid.startswith(_DICOM_ROOT)


def choose_storage_syntax(abstract_syntax: str, transfer_syntaxes: Sequence[str]) -> str | None:
    """Pick the transfer syntax our storage listener accepts for a proposed context.

    Verification and storage SOP classes are accepted with the first proposed transfer syntax
    we can store as received (the proposer lists its preferred one first, usually the one
    its file is stored in); anything else is refused.
    """
    if abstract_syntax == VERIFICATION:
        return next((s for s in transfer_syntaxes if s in UNCOMPRESSED_TRANSFER_SYNTAXES), None)
    if not is_storage_sop_class(abstract_syntax):
        return None
    return next((s for s in transfer_syntaxes if s in STORAGE_TRANSFER_SYNTAXES), None)


def get_storage_contexts(sop_classes: Sequence[str], budget: int = 127) -> list[RequestedContext]:
    """Storage contexts for a C-GET requestor: each SOP class uncompressed, then compressed.

    Each SOP class first gets one context offering the uncompressed syntaxes; while the budget
    allows, each then gets one context per compressed syntax, so the PACS can pick the one
    its file is stored in (an acceptor chooses a single transfer syntax per context).

    Parameters
    ----------
    sop_classes : sequence of str
        The SOP Class UIDs expected (e.g. from SOPClassesInStudy), or
        :func:`common_storage_sop_classes` when unknown.
    budget : int, optional
        How many contexts may be used (128 minus the Q/R model's).

    Returns
    -------
    list of RequestedContext
        At most ``budget`` contexts, all asking for the SCP role.
    """
    classes = list(dict.fromkeys(sop_classes))[:budget]
    contexts = [
        RequestedContext(uid, UNCOMPRESSED_TRANSFER_SYNTAXES, scp_role=True) for uid in classes
    ]
    room = budget - len(contexts)
    per_class = len(COMPRESSED_TRANSFER_SYNTAXES)
    for uid in classes:
        if room < per_class:
            break
        contexts.extend(
            RequestedContext(uid, (syntax,), scp_role=True)
            for syntax in COMPRESSED_TRANSFER_SYNTAXES
        )
        room -= per_class
    return contexts
