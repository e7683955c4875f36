"""``studies NAME [--refresh] [--full] [--json]``: a server's study list from its REST cache.

Prints the cached list at once, with its sync information (last synced, the mode used, what
changed). The first time, or with ``--refresh``, the cache is refreshed first: incrementally
when the server moved by at most its cache threshold, else completely; ``--full`` forces a
complete refresh. If a refresh fails, the cached list is still printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from .cli import EXIT_FAILURE, EXIT_OK, CliContext, UsageError
from .query_model import StudyRecord
from .rest.cache import StudyCache, SyncState
from .rest.sync import SyncResult, refresh
from .server import DicomServer


def require_rest(server: DicomServer) -> None:
    """Refuse a server whose PACS REST API is off or has no URL (exit status 2)."""
    if not server.rest_enabled:
        raise UsageError(
            f"rest_enabled: the PACS REST API is off for {server.name!r}; turn it on with"
            f" `servers set {server.name!r} rest_enabled=true rest_url=...`"
        )
    if not server.rest_url.strip():
        raise UsageError(f"rest_url: {server.name!r} has no PACS REST URL")


def _when(stamp: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp or "never"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def describe_sync(state: SyncState, limit: int) -> str:
    """Return the one-line sync summary shown above the list."""
    if not state.last_sync:
        return "never synced"
    text = (
        f"last synced {_when(state.last_sync)} ({state.mode}: {state.reason});"
        f" +{state.added} new, {state.updated} updated, -{state.removed} removed"
    )
    if state.cut_off:
        text += f"; only the {limit} most recent studies (REST limit)"
    return text


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) >= 8 else value


def _time(value: str) -> str:
    return f"{value[:2]}:{value[2:4]}" if len(value) >= 4 else value


def _row(study: StudyRecord) -> str:
    return (
        f"{_date(study.study_date):<10}  {_time(study.study_time):<5}  "
        f"{study.patient_name[:28]:<28}  {study.patient_id[:14]:<14}  "
        f"{study.accession_number[:12]:<12}  {'/'.join(study.modalities)[:8]:<8}  "
        f"{study.study_description}"
    )


def cmd_studies(context: CliContext) -> int:
    """Print a server's cached study list, refreshing it first when asked or never synced."""
    args = context.args
    server = context.registry.get(args.name)
    require_rest(server)
    result: SyncResult | None = None
    with StudyCache.open(server) as cache:
        if args.refresh or args.full or not cache.state().last_sync:
            result = refresh(server, cache=cache, full=args.full)
        state = cache.state()
        studies = cache.studies()
    if args.json:
        data: dict[str, Any] = {
            "server": server.name,
            "sync": state.to_dict(),
            "refresh": result.to_dict() if result is not None else None,
            "studies": [s.to_dict() for s in studies],
        }
        context.print_json(data)
    else:
        out = context.stdout
        print(
            f"{server.name}: {len(studies)} studies; {describe_sync(state, server.rest_limit)}",
            file=out,
        )
        if studies:
            header = (
                f"{'DATE':<10}  {'TIME':<5}  {'PATIENT':<28}  {'PATIENT ID':<14}  "
                f"{'ACCESSION':<12}  {'MOD':<8}  DESCRIPTION"
            )
            print(header, file=out)
            for study in studies:
                print(_row(study), file=out)
    if result is not None and not result.ok:
        print(f"error: the refresh failed: {result.diagnosis}", file=context.stderr)
        if state.last_sync:
            print("(the list above is the cache of the last successful sync)", file=context.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(commands: Any) -> None:
    """Add the ``studies`` command to the parser."""
    help_text = "print a server's study list from its REST cache (refreshing it when asked)"
    parser: argparse.ArgumentParser = commands.add_parser(
        "studies",
        help=help_text,
        description="Print a server's study list from its REST cache, with when and how it was"
        " last synced. The first time, or with --refresh, the cache is refreshed first:"
        " incrementally when the server changed by at most its cache threshold, else"
        " completely (--full forces that).",
    )
    parser.add_argument("name", help="server name")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="refresh first (incremental when the change is within the cache threshold)",
    )
    parser.add_argument("--full", action="store_true", help="refresh the whole list first")
    parser.add_argument("--json", action="store_true", help="print JSON (sync state and studies)")
    parser.set_defaults(handler=cmd_studies)
