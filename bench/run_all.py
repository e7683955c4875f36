"""Run every benchmark in bench/ one after the other and print their reports.

Each benchmark generates its own data, runs the reference tool in the same run and prints
ratios. ``--quick`` passes ``--quick`` to each (smaller data); ``--only NAME`` runs one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this benchmark (file stem)"
    )
    args = parser.parse_args()
    scripts = sorted(
        p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_")
    )
    if args.only:
        scripts = [p for p in scripts if p.stem in args.only]
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        command = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        if subprocess.run(command, env=env, check=False).returncode != 0:
            failed.append(script.stem)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
