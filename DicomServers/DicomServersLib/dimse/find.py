"""C-FIND (PS3.4 C.4.1 and K.4.1) on a :class:`~.upper_layer.DirectAssociation`.

:class:`FindSession` opens one association to a server for one or more information models and
runs any number of C-FIND requests on it. Each request streams its matches to a callback as
raw elements (:mod:`.elements`), honours a result limit by sending C-CANCEL (PS3.7 §9.3.2.3)
when more matches arrive than wanted, lets a progress callback cancel, and tells apart our
limit, the server's own limit (Orthanc's ``LimitFindResults`` ends with status Cancel although
nobody cancelled) and a user cancel. Every failure is returned as a
:class:`~.outcome.Failure` value with a diagnosis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from types import TracebackType

from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from DicomServersLib.dimse import commands, diagnosis, outcome
from DicomServersLib.dimse.association import Timeouts, diagnose_direct, open_direct
from DicomServersLib.dimse.elements import Elements, MalformedDataError, TextDecoder, read_elements
from DicomServersLib.dimse.outcome import Failure
from DicomServersLib.dimse.upper_layer import (
    DirectAssociation,
    PeerTimeoutError,
    ProtocolError,
    RequestedContext,
    UpperLayerError,
)
from DicomServersLib.progress import Progress, ProgressCallback, report
from DicomServersLib.query_model import (
    CUT_OFF_CANCELLED,
    CUT_OFF_OUR_LIMIT,
    CUT_OFF_SERVER_LIMIT,
)
from DicomServersLib.server import DicomServer

__all__ = [
    "MODALITY_WORKLIST_FIND",
    "STUDY_ROOT_FIND",
    "FindRun",
    "FindSession",
    "MatchHandler",
]

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
"""Study Root Query/Retrieve Information Model - FIND (PS3.4 C.6.2.1)."""

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
"""Modality Worklist Information Model - FIND (PS3.4 K.6.1)."""

CANCEL_GRACE_S = 5.0
"""How long a PACS may keep answering after C-CANCEL before we abort."""
PROGRESS_EVERY = 100


class Match:
    """One C-FIND answer: its encoded identifier, read lazily.

    Attributes
    ----------
    raw : bytes
        The identifier as received.
    explicit_vr : bool
        Its encoding.
    """

    __slots__ = ("_elements", "explicit_vr", "raw")

    def __init__(self, raw: bytes, explicit_vr: bool) -> None:
        self.raw = raw
        self.explicit_vr = explicit_vr
        self._elements: Elements | None = None

    @property
    def elements(self) -> Elements:
        """The top-level elements (:func:`~.elements.read_elements`)."""
        if self._elements is None:
            try:
                self._elements = read_elements(self.raw, self.explicit_vr)
            except MalformedDataError as error:
                raise ProtocolError(f"malformed C-FIND answer: {error}") from error
        return self._elements

    @property
    def decoder(self) -> TextDecoder:
        """The text decoder of the answer's character set."""
        return TextDecoder.for_elements(self.elements)

    def dataset(self) -> Dataset:
        """The identifier decoded by pydicom (for nested sequences, e.g. worklist items)."""
        try:
            return decode(BytesIO(self.raw), not self.explicit_vr, True)
        except Exception as error:  # pydicom raises many types on bad data
            raise ProtocolError(f"malformed C-FIND answer: {error}") from error


#: Receives each match, in arrival order.
MatchHandler = Callable[[Match], None]


@dataclass
class FindRun:
    """The outcome of one C-FIND request.

    Attributes
    ----------
    matches : int
        Matches handed to the callback.
    status : int or None
        The final status (None when the association failed first).
    cut_off : str
        "" or a ``query_model.CUT_OFF_*`` reason.
    failure : Failure or None
        Why the request failed (matches received before are kept).
    duration_s : float
        Wall-clock time of the request.
    """

    matches: int = 0
    status: int | None = None
    cut_off: str = ""
    failure: Failure | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the request completed (possibly cut off) without failure."""
        return self.failure is None


class FindSession:
    """One association to a server for C-FIND requests.

    Parameters
    ----------
    server : DicomServer
        The server (host, port, AE titles).
    models : sequence of str
        Information models to negotiate (e.g. :data:`STUDY_ROOT_FIND`).
    timeouts : Timeouts
        Connection, ACSE, idle and overall timeouts.
    service : str, optional
        ``C-FIND`` or ``MWL``, for diagnoses.
    called_ae_title : str, optional
        Call this AE title instead of ``server.called_ae_title`` (the worklist AE).

    Notes
    -----
    Use as a context manager; :attr:`failure` tells whether the association opened.
    """

    def __init__(
        self,
        server: DicomServer,
        models: Sequence[str],
        timeouts: Timeouts,
        *,
        service: str = "C-FIND",
        called_ae_title: str | None = None,
    ) -> None:
        self.server = server
        if called_ae_title and called_ae_title != server.called_ae_title:
            self.server = server.copy(called_ae_title=called_ae_title)
        self.models = list(models)
        self.timeouts = timeouts
        self.service = service
        self.assoc: DirectAssociation | None = None
        self.failure: Failure | None = None
        self.local_host: str | None = None
        self._message_id = 0
        self._started = time.monotonic()

    # -- association -------------------------------------------------------------------------

    def open(self) -> Failure | None:
        """Open the association; return the failure, or None when it is established."""
        self._started = time.monotonic()
        overall = self.timeouts.overall_s
        self.assoc, self.failure = open_direct(
            self.server,
            [RequestedContext(model) for model in self.models],
            timeouts=self.timeouts,
            service=self.service,
            deadline=None if overall is None else self._started + overall,
        )
        if self.assoc is not None:
            self.local_host = self.assoc.local_host
        return self.failure

    def close(self) -> None:
        """Release the association (abort if the peer does not answer)."""
        if self.assoc is not None:
            self.assoc.release()
            self.assoc = None

    def __enter__(self) -> FindSession:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.assoc is not None:
            if exc_type is None:
                self.assoc.release()
            else:
                self.assoc.abort()
            self.assoc = None

    def _diagnose(self, error: UpperLayerError, during: str) -> Failure:
        return diagnose_direct(self.server, error, during, self.timeouts, self.local_host)

    # -- C-FIND ------------------------------------------------------------------------------

    def find(
        self,
        model: str,
        identifier: Dataset,
        on_match: MatchHandler,
        *,
        limit: int = 0,
        progress: ProgressCallback | None = None,
        what: str = "matches",
    ) -> FindRun:
        """Send one C-FIND request and stream its matches to ``on_match``.

        Parameters
        ----------
        model : str
            The information model (must be among the session's ``models``).
        identifier : pydicom.dataset.Dataset
            Query keys and return keys (PS3.4 C.2.2).
        on_match : MatchHandler
            Called with each match (:class:`Match`), in arrival order.
        limit : int, optional
            Keep at most this many matches (0: all). When one more arrives, C-CANCEL is sent
            and the run is cut off with reason ``our_limit``.
        progress : ProgressCallback, optional
            Told the number of matches every :data:`PROGRESS_EVERY` matches; returning False
            cancels (C-CANCEL, cut-off reason ``cancelled``).
        what : str, optional
            Plural noun for progress messages (``studies``, ``series``…).

        Returns
        -------
        FindRun
            Matches, final status, cut-off reason, or the failure.

        Raises
        ------
        RuntimeError
            The session is not open (misuse).
        """
        run = FindRun()
        started = time.monotonic()
        assoc = self.assoc
        if assoc is None:
            raise RuntimeError("FindSession.find() needs an open association")
        context = assoc.context_for(model)
        if context is None:
            run.failure = diagnosis.service_not_supported(self.server, self.service)
            return run
        self._message_id = self._message_id % 0xFFFF + 1
        message_id = self._message_id
        data = encode(identifier, not context.explicit_vr, True)
        if data is None:
            raise ValueError("identifier: pydicom could not encode the query keys")
        command = commands.find_rq(model, message_id)
        cancel_sent = False
        original_deadline = assoc.deadline
        try:
            assoc.send_message(context.context_id, command, data)
            while True:
                message = assoc.receive_message()
                if message.command_field != commands.C_FIND_RSP:
                    raise ProtocolError(
                        f"unexpected command 0x{message.command_field or 0:04X} in a C-FIND"
                    )
                status = message.status
                if status is None:
                    raise ProtocolError("C-FIND response without a status")
                category = diagnosis.status_category(status)
                if category == diagnosis.CATEGORY_PENDING:
                    if cancel_sent:
                        continue  # answers already on their way when C-CANCEL left
                    if limit and run.matches >= limit:
                        run.cut_off = CUT_OFF_OUR_LIMIT
                        cancel_sent = self._cancel(assoc, context.context_id, message_id)
                        continue
                    if message.dataset is None:
                        continue  # a pending answer must carry an identifier; skip it
                    on_match(Match(message.dataset, context.explicit_vr))
                    run.matches += 1
                    if progress is not None and run.matches % PROGRESS_EVERY == 0:
                        keep_going = report(
                            progress,
                            Progress(completed=run.matches, message=f"{run.matches} {what}"),
                        )
                        if not keep_going:
                            run.cut_off = CUT_OFF_CANCELLED
                            cancel_sent = self._cancel(assoc, context.context_id, message_id)
                    continue
                run.status = status
                self._final(run, status, category, cancel_sent, message.text(0x0902))
                break
        except PeerTimeoutError as error:
            if cancel_sent:
                # The PACS ignored C-CANCEL: we have what we wanted; end the association.
                assoc.abort()
                self.assoc = None
            else:
                run.failure = self._diagnose(error, self.service)
                self._drop()
        except UpperLayerError as error:
            run.failure = self._diagnose(error, self.service)
            self._drop()
        if self.assoc is not None:
            self.assoc.deadline = original_deadline
        run.duration_s = time.monotonic() - started
        if run.failure is None and progress is not None:
            report(
                progress,
                Progress(completed=run.matches, remaining=0, message=f"{run.matches} {what}"),
            )
        return run

    def _final(
        self, run: FindRun, status: int, category: str, cancel_sent: bool, comment: str
    ) -> None:
        """Interpret the final status of a C-FIND."""
        if category == diagnosis.CATEGORY_SUCCESS:
            return
        if category == diagnosis.CATEGORY_CANCEL:
            if not cancel_sent:
                run.cut_off = CUT_OFF_SERVER_LIMIT
            return
        if status == diagnosis.RESPONSE_LIMIT_REACHED:
            run.cut_off = CUT_OFF_SERVER_LIMIT
            return
        if category == diagnosis.CATEGORY_WARNING:
            return
        if run.matches and 0xA700 <= status <= 0xA7FF:
            # Out of resources after some answers: the PACS's way of saying "too many".
            run.cut_off = CUT_OFF_SERVER_LIMIT
        run.failure = diagnosis.status_failure(
            self.server, self.service, status, comment, self.local_host
        )

    def _cancel(self, assoc: DirectAssociation, context_id: int, message_id: int) -> bool:
        """Send C-CANCEL-RQ (PS3.7 §9.3.2.3) and give the PACS a grace period to stop."""
        assoc.send_message(context_id, commands.cancel_rq(message_id))
        grace = time.monotonic() + CANCEL_GRACE_S
        assoc.deadline = grace if assoc.deadline is None else min(assoc.deadline, grace)
        return True

    def _drop(self) -> None:
        """Forget an association that failed (abort it if still open)."""
        if self.assoc is not None:
            self.assoc.abort()
            self.assoc = None


def failure_kind_is_connection(failure: Failure | None) -> bool:
    """True when a failure means the server could not be reached or refused us."""
    return failure is not None and failure.kind in (
        outcome.HOST_UNKNOWN,
        outcome.REFUSED,
        outcome.CONNECT_TIMEOUT,
        outcome.UNREACHABLE,
        outcome.NO_ANSWER,
        outcome.REJECTED,
    )
