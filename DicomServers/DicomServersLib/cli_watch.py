"""``watch NAME [--json]``: print notifications of new instances, series and studies.

Runs the notification service for one server (listener on ``notification_ip``:
``notification_port``, else polling through the PACS REST API), says which mode is active and
why on stderr, then prints one line per event on stdout (``--json``: one JSON object per line)
until Ctrl-C, ``--count`` events or ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from .cli import EXIT_FAILURE, EXIT_OK, CliContext, UsageError
from .notifications.service import (
    MODE_OFF,
    MODE_POLLING,
    MODE_UNAVAILABLE,
    NotificationService,
)

#: Environment variable holding the shared secret (``NOTIFY_TOKEN`` of the plugin).
ENV_TOKEN = "DICOMSERVERS_NOTIFY_TOKEN"


def _read_token(context: CliContext) -> str | None:
    if context.args.token_stdin:
        return context.stdin.readline().rstrip("\r\n")
    return os.environ.get(ENV_TOKEN) or None


def cmd_watch(context: CliContext) -> int:
    """Print events of one server as they arrive."""
    args = context.args
    if args.count is not None and args.count < 1:
        raise UsageError("--count: must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout: must be more than 0 seconds")
    if args.interval <= 0:
        raise UsageError("--interval: must be more than 0 seconds")
    server = context.registry.get(args.name)
    if not server.notifications_enabled:
        context.warn(
            f"note: notifications are off for {server.name!r} in its settings; watching anyway"
        )
        server = server.copy(notifications_enabled=True)
    token = _read_token(context)
    service = NotificationService(poll_interval_s=args.interval)
    try:
        status = service.start(server, token=token)
        worker = service.worker_for(server.name)
        if status.mode == MODE_POLLING and worker is not None:
            # Report "polling" once the first poll has set the starting point: what is stored
            # from then on is reported.
            deadline = time.monotonic() + 2 * float(server.timeout_s) + 1.0
            while worker.last_outcome is None and time.monotonic() < deadline:
                time.sleep(0.05)
            service.drain_status_changes()
            status = service.status(server.name) or status
        _print_status(context, status.mode, status.describe(), as_json=args.json)
        if status.mode in (MODE_UNAVAILABLE, MODE_OFF):
            return EXIT_FAILURE
        return _loop(context, service)
    except KeyboardInterrupt:
        print("stopped", file=context.stderr)
        return EXIT_OK
    finally:
        service.stop_all()


def _print_status(context: CliContext, mode: str, text: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"status": mode, "message": text}), file=context.stderr)
    else:
        print(text, file=context.stderr)
    context.stderr.flush()


def _loop(context: CliContext, service: NotificationService) -> int:
    args = context.args
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    printed = 0
    while True:
        for status in service.drain_status_changes():
            _print_status(context, status.mode, status.describe(), as_json=args.json)
        wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if wait <= 0:
            return EXIT_OK
        event = service.queue.get(timeout=wait)
        if event is None:
            continue
        line: Any = (
            event.to_json() if args.json else f"{_clock(event.received_at)} {event.describe()}"
        )
        print(line, file=context.stdout)
        context.stdout.flush()
        printed += 1
        if args.count is not None and printed >= args.count:
            return EXIT_OK


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def register(commands: Any) -> None:
    """Add the ``watch`` command to the parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "watch",
        help="print new instances, series and studies of a server as they arrive",
        description="Listen on the server's Notification IP and Port for the notification"
        " plugin (Resources/PACS/orthanc/dicomservers-notify.lua), or poll the PACS REST API"
        " when the address cannot be bound. Ctrl-C stops.",
    )
    parser.add_argument("name", help="server name")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "--token-stdin",
        action="store_true",
        help=f"read the shared secret (NOTIFY_TOKEN) from standard input (else ${ENV_TOKEN})",
    )
    parser.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between polls (5)"
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    parser.set_defaults(handler=cmd_watch)
