#!/usr/bin/env python3
"""Draw the extension's icons with Qt (PySide6, offscreen) and write them as PNG files.

Usage::

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_icons.py [--out REPO_DIR]

Writes:

- ``Resources/Icons/DicomServers.png``: the 128×128 extension icon the Extensions Manager
  shows (``EXTENSION_ICONURL``; the ExtensionsIndex asks for 128×128).
- ``DicomServers/Resources/Icons/DicomServers.png``: the module icon (Slicer loads
  ``Resources/Icons/<Module>.png`` by itself, ``Base/Python/slicer/ScriptedLoadableModule.py``).
- ``DicomServers/Resources/Icons/<action>.png``: 24×24 action and status icons of the server
  panel (add, duplicate, up, down, delete, default, folder,
  status-ok/failed/unknown/running).

Colours are mid-tones with dark outlines so every icon reads on Slicer's light and dark
themes. The drawing is plain geometry in a 24-unit (or 128-unit) grid; edit and re-run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
)

REPO = Path(__file__).resolve().parent.parent
ACTION_SIZE = 24
EXTENSION_SIZE = 128

BLUE = QColor("#2f6fb6")
BLUE_DARK = QColor("#1b4a80")
GREEN = QColor("#2e9e48")
GREEN_DARK = QColor("#1d6b30")
RED = QColor("#d0413a")
RED_DARK = QColor("#8f2420")
GREY = QColor("#8a9099")
GREY_DARK = QColor("#50555d")
GOLD = QColor("#f2b418")
GOLD_DARK = QColor("#a26f00")
WHITE = QColor("#ffffff")
PAPER = QColor("#f4f6f9")

Painter = Callable[[QPainter], None]


def _pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _polygon(points: list[tuple[float, float]]) -> QPolygonF:
    return QPolygonF([QPointF(x, y) for x, y in points])


# -- action icons (24×24 grid) -----------------------------------------------------------------


def draw_add(p: QPainter) -> None:
    """A green plus."""
    cross = QPainterPath()
    cross.setFillRule(Qt.FillRule.WindingFill)  # the overlap is filled, not a hole
    cross.addRoundedRect(QRectF(9, 3, 6, 18), 1.5, 1.5)
    cross.addRoundedRect(QRectF(3, 9, 18, 6), 1.5, 1.5)
    cross = cross.simplified()
    p.setPen(_pen(GREEN_DARK, 1.2))
    p.setBrush(GREEN)
    p.drawPath(cross)


def _sheet(p: QPainter, x: float, y: float, fill: QColor) -> None:
    p.setPen(_pen(BLUE_DARK, 1.4))
    p.setBrush(fill)
    p.drawRoundedRect(QRectF(x, y, 12, 14), 2, 2)
    p.setPen(_pen(BLUE, 1.4))
    for row in (4.5, 8, 11.5):
        p.drawLine(QPointF(x + 3, y + row), QPointF(x + 9, y + row))


def draw_duplicate(p: QPainter) -> None:
    """Two overlapping sheets, the front one with a plus."""
    _sheet(p, 3.5, 2.5, PAPER)
    _sheet(p, 8.5, 7.5, WHITE)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(GREEN)
    p.drawEllipse(QPointF(18, 18), 5, 5)
    p.setPen(_pen(WHITE, 1.8))
    p.drawLine(QPointF(18, 15.4), QPointF(18, 20.6))
    p.drawLine(QPointF(15.4, 18), QPointF(20.6, 18))


def _arrow(p: QPainter, up: bool) -> None:
    points = [(12, 3), (21, 12.5), (15.5, 12.5), (15.5, 21), (8.5, 21), (8.5, 12.5), (3, 12.5)]
    if not up:
        points = [(x, 24 - y) for x, y in points]
    p.setPen(_pen(BLUE_DARK, 1.2))
    p.setBrush(BLUE)
    p.drawPolygon(_polygon(points))


def draw_up(p: QPainter) -> None:
    """A blue arrow pointing up."""
    _arrow(p, up=True)


def draw_down(p: QPainter) -> None:
    """A blue arrow pointing down."""
    _arrow(p, up=False)


def draw_delete(p: QPainter) -> None:
    """A red waste bin."""
    p.setPen(_pen(RED_DARK, 1.3))
    p.setBrush(RED)
    body = _polygon([(5.5, 7.5), (18.5, 7.5), (17.2, 21.5), (6.8, 21.5)])
    p.drawPolygon(body)
    p.drawRoundedRect(QRectF(3.5, 4.5, 17, 3), 1, 1)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(9, 2, 6, 2.5), 1, 1)
    p.setPen(_pen(WHITE, 1.4))
    for x in (9.5, 12, 14.5):
        p.drawLine(QPointF(x, 10.5), QPointF(x, 18.5))


def _badge(p: QPainter, fill: QColor, outline: QColor) -> None:
    p.setPen(_pen(outline, 1.2))
    p.setBrush(fill)
    p.drawEllipse(QPointF(12, 12), 9.6, 9.6)


def draw_status_ok(p: QPainter) -> None:
    """A green disc with a white tick: the last connection test succeeded."""
    _badge(p, GREEN, GREEN_DARK)
    p.setPen(_pen(WHITE, 2.6))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPolyline(_polygon([(7.2, 12.4), (10.6, 15.8), (16.8, 8.6)]))


def draw_status_failed(p: QPainter) -> None:
    """A red disc with a white cross: the last connection test failed."""
    _badge(p, RED, RED_DARK)
    p.setPen(_pen(WHITE, 2.6))
    p.drawLine(QPointF(8.3, 8.3), QPointF(15.7, 15.7))
    p.drawLine(QPointF(15.7, 8.3), QPointF(8.3, 15.7))


def draw_status_unknown(p: QPainter) -> None:
    """A grey disc with a white question mark: not tested yet."""
    _badge(p, GREY, GREY_DARK)
    p.setPen(_pen(WHITE, 2.4))
    p.setBrush(Qt.BrushStyle.NoBrush)
    hook = QPainterPath(QPointF(8.8, 9.6))
    hook.cubicTo(QPointF(8.8, 5.6), QPointF(15.4, 5.4), QPointF(15.3, 9.4))
    hook.cubicTo(QPointF(15.2, 12.0), QPointF(12.0, 11.8), QPointF(12.0, 14.2))
    p.drawPath(hook)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(WHITE)
    p.drawEllipse(QPointF(12, 17.6), 1.6, 1.6)


def draw_status_running(p: QPainter) -> None:
    """A blue disc with a white circular arrow: a connection test is running."""
    _badge(p, BLUE, BLUE_DARK)
    p.setPen(_pen(WHITE, 2.4))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawArc(QRectF(6.8, 6.8, 10.4, 10.4), 100 * 16, 270 * 16)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(WHITE)
    p.drawPolygon(_polygon([(9.6, 4.6), (14.6, 7.3), (9.8, 10.6)]))


def draw_folder(p: QPainter) -> None:
    """A yellow folder: a storage folder."""
    p.setPen(_pen(GOLD_DARK, 1.3))
    p.setBrush(QColor("#e0a418"))
    back = _polygon([(2.5, 5), (9, 5), (11, 7.5), (21.5, 7.5), (21.5, 19.5), (2.5, 19.5)])
    p.drawPolygon(back)
    p.setBrush(GOLD)
    p.drawPolygon(_polygon([(2.5, 19.5), (5, 10.5), (23, 10.5), (21.5, 19.5)]))


def _star(cx: float, cy: float, outer: float, inner: float) -> QPolygonF:
    import math

    points = []
    for index in range(10):
        radius = outer if index % 2 == 0 else inner
        angle = math.radians(-90 + index * 36)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return _polygon(points)


def draw_default(p: QPainter) -> None:
    """A gold star: the default server."""
    p.setPen(_pen(GOLD_DARK, 1.3))
    p.setBrush(GOLD)
    p.drawPolygon(_star(12, 12.8, 10.2, 4.3))


# -- extension / module icon (128×128 grid) ----------------------------------------------------


def _server_unit(p: QPainter, y: float, lit: QColor) -> None:
    gradient = QLinearGradient(QPointF(0, y), QPointF(0, y + 22))
    gradient.setColorAt(0, QColor("#fdfdfe"))
    gradient.setColorAt(1, QColor("#d6dde6"))
    p.setPen(_pen(QColor("#233a57"), 3))
    p.setBrush(QBrush(gradient))
    p.drawRoundedRect(QRectF(20, y, 70, 22), 5, 5)
    p.setPen(_pen(QColor("#8795a6"), 3))
    for x in (32, 40, 48):
        p.drawLine(QPointF(x, y + 7), QPointF(x, y + 15))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(lit)
    p.drawEllipse(QPointF(78, y + 11), 4.5, 4.5)


def draw_extension(p: QPainter) -> None:
    """A stack of three servers on a blue tile, with a download arrow into Slicer."""
    tile = QLinearGradient(QPointF(0, 0), QPointF(0, 128))
    tile.setColorAt(0, QColor("#3d86d6"))
    tile.setColorAt(1, QColor("#1d4f8f"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(tile))
    p.drawRoundedRect(QRectF(4, 4, 120, 120), 22, 22)

    _server_unit(p, 18, QColor("#47d16a"))
    _server_unit(p, 46, QColor("#47d16a"))
    _server_unit(p, 74, QColor("#f2b418"))

    # a round badge with a down arrow: studies come from the PACS into Slicer
    p.setPen(_pen(QColor("#ffffff"), 4))
    p.setBrush(QColor("#2e9e48"))
    p.drawEllipse(QPointF(94, 96), 24, 24)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#ffffff"))
    p.drawPolygon(
        _polygon([(88, 80), (100, 80), (100, 95), (109, 95), (94, 111), (79, 95), (88, 95)])
    )


ACTION_ICONS: dict[str, Painter] = {
    "add": draw_add,
    "duplicate": draw_duplicate,
    "up": draw_up,
    "down": draw_down,
    "delete": draw_delete,
    "default": draw_default,
    "status-ok": draw_status_ok,
    "status-failed": draw_status_failed,
    "status-unknown": draw_status_unknown,
    "status-running": draw_status_running,
    "folder": draw_folder,
}


def render(draw: Painter, size: int) -> QImage:
    """Return a transparent ``size``×``size`` image with ``draw`` applied."""
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    draw(painter)
    painter.end()
    return image


def outputs(repo: Path) -> dict[Path, tuple[Painter, int]]:
    """Return every PNG this script writes, with its drawing and size."""
    module_icons = repo / "DicomServers" / "Resources" / "Icons"
    files: dict[Path, tuple[Painter, int]] = {
        repo / "Resources" / "Icons" / "DicomServers.png": (draw_extension, EXTENSION_SIZE),
        module_icons / "DicomServers.png": (draw_extension, EXTENSION_SIZE),
    }
    for name, draw in ACTION_ICONS.items():
        files[module_icons / f"{name}.png"] = (draw, ACTION_SIZE)
    return files


def main(argv: list[str] | None = None) -> int:
    """Write every icon."""
    parser = argparse.ArgumentParser(description="Draw the DicomServers icons.")
    parser.add_argument("--out", type=Path, default=REPO, help="repository root to write into")
    args = parser.parse_args(argv)
    app = QGuiApplication.instance() or QGuiApplication([])
    for path, (draw, size) in outputs(args.out).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not render(draw, size).save(str(path)):
            print(f"error: could not write {path}", file=sys.stderr)
            return 1
        print(path.relative_to(args.out))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
