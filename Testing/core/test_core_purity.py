"""The pure core never imports Slicer, Qt, CTK or VTK (also enforced by ruff's banned-api)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "DicomServers" / "DicomServersLib"
BANNED = {"slicer", "qt", "ctk", "vtk", "PySide6", "PyQt5", "PyQt6", "PythonQt"}


def test_core_imports_nothing_from_slicer_or_qt() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(CORE)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in BANNED
            ]
    assert offenders == []
