"""Settings, records and image metrics of a comparison (:mod:`jpegtorch.compare`).

The names shared by the other modules of the package live here: the codec
names, :class:`JPEGSettings`, :class:`Record` (one measurement), the errors,
the install hints, the metrics of a decoded image and the parsing of quality
lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

REFERENCES: tuple[str, ...] = ("opencv", "pillow", "libjpeg", "mozjpeg")
"""The reference libraries, in their ``--ref`` spelling."""
CODECS: tuple[str, ...] = ("jpeg", "learned")
"""jpegtorch's codecs: ``jpeg`` (JPEG writer + decoder) and ``learned`` (.jtc)."""
OURS = "jpegtorch"
LEARNED = "jpegtorch-learned"
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
DEFAULT_QUALITIES: tuple[int, ...] = (10, 30, 50, 70, 90)
SSIM_MIN_SIZE = 11
"""SSIM needs images at least this many pixels wide and high (its window)."""
MIN_BD_POINTS = 4
"""BD-rate needs at least this many rate-distortion points per curve."""

INSTALL_HINTS: dict[str, str] = {
    "opencv": "the opencv reference needs OpenCV: pip install 'jpegtorch[opencv]' "
              "(or opencv-python-headless)",
    "pillow": "the pillow reference needs Pillow: pip install pillow",
    "libjpeg": "the libjpeg reference needs libjpeg-turbo's cjpeg and djpeg on the PATH: "
               "apt install libjpeg-turbo-progs (Debian/Ubuntu), brew install jpeg-turbo "
               "(macOS)",
    "mozjpeg": "the mozjpeg reference needs mozjpeg's cjpeg: give --mozjpeg PATH (the cjpeg "
               "program, or the folder holding it) or put it on the PATH as cjpeg, mozcjpeg or "
               "mozjpeg (build it from https://github.com/mozilla/mozjpeg)",
    "matplotlib": "--plot needs matplotlib: pip install 'jpegtorch[plot]'",
    "learned": "the learned codec needs its model weights",
}


_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


class MissingDependency(RuntimeError):
    """A reference library, program or extra is not installed (the message says which)."""


class CodecFailure(RuntimeError):
    """A codec failed on an image (the message names the codec)."""


# --------------------------------------------------------------------------------------
# settings, records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JPEGSettings:
    """JPEG settings shared by jpegtorch and the references.

    ``tables`` are base quantization tables ``(luma, chroma)``, 64 values each
    in natural order, scaled by quality as libjpeg scales them (quality 50 =
    as given). jpegtorch, Pillow and cjpeg take them; OpenCV cannot and keeps
    the standard (Annex K) tables.

    ``progressive``: jpegtorch, Pillow, OpenCV and libjpeg's cjpeg write
    progressive files (libjpeg's default progression, optimal Huffman tables).

    ``trellis`` and ``tune`` (None, "psnr" or "ssim") apply to jpegtorch only
    (:func:`jpegtorch.encode_jpeg`: quantized values chosen per image, so no
    longer libjpeg-turbo's bytes; with ``tune`` and ``progressive`` False the
    encoder may still pick a progressive file): the way to measure them
    against mozjpeg (``tune="psnr"`` with ``mozjpeg_args=("-tune-psnr",)``).

    mozjpeg runs with its own defaults (trellis quantization, progressive
    scans searched per image, optimized Huffman codes, its default
    quantization table) plus ``subsampling`` and ``tables`` from here, and
    ``mozjpeg_args`` (extra cjpeg switches such as ``("-tune-psnr",)``);
    ``mozjpeg`` is its cjpeg program or the folder holding it (None: looked up
    on the PATH).
    """

    subsampling: str = "4:2:0"
    optimize: bool = False
    tables: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    progressive: bool = False
    trellis: bool = False
    tune: str | None = None
    mozjpeg: str | None = None
    mozjpeg_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {', '.join(SUBSAMPLINGS)}")
        if self.tables is not None and (len(self.tables) != 2
                                        or any(len(t) != 64 for t in self.tables)):
            raise ValueError("tables must be two tables of 64 values (luma, chroma)")
        if self.tune not in (None, "psnr", "ssim"):
            raise ValueError(f"tune must be None, 'psnr' or 'ssim', got {self.tune!r}")


@dataclass
class Record:
    """The measurements of one (image, codec, quality)."""

    image: str
    codec: str
    quality: int
    width: int
    height: int
    bytes: int
    bpp: float
    psnr: float
    psnr_y: float
    ssim: float | None
    ms_ssim: float | None
    encode_ms: float
    decode_ms: float
    bytes_identical: bool | None = None
    pixels_identical: bool | None = None
    psnr_vs_jpegtorch: float | None = None
    decoder_identical: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: floats rounded sensibly, infinities as ``None``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                if not math.isfinite(value):
                    value = None
                elif f.name.endswith("_ms"):
                    value = round(value, 3)
                elif f.name in ("ssim", "ms_ssim"):
                    value = round(value, 6)
                else:
                    value = round(value, 4)
            out[f.name] = value
        return out


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Record))
"""The keys of every JSON record, and the CSV columns, in order."""


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def _as_hwc(image: Any) -> np.ndarray:
    """uint8 ``[H, W, C]`` (C = 1 or 3) from a tensor ``[C, H, W]`` or an array
    ``[H, W]`` / ``[H, W, C]``."""
    if hasattr(image, "detach"):  # a torch tensor [C, H, W] (or [H, W])
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected a gray or RGB image, got shape {tuple(array.shape)}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    return np.ascontiguousarray(array)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two ``[H, W, C]`` images of the same shape (``inf`` when equal)."""
    from jpegtorch import metrics

    return float(metrics.psnr(_chw(a).double(), _chw(b).double(), data_range=peak)[0])


def luma(image: np.ndarray) -> np.ndarray:
    """JFIF luma ``0.299 R + 0.587 G + 0.114 B`` as float64 ``[H, W, 1]`` (gray: itself)."""
    array = np.asarray(image, dtype=np.float64)
    if array.shape[2] == 1:
        return array
    return (array @ np.asarray(_LUMA_WEIGHTS))[:, :, None]


def _chw(array: np.ndarray) -> Any:
    import torch

    chw = np.ascontiguousarray(np.asarray(array).transpose(2, 0, 1))
    return torch.from_numpy(chw if chw.flags.writeable else chw.copy())


def image_metrics(original: Any, decoded: Any) -> dict[str, float | None]:
    """``psnr``, ``psnr_y``, ``ssim`` and ``ms_ssim`` of a decoded image.

    ``original`` / ``decoded``: uint8 tensors ``[C, H, W]`` or arrays
    ``[H, W(, C)]``. The metrics are :mod:`jpegtorch.metrics`' (pytorch-msssim
    for SSIM and MS-SSIM), computed in float64. ``ssim`` is ``None`` for
    images under 11 pixels a side, ``ms_ssim`` when the shorter side is under
    161 pixels (too small for five scales).
    """
    from jpegtorch import metrics

    a, b = _as_hwc(original), _as_hwc(decoded)
    if a.shape != b.shape:
        raise ValueError(f"decoded shape {b.shape} differs from the original's {a.shape}")
    x, y = _chw(a).double(), _chw(b).double()
    side = min(a.shape[:2])
    return {
        "psnr": float(metrics.psnr(x, y, data_range=255.0)[0]),
        "psnr_y": float(metrics.psnr(_chw(luma(a)), _chw(luma(b)), data_range=255.0)[0]),
        "ssim": float(metrics.ssim(x, y, data_range=255.0)[0]) if side >= SSIM_MIN_SIZE
        else None,
        "ms_ssim": float(metrics.ms_ssim(x, y, data_range=255.0)[0])
        if side >= metrics.MS_SSIM_MIN_SIZE else None,
    }



# --------------------------------------------------------------------------------------
# qualities
# --------------------------------------------------------------------------------------


def parse_qualities(text: str, low: int = 1, high: int = 100) -> list[int]:
    """``"10,50,90"``, ``"5:95:5"`` (start:stop:step, stop included) or a mix,
    as a sorted list without repeats; raises ``ValueError`` with a message."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                pieces = [int(p) for p in part.split(":")]
                if len(pieces) not in (2, 3):
                    raise ValueError
                start, stop = pieces[0], pieces[1]
                step = pieces[2] if len(pieces) == 3 else 1
                if step <= 0 or stop < start:
                    raise ValueError
                values.extend(range(start, stop + 1, step))
            else:
                values.append(int(part))
        except ValueError:
            raise ValueError(f"{part!r}: give a list (10,50,90) or a range "
                             "(start:stop:step, e.g. 5:95:5)") from None
    if not values:
        raise ValueError("no values given")
    bad = [v for v in values if not low <= v <= high]
    if bad:
        raise ValueError(f"{bad[0]} is outside {low}..{high}")
    return sorted(set(values))
