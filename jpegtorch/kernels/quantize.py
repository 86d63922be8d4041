"""Quantization as libjpeg does it: the Annex K base tables, IJG quality
scaling (jcparam.c) and the quantizer (jcdctmgr.c), compiled.

Quality scaling is ``jpeg_quality_scaling`` + ``jpeg_add_quant_table`` with
``force_baseline``::

    scale = 5000 // q  if q < 50  else  200 - 2 q
    entry = clamp((base * scale + 50) // 100, 1, 255)

The quantizer divides the FDCT output ``t`` (scaled by 8) by ``8 q`` and
rounds half away from zero: ``sign(t) * ((|t| + 4 q) // (8 q))``. (libjpeg-turbo
multiplies by a reciprocal with a correction term instead of dividing; that is
exact for its 16-bit inputs, so the results are the division's.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: The IJG (Annex K, Table K.1/K.2) base tables, 64 values in natural order.
ANNEX_K_LUMA: tuple[int, ...] = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
ANNEX_K_CHROMA: tuple[int, ...] = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip


def quality_scale(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling`` for an integer quality 1..100 (percent)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def scaled_tables(quality: int, base: np.ndarray | None = None) -> np.ndarray:
    """Quality-scaled baseline tables ``[T, 64]`` int32 (values 1..255).

    Args:
        quality: 1..100.
        base: ``[T, 64]`` base tables (natural order, 0..65535), or None for
            Annex K (``T = 2``: luma, chroma).
    """
    if base is None:
        base = np.array((ANNEX_K_LUMA, ANNEX_K_CHROMA), dtype=np.int64)
    scaled = (np.asarray(base, dtype=np.int64).reshape(-1, 64) * quality_scale(quality)
              + 50) // 100
    return np.clip(scaled, 1, 255).astype(np.int32)


@njit(inline="always")
def quantize_value(t, divisor):  # pragma: no cover - compiled
    """``sign(t) * ((|t| + divisor // 2) // divisor)``; ``divisor = 8 q``."""
    if t < 0:
        return -((-t + (divisor >> 1)) // divisor)
    return (t + (divisor >> 1)) // divisor
