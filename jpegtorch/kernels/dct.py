"""libjpeg's islow DCT: its integer constants (jfdctint.c, jidctint.c) and the
compiled forward DCT of the encoder.

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
