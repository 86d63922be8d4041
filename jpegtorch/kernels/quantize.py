"""Quantization as libjpeg does it: the Annex K base tables, IJG quality
scaling (jcparam.c) and the quantizer (jcdctmgr.c), compiled.

Quality scaling is ``jpeg_quality_scaling`` + ``jpeg_add_quant_table`` with
``force_baseline``::

    scale = 5000 // q  if q < 50  else  200 - 2 q
    entry = clamp((base * scale + 50) // 100, 1, 255)

(without ``force_baseline``, plain ``cjpeg``: clamped to 1..32767 instead).

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


def scaled_tables(quality: int, base: np.ndarray | None = None, *,
                  force_baseline: bool = True) -> np.ndarray:
    """Quality-scaled tables ``[T, 64]`` int32 (values 1..255, or 1..32767).

    Args:
        quality: 1..100.
        base: ``[T, 64]`` base tables (natural order, 0..65535), or None for
            Annex K (``T = 2``: luma, chroma).
        force_baseline: False keeps libjpeg's 1..32767 range (plain ``cjpeg``)
            instead of clamping to 1..255.
    """
    if base is None:
        base = np.array((ANNEX_K_LUMA, ANNEX_K_CHROMA), dtype=np.int64)
    scaled = (np.asarray(base, dtype=np.int64).reshape(-1, 64) * quality_scale(quality)
              + 50) // 100
    return np.clip(scaled, 1, 255 if force_baseline else 32767).astype(np.int32)


#: Reciprocal shift: ``x // d == (x * reciprocal(d)) >> RECIPROCAL_SHIFT`` exactly
#: for 0 <= x < 2**20 and 1 <= d < 2**20 (``x * d < 2**40``; products < 2**61).
RECIPROCAL_SHIFT = 40


def reciprocals(divisors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(half, multiplier)`` int64 arrays for :func:`quantize_rows`: ``divisor // 2``
    and ``2**40 // divisor + 1``.

    With ``m = floor(2**s / d) + 1``: ``x m / 2**s`` lies in ``(x/d, x/d + x/2**s]``,
    and ``x/d`` is at least ``1/d`` below the next integer, so the floor is
    ``x // d`` whenever ``x d < 2**s``. (The FDCT output is below 2**16 in
    magnitude and ``d = 8 q <= 8 * 65535``.)
    """
    d = np.asarray(divisors, dtype=np.int64)
    if d.size and (d.min() < 1 or d.max() >= 1 << 20):
        raise ValueError("quantizer divisors must be 1 .. 2**20 - 1")
    return d >> 1, (np.int64(1) << RECIPROCAL_SHIFT) // d + 1


@njit(cache=True, nogil=True)
def quantize_rows(coef, nblocks, half, mult, out, out_base, masks, mask_base,
                  mask_lut):  # pragma: no cover - compiled
    """Quantize ``nblocks`` FDCT outputs as libjpeg does.

    ``coef``: ``[>= nblocks * 64]`` int32 FDCT output (natural order; from
    :func:`jpegtorch.kernels.dct.fdct_rows`); ``half``/``mult``: ``[64]`` from
    :func:`reciprocals` of the divisors ``8 q``. Block ``b``'s value ``k`` is
    ``sign(t) * ((|t| + d // 2) // d)`` of ``t = coef[b * 64 + k]``, written to
    ``out[out_base + b * 64 + k]`` (natural order).

    When ``masks`` is not empty, ``masks[mask_base + b]`` receives the block's
    nonzero mask with its bits moved as ``mask_lut`` (``[8, 256]`` int64) says:
    the mask with bit ``k`` set for each nonzero value ``k`` is looked up a
    byte at a time (``mask_lut[j, byte j]``, OR-ed). The JPEG writer's table
    gives the entropy coder's AC mask (bit ``z - 1`` for zigzag position ``z``).
    """
    with_masks = masks.shape[0] > 0
    for b in range(nblocks):
        src = b * 64
        dst = out_base + src
        for k in range(64):  # branch-free, so that it vectorizes
            t = np.int64(coef[src + k])
            a = t if t >= 0 else -t
            v = ((half[k] + a) * mult[k]) >> RECIPROCAL_SHIFT
            out[dst + k] = v if t >= 0 else -v
        if with_masks:
            m = np.int64(0)
            for k in range(64):
                m |= np.int64(out[dst + k] != 0) << k
            masks[mask_base + b] = (
                mask_lut[0, m & 255] | mask_lut[1, (m >> 8) & 255]
                | mask_lut[2, (m >> 16) & 255] | mask_lut[3, (m >> 24) & 255]
                | mask_lut[4, (m >> 32) & 255] | mask_lut[5, (m >> 40) & 255]
                | mask_lut[6, (m >> 48) & 255] | mask_lut[7, (m >> 56) & 255])
