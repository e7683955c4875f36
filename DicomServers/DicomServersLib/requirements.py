"""Which Python packages DicomServers needs on top of Slicer, and whether they are installed.

Slicer ships pydicom but not pynetdicom, and the two must match: pynetdicom 3 needs pydicom 3
(Slicer 5.12 and later ship pydicom 3.0), pynetdicom 2.1 works with pydicom 2.4 (Slicer 5.10;
Slicer ``SuperBuild/External_python-dicom-requirements.cmake`` pins the version per release).
The requirement lines live in the module's ``Resources/requirements*.txt`` files; this module
only decides which file applies and checks the installed versions, so the choice is tested
without Slicer. The Slicer layer installs what is missing (``slicer.packaging.pip_ensure`` in
5.12+, ``slicer.util.pip_install`` before).

Only the simple version specifiers our files use are understood (``==``, ``!=``, ``>=``,
``<=``, ``>``, ``<`` on release numbers such as ``3`` or ``2.1.1``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REQUIREMENTS_FILE = "requirements.txt"
"""Requirements for Slicer 5.12 and later (pydicom 3)."""

REQUIREMENTS_FILE_PYDICOM2 = "requirements-slicer-5.10.txt"
"""Requirements for Slicer 5.10 (pydicom 2.4)."""

PYNETDICOM_FOR_PYDICOM3 = "pynetdicom>=3,<4"
PYNETDICOM_FOR_PYDICOM2 = "pynetdicom>=2.1,<3"

_RELEASE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")
_REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<specs>[^;#]*)")
_SPEC = re.compile(r"^\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<version>[0-9][0-9.]*)\s*$")


def release_tuple(version: str) -> tuple[int, ...]:
    """Return the release numbers of ``version`` (``"3.0.2"`` -> ``(3, 0, 2)``).

    Pre-release and local suffixes (``rc1``, ``.dev0``, ``+local``) are ignored.

    Raises
    ------
    ValueError
        ``version`` does not start with a release number.
    """
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(
            f"version: must start with a release number such as 3.0.2, got {version!r}"
        )
    return tuple(int(part) for part in match.group(1).split("."))


def requirements_file_for(pydicom_version: str) -> str:
    """Return the name of the requirements file that matches the installed pydicom.

    Parameters
    ----------
    pydicom_version
        The pydicom version Slicer ships (``pydicom.__version__``).
    """
    return (
        REQUIREMENTS_FILE if release_tuple(pydicom_version)[0] >= 3 else REQUIREMENTS_FILE_PYDICOM2
    )


def pynetdicom_requirement(pydicom_version: str) -> str:
    """Return the pynetdicom requirement that works with ``pydicom_version``."""
    if release_tuple(pydicom_version)[0] >= 3:
        return PYNETDICOM_FOR_PYDICOM3
    return PYNETDICOM_FOR_PYDICOM2


@dataclass(frozen=True)
class Requirement:
    """One requirement line: a distribution name and its version specifiers."""

    name: str
    specifiers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.name + ",".join(op + version for op, version in self.specifiers)

    def is_satisfied_by(self, version: str | None) -> bool:
        """Return whether ``version`` (None: not installed) meets every specifier."""
        if version is None:
            return False
        have = release_tuple(version)
        return all(_compare(have, op, release_tuple(wanted)) for op, wanted in self.specifiers)


def _compare(have: tuple[int, ...], op: str, wanted: tuple[int, ...]) -> bool:
    width = max(len(have), len(wanted))
    left = have + (0,) * (width - len(have))
    right = wanted + (0,) * (width - len(wanted))
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == ">=":
        return left >= right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left < right


def parse_requirement(line: str) -> Requirement:
    """Parse one requirement line such as ``pynetdicom>=3,<4``.

    Raises
    ------
    ValueError
        The line is not a distribution name followed by simple version specifiers.
    """
    match = _REQUIREMENT.match(line)
    if match is None:
        raise ValueError(f"requirement: must be a package name, got {line!r}")
    specs: list[tuple[str, str]] = []
    text = match.group("specs").strip()
    if text:
        for part in text.split(","):
            spec = _SPEC.match(part)
            if spec is None:
                raise ValueError(
                    f"requirement {line.strip()!r}: {part.strip()!r} is not a version"
                    " specifier such as >=3 or <4"
                )
            specs.append((spec.group("op"), spec.group("version")))
    return Requirement(match.group("name"), tuple(specs))


def read_requirements(path: Path) -> list[Requirement]:
    """Read a requirements file: one requirement a line; comments, blanks and options skipped.

    This mirrors ``slicer.packaging.load_requirements``
    (Slicer ``Base/Python/slicer/packaging.py``).
    """
    requirements = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirements.append(parse_requirement(line))
    return requirements


def installed_version(distribution: str) -> str | None:
    """Return the installed version of ``distribution``, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def missing_requirements(
    requirements: Iterable[Requirement],
    version_of: Callable[[str], str | None] = installed_version,
) -> list[Requirement]:
    """Return the requirements the installed packages do not meet, in the given order."""
    return [r for r in requirements if not r.is_satisfied_by(version_of(r.name))]
