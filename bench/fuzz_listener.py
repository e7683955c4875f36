"""Fuzz the notification listener for as long as asked (issue 8 §5; ``make test`` runs 100,000).

The validation path of ``POST /notify`` (the listener's ``parse_body``, ``resolve_server`` and
``event_from_payload``) gets ``--inputs`` seeded random bodies; the real HTTP listener on
127.0.0.1 gets ``--http`` whole random requests. Generators and properties are those of
``Testing/hardening/listener_fuzz.py``: every input is refused with a reason or accepted as a
valid event, nothing raises, no answer is a 500, the listener survives.

Run: ``.venv/bin/python bench/fuzz_listener.py --inputs 1000000 [--http 20000] [--seed 1]``;
``--quick``: 100,000 and 2,000. Exit status 1 if a property failed (the inputs are printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(REPO / "DicomServers"),
    str(REPO / "Testing"),
    str(REPO / "Testing" / "hardening"),
]

from listener_fuzz import fuzz_http, fuzz_validation  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="bodies for validation")
    parser.add_argument("--http", type=int, default=None, help="HTTP requests (inputs / 50)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="100,000 and 2,000 inputs")
    args = parser.parse_args()
    inputs = 100_000 if args.quick else args.inputs
    http = 2_000 if args.quick else (args.http if args.http is not None else inputs // 50)
    failures = []
    report = fuzz_validation(inputs, seed=args.seed)
    print(report.line("validation path"), flush=True)
    failures += report.failures
    report = fuzz_http(http, seed=args.seed + 1)
    print(report.line("real HTTP listener"), flush=True)
    failures += report.failures
    for failure in failures[:20]:
        print("FAILED:", failure)
    print(f"{len(failures)} property failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
