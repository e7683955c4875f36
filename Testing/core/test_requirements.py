"""Which pynetdicom fits which pydicom, and whether requirements are met (``requirements.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from DicomServersLib.requirements import (
    PYNETDICOM_FOR_PYDICOM2,
    PYNETDICOM_FOR_PYDICOM3,
    REQUIREMENTS_FILE,
    REQUIREMENTS_FILE_PYDICOM2,
    Requirement,
    installed_version,
    missing_requirements,
    parse_requirement,
    pynetdicom_requirement,
    read_requirements,
    release_tuple,
    requirements_file_for,
)


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("3.0.2", (3, 0, 2)),
        ("2.4.4", (2, 4, 4)),
        ("3", (3,)),
        ("3.1.0rc1", (3, 1, 0)),
        ("2.1.1.dev0", (2, 1, 1)),
        ("3.0.0+local", (3, 0, 0)),
        ("v1.2", (1, 2)),
    ],
)
def test_release_tuple(version: str, release: tuple[int, ...]) -> None:
    assert release_tuple(version) == release


@pytest.mark.parametrize("version", ["", "dev", "x3.0"])
def test_release_tuple_rejects_text(version: str) -> None:
    with pytest.raises(ValueError, match="version: must start with a release number"):
        release_tuple(version)


@pytest.mark.parametrize(
    ("pydicom_version", "file_name", "requirement"),
    [
        ("3.0.2", REQUIREMENTS_FILE, PYNETDICOM_FOR_PYDICOM3),  # Slicer 5.12
        ("3.1.0", REQUIREMENTS_FILE, PYNETDICOM_FOR_PYDICOM3),
        ("4.0.0", REQUIREMENTS_FILE, PYNETDICOM_FOR_PYDICOM3),
        ("2.4.4", REQUIREMENTS_FILE_PYDICOM2, PYNETDICOM_FOR_PYDICOM2),  # Slicer 5.10
        ("2.3.0", REQUIREMENTS_FILE_PYDICOM2, PYNETDICOM_FOR_PYDICOM2),
    ],
)
def test_choice_follows_pydicom_major_version(
    pydicom_version: str, file_name: str, requirement: str
) -> None:
    assert requirements_file_for(pydicom_version) == file_name
    assert pynetdicom_requirement(pydicom_version) == requirement


def test_requirement_strings() -> None:
    assert PYNETDICOM_FOR_PYDICOM3 == "pynetdicom>=3,<4"
    assert PYNETDICOM_FOR_PYDICOM2 == "pynetdicom>=2.1,<3"
    assert str(parse_requirement(PYNETDICOM_FOR_PYDICOM3)) == PYNETDICOM_FOR_PYDICOM3


@pytest.mark.parametrize(
    ("line", "version", "satisfied"),
    [
        ("pynetdicom>=3,<4", "3.0.4", True),
        ("pynetdicom>=3,<4", "3", True),
        ("pynetdicom>=3,<4", "4.0.0", False),
        ("pynetdicom>=3,<4", "2.1.1", False),
        ("pynetdicom>=2.1,<3", "2.1.1", True),
        ("pynetdicom>=2.1,<3", "2.0.2", False),
        ("pynetdicom>=2.1,<3", "3.0.4", False),
        ("pynetdicom==2.1.1", "2.1.1", True),
        ("pynetdicom==2.1", "2.1.0", True),
        ("pynetdicom!=2.1.0", "2.1", False),
        ("pynetdicom>2", "2.0.0", False),
        ("pynetdicom<=2", "2.0.0", True),
        ("pynetdicom", "0.1", True),
        ("pynetdicom", None, False),
    ],
)
def test_is_satisfied_by(line: str, version: str | None, satisfied: bool) -> None:
    assert parse_requirement(line).is_satisfied_by(version) is satisfied


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "must be a package name"),
        (">=3", "must be a package name"),
        ("pynetdicom~=3.0", "is not a version specifier"),
        ("pynetdicom>=three", "is not a version specifier"),
    ],
)
def test_parse_requirement_rejects(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_requirement(line)


def test_read_requirements_skips_comments_blanks_and_options(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(
        "# comment\n\n--index-url https://example.invalid/simple\n"
        "pynetdicom>=3,<4  # trailing comment\nrequests\n",
        encoding="utf-8",
    )
    assert read_requirements(path) == [
        Requirement("pynetdicom", ((">=", "3"), ("<", "4"))),
        Requirement("requests"),
    ]


def test_missing_requirements_with_given_versions() -> None:
    wanted = [parse_requirement("pynetdicom>=3,<4"), parse_requirement("requests>=2.31")]
    versions = {"pynetdicom": "2.1.1", "requests": "2.32.3"}
    assert missing_requirements(wanted, versions.get) == [wanted[0]]
    assert missing_requirements(wanted, {"pynetdicom": "3.0.4", "requests": "2.31"}.get) == []
    nothing_installed: dict[str, str] = {}
    assert missing_requirements(wanted, nothing_installed.get) == wanted


def test_installed_version_reads_this_environment() -> None:
    import pydicom

    assert installed_version("pydicom") == pydicom.__version__
    assert installed_version("no-such-distribution-dicomservers") is None
    # the pynetdicom installed next to this pydicom is the one the rules choose
    assert parse_requirement(pynetdicom_requirement(pydicom.__version__)).is_satisfied_by(
        installed_version("pynetdicom")
    )
