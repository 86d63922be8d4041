"""libjpeg's islow DCT: its integer constants (jfdctint.c, jidctint.c), the
compiled forward DCT of the encoder and the inverse DCT of the decoder.

Both transforms are two passes of an integer butterfly followed by a rounding
right shift, ``DESCALE(x, n) = (x + 2**(n-1)) >> n``, with 13-bit constants
(``CONST_BITS``) and ``PASS1_BITS = 2`` extra bits of precision between the
passes. :func:`fdct_1d` is jfdctint.c's butterfly *before* DESCALE; its DC and
AC4 outputs are ``(tmp10 ± tmp11) << dc_shift`` so that all eight outputs of a
pass share one shift:

- pass 1 (rows): ``dc_shift = PASS1_BITS + FDCT_SHIFT1``, then DESCALE by
  ``FDCT_SHIFT1 = 11`` (exactly jfdctint.c's ``<< PASS1_BITS`` for DC/AC4);
- pass 2 (columns): ``dc_shift = FDCT_SHIFT2 - PASS1_BITS``, then DESCALE by
  ``FDCT_SHIFT2 = 15`` (exactly its ``DESCALE(.., PASS1_BITS)`` for DC/AC4).

The result is the DCT scaled by 8, which the quantizer divides by ``8 q``.
The same butterfly, run over Python integers on unit vectors, gives the
torch stage (:mod:`jpegtorch.dct`) its exact pass matrices.

Inverse DCT (jidctint.c, ``jpeg_idct_islow``): the dequantized coefficients
(quantized value times table entry) go through pass 1 along the columns
(DESCALE by ``IDCT_SHIFT1 = 11``), pass 2 along the rows (DESCALE by
``IDCT_SHIFT2 = 18``, which includes the 1/8 of the 2-D transform), then the
range limit ``clamp(x + 128, 0, 255)``. libjpeg's C code wraps out-of-range
values through a table (``x & 1023``); the SIMD IDCTs that Pillow and OpenCV
run on x86-64 saturate instead, and so do we (valid streams never get there).
All arithmetic is exact in int64 for any 16-bit coefficient and table entry.
The zero-AC shortcuts of jidctint.c (a column or row whose AC inputs are all
zero) give the same results as the full butterfly; we take them for speed.
:func:`idct_1d` is jidctint.c's butterfly before DESCALE (the even part's
``c0 ± c4`` scaled by ``CONST_BITS``); run over Python integers
(:func:`idct_1d_exact`) it gives the torch stage its inverse pass matrices.
"""


from __future__ import annotations

import numpy as np
from numba import njit

CONST_BITS = 13
PASS1_BITS = 2


def _fix(x: float) -> int:
    return int(x * (1 << CONST_BITS) + 0.5)


F_0_298631336 = _fix(0.298631336)  # 2446
F_0_390180644 = _fix(0.390180644)  # 3196
F_0_541196100 = _fix(0.541196100)  # 4433
F_0_765366865 = _fix(0.765366865)  # 6270
F_0_899976223 = _fix(0.899976223)  # 7373
F_1_175875602 = _fix(1.175875602)  # 9633
F_1_501321110 = _fix(1.501321110)  # 12299
F_1_847759065 = _fix(1.847759065)  # 15137
F_1_961570560 = _fix(1.961570560)  # 16069
F_2_053119869 = _fix(2.053119869)  # 16819
F_2_562915447 = _fix(2.562915447)  # 20995
F_3_072711026 = _fix(3.072711026)  # 25172

# DESCALE shifts of each pass (pass 1 on one axis, pass 2 on the other).
FDCT_SHIFT1 = CONST_BITS - PASS1_BITS  # 11
FDCT_SHIFT2 = CONST_BITS + PASS1_BITS  # 15
IDCT_SHIFT1 = CONST_BITS - PASS1_BITS  # 11
IDCT_SHIFT2 = CONST_BITS + PASS1_BITS + 3  # 18
FDCT_DC_SHIFT1 = PASS1_BITS + FDCT_SHIFT1  # DC/AC4 of pass 1: << PASS1_BITS after DESCALE
FDCT_DC_SHIFT2 = FDCT_SHIFT2 - PASS1_BITS  # DC/AC4 of pass 2: DESCALE by PASS1_BITS


@njit(inline="always")
def fdct_1d(d0, d1, d2, d3, d4, d5, d6, d7, dc_shift):  # pragma: no cover - compiled
    """jfdctint.c's 1-D butterfly before DESCALE: eight inputs -> outputs 0..7."""
    tmp0 = d0 + d7
    tmp7 = d0 - d7
    tmp1 = d1 + d6
    tmp6 = d1 - d6
    tmp2 = d2 + d5
    tmp5 = d2 - d5
    tmp3 = d3 + d4
    tmp4 = d3 - d4
    tmp10 = tmp0 + tmp3
    tmp13 = tmp0 - tmp3
    tmp11 = tmp1 + tmp2
    tmp12 = tmp1 - tmp2
    out0 = (tmp10 + tmp11) << dc_shift
    out4 = (tmp10 - tmp11) << dc_shift
    z1 = (tmp12 + tmp13) * F_0_541196100
    out2 = z1 + tmp13 * F_0_765366865
    out6 = z1 - tmp12 * F_1_847759065
    z1 = tmp4 + tmp7
    z2 = tmp5 + tmp6
    z3 = tmp4 + tmp6
    z4 = tmp5 + tmp7
    z5 = (z3 + z4) * F_1_175875602
    tmp4 = tmp4 * F_0_298631336
    tmp5 = tmp5 * F_2_053119869
    tmp6 = tmp6 * F_3_072711026
    tmp7 = tmp7 * F_1_501321110
    z1 = z1 * -F_0_899976223
    z2 = z2 * -F_2_562915447
    z3 = z3 * -F_1_961570560 + z5
    z4 = z4 * -F_0_390180644 + z5
    out7 = tmp4 + z1 + z3
    out5 = tmp5 + z2 + z4
    out3 = tmp6 + z2 + z3
    out1 = tmp7 + z1 + z4
    return out0, out1, out2, out3, out4, out5, out6, out7


def fdct_1d_exact(d: list[int], dc_shift: int) -> list[int]:
    """:func:`fdct_1d` over Python integers (no overflow), as a list."""
    return list(fdct_1d.py_func(*d, dc_shift))


@njit(cache=True, nogil=True)
def fdct_rows(src, row0, nblocks, out):  # pragma: no cover - compiled
    """islow FDCT of the blocks ``0 .. nblocks - 1`` of the block row of
    ``src`` (uint8 ``[>= row0 + 8, >= 8 * nblocks]``) starting at ``row0``.

    ``out``: ``[>= nblocks * 64]`` int32, block ``b``'s DCT scaled by 8 in
    natural order at ``b * 64`` (jfdctint.c's result; samples level-shifted
    by 128). Every intermediate fits in int32, as in libjpeg-turbo's SIMD
    code. (A whole block row per call: arrays handed to an inlined function
    cost two reference-count calls per block.)
    """
    half1 = 1 << (FDCT_SHIFT1 - 1)
    half2 = 1 << (FDCT_SHIFT2 - 1)
    work = np.empty(64, dtype=np.int64)
    for b in range(nblocks):
        col0 = b * 8
        for i in range(8):  # pass 1: rows
            r = src[row0 + i]
            o0, o1, o2, o3, o4, o5, o6, o7 = fdct_1d(
                np.int64(r[col0]) - 128, np.int64(r[col0 + 1]) - 128,
                np.int64(r[col0 + 2]) - 128, np.int64(r[col0 + 3]) - 128,
                np.int64(r[col0 + 4]) - 128, np.int64(r[col0 + 5]) - 128,
                np.int64(r[col0 + 6]) - 128, np.int64(r[col0 + 7]) - 128, FDCT_DC_SHIFT1)
            base = i * 8
            work[base] = (o0 + half1) >> FDCT_SHIFT1
            work[base + 1] = (o1 + half1) >> FDCT_SHIFT1
            work[base + 2] = (o2 + half1) >> FDCT_SHIFT1
            work[base + 3] = (o3 + half1) >> FDCT_SHIFT1
            work[base + 4] = (o4 + half1) >> FDCT_SHIFT1
            work[base + 5] = (o5 + half1) >> FDCT_SHIFT1
            work[base + 6] = (o6 + half1) >> FDCT_SHIFT1
            work[base + 7] = (o7 + half1) >> FDCT_SHIFT1
        ob = b * 64
        for j in range(8):  # pass 2: columns
            o0, o1, o2, o3, o4, o5, o6, o7 = fdct_1d(
                work[j], work[8 + j], work[16 + j], work[24 + j], work[32 + j],
                work[40 + j], work[48 + j], work[56 + j], FDCT_DC_SHIFT2)
            out[ob + j] = (o0 + half2) >> FDCT_SHIFT2
            out[ob + 8 + j] = (o1 + half2) >> FDCT_SHIFT2
            out[ob + 16 + j] = (o2 + half2) >> FDCT_SHIFT2
            out[ob + 24 + j] = (o3 + half2) >> FDCT_SHIFT2
            out[ob + 32 + j] = (o4 + half2) >> FDCT_SHIFT2
            out[ob + 40 + j] = (o5 + half2) >> FDCT_SHIFT2
            out[ob + 48 + j] = (o6 + half2) >> FDCT_SHIFT2
            out[ob + 56 + j] = (o7 + half2) >> FDCT_SHIFT2


@njit(cache=True, nogil=True)
def fdct_blocks(samples, out):  # pragma: no cover - compiled
    """islow FDCT of many blocks: ``samples`` ``[B, 8, 8]`` uint8 -> ``out``
    ``[B, 64]`` int32 (see :func:`fdct_rows`)."""
    for b in range(samples.shape[0]):
        fdct_rows(samples[b], 0, 1, out[b])


# ---------------------------------------------------------------- inverse DCT

# numba sees module globals as compile-time constants
_IR1 = 1 << (IDCT_SHIFT1 - 1)
_IR2 = 1 << (IDCT_SHIFT2 - 1)
_DC2 = PASS1_BITS + 3  # DESCALE of a row whose AC inputs are zero
_DR2 = 1 << (_DC2 - 1)


@njit(inline="always")
def idct_1d(c0, c1, c2, c3, c4, c5, c6, c7):  # pragma: no cover - compiled
    """jidctint.c's 1-D butterfly over dequantized inputs, before DESCALE.

    The even part's ``c0 ± c4`` is scaled by ``CONST_BITS`` (jidctint.c's
    ``LEFT_SHIFT(z2 ± z3, CONST_BITS)``), so all eight outputs share one shift.
    """
    z2 = c2
    z3 = c6
    z1 = (z2 + z3) * F_0_541196100
    tmp2 = z1 - z3 * F_1_847759065
    tmp3 = z1 + z2 * F_0_765366865
    tmp0 = (c0 + c4) << CONST_BITS
    tmp1 = (c0 - c4) << CONST_BITS
    tmp10 = tmp0 + tmp3
    tmp13 = tmp0 - tmp3
    tmp11 = tmp1 + tmp2
    tmp12 = tmp1 - tmp2
    t0 = c7
    t1 = c5
    t2 = c3
    t3 = c1
    z1 = t0 + t3
    z2 = t1 + t2
    z3 = t0 + t2
    z4 = t1 + t3
    z5 = (z3 + z4) * F_1_175875602
    t0 = t0 * F_0_298631336
    t1 = t1 * F_2_053119869
    t2 = t2 * F_3_072711026
    t3 = t3 * F_1_501321110
    z1 = z1 * -F_0_899976223
    z2 = z2 * -F_2_562915447
    z3 = z3 * -F_1_961570560 + z5
    z4 = z4 * -F_0_390180644 + z5
    t0 += z1 + z3
    t1 += z2 + z4
    t2 += z2 + z3
    t3 += z1 + z4
    return (tmp10 + t3, tmp11 + t2, tmp12 + t1, tmp13 + t0,
            tmp13 - t0, tmp12 - t1, tmp11 - t2, tmp10 - t3)


def idct_1d_exact(c: list[int]) -> list[int]:
    """:func:`idct_1d` over Python integers (for the torch stage's exact matrices)."""
    return list(idct_1d.py_func(*c))


@njit(inline="always")
def _limit(x):  # pragma: no cover - compiled
    x += 128
    if x < 0:
        return 0
    if x > 255:
        return 255
    return x


@njit(nogil=True)
def idct_block_row(coefs, base, count, qt, ws, out, offset, stride):  # pragma: no cover
    """Dequantize + islow IDCT + range limit of ``count`` consecutive blocks.

    Args:
        coefs: int16 (or any integer) flat array; block ``j``'s 64 natural-order
            coefficients start at ``base + 64 j``.
        qt: ``[64]`` int32 natural-order quantization table.
        ws: ``[64]`` int64 workspace.
        out: flat uint8 plane with rows of ``stride`` samples; row ``r`` of
            block ``j`` goes to ``out[offset + r * stride + 8 j : ... + 8]``.

    One call per block row, the block's code written out in the loop: numba
    reference-counts every array handed to a function, even an inlined one,
    which cost more than the transform of a sparse block.
    """
    for j in range(count):
        b = base + 64 * j
        o0 = offset + 8 * j
        # pass 1: columns -> ws (DESCALE by IDCT_SHIFT1)
        for c in range(8):
            x0 = np.int64(coefs[b + c]) * qt[c]
            if (coefs[b + 8 + c] == 0 and coefs[b + 16 + c] == 0 and coefs[b + 24 + c] == 0
                    and coefs[b + 32 + c] == 0 and coefs[b + 40 + c] == 0
                    and coefs[b + 48 + c] == 0 and coefs[b + 56 + c] == 0):
                dc = x0 << PASS1_BITS
                for r in range(8):
                    ws[r * 8 + c] = dc
                continue
            v0, v1, v2, v3, v4, v5, v6, v7 = idct_1d(
                x0,
                np.int64(coefs[b + 8 + c]) * qt[8 + c],
                np.int64(coefs[b + 16 + c]) * qt[16 + c],
                np.int64(coefs[b + 24 + c]) * qt[24 + c],
                np.int64(coefs[b + 32 + c]) * qt[32 + c],
                np.int64(coefs[b + 40 + c]) * qt[40 + c],
                np.int64(coefs[b + 48 + c]) * qt[48 + c],
                np.int64(coefs[b + 56 + c]) * qt[56 + c])
            ws[c] = (v0 + _IR1) >> IDCT_SHIFT1
            ws[8 + c] = (v1 + _IR1) >> IDCT_SHIFT1
            ws[16 + c] = (v2 + _IR1) >> IDCT_SHIFT1
            ws[24 + c] = (v3 + _IR1) >> IDCT_SHIFT1
            ws[32 + c] = (v4 + _IR1) >> IDCT_SHIFT1
            ws[40 + c] = (v5 + _IR1) >> IDCT_SHIFT1
            ws[48 + c] = (v6 + _IR1) >> IDCT_SHIFT1
            ws[56 + c] = (v7 + _IR1) >> IDCT_SHIFT1
        # pass 2: rows -> samples (DESCALE by IDCT_SHIFT2, range limit)
        for r in range(8):
            w = r * 8
            o = o0 + r * stride
            if (ws[w + 1] == 0 and ws[w + 2] == 0 and ws[w + 3] == 0 and ws[w + 4] == 0
                    and ws[w + 5] == 0 and ws[w + 6] == 0 and ws[w + 7] == 0):
                v = _limit((ws[w] + _DR2) >> _DC2)
                for c in range(8):
                    out[o + c] = v
                continue
            v0, v1, v2, v3, v4, v5, v6, v7 = idct_1d(
                ws[w], ws[w + 1], ws[w + 2], ws[w + 3], ws[w + 4], ws[w + 5], ws[w + 6],
                ws[w + 7])
            out[o] = _limit((v0 + _IR2) >> IDCT_SHIFT2)
            out[o + 1] = _limit((v1 + _IR2) >> IDCT_SHIFT2)
            out[o + 2] = _limit((v2 + _IR2) >> IDCT_SHIFT2)
            out[o + 3] = _limit((v3 + _IR2) >> IDCT_SHIFT2)
            out[o + 4] = _limit((v4 + _IR2) >> IDCT_SHIFT2)
            out[o + 5] = _limit((v5 + _IR2) >> IDCT_SHIFT2)
            out[o + 6] = _limit((v6 + _IR2) >> IDCT_SHIFT2)
            out[o + 7] = _limit((v7 + _IR2) >> IDCT_SHIFT2)


@njit(cache=True, nogil=True)
def idct_blocks(coefs, qt, out):  # pragma: no cover - compiled
    """Dequantize + IDCT + range limit of a plane of blocks.

    Args:
        coefs: ``[by, bx, 64]`` integer coefficients (natural order).
        qt: ``[64]`` int32 table.
        out: ``[by * 8, bx * 8]`` uint8 samples (written).
    """
    ws = np.empty(64, dtype=np.int64)
    by, bx = coefs.shape[0], coefs.shape[1]
    flat = coefs.reshape(by * bx * 64)
    plane = out.reshape(out.size)
    stride = out.shape[1]
    for i in range(by):
        idct_block_row(flat, i * bx * 64, bx, qt, ws, plane, i * 8 * stride, stride)


def idct_plane(coefs: np.ndarray, qtable: np.ndarray) -> np.ndarray:
    """The samples of a component's blocks: dequantize, islow IDCT, range limit.

    Args:
        coefs: ``[by, bx, 8, 8]`` (or ``[by, bx, 64]``) integer coefficients,
            natural order (int16 as libjpeg's JCOEF, or int32).
        qtable: ``[64]`` or ``[8, 8]`` natural-order table, 1..65535.

    Returns:
        ``[by * 8, bx * 8]`` uint8 samples.
    """
    by, bx = coefs.shape[:2]
    flat = np.ascontiguousarray(coefs).reshape(by, bx, 64)
    if flat.dtype != np.int16:
        flat = flat.astype(np.int32, copy=False)
    out = np.empty((by * 8, bx * 8), dtype=np.uint8)
    idct_blocks(flat, np.ascontiguousarray(qtable, dtype=np.int32).reshape(64), out)
    return out
