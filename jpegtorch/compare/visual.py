"""Pictures of a comparison: the rate-distortion chart (``--plot``) and the
``--save`` outputs (files, decodes and side-by-side crops)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .records import INSTALL_HINTS, LEARNED, MissingDependency, Record, luma
from .report import _mean

CROP = 128
ZOOM = 2
DIFF_GAIN = 4


def _busiest_tile(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size``-square tile (on a half-tile grid) with the
    most detail: there the artefacts show."""
    height, width = image.shape[:2]
    if height <= size and width <= size:
        return 0, 0
    gray = luma(image)[:, :, 0]
    step = max(8, size // 2)
    best, corner = -1.0, (0, 0)
    for top in range(0, max(1, height - size + 1), step):
        for left in range(0, max(1, width - size + 1), step):
            tile = gray[top : top + size, left : left + size]
            detail = float(np.abs(np.diff(tile, axis=0)).mean()
                           + np.abs(np.diff(tile, axis=1)).mean())
            if detail > best:
                best, corner = detail, (top, left)
    return corner


def side_by_side(original: np.ndarray, decoded: np.ndarray, *, size: int = CROP,
                 zoom: int = ZOOM, gain: int = DIFF_GAIN) -> np.ndarray:
    """``[original | decoded | difference]`` crops, uint8 ``[H, W, C]``.

    The crop is the most detailed ``size``-square tile, enlarged ``zoom`` times
    (nearest neighbour); the difference is ``128 + gain * (decoded - original)``
    per channel, so mid-grey means no error.
    """
    top, left = _busiest_tile(original, size)
    a = original[top : top + size, left : left + size].astype(np.int16)
    b = decoded[top : top + size, left : left + size].astype(np.int16)
    diff = np.clip(128 + gain * (b - a), 0, 255)
    panels = [np.repeat(np.repeat(p.astype(np.uint8), zoom, 0), zoom, 1) for p in (a, b, diff)]
    gap = np.full((panels[0].shape[0], 4, a.shape[2]), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def save_outputs(folder: Path, original: np.ndarray, codec: str, quality: int, extension: str,
                 data: bytes, decoded: np.ndarray) -> None:
    """Write ``CODEC_qNNN.jpg`` (or ``.jtc``; ``_lN`` for learned levels), the
    decoded ``CODEC_qNNN.png`` and ``CODEC_qNNN_crop.png`` into ``folder``."""
    from PIL import Image

    stem = f"{codec}_l{quality}" if codec == LEARNED else f"{codec}_q{quality:03d}"
    (folder / f"{stem}{extension}").write_bytes(data)

    def png(array: np.ndarray, path: Path) -> None:
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)

    png(decoded, folder / f"{stem}.png")
    png(side_by_side(original, decoded), folder / f"{stem}_crop.png")



# --------------------------------------------------------------------------------------
# rate-distortion plot
# --------------------------------------------------------------------------------------

PLOT_FORMATS = ("png", "svg")


def check_plotting() -> None:
    """Raise :class:`MissingDependency` when matplotlib is not installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependency(INSTALL_HINTS["matplotlib"])


def rd_curves(records: Sequence[Record]) -> dict[str, list[tuple[float, float, float]]]:
    """Per codec, the mean (bpp, PSNR, SSIM) over images at each quality, by bpp."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for codec in dict.fromkeys(r.codec for r in records):
        points = []
        for quality in sorted({r.quality for r in records if r.codec == codec}):
            group = [r for r in records if r.codec == codec and r.quality == quality]
            bpp, value, sim = (_mean(r.bpp for r in group), _mean(r.psnr for r in group),
                               _mean(r.ssim for r in group))
            if bpp is not None and value is not None:
                points.append((bpp, value, math.nan if sim is None else sim))
        curves[codec] = sorted(points)
    return curves


def plot_rd(records: Sequence[Record], fmt: str = "png", *, title: str | None = None) -> bytes:
    """A rate-distortion chart (PSNR and SSIM against bpp, one curve per codec,
    means over the images at each quality) as PNG or SVG bytes.

    Raises:
        MissingDependency: matplotlib is not installed.
    """
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(PLOT_FORMATS)}")
    check_plotting()
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    curves = rd_curves(records)
    images = len({r.image for r in records})
    figure = Figure(figsize=(10, 4.2), dpi=110, layout="constrained")
    axes = figure.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "x", "s", "^", "v", "D"]
    for index, (codec, points) in enumerate(curves.items()):
        if not points:
            continue
        bpp = [p[0] for p in points]
        style = {"linestyle": styles[index % len(styles)], "marker": markers[index % len(markers)],
                 "markersize": 5 if index else 6, "linewidth": 1.6, "label": codec,
                 "markerfacecolor": "none" if index else None}
        axes[0].plot(bpp, [p[1] for p in points], **style)
        axes[1].plot(bpp, [p[2] for p in points], **style)
    for ax, label in zip(axes, ("PSNR (dB, RGB)", "SSIM"), strict=True):
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
    figure.suptitle(title or f"Rate-distortion, mean over {images} image"
                    f"{'s' if images != 1 else ''}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=_plot_metadata(fmt))
    return buffer.getvalue()


def _plot_metadata(fmt: str) -> dict[str, Any]:
    # no creation dates: the same records give the same file
    return {"Software": None} if fmt == "png" else {"Date": None}

