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

# colour spaces of the decoder's output stage
GRAY = 0
YCBCR = 1
RGB = 2


@njit(inline="always")
def _clamp(x):  # pragma: no cover - compiled
    return 0 if x < 0 else (255 if x > 255 else x)


@njit(inline="always")
def ycc_rgb_row(y, cb, cr, width, fixed, out, row, planar):  # pragma: no cover - compiled
    """jdcolor.c's ``ycc_rgb_convert`` of one row.

    Args:
        y, cb, cr: uint8 rows (at least ``width`` samples).
        fixed: ``[3, 2]`` int64 fixed-point chroma constants (rows R, G, B).
        out: uint8 ``[H, W, 3]`` (``planar`` False) or ``[3, H, W]`` (True).
        row: the output row.
    """
    rb = np.int32(fixed[0, 0])
    rr = np.int32(fixed[0, 1])
    gb = np.int32(fixed[1, 0])
    gr = np.int32(fixed[1, 1])
    bb = np.int32(fixed[2, 0])
    br = np.int32(fixed[2, 1])
    for x in range(width):
        yy = np.int32(y[x])
        u = np.int32(cb[x]) - 128
        v = np.int32(cr[x]) - 128
        r = _clamp(yy + ((rb * u + rr * v + ONE_HALF) >> SCALEBITS))
        g = _clamp(yy + ((gb * u + gr * v + ONE_HALF) >> SCALEBITS))
        b = _clamp(yy + ((bb * u + br * v + ONE_HALF) >> SCALEBITS))
        if planar:
            out[0, row, x] = r
            out[1, row, x] = g
            out[2, row, x] = b
        else:
            out[row, x, 0] = r
            out[row, x, 1] = g
            out[row, x, 2] = b
