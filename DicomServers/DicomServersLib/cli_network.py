"""DICOM network commands: ``echo``, ``query``, ``retrieve``, ``send``, ``worklist``.

Exit status: 0 when the operation succeeded (``echo``: every step passed; ``send``: every file
stored); 1 when the network or the PACS failed (the diagnosis is printed on stderr); 2 for
invalid input (unknown server, bad date, bad UID…). ``--json`` prints the result value on
stdout in any case. ``query`` and ``retrieve`` go through :mod:`.dispatch`, so ``--via rest``
uses the PACS REST API when it is available.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from typing import Any, TextIO

from .cli import EXIT_FAILURE, EXIT_OK, CliContext, UsageError
from .date_filters import DateRange, parse_last, relative_range
from .dispatch import VIA_CHOICES, DimseBackend, backend_for, choose_via
from .progress import Progress
from .query_model import QueryFilters, QueryResult
from .server import RETRIEVE_METHODS, DicomServer
from .validation import check_date

_CUT_OFF_TEXT = {
    "our_limit": "cut off by this server's search limit ({limit}); narrow the search or raise"
    " --limit",
    "server_limit": "cut off by the PACS's own limit on answers; narrow the search",
    "cancelled": "cancelled before the end",
    "error": "incomplete: the search failed part-way",
}


def _server(context: CliContext) -> DicomServer:
    return context.registry.get(context.args.name)


def _fail(context: CliContext, diagnosis: str) -> int:
    print(f"error: {diagnosis}", file=context.stderr)
    return EXIT_FAILURE


# -- echo -----------------------------------------------------------------------------------


def cmd_echo(context: CliContext) -> int:
    """C-ECHO a server; with --deep also C-FIND and a one-image C-MOVE or C-GET."""
    from .dimse.connection_test import check_connection

    args = context.args
    result = check_connection(_server(context), deep=args.deep, listen_host=args.listen_host)
    if args.json:
        context.print_json(result.to_dict())
    else:
        for step in result.steps:
            state = "skipped" if step.skipped else ("ok" if step.ok else "FAILED")
            status = "" if step.status is None else f" status 0x{step.status:04X}"
            line = f"{step.step:<5} {state:<7} {step.duration_s * 1000:7.0f} ms{status}"
            print(line, file=context.stdout)
            if step.diagnosis and not step.skipped:
                print(f"      {step.diagnosis}", file=context.stdout)
    if not result.ok:
        if not args.json:
            print(f"error: {result.diagnosis}", file=context.stderr)
        return EXIT_FAILURE
    return EXIT_OK


# -- query ----------------------------------------------------------------------------------


def _date_range(args: argparse.Namespace) -> DateRange | None:
    if args.all_dates:
        return DateRange()
    if args.from_date:
        ok, reason = check_date(args.from_date)
        if not ok:
            raise UsageError(f"--from: {reason}")
        return DateRange(start=_dt.date.fromisoformat(args.from_date))
    if args.last:
        try:
            count, unit = parse_last(args.last)
        except ValueError as error:
            raise UsageError(str(error)) from error
        return relative_range(count, unit)
    return None


def _print_studies(context: CliContext, result: QueryResult) -> None:
    for study in result.studies:
        date = study.study_date or "--------"
        modalities = "/".join(study.modalities) or "-"
        line = (
            f"{date} {modalities:<8} {study.patient_name or '-':<28} {study.patient_id or '-':<14}"
            f" {study.accession_number or '-':<12} {study.study_description or '-'}"
        )
        print(line, file=context.stdout)
        print(f"         {study.study_uid}", file=context.stdout)


def _print_series(context: CliContext, result: QueryResult) -> None:
    for series in result.series:
        count = "" if series.instance_count is None else f"{series.instance_count} images"
        line = (
            f"{series.series_number or '-':>4} {series.modality or '-':<4} {count:<11}"
            f" {series.series_description or '-'}  {series.series_uid}"
        )
        print(line, file=context.stdout)


def cmd_query(context: CliContext) -> int:
    """Search studies (or list a study's series with --series)."""
    args = context.args
    server = _server(context)
    backend = backend_for(server, args.via)
    if args.series:
        result = backend.query_series(server, args.series)
    else:
        filters = QueryFilters(
            patient_name=args.patient_name or "",
            patient_id=args.patient_id or "",
            accession_number=args.accession or "",
            modality=args.modality or "",
            study_description=args.description or "",
            study_uid=args.study_uid or "",
            date_range=_date_range(args),
            limit=args.limit,
        )
        result = backend.query_studies(server, filters)
    if args.json:
        context.print_json(result.to_dict())
    elif args.series:
        _print_series(context, result)
    else:
        _print_studies(context, result)
    if not args.json:
        count = len(result.series) if args.series else len(result.studies)
        noun = "series" if args.series else "studies"
        note = f"{count} {noun} in {result.duration_s:.2f} s"
        if result.cut_off:
            note += "; " + _CUT_OFF_TEXT.get(result.cut_off, result.cut_off).format(
                limit=result.limit
            )
        print(note, file=context.stderr)
    if not result.ok:
        return _fail(context, result.diagnosis)
    return EXIT_OK


# -- retrieve -------------------------------------------------------------------------------


class ProgressBar:
    """A one-line progress bar on a terminal (stderr); silent elsewhere."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, value: Progress) -> bool:
        if not self.enabled:
            return True
        total = value.total
        done = value.completed + value.failed + value.warning
        fraction = done / total if total else 0.0
        filled = int(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = max(1e-6, time.monotonic() - self.started)
        speed = value.bytes_done / elapsed / 1e6
        counts = f"{value.completed}" + (f"/{total}" if total else "")
        failed = f" {value.failed} failed" if value.failed else ""
        self.stream.write(
            f"\r[{bar}] {counts} images {value.bytes_done / 1e6:7.1f} MB {speed:6.1f} MB/s{failed} "
        )
        self.stream.flush()
        self.shown = True
        return True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def cmd_retrieve(context: CliContext) -> int:
    """Fetch a study (or some series) into a folder."""
    args = context.args
    server = _server(context)
    series = list(args.series or [])
    if choose_via(server, args.via) == "dimse":
        backend: Any = DimseBackend(
            method=args.method, listen_host=args.listen_host, max_associations=args.associations
        )
    else:
        backend = backend_for(server, args.via)
    bar = ProgressBar(context.stderr)
    try:
        result = backend.retrieve(
            server, args.study_uid, args.dest, series_uids=series, progress=bar
        )
    finally:
        bar.close()
    if args.json:
        context.print_json(result.to_dict())
    else:
        rate = result.bytes_received / max(result.duration_s, 1e-6) / 1e6
        print(
            f"{result.received} received, {result.skipped} already present,"
            f" {result.failed} failed, {result.bytes_received / 1e6:.1f} MB in"
            f" {result.duration_s:.2f} s ({rate:.1f} MB/s) with {result.method}",
            file=context.stdout,
        )
    if not result.ok:
        return _fail(context, result.diagnosis)
    return EXIT_OK


# -- send -----------------------------------------------------------------------------------


def cmd_send(context: CliContext) -> int:
    """C-STORE files and folders to a server."""
    from .dimse.send import send

    args = context.args
    result = send(_server(context), args.paths)
    if args.json:
        context.print_json(result.to_dict())
    else:
        for item in result.items:
            state = "ok" if item.ok else "FAILED"
            note = f"  {item.diagnosis}" if item.diagnosis else ""
            print(f"{state:<6} {item.path}{note}", file=context.stdout)
        sent = sum(1 for item in result.items if item.ok)
        print(f"{sent} of {len(result.items)} file(s) stored", file=context.stderr)
    if not result.ok:
        return _fail(context, result.diagnosis)
    return EXIT_OK


# -- worklist -------------------------------------------------------------------------------


def cmd_worklist(context: CliContext) -> int:
    """Query the modality worklist for a date (today by default)."""
    from .dimse.worklist import find_worklist

    args = context.args
    day = None
    if args.date:
        ok, reason = check_date(args.date)
        if not ok:
            raise UsageError(f"--date: {reason}")
        day = _dt.date.fromisoformat(args.date)
    result = find_worklist(
        _server(context),
        date=day,
        any_date=args.any_date,
        station_ae_title=args.station,
        modality=args.modality or "",
    )
    if args.json:
        context.print_json(result.to_dict())
    else:
        for item in result.items:
            print(
                f"{item.scheduled_date or '--------'} {item.scheduled_time[:4] or '----'}"
                f" {item.modality or '-':<4} {item.scheduled_station_ae_title or '-':<16}"
                f" {item.patient_name or '-':<28} {item.patient_id or '-':<14}"
                f" {item.accession_number or '-':<12} {item.step_description or '-'}",
                file=context.stdout,
            )
        print(f"{len(result.items)} worklist item(s)", file=context.stderr)
    if not result.ok:
        return _fail(context, result.diagnosis)
    return EXIT_OK


# -- registration ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def register(commands: Any) -> None:
    """Add the network commands to the parser."""

    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, description=help_text
        )
        parser.set_defaults(handler=handler)
        parser.add_argument("name", help="server name (see: servers list)")
        return parser

    listen_help = "interface our C-MOVE storage listener binds (default: all)"

    p = add("echo", cmd_echo, "test a server: C-ECHO (with --deep: C-FIND and C-MOVE/C-GET)")
    p.add_argument("--deep", action="store_true", help="also query and retrieve one image")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--listen-host", default="0.0.0.0", help=listen_help)

    p = add("query", cmd_query, "search a server's studies (C-FIND or REST)")
    p.add_argument("--patient-name", metavar="NAME", help="e.g. 'Doe^J*' (wildcards * and ?)")
    p.add_argument("--patient-id", metavar="ID")
    p.add_argument("--accession", metavar="NUMBER")
    p.add_argument("--modality", metavar="CODE", help="e.g. CT")
    p.add_argument("--description", metavar="TEXT", help="study description")
    p.add_argument("--study-uid", metavar="UID")
    dates = p.add_mutually_exclusive_group()
    dates.add_argument("--from", dest="from_date", metavar="YYYY-MM-DD", help="studies since")
    dates.add_argument("--last", metavar="7d|3m|1y", help="studies of the last N days/months/years")
    dates.add_argument("--all-dates", action="store_true", help="ignore the server's date filter")
    p.add_argument(
        "--limit", type=_positive_int, metavar="N", help="at most N studies (0: no limit)"
    )
    p.add_argument("--series", metavar="STUDY_UID", help="list the series of this study instead")
    p.add_argument("--via", choices=VIA_CHOICES, help="protocol (default: REST if enabled)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("retrieve", cmd_retrieve, "fetch a study or some of its series into a folder")
    p.add_argument("study_uid", metavar="STUDY_UID")
    p.add_argument("--series", action="append", metavar="UID", help="only this series (repeat)")
    p.add_argument("--dest", required=True, metavar="DIR", help="destination folder")
    p.add_argument("--method", choices=RETRIEVE_METHODS, help="override the server's method")
    p.add_argument("--associations", type=int, default=2, metavar="N", help="parallel associations")
    p.add_argument("--listen-host", default="0.0.0.0", help=listen_help)
    p.add_argument("--via", choices=VIA_CHOICES, help="protocol (default: REST if enabled)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("send", cmd_send, "C-STORE files or folders to a server")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("worklist", cmd_worklist, "query the modality worklist")
    p.add_argument("--date", metavar="YYYY-MM-DD", help="scheduled date (default: today)")
    p.add_argument("--any-date", action="store_true", help="every scheduled date")
    p.add_argument("--station", metavar="AE", help="scheduled station AE (default: the server's)")
    p.add_argument("--modality", metavar="CODE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
