"""Coding the coefficients wave by wave (the driver of :mod:`.model`'s kernels).

One code path serves both directions: :func:`code_store` runs the waves
(nonzero counts, the 63 AC positions, DC), each pass one compiled call that
computes every block's context from what earlier passes coded and codes its
symbol with the range coder of :mod:`.rangecoder`, adapting that context's
counts after every symbol. The counts start from a prior learned offline
(:mod:`.tables`); they are integers, so encoder and decoder see identical
distributions on any machine.

Memory: the coefficients (int16, 128 bytes per block), per-block counters
and edge sums (about 40 bytes per block), the active-block list and the
output; the count tables are fixed (about 3 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from jpegtorch.errors import JPEGError

from . import model as M
from . import rangecoder as rc


@dataclass
class Tables:
    """Integer frequency tables (int32) of the three families: ``[contexts, K + 2]``,
    every count >= 1, then their total (at most 2**16) and ``2**32 // total``."""

    nz: np.ndarray
    ac: np.ndarray
    dc: np.ndarray

    def copy(self) -> Tables:
        return Tables(self.nz.copy(), self.ac.copy(), self.dc.copy())

    @staticmethod
    def from_counts(nz: np.ndarray, ac: np.ndarray, dc: np.ndarray) -> Tables:
        """Tables from ``[contexts, K]`` counts (entries clamped to >= 1)."""
        def rows(counts: np.ndarray) -> np.ndarray:
            counts = np.maximum(np.asarray(counts, dtype=np.int64), 1)
            total = counts.sum(axis=1, keepdims=True)
            if total.max(initial=0) > (1 << 16):
                raise ValueError("prior counts must total at most 2**16 per context")
            return np.concatenate([counts, total, (np.int64(1) << 32) // total],
                                  axis=1).astype(np.int32)
        return Tables(rows(nz), rows(ac), rows(dc))

    @staticmethod
    def flat() -> Tables:
        return Tables.from_counts(np.ones((M.NZ_CONTEXTS, M.NZ_SYMBOLS)),
                                  np.ones((M.AC_CONTEXTS, M.VALUE_SYMBOLS)),
                                  np.ones((M.DC_CONTEXTS, M.VALUE_SYMBOLS)))


@dataclass
class Stats:
    """Raw symbol counts per context (int64), gathered for offline training."""

    nz: np.ndarray
    ac: np.ndarray
    dc: np.ndarray

    @staticmethod
    def zeros() -> Stats:
        return Stats(np.zeros((M.NZ_CONTEXTS, M.NZ_SYMBOLS), dtype=np.int64),
                     np.zeros((M.AC_CONTEXTS, M.VALUE_SYMBOLS), dtype=np.int64),
                     np.zeros((M.DC_CONTEXTS, M.VALUE_SYMBOLS), dtype=np.int64))


class Store:
    """All components' coefficient blocks in one flat array (see :mod:`.model`).

    Args:
        shapes: ``(rows, cols)`` block grid per component.
        qtables: per component its quantization table, 64 values in zigzag
            order (used by the DC prediction only).
        grids: per component int16 ``[>= rows, >= cols, 64]`` zigzag
            coefficients to encode (None: zeros, to decode into).

    ``z``: int16 ``[64, nblocks]``, coefficient-major (see :mod:`.model`).
    """

    def __init__(self, shapes: list[tuple[int, int]], qtables: list[np.ndarray],
                 grids: list[np.ndarray] | None = None) -> None:
        sizes = [r * c for r, c in shapes]
        self.nblocks = int(sum(sizes))
        self.off = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        self.rows = np.array([r for r, _ in shapes], dtype=np.int64)
        self.cols = np.array([c for _, c in shapes], dtype=np.int64)
        self.cc = np.array([0 if i == 0 else 1 for i in range(len(shapes))], dtype=np.int64)
        self.q = [np.maximum(np.asarray(q, dtype=np.int64), 1) for q in qtables]
        self.q0 = np.array([int(q[0]) for q in self.q], dtype=np.int64)
        self.z = np.zeros((64, self.nblocks), dtype=np.int16)
        if grids is not None:
            for i, (r, c) in enumerate(shapes):
                self.component(i)[...] = np.moveaxis(grids[i][:r, :c], 2, 0)

    def fill(self, i: int, coefs: np.ndarray, offset: int, stride: int) -> None:
        """Copy component ``i``'s blocks from a flat natural-order array (the reader's).

        Block ``(y, x)`` starts at ``coefs[offset + (y * stride + x) * 64]``.
        """
        _fill_planes(coefs, np.int64(offset), np.int64(stride), self.rows[i], self.cols[i],
                     M.NATURAL, self.z, self.off[i])

    def component(self, i: int) -> np.ndarray:
        """Component ``i``'s coefficients, int16 ``[64, rows, cols]`` (a view)."""
        r, c = int(self.rows[i]), int(self.cols[i])
        return self.z[:, self.off[i]:self.off[i] + r * c].reshape(64, r, c)


@njit(cache=True, nogil=True)
def _fill_planes(coefs, offset, stride, rows, cols, natural, z, b0):  # pragma: no cover
    for k in range(64):
        nk = natural[k]
        plane = z[k]
        for y in range(rows):
            base = offset + y * stride * 64 + nk
            row = b0 + y * cols
            for x in range(cols):
                plane[row + x] = coefs[base + x * 64]


def _levels(rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int]]:
    """The lattice passes ``(s, kind)``: the seed, then edge and face passes per level."""
    top = max([int(rows.max(initial=1)), int(cols.max(initial=1)), 1])
    big = 1
    while 2 * big < top:
        big *= 2
    passes = [(big, 0)]
    s = big
    while s >= 1:
        passes += [(s, 1), (s, 2)]
        s //= 2
    return passes


class _Output:
    """The encoder's growing byte buffer."""

    def __init__(self, size: int) -> None:
        self.buf = np.empty(max(size, 1 << 12), dtype=np.uint8)

    def ensure(self, st: np.ndarray, extra: int) -> None:
        need = int(st[rc.POS]) + extra + 64
        if need > len(self.buf):
            grown = np.empty(max(need, 2 * len(self.buf)), dtype=np.uint8)
            grown[:len(self.buf)] = self.buf
            self.buf = grown


def code_store(store: Store, tables: Tables, data: bytes | None = None,
               stats: Stats | None = None) -> bytes:
    """Encode the store (``data`` None) or decode ``data`` into it (then returns b"").

    ``tables`` are adapted in place (pass a copy). ``stats``: gather the raw
    symbol counts per context (training).
    """
    decoding = data is not None
    collect = stats is not None
    if stats is None:
        dummy = np.zeros((1, 1), dtype=np.int64)
        st_nz = st_ac = st_dc = dummy
    else:
        st_nz, st_ac, st_dc = stats.nz, stats.ac, stats.dc
    z = store.z
    nblocks = store.nblocks
    off, rows, cols, cc = store.off, store.rows, store.cols, store.cc
    if decoding:
        buf = np.frombuffer(bytearray(data), dtype=np.uint8)  # writable: one kernel per pass
        st = rc.decoder_state(buf)
        out = None
    else:
        st = rc.encoder_state()
        out = _Output(nblocks * 24)
    nz = np.zeros(nblocks, dtype=np.int16)
    if not decoding and nblocks:
        nz[...] = np.count_nonzero(z[1:], axis=0)
    levels = _levels(rows, cols)

    # ---- 1. nonzero counts on the lattice, coarse to fine
    for s, kind in levels:
        if out is not None:
            out.ensure(st, 4 * nblocks)
            buf = out.buf
        M.nz_code(st, buf, decoding, tables.nz, st_nz, collect, nz, off, rows, cols,
                  cc, s, kind)
    if decoding and (nz > 63).any():
        raise JPEGError("corrupt recompressed coefficient data (count)")
    nzr = nz.copy()

    # ---- 2. AC coefficients, one wave per zigzag position, three passes each
    # (one from MERGE_FROM on), over the blocks with nonzero coefficients left
    comp_of = np.repeat(np.arange(len(rows), dtype=np.int8), rows * cols)
    ys = np.concatenate([np.repeat(np.arange(r, dtype=np.int32), c)
                         for r, c in zip(rows.tolist(), cols.tolist(), strict=True)] or
                        [np.zeros(0, np.int32)])
    xs = np.concatenate([np.tile(np.arange(c, dtype=np.int32), r)
                         for r, c in zip(rows.tolist(), cols.tolist(), strict=True)] or
                        [np.zeros(0, np.int32)])
    pattern = np.where((ys & 1) == 0, np.where((xs & 1) == 0, 0, 2),
                       np.where((xs & 1) == 1, 1, 2))
    passes = np.empty((M.AC_PASSES, nblocks), dtype=np.int32)
    counts = np.zeros(M.AC_PASSES, dtype=np.int64)
    for p in range(M.AC_PASSES):
        blocks = np.flatnonzero((nzr > 0) & (pattern == p))
        passes[p, :len(blocks)] = blocks
        counts[p] = len(blocks)
    if out is not None:
        out.ensure(st, 64)
        buf = out.buf
    buf = M.ac_waves(st, buf, decoding, tables.ac, st_ac, collect, z, nzr, off, rows, cols, cc,
                     comp_of, ys, xs, passes, counts)
    if out is not None:
        out.buf = buf
    active = int(counts.sum())
    if decoding and (active or (nzr < 0).any()):
        raise JPEGError("corrupt recompressed coefficient data (counts do not match)")

    # ---- 3. DC on the lattice, coarse to fine, predicted across block edges
    edges = np.empty((nblocks, 4), dtype=np.int64)
    for c in range(len(rows)):
        M.edge_sums(z, off[c], off[c] + rows[c] * cols[c], store.q[c], edges)
    for s, kind in levels:
        if out is not None:
            out.ensure(st, 8 * nblocks)
            buf = out.buf
        M.dc_code(st, buf, decoding, tables.dc, st_dc, collect, z, edges, off, rows,
                  cols, cc, store.q0, s, kind)

    if decoding:
        if st[rc.BAD] or int(st[rc.POS]) > len(buf) + 4:
            raise JPEGError("corrupt recompressed coefficient stream (ran past its end)")
        return b""
    assert out is not None
    out.ensure(st, 16)
    n = rc.encoder_flush(st, out.buf)
    return out.buf[:n].tobytes()


def encode_store(store: Store, tables: Tables) -> bytes:
    """Range-code the store with a copy of ``tables``."""
    return code_store(store, tables.copy())


def decode_store(data: bytes, store: Store, tables: Tables) -> None:
    """Decode a stream of :func:`encode_store` into the (zeroed) store."""
    code_store(store, tables.copy(), data=data)


def accumulate(store: Store, tables: Tables, stats: Stats) -> int:
    """Model the store, adding its raw symbol counts to ``stats``; returns the coded size."""
    return len(code_store(store, tables.copy(), stats=stats))
