"""Packaging of the Slicer extension: CMake lists, extension metadata, catalog entry, icons.

Slicer installs only the files ``DicomServers/CMakeLists.txt`` names, so the first test fails
(listing missing and extra entries) whenever someone adds, renames or removes a file without
running ``python scripts/update_cmake_lists.py``.

The metadata rules checked here are those of Slicer's templates
(``Utilities/Templates/Extensions/Default/CMakeLists.txt``,
``Utilities/Templates/Extensions/extension_description.s4ext.in``), of the catalog schema
(Slicer ``Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json``) and of the ExtensionsIndex
pull-request check (``scripts/check_description_files.py``), which reads the icon and screenshot
URLs from the top-level ``CMakeLists.txt`` with regular expressions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import types
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
from DicomServersLib import requirements as dependency_rules

REPO = Path(__file__).resolve().parent.parent
MODULE_DIR = REPO / "DicomServers"
EXTENSION_NAME = "DicomServers"
RAW_PREFIX = "https://raw.githubusercontent.com/dicomservers/SlicerDicomServers/main/"
HOMEPAGE = "https://github.com/dicomservers/SlicerDicomServers"


def load_script(name: str) -> types.ModuleType:
    """Import ``scripts/<name>.py`` (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cmake_lists = load_script("update_cmake_lists")


def cmake_sets(text: str) -> dict[str, str]:
    """Return ``set(NAME "value")`` / ``set(NAME value)`` pairs of a CMake file (one line each)."""
    values = {}
    for match in re.finditer(r'^\s*set\(\s*(\w+)\s+("([^"]*)"|[^)\s]+)\s*\)', text, re.MULTILINE):
        values[match.group(1)] = match.group(3) if match.group(3) is not None else match.group(2)
    return values


def read_s4ext(path: Path) -> dict[str, str]:
    """Parse an .s4ext file: first token the keyword, the rest of the line the value."""
    fields = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            fields[key] = value.strip()
    return fields


def png_size(path: Path) -> tuple[int, int]:
    """Return (width, height) from a PNG file's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", f"{path}: not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.fixture(scope="module")
def top_cmake() -> str:
    return (REPO / "CMakeLists.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def top_meta(top_cmake: str) -> dict[str, str]:
    return cmake_sets(top_cmake)


@pytest.fixture(scope="module")
def s4ext() -> dict[str, str]:
    return read_s4ext(REPO / f"{EXTENSION_NAME}.s4ext")


@pytest.fixture(scope="module")
def catalog() -> dict[str, object]:
    document = json.loads((REPO / f"{EXTENSION_NAME}.json").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


# -- the module's file lists -------------------------------------------------------------------


def test_cmake_lists_match_files_on_disk() -> None:
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    listed = cmake_lists.parse_lists(text)
    expected = cmake_lists.files_on_disk(MODULE_DIR).as_dict()
    problems = cmake_lists.differences(listed, expected)
    assert not problems, (
        "DicomServers/CMakeLists.txt does not list the module's files as they are on disk:\n  "
        + "\n  ".join(problems)
        + f"\nRun: {cmake_lists.UPDATE_COMMAND}"
    )


def test_module_folder_holds_only_packaged_kinds_of_files() -> None:
    unexpected = cmake_lists.files_on_disk(MODULE_DIR).unexpected
    assert not unexpected, "\n".join(unexpected)


def test_development_files_are_not_installed() -> None:
    lists = cmake_lists.parse_lists((MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8"))
    listed = set(lists[cmake_lists.SCRIPTS_VAR]) | set(lists[cmake_lists.RESOURCES_VAR])
    for path, reason in cmake_lists.NOT_INSTALLED.items():
        assert (MODULE_DIR / path).is_file(), f"NOT_INSTALLED names {path}, which is gone"
        assert reason
        assert path not in listed
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in listed)


def test_module_cmake_follows_the_scripted_module_template() -> None:
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"set\(MODULE_NAME DicomServers\)", text)
    macro = re.search(r"slicerMacroBuildScriptedModule\((?P<args>[^)]*)\)", text)
    assert macro is not None
    assert macro.group("args").split() == [
        "NAME",
        "${MODULE_NAME}",
        "SCRIPTS",
        "${MODULE_PYTHON_SCRIPTS}",
        "RESOURCES",
        "${MODULE_PYTHON_RESOURCES}",
        "WITH_GENERIC_TESTS",
    ]
    testing = re.search(r"if\(BUILD_TESTING\)(?P<body>.*?)endif\(\)", text, re.DOTALL)
    assert testing is not None
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in testing.group("body")
    lists = cmake_lists.parse_lists(text)
    assert lists[cmake_lists.SCRIPTS_VAR][0] == "DicomServers.py"
    resources = lists[cmake_lists.RESOURCES_VAR]
    for needed in ("Resources/Icons/DicomServers.png", "Resources/requirements.txt"):
        assert needed in resources


SMALL_CMAKE = """set(MODULE_NAME DicomServers)

set(MODULE_PYTHON_SCRIPTS
  ${MODULE_NAME}.py
  DicomServersLib/gone.py
  )

set(MODULE_PYTHON_RESOURCES
  )

slicerMacroBuildScriptedModule(
  NAME ${MODULE_NAME}
  SCRIPTS ${MODULE_PYTHON_SCRIPTS}
  RESOURCES ${MODULE_PYTHON_RESOURCES}
  WITH_GENERIC_TESTS
  )
"""


def make_module(root: Path) -> Path:
    """A small module folder with every kind of file the rules distinguish."""
    module = root / "DicomServers"
    files = {
        "DicomServers.py": "",
        "DicomServersLib/__init__.py": "",
        "DicomServersLib/ruff.toml": "",
        "DicomServersLib/rest/orthanc.py": "",
        "DicomServersLib/tables.json": "{}",
        "DicomServersLib/__pycache__/x.cpython-311.pyc": "",
        "DicomServersLib/.ruff_cache/CACHEDIR.TAG": "",
        "DicomServersUI/panel.py": "",
        "Resources/Icons/add.png": "",
        "Resources/UI/DicomServers.ui": "",
        "Resources/requirements.txt": "",
    }
    for name, content in files.items():
        (module / name).parent.mkdir(parents=True, exist_ok=True)
        (module / name).write_text(content, encoding="utf-8")
    (module / "CMakeLists.txt").write_text(SMALL_CMAKE, encoding="utf-8")
    return module


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "update_cmake_lists.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_update_script_rewrites_only_the_two_lists(tmp_path: Path) -> None:
    module = make_module(tmp_path)
    original = (module / "CMakeLists.txt").read_text(encoding="utf-8")

    check = run_script("--check", "--module-dir", str(module))
    assert check.returncode == 1
    assert "missing (on disk, not listed): DicomServersLib/__init__.py" in check.stderr
    assert "extra (listed, not on disk): DicomServersLib/gone.py" in check.stderr
    assert "Run: python scripts/update_cmake_lists.py" in check.stderr

    update = run_script("--module-dir", str(module))
    assert update.returncode == 0, update.stderr
    rewritten = (module / "CMakeLists.txt").read_text(encoding="utf-8")
    assert cmake_lists.parse_lists(rewritten) == {
        "MODULE_PYTHON_SCRIPTS": [
            "DicomServers.py",
            "DicomServersLib/__init__.py",
            "DicomServersLib/rest/orthanc.py",
            "DicomServersUI/panel.py",
        ],
        "MODULE_PYTHON_RESOURCES": [
            "DicomServersLib/tables.json",
            "Resources/Icons/add.png",
            "Resources/UI/DicomServers.ui",
            "Resources/requirements.txt",
        ],
    }

    def outside_lists(text: str) -> str:
        for variable in cmake_lists.LIST_VARS:
            text = re.sub(r"set\(" + variable + r"[^)]*\)", variable, text)
        return text

    assert outside_lists(rewritten) == outside_lists(original)
    assert run_script("--check", "--module-dir", str(module)).returncode == 0


def test_update_script_warns_about_files_no_rule_covers(tmp_path: Path) -> None:
    module = make_module(tmp_path)
    (module / "helpers.py").write_text("", encoding="utf-8")
    result = run_script("--module-dir", str(module))
    assert result.returncode == 0
    assert "DicomServers/helpers.py" in result.stderr
    assert "loaded by Slicer as a module of its own" in result.stderr
    assert cmake_lists.files_on_disk(module).unexpected


def test_ignored_paths() -> None:
    ignored = cmake_lists.is_ignored
    assert ignored(PurePosixPath("DicomServersLib/__pycache__/a.pyc"))
    assert ignored(PurePosixPath("DicomServersLib/.ruff_cache/x"))
    assert ignored(PurePosixPath("Resources/.DS_Store"))
    assert not ignored(PurePosixPath("DicomServersLib/registry.py"))


# -- extension metadata ------------------------------------------------------------------------


def test_top_level_cmake_follows_the_extension_template(top_cmake: str) -> None:
    order = [
        r"cmake_minimum_required\(VERSION [^)]+\)",
        r"project\(DicomServers\)",
        r"set\(EXTENSION_HOMEPAGE ",
        r"set\(EXTENSION_DEPENDS \"NA\"\)",
        r"find_package\(Slicer REQUIRED\)",
        r"include\(\$\{Slicer_USE_FILE\}\)",
        r"add_subdirectory\(DicomServers\)",
        r"include\(\$\{Slicer_EXTENSION_GENERATE_CONFIG\}\)",
        r"include\(\$\{Slicer_EXTENSION_CPACK\}\)",
    ]
    positions = []
    for pattern in order:
        match = re.search(pattern, top_cmake)
        assert match is not None, f"CMakeLists.txt: no {pattern}"
        positions.append(match.start())
    assert positions == sorted(positions), "CMakeLists.txt: template steps out of order"


def test_extension_metadata_is_complete(top_meta: dict[str, str]) -> None:
    for variable in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
        "EXTENSION_DEPENDS",
    ):
        assert top_meta.get(variable, "").strip(), f"CMakeLists.txt: {variable} is not set"
    assert top_meta["EXTENSION_HOMEPAGE"] == HOMEPAGE
    assert top_meta["EXTENSION_CATEGORY"] == "Informatics"
    assert top_meta["EXTENSION_DEPENDS"] == "NA"


def test_icon_and_screenshot_urls_as_the_index_reads_them(top_cmake: str) -> None:
    # the same expressions as ExtensionsIndex scripts/check_description_files.py
    icon = re.findall(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', top_cmake, re.IGNORECASE)
    shots = re.findall(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', top_cmake, re.IGNORECASE)
    assert icon == [RAW_PREFIX + "Resources/Icons/DicomServers.png"]
    assert len(shots) == 1
    assert shots[0].split() == [
        RAW_PREFIX + "Resources/Screenshots/panel.png",
        RAW_PREFIX + "Resources/Screenshots/browser.png",
    ]
    relative_icon = icon[0].removeprefix(RAW_PREFIX)
    assert png_size(REPO / relative_icon) == (128, 128)


def test_metadata_agrees_across_cmake_s4ext_and_catalog(
    top_meta: dict[str, str], s4ext: dict[str, str], catalog: dict[str, object]
) -> None:
    assert s4ext["homepage"] == top_meta["EXTENSION_HOMEPAGE"]
    assert s4ext["category"] == top_meta["EXTENSION_CATEGORY"] == catalog["category"]
    assert s4ext["iconurl"] == top_meta["EXTENSION_ICONURL"]
    assert s4ext["screenshoturls"].split() == top_meta["EXTENSION_SCREENSHOTURLS"].split()
    assert s4ext["contributors"] == top_meta["EXTENSION_CONTRIBUTORS"]
    assert s4ext["description"] == top_meta["EXTENSION_DESCRIPTION"]
    assert s4ext["depends"] == top_meta["EXTENSION_DEPENDS"] == "NA"
    assert s4ext["scmurl"] == catalog["scm_url"]
    assert s4ext["scmrevision"] == catalog["scm_revision"] == "main"
    assert s4ext["build_subdirectory"] == catalog["build_subdirectory"] == "."
    assert s4ext["tier"] == str(catalog["tier"])
    assert urlsplit(str(catalog["scm_url"])).path.removesuffix(".git") == urlsplit(HOMEPAGE).path
    assert top_meta["EXTENSION_ICONURL"].startswith(RAW_PREFIX)


def test_s4ext_has_every_legacy_field(s4ext: dict[str, str]) -> None:
    for key in (
        "scm",
        "scmurl",
        "scmrevision",
        "depends",
        "build_subdirectory",
        "homepage",
        "contributors",
        "category",
        "iconurl",
        "status",
        "description",
        "screenshoturls",
        "enabled",
    ):
        assert s4ext.get(key), f"DicomServers.s4ext: {key} is missing or empty"
    assert s4ext["scm"] == "git"
    assert s4ext["enabled"] == "1"


# The catalog entry schema v1.0.1 (Slicer Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json):
# required keys, no other keys than these, their JSON types.
CATALOG_SCHEMA = "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json"
CATALOG_REQUIRED = ("$schema", "category", "scm_url")
CATALOG_TYPES: dict[str, type | tuple[type, ...]] = {
    "$schema": str,
    "category": str,
    "scm_url": str,
    "scm_revision": str,
    "scm_type": str,
    "build_dependencies": list,
    "build_subdirectory": str,
    "enabled": bool,
    "tier": int,
}


def test_catalog_entry_validates(catalog: dict[str, object]) -> None:
    assert str(catalog["$schema"]).split("#")[0] == CATALOG_SCHEMA
    for key in CATALOG_REQUIRED:
        assert catalog.get(key), f"DicomServers.json: required field {key!r} is missing"
    for key, value in catalog.items():
        assert key in CATALOG_TYPES, f"DicomServers.json: {key!r} is not a field of the schema"
        expected = CATALOG_TYPES[key]
        assert isinstance(value, expected) and not (expected is int and isinstance(value, bool)), (
            f"DicomServers.json: {key!r} must be {expected}, got {value!r}"
        )
    assert catalog.get("scm_type", "git") in ("git", "local")
    dependencies = catalog.get("build_dependencies", [])
    assert isinstance(dependencies, list) and all(isinstance(d, str) for d in dependencies)
    assert catalog["tier"] == 1
    assert catalog["category"] == "Informatics"
    assert catalog["scm_revision"] == "main"


def test_catalog_entry_passes_the_index_naming_rules(catalog: dict[str, object]) -> None:
    # ExtensionsIndex: scm_url scheme git or https; repository name contains "Slicer";
    # the extension name (= project name = file name) does not start with "Slicer".
    url = urlsplit(str(catalog["scm_url"]))
    assert url.scheme in ("git", "https")
    repository = Path(url.path).stem
    assert "slicer" in repository.lower()
    assert not EXTENSION_NAME.lower().startswith("slicer")


def test_license_file_is_apache_2() -> None:
    text = (REPO / "LICENSE.txt").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


# -- icons and requirements --------------------------------------------------------------------

ACTION_ICONS = (
    "add",
    "duplicate",
    "up",
    "down",
    "delete",
    "default",
    "status-unknown",
    "status-ok",
    "status-failed",
    "status-running",
    "folder",
)


def test_icons_have_the_expected_sizes() -> None:
    icons = MODULE_DIR / "Resources" / "Icons"
    assert png_size(REPO / "Resources" / "Icons" / "DicomServers.png") == (128, 128)
    assert png_size(icons / "DicomServers.png") == (128, 128)
    for name in ACTION_ICONS:
        assert png_size(icons / f"{name}.png") in ((24, 24), (32, 32)), name


def test_icon_generator_writes_every_committed_icon(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_icons.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    expected = sorted(
        [
            Path("Resources/Icons/DicomServers.png"),
            Path("DicomServers/Resources/Icons/DicomServers.png"),
        ]
        + [Path(f"DicomServers/Resources/Icons/{n}.png") for n in ACTION_ICONS]
    )
    assert written == expected
    stale = [str(r) for r in written if differing_pixels(tmp_path / r, REPO / r) > 0.02]
    assert not stale, (
        f"committed icons differ from what scripts/make_icons.py draws: {', '.join(stale)};"
        " run: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_icons.py"
    )


def differing_pixels(drawn: Path, committed: Path) -> float:
    """Return the share of pixels whose colour differs visibly (PNG encoders may differ)."""
    from PySide6.QtGui import QImage

    a = QImage(str(drawn)).convertToFormat(QImage.Format.Format_ARGB32)
    b = QImage(str(committed)).convertToFormat(QImage.Format.Format_ARGB32)
    if a.size() != b.size():
        return 1.0
    bytes_a, bytes_b = bytes(a.constBits()), bytes(b.constBits())
    pixels = len(bytes_a) // 4
    different = sum(
        1
        for i in range(0, len(bytes_a), 4)
        if max(abs(bytes_a[i + k] - bytes_b[i + k]) for k in range(4)) > 24
    )
    return different / pixels


def test_requirement_files_match_the_core_choice() -> None:
    resources = MODULE_DIR / "Resources"
    for pydicom_version, pins in (("3.0.2", "slicer-5.12.txt"), ("2.4.4", "slicer-5.10.txt")):
        name = dependency_rules.requirements_file_for(pydicom_version)
        listed = dependency_rules.read_requirements(resources / name)
        wanted = dependency_rules.parse_requirement(
            dependency_rules.pynetdicom_requirement(pydicom_version)
        )
        assert [r for r in listed if r.name == "pynetdicom"] == [wanted], (
            f"{name} must hold {wanted}"
        )
        assert {r.name for r in listed} == {"pynetdicom", "keyring"}, name
        # the pins our test environments use satisfy the requirement Slicer users get
        pinned = {
            r.name: r.specifiers[0][1]
            for r in dependency_rules.read_requirements(REPO / "requirements" / pins)
        }
        assert wanted.is_satisfied_by(pinned["pynetdicom"]), pins
