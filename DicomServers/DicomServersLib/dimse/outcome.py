"""The values DIMSE operations return when the network does not cooperate.

Network outcomes are values, not exceptions (see the style guide): a refused connection, a
rejected association, a failure status or a timeout becomes a :class:`Failure` with a
plain-language diagnosis that tells the user what to do. Misuse (an invalid UID, a server
record that does not validate) raises instead.

A connection test is a list of :class:`StepResult` values, one per step (C-ECHO, C-FIND,
C-MOVE or C-GET), gathered in a :class:`ConnectionTestResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Why an operation failed. One word each, stable: the UI and the CLI's --json use them.
HOST_UNKNOWN = "host_unknown"  # the host name does not resolve
REFUSED = "refused"  # nothing listens on host:port
CONNECT_TIMEOUT = "connect_timeout"  # no TCP answer at all (firewall, wrong address)
UNREACHABLE = "unreachable"  # no route to the host / network down
NO_ANSWER = "no_answer"  # TCP connected, but no answer to the association request
REJECTED = "rejected"  # A-ASSOCIATE-RJ (PS3.8 §9.3.4)
ABORTED = "aborted"  # A-ABORT or A-P-ABORT from the peer, or the connection dropped
NOT_SUPPORTED = "not_supported"  # no accepted presentation context for the service
STATUS = "status"  # a DIMSE failure status (PS3.7 Annex C, PS3.4)
NOT_FOUND = "not_found"  # the PACS holds nothing matching the request
IDLE_TIMEOUT = "idle_timeout"  # no message from the peer within the idle timeout
OVERALL_TIMEOUT = "overall_timeout"  # the whole operation took longer than allowed
CANCELLED = "cancelled"  # the user (progress callback) cancelled
LOCAL = "local"  # our side: storage port busy, disk full, unwritable folder
PROTOCOL = "protocol"  # the peer broke the protocol (malformed PDU or message)
TLS = "tls"  # DICOM TLS: certificate not trusted, refused, unreadable file, not TLS on the port

FAILURE_KINDS: tuple[str, ...] = (
    HOST_UNKNOWN,
    REFUSED,
    CONNECT_TIMEOUT,
    UNREACHABLE,
    NO_ANSWER,
    REJECTED,
    ABORTED,
    NOT_SUPPORTED,
    STATUS,
    NOT_FOUND,
    IDLE_TIMEOUT,
    OVERALL_TIMEOUT,
    CANCELLED,
    LOCAL,
    PROTOCOL,
    TLS,
)


@dataclass(frozen=True)
class Failure:
    """Why a DIMSE operation did not succeed.

    Attributes
    ----------
    kind : str
        One of :data:`FAILURE_KINDS`.
    diagnosis : str
        What happened and what the user should do, in plain language.
    status : int or None
        The DICOM status that caused it, when there was one.
    detail : str
        The technical wording (e.g. ``A-ASSOCIATE-RJ rejected-permanent, service-user, called
        AE title not recognised``), for logs and support.
    """

    kind: str
    diagnosis: str
    status: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "kind": self.kind,
            "diagnosis": self.diagnosis,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass
class StepResult:
    """One step of a connection test (or a plain echo).

    Attributes
    ----------
    step : str
        ``echo``, ``find``, ``move`` or ``get``.
    ok : bool
        True when the step passed.
    duration_s : float
        How long it took.
    status : int or None
        The final DICOM status, when the peer sent one.
    diagnosis : str
        Plain-language explanation and advice when it failed; a short note when it passed
        with something worth knowing (e.g. "the PACS holds no study to move").
    detail : str
        Technical wording of the failure, if any.
    kind : str
        The failure kind (one of :data:`FAILURE_KINDS`), "" when it passed.
    skipped : bool
        True when the step was not run (an earlier step failed, or nothing to test with).
    """

    step: str
    ok: bool
    duration_s: float = 0.0
    status: int | None = None
    diagnosis: str = ""
    detail: str = ""
    kind: str = ""
    skipped: bool = False

    @classmethod
    def failed(cls, step: str, failure: Failure, duration_s: float) -> StepResult:
        """Return a failed step built from a :class:`Failure`."""
        return cls(
            step=step,
            ok=False,
            duration_s=duration_s,
            status=failure.status,
            diagnosis=failure.diagnosis,
            detail=failure.detail,
            kind=failure.kind,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "step": self.step,
            "ok": self.ok,
            "skipped": self.skipped,
            "duration_s": round(self.duration_s, 3),
            "status": self.status,
            "status_hex": None if self.status is None else f"0x{self.status:04X}",
            "kind": self.kind,
            "diagnosis": self.diagnosis,
            "detail": self.detail,
        }


@dataclass
class ConnectionTestResult:
    """The outcome of a connection test: one result per step, in order."""

    server_name: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step that ran passed and none was skipped after a failure."""
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def diagnosis(self) -> str:
        """The diagnosis of the first failed step, or "" when all passed."""
        for step in self.steps:
            if not step.ok and not step.skipped:
                return step.diagnosis
        return ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "server": self.server_name,
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "steps": [step.to_dict() for step in self.steps],
        }
