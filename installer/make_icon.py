"""Draw the application icon with our own code (matplotlib + Pillow, no download).

Writes ``installer/icons/mrt-dosimetry.png`` (512 px), ``.ico`` (Windows, 16-256 px)
and ``.icns`` (macOS).  The picture: a pair of kidney-like uptake blobs as a dose
colour wash with isodose lines, on a dark rounded tile (the workstation's palette).

Usage::

    .venv/bin/python installer/make_icon.py      # rewrites the three files
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyBboxPatch
from PIL import Image

OUT_DIR = Path(__file__).resolve().parent / "icons"
SIZE_PX = 512


def _dose_field(n: int = 400) -> np.ndarray:
    """Two elongated Gaussian 'kidneys' and a faint background, peak 1."""
    y, x = np.mgrid[-1 : 1 : n * 1j, -1 : 1 : n * 1j]
    field = np.zeros_like(x)
    for cx, tilt in ((-0.38, -0.35), (0.38, 0.35)):
        u = (x - cx) * np.cos(tilt) + (y + 0.02) * np.sin(tilt)
        v = -(x - cx) * np.sin(tilt) + (y + 0.02) * np.cos(tilt)
        field += np.exp(-(u**2 / (2 * 0.13**2) + v**2 / (2 * 0.30**2)))
    field += 0.15 * np.exp(-(x**2 + y**2) / (2 * 0.6**2))
    return field / field.max()


def render_png(size_px: int = SIZE_PX) -> Image.Image:
    """The icon as an RGBA image of ``size_px`` square."""
    dpi = 100
    fig = plt.figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    fig.patch.set_alpha(0.0)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    tile = FancyBboxPatch(
        (0.04, 0.04),
        0.92,
        0.92,
        boxstyle="round,pad=0,rounding_size=0.16",
        facecolor="#1b1e23",
        edgecolor="#2f6db5",
        linewidth=size_px / 64,
    )
    ax.add_patch(tile)
    field = _dose_field()
    extent = (0.12, 0.88, 0.12, 0.88)
    levels = np.linspace(0.1, 1.0, 10)
    wash = ax.contourf(field, levels=levels, cmap="inferno", extent=extent, origin="lower")
    wash.set_clip_path(tile)
    lines = ax.contour(
        field,
        levels=[0.3, 0.6, 0.9],
        colors="#dfe3e8",
        linewidths=size_px / 256,
        extent=extent,
        origin="lower",
    )
    lines.set_clip_path(tile)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, transparent=True)
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGBA").resize((size_px, size_px))


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    image = render_png(SIZE_PX)
    image.save(OUT_DIR / "mrt-dosimetry.png")
    image.save(
        OUT_DIR / "mrt-dosimetry.ico",
        sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)],
    )
    image.save(OUT_DIR / "mrt-dosimetry.icns")
    for name in ("mrt-dosimetry.png", "mrt-dosimetry.ico", "mrt-dosimetry.icns"):
        path = OUT_DIR / name
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
