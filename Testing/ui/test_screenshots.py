"""``make screenshots``: the scripted tour runs offscreen and writes every picture, 450 px wide."""

from __future__ import annotations

from DicomServersUI import screenshots
from PySide6 import QtGui


def test_tour_writes_every_screenshot_at_panel_width(qapp, tmp_path):
    written = screenshots.tour(tmp_path)
    names = {path.name for path in written}
    assert {"panel.png", "panel-full.png", "validation.png", "connection-failed.png"} <= names
    assert {f"group-{name}.png" for _, name in screenshots.GROUPS} <= names
    assert "delete-confirmation.png" in names
    for name in ("panel.png", "panel-full.png"):
        image = QtGui.QImage(str(tmp_path / name))
        assert image.width() == screenshots.PANEL_WIDTH
        assert image.height() > 200
