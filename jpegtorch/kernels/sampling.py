"""Chroma down-sampling as libjpeg's jcsample.c does it and up-sampling as
libjpeg-turbo's default decoder does it (jdsample.c), compiled; the named
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

Up-sampling (decoder), one output row at a time: a component is expanded by
``hexp`` across and ``vexp`` down, from its own samples cropped to libjpeg's
``downsampled_width × downsampled_height`` (edges replicate the outermost
sample):

- 2×1 (``h2v1_fancy_upsample``), when the component is wider than 2 samples:
  ``out[2x] = (3 s[x] + s[x-1] + 1) >> 2``, ``out[2x+1] = (3 s[x] + s[x+1] + 2) >> 2``;
- 1×2 (``h1v2_fancy_upsample``): the same filter vertically, bias 1 for the
  row above and 2 for the row below;
- 2×2 (``h2v2_fancy_upsample``), when wider than 2 samples: column sums
  ``c = 3 s[y] + s[y±1]`` (the row above for the upper output row, below for
  the lower one), then ``(3 c[x] + c[x-1] + 8) >> 4`` and
  ``(3 c[x] + c[x+1] + 7) >> 4``;
- 1×1: the samples themselves; any other integral factors (and 2×1 / 2×2 of a
  component at most 2 samples wide): replication (``int_upsample``).

The torch stage :mod:`jpegtorch.sampling` computes the same on whole planes.
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


# ---------------------------------------------------------------- decoder: up-sampling

# up-sampling methods (libjpeg's methods[] choice per component)
FULLSIZE = 0
H2V1_FANCY = 1
H1V2_FANCY = 2
H2V2_FANCY = 3
REPLICATE = 4


def upsample_method(hexp: int, vexp: int, width: int) -> int:
    """libjpeg-turbo's up-sampling method for a component.

    Args:
        hexp, vexp: integral expansion factors.
        width: the component's own width in samples (``downsampled_width``).
    """
    if hexp == 1 and vexp == 1:
        return FULLSIZE
    if hexp == 2 and vexp == 1 and width > 2:
        return H2V1_FANCY
    if hexp == 1 and vexp == 2:
        return H1V2_FANCY
    if hexp == 2 and vexp == 2 and width > 2:
        return H2V2_FANCY
    return REPLICATE


@njit(inline="always")
def upsample_row(method, hexp, vexp, t, cur, near, width, src_width,
                 buf, colsum):  # pragma: no cover - compiled
    """One up-sampled row of a component into ``buf[:width]``.

    Args:
        method: one of the constants above.
        hexp, vexp: expansion factors.
        t: the output row's phase ``y % vexp`` (0 = upper, 1 = lower for the
            vertical fancy filters).
        cur: ``[src_width]``-or-wider uint8 row of component samples the
            output row comes from.
        near: the neighbouring component row (above for phase 0, below for
            phase 1; the row itself at the image edges).
        width: output samples to produce (the image width).
        src_width: the component's own width (``downsampled_width``).
        buf: uint8 output row. colsum: int32 work row (``src_width`` + 2).
    """
    last = src_width - 1
    if method == H2V1_FANCY:  # src_width > 2
        # interior pairs without edge tests (the loops vectorise); edges replicate
        pairs = width >> 1
        s0 = np.int32(cur[0])
        buf[0] = s0
        if pairs > 0:
            buf[1] = (3 * s0 + np.int32(cur[1]) + 2) >> 2
        inner = min(pairs, last)
        for x in range(1, inner):
            s = 3 * np.int32(cur[x])
            buf[2 * x] = (s + np.int32(cur[x - 1]) + 1) >> 2
            buf[2 * x + 1] = (s + np.int32(cur[x + 1]) + 2) >> 2
        for x in range(max(inner, 1), pairs):  # x == last
            s = 3 * np.int32(cur[x])
            buf[2 * x] = (s + np.int32(cur[x - 1]) + 1) >> 2
            buf[2 * x + 1] = (s + np.int32(cur[x]) + 2) >> 2
        if width & 1 and pairs > 0:
            x = pairs
            buf[2 * x] = (3 * np.int32(cur[x]) + np.int32(cur[x - 1]) + 1) >> 2
    elif method == H1V2_FANCY:
        bias = np.int32(1 if t == 0 else 2)
        for x in range(width):
            buf[x] = (3 * np.int32(cur[x]) + np.int32(near[x]) + bias) >> 2
    elif method == H2V2_FANCY:  # src_width > 2
        for x in range(src_width):
            colsum[x] = 3 * np.int32(cur[x]) + np.int32(near[x])
        pairs = width >> 1
        c0 = colsum[0]
        buf[0] = (4 * c0 + 8) >> 4
        if pairs > 0:
            buf[1] = (3 * c0 + colsum[1] + 7) >> 4
        inner = min(pairs, last)
        for x in range(1, inner):
            s = 3 * colsum[x]
            buf[2 * x] = (s + colsum[x - 1] + 8) >> 4
            buf[2 * x + 1] = (s + colsum[x + 1] + 7) >> 4
        for x in range(max(inner, 1), pairs):  # x == last
            s = 3 * colsum[x]
            buf[2 * x] = (s + colsum[x - 1] + 8) >> 4
            buf[2 * x + 1] = (s + colsum[x] + 7) >> 4
        if width & 1 and pairs > 0:
            x = pairs
            buf[2 * x] = (3 * colsum[x] + colsum[x - 1] + 8) >> 4
    elif method == REPLICATE:
        if hexp == 1:
            for x in range(width):
                buf[x] = cur[x]
        else:
            for x in range(width):
                buf[x] = cur[x // hexp]
    else:  # numba copies through slices slowly
        for x in range(width):
            buf[x] = cur[x]
