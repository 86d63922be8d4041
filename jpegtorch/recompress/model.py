"""The context model of quantized JPEG coefficients (compiled kernels).

Everything here is integer arithmetic on numpy arrays (no torch, no floats
in any context), so the encoder and the decoder derive bit-identical
contexts on any machine.

Storage: all components' blocks in one int16 array ``z[64, nblocks]``
(coefficient-major: ``z[k, b]`` is zigzag coefficient ``k`` of block ``b``,
libjpeg's JCOEF), so that a wave reads a few small contiguous planes;
component ``c`` has ``rows[c] x cols[c]`` blocks starting at block ``off[c]``. ``nz`` /
``nzr``: per block the number of nonzero AC coefficients / those not coded
yet.

The coefficients are coded in three families of waves (:mod:`.coder` drives
them); the contexts of a wave depend only on what earlier waves coded:

1. ``nz``: the number of nonzero AC coefficients of each block (0..63),
   block row by block row (row ``r`` of every component together), two
   passes per row: even columns (context: the row above), then odd columns
   (the row above and both horizontal neighbours).
2. ``ac``: AC coefficient ``k`` (zigzag 1..63) of every block that still has
   nonzero coefficients to come, one wave per ``k``, three passes each:
   ``(even row, even column)`` blocks, ``(odd, odd)`` blocks (their four
   diagonal neighbours are known at ``k``), then the rest (four direct
   neighbours known). For ``k >= MERGE_FROM`` the three passes are one
   (values are small there; fewer calls).
   Context: component class, position group of ``k``, pass, the mean
   magnitude of the known neighbours at ``k`` (first pass: at the block's two
   lower adjacent frequencies), the block's own magnitudes at those two
   frequencies, and how many nonzero coefficients the block has left.
3. ``dc``: DC last, row by row in two passes as ``nz``, predicted from the
   neighbours' pixels across each shared block edge (the mean of the edge's
   pixels, extrapolated with the gradient, which only the first row /
   column of dequantized coefficients determine; integer weights), the
   residual coded with the spread of the available predictions as context.

Values (AC coefficients, DC residuals) use one alphabet of 21 symbols:
0, 1, then for magnitude category ``c = 2..10`` (``2**(c-1) <= |v| < 2**c``)
two symbols, ``c`` with the top bit below the leading one; 20 escapes to
``c >= 11`` (excess coded uniformly). The sign and the remaining low bits
follow as one uniformly coded integer.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from jpegtorch.formats.zigzag import ZIGZAG

from . import rangecoder as rc

# ---------------------------------------------------------------- alphabets
NZ_SYMBOLS = 64
VALUE_SYMBOLS = 21
ESCAPE = 20
ESCAPE_RANGE = 6  # categories 11..16

# ---------------------------------------------------------------- context sizes
COMPONENT_CLASSES = 2  # 0: the first component (luma), 1: the others

NZ_BUCKETS = 16  # the last: no neighbour known
PASS_CLASSES = 4
NZ_CONTEXTS = COMPONENT_CLASSES * PASS_CLASSES * NZ_BUCKETS

K_GROUP = np.array([0, 0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 8]
                   + [9] * 5 + [10] * 7 + [11] * 8 + [12] * 9 + [13] * 19, dtype=np.int64)
K_GROUPS = 14
MERGE_FROM = 28
AC_PASSES = 3
NB_BUCKETS = 9
OWN_BUCKETS = 5
NZR_BUCKETS = 8
AC_PER_GROUP = AC_PASSES * NB_BUCKETS * OWN_BUCKETS * NZR_BUCKETS
AC_CONTEXTS = COMPONENT_CLASSES * K_GROUPS * AC_PER_GROUP

DC_BUCKETS = 12
DC_CONTEXTS = COMPONENT_CLASSES * PASS_CLASSES * DC_BUCKETS

_NZ_BUCKET = np.array([0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 8, 8]
                      + [9] * 5 + [10] * 6 + [11] * 8 + [12] * 10 + [13] * 12 + [14] * 7,
                      dtype=np.int64)
NZR_BUCKET = np.array([0, 0, 1, 2, 3, 4, 4, 5, 5, 5] + [6] * 5 + [7] * 49, dtype=np.int64)

_NATURAL = np.array(ZIGZAG, dtype=np.int64)
NATURAL = _NATURAL
"""Natural index of each zigzag position."""
_ZIGZAG_OF = np.zeros(64, dtype=np.int64)
_ZIGZAG_OF[_NATURAL] = np.arange(64)
# zigzag index of the lower adjacent AC frequencies (row, col - 1) and (row - 1, col);
# -1: none, or the DC (coded after the AC coefficients, so no context for them)
LOWER_H = np.full(64, -1, dtype=np.int64)
LOWER_V = np.full(64, -1, dtype=np.int64)
for _k in range(64):
    _r, _c = divmod(int(_NATURAL[_k]), 8)
    if _c > 0 and _r * 8 + _c - 1 > 0:
        LOWER_H[_k] = _ZIGZAG_OF[_r * 8 + _c - 1]
    if _r > 0 and (_r - 1) * 8 + _c > 0:
        LOWER_V[_k] = _ZIGZAG_OF[(_r - 1) * 8 + _c]

BITLEN = np.array([int(m).bit_length() for m in range(2048)], dtype=np.int64)
"""Bit length of 0..2047 (the category of a magnitude; larger ones by a loop)."""

# ---------------------------------------------------------------- DC edge weights
EDGE_SHIFT = 14


def _edge_weights() -> tuple[np.ndarray, np.ndarray]:
    """Integer weights of a block's mean edge pixel per first-row frequency.

    The mean of a block's pixel column ``x`` is ``sum_u F(0, u) a(u)
    cos((2x + 1) u pi / 16) / sqrt(8)`` (only the first row of frequencies
    survives the mean over ``y``); the value at the block boundary is
    extrapolated from columns 0 and 1 (near edge) or 7 and 6 (far edge),
    ``1.5 p(0) - 0.5 p(1)``. Scaled by 8 (one DC step) and ``2**EDGE_SHIFT``.
    By symmetry the same weights serve the first column and rows.
    """
    near = np.zeros(8)
    far = np.zeros(8)
    for u in range(8):
        a = math.sqrt(0.125) if u == 0 else 0.5

        def col(x: int, u: int = u, a: float = a) -> float:
            return a * math.cos((2 * x + 1) * u * math.pi / 16) / math.sqrt(8) * 8

        near[u] = 1.5 * col(0) - 0.5 * col(1)
        far[u] = 1.5 * col(7) - 0.5 * col(6)
    scale = 1 << EDGE_SHIFT
    return (np.round(near * scale).astype(np.int64), np.round(far * scale).astype(np.int64))


EDGE_NEAR, EDGE_FAR = _edge_weights()
FIRST_ROW = np.array([_ZIGZAG_OF[u] for u in range(8)], dtype=np.int64)
FIRST_COL = np.array([_ZIGZAG_OF[8 * v] for v in range(8)], dtype=np.int64)


# ---------------------------------------------------------------- adaptive coding
INCREMENT = 32
"""Count added to a context's symbol each time it is coded (the prior's rows sum
to about PRIOR_TOTAL), so a file's own statistics soon dominate."""
PRIOR_TOTAL = 4096


@njit(inline="always")
def code_symbol(s_, buf, decoding, freq, t, sym, k, stats, collect):  # pragma: no cover
    """Encode ``sym`` (or decode a symbol) in context ``t`` of a table of ``k`` symbols.

    ``freq[t, :k]``: the context's counts, ``freq[t, k]`` their total and
    ``freq[t, k + 1]`` ``2**32 // total``, so that neither direction divides
    on the coder's critical path: the step is ``range * reciprocal >> 32``
    (at most ``range / total``) and the decoder finds its symbol by comparing
    the code with multiples of the step. Adapts the counts; returns
    ``(symbol, state)``.
    """
    unit = (s_[1] * np.int64(freq[t, k + 1])) >> 32
    if decoding:
        code = s_[0]
        cum = np.int64(0)
        sym = 0
        f = np.int64(freq[t, 0])
        while sym < k - 1 and code >= unit * (cum + f):
            cum += f
            sym += 1
            f = np.int64(freq[t, sym])
        s_ = rc.decode_scaled(buf, s_, unit, cum, f)
    else:
        cum = np.int64(0)
        for i in range(sym):
            cum += freq[t, i]
        f = np.int64(freq[t, sym])
        s_ = rc.encode_scaled(buf, s_, unit, cum, f)
    freq[t, sym] = f + INCREMENT
    total = np.int64(freq[t, k]) + INCREMENT
    if total > rc.MAX_TOTAL:
        total = 0
        for i in range(k):
            x = (freq[t, i] + 1) >> 1
            freq[t, i] = x
            total += x
    freq[t, k] = total
    freq[t, k + 1] = (np.int64(1) << 32) // total
    if collect:
        stats[t, sym] += 1
    return sym, s_


@njit(inline="always")
def code_value(s_, buf, decoding, freq, t, v, stats, collect):  # pragma: no cover
    """Encode the integer ``v`` (or decode one) in context ``t``: ``(value, state)``.

    A decoded value outside the int16 range (damaged data) comes back as 0
    with the state's damage flag set.
    """
    if decoding:
        sym, s_ = code_symbol(s_, buf, True, freq, t, 0, VALUE_SYMBOLS, stats, collect)
        if sym == 0:
            return np.int64(0), s_
        if sym == 1:
            b, s_ = rc.decode_bits(buf, s_, 1)
            return (-np.int64(1) if b else np.int64(1)), s_
        if sym < ESCAPE:
            c = (sym + 2) >> 1
            b, s_ = rc.decode_bits(buf, s_, c - 1)
            a = ((np.int64(2) | (sym & 1)) << (c - 2)) | (b & ((np.int64(1) << (c - 2)) - 1))
            neg = b >> (c - 2)
        else:
            e, r, s_ = rc.decode_target(s_, np.int64(ESCAPE_RANGE))
            s_ = rc.decode_commit(buf, s_, r, e, np.int64(1))
            c = 11 + e
            b, s_ = rc.decode_bits(buf, s_, c)
            a = (np.int64(1) << (c - 1)) | (b & ((np.int64(1) << (c - 1)) - 1))
            neg = b >> (c - 1)
        value = -a if neg else a
        if value < -32768 or value > 32767:
            x, rng, cache, _, pos = s_
            return np.int64(0), (x, rng, cache, np.int64(1), pos)
        return value, s_
    a = -v if v < 0 else v
    if a < 2048:
        c = BITLEN[a]
    else:
        c = 11
        t2 = a >> 11
        while t2:
            c += 1
            t2 >>= 1
    neg = np.int64(1) if v < 0 else np.int64(0)
    if c == 0:
        _, s_ = code_symbol(s_, buf, False, freq, t, 0, VALUE_SYMBOLS, stats, collect)
    elif c == 1:
        _, s_ = code_symbol(s_, buf, False, freq, t, 1, VALUE_SYMBOLS, stats, collect)
        s_ = rc.encode_bits(buf, s_, neg, 1)
    elif c <= 10:
        _, s_ = code_symbol(s_, buf, False, freq, t, 2 * c - 2 + ((a >> (c - 2)) & 1),
                            VALUE_SYMBOLS, stats, collect)
        s_ = rc.encode_bits(buf, s_, (neg << (c - 2)) | (a & ((np.int64(1) << (c - 2)) - 1)),
                            c - 1)
    else:
        _, s_ = code_symbol(s_, buf, False, freq, t, ESCAPE, VALUE_SYMBOLS, stats, collect)
        s_ = rc.encode_symbol(buf, s_, np.int64(c - 11), np.int64(1), np.int64(ESCAPE_RANGE))
        s_ = rc.encode_bits(buf, s_, (neg << (c - 1)) | (a & ((np.int64(1) << (c - 1)) - 1)), c)
    return v, s_


# ---------------------------------------------------------------- lattice passes
# nz and DC are coded on a lattice, coarse to fine: first the blocks with
# y % 2S == x % 2S == 0 (S: the first power of two with 2S >= every grid
# dimension, so block (0, 0) alone), then for s = S, S/2, ..., 1 two passes:
# "edge" blocks (y % 2s, x % 2s) in {(0, s), (s, 0)}, whose two neighbours at
# distance s along one axis are known, and "face" blocks (s, s), whose four
# neighbours at distance s are known. Pass classes: 0 seed, 1 coarse (s >= 2),
# 2 edge at s = 1, 3 face at s = 1.


@njit(inline="always")
def _lattice_row(y, s, kind):  # pragma: no cover - compiled
    """``(x0, step, axis)`` of lattice row ``y`` in a pass (step 0: no block in this row).

    ``axis``: 0 = neighbours left/right, 1 = above/below, 2 = all four.
    """
    m = y % (2 * s)
    if kind == 0:
        return (0, 2 * s, -1) if m == 0 else (0, 0, -1)
    if kind == 1:
        if m == 0:
            return s, 2 * s, 0
        if m == s:
            return 0, 2 * s, 1
        return 0, 0, -1
    if m == s:
        return s, 2 * s, 2
    return 0, 0, -1


@njit(inline="always")
def _pass_class(s, kind):  # pragma: no cover - compiled
    if kind == 0:
        return 0
    if s > 1:
        return 1
    return 2 if kind == 1 else 3


@njit(cache=True, nogil=True, _nrt=False)
def nz_code(st, buf, decoding, freq, stats, collect, nz, off, rows, cols, cc, s,
            kind):  # pragma: no cover - compiled
    """Code the nonzero counts of one lattice pass.

    Context: component class, pass class and the mean count of the known
    neighbours (bucketed).
    """
    s_ = rc.load(st)
    for c in range(off.shape[0]):
        w = cols[c]
        h = rows[c]
        o = off[c]
        for y in range(h):
            x0, step, axis = _lattice_row(y, s, kind)
            if step == 0:
                continue
            for x in range(x0, w, step):
                total = 0
                count = 0
                if axis == 0 or axis == 2:
                    total += nz[o + y * w + x - s]
                    count += 1
                    if x + s < w:
                        total += nz[o + y * w + x + s]
                        count += 1
                if axis == 1 or axis == 2:
                    total += nz[o + (y - s) * w + x]
                    count += 1
                    if y + s < h:
                        total += nz[o + (y + s) * w + x]
                        count += 1
                bucket = NZ_BUCKETS - 1 if count == 0 else \
                    _NZ_BUCKET[(2 * total + count) // (2 * count)]
                t = (cc[c] * 4 + _pass_class(s, kind)) * NZ_BUCKETS + bucket
                b = o + y * w + x
                v, s_ = code_symbol(s_, buf, decoding, freq, t, nz[b], NZ_SYMBOLS, stats,
                                    collect)
                if decoding:
                    nz[b] = v
    rc.store(st, s_)


# ---------------------------------------------------------------- AC
_RECIP = np.array([0, 1024, 512, 341, 256], dtype=np.int64)  # 1024 / count


@njit(cache=True, nogil=True, _nrt=False)
def ac_code(st, buf, decoding, freq, stats, collect, z, nzr, off, rows, cols, cc, comp_of,
            ys, xs, blocks, k, ptype):  # pragma: no cover - compiled
    """Code coefficient ``k`` of the blocks of one pass.

    ``blocks``: flat indices of the pass's blocks that may still have nonzero
    coefficients (those with none left are skipped); ``comp_of``, ``ys``,
    ``xs``: component and position of every block. ``ptype`` 0: (even, even)
    blocks, or every block from ``MERGE_FROM`` on (context: the neighbours'
    lower adjacent frequencies); 1: (odd, odd) blocks (their four diagonal
    neighbours at ``k``); 2: the rest (four direct neighbours at ``k``).
    """
    kh = LOWER_H[k]
    kv = LOWER_V[k]
    group = K_GROUP[k]
    s_ = rc.load(st)
    for i in range(blocks.shape[0]):
        b = blocks[i]
        left = nzr[b]
        if left <= 0:
            continue
        c = comp_of[b]
        h = rows[c]
        w = cols[c]
        y = ys[b]
        x = xs[b]
        total = np.int64(0)
        count = 0
        if ptype == 0:
            if kh >= 0 or kv >= 0:
                for d in range(4):
                    if d == 0:
                        ok = y > 0
                        nb_ = b - w
                    elif d == 1:
                        ok = y + 1 < h
                        nb_ = b + w
                    elif d == 2:
                        ok = x > 0
                        nb_ = b - 1
                    else:
                        ok = x + 1 < w
                        nb_ = b + 1
                    if ok:
                        count += 1
                        if kh >= 0:
                            total += abs(np.int64(z[kh, nb_]))
                        if kv >= 0:
                            total += abs(np.int64(z[kv, nb_]))
        elif ptype == 1:
            for d in range(4):
                dy = -1 if d < 2 else 1
                dx = -1 if d & 1 == 0 else 1
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    count += 1
                    total += abs(np.int64(z[k, b + dy * w + dx]))
        else:
            for d in range(4):
                if d == 0:
                    ok = y > 0
                    nb_ = b - w
                elif d == 1:
                    ok = y + 1 < h
                    nb_ = b + w
                elif d == 2:
                    ok = x > 0
                    nb_ = b - 1
                else:
                    ok = x + 1 < w
                    nb_ = b + 1
                if ok:
                    count += 1
                    total += 2 * abs(np.int64(z[k, nb_]))
        m = (4 * total * _RECIP[count]) >> 10  # about 4x the mean magnitude
        nb = BITLEN[m] if m < 2048 else 11
        if nb > NB_BUCKETS - 1:
            nb = NB_BUCKETS - 1
        own = np.int64(0)
        if kh >= 0:
            own += abs(np.int64(z[kh, b]))
        if kv >= 0:
            own += abs(np.int64(z[kv, b]))
        ob = own if own < 3 else (3 if own < 6 else 4)
        t = (cc[c] * K_GROUPS + group) * AC_PER_GROUP \
            + ((ptype * NB_BUCKETS + nb) * OWN_BUCKETS + ob) * NZR_BUCKETS \
            + NZR_BUCKET[left if left < 64 else 63]
        v, s_ = code_value(s_, buf, decoding, freq, t, np.int64(z[k, b]), stats,
                           collect)
        if decoding:
            z[k, b] = v
        if v != 0:
            nzr[b] -= 1
    rc.store(st, s_)


# ---------------------------------------------------------------- DC
@njit(cache=True, nogil=True)
def edge_sums(z, b0, b1, q, out):  # pragma: no cover - compiled
    """For blocks ``b0 .. b1 - 1`` (one component) the AC part of their mean edge values.

    ``q``: int64 ``[64]`` the component's quantization table (zigzag).
    ``out``: int64 ``[nblocks, 4]`` (left, right, top, bottom), each
    ``sum_{u>=1} F * q * weight``.
    """
    for b in range(b0, b1):
        left = np.int64(0)
        right = np.int64(0)
        top = np.int64(0)
        bottom = np.int64(0)
        for u in range(1, 8):
            i = FIRST_ROW[u]
            a = np.int64(z[i, b])
            if a != 0:
                a *= q[i]
                left += a * EDGE_NEAR[u]
                right += a * EDGE_FAR[u]
            i = FIRST_COL[u]
            a = np.int64(z[i, b])
            if a != 0:
                a *= q[i]
                top += a * EDGE_NEAR[u]
                bottom += a * EDGE_FAR[u]
        out[b, 0] = left
        out[b, 1] = right
        out[b, 2] = top
        out[b, 3] = bottom


@njit(inline="always")
def _estimate(dc_n, edge_n, edge_x, q0):  # pragma: no cover - compiled
    """DC of a block from a neighbour's DC across the shared edge (rounded division)."""
    den = q0 << EDGE_SHIFT
    return dc_n + (2 * (edge_n - edge_x) + den) // (2 * den)


@njit(cache=True, nogil=True, _nrt=False)
def dc_code(st, buf, decoding, freq, stats, collect, z, edges, off, rows, cols, cc, q0, s,
            kind):  # pragma: no cover - compiled
    """Code the DCs of one lattice pass as residuals from their prediction.

    Each known neighbour gives an estimate: across the shared edge for
    adjacent blocks (s = 1), its DC otherwise. The prediction is their mean,
    the context the pass class and the spread (max - min) of the estimates.
    """
    s_ = rc.load(st)
    for c in range(off.shape[0]):
        w = cols[c]
        h = rows[c]
        o = off[c]
        qc = q0[c]
        for y in range(h):
            x0, step, axis = _lattice_row(y, s, kind)
            if step == 0:
                continue
            for x in range(x0, w, step):
                b = o + y * w + x
                lo = np.int64(1) << 40
                hi = -lo
                total = np.int64(0)
                count = 0
                for d in range(4):
                    if d < 2 and axis == 1:
                        continue
                    if d >= 2 and axis == 0:
                        continue
                    if axis < 0:
                        break
                    if d == 0:
                        nb = b - s  # left
                        ok = True
                    elif d == 1:
                        nb = b + s  # right
                        ok = x + s < w
                    elif d == 2:
                        nb = b - s * w  # above
                        ok = True
                    else:
                        nb = b + s * w  # below
                        ok = y + s < h
                    if not ok:
                        continue
                    e = np.int64(z[0, nb])
                    if s == 1:
                        if d == 0:
                            e = _estimate(e, edges[nb, 1], edges[b, 0], qc)
                        elif d == 1:
                            e = _estimate(e, edges[nb, 0], edges[b, 1], qc)
                        elif d == 2:
                            e = _estimate(e, edges[nb, 3], edges[b, 2], qc)
                        else:
                            e = _estimate(e, edges[nb, 2], edges[b, 3], qc)
                    total += e
                    count += 1
                    lo = min(lo, e)
                    hi = max(hi, e)
                if count == 0:
                    p = np.int64(0)
                    bucket = DC_BUCKETS - 1
                else:
                    p = (2 * total + count) // (2 * count)
                    spread = hi - lo
                    bucket = 0
                    while spread > 0 and bucket < DC_BUCKETS - 3:
                        bucket += 1
                        spread >>= 1
                    if count == 1:
                        bucket = DC_BUCKETS - 2
                p = min(max(p, -32768), 32767)
                t = (cc[c] * PASS_CLASSES + _pass_class(s, kind)) * DC_BUCKETS + bucket
                r = ((np.int64(z[0, b]) - p + 32768) & 0xFFFF) - 32768
                r, s_ = code_value(s_, buf, decoding, freq, t, r, stats, collect)
                if decoding:
                    z[0, b] = ((p + r + 32768) & 0xFFFF) - 32768
    rc.store(st, s_)




@njit(cache=True, nogil=True, _nrt=False)
def compact(blocks, n, nzr):  # pragma: no cover - compiled
    """Keep the first ``n`` blocks that still have nonzero coefficients; returns their count."""
    m = 0
    for i in range(n):
        b = blocks[i]
        if nzr[b] > 0:
            blocks[m] = b
            m += 1
    return m


@njit(cache=True, nogil=True)
def ac_waves(st, buf, decoding, freq, stats, collect, z, nzr, off, rows, cols, cc, comp_of,
             ys, xs, passes, counts):  # pragma: no cover - compiled
    """Code every AC wave (zigzag ``k`` = 1..63, :data:`AC_PASSES` passes each) in one call.

    ``passes``: int32 ``[AC_PASSES, nblocks]``, per pass type the blocks that
    may still have nonzero coefficients, the first ``counts[p]`` valid;
    compacted in place after every wave. Encoding grows ``buf`` when a pass
    might not fit (at most 8 bytes per block and pass) and returns it.
    """
    for k in range(1, 64):
        active = 0
        for p in range(AC_PASSES):
            active += counts[p]
        if active == 0:
            break
        for p in range(AC_PASSES):
            n = counts[p]
            if n == 0:
                continue
            if not decoding:
                need = st[rc.POS] + 8 * n + 64
                if need > buf.shape[0]:
                    grown = np.empty(max(need, 2 * buf.shape[0]), dtype=np.uint8)
                    grown[:buf.shape[0]] = buf
                    buf = grown
            ac_code(st, buf, decoding, freq, stats, collect, z, nzr, off, rows, cols, cc,
                    comp_of, ys, xs, passes[p, :n], k, 0 if k >= MERGE_FROM else p)
        for p in range(AC_PASSES):
            counts[p] = compact(passes[p], counts[p], nzr)
    return buf
