"""Run the CLI as a user does: a subprocess on a settings file, secrets in memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(
    settings: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m DicomServersLib --settings SETTINGS ARGS…`` and return the result."""
    environment = dict(
        os.environ, PYTHONPATH=str(REPO / "DicomServers"), DICOMSERVERS_SECRET_STORE="memory"
    )
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "DicomServersLib", "--settings", str(settings), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
