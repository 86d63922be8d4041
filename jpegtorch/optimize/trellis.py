"""Trellis quantization: rate-distortion optimal quantized values for baseline Huffman coding.

libjpeg rounds every coefficient to the nearest multiple of its step. A
trellis quantizer instead chooses, per 8×8 block, the quantized values that
minimise ``J = D + lambda * R``: ``D`` the (weighted) squared error of the
block, ``R`` the bits the entropy coder will spend on it. The facts it uses
(ITU-T T.81 F.1.2; the approach of mozjpeg's ``quantize_trellis`` in
jcdctmgr.c and of Yang & Wang, "Joint optimization of run-length coding,
Huffman coding and quantization table with complete baseline JPEG decoder
compatibility", IEEE TIP 2009):

* **AC (per block).** In zigzag order each AC coefficient is coded as a
  ``(run, size)`` Huffman symbol plus ``size`` magnitude bits, runs over 15
  zeros as ZRL symbols, and the zeros after the last nonzero value as one EOB.
  A dynamic programme over the positions visits, for every position ``i``,
  the candidate values (the rounded magnitude ``r`` and, for each smaller size
  category, its largest magnitude ``2**k - 1``: the least distortion for those
  bits) and every predecessor ``j`` (the previous nonzero position, or the
  block start): ``cost(i) = min_j cost(j) + zeros(j+1..i-1) + lambda * bits(run
  = i-1-j, value) + d(value)``. Positions whose rounded value is 0 stay zero.
  The block ends at the position whose cost plus the trailing zeros'
  distortion plus the EOB code is least (or is all zero).
* **DC (across blocks).** DC values are coded as differences from the
  previous block of the component in scan order; a Viterbi pass over that
  chain chooses each DC among ``round(x / q) + {-1, 0, +1}`` for the least
  ``distortion + lambda * (code length of the category + category bits)``.
  A restart interval resets the chain.
* **Huffman tables.** Code lengths come from the current statistics; after
  each pass the optimal tables for the new symbols are built (libjpeg's
  ``jpeg_gen_optimal_table``, :func:`jpegtorch.formats.huffman.optimal_table`)
  and the passes repeat until ``J`` stops falling.

Distortion is ``sum(weight[z] * (value * q[z] - t[z] / 8)**2)`` per block, in
the orthonormal DCT domain (``t / 8``; Parseval: squared sample error), with
per-component, per-frequency weights: :func:`rgb_weights` makes ``D`` the
image's RGB squared error (luma counts in all three channels, chroma through
the colour conversion and the decoder's up-sampling).

Kernels are compiled with numba and work on numpy arrays (no torch):
coefficients as ``[blocks, 64]`` int32 in natural order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..formats.huffman import code_table, optimal_table
from ..formats.zigzag import ZIGZAG

_ZIGZAG = np.array(ZIGZAG, dtype=np.int64)
_INF = 1e300

#: RGB squared error of a unit error in Y, Cb, Cr at one full-resolution pixel
#: (JFIF's YCbCr -> RGB: R = Y + 1.402 Cr, G = Y - 0.344136 Cb - 0.714136 Cr,
#: B = Y + 1.772 Cb; cross terms between components, which average out, left out).
COLOR_WEIGHTS = (3.0, 0.344136**2 + 1.772**2, 1.402**2 + 0.714136**2)


@njit(cache=True, nogil=True)
def _nbits(v):  # pragma: no cover - compiled
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


@njit(cache=True, nogil=True)
def trellis_ac(raw, quant, weight, lam, ac_len, zigzag, out, ss=1, se=63,
               eob_bits=-1.0):  # pragma: no cover - compiled
    """AC trellis of every block of one component, over the band ``ss..se``.

    Args:
        raw: ``[B, 64]`` int32 FDCT output (natural order, scaled by 8), or
            float64 (a real-valued transform at the same scale).
        quant: ``[64]`` int64 quantization steps (natural order).
        weight: ``[64]`` float64 distortion weights (natural order).
        lam: bits -> distortion units.
        ac_len: ``[256]`` float64 code length of every AC symbol (bits).
        zigzag: ``[64]`` int64 natural index of each zigzag position.
        out: ``[B, 64]`` int32; the band's entries are written, the rest is
            left alone.
        ss, se: the band (zigzag indexes, 1 <= ss <= se <= 63): a sequential
            scan's 1..63, or one spectral band of a progressive file (its own
            Huffman table; runs start at ``ss``).
        eob_bits: the bits of ending the band before ``se`` (default: the EOB
            symbol's code length, as in a sequential scan; a progressive band
            passes the cost its end-of-band runs spend per block).

    Returns:
        The summed cost ``D + lam * R`` of the band (float64).
    """
    nblocks = raw.shape[0]
    acc_zero = np.zeros(65)
    best = np.zeros(65)
    start = np.zeros(65, dtype=np.int64)
    value = np.zeros(65, dtype=np.int64)
    cand_pos = np.zeros(65, dtype=np.int64)
    cand_v = np.zeros(16, dtype=np.int64)
    cand_d = np.zeros(16)
    cand_s = np.zeros(16, dtype=np.int64)
    wq = np.zeros(64)
    q8 = np.zeros(64, dtype=np.int64)
    for i in range(1, 64):
        z = zigzag[i]
        wq[i] = weight[z] / 64.0
        q8[i] = 8 * quant[z]
    eob = lam * (ac_len[0] if eob_bits < 0 else eob_bits)
    zrl = lam * ac_len[0xF0]
    origin = ss - 1  # the band's start node
    total = 0.0
    for b in range(nblocks):
        npos = 1
        cand_pos[0] = origin
        best[origin] = 0.0
        acc_zero[origin] = 0.0
        for i in range(ss, se + 1):
            z = zigzag[i]
            x = raw[b, z]
            ax = -x if x < 0 else x
            acc_zero[i] = acc_zero[i - 1] + wq[i] * ax * ax
            qv = np.int64((ax + (q8[i] >> 1)) // q8[i])
            value[i] = 0
            if qv == 0:
                best[i] = _INF
                continue
            if qv > 1023:
                qv = 1023
            nb = _nbits(qv)
            for k in range(nb):
                v = (2 << k) - 1 if k < nb - 1 else qv
                d = v * q8[i] - ax
                cand_v[k] = v
                cand_s[k] = k + 1
                cand_d[k] = wq[i] * d * d
            bc = _INF
            bj = origin
            bv = 0
            dmin = cand_d[0]
            for k in range(1, nb):
                dmin = min(dmin, cand_d[k])
            # nearest predecessors first: they usually win, and a predecessor
            # whose cost before any bits already exceeds the best is skipped
            for p in range(npos - 1, -1, -1):
                j = cand_pos[p]
                run = i - 1 - j
                base = best[j] + acc_zero[i - 1] - acc_zero[j] + (run >> 4) * zrl
                if base + dmin >= bc:
                    continue
                r = (run & 15) << 4
                for k in range(nb):
                    c = base + lam * (ac_len[r + cand_s[k]] + cand_s[k]) + cand_d[k]
                    if c < bc:
                        bc = c
                        bj = j
                        bv = cand_v[k]
            best[i] = bc
            start[i] = bj
            value[i] = bv if x >= 0 else -bv
            cand_pos[npos] = i
            npos += 1
        # the end of the band: after which nonzero position (origin = none) the EOB?
        end_cost = acc_zero[se] + eob
        last = origin
        for p in range(1, npos):
            i = cand_pos[p]
            c = best[i] + acc_zero[se] - acc_zero[i]
            if i < se:
                c += eob
            if c < end_cost:
                end_cost = c
                last = i
        total += end_cost
        for i in range(ss, se + 1):
            out[b, zigzag[i]] = 0
        i = last
        while i > origin:
            out[b, zigzag[i]] = value[i]
            i = start[i]
    return total


@njit(cache=True, nogil=True)
def band_stats(blocks, ss, se, restart, zigzag, counts):  # pragma: no cover - compiled
    """Count the symbols of a progressive AC first scan (``Al = 0``) of one component.

    Args:
        blocks: ``[B, 64]`` int32 quantized values (natural order) of the
            component's own blocks in raster order (a single-component scan).
        ss, se: the band.
        restart: blocks between restart markers (0: none).
        zigzag: ``[64]`` natural index of each zigzag position.
        counts: ``[257]`` int64, the symbols are added (run/size, ZRL, and
            EOBRUN symbols ``n << 4``, T.81 G.1.2.2).

    Returns:
        ``(extra_bits, eob_blocks)``: magnitude bits plus EOBRUN bits, and how
        many blocks ended their band in an end-of-band run.
    """
    extra = 0
    eob_blocks = 0
    eobrun = 0
    for b in range(blocks.shape[0]):
        if restart > 0 and b > 0 and b % restart == 0 and eobrun > 0:
            n = _nbits(eobrun) - 1
            counts[n << 4] += 1
            extra += n
            eobrun = 0
        run = 0
        for i in range(ss, se + 1):
            v = np.int64(blocks[b, zigzag[i]])
            if v == 0:
                run += 1
                continue
            if eobrun > 0:
                n = _nbits(eobrun) - 1
                counts[n << 4] += 1
                extra += n
                eobrun = 0
            while run > 15:
                counts[0xF0] += 1
                run -= 16
            s = _nbits(v if v >= 0 else -v)
            counts[(run << 4) + s] += 1
            extra += s
            run = 0
        if run > 0:
            eobrun += 1
            eob_blocks += 1
            if eobrun == 0x7FFF:
                counts[14 << 4] += 1
                extra += 14
                eobrun = 0
    if eobrun > 0:
        n = _nbits(eobrun) - 1
        counts[n << 4] += 1
        extra += n
    return extra, eob_blocks


@njit(cache=True, nogil=True)
def trellis_dc(raw_dc, q, w, lam, dc_len, reset, out):  # pragma: no cover - compiled
    """Viterbi choice of DC values along one component's chain of blocks.

    Args:
        raw_dc: ``[M]`` int64 (or float64) FDCT DC values (scaled by 8) in coding
            order.
        q: the DC quantization step.
        w: distortion weight of the DC coefficient.
        lam: bits -> distortion units.
        dc_len: ``[16]`` float64 code lengths of the DC categories.
        reset: ``[M]`` bool, True where the predictor restarts at 0 (the first
            block, and the first block after each restart marker).
        out: ``[M]`` int64 chosen (signed) quantized DC values.

    Returns:
        The chain's cost ``D_dc + lam * R_dc``.
    """
    m = raw_dc.shape[0]
    ncand = 3
    cost = np.zeros(ncand)
    new = np.zeros(ncand)
    vals = np.zeros((m, ncand), dtype=np.int64)
    back = np.zeros((m, ncand), dtype=np.int64)
    q8 = 8 * q
    wq = w / 64.0
    for b in range(m):
        x = raw_dc[b]
        ax = -x if x < 0 else x
        r = np.int64((ax + (q8 >> 1)) // q8)
        r = r if x >= 0 else -r
        # at a restart the predictor is 0: any previous state may precede
        prev_best = 0
        if b > 0:
            for l in range(1, ncand):
                if cost[l] < cost[prev_best]:
                    prev_best = l
        for k in range(ncand):
            v = min(max(r - 1 + k, -2047), 2047)
            vals[b, k] = v
            d = v * q8 - x
            dist = wq * d * d
            if b == 0 or reset[b]:
                s = _nbits(v if v >= 0 else -v)
                new[k] = (cost[prev_best] if b > 0 else 0.0) + dist + lam * (dc_len[s] + s)
                back[b, k] = prev_best
            else:
                bc = _INF
                bl = 0
                for l in range(ncand):
                    diff = v - vals[b - 1, l]
                    if diff < 0:
                        diff = -diff
                    if diff > 2047:
                        continue
                    s = _nbits(diff)
                    c = cost[l] + lam * (dc_len[s] + s)
                    if c < bc:
                        bc = c
                        bl = l
                new[k] = bc + dist
                back[b, k] = bl
        for k in range(ncand):
            cost[k] = new[k]
    k = 0
    for l in range(1, ncand):
        if cost[l] < cost[k]:
            k = l
    total = cost[k]
    for b in range(m - 1, -1, -1):
        out[b] = vals[b, k]
        k = back[b, k]
    return total


@njit(cache=True, nogil=True)
def gather_stats(blocks, dc_order, reset, zigzag, dc_counts, ac_counts):  # pragma: no cover
    """Count the Huffman symbols of one component's blocks (added to the counts).

    Args:
        blocks: ``[B, 64]`` int32 quantized values, natural order.
        dc_order: ``[M]`` int64 block indices in coding order (the DC chain).
        reset: ``[M]`` bool predictor restarts (see :func:`trellis_dc`).
        dc_counts: ``[>= 12]`` int64; ac_counts: ``[256]`` int64.

    Returns:
        The magnitude ("extra") bits of the component.
    """
    extra = 0
    prev = 0
    for p in range(dc_order.shape[0]):
        b = dc_order[p]
        if reset[p]:
            prev = 0
        dc = np.int64(blocks[b, 0])
        diff = dc - prev
        prev = dc
        s = _nbits(diff if diff >= 0 else -diff)
        dc_counts[s] += 1
        extra += s
        run = 0
        for i in range(1, 64):
            v = np.int64(blocks[b, zigzag[i]])
            if v == 0:
                run += 1
                continue
            while run > 15:
                ac_counts[0xF0] += 1
                run -= 16
            s = _nbits(v if v >= 0 else -v)
            ac_counts[(run << 4) + s] += 1
            extra += s
            run = 0
        if run > 0:
            ac_counts[0] += 1
    return extra


def color_weights(subsampling_factors: tuple[int, int], c: int) -> np.ndarray:
    """Distortion weights ``[64]`` (natural order) of component ``c`` for RGB squared error.

    Luma: :data:`COLOR_WEIGHTS` [0] (= 3, it enters R, G and B). Chroma:
    its colour weight times the energy a unit error of each DCT basis function
    of the down-sampled plane has after the decoder's up-sampling
    (``(hexp, vexp)`` = ``subsampling_factors``): libjpeg-turbo's "fancy"
    triangle filter for 2×1 and 2×2, replication otherwise.
    """
    hexp, vexp = subsampling_factors
    gains = np.outer(_upsampling_gains(vexp), _upsampling_gains(hexp)).reshape(64)
    return COLOR_WEIGHTS[min(c, 2)] * gains


def _upsampling_gains(factor: int) -> np.ndarray:
    """Energy of each 1-D DCT basis function of 8 samples after up-sampling by ``factor``."""
    if factor == 1:
        return np.ones(8)
    n = np.arange(8)
    gains = np.zeros(8)
    for u in range(8):
        basis = np.cos((2 * n + 1) * u * math.pi / 16) * (math.sqrt(0.125) if u == 0 else 0.5)
        signal = np.zeros(40)
        signal[16:24] = basis
        if factor == 2:  # triangle filter: 3/4 near + 1/4 far
            left = np.roll(signal, 1)
            right = np.roll(signal, -1)
            up = np.empty(80)
            up[0::2] = 0.75 * signal + 0.25 * left
            up[1::2] = 0.75 * signal + 0.25 * right
        else:
            up = np.repeat(signal, factor)
        gains[u] = float(np.sum(up * up))
    return gains


# --------------------------------------------------------------------------- driver


@dataclass
class TrellisResult:
    """What :func:`trellis_quantize` chose.

    Attributes:
        blocks: per quantized component (in the order asked for) ``[by, bx,
            64]`` int32 quantized values (natural order) on the full MCU grid
            (dummy blocks: zero AC, the DC of the previous block in the chain).
        cost: ``D + lambda * R`` of the kept pass (distortion units).
        bits: its entropy-coded bits (Huffman codes + magnitude bits, under
            the optimal tables for its symbols; no byte stuffing or padding).
        distortion: its weighted squared error ``D``.
        passes: number of trellis passes run.
    """

    blocks: list[np.ndarray]
    cost: float
    bits: float
    distortion: float
    passes: int


@dataclass(frozen=True)
class Layout:
    """Where each component's blocks are coded in a sequential scan.

    Attributes:
        sampling: ``(h, v)`` per component.
        mcu_grid: ``(mcu_rows, mcu_cols)`` of the interleaved scan.
        real: ``(hib, wib)`` per component: its own blocks (the rest of its
            MCU grid are dummy blocks).
        restart_interval: MCUs between restart markers (0: none).
        interleaved: whether the components are coded in an interleaved
            (MCU by MCU) scan; None: when there are several of them. A subset
            of an interleaved scan's components (quantized apart) keeps True.
    """

    sampling: tuple[tuple[int, int], ...]
    mcu_grid: tuple[int, int]
    real: tuple[tuple[int, int], ...]
    restart_interval: int = 0
    interleaved: bool | None = None

    def __post_init__(self) -> None:
        if self.interleaved is None:
            object.__setattr__(self, "interleaved", len(self.sampling) > 1)

    def subset(self, components: tuple[int, ...]) -> Layout:
        """The layout of some of the components (same scan)."""
        return Layout(sampling=tuple(self.sampling[c] for c in components),
                      mcu_grid=self.mcu_grid, real=tuple(self.real[c] for c in components),
                      restart_interval=self.restart_interval, interleaved=self.interleaved)

    def grid(self, c: int) -> tuple[int, int]:
        """``(by, bx)``: component ``c``'s blocks on the full MCU grid."""
        if not self.interleaved:
            return self.real[c]
        h, v = self.sampling[c]
        return self.mcu_grid[0] * v, self.mcu_grid[1] * h

    def chain(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Component ``c``'s blocks in coding order: ``(order, reset, dummy)``.

        ``order``: indices into the ``[by * bx]`` grid as the scan visits them
        (MCU by MCU, each MCU's ``v x h`` blocks row by row; raster order when
        not interleaved); ``reset``: where the DC predictor restarts at 0;
        ``dummy``: which are dummy blocks.
        """
        by, bx = self.grid(c)
        hib, wib = self.real[c]
        if not self.interleaved:
            m = by * bx
            order = np.arange(m, dtype=np.int64)
            reset = np.zeros(m, dtype=np.bool_)
            if self.restart_interval:
                reset[:: self.restart_interval] = True
            reset[0] = True
            return order, reset, np.zeros(m, dtype=np.bool_)
        h, v = self.sampling[c]
        mcu_rows, mcu_cols = self.mcu_grid
        mcu = np.arange(mcu_rows * mcu_cols)
        mr, mc = mcu // mcu_cols, mcu % mcu_cols
        shape = (mcu.shape[0], v, h)
        rows = np.broadcast_to(mr[:, None, None] * v + np.arange(v)[None, :, None], shape)
        cols = np.broadcast_to(mc[:, None, None] * h + np.arange(h)[None, None, :], shape)
        rows = rows.reshape(-1)
        cols = cols.reshape(-1)
        order = (rows * bx + cols).astype(np.int64)
        reset = np.zeros(order.shape[0], dtype=np.bool_)
        if self.restart_interval:
            reset[:: self.restart_interval * h * v] = True
        reset[0] = True
        return order, reset, (rows >= hib) | (cols >= wib)


def code_lengths(counts: np.ndarray, is_dc: bool, fallback: float = 1.0) -> np.ndarray:
    """Code length (bits) of every symbol under the optimal table for ``counts``.

    Symbols that do not occur get the longest length in use plus ``fallback``
    bits (so that a trellis may still choose them, at a price).
    """
    bits, huffval = optimal_table(counts)
    _, sizes = code_table((bits, huffval), is_dc=is_dc)
    lengths = sizes.astype(np.float64)
    longest = float(lengths.max()) if lengths.max() > 0 else 8.0
    lengths[sizes == 0] = min(longest + fallback, 16.0 + fallback)
    return lengths


def trellis_lambda(luma_table: np.ndarray, scale: float = 1.0) -> float:
    """The default Lagrange multiplier for RGB squared error: ``0.375 * mean(q**2) * scale``.

    ``0.125 q**2`` squared error per bit is the slope of a uniform quantizer
    with step ``q`` at high rate (``dD/dR = 2 ln 2 * q**2 / 12``, rounded as
    mozjpeg's ``-tune-psnr`` does); times 3 because a luma error counts in R,
    G and B. ``luma_table``: the 64 luma quantization steps.
    """
    q = np.asarray(luma_table, dtype=np.float64).reshape(-1)
    return float(0.125 * COLOR_WEIGHTS[0] * np.mean(q * q) * scale)


def trellis_quantize(raw: list[np.ndarray], quant: np.ndarray, weights: np.ndarray,
                     lam: float, layout: Layout, slots: tuple[int, ...], *,
                     dc: bool = True, max_passes: int = 4,
                     tolerance: float = 1e-4) -> TrellisResult:
    """Trellis-quantize some components, alternating with optimal Huffman tables.

    Args:
        raw: per component to quantize, ``[hib, wib, 64]`` int32 FDCT output
            (see :mod:`jpegtorch.optimize.analysis`).
        quant: ``[len(raw), 64]`` quantization steps (natural order), 1..255.
        weights: ``[len(raw), 64]`` distortion weights (natural order).
        lam: the Lagrange multiplier, distortion units per bit (> 0).
        layout: the scan layout of these components (one entry per component
            of ``raw``).
        slots: the Huffman table slot of each component (components sharing a
            slot share their code lengths, as in the file).
        dc: also choose the DC values (else they are rounded as libjpeg does).
        max_passes: at most this many trellis passes.
        tolerance: stop when ``J`` falls by less than this fraction.

    Returns:
        A :class:`TrellisResult` (the pass with the least ``J``).
    """
    ncomp = len(raw)
    chains = [layout.chain(c) for c in range(ncomp)]
    grids = [layout.grid(c) for c in range(ncomp)]
    quant = np.asarray(quant, dtype=np.int64).reshape(ncomp, 64)
    weights = np.asarray(weights, dtype=np.float64).reshape(ncomp, 64)
    if not lam > 0:
        raise ValueError(f"lambda must be positive, got {lam}")
    grid_raw = []
    for c in range(ncomp):
        by, bx = grids[c]
        hib, wib = raw[c].shape[:2]
        g = np.zeros((by, bx, 64), dtype=np.float64 if raw[c].dtype.kind == "f" else np.int32)
        g[:hib, :wib] = raw[c]
        grid_raw.append(g.reshape(by * bx, 64))
    # the first code lengths: the statistics of libjpeg's rounding
    outs = []
    for c in range(ncomp):
        q8 = 8 * quant[c]
        r = grid_raw[c]
        rounded = (np.sign(r) * ((np.abs(r) + q8 // 2) // q8)).astype(np.int64)
        rounded[:, 1:] = np.clip(rounded[:, 1:], -1023, 1023)
        outs.append(rounded.astype(np.int32))
    nslots = max(slots) + 1
    dc_len, ac_len, _ = _lengths(outs, chains, slots, nslots)
    best: TrellisResult | None = None
    previous = math.inf
    for npass in range(1, max_passes + 1):
        new = []
        for c in range(ncomp):
            order, reset, dummy = chains[c]
            out = np.zeros_like(outs[c])
            s = slots[c]
            trellis_ac(grid_raw[c], quant[c], weights[c], lam, ac_len[s], _ZIGZAG, out)
            if dc:
                real_idx = order[~dummy]
                chosen = np.zeros(real_idx.shape[0], dtype=np.int64)
                dc_raw = grid_raw[c][real_idx, 0]
                trellis_dc(dc_raw if dc_raw.dtype.kind == "f" else dc_raw.astype(np.int64),
                           int(quant[c, 0]),
                           float(weights[c, 0]), lam, dc_len[s], reset[~dummy], chosen)
                out[real_idx, 0] = chosen
            else:
                out[:, 0] = outs[c][:, 0]
            _fill_dummies(out, order, dummy)
            new.append(out)
        outs = new
        dc_len, ac_len, bits = _lengths(outs, chains, slots, nslots)
        distortion = sum(_distortion(grid_raw[c], outs[c], quant[c], weights[c],
                                     order[dummy]) for c, (order, _, dummy) in enumerate(chains))
        cost = distortion + lam * bits
        if best is None or cost < best.cost:
            best = TrellisResult(blocks=outs, cost=cost, bits=bits, distortion=distortion,
                                 passes=npass)
        if cost > previous * (1.0 - tolerance):
            break
        previous = cost
    assert best is not None
    best.blocks = [b.reshape(*grids[c], 64) for c, b in enumerate(best.blocks)]
    return best


def _lengths(outs: list[np.ndarray], chains: list, slots: tuple[int, ...], nslots: int
             ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Optimal-table code lengths for the symbols of ``outs``, and their total bits."""
    dc_counts = np.zeros((nslots, 257), dtype=np.int64)
    ac_counts = np.zeros((nslots, 257), dtype=np.int64)
    extra = 0
    for c, blocks in enumerate(outs):
        order, reset, dummy = chains[c]
        _fill_dummies(blocks, order, dummy)
        extra += gather_stats(blocks, order, reset, _ZIGZAG, dc_counts[slots[c]],
                              ac_counts[slots[c]])
    used_slots = sorted(set(slots))
    dc_len = [np.full(256, 16.0) for _ in range(nslots)]
    ac_len = [np.full(256, 16.0) for _ in range(nslots)]
    bits = float(extra)
    for s in used_slots:
        dc_len[s] = code_lengths(dc_counts[s], True)
        ac_len[s] = code_lengths(ac_counts[s], False)
        bits += float(np.dot(dc_counts[s, :256], np.where(dc_counts[s, :256] > 0, dc_len[s], 0)))
        bits += float(np.dot(ac_counts[s, :256], np.where(ac_counts[s, :256] > 0, ac_len[s], 0)))
    return dc_len, ac_len, bits


def _fill_dummies(blocks: np.ndarray, order: np.ndarray, dummy: np.ndarray) -> None:
    """Dummy blocks: zero AC, the DC of the previous block in the chain (a zero difference)."""
    for p in np.nonzero(dummy)[0]:
        b = order[p]
        blocks[b, 1:] = 0
        blocks[b, 0] = blocks[order[p - 1], 0] if p > 0 else 0


def _distortion(raw: np.ndarray, quantized: np.ndarray, quant: np.ndarray, weight: np.ndarray,
                dummies: np.ndarray) -> float:
    """Weighted squared error of the real blocks (orthonormal DCT domain)."""
    real = np.ones(raw.shape[0], dtype=bool)
    real[dummies] = False
    err = (quantized[real].astype(np.float64) * (8 * quant) - raw[real]) / 8.0
    return float(np.sum(err * err * weight))
