"""Colour conversion: libjpeg's fixed-point constants (jccolor.c, jdcolor.c)
the compiled RGB -> YCbCr row kernel of the encoder and the YCbCr -> RGB row
kernel of the decoder.

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
_JFIF = tuple(np.int32(v) for v in RGB_TO_YCBCR_FIXED.reshape(9))  # compile-time constants


@njit(inline="always")
def _ycc(red, green, blue, c, b0, b1):  # pragma: no cover - compiled
    """Y, Cb, Cr of one pixel; ``c``: the nine int32 constants (a tuple: an
    array handed to an inlined function would cost reference counting per
    pixel). int32 arithmetic: every sum stays below 2**24."""
    i32 = np.int32
    y = i32(i32(i32(i32(c[0] * red) + i32(c[1] * green)) + i32(c[2] * blue)) + b0) >> SCALEBITS
    cb = i32(i32(i32(i32(c[3] * red) + i32(c[4] * green)) + i32(c[5] * blue)) + b1) >> SCALEBITS
    cr = i32(i32(i32(i32(c[6] * red) + i32(c[7] * green)) + i32(c[8] * blue)) + b1) >> SCALEBITS
    return np.uint8(y), np.uint8(cb), np.uint8(cr)


@njit(cache=True, nogil=True)
def rgb_to_ycbcr_rows(interleaved, planar, src_row0, y0, rows, height, width, ncomp,
                      out):  # pragma: no cover - compiled
    """RGB (or gray) rows -> component rows, as jccolor.c does with JFIF's
    matrix (exact integers).

    Args:
        interleaved: ``[R, W * K]`` uint8, C-contiguous (rows of HWC pixels), or
            empty when ``planar`` is given; K = 3 (RGB) or 1 (gray).
        planar: ``[K, R, W]`` uint8, C-contiguous (CHW), or empty. Either holds
            image rows ``src_row0 .. src_row0 + R - 1``.
        y0, rows: convert image rows ``y0 .. y0 + rows - 1``; rows at or below
            ``height`` repeat the last image row (jcprepct.c's bottom padding).
        ncomp: output components: 3 (Y, Cb, Cr), or 1 (Y only: libjpeg's
            rgb_gray_convert for K = 3, a plain copy for K = 1).
        out: ``[ncomp, rows, Wpad]`` uint8; columns ``width .. Wpad - 1``
            repeat column ``width - 1`` (jcsample.c's expand_right_edge).
    """
    # JFIF's constants (:data:`RGB_TO_YCBCR_FIXED`) as compile-time constants and
    # int32 arithmetic (each step truncated to int32, exact here), on contiguous
    # rows: so that LLVM vectorizes the loops.
    i32 = np.int32
    c = _JFIF
    b0 = i32(ONE_HALF)
    b1 = i32(CBCR_OFFSET + ONE_HALF - 1)
    use_planar = planar.shape[0] > 0
    channels = planar.shape[0] if use_planar else interleaved.shape[1] // width
    wpad = out.shape[2]
    for r in range(rows):
        y = min(y0 + r, height - 1) - src_row0
        yrow = out[0, r]
        if channels == 1:
            if use_planar:
                s = planar[0, y]
            else:
                s = interleaved[y]
            for x in range(width):
                yrow[x] = s[x]
        elif use_planar:
            red_row = planar[0, y]
            green_row = planar[1, y]
            blue_row = planar[2, y]
            if ncomp == 1:
                for x in range(width):
                    yrow[x] = _ycc(i32(red_row[x]), i32(green_row[x]), i32(blue_row[x]),
                                   c, b0, b1)[0]
            else:
                cbrow = out[1, r]
                crrow = out[2, r]
                for x in range(width):
                    yrow[x], cbrow[x], crrow[x] = _ycc(
                        i32(red_row[x]), i32(green_row[x]), i32(blue_row[x]), c, b0, b1)
        else:
            s = interleaved[y]
            if ncomp == 1:
                for x in range(width):
                    yrow[x] = _ycc(i32(s[3 * x]), i32(s[3 * x + 1]), i32(s[3 * x + 2]),
                                   c, b0, b1)[0]
            else:
                cbrow = out[1, r]
                crrow = out[2, r]
                for x in range(width):
                    yrow[x], cbrow[x], crrow[x] = _ycc(
                        i32(s[3 * x]), i32(s[3 * x + 1]), i32(s[3 * x + 2]), c, b0, b1)
        for k in range(ncomp):
            row = out[k, r]
            edge = row[width - 1]
            for x in range(width, wpad):
                row[x] = edge


# ---------------------------------------------------------------- decoder: YCbCr -> RGB

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
