"""``servers …`` commands: list, show, add, set, duplicate, move, remove, default."""

from __future__ import annotations

import argparse
from typing import Any

from .cli import EXIT_INVALID, EXIT_OK, CliContext, UsageError
from .server import FIELD_NAMES, SECRET_FIELDS, DicomServer
from .validation import parse_fields


def _public(server: DicomServer) -> dict[str, Any]:
    data = server.to_dict(include_secrets=False)
    return data


def _parse_assignments(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{item!r}: expected field=value (fields: {', '.join(FIELD_NAMES)})")
        if name in SECRET_FIELDS:
            raise UsageError(
                f"{name}: secrets are never taken from the command line (they end up in shell"
                " history); use --password-stdin or --token-stdin"
            )
        if name == "id":
            raise UsageError("id: the identity of a server cannot be changed")
        if name not in FIELD_NAMES:
            raise UsageError(f"{name}: unknown field (fields: {', '.join(FIELD_NAMES)})")
        values[name] = text
    return values


def _read_secrets(context: CliContext, values: dict[str, str]) -> None:
    """Read secrets from standard input, one per line: the REST password, then the token."""
    wanted = [
        (flag, name)
        for flag, name in (
            ("password_stdin", "rest_password"),
            ("token_stdin", "notification_token"),
        )
        if getattr(context.args, flag, False)
    ]
    for _, name in wanted:
        values[name] = context.stdin.readline().rstrip("\r\n")
    if wanted and not context.secrets.store.persistent:
        context.warn(f"warning: {context.secrets.warning or 'secrets are not saved'}")


def _describe(server: DicomServer, index: int) -> str:
    mark = "*" if server.is_default else " "
    rest = f" REST {server.rest_flavor} {server.rest_url}" if server.rest_enabled else ""
    return (
        f"{index:>2} {mark} {server.name}  {server.called_ae_title}@{server.host}:{server.port}"
        f"  {server.retrieve_method}  load={server.load_mode}{rest}"
    )


def cmd_list(context: CliContext) -> int:
    """Print the ordered server list (``*`` marks the default)."""
    servers = context.registry.servers
    if context.args.json:
        context.print_json([_public(s) for s in servers])
        return EXIT_OK
    if not servers:
        print(
            "no servers (add one with: servers add --name NAME host=… port=…)", file=context.stdout
        )
    for index, server in enumerate(servers):
        print(_describe(server, index), file=context.stdout)
    return EXIT_OK


def cmd_show(context: CliContext) -> int:
    """Print every setting of one server."""
    server = context.registry.get(context.args.name)
    if context.args.json:
        context.print_json(_public(server))
        return EXIT_OK
    for name, value in _public(server).items():
        print(f"{name} = {value}", file=context.stdout)
    for name in sorted(SECRET_FIELDS):
        if getattr(server, name):
            print(f"{name} = (set, kept in {context.secrets.store.location})", file=context.stdout)
    return EXIT_OK


def cmd_add(context: CliContext) -> int:
    """Append a server with defaults, then apply ``field=value`` settings."""
    values = _parse_assignments(context.args.fields)
    _read_secrets(context, values)
    registry = context.registry
    typed = parse_fields(values)  # everything is validated before anything is stored
    name = context.args.name
    if "name" in typed:  # `servers add name=X` is the same as `servers add --name X`
        if name is not None:
            raise UsageError("name: give the name once, either --name or name=…")
        name = typed.pop("name")
    server = registry.add(name, **typed)
    print(
        f"added {server.name!r} at position {registry.index_of(server.name)}", file=context.stdout
    )
    return EXIT_OK


def cmd_set(context: CliContext) -> int:
    """Change settings of one server."""
    values = _parse_assignments(context.args.fields)
    _read_secrets(context, values)
    if not values:
        raise UsageError(
            "nothing to set: give field=value pairs, --password-stdin or --token-stdin"
        )
    server = context.registry.update_text(context.args.name, values)
    print(f"updated {server.name!r}", file=context.stdout)
    return EXIT_OK


def cmd_duplicate(context: CliContext) -> int:
    """Insert a copy right after the server, with a numeric suffix."""
    server = context.registry.duplicate(context.args.name)
    print(f"added {server.name!r}", file=context.stdout)
    return EXIT_OK


def cmd_move(context: CliContext) -> int:
    """Move a server up, down or to a position."""
    registry, args = context.registry, context.args
    if args.up:
        registry.move_up(args.name)
    elif args.down:
        registry.move_down(args.name)
    else:
        registry.move(args.name, args.to)
    print(
        f"{registry.get(args.name).name!r} is at position {registry.index_of(args.name)}",
        file=context.stdout,
    )
    return EXIT_OK


def cmd_remove(context: CliContext) -> int:
    """Remove a server (and its stored password)."""
    removed = context.registry.remove(context.args.name)
    print(f"removed {removed.name!r}", file=context.stdout)
    return EXIT_OK


def cmd_default(context: CliContext) -> int:
    """Make a server the default one, or clear the default."""
    if context.args.clear:
        context.registry.set_default(None)
        print("no default server", file=context.stdout)
        return EXIT_OK
    if not context.args.name:
        raise UsageError("name: give the server to make default, or --clear")
    context.registry.set_default(context.args.name)
    print(
        f"{context.registry.get(context.args.name).name!r} is the default server",
        file=context.stdout,
    )
    return EXIT_OK


def cmd_sync_slicer(context: CliContext) -> int:
    """Write the ordered list into the server tables of Slicer's DICOM browsers."""
    from pathlib import Path

    from .ini_settings import IniSettings
    from .slicer_tables import listener_conflicts, write_tables
    from .user_paths import slicer_settings_file

    target = Path(context.args.slicer_settings) if context.args.slicer_settings else None
    target = target or (context.settings_path if context.args.settings else slicer_settings_file())
    servers = context.registry.servers
    settings = IniSettings(target)
    write_tables(settings, servers)
    print(
        f"wrote {len(servers)} servers into Slicer's DICOM browser tables in {target}",
        file=context.stdout,
    )
    for warning in listener_conflicts(settings, servers):
        context.warn(f"warning: {warning}")
    return EXIT_OK


def cmd_export(context: CliContext) -> int:
    """Write the list as versioned JSON, without secrets."""
    from pathlib import Path

    from .server_exchange import export_file

    servers = context.registry.servers
    export_file(servers, Path(context.args.file))
    print(
        f"exported {len(servers)} servers to {context.args.file} (passwords are not exported)",
        file=context.stdout,
    )
    return EXIT_OK


def cmd_import(context: CliContext) -> int:
    """Merge (or with --replace, replace) the list from an export file; --dry-run shows the plan."""
    from pathlib import Path

    from .server_exchange import apply_import, plan_import, read_document

    args = context.args
    plan = plan_import(context.registry, read_document(Path(args.file)), replace=args.replace)
    if args.json:
        context.print_json(plan.to_dict())
    else:
        for name in plan.added:
            print(f"added      {name}", file=context.stdout)
        for name, fields in plan.changed.items():
            print(f"changed    {name}: {', '.join(fields)}", file=context.stdout)
        for name in plan.unchanged:
            print(f"unchanged  {name}", file=context.stdout)
        for name in plan.removed:
            print(f"removed    {name}", file=context.stdout)
    if not plan.ok:
        for error in plan.errors:
            print(f"error: {error}", file=context.stderr)
        print("nothing was imported", file=context.stderr)
        return EXIT_INVALID
    if args.dry_run:
        print("dry run: nothing was changed", file=context.stderr)
        return EXIT_OK
    apply_import(context.registry, plan)
    return EXIT_OK


def register(commands: Any) -> None:
    """Add the ``servers`` command group to the parser."""
    servers = commands.add_parser("servers", help="manage the ordered server list")
    sub = servers.add_subparsers(dest="servers_command", metavar="ACTION", required=True)

    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=help_text
        )
        parser.set_defaults(handler=handler)
        return parser

    p = add("list", cmd_list, "print the ordered list (* marks the default)")
    p.add_argument("--json", action="store_true", help="print JSON with the canonical field names")
    p = add("show", cmd_show, "print every setting of one server")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    settable = [f for f in FIELD_NAMES if f not in SECRET_FIELDS and f != "id"]
    field_help = "settings as field=value; fields: " + ", ".join(settable)
    p = add("add", cmd_add, "append a server with default settings")
    p.add_argument("--name", help="server name (default: 'New server', 'New server (2)', …)")
    p.add_argument("fields", nargs="*", metavar="field=value", help=field_help)
    p.add_argument(
        "--password-stdin", action="store_true", help="read the REST password from standard input"
    )
    p.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the notification token from standard input (after the password, if both)",
    )
    p = add("set", cmd_set, "change settings of a server")
    p.add_argument("name")
    p.add_argument("fields", nargs="*", metavar="field=value", help=field_help)
    p.add_argument(
        "--password-stdin", action="store_true", help="read the REST password from standard input"
    )
    p.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the notification token from standard input (after the password, if both)",
    )
    p = add("duplicate", cmd_duplicate, "insert an exact copy right after the server")
    p.add_argument("name")
    p = add("move", cmd_move, "reorder: the list order is the order of every server dropdown")
    p.add_argument("name")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--up", action="store_true")
    where.add_argument("--down", action="store_true")
    where.add_argument("--to", type=int, metavar="INDEX", help="0-based position")
    p = add("remove", cmd_remove, "remove a server")
    p.add_argument("name")
    p = add("default", cmd_default, "make a server the default one")
    p.add_argument("name", nargs="?")
    p.add_argument("--clear", action="store_true", help="no default server")
    p = add("export", cmd_export, "write the list as versioned JSON, without passwords")
    p.add_argument("file")
    p = add("import", cmd_import, "merge servers by name from an export file (all or nothing)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="show added / changed / unchanged only")
    p.add_argument("--replace", action="store_true", help="make the file the whole list")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p = add(
        "sync-slicer",
        cmd_sync_slicer,
        "write the list, in order, into the server tables of Slicer's DICOM browsers",
    )
    p.add_argument(
        "--slicer-settings",
        metavar="PATH",
        help="Slicer.ini to write (default: the --settings file if given, else the user's"
        " Slicer.ini)",
    )
