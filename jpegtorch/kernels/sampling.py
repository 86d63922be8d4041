"""Chroma down-sampling as libjpeg's jcsample.c does it, compiled; the named
samplings and the rounding biases shared with the torch stage.

A component sampled ``(h, v)`` in an image whose largest factors are
``(hmax, vmax)`` is reduced by ``hexp = hmax // h`` across and ``vexp = vmax // v``
down: each output sample is ``(sum of the hexp × vexp box + bias) >> log2`` (or
``// numpix``), with libjpeg's biases (:func:`bias_row`):

- 2×1 (h2v1_downsample): 0, 1, 0, 1, ... alternating by output column;
- 2×2 (h2v2_downsample): 1, 2, 1, 2, ...;
- 1×1: a copy (fullsize_downsample);
- any other integral box (int_downsample, e.g. 4:4:0's 1×2 and 4:1:1's 4×1):
  ``numpix // 2``.

Edges (jcsample.c's expand_right_edge, jcprepct.c's expand_bottom_edge): the
input rows are first extended to ``width_in_blocks * 8 * hexp`` columns by
repeating the last column, and to whole row groups (``vmax`` rows) by
repeating the last row; after down-sampling the last output row is repeated
to whole blocks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Named samplings: ``(h, v)`` factors of Y, Cb, Cr.
SUBSAMPLING: dict[str, tuple[tuple[int, int], ...]] = {
    "4:4:4": ((1, 1), (1, 1), (1, 1)),
    "4:2:2": ((2, 1), (1, 1), (1, 1)),
    "4:2:0": ((2, 2), (1, 1), (1, 1)),
    "4:4:0": ((1, 2), (1, 1), (1, 1)),
    "4:1:1": ((4, 1), (1, 1), (1, 1)),
}


def bias_row(hexp: int, vexp: int, width: int) -> np.ndarray:
    """libjpeg's rounding bias of each output column, ``[width]`` int64.

    The down-sampled sample is ``floor((box_sum + bias) / (hexp * vexp))``.
    """
    if (hexp, vexp) in ((2, 1), (2, 2)):
        return np.arange(width, dtype=np.int64) % 2 + (1 if vexp == 2 else 0)
    return np.full(width, (hexp * vexp) // 2, dtype=np.int64)


@njit(cache=True, nogil=True)
def downsample_rows(src, src_row0, hexp, vexp, rows, avail, bias, out):  # pragma: no cover
    """Down-sample full-resolution component rows into ``out`` (exact integers).

    Args:
        src: ``[R, Wsrc]`` uint8 full-resolution rows, already extended to at
            least ``out.shape[1] * hexp`` columns; row ``i`` of ``src`` is the
            component's full-resolution row ``src_row0 + i``.
        hexp, vexp: the box (``hmax // h``, ``vmax // v``).
        rows: output rows to produce: ``out[j]`` is down-sampled row
            ``src_row0 // vexp + j``.
        avail: down-sampled rows that exist (``ceil(height / vmax) * v``);
            output rows at or beyond it repeat the last one (which lies in
            this same ``src``).
        bias: ``[>= out.shape[1]]`` int64, :func:`bias_row`.
        out: ``[>= rows, W]`` uint8.
    """
    width = out.shape[1]
    numpix = hexp * vexp
    first = src_row0 // vexp
    shift = 0
    while (1 << shift) < numpix:
        shift += 1
    pow2 = (1 << shift) == numpix
    last = min(rows, avail - first)  # rows below this repeat row last - 1
    for j in range(last):
        orow = out[j]
        if hexp == 1 and vexp == 1:
            srow = src[j]
            for x in range(width):
                orow[x] = srow[x]
        elif hexp == 2 and vexp == 1:
            srow = src[j]
            for x in range(width):
                orow[x] = (np.int64(srow[2 * x]) + np.int64(srow[2 * x + 1]) + bias[x]) >> 1
        elif hexp == 2 and vexp == 2:
            s0 = src[2 * j]
            s1 = src[2 * j + 1]
            for x in range(width):
                orow[x] = (np.int64(s0[2 * x]) + np.int64(s0[2 * x + 1]) + np.int64(s1[2 * x])
                           + np.int64(s1[2 * x + 1]) + bias[x]) >> 2
        else:
            for x in range(width):
                total = bias[x]
                for dy in range(vexp):
                    srow = src[j * vexp + dy]
                    for dx in range(hexp):
                        total += np.int64(srow[x * hexp + dx])
                if pow2:
                    orow[x] = total >> shift
                else:
                    orow[x] = total // numpix
    if last < 1:
        return
    for j in range(last, rows):
        out[j, :width] = out[last - 1, :width]
