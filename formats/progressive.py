"""Multi-scan Huffman coding: progressive (SOF2) and multi-scan sequential files.

Given the quantized blocks and a scan list (:mod:`jpegtorch.formats.scans`),
:func:`encode_scans` (:class:`ScanEncoder`) writes everything between the
frame header (SOF) and EOI, laid out exactly as libjpeg-turbo lays it out (jcmarker.c, jcmaster.c,
jcphuff.c, jchuff.c), so that with the same script our bytes are those of
``cjpeg -progressive`` / ``cjpeg -scans FILE`` and Pillow's
``progressive=True``::

    per scan:  DHT for each table the scan uses that was not sent since it
               was last (re)built -- per component in scan order, DC then AC;
               a DC refinement scan uses none, a DC scan no AC table --
               DRI before the SOS when the scan's restart interval differs
               from the last one sent (SOI counts as 0): the first scan only,
               for an interval in MCUs,
               SOS (table selectors 0 where a table is not used),
               entropy-coded segment (RSTn every interval MCUs).

Huffman tables: a progressive script always gets optimal tables built per
scan from that scan's statistics (libjpeg forces ``optimize_coding`` in
progressive mode, so ``optimize`` changes nothing), with
``jpeg_gen_optimal_table`` (:func:`~jpegtorch.formats.huffman.optimal_table`);
so every scan re-sends its tables. A sequential script uses the Annex K
tables (each sent once, before the first scan that uses it) or, with
``optimize``, optimal tables per scan.

Entropy coding, per scan kind (T.81 Annex G.1.2, libjpeg-turbo's jcphuff.c):

- DC first (G.1.2.1): the DC coefficient arithmetically shifted right by
  ``Al``; the difference from the previous block of the component coded as
  in sequential mode (category symbol, then the bits; |category| <= 11).
- DC refinement: bit ``Al`` of each DC coefficient, one raw bit per block.
- AC first (G.1.2.2, Figure G.3): ``|v| >> Al`` with the sign (rounding
  towards zero), run/size symbols with ZRL (0xF0) for runs over 15; a block
  whose band ends in zeros adds to the end-of-band run EOBRUN, sent as
  symbol ``n << 4`` plus the ``n`` low bits of EOBRUN (``n = floor(log2
  EOBRUN)``) before the next nonzero coefficient, at a restart, at the end
  of the scan, or when EOBRUN reaches 0x7FFF; sizes over 10 bits are an error.
- AC refinement (G.1.2.3, Figure G.7): newly nonzero coefficients (``|v| >> Al
  == 1``) as run/size symbols with size 1 and a sign bit (1 = positive);
  coefficients already nonzero send their bit ``Al`` as a correction bit,
  buffered and sent after the next symbol (or after the EOBRUN that covers
  them). ZRLs are sent only before the last newly nonzero coefficient (past
  it the run folds into the EOB). The correction-bit buffer holds 1000 bits:
  EOBRUN is sent early when more than 937 are pending (libjpeg's
  ``MAX_CORR_BITS - DCTSIZE2 + 1``) or when it reaches 0x7FFF.
- Sequential scans (Annex F.1.2): per block the DC difference then the AC
  run/size symbols and EOB, as the baseline writer.

Blocks: an interleaved scan (several components) codes MCUs of the full MCU
grid, ``h x v`` blocks per component including libjpeg's dummy edge blocks;
a single-component scan codes only the component's own blocks
(``ceil(width * h / (8 * hmax))`` by ``ceil(height * v / (8 * vmax))``), one
block per MCU. A restart interval counts the scan's MCUs (given in MCU rows, it is
recomputed per scan and a DRI is written before each scan where it changes); at a restart the
bits are padded with 1-bits, RSTn (n = 0..7 cycling) is written, DC
predictions, EOBRUN and pending correction bits are reset (after sending the
pending EOBRUN). Bits are packed MSB first with a 0x00 stuffed after every
0xFF byte.

The per-coefficient loops are two numba kernels (``cache=True``; numpy in,
bytes out, no torch): one walks MCUs (DC first/refinement and sequential
scans), one walks a single component's blocks (AC first/refinement). Each
runs twice per optimized scan: once counting symbols, once writing bits.
The kernels take int16 blocks (libjpeg's ``JCOEF``); int32 and other
coefficient arrays are range-checked and converted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from numba import njit

from jpegtorch.errors import JPEGError

from .huffman import STD_AC_TABLES, STD_DC_TABLES, HuffmanTable, code_table, optimal_table
from .jfif_writer import (
    _DEBRUIJN,
    _DEBRUIJN_LUT,
    _NBITS,
    _ZIGZAG,
    _dht,
    _emit,
    _flush,
    _segment,
)
from .scans import Scan, format_scan, validate_scans

MAX_BLOCKS_IN_MCU = 10  # libjpeg's C_MAX_BLOCKS_IN_MCU (T.81 B.2.3)
MAX_CORR_BITS = 1000  # libjpeg's correction-bit buffer (jcphuff.c)
EOBRUN_MAX = 0x7FFF

# scan kinds of the MCU kernel
_SEQUENTIAL, _DC_FIRST, _DC_REFINE = 0, 1, 2
# kernel error codes
_BAD_DC, _BAD_AC, _NO_CODE = 1, 2, 3


@njit(inline="always")
def _put(out, pos, acc, nacc, code, size):  # pragma: no cover - compiled
    """Append ``size`` (<= 32) bits of ``code``; emit 32 bits (0xFF stuffed) when full."""
    acc = (acc << size) | code
    nacc += size
    if nacc >= 32:
        pos, acc, nacc = _emit(out, pos, acc, nacc)
    return pos, acc, nacc


@njit(inline="always")
def _symbol(out, pos, acc, nacc, row, sym, extra, nextra, codes, sizes, counts,
            gather):  # pragma: no cover - compiled
    """Count (``gather``) or write symbol ``sym`` of table ``row`` followed by
    ``nextra`` raw bits ``extra``; returns ``(pos, acc, nacc, ok)``."""
    if gather:
        counts[row, sym] += 1
        return pos, acc, nacc, True
    size = np.int64(sizes[row, sym])
    if size == 0:
        return pos, acc, nacc, False
    code = (np.int64(codes[row, sym]) << nextra) | (extra & ((np.int64(1) << nextra) - 1))
    pos, acc, nacc = _put(out, pos, acc, nacc, code, size + nextra)
    return pos, acc, nacc, True


@njit(inline="always")
def _raw_bits(out, pos, acc, nacc, buf, n):  # pragma: no cover - compiled
    """Write the ``n`` correction bits ``buf[:n]``; returns ``(pos, acc, nacc)``."""
    i = 0
    while i < n:
        m = min(24, n - i)
        word = np.int64(0)
        for j in range(m):
            word = (word << 1) | np.int64(buf[i + j])
        pos, acc, nacc = _put(out, pos, acc, nacc, word, m)
        i += m
    return pos, acc, nacc


@njit(inline="always")
def _eobrun(out, pos, acc, nacc, eobrun, cbuf, be, row, codes, sizes, counts,
            gather):  # pragma: no cover - compiled
    """Send a pending EOBRUN (> 0) and its ``be`` correction bits
    ``cbuf[:be]``; returns ``(pos, acc, nacc, ok)``."""
    n = 0
    while (eobrun >> (n + 1)) != 0:
        n += 1
    pos, acc, nacc, ok = _symbol(out, pos, acc, nacc, row, n << 4, eobrun, n, codes, sizes,
                                 counts, gather)
    if ok and not gather and be > 0:
        pos, acc, nacc = _raw_bits(out, pos, acc, nacc, cbuf, be)
    return pos, acc, nacc, ok


@njit(nogil=True)
def _eobrun_call(out, pos, acc, nacc, eobrun, cbuf, be, row, codes, sizes, counts,
                 gather):  # pragma: no cover - compiled
    """:func:`_eobrun` as a plain call, for the rare sites (restarts, a forced
    EOBRUN, the end of a scan): fewer inlined copies, faster compilation."""
    return _eobrun(out, pos, acc, nacc, eobrun, cbuf, be, row, codes, sizes, counts, gather)


@njit(inline="always")
def _grow(out, pos, margin):  # pragma: no cover - compiled
    if pos + margin > out.shape[0]:
        grown = np.empty(out.shape[0] * 2 + margin, dtype=np.uint8)
        grown[:pos] = out[:pos]
        return grown
    return out


@njit(inline="always")
def _restart_marker(out, pos, acc, nacc, number, gather):  # pragma: no cover - compiled
    """Pad the bits with ones and write RSTn; returns the new position."""
    if gather:
        return pos
    pos = _flush(out, pos, acc, nacc)
    out[pos] = 0xFF
    out[pos + 1] = 0xD0 + number
    return pos + 2


@njit(cache=True, nogil=True)
def _mcu_scan(a0, a1, a2, a3, ncomp, hs, vs, dc_row, ac_row, mcu_rows, mcu_cols, kind, al,
              restart_interval, zigzag, nbits_lut, codes, sizes, counts,
              gather):  # pragma: no cover - compiled
    """DC first / DC refinement / sequential scan over MCUs.

    ``a0..a3``: the scan's components' blocks ``[rows, cols, 64]`` int16
    (natural order; unused ones are dummies); MCU ``(mr, mc)`` holds, per
    component ``c``, ``vs[c]`` rows of ``hs[c]`` blocks from block ``(mr *
    vs[c], mc * hs[c])``. ``dc_row``/``ac_row``: per component, its rows of
    ``codes``/``sizes`` ``[8, 256]`` (rows 0-3 DC tables, 4-7 AC tables) and
    ``counts`` ``[8, 257]``. Returns ``(bytes, length, error, mcu)``.
    """
    blocks_per_mcu = 0
    for c in range(ncomp):
        blocks_per_mcu += hs[c] * vs[c]
    margin = blocks_per_mcu * 420 + 64
    nmcu = mcu_rows * mcu_cols
    if gather:
        out = np.empty(0, dtype=np.uint8)
    elif kind == _SEQUENTIAL:
        out = np.empty(nmcu * blocks_per_mcu * 32 + margin, dtype=np.uint8)
    else:
        out = np.empty(nmcu * blocks_per_mcu + margin, dtype=np.uint8)
    pos = 0
    acc = np.int64(0)
    nacc = np.int64(0)
    last_dc = np.zeros(4, dtype=np.int64)
    restarts_to_go = restart_interval
    next_restart = 0
    mcu = 0
    for mr in range(mcu_rows):
        for mc in range(mcu_cols):
            if not gather:
                out = _grow(out, pos, margin)
            if restart_interval > 0:
                if restarts_to_go == 0:
                    pos = _restart_marker(out, pos, acc, nacc, next_restart, gather)
                    acc = np.int64(0)
                    nacc = np.int64(0)
                    next_restart = (next_restart + 1) & 7
                    restarts_to_go = restart_interval
                    for c in range(4):
                        last_dc[c] = 0
                restarts_to_go -= 1
            for c in range(ncomp):
                arr = a0 if c == 0 else (a1 if c == 1 else (a2 if c == 2 else a3))
                drow = dc_row[c]
                arow = ac_row[c]
                for v in range(vs[c]):
                    for h in range(hs[c]):
                        blk = arr[mr * vs[c] + v, mc * hs[c] + h]
                        if kind == _DC_REFINE:
                            if not gather:
                                pos, acc, nacc = _put(out, pos, acc, nacc,
                                                      (np.int64(blk[0]) >> al) & 1, 1)
                            continue
                        dc = np.int64(blk[0]) >> al
                        diff = dc - last_dc[c]
                        last_dc[c] = dc
                        mag = -diff if diff < 0 else diff
                        if mag >= 2048:
                            return out, pos, _BAD_DC, mcu
                        nbits = np.int64(nbits_lut[mag])
                        if diff < 0:
                            diff -= 1
                        pos, acc, nacc, ok = _symbol(out, pos, acc, nacc, drow, nbits, diff,
                                                     nbits, codes, sizes, counts, gather)
                        if not ok:
                            return out, pos, _NO_CODE, mcu
                        if kind != _SEQUENTIAL:
                            continue
                        # AC (F.1.2.2): run/size symbols, ZRLs, EOB; k = 64 ends the block
                        run = 0
                        for k in range(1, 65):
                            if k < 64:
                                val = np.int64(blk[zigzag[k]])
                                if val == 0:
                                    run += 1
                                    continue
                                mag = -val if val < 0 else val
                                if mag >= 1024:
                                    return out, pos, _BAD_AC, mcu
                            elif run == 0:
                                break
                            while True:  # ZRLs, then the symbol (one call site)
                                if k == 64:
                                    sym, extra, nextra = 0, np.int64(0), np.int64(0)
                                elif run > 15:
                                    sym, extra, nextra = 0xF0, np.int64(0), np.int64(0)
                                else:
                                    nextra = np.int64(nbits_lut[mag])
                                    sym = (run << 4) + nextra
                                    extra = val - 1 if val < 0 else val
                                pos, acc, nacc, ok = _symbol(out, pos, acc, nacc, arow, sym,
                                                             extra, nextra, codes, sizes,
                                                             counts, gather)
                                if not ok:
                                    return out, pos, _NO_CODE, mcu
                                if sym == 0xF0:
                                    run -= 16
                                else:
                                    break
                            run = 0
            mcu += 1
    if not gather:
        pos = _flush(out, pos, acc, nacc)
    return out, pos, 0, mcu


@njit(cache=True, nogil=True)
def _ac_scan(blocks, rows, cols, ss, se, ah, al, restart_interval, row, zigzag, nbits_lut,
             debruijn_lut, codes, sizes, counts, gather):  # pragma: no cover - compiled
    """AC first (``ah == 0``) or refinement scan of one component.

    ``blocks``: ``[>= rows, >= cols, 64]`` int16 (natural order); the scan
    codes blocks ``[:rows, :cols]``, one per MCU, with AC table ``row`` of
    ``codes``/``sizes``/``counts``. Returns ``(bytes, length, error, mcu)``.
    """
    refine = ah != 0
    margin = 4096
    if gather:
        out = np.empty(0, dtype=np.uint8)
    else:
        out = np.empty(rows * cols * 4 + margin, dtype=np.uint8)
    pos = 0
    acc = np.int64(0)
    nacc = np.int64(0)
    eobrun = np.int64(0)
    be = 0  # correction bits pending with EOBRUN (in cbuf)
    cbuf = np.zeros(MAX_CORR_BITS + 64, dtype=np.uint8)
    brbuf = np.zeros(64, dtype=np.uint8)  # this block's correction bits
    absval = np.zeros(64, dtype=np.int64)
    restarts_to_go = restart_interval
    next_restart = 0
    mcu = 0
    for r in range(rows):
        for c in range(cols):
            if not gather:
                out = _grow(out, pos, margin)
            if restart_interval > 0:
                if restarts_to_go == 0:
                    if eobrun > 0:
                        pos, acc, nacc, ok = _eobrun_call(out, pos, acc, nacc, eobrun, cbuf,
                                                          be, row, codes, sizes, counts, gather)
                        if not ok:
                            return out, pos, _NO_CODE, mcu
                    eobrun = 0
                    be = 0
                    pos = _restart_marker(out, pos, acc, nacc, next_restart, gather)
                    acc = np.int64(0)
                    nacc = np.int64(0)
                    next_restart = (next_restart + 1) & 7
                    restarts_to_go = restart_interval
                restarts_to_go -= 1
            blk = blocks[r, c]
            # |v| >> Al (rounding towards zero) over the band; mask: bit k set when
            # coefficient k is nonzero after the shift; eob: the last newly
            # nonzero coefficient of a refinement (|v| >> Al == 1)
            eob = -1
            mask = np.int64(0)
            for k in range(ss, se + 1):
                val = np.int64(blk[zigzag[k]])
                mag = (-val if val < 0 else val) >> al
                absval[k] = mag
                mask |= np.int64(mag != 0) << k
                eob = k if mag == 1 else eob
            run = 0  # zero-history coefficients since the last symbol
            br = 0
            prev = ss - 1
            while mask != 0:  # the nonzero coefficients, lowest first (de Bruijn)
                low = mask & -mask
                k = debruijn_lut[((low * _DEBRUIJN) >> 58) & 63]
                mask ^= low
                run += k - prev - 1
                prev = k
                mag = absval[k]
                if refine and mag > 1 and not (run > 15 and k <= eob):
                    brbuf[br] = mag & 1  # correction bit of an already nonzero coefficient
                    br += 1
                    continue
                if not refine and mag >= 1024:
                    return out, pos, _BAD_AC, mcu
                while True:  # [EOBRUN,] ZRLs and the symbol (one call site each)
                    zrl = run > 15 and (k <= eob or not refine)
                    if eobrun > 0:
                        pos, acc, nacc, ok = _eobrun(out, pos, acc, nacc, eobrun, cbuf, be,
                                                     row, codes, sizes, counts, gather)
                        if not ok:
                            return out, pos, _NO_CODE, mcu
                        eobrun = 0
                        be = 0
                    if zrl:
                        sym, extra, nextra = 0xF0, np.int64(0), np.int64(0)
                    elif refine:
                        sym, nextra = (run << 4) + 1, np.int64(1)
                        extra = np.int64(1) if blk[zigzag[k]] > 0 else np.int64(0)
                    else:
                        nextra = np.int64(nbits_lut[mag])
                        sym = (run << 4) + nextra
                        extra = mag if blk[zigzag[k]] > 0 else ~mag
                    pos, acc, nacc, ok = _symbol(out, pos, acc, nacc, row, sym, extra, nextra,
                                                 codes, sizes, counts, gather)
                    if not ok:
                        return out, pos, _NO_CODE, mcu
                    if refine and br > 0 and not gather:
                        pos, acc, nacc = _raw_bits(out, pos, acc, nacc, brbuf, br)
                    br = 0
                    if zrl:
                        run -= 16
                        if refine and mag > 1 and not (run > 15 and k <= eob):
                            brbuf[br] = mag & 1
                            br += 1
                            break
                    else:
                        run = 0
                        break
            run += se - prev  # trailing zeros
            if run > 0 or br > 0:  # the band ends in zeros: count an EOB
                eobrun += 1
                for i in range(br):
                    cbuf[be + i] = brbuf[i]
                be += br
                if eobrun == EOBRUN_MAX or be > MAX_CORR_BITS - 64 + 1:
                    pos, acc, nacc, ok = _eobrun_call(out, pos, acc, nacc, eobrun, cbuf, be,
                                                      row, codes, sizes, counts, gather)
                    if not ok:
                        return out, pos, _NO_CODE, mcu
                    eobrun = 0
                    be = 0
            mcu += 1
    if eobrun > 0:
        pos, acc, nacc, ok = _eobrun_call(out, pos, acc, nacc, eobrun, cbuf, be, row, codes,
                                          sizes, counts, gather)
        if not ok:
            return out, pos, _NO_CODE, mcu
    if not gather:
        pos = _flush(out, pos, acc, nacc)
    return out, pos, 0, mcu


# --------------------------------------------------------------------------------------
# the scans of a file
# --------------------------------------------------------------------------------------


def as_block_array(blocks: np.ndarray) -> np.ndarray:
    """One component's blocks as a C-contiguous ``[rows, cols, 64]`` int16 array
    (libjpeg's ``JCOEF``; int16 input is a view, no copy).

    ``blocks``: ``[rows, cols, 8, 8]`` or ``[rows, cols, 64]`` (a leading
    batch axis of 1 is dropped), natural order, integers -32768..32767 of
    any integer dtype (float blocks are rounded).
    """
    b = np.asarray(blocks)
    if b.ndim == 5 and b.shape[0] == 1:
        b = b[0]
    if b.ndim == 4 and b.shape[2:] == (8, 8):
        b = b.reshape(b.shape[0], b.shape[1], 64)
    if b.ndim != 3 or b.shape[2] != 64:
        raise JPEGError(f"blocks must be [rows, cols, 8, 8], got shape {tuple(np.shape(blocks))}")
    if b.dtype == np.int16:
        return np.ascontiguousarray(b)
    if b.dtype.kind == "f":
        if not np.isfinite(b).all():
            raise JPEGError("coefficients must be finite")
        b = np.rint(b)
    elif b.dtype.kind not in "iu":
        raise JPEGError(f"unsupported coefficient dtype {b.dtype}")
    if b.size and (b.min() < -32768 or b.max() > 32767):
        raise JPEGError("coefficient out of range (libjpeg's 16-bit JCOEF: -32768..32767)")
    return np.ascontiguousarray(b, dtype=np.int16)


def _scan_geometry(number: int, scan: Scan, arrays: Sequence[np.ndarray],
                   sampling: Sequence[tuple[int, int]], mcu_grid: tuple[int, int],
                   own: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray,
                                                            tuple[int, int]]:
    """``(hs, vs, (mcu_rows, mcu_cols))`` of a scan; checks the blocks cover it."""
    comps = scan.components
    if len(comps) > 1:  # interleaved: the full MCU grid
        hs = np.array([sampling[c][0] for c in comps], dtype=np.int64)
        vs = np.array([sampling[c][1] for c in comps], dtype=np.int64)
        if int((hs * vs).sum()) > MAX_BLOCKS_IN_MCU:
            raise JPEGError(f"scan {number} ({format_scan(scan)}): more than "
                            f"{MAX_BLOCKS_IN_MCU} blocks per MCU")
        grid = mcu_grid
    else:  # one block per MCU, the component's own blocks
        hs = vs = np.ones(1, dtype=np.int64)
        grid = own[comps[0]]
    for i, c in enumerate(comps):
        rows, cols = grid[0] * int(vs[i]), grid[1] * int(hs[i])
        if arrays[c].shape[0] < rows or arrays[c].shape[1] < cols:
            raise JPEGError(f"component {c} has {arrays[c].shape[:2]} blocks, scan {number} "
                            f"({format_scan(scan)}) needs ({rows}, {cols})")
    return hs, vs, grid


class ScanEncoder:
    """Entropy coder for the scans of one image: the blocks are checked and
    converted once, then any number of scans or scripts are coded.

    Args:
        blocks: per component, the quantized blocks ``[rows, cols, 8, 8]`` (or
            ``[rows, cols, 64]``), natural order, int16 (used as they are) or
            any integer dtype with values -32768..32767 (converted once),
            covering the full MCU grid when an interleaved scan uses the
            component (as :class:`~jpegtorch.Coefficients` holds them), at
            least the component's own blocks otherwise.
        sampling: ``(h, v)`` per component, 1..4.
        size: ``(height, width)`` of the image in pixels.
        component_ids: the component identifiers (as in SOF), 0..255.
        table_slots: Huffman table slot (0..3) per component, used for both
            its DC and AC tables (libjpeg: 0 for Y/gray/RGB, 1 for Cb, Cr).
        restart_interval: MCUs of each scan between restart markers, 0..65535.
        restart_rows: instead, restart markers every this many MCU rows of each
            scan (libjpeg's ``restart_in_rows``, ``cjpeg -restart N``, Pillow's
            ``restart_marker_rows``): ``rows x MCUs per row`` of the scan,
            capped at 65535, so the interval (and its DRI) can change from
            scan to scan.

    :meth:`encode` codes a whole script (what goes between SOF and EOI);
    :meth:`scan` codes one progressive scan on its own with its optimal
    tables -- in a progressive file every scan re-sends its tables, so a
    file is its frame header, the DRI and the concatenation of its scans'
    bytes: the building block of a scan search (as mozjpeg's).
    """

    def __init__(self, blocks: Sequence[np.ndarray], sampling: Sequence[tuple[int, int]],
                 size: tuple[int, int], component_ids: Sequence[int],
                 table_slots: Sequence[int], *, restart_interval: int = 0,
                 restart_rows: int = 0) -> None:
        n = len(blocks)
        if not (len(sampling) == len(component_ids) == len(table_slots) == n) or n == 0:
            raise JPEGError("blocks, sampling, component_ids and table_slots must have one "
                            "entry per component")
        if any(not 0 <= s <= 3 for s in table_slots):
            raise JPEGError(f"Huffman table slots must be 0..3, got {tuple(table_slots)}")
        if any(not (1 <= h <= 4 and 1 <= v <= 4) for h, v in sampling):
            raise JPEGError(f"bad sampling factors {tuple(sampling)}")
        if isinstance(restart_interval, bool) or not 0 <= int(restart_interval) <= 65535:
            raise JPEGError(f"restart_interval must be 0..65535 MCUs, got {restart_interval}")
        if isinstance(restart_rows, bool) or not 0 <= int(restart_rows) <= 65535:
            raise JPEGError(f"restart_rows must be 0..65535 MCU rows, got {restart_rows}")
        if restart_interval and restart_rows:
            raise JPEGError("give restart_interval (MCUs) or restart_rows, not both")
        height, width = size
        if not (1 <= height <= 65535 and 1 <= width <= 65535):
            raise JPEGError(f"image size {width}x{height} is outside JPEG's 1..65535")
        self.restart_interval = int(restart_interval)
        self.restart_rows = int(restart_rows)
        self.sampling = tuple((int(h), int(v)) for h, v in sampling)
        self.component_ids = tuple(int(i) for i in component_ids)
        self.table_slots = tuple(int(t) for t in table_slots)
        hmax = max(h for h, _ in self.sampling)
        vmax = max(v for _, v in self.sampling)
        self.mcu_grid = (-(-height // (8 * vmax)), -(-width // (8 * hmax)))
        self.own = [(-(-height * v // (8 * vmax)), -(-width * h // (8 * hmax)))
                    for h, v in self.sampling]
        self.arrays = [as_block_array(b) for b in blocks]
        self._dummy = np.zeros((1, 1, 64), dtype=np.int16)
        self._codes = np.zeros((8, 256), dtype=np.uint32)  # rows: DC slots 0-3, AC slots 4-7
        self._sizes = np.zeros((8, 256), dtype=np.int32)

    @property
    def num_components(self) -> int:
        return len(self.arrays)

    def _geometry(self, number: int, scan: Scan) -> tuple[np.ndarray, np.ndarray,
                                                          tuple[int, int], int]:
        """``(hs, vs, (mcu_rows, mcu_cols), restart interval)`` of a scan."""
        hs, vs, grid = _scan_geometry(number, scan, self.arrays, self.sampling, self.mcu_grid,
                                      self.own)
        interval = self.restart_interval
        if self.restart_rows:  # jcmaster.c per_scan_setup
            interval = min(self.restart_rows * grid[1], 65535)
        return hs, vs, grid, interval

    def _run(self, number: int, scan: Scan, progressive: bool, counts: np.ndarray,
             gather: bool) -> bytes:
        hs, vs, grid, interval = self._geometry(number, scan)
        comps = scan.components
        slots = self.table_slots
        if scan.ss == 0:
            kind = (_DC_REFINE if scan.ah else _DC_FIRST) if progressive else _SEQUENTIAL
            a = [self.arrays[c] for c in comps] + [self._dummy] * (4 - len(comps))
            dc_row = np.array([slots[c] for c in comps], dtype=np.int64)
            out, length, err, mcu = _mcu_scan(
                a[0], a[1], a[2], a[3], len(comps), hs, vs, dc_row, dc_row + 4, grid[0],
                grid[1], kind, scan.al, interval, _ZIGZAG, _NBITS, self._codes, self._sizes,
                counts, gather)
        else:
            out, length, err, mcu = _ac_scan(
                self.arrays[comps[0]], grid[0], grid[1], scan.ss, scan.se, scan.ah, scan.al,
                interval, slots[comps[0]] + 4, _ZIGZAG, _NBITS, _DEBRUIJN_LUT, self._codes,
                self._sizes, counts, gather)
        if err:
            where = (f"scan {number} ({format_scan(scan)}), MCU {mcu} (row {mcu // grid[1]}, "
                     f"column {mcu % grid[1]})")
            if err == _BAD_DC:
                raise JPEGError(f"DC difference out of range (|diff| > 2047) in {where}")
            if err == _BAD_AC:
                raise JPEGError(f"AC coefficient out of range (|v| >> Al > 1023) in {where}")
            raise JPEGError(f"symbol missing from the Huffman table in {where}")
        return out[:length].tobytes()

    def _code(self, number: int, scan: Scan, progressive: bool, optimize: bool,
              tables: dict[tuple[int, int], HuffmanTable], sent: set[tuple[int, int]]
              ) -> list[bytes]:
        """DHTs, SOS and data of one scan; updates ``tables`` and ``sent``."""
        comps = scan.components
        slots = self.table_slots
        uses_dc = scan.ss == 0 and scan.ah == 0
        uses_ac = scan.se != 0
        keys = list(dict.fromkeys([(0, slots[c]) for c in comps if uses_dc]
                                  + [(1, slots[c]) for c in comps if uses_ac]))
        if optimize and keys:
            counts = np.zeros((8, 257), dtype=np.int64)
            self._run(number, scan, progressive, counts, True)
            for cls, slot in keys:
                tables[(cls, slot)] = optimal_table(counts[slot + 4 * cls])
                sent.discard((cls, slot))
        for cls, slot in keys:
            if (cls, slot) not in tables:
                if slot > 1:
                    raise JPEGError(f"no standard Huffman table for slot {slot} (use optimize)")
                tables[(cls, slot)] = (STD_DC_TABLES if cls == 0 else STD_AC_TABLES)[slot]
            self._codes[slot + 4 * cls], self._sizes[slot + 4 * cls] = code_table(
                tables[(cls, slot)], is_dc=cls == 0)
        data = self._run(number, scan, progressive, np.zeros((1, 1), dtype=np.int64), False)
        parts = []
        for c in comps:  # jcmarker.c write_scan_header: DC then AC, per component
            for cls in ((0,) if uses_dc else ()) + ((1,) if uses_ac else ()):
                key = (cls, slots[c])
                if key not in sent:
                    parts.append(_dht(cls, key[1], tables[key]))
                    sent.add(key)
        sos = bytearray((len(comps),))
        for c in comps:
            sos += bytes((self.component_ids[c], (slots[c] if uses_dc else 0) << 4
                          | (slots[c] if uses_ac else 0)))
        sos += bytes((scan.ss, scan.se, scan.ah << 4 | scan.al))
        parts.append(_segment(0xDA, bytes(sos)))
        parts.append(data)
        return parts

    def encode(self, scans: Sequence[Scan], *, optimize: bool = False) -> bytes:
        """DHT, DRI, SOS segments and entropy-coded data of a whole script,
        scan after scan: the bytes between SOF and EOI.

        ``scans`` is checked with :func:`~jpegtorch.formats.scans.validate_scans`;
        ``optimize`` gives optimal Huffman tables per scan to a sequential
        script (a progressive script always gets them, as in libjpeg).
        """
        progressive = validate_scans(scans, self.num_components)
        optimize = bool(optimize) or progressive
        tables: dict[tuple[int, int], HuffmanTable] = {}  # (0 DC / 1 AC, slot) -> table
        sent: set[tuple[int, int]] = set()
        parts: list[bytes] = []
        last_interval = 0  # SOI resets it; a DRI only when it changes (jcmarker.c)
        for number, scan in enumerate(scans, start=1):
            coded = self._code(number, scan, progressive, optimize, tables, sent)
            interval = self._geometry(number, scan)[3]
            if interval != last_interval:
                coded.insert(-2, _segment(0xDD, interval.to_bytes(2, "big")))
                last_interval = interval
            parts += coded
        return b"".join(parts)

    def scan(self, scan: Scan) -> bytes:
        """One progressive scan on its own: its DHTs (optimal tables from its own
        statistics), SOS and entropy-coded data, exactly the bytes it has in any
        progressive file written by :meth:`encode` (the first scan's DRI
        aside). Only the scan's own rules are checked (ranges; DC and AC
        apart; an AC scan has one component), not its place in a script.
        """
        n = self.num_components
        comps = scan.components
        where = f"scan {format_scan(scan)}"
        if not 1 <= len(comps) <= 4 or any(not 0 <= c < n for c in comps) or any(
                b <= a for a, b in pairwise(comps)):
            raise JPEGError(f"{where}: components must be 1..4 increasing indexes < {n}")
        if not (0 <= scan.ss <= scan.se <= 63 and 0 <= scan.al <= 10 and 0 <= scan.ah <= 10):
            raise JPEGError(f"{where}: need 0 <= Ss <= Se <= 63 and Ah, Al in 0..10")
        if (scan.ss == 0) != (scan.se == 0) or (scan.ss and len(comps) != 1):
            raise JPEGError(f"{where}: not a progressive scan (DC and AC apart, AC scans "
                            "carry one component)")
        return b"".join(self._code(1, scan, True, True, {}, set()))


def encode_scans(blocks: Sequence[np.ndarray], sampling: Sequence[tuple[int, int]],
                 size: tuple[int, int], component_ids: Sequence[int],
                 table_slots: Sequence[int], scans: Sequence[Scan], *,
                 optimize: bool = False, restart_interval: int = 0,
                 restart_rows: int = 0) -> bytes:
    """Entropy-code the scans of a file: the bytes between SOF and EOI
    (``ScanEncoder(blocks, ...).encode(scans, optimize=optimize)``; see
    :class:`ScanEncoder` for the arguments).

    Raises:
        JPEGError: an invalid script, coefficients out of range for the scan
            (the message names the scan and the MCU), or bad arguments.
    """
    encoder = ScanEncoder(blocks, sampling, size, component_ids, table_slots,
                          restart_interval=restart_interval, restart_rows=restart_rows)
    return encoder.encode(scans, optimize=optimize)


__all__: Sequence[str] = ("ScanEncoder", "as_block_array", "encode_scans")
