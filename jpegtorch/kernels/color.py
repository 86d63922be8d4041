"""Colour conversion: libjpeg's fixed-point constants (jccolor.c, jdcolor.c)
and the compiled RGB -> YCbCr row kernel of the encoder.

libjpeg computes with 16 fractional bits, ``FIX(x) = round(x * 65536)``::

    Y  = (FIX(.299) R + FIX(.587) G + FIX(.114) B + ONE_HALF) >> 16
    Cb = (-FIX(.16874) R - FIX(.33126) G + FIX(.5) B + CBCR_OFFSET + ONE_HALF - 1) >> 16
    Cr = (FIX(.5) R - FIX(.41869) G - FIX(.08131) B + CBCR_OFFSET + ONE_HALF - 1) >> 16

(``CBCR_OFFSET = 128 << 16``; jccolor.c folds the bias into its tables). The
decoder (jdcolor.c) adds ``(FIX(1.402) Cr' + ONE_HALF) >> 16`` etc. to Y, with
``Cb' = Cb - 128``. The matrices below are the real-valued definitions; the
torch stage (:mod:`jpegtorch.color`) imports them and turns learnable
matrices into the same fixed-point constants.
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

#: The rounding constants added before ``>> 16``: Y gets ``ONE_HALF``, Cb and Cr
#: ``CBCR_OFFSET + ONE_HALF - 1`` (jccolor.c).
FORWARD_BIAS: tuple[int, int, int] = (ONE_HALF, CBCR_OFFSET + ONE_HALF - 1,
                                      CBCR_OFFSET + ONE_HALF - 1)


def fix(x: float) -> int:
    """libjpeg's ``FIX(x)`` with the sign outside: ``sign(x) * floor(|x| * 65536 + 0.5)``."""
    magnitude = int(abs(x) * ONE + 0.5)
    return -magnitude if x < 0 else magnitude


def fixed_matrix(matrix: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """The fixed-point constants of a conversion matrix, ``int64`` of the same shape."""
    return np.array([[fix(v) for v in row] for row in matrix], dtype=np.int64)


#: JFIF's RGB -> YCbCr constants, ``[3, 3]`` int64 (``FIX(.299)`` = 19595, ...).
RGB_TO_YCBCR_FIXED: np.ndarray = fixed_matrix(RGB_TO_YCBCR)
RGB_TO_YCBCR_FIXED.flags.writeable = False


@njit(cache=True, nogil=True)
def rgb_to_ycbcr_rows(src, src_row0, y0, rows, height, width, ncomp, fixed,
                      out):  # pragma: no cover - compiled
    """RGB (or gray) rows -> component rows, as jccolor.c does (exact integers).

    Args:
        src: ``[R, W, K]`` uint8 samples (any strides), K = 3 (RGB) or 1 (gray):
            image rows ``src_row0 .. src_row0 + R - 1``.
        y0, rows: convert image rows ``y0 .. y0 + rows - 1``; rows at or below
            ``height`` repeat the last image row (jcprepct.c's bottom padding).
        ncomp: output components: 3 (Y, Cb, Cr), or 1 (Y only: libjpeg's
            rgb_gray_convert for K = 3, a plain copy for K = 1).
        fixed: ``[3, 3]`` int64 fixed-point matrix (:data:`RGB_TO_YCBCR_FIXED`).
        out: ``[ncomp, rows, Wpad]`` uint8; columns ``width .. Wpad - 1``
            repeat column ``width - 1`` (jcsample.c's expand_right_edge).
    """
    wpad = out.shape[2]
    gray_in = src.shape[2] == 1
    c00, c01, c02 = fixed[0, 0], fixed[0, 1], fixed[0, 2]
    c10, c11, c12 = fixed[1, 0], fixed[1, 1], fixed[1, 2]
    c20, c21, c22 = fixed[2, 0], fixed[2, 1], fixed[2, 2]
    b0 = ONE_HALF
    b1 = CBCR_OFFSET + ONE_HALF - 1
    for r in range(rows):
        y = min(y0 + r, height - 1) - src_row0
        if gray_in:
            yrow = out[0, r]
            for x in range(width):
                yrow[x] = src[y, x, 0]
        elif ncomp == 1:
            yrow = out[0, r]
            for x in range(width):
                red = np.int64(src[y, x, 0])
                green = np.int64(src[y, x, 1])
                blue = np.int64(src[y, x, 2])
                yrow[x] = (c00 * red + c01 * green + c02 * blue + b0) >> SCALEBITS
        else:
            yrow = out[0, r]
            cbrow = out[1, r]
            crrow = out[2, r]
            for x in range(width):
                red = np.int64(src[y, x, 0])
                green = np.int64(src[y, x, 1])
                blue = np.int64(src[y, x, 2])
                yrow[x] = (c00 * red + c01 * green + c02 * blue + b0) >> SCALEBITS
                cbrow[x] = (c10 * red + c11 * green + c12 * blue + b1) >> SCALEBITS
                crrow[x] = (c20 * red + c21 * green + c22 * blue + b1) >> SCALEBITS
        for c in range(ncomp):
            row = out[c, r]
            edge = row[width - 1]
            for x in range(width, wpad):
                row[x] = edge
