"""Render ``resources/icons/app.svg`` to ``app.png`` (256 px) and ``app.ico`` (16 to 256 px).

``python build/make_icons.py`` after changing the SVG; the outputs are committed, so a build
needs neither this script nor a display. Qt draws every size from the SVG, so small icons are
rendered for their size rather than shrunk from a large bitmap.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
PNG_SIZE = 256
#: The sizes Windows asks for in the taskbar, title bar, Explorer views and the installer.
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)


def render(renderer: QSvgRenderer, size: int) -> QImage:
    """The SVG drawn on a transparent square of ``size`` pixels."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode a PNG")
    return bytes(data.data())


def ico_bytes(images: list[bytes], sizes: tuple[int, ...]) -> bytes:
    """An ICO file holding one PNG per size.

    Written by hand because Qt's ICO writer stores a single image, and Windows picks the
    entry closest to the size it draws. PNG entries are valid in ICO files since Vista.
    """
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries, payload = [], b""
    for size, data in zip(sizes, images, strict=True):
        # Width and height are one byte each; 0 means 256.
        side = 0 if size >= 256 else size
        entries.append(struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data),
                                   offset + len(payload)))
        payload += data
    return header + b"".join(entries) + payload


def main() -> int:
    # Rendering needs a living QGuiApplication, but no screen.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _app = QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(ICONS / "app.svg"))
    if not renderer.isValid():
        print(f"error: Qt cannot read {ICONS / 'app.svg'}", file=sys.stderr)
        return 1
    (ICONS / "app.png").write_bytes(png_bytes(render(renderer, PNG_SIZE)))
    ico = ico_bytes([png_bytes(render(renderer, size)) for size in ICO_SIZES], ICO_SIZES)
    (ICONS / "app.ico").write_bytes(ico)
    for name in ("app.png", "app.ico"):
        print(f"{ICONS / name} ({(ICONS / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
