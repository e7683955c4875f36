"""What a retrieve or a send returns, whatever the protocol (C-GET, C-MOVE, WADO-RS, REST,
folder, C-STORE, STOW-RS). Network outcomes are values with a plain-language diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RetrieveResult:
    """The outcome of a retrieve: what arrived, what was already there, what failed."""

    ok: bool = True
    diagnosis: str = ""
    method: str = ""  # c-get | c-move | wado-rs | orthanc-rest | folder
    files: list[Path] = field(default_factory=list)  # every file of the request now on disk
    received: int = 0  # instances transferred by this run
    skipped: int = 0  # instances already present, not transferred again
    failed: int = 0
    warning: int = 0
    bytes_received: int = 0
    cancelled: bool = False
    status: int | None = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "method": self.method,
            "received": self.received,
            "skipped": self.skipped,
            "failed": self.failed,
            "warning": self.warning,
            "bytes_received": self.bytes_received,
            "cancelled": self.cancelled,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "files": [str(p) for p in self.files],
        }


@dataclass
class SendItemResult:
    """The outcome of sending one file."""

    path: Path
    ok: bool
    status: int | None = None
    sop_instance_uid: str = ""
    diagnosis: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "path": str(self.path),
            "ok": self.ok,
            "status": self.status,
            "sop_instance_uid": self.sop_instance_uid,
            "diagnosis": self.diagnosis,
        }


@dataclass
class SendResult:
    """The outcome of a send: one result per file."""

    items: list[SendItemResult] = field(default_factory=list)
    ok: bool = True
    diagnosis: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return {
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "duration_s": round(self.duration_s, 3),
            "items": [i.to_dict() for i in self.items],
        }
