"""C-ECHO, the Verification service (PS3.4 Annex A): can we talk DICOM to the server at all?

A passing echo proves the network path, the port, and that the PACS accepts our calling AE
title when calling its AE title. It proves nothing about query or retrieve: use
:func:`~.connection_test.test_connection` for that.
"""

from __future__ import annotations

import time

from pynetdicom import build_context

from DicomServersLib.dimse import diagnosis
from DicomServersLib.dimse.association import (
    Timeouts,
    close_association,
    open_association,
    silence_failure,
)
from DicomServersLib.dimse.outcome import StepResult
from DicomServersLib.dimse.query import NETWORK_FIELDS, require_server_fields
from DicomServersLib.server import DicomServer

__all__ = ["VERIFICATION", "echo"]

VERIFICATION = "1.2.840.10008.1.1"
"""Verification SOP Class UID (PS3.4 A.4)."""


def echo(server: DicomServer, *, timeouts: Timeouts | None = None) -> StepResult:
    """Send one C-ECHO to a server.

    Parameters
    ----------
    server : DicomServer
        The server (called AE, host, port, calling AE).
    timeouts : Timeouts, optional
        Defaults to the server's timeout.

    Returns
    -------
    StepResult
        Step ``echo``: ok, duration, status and, on failure, the diagnosis.

    Raises
    ------
    ValidationError
        A server field the echo needs is invalid (misuse).
    """
    require_server_fields(server, NETWORK_FIELDS)
    timeouts = timeouts or Timeouts.for_server(server)
    started = time.monotonic()
    opened = open_association(
        server,
        [build_context(VERIFICATION)],
        timeouts=timeouts,
        service="C-ECHO",
        required=[VERIFICATION],
    )
    if opened.failure is not None or opened.assoc is None:
        assert opened.failure is not None
        return StepResult.failed("echo", opened.failure, time.monotonic() - started)
    assoc = opened.assoc
    sent = time.monotonic()
    try:
        answer = assoc.send_c_echo()
    finally:
        close_association(assoc)
    duration = time.monotonic() - started
    status = answer.get("Status") if answer is not None else None
    if status is None:
        failure = silence_failure(server, assoc, "C-ECHO", timeouts, time.monotonic() - sent)
        return StepResult.failed("echo", failure, duration)
    status = int(status)
    if diagnosis.status_category(status) in (
        diagnosis.CATEGORY_SUCCESS,
        diagnosis.CATEGORY_WARNING,
    ):
        return StepResult("echo", True, duration, status)
    comment = str(answer.get("ErrorComment", "") or "")
    failure = diagnosis.status_failure(server, "C-ECHO", status, comment, opened.local_host)
    return StepResult.failed("echo", failure, duration)
