"""Colour conversion: libjpeg's fixed-point constants (jccolor.c, jdcolor.c)
and the compiled YCbCr -> RGB row kernel of the decoder.

libjpeg computes with 16 fractional bits, ``FIX(x) = round(x * 65536)``::

    Y  = (FIX(.299) R + FIX(.587) G + FIX(.114) B + ONE_HALF) >> 16
    Cb = (-FIX(.16874) R - FIX(.33126) G + FIX(.5) B + CBCR_OFFSET + ONE_HALF - 1) >> 16
    Cr = (FIX(.5) R - FIX(.41869) G - FIX(.08131) B + CBCR_OFFSET + ONE_HALF - 1) >> 16

(``CBCR_OFFSET = 128 << 16``; jccolor.c folds the bias into its tables). The
decoder (jdcolor.c) adds ``(FIX(1.402) Cr' + ONE_HALF) >> 16`` etc. to Y, with
``Cb' = Cb - 128``, and clamps to 0..255. The matrices below are the
real-valued definitions; the torch stage (:mod:`jpegtorch.color`) turns
learnable matrices into the same fixed-point constants.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SCALEBITS = 16
ONE = 1 << SCALEBITS
ONE_HALF = 1 << (SCALEBITS - 1)
CBCR_OFFSET = 128 << SCALEBITS

# RGB -> YCbCr (rows Y, Cb, Cr; columns R, G, B), JFIF's matrix
RGB_TO_YCBCR: tuple[tuple[float, ...], ...] = (
    (0.29900, 0.58700, 0.11400),
    (-0.16874, -0.33126, 0.50000),
    (0.50000, -0.41869, -0.08131),
)
# YCbCr -> RGB: contributions of (Cb - 128, Cr - 128) to (R, G, B); Y has weight 1.
YCBCR_TO_RGB: tuple[tuple[float, ...], ...] = (
    (0.0, 1.40200),
    (-0.34414, -0.71414),
    (1.77200, 0.0),
)


def fix(x: float) -> int:
    """libjpeg's ``FIX(x)`` with the sign outside: ``sign(x) * floor(|x| * 65536 + 0.5)``."""
    magnitude = int(abs(x) * ONE + 0.5)
    return -magnitude if x < 0 else magnitude


def fixed_matrix(matrix: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """The fixed-point constants of a conversion matrix, ``int64`` of the same shape."""
    return np.array([[fix(v) for v in row] for row in matrix], dtype=np.int64)


#: JFIF's YCbCr -> RGB constants, ``[3, 2]`` int64 (``FIX(1.402)`` = 91881, ...).
YCBCR_TO_RGB_FIXED: np.ndarray = fixed_matrix(YCBCR_TO_RGB)
YCBCR_TO_RGB_FIXED.flags.writeable = False

_HALF = np.int32(ONE_HALF)  # numba freezes module globals as constants
_SHIFT = np.int32(SCALEBITS)

# colour spaces of the decoder's output stage
GRAY = 0
YCBCR = 1
RGB = 2


@njit(inline="always")
def _clamp(x):  # pragma: no cover - compiled
    return np.uint8(min(max(x, np.int32(0)), np.int32(255)))


@njit(nogil=True)
def _ycc_rgb(y, cb, cr, r_out, g_out, b_out, rb, rr, gb, gr, bb, br,
             width):  # pragma: no cover - compiled
    """The conversion loop, all int32 (exact: the sums stay below 2**25), with
    the constants as scalar arguments: compiled on its own, the loop
    vectorises (several times faster than with the constants read inside the
    band driver)."""
    i32 = np.int32
    for x in range(width):
        yy = i32(y[x])
        u = i32(i32(cb[x]) - i32(128))
        v = i32(i32(cr[x]) - i32(128))
        r_out[x] = _clamp(i32(yy + (i32(i32(i32(rb * u) + i32(rr * v)) + _HALF) >> _SHIFT)))
        g_out[x] = _clamp(i32(yy + (i32(i32(i32(gb * u) + i32(gr * v)) + _HALF) >> _SHIFT)))
        b_out[x] = _clamp(i32(yy + (i32(i32(i32(bb * u) + i32(br * v)) + _HALF) >> _SHIFT)))


@njit(inline="always")
def ycc_rgb_row(y, cb, cr, width, fixed, out, row, planar, tmp):  # pragma: no cover - compiled
    """jdcolor.c's ``ycc_rgb_convert`` of one row.

    Args:
        y, cb, cr: uint8 rows (at least ``width`` samples).
        fixed: ``[3, 2]`` int64 fixed-point chroma constants (rows R, G, B).
        out: uint8 ``[H, W, 3]`` (``planar`` False) or ``[3, H, W]`` (True).
        row: the output row.
        tmp: uint8 ``[3, >= width]`` work rows (interleaved output).
    """
    i32 = np.int32
    if planar:
        r_out = out[0, row]
        g_out = out[1, row]
        b_out = out[2, row]
    else:
        r_out = tmp[0]
        g_out = tmp[1]
        b_out = tmp[2]
    _ycc_rgb(y, cb, cr, r_out, g_out, b_out, i32(fixed[0, 0]), i32(fixed[0, 1]),
             i32(fixed[1, 0]), i32(fixed[1, 1]), i32(fixed[2, 0]), i32(fixed[2, 1]), width)
    if not planar:  # interleave through a flat view (2-D indexing is slow in numba)
        pix = out[row].reshape(width * 3)
        for x in range(width):
            pix[3 * x] = r_out[x]
            pix[3 * x + 1] = g_out[x]
            pix[3 * x + 2] = b_out[x]
