"""Run the demo PACS in the foreground: ``python -m DicomServersLib.demo_pacs``.

Example::

    python -m DicomServersLib.demo_pacs --port 11112 --aet DEMOPACS --folder build/demo/pacs \\
        --move SLICER=127.0.0.1:11113

It logs one line per association and stops on Ctrl-C (or SIGTERM). Exit codes: 0 after a
normal stop, 2 for invalid options, 1 when the server cannot start (port in use...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .orthanc import OrthancDemo, OrthancDemoError
from .scp import DEFAULT_AE_TITLE, DEFAULT_MOVE_DESTINATIONS, DemoPacs

DEFAULT_FOLDER = "build/demo/pacs"


def _destination(text: str) -> tuple[str, tuple[str, int]]:
    ae, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not (sep and colon and ae and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"--move: expected AE=HOST:PORT, got {text!r}")
    return ae, (host, int(port))


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--reference-date: expected YYYY-MM-DD, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m DicomServersLib.demo_pacs",
        description="Run the DicomServers demo PACS (sample studies, C-ECHO, C-STORE, C-FIND,"
        " C-GET, C-MOVE, Modality Worklist) in the foreground.",
    )
    parser.add_argument("--folder", default=DEFAULT_FOLDER, help="its folder (%(default)s)")
    parser.add_argument("--aet", default=DEFAULT_AE_TITLE, help="its AE title (%(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=11112, help="DICOM port (%(default)s; 0: any free port)"
    )
    parser.add_argument(
        "--move",
        action="append",
        type=_destination,
        metavar="AE=HOST:PORT",
        help="a C-MOVE destination (repeatable; default "
        + ", ".join(f"{ae}={h}:{p}" for ae, (h, p) in DEFAULT_MOVE_DESTINATIONS.items())
        + ")",
    )
    parser.add_argument("--no-samples", action="store_true", help="do not install the samples")
    parser.add_argument("--reference-date", type=_date, help="'today' of the samples (YYYY-MM-DD)")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds before each answer (a slow PACS)"
    )
    parser.add_argument(
        "--orthanc", action="store_true", help="run the demo on Orthanc (must be installed)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the server record as one line of JSON"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log pynetdicom too")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo PACS until interrupted; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("pynetdicom").setLevel(logging.INFO if args.verbose else logging.WARNING)
    destinations = dict(args.move) if args.move else None
    server: DemoPacs | OrthancDemo
    try:
        if args.orthanc:
            server = OrthancDemo(
                args.folder,
                ae_title=args.aet,
                dicom_port=args.port,
                move_destinations=destinations,
                samples=not args.no_samples,
                reference_date=args.reference_date,
            )
        else:
            server = DemoPacs(
                args.folder,
                ae_title=args.aet,
                host=args.host,
                port=args.port,
                move_destinations=destinations,
                samples=not args.no_samples,
                reference_date=args.reference_date,
                response_delay_s=args.delay,
            )
    except ValueError as error:
        parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        server.start()
    except (OSError, OrthancDemoError) as error:
        print(f"error: the demo PACS did not start: {error}", file=sys.stderr)
        return 1
    try:
        record = server.demo_server_record()
        if args.json:
            print(json.dumps(record.to_dict(include_secrets=True)), flush=True)
        else:
            print(
                f"Demo PACS {record.called_ae_title} on {record.host}:{record.port}"
                f" (storage {record.storage_folder}); Ctrl-C stops it.",
                flush=True,
            )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
