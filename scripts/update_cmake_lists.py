#!/usr/bin/env python3
"""Rewrite the file lists of ``DicomServers/CMakeLists.txt`` from the files on disk.

Slicer installs only what ``slicerMacroBuildScriptedModule`` is given (Slicer
``CMake/SlicerMacroBuildScriptedModule.cmake``): ``MODULE_PYTHON_SCRIPTS`` (the module file and
every ``.py`` of its packages) and ``MODULE_PYTHON_RESOURCES`` (every other file the module
reads at run time). A file missing from the lists works from a source checkout but is absent
from the packaged extension, so ``Testing/test_packaging.py`` compares the lists with the disk
and points here.

Usage (any Python 3.11+, nothing to install)::

    python scripts/update_cmake_lists.py          # rewrite the two lists
    python scripts/update_cmake_lists.py --check  # exit 1 and show the difference

The rules of what is listed are in this file only (the test imports them):

- scripts: ``DicomServers.py`` and every ``.py`` under the code packages (``CODE_PACKAGES``);
- resources: every file under ``Resources/`` and every non-``.py`` file under the code
  packages, except development-only files named in ``NOT_INSTALLED``;
- never: hidden files and folders, ``__pycache__``, compiled ``.pyc``.

Keep the two ``set(...)`` blocks free of comments: this script rewrites their bodies.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
MODULE_NAME = "DicomServers"
MODULE_DIR = REPO / MODULE_NAME
CODE_PACKAGES = ("DicomServersLib", "DicomServersUI")
RESOURCES_DIR = "Resources"
MODULE_TOP_FILES = ("CMakeLists.txt", f"{MODULE_NAME}.py")

NOT_INSTALLED = {
    "DicomServersLib/ruff.toml": "lint rules of the pure core (development only)",
}
"""Files under the module folder that are deliberately not installed, with the reason."""

IGNORED_NAMES = ("__pycache__",)
IGNORED_SUFFIXES = (".pyc", ".pyo")

SCRIPTS_VAR = "MODULE_PYTHON_SCRIPTS"
RESOURCES_VAR = "MODULE_PYTHON_RESOURCES"
LIST_VARS = (SCRIPTS_VAR, RESOURCES_VAR)
UPDATE_COMMAND = "python scripts/update_cmake_lists.py"


@dataclass
class FileLists:
    """What the module's CMake lists should hold, and files that fit no rule."""

    scripts: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        """Return the lists keyed by their CMake variable."""
        return {SCRIPTS_VAR: self.scripts, RESOURCES_VAR: self.resources}


def is_ignored(relative: PurePosixPath) -> bool:
    """Return whether a path (relative to the module folder) is never packaged."""
    if any(part.startswith(".") or part in IGNORED_NAMES for part in relative.parts):
        return True
    return relative.suffix in IGNORED_SUFFIXES


def _walk(folder: Path, module_dir: Path) -> list[PurePosixPath]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_NAMES)
        for name in files:
            relative = PurePosixPath(Path(root, name).relative_to(module_dir).as_posix())
            if not is_ignored(relative):
                found.append(relative)
    return sorted(found)


def files_on_disk(module_dir: Path = MODULE_DIR) -> FileLists:
    """Return the scripts and resources the module folder holds, by the rules above."""
    lists = FileLists(scripts=[f"{MODULE_NAME}.py"])
    for entry in sorted(module_dir.iterdir()):
        relative = PurePosixPath(entry.name)
        if is_ignored(relative):
            continue
        if entry.is_dir() and entry.name in (*CODE_PACKAGES, RESOURCES_DIR):
            continue
        if entry.is_file() and entry.name in MODULE_TOP_FILES:
            continue
        kind = "folder" if entry.is_dir() else "file"
        lists.unexpected.append(
            f"{MODULE_NAME}/{entry.name}: a {kind} no packaging rule covers (Python code goes in"
            f" {' or '.join(CODE_PACKAGES)}, data in {RESOURCES_DIR}/; a .py file at this level"
            " would be loaded by Slicer as a module of its own)"
        )
    for package in CODE_PACKAGES:
        folder = module_dir / package
        if not folder.is_dir():
            continue
        for relative in _walk(folder, module_dir):
            if str(relative) in NOT_INSTALLED:
                continue
            if relative.suffix == ".py":
                lists.scripts.append(str(relative))
            else:
                lists.resources.append(str(relative))
    if (module_dir / RESOURCES_DIR).is_dir():
        lists.resources.extend(str(r) for r in _walk(module_dir / RESOURCES_DIR, module_dir))
    lists.scripts[1:] = sorted(lists.scripts[1:])
    lists.resources.sort()
    return lists


def _block(variable: str) -> re.Pattern[str]:
    return re.compile(r"(set\(\s*" + variable + r")(?P<body>[^)]*)(\))")


def parse_lists(text: str) -> dict[str, list[str]]:
    """Return the entries of the two lists in a module ``CMakeLists.txt`` (``${MODULE_NAME}``
    resolved).

    Raises
    ------
    ValueError
        A list is missing.
    """
    name_match = re.search(r"set\(\s*MODULE_NAME\s+([^\s)]+)\s*\)", text)
    module_name = name_match.group(1) if name_match else MODULE_NAME
    lists = {}
    for variable in LIST_VARS:
        match = _block(variable).search(text)
        if match is None:
            raise ValueError(f"CMakeLists.txt: no set({variable} ...) block")
        body = "\n".join(line.split("#", 1)[0] for line in match.group("body").splitlines())
        lists[variable] = [
            token.replace("${MODULE_NAME}", module_name).strip('"') for token in body.split()
        ]
    return lists


def render(text: str, lists: dict[str, list[str]]) -> str:
    """Return ``text`` with the bodies of the two lists replaced by ``lists``."""
    for variable in LIST_VARS:
        body = "".join(f"\n  {entry}" for entry in lists[variable]) + "\n  "
        match = _block(variable).search(text)
        if match is None:
            raise ValueError(f"CMakeLists.txt: no set({variable} ...) block")
        text = text[: match.start("body")] + body + text[match.end("body") :]
    return text


def differences(listed: dict[str, list[str]], expected: dict[str, list[str]]) -> list[str]:
    """Describe how ``listed`` differs from ``expected`` (empty when they agree)."""
    lines = []
    for variable in LIST_VARS:
        have, want = listed.get(variable, []), expected[variable]
        missing = [e for e in want if e not in have]
        extra = [e for e in have if e not in want]
        duplicated = sorted({e for e in have if have.count(e) > 1})
        if missing:
            lines.append(f"{variable}: missing (on disk, not listed): {', '.join(missing)}")
        if extra:
            lines.append(f"{variable}: extra (listed, not on disk): {', '.join(extra)}")
        if duplicated:
            lines.append(f"{variable}: listed twice: {', '.join(duplicated)}")
        if not (missing or extra or duplicated) and have != want:
            lines.append(f"{variable}: entries are not in sorted order")
    return lines


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` verify) the module's CMake file lists."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if outdated")
    parser.add_argument(
        "--module-dir",
        type=Path,
        default=MODULE_DIR,
        help="the module folder (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    module_dir: Path = args.module_dir
    cmake_file = module_dir / "CMakeLists.txt"
    text = cmake_file.read_text(encoding="utf-8")
    on_disk = files_on_disk(module_dir)
    for problem in on_disk.unexpected:
        print(f"warning: {problem}", file=sys.stderr)
    diff = differences(parse_lists(text), on_disk.as_dict())
    if not diff:
        print(f"{cmake_file}: up to date")
        return 0
    if args.check:
        print(f"{cmake_file} does not match the files on disk:", file=sys.stderr)
        for line in diff:
            print(f"  {line}", file=sys.stderr)
        print(f"Run: {UPDATE_COMMAND}", file=sys.stderr)
        return 1
    _write_atomic(cmake_file, render(text, on_disk.as_dict()))
    print(f"{cmake_file}: updated")
    for line in diff:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
