"""The command line: ``python -m DicomServersLib [--settings PATH] COMMAND …``.

Exit status: 0 success; 2 invalid input (the message on stderr names the field and the rule);
1 any other failure (network, files). Each command group lives in its own ``cli_*`` module and
registers itself in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .ini_settings import IniSettings
from .registry import ServerRegistry
from .secret_store import OpenedStore, open_secret_store
from .settings_store import SettingsStore
from .user_paths import default_settings_file
from .validation import ValidationError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2


class UsageError(Exception):
    """Invalid input on the command line (exit status 2); the message names field and rule."""


@dataclass
class CliContext:
    """What every command gets: the parsed arguments, the registry and the output streams."""

    args: argparse.Namespace
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    _registry: ServerRegistry | None = None
    _secrets: OpenedStore | None = None
    warnings_shown: set[str] = field(default_factory=set)

    @property
    def settings_path(self) -> Path:
        """The INI file in Slicer's format that holds the server list."""
        return Path(self.args.settings) if self.args.settings else default_settings_file()

    @property
    def secrets(self) -> OpenedStore:
        """The secret store chosen by ``DICOMSERVERS_SECRET_STORE``."""
        if self._secrets is None:
            try:
                self._secrets = open_secret_store()
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
        return self._secrets

    @property
    def registry(self) -> ServerRegistry:
        """The server registry on the settings file (loaded once)."""
        if self._registry is None:
            store = SettingsStore(IniSettings(self.settings_path), self.secrets.store)
            self._registry = ServerRegistry(store)
            for problem in self._registry.load_result.problems:
                self.warn(f"warning: {problem}")
        return self._registry

    def warn(self, message: str) -> None:
        """Print a warning once on stderr."""
        if message not in self.warnings_shown:
            self.warnings_shown.add(message)
            print(message, file=self.stderr)

    def print_json(self, data: Any) -> None:
        """Print ``data`` as indented JSON on stdout."""
        json.dump(data, self.stdout, indent=2, ensure_ascii=False)
        self.stdout.write("\n")


Handler = Callable[[CliContext], int]
Registrar = Callable[[Any], None]


def _command_modules() -> list[Registrar]:
    from . import cli_servers

    registrars: list[Registrar] = [cli_servers.register]
    for module_name in ("cli_network", "cli_rest", "cli_watch"):
        try:
            module = __import__(f"{__package__}.{module_name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module_name}":
                raise
            continue
        registrars.append(module.register)
    return registrars


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="python -m DicomServersLib",
        description="Manage and use DICOM servers (the DicomServers extension for 3D Slicer).",
    )
    parser.add_argument("--version", action="version", version=f"DicomServers {__version__}")
    parser.add_argument(
        "--settings",
        metavar="PATH",
        help="settings file in Slicer's INI format (default: $DICOMSERVERS_SETTINGS, else"
        " Slicer.ini when it exists, else a per-user DicomServers.ini)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _command_modules():
        register(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command line and return its exit status."""
    out, err, inp = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are exit 2, --help is 0
        return int(exc.code or 0)
    context = CliContext(args=args, stdout=out, stderr=err, stdin=inp)
    handler: Handler = args.handler
    try:
        return handler(context)
    except ValidationError as exc:
        for _, message in exc.errors:
            print(f"error: {message}", file=err)
        return EXIT_INVALID
    except (UsageError, KeyError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        print(f"error: {message}", file=err)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("cancelled", file=err)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILURE
