"""Baseline JFIF writer: quantized coefficients -> a ``.jpg`` file.

The file is laid out exactly as libjpeg-turbo lays it out (jcmarker.c,
jchuff.c), so that with default settings our bytes are the bytes of
libjpeg-turbo, Pillow and ``cjpeg -baseline``:

    SOI, APP0 JFIF 1.01 (density 1:1, no units) -- or APP14 Adobe for RGB,
    one DQT per quantization table (in component order, each table once),
    SOF0 (SOF1 if a table needs 16-bit precision),
    DHT per scan component: DC then AC table, each table once,
    DRI (when a restart interval is set), SOS, entropy-coded data, EOI.

Entropy coding (ITU-T T.81 Annex F.1.2): DC differences per component, AC
run-lengths with ZRL (0xF0) and EOB (0x00), Huffman codes from the Annex K
tables or, with ``optimize=True``, from optimal tables built per scan from the
symbol statistics (libjpeg's two passes and ``jpeg_gen_optimal_table``), bits
packed MSB first with 0x00 stuffed after every 0xFF and the last byte (before
each RSTn and at the end) padded with 1-bits.

The per-coefficient loop is compiled with numba (``@njit(cache=True)``): one
scan traversal, specialised into two cached kernels (statistics gathering for
``optimize`` and encoding), reading int16 (libjpeg's JCOEF) or int32 blocks.
Nonzero AC coefficients are visited through a 64-bit mask (lowest set bit
first) rather than by a branch per coefficient. The coder keeps its state
(bit buffer, DC predictors, restart counter) between calls, so a scan can be
coded a band of MCU rows at a time.

Progressive and other multi-scan files (``progressive=True``, ``scans=``)
get the same headers and SOF2 (SOF0/SOF1 for a sequential script); their
scans are coded by :mod:`jpegtorch.formats.progressive` (layout and rules
there), the scan scripts live in :mod:`jpegtorch.formats.scans`.

Two ways in: :func:`write_coefficients` codes a :class:`~jpegtorch.Coefficients`;
:func:`encode_array` / :func:`encode_rows` (and :func:`encode_jpeg` on top) run
the pipeline's compiled stages (:mod:`jpegtorch.kernels.encode`) and the coder
band by band, so the coefficients of only one band exist at a time, and never
import torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from jpegtorch.errors import JPEGError
from jpegtorch.kernels.sampling import SUBSAMPLING

from .huffman import STD_AC_TABLES, STD_DC_TABLES, HuffmanTable, code_table, optimal_table
from .zigzag import NATURAL_TO_ZIGZAG, ZIGZAG

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

    from jpegtorch.coefficients import Coefficients

    from .metadata import Metadata
    from .scans import ScansLike

SUBSAMPLINGS = tuple(SUBSAMPLING)  # "4:4:4", "4:2:2", "4:2:0", "4:4:0", "4:1:1"
MAX_BLOCKS_IN_MCU = 10  # libjpeg's C_MAX_BLOCKS_IN_MCU (T.81 B.2.3)

_ZIGZAG = np.array(ZIGZAG, dtype=np.int64)
_NO_MASKS = np.empty(0, dtype=np.int64)
_NO_OFFSETS = np.zeros(4, dtype=np.int64)


def _ac_mask_lut() -> np.ndarray:
    """``[8, 256]``: byte ``j`` of a block's natural-order nonzero mask -> the bits
    of the entropy coder's AC mask (bit ``z - 1`` for zigzag position ``z``)."""
    lut = np.zeros((8, 256), dtype=np.int64)
    for j in range(8):
        for byte in range(256):
            for bit in range(8):
                z = NATURAL_TO_ZIGZAG[8 * j + bit]
                if byte >> bit & 1 and z:
                    lut[j, byte] |= 1 << (z - 1)
    return lut


_AC_MASK_LUT = _ac_mask_lut()

# Kernel error codes (the kernel returns them as literals): 8-bit baseline data
# allows |DC difference| < 2**11 and |AC| < 2**10, as libjpeg checks.
_BAD_DC, _BAD_AC, _NO_CODE = 1, 2, 3

# Bit length of magnitudes 0..4095 (the JPEG "category", SSSS).
_NBITS = np.array([int(m).bit_length() for m in range(4096)], dtype=np.uint8)

# Index of the lowest set bit of x: _DEBRUIJN_LUT[((x & -x) * _DEBRUIJN) >> 58 & 63].
_DEBRUIJN = 0x03F79D71B4CB0A89
_DEBRUIJN_LUT = np.zeros(64, dtype=np.int64)
_DEBRUIJN_LUT[[((1 << i) * _DEBRUIJN) % (1 << 64) >> 58 for i in range(64)]] = np.arange(64)


@njit(inline="always")
def _emit(out, pos, acc, nacc):  # pragma: no cover - compiled
    """Emit the top 32 of the ``nacc >= 32`` pending bits (with 0xFF stuffing).

    Callers append bits themselves (``acc = acc << size | code``; at most 31
    pending bits plus one 27-bit code fit in 64 bits) and call this only when
    32 or more are pending: an array handed to an inlined function costs two
    reference-count calls, which would otherwise dominate every symbol.
    """
    nacc -= 32
    word = acc >> nacc
    acc &= (np.int64(1) << nacc) - 1
    inv = ~word & 0xFFFFFFFF
    if ((inv - 0x01010101) & ~inv & 0x80808080) == 0:  # no 0xFF byte: fast path
        out[pos] = (word >> 24) & 0xFF
        out[pos + 1] = (word >> 16) & 0xFF
        out[pos + 2] = (word >> 8) & 0xFF
        out[pos + 3] = word & 0xFF
        pos += 4
    else:
        for shift in range(24, -8, -8):
            b = (word >> shift) & 0xFF
            out[pos] = b
            pos += 1
            if b == 0xFF:
                out[pos] = 0
                pos += 1
    return pos, acc, nacc


@njit(inline="always")
def _flush(out, pos, acc, nacc):  # pragma: no cover - compiled
    """Emit the pending bits, the last byte padded with 1-bits; return the new position."""
    while nacc > 0:
        if nacc >= 8:
            nacc -= 8
            b = (acc >> nacc) & 0xFF
        else:
            b = ((acc << (8 - nacc)) | ((1 << (8 - nacc)) - 1)) & 0xFF
            nacc = 0
        out[pos] = b
        pos += 1
        if b == 0xFF:
            out[pos] = 0
            pos += 1
    return pos


@njit(inline="always")
def _scan(c0, c1, c2, c3, masks, moff, row_stride, hs, vs, dc_tab, ac_tab, mcu_row0, mcu_row1,
          mcu_cols, restart_interval, zigzag, nbits_lut, debruijn_lut, codes, sizes, counts, state,
          out, gather, final):  # pragma: no cover - compiled
    """Gather symbol statistics (``gather``) or entropy-code MCU rows of one scan.

    c0..c3: the components' blocks, flat int16 or int32 arrays (unused ones
    may be empty); each block is 64 values in natural order (value ``k`` of the
    zigzag sequence at ``zigzag[k]``), and component ``c``'s block ``(row, col)``
    starts at ``(row * row_stride[c] + col) * 64``, where row 0 is the first
    block row of MCU row ``mcu_row0``. ``masks``: empty, or each block's AC
    mask (bit ``k - 1`` set when zigzag value ``k`` is nonzero), component
    ``c``'s block ``i`` (counted as above) at ``moff[c] + i``. An MCU holds,
    per component, ``vs[c]`` rows of ``hs[c]`` blocks, coded with DC table
    ``dc_tab[c]`` and AC table ``ac_tab[c]``. ``codes``/``sizes`` ``[4, 256]``:
    Huffman codes and lengths (rows 0-1 DC, 2-3 AC tables); ``counts``
    ``[4, 257]`` int64 receives the statistics when gathering.

    The coder's state lives in ``state`` (int64 ``[16]``: output position,
    pending bits, their count, MCUs left in the restart interval, next RSTn,
    MCUs coded, then each component's DC predictor), so that a scan can be
    coded in bands of MCU rows; ``final`` flushes the last bits.
    Returns ``(out, error, mcu_index)``; ``out`` is a new array when it grew.
    """
    ncomp = row_stride.shape[0]
    blocks_per_mcu = 0
    for c in range(ncomp):
        blocks_per_mcu += hs[c] * vs[c]
    margin = blocks_per_mcu * 420 + 32  # worst case of one MCU, stuffed, plus RSTn
    with_masks = masks.shape[0] > 0
    pos = state[0]
    acc = state[1]  # pending bits, right-aligned
    nacc = state[2]  # number of pending bits (< 32 between puts)
    restarts_to_go = state[3]
    next_restart = state[4]
    mcu = state[5]
    last_dc = state[6:6 + ncomp]
    for mr in range(mcu_row0, mcu_row1):
        for mc in range(mcu_cols):
            if not gather and pos + margin > out.shape[0]:
                grown = np.empty(out.shape[0] * 2 + margin, dtype=np.uint8)
                grown[:pos] = out[:pos]
                out = grown
            if restart_interval > 0:
                if restarts_to_go == 0:
                    if not gather:
                        pos = _flush(out, pos, acc, nacc)
                        acc = np.int64(0)
                        nacc = np.int64(0)
                        out[pos] = 0xFF
                        out[pos + 1] = 0xD0 + next_restart
                        pos += 2
                    next_restart = (next_restart + 1) & 7
                    restarts_to_go = restart_interval
                    for c in range(ncomp):
                        last_dc[c] = 0
                restarts_to_go -= 1
            for c in range(ncomp):
                if c == 0:
                    coef = c0
                elif c == 1:
                    coef = c1
                elif c == 2:
                    coef = c2
                else:
                    coef = c3
                dct = dc_tab[c]
                act = ac_tab[c] + 2
                for v in range(vs[c]):
                    row = (mr - mcu_row0) * vs[c] + v
                    rowbase = (row * row_stride[c] + mc * hs[c]) * 64
                    for h in range(hs[c]):
                        base = rowbase + h * 64
                        # DC difference (F.1.2.1)
                        dc = np.int64(coef[base])
                        diff = dc - last_dc[c]
                        last_dc[c] = dc
                        mag = -diff if diff < 0 else diff
                        if mag >= 2048:
                            return out, 1, mcu
                        nbits = np.int64(nbits_lut[mag])
                        if gather:
                            counts[dct, nbits] += 1
                        else:
                            size = np.int64(sizes[dct, nbits])
                            if size == 0:
                                return out, 3, mcu
                            if diff < 0:
                                diff -= 1
                            code = (np.int64(codes[dct, nbits]) << nbits) \
                                | (diff & ((np.int64(1) << nbits) - 1))
                            acc = (acc << (size + nbits)) | code
                            nacc += size + nbits
                            if nacc >= 32:
                                pos, acc, nacc = _emit(out, pos, acc, nacc)
                        # AC run lengths (F.1.2.2)
                        # Bit k-1 of mask: coefficient k (zigzag) is nonzero. Visiting
                        # the set bits (lowest first, de Bruijn) avoids a branch per
                        # coefficient.
                        if with_masks:
                            mask = masks[moff[c] + (base >> 6)]
                        else:
                            mask = np.int64(0)
                            for k in range(1, 64):
                                mask |= np.int64(coef[base + zigzag[k]] != 0) << (k - 1)
                        prev = 0
                        while mask != 0:
                            low = mask & -mask
                            k = debruijn_lut[((low * _DEBRUIJN) >> 58) & 63] + 1
                            mask ^= low
                            run = k - prev - 1
                            prev = k
                            val = np.int64(coef[base + zigzag[k]])
                            mag = -val if val < 0 else val
                            if mag >= 1024:
                                return out, 2, mcu
                            nbits = np.int64(nbits_lut[mag])
                            while run > 15:
                                if gather:
                                    counts[act, 0xF0] += 1
                                else:
                                    size = np.int64(sizes[act, 0xF0])
                                    if size == 0:
                                        return out, 3, mcu
                                    acc = (acc << size) | np.int64(codes[act, 0xF0])
                                    nacc += size
                                    if nacc >= 32:
                                        pos, acc, nacc = _emit(out, pos, acc, nacc)
                                run -= 16
                            sym = (run << 4) + nbits
                            if gather:
                                counts[act, sym] += 1
                            else:
                                size = np.int64(sizes[act, sym])
                                if size == 0:
                                    return out, 3, mcu
                                if val < 0:
                                    val -= 1
                                code = (np.int64(codes[act, sym]) << nbits) \
                                    | (val & ((np.int64(1) << nbits) - 1))
                                acc = (acc << (size + nbits)) | code
                                nacc += size + nbits
                                if nacc >= 32:
                                    pos, acc, nacc = _emit(out, pos, acc, nacc)
                        if prev < 63:  # end of block
                            if gather:
                                counts[act, 0] += 1
                            else:
                                size = np.int64(sizes[act, 0])
                                if size == 0:
                                    return out, 3, mcu
                                acc = (acc << size) | np.int64(codes[act, 0])
                                nacc += size
                                if nacc >= 32:
                                    pos, acc, nacc = _emit(out, pos, acc, nacc)
            mcu += 1
    if final and not gather:
        if pos + 8 > out.shape[0]:
            grown = np.empty(pos + 8, dtype=np.uint8)
            grown[:pos] = out[:pos]
            out = grown
        pos = _flush(out, pos, acc, nacc)
        acc = np.int64(0)
        nacc = np.int64(0)
    state[0] = pos
    state[1] = acc
    state[2] = nacc
    state[3] = restarts_to_go
    state[4] = next_restart
    state[5] = mcu
    return out, 0, mcu


# Two entry points, so that ``gather`` is a compile-time constant in each.
@njit(cache=True, nogil=True)
def _encode_scan(c0, c1, c2, c3, masks, moff, row_stride, hs, vs, dc_tab, ac_tab, mcu_row0,
                 mcu_row1, mcu_cols, restart_interval, zigzag, nbits_lut, debruijn_lut, codes,
                 sizes, state, out, final):  # pragma: no cover - compiled
    """Entropy-code MCU rows of a scan (see ``_scan``); returns ``(out, error, mcu)``."""
    counts = np.zeros((1, 1), dtype=np.int64)
    return _scan(c0, c1, c2, c3, masks, moff, row_stride, hs, vs, dc_tab, ac_tab, mcu_row0,
                 mcu_row1, mcu_cols, restart_interval, zigzag, nbits_lut, debruijn_lut, codes,
                 sizes, counts, state, out, False, final)


@njit(cache=True, nogil=True)
def _gather_scan(c0, c1, c2, c3, masks, moff, row_stride, hs, vs, dc_tab, ac_tab, mcu_row0,
                 mcu_row1, mcu_cols, restart_interval, zigzag, nbits_lut, debruijn_lut, counts,
                 state):  # pragma: no cover - compiled
    """Count the Huffman symbols of MCU rows of a scan into ``counts`` (see ``_scan``)."""
    codes = np.zeros((1, 1), dtype=np.uint32)
    sizes = np.zeros((1, 1), dtype=np.int32)
    out = np.empty(0, dtype=np.uint8)
    return _scan(c0, c1, c2, c3, masks, moff, row_stride, hs, vs, dc_tab, ac_tab, mcu_row0,
                 mcu_row1, mcu_cols, restart_interval, zigzag, nbits_lut, debruijn_lut, codes,
                 sizes, counts, state, out, True, False)


class _ScanCoder:
    """One baseline scan, coded in bands of MCU rows (Python side of ``_scan``).

    ``hs``/``vs``: MCU shape per component (all ones for a single-component
    scan); ``slots``: the Huffman table slot (0 luma, 1 chroma) per component.
    Call :meth:`gather` over all bands and :meth:`optimal_tables`, or
    :meth:`standard_tables`; then :meth:`encode` over all bands and
    :meth:`data`.
    """

    def __init__(self, hs: np.ndarray, vs: np.ndarray, slots: tuple[int, ...], mcu_cols: int,
                 restart_interval: int, capacity: int) -> None:
        self.hs, self.vs, self.mcu_cols = hs, vs, mcu_cols
        self.slots = slots
        self.tab = np.array(slots, dtype=np.int64)
        self.restart_interval = restart_interval
        self.capacity = capacity
        self.codes = np.zeros((4, 256), dtype=np.uint32)
        self.sizes = np.zeros((4, 256), dtype=np.int32)
        self.counts = np.zeros((4, 257), dtype=np.int64)
        self.dc_tables: dict[int, HuffmanTable] = {}
        self.ac_tables: dict[int, HuffmanTable] = {}
        self.out = np.empty(0, dtype=np.uint8)
        self.state = self._fresh_state()

    def _fresh_state(self) -> np.ndarray:
        state = np.zeros(16, dtype=np.int64)
        state[3] = self.restart_interval
        return state

    def _args(self, blocks: Sequence[np.ndarray], masks: tuple[np.ndarray, np.ndarray] | None,
              row_stride: np.ndarray, mcu_row0: int, mcu_row1: int) -> tuple:
        flats = [b.reshape(-1) for b in blocks]
        empty = flats[0][:0]
        flats += [empty] * (4 - len(flats))
        mask_args = masks if masks is not None else (_NO_MASKS, _NO_OFFSETS)
        return (*flats, *mask_args, row_stride, self.hs, self.vs, self.tab, self.tab, mcu_row0,
                mcu_row1, self.mcu_cols, self.restart_interval, _ZIGZAG, _NBITS,
                _DEBRUIJN_LUT)

    def _check(self, err: int, mcu: int) -> None:
        if err:
            where = f"in MCU {mcu} (row {mcu // self.mcu_cols}, column {mcu % self.mcu_cols})"
            if err == _BAD_DC:
                raise JPEGError(f"DC difference out of baseline range {where}")
            if err == _BAD_AC:
                raise JPEGError(f"AC coefficient out of baseline range (|v| > 1023) {where}")
            raise JPEGError(f"symbol missing from the Huffman table {where}")

    def gather(self, blocks: Sequence[np.ndarray], row_stride: np.ndarray, mcu_row0: int,
               mcu_row1: int, masks: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Count the symbols of MCU rows ``mcu_row0 .. mcu_row1 - 1`` (``masks``:
        ``(masks, offsets)`` of the blocks, or None to compute them)."""
        _, err, mcu = _gather_scan(*self._args(blocks, masks, row_stride, mcu_row0, mcu_row1),
                                   self.counts, self.state)
        self._check(err, mcu)

    def optimal_tables(self) -> None:
        for s in sorted(set(self.slots)):
            self.dc_tables[s] = optimal_table(self.counts[s])
            self.ac_tables[s] = optimal_table(self.counts[s + 2])
        self._code_tables()

    def standard_tables(self) -> None:
        for s in set(self.slots):
            self.dc_tables[s] = STD_DC_TABLES[s]
            self.ac_tables[s] = STD_AC_TABLES[s]
        self._code_tables()

    def _code_tables(self) -> None:
        for s in set(self.slots):
            self.codes[s], self.sizes[s] = code_table(self.dc_tables[s], is_dc=True)
            self.codes[s + 2], self.sizes[s + 2] = code_table(self.ac_tables[s], is_dc=False)
        self.state = self._fresh_state()  # the encoding pass starts afresh
        self.out = np.empty(self.capacity, dtype=np.uint8)

    def encode(self, blocks: Sequence[np.ndarray], row_stride: np.ndarray, mcu_row0: int,
               mcu_row1: int, final: bool,
               masks: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Entropy-code MCU rows ``mcu_row0 .. mcu_row1 - 1`` (``final``: the last
        ones; ``masks`` as for :meth:`gather`)."""
        self.out, err, mcu = _encode_scan(
            *self._args(blocks, masks, row_stride, mcu_row0, mcu_row1), self.codes, self.sizes,
            self.state, self.out, final)
        self._check(err, mcu)

    def data(self) -> memoryview:
        """The entropy-coded segment (after the final :meth:`encode`)."""
        return memoryview(self.out)[: int(self.state[0])]


# --------------------------------------------------------------------------- markers


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise JPEGError(f"marker segment 0x{marker:02X} is too long")
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _jfif_app0() -> bytes:
    # "JFIF\0", version 1.01, units 0 (aspect ratio only), density 1:1, no thumbnail.
    return _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


def _adobe_app14(color: str) -> bytes:
    transform = 1 if color == "ycbcr" else 0
    return _segment(0xEE, b"Adobe" + (100).to_bytes(2, "big") + bytes(4) + bytes((transform,)))


def _dqt(slot: int, table: np.ndarray) -> bytes:
    zz = [int(v) for v in table.reshape(64)[_ZIGZAG]]
    if max(zz) > 255:
        payload = bytes((0x10 | slot,)) + b"".join(v.to_bytes(2, "big") for v in zz)
    else:
        payload = bytes((slot,)) + bytes(zz)
    return _segment(0xDB, payload)


def _dht(table_class: int, slot: int, table: HuffmanTable) -> bytes:
    bits, huffval = table
    return _segment(0xC4, bytes((table_class << 4 | slot, *bits, *huffval)))


# --------------------------------------------------------------------------- file


def _frame_header(*, color: str, size: tuple[int, int], sampling: Sequence[tuple[int, int]],
                  component_ids: Sequence[int], qtable_slots: Sequence[int],
                  slot_tables: dict[int, np.ndarray], sof_marker: int) -> list[bytes]:
    """SOI, APP0 JFIF (APP14 Adobe for RGB), one DQT per slot, SOF: libjpeg's order."""
    height, width = size
    n = len(sampling)
    parts = [b"\xff\xd8"]
    if color == "rgb":
        parts.append(_adobe_app14(color))
    else:
        parts.append(_jfif_app0())
    sent: set[int] = set()
    for slot in qtable_slots:
        if slot not in sent:
            parts.append(_dqt(slot, slot_tables[slot]))
            sent.add(slot)
    sof = bytearray((8, *height.to_bytes(2, "big"), *width.to_bytes(2, "big"), n))
    for c in range(n):
        h, v = sampling[c]
        sof += bytes((component_ids[c], h << 4 | v, qtable_slots[c]))
    parts.append(_segment(sof_marker, bytes(sof)))
    return parts


def _multiscan_bytes(*, color: str, size: tuple[int, int], sampling: Sequence[tuple[int, int]],
                     component_ids: Sequence[int], qtable_slots: Sequence[int],
                     slot_tables: dict[int, np.ndarray], blocks: Sequence[np.ndarray],
                     table_slots: Sequence[int], progressive: bool,
                     scans: ScansLike | None, optimize: bool, restart_interval: int,
                     restart_rows: int) -> bytes:
    """A progressive (``scans`` None: libjpeg's default script) or scan-script
    file: headers, the scans coded by :mod:`jpegtorch.formats.progressive`, EOI."""
    from .progressive import encode_scans
    from .scans import resolve_scans, simple_progression, validate_scans

    n = len(sampling)
    script = resolve_scans(scans) if scans is not None else simple_progression(n, color)
    is_progressive = validate_scans(script, n)
    body = encode_scans(blocks, sampling, size, component_ids, table_slots, script,
                        optimize=optimize, restart_interval=restart_interval,
                        restart_rows=restart_rows)
    sixteen_bit = any(int(t.max()) > 255 for t in slot_tables.values())
    marker = 0xC2 if is_progressive else 0xC1 if sixteen_bit else 0xC0
    parts = _frame_header(color=color, size=size, sampling=sampling,
                          component_ids=component_ids, qtable_slots=qtable_slots,
                          slot_tables=slot_tables, sof_marker=marker)
    return b"".join([*parts, body, b"\xff\xd9"])


def _file_bytes(*, color: str, size: tuple[int, int], sampling: Sequence[tuple[int, int]],
                component_ids: Sequence[int], qtable_slots: Sequence[int],
                slot_tables: dict[int, np.ndarray], coder: _ScanCoder,
                restart_interval: int) -> bytes:
    """The whole file: headers in libjpeg's order, the scan's data, EOI."""
    n = len(sampling)
    sixteen_bit = any(int(t.max()) > 255 for t in slot_tables.values())
    parts = _frame_header(color=color, size=size, sampling=sampling,
                          component_ids=component_ids, qtable_slots=qtable_slots,
                          slot_tables=slot_tables, sof_marker=0xC1 if sixteen_bit else 0xC0)
    sent_dc: set[int] = set()
    sent_ac: set[int] = set()
    for s in coder.slots:
        if s not in sent_dc:
            parts.append(_dht(0, s, coder.dc_tables[s]))
            sent_dc.add(s)
        if s not in sent_ac:
            parts.append(_dht(1, s, coder.ac_tables[s]))
            sent_ac.add(s)
    if restart_interval:
        parts.append(_segment(0xDD, restart_interval.to_bytes(2, "big")))
    sos = bytearray((n,))
    for c in range(n):
        sos += bytes((component_ids[c], coder.slots[c] << 4 | coder.slots[c]))
    sos += bytes((0, 63, 0))
    parts.append(_segment(0xDA, bytes(sos)))
    parts.append(coder.data())
    parts.append(b"\xff\xd9")
    return b"".join(parts)


def _capacity(blocks: int) -> int:
    """First size of the output buffer (grown when needed; untouched pages cost nothing)."""
    return blocks * 32 + MAX_BLOCKS_IN_MCU * 420 + 64


# --------------------------------------------------------------------------- API


def _table_slots(coefficients: Coefficients) -> tuple[int, ...]:
    """Huffman table slot per component, as libjpeg's jpeg_set_colorspace assigns them."""
    if coefficients.color == "ycbcr":
        return tuple(0 if c == 0 else 1 for c in range(coefficients.num_components))
    return (0,) * coefficients.num_components


def _check_restart(restart_interval: int, name: str = "restart_interval",
                   unit: str = "MCUs") -> int:
    if isinstance(restart_interval, bool) or not isinstance(restart_interval, (int, np.integer)):
        raise JPEGError(f"{name} must be an int, got {type(restart_interval).__name__}")
    if not 0 <= int(restart_interval) <= 65535:
        raise JPEGError(f"{name} must be 0..65535 {unit}, got {restart_interval}")
    return int(restart_interval)


def _check_restarts(restart_interval: int, restart_rows: int) -> tuple[int, int]:
    interval = _check_restart(restart_interval)
    rows = _check_restart(restart_rows, "restart_rows", "MCU rows")
    if interval and rows:
        raise JPEGError("give restart_interval (MCUs) or restart_rows, not both")
    return interval, rows


def _blocks_as_arrays(blocks: Sequence[Tensor]) -> list[np.ndarray]:
    """Blocks as C-contiguous numpy arrays the entropy coder reads: int16
    (libjpeg's JCOEF) or int32 as they are, anything else as int32 (float
    blocks rounded, ranges checked so that the conversion cannot wrap). The
    kernel checks the baseline ranges."""
    import torch

    dtypes = {b.dtype for b in blocks}
    keep = next((d for d in (torch.int16, torch.int32) if dtypes == {d}), None)
    arrays = []
    for block in blocks:
        b = block.detach()
        if keep is None and b.dtype != torch.int32:
            if b.is_floating_point():
                if not bool(torch.isfinite(b).all()):
                    raise JPEGError("coefficients must be finite")
                b = torch.round(b)
            elif b.dtype not in (torch.int16, torch.int64, torch.uint8, torch.int8):
                raise JPEGError(f"unsupported coefficient dtype {b.dtype}")
            if b.numel() and (float(b.min()) < -32768 or float(b.max()) > 32767):
                raise JPEGError("coefficient out of range for baseline JPEG")
            b = b.to(torch.int32)
        arrays.append(np.ascontiguousarray(b.cpu().numpy()))
    return arrays


def write_coefficients(coefficients: Coefficients, *, optimize: bool = False,
                       restart_interval: int = 0, progressive: bool = False,
                       scans: ScansLike | None = None, restart_rows: int = 0,
                       metadata: Metadata | None = None) -> bytes:
    """Write quantized coefficients as a JFIF file (baseline, or progressive).

    Args:
        coefficients: a :class:`~jpegtorch.Coefficients` of batch size 1, from
            :func:`jpegtorch.encode` or read from a file. Blocks ``[1, by, bx,
            8, 8]`` per component (int16 or int32 are coded as they are; other
            integers and floats are rounded to int32), values within baseline
            limits (|AC| < 1024, |DC difference| < 2048); qtables ``[1, C, 8,
            8]`` with values 1..65535 (above 255 gives a 16-bit DQT and SOF1, as
            libjpeg does). Colour "gray" and "ycbcr" get a JFIF APP0 header,
            "rgb" an Adobe APP14 (transform 0).
        optimize: build optimal Huffman tables for this image (libjpeg's
            ``optimize_coding``) instead of the Annex K tables.
        restart_interval: MCUs between restart markers (0 = none), 0..65535;
            in a multi-scan file, MCUs of each scan (a block in a
            single-component scan).
        progressive: write a progressive JPEG (SOF2) with libjpeg's
            ``jpeg_simple_progression`` script and optimal Huffman tables per
            scan (what ``cjpeg -progressive`` and Pillow's
            ``progressive=True`` write; ``optimize`` changes nothing then).
        scans: a scan script instead of the default progression: a list of
            :class:`~jpegtorch.formats.scans.Scan` (or ``(components, ss, se,
            ah, al)`` tuples) or the path of a cjpeg ``-scans`` file. As in
            cjpeg, it overrides ``progressive`` and decides by itself: a
            first scan other than 0-63 makes the file progressive, otherwise
            it is sequential with one scan per entry (``cjpeg -scans``).
        restart_rows: instead of ``restart_interval``, restart markers every
            this many MCU rows (libjpeg's ``restart_in_rows``: ``cjpeg
            -restart N``, Pillow's ``restart_marker_rows``), 0..65535; the
            interval is ``rows x MCUs per row`` of each scan, capped at 65535.
        metadata: EXIF, ICC profile, XMP, comments, density and other APPn
            segments to write after the JFIF/Adobe header
            (:class:`jpegtorch.formats.metadata.Metadata`, e.g. from
            ``read_jpeg_metadata``); None writes libjpeg-turbo's bytes.

    Returns:
        The bytes of the JPEG file.

    Raises:
        JPEGError: the coefficients cannot be written as such a JPEG, or an
            invalid scan script.
    """
    import torch

    restart_interval, restart_rows = _check_restarts(restart_interval, restart_rows)
    n = coefficients.num_components
    if coefficients.batch_size != 1:
        raise JPEGError(
            f"write_coefficients writes one image; got a batch of {coefficients.batch_size}"
            " (use coefficients.select(i))"
        )
    if (n == 1) != (coefficients.color == "gray") or n not in (1, 3):
        raise JPEGError(f"cannot write {n} components with color {coefficients.color!r}")
    height, width = coefficients.size
    if not (1 <= height <= 65535 and 1 <= width <= 65535):
        raise JPEGError(f"image size {width}x{height} is outside JPEG's 1..65535")
    if any(not (1 <= h <= 4 and 1 <= v <= 4) for h, v in coefficients.sampling):
        raise JPEGError(f"bad sampling factors {coefficients.sampling}")
    hmax, vmax = coefficients.max_sampling
    if any(hmax % h or vmax % v for h, v in coefficients.sampling):
        raise JPEGError(f"unsupported (fractional) sampling factors {coefficients.sampling}")
    interleaved = n > 1
    if interleaved and sum(h * v for h, v in coefficients.sampling) > MAX_BLOCKS_IN_MCU:
        raise JPEGError(f"sampling factors {coefficients.sampling} exceed 10 blocks per MCU")
    if len(set(coefficients.component_ids)) != n or any(
        not 0 <= i <= 255 for i in coefficients.component_ids
    ):
        raise JPEGError(f"bad component ids {coefficients.component_ids}")

    # Quantization tables: one per slot, in component order.
    qt = coefficients.qtables.detach()
    if qt.is_floating_point():
        qt = torch.round(qt)
    qt = qt.to(device="cpu", dtype=torch.int64).numpy()[0]
    slot_tables: dict[int, np.ndarray] = {}
    for c, slot in enumerate(coefficients.qtable_slots):
        if not 0 <= slot <= 3:
            raise JPEGError(f"bad quantization table slot {slot}")
        table = qt[c]
        if table.min() < 1 or table.max() > 65535:
            raise JPEGError("quantization table values must be 1..65535")
        if slot in slot_tables and not np.array_equal(slot_tables[slot], table):
            raise JPEGError(f"components sharing DQT slot {slot} have different tables")
        slot_tables.setdefault(slot, table)

    # Block layout of the scan.
    blocks = _blocks_as_arrays(coefficients.blocks)
    if progressive or scans is not None:  # a multi-scan file: formats/progressive.py
        return _with_metadata(_multiscan_bytes(
            color=coefficients.color, size=(height, width), sampling=coefficients.sampling,
            component_ids=coefficients.component_ids, qtable_slots=coefficients.qtable_slots,
            slot_tables=slot_tables, blocks=blocks, table_slots=_table_slots(coefficients),
            progressive=progressive, scans=scans, optimize=optimize,
            restart_interval=restart_interval, restart_rows=restart_rows), metadata)
    mcu_rows, mcu_cols = coefficients.mcu_grid
    for c, b in enumerate(blocks):
        h, v = coefficients.sampling[c]
        need = (mcu_rows * v, mcu_cols * h) if interleaved else coefficients.component_blocks(c)
        if b.ndim != 5 or b.shape[3:] != (8, 8) or b.shape[1] < need[0] or b.shape[2] < need[1]:
            raise JPEGError(
                f"component {c} blocks have shape {b.shape[1:]}, expected at least "
                f"({need[0]}, {need[1]}, 8, 8)"
            )
    if interleaved:
        hs = np.array([h for h, _ in coefficients.sampling], dtype=np.int64)
        vs = np.array([v for _, v in coefficients.sampling], dtype=np.int64)
    else:
        mcu_rows, mcu_cols = coefficients.component_blocks(0)
        hs = vs = np.ones(1, dtype=np.int64)
    if restart_rows:  # libjpeg's restart_in_rows (jcmaster.c per_scan_setup)
        restart_interval = min(restart_rows * mcu_cols, 65535)
    row_stride = np.array([b.shape[2] for b in blocks], dtype=np.int64)
    coder = _ScanCoder(hs, vs, _table_slots(coefficients), mcu_cols, restart_interval,
                       _capacity(mcu_rows * mcu_cols * int((hs * vs).sum())))
    if optimize:
        coder.gather(blocks, row_stride, 0, mcu_rows)
        coder.optimal_tables()
    else:
        coder.standard_tables()
    coder.encode(blocks, row_stride, 0, mcu_rows, final=True)
    return _with_metadata(
        _file_bytes(color=coefficients.color, size=(height, width),
                    sampling=coefficients.sampling, component_ids=coefficients.component_ids,
                    qtable_slots=coefficients.qtable_slots, slot_tables=slot_tables,
                    coder=coder, restart_interval=restart_interval), metadata)


def _with_metadata(jpeg: bytes, metadata: Metadata | None) -> bytes:
    """The writer's file with ``metadata``'s segments after its JFIF/Adobe header."""
    if not metadata:
        return jpeg
    from .metadata import insert_into_jpeg

    return insert_into_jpeg(jpeg, metadata)


def _check_metadata(metadata: Metadata | None) -> None:
    """Too-long EXIF/XMP/comments fail before the work."""
    if metadata:
        metadata.jpeg_segments()


def base_tables(tables: object) -> np.ndarray | None:
    """Base quantization tables ``[2, 64]`` int64 (luma, chroma; natural order) or None.

    ``tables``: None (Annex K); a ``[2, 8, 8]`` (or ``[2, 64]``) integer-valued
    array or tensor with values 0..65535; the path of a cjpeg ``-qtables`` file;
    or a preset name. Does not import torch.
    """
    if tables is None:
        return None
    if isinstance(tables, (str, os.PathLike)):
        from .qtables import resolve_tables

        luma, chroma = resolve_tables(tables)
        return np.array([luma, chroma], dtype=np.int64)
    if hasattr(tables, "detach"):  # a torch tensor
        tables = tables.detach().cpu().numpy()
    if not isinstance(tables, np.ndarray):
        raise JPEGError(
            f"tables must be None, a [2, 8, 8] tensor or array, a file path or a preset "
            f"name, got {type(tables).__name__}"
        )
    if tuple(tables.shape) not in ((2, 8, 8), (2, 64)):
        raise JPEGError(f"tables must be [2, 8, 8], got {tuple(tables.shape)}")
    if tables.dtype.kind not in "iuf" or (tables.dtype.kind == "f" and not np.array_equal(
            tables, np.round(tables))):
        raise JPEGError("tables must hold integers")
    if tables.size and (tables.min() < 0 or tables.max() > 65535):
        raise JPEGError("base quantization table values must be 0..65535")
    return tables.astype(np.int64).reshape(2, 64)


def resolve_base_tables(tables: Tensor | str | os.PathLike[str] | None) -> Tensor | None:
    """Base tables ``[2, 8, 8]`` int64 tensor (luma, chroma; natural order) or None.

    ``tables``: None (Annex K), a ``[2, 8, 8]`` integer-valued tensor (values
    0..65535), the path of a cjpeg ``-qtables`` file or a preset name.
    """
    import torch

    base = base_tables(tables)
    return None if base is None else torch.from_numpy(base).reshape(2, 8, 8)


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise JPEGError(f"quality must be an int 1..100, got {quality!r}")
    if not 1 <= int(quality) <= 100:
        raise JPEGError(f"quality must be 1..100, got {quality}")
    return int(quality)


def _check_subsampling(subsampling: str) -> tuple[tuple[int, int], ...]:
    if subsampling not in SUBSAMPLINGS:
        raise JPEGError(
            f"subsampling must be one of {', '.join(SUBSAMPLINGS)}, got {subsampling!r}"
        )
    return SUBSAMPLING[subsampling]


# Pixels per band of the streaming encoder (MCU rows are grouped up to this).
BAND_PIXELS = 1 << 19
# optimize=True keeps the whole coefficient array (int16, made in one pass) up
# to this many bytes; larger images run the pipeline twice, band by band.
KEEP_COEFFICIENTS_BYTES = 64 << 20


def encode_rows(read_rows: Callable[[int, int], np.ndarray], size: tuple[int, int],
                channels: int, quality: int = 75, *, subsampling: str = "4:2:0",
                optimize: bool = False, restart_interval: int = 0, tables: object = None,
                grayscale: bool = False, progressive: bool = False,
                scans: ScansLike | None = None, restart_rows: int = 0,
                force_baseline: bool = True, metadata: Metadata | None = None) -> bytes:
    """Encode an image delivered in strips of rows (the streaming encoder).

    The pipeline's compiled stages (:mod:`jpegtorch.kernels`) and the entropy
    coder run in bands of MCU rows (about ``BAND_PIXELS`` pixels each), asking
    ``read_rows`` for each band's rows just before coding it, so that memory
    beyond the source and the output stays a small fixed working set. With
    ``optimize`` the coefficients (int16) of images up to
    ``KEEP_COEFFICIENTS_BYTES`` are kept for the second pass, larger images
    are read and transformed twice.

    Args:
        read_rows: ``read_rows(y0, y1)`` returns image rows ``y0 .. y1 - 1`` as
            uint8 ``[y1 - y0, W, channels]`` (any strides).
        size: ``(height, width)``, each 1..65535.
        channels: 1 (gray) or 3 (RGB).
        quality, subsampling, optimize, restart_interval, tables, grayscale,
        progressive, scans, restart_rows, force_baseline, metadata: as for
            :func:`encode_array`. A progressive or scan-script file keeps the
            whole image's coefficients (int16) for its scans.

    Returns:
        The JPEG file's bytes.
    """
    from jpegtorch.kernels.encode import Geometry, forward_band, prepare
    from jpegtorch.kernels.quantize import reciprocals, scaled_tables

    height, width = (int(v) for v in size)
    if not (1 <= height <= 65535 and 1 <= width <= 65535):
        raise JPEGError(f"image size {width}x{height} is outside JPEG's 1..65535")
    if channels not in (1, 3):
        raise JPEGError(f"images have 1 or 3 channels, got {channels}")
    quality = _check_quality(quality)
    sampling = _check_subsampling(subsampling)
    restart_interval, restart_rows = _check_restarts(restart_interval, restart_rows)
    _check_metadata(metadata)
    scaled = scaled_tables(quality, base_tables(tables),
                           force_baseline=bool(force_baseline))  # [2, 64] int32
    multiscan = bool(progressive) or scans is not None
    gray = channels == 1 or grayscale
    if gray:
        sampling = ((1, 1),)
    ncomp = len(sampling)
    qtable_slots = (0, 1, 1)[:ncomp]
    half, mult = reciprocals(scaled[list(qtable_slots)].astype(np.int64)[None] * 8)

    geometry = Geometry(height, width, sampling)
    hs, vs, biases = prepare(sampling, width)
    grids = [geometry.grid(c) for c in range(ncomp)]
    mcu_rows = geometry.mcu_rows
    group = 8 * geometry.vmax  # image rows per MCU row
    keep = multiscan or (
        optimize and sum(by * bx for by, bx in grids) * 128 <= KEEP_COEFFICIENTS_BYTES)
    if restart_rows:  # libjpeg's restart_in_rows (jcmaster.c per_scan_setup)
        restart_interval = min(restart_rows * geometry.mcu_cols, 65535)
    band = max(1, min(mcu_rows, BAND_PIXELS // (group * width)))
    per_row = [by // mcu_rows for by, _ in grids]  # block rows per MCU row
    # blocks with their AC masks (made by the quantizer, read by the entropy coder)
    rows_kept = mcu_rows if keep else band
    buffers = [np.empty((rows_kept * v, bx, 64), dtype=np.int16)
               for v, (_, bx) in zip(per_row, grids, strict=True)]
    mask_counts = [rows_kept * v * bx for v, (_, bx) in zip(per_row, grids, strict=True)]
    masks = np.empty(sum(mask_counts), dtype=np.int64)
    row_stride = np.array([bx for _, bx in grids], dtype=np.int64)
    ones = np.ones(1, dtype=np.int64)
    coder = _ScanCoder(hs if ncomp > 1 else ones, vs if ncomp > 1 else ones, qtable_slots,
                       geometry.mcu_cols, restart_interval,
                       _capacity(sum(by * bx for by, bx in grids)))

    def bands() -> Iterator[tuple[int, int, list[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
        """Transform each band; yield its MCU rows, blocks and masks."""
        for row0 in range(0, mcu_rows, band):
            row1 = min(mcu_rows, row0 + band)
            y0, y1 = row0 * group, min(height, row1 * group)
            pixels = read_rows(y0, y1)
            if pixels.dtype != np.uint8 or pixels.shape != (y1 - y0, width, channels):
                raise JPEGError(f"read_rows({y0}, {y1}) gave {pixels.dtype} "
                                f"{pixels.shape}, expected uint8 {(y1 - y0, width, channels)}")
            first = row0 if keep else 0  # the band's first MCU row in the buffers
            blocks = [b[first * v : (first + row1 - row0) * v]
                      for b, v in zip(buffers, per_row, strict=True)]
            moff = np.array([sum(mask_counts[:c]) + first * v * bx
                             for c, (v, (_, bx)) in enumerate(zip(per_row, grids, strict=True))],
                            dtype=np.int64)
            forward_band(pixels, y0, geometry, row0, row1, half, mult, hs, vs, biases, blocks,
                         masks, moff, _AC_MASK_LUT)
            yield row0, row1, blocks, (masks, moff)

    all_masks = (masks, np.array([sum(mask_counts[:c]) for c in range(ncomp)], dtype=np.int64))
    if multiscan:  # every coefficient first, then the scans (formats/progressive.py)
        for _ in bands():
            pass
        return _with_metadata(_multiscan_bytes(
            color="gray" if gray else "ycbcr", size=(height, width), sampling=sampling,
            component_ids=tuple(range(1, ncomp + 1)), qtable_slots=qtable_slots,
            slot_tables={s: scaled[s] for s in qtable_slots}, blocks=buffers,
            table_slots=qtable_slots, progressive=progressive, scans=scans,
            optimize=optimize, restart_interval=0 if restart_rows else restart_interval,
            restart_rows=restart_rows), metadata)
    if optimize:
        for row0, row1, blocks, band_masks in bands():
            coder.gather(blocks, row_stride, row0, row1, band_masks)
        coder.optimal_tables()
        passes: Iterable[tuple[int, int, list[np.ndarray], tuple[np.ndarray, np.ndarray]]] = (
            [(0, mcu_rows, buffers, all_masks)] if keep else bands())
    else:
        coder.standard_tables()
        passes = bands()
    for row0, row1, blocks, band_masks in passes:
        coder.encode(blocks, row_stride, row0, row1, final=row1 == mcu_rows, masks=band_masks)
    return _with_metadata(
        _file_bytes(color="gray" if gray else "ycbcr", size=(height, width),
                    sampling=sampling, component_ids=tuple(range(1, ncomp + 1)),
                    qtable_slots=qtable_slots, slot_tables={s: scaled[s] for s in qtable_slots},
                    coder=coder, restart_interval=restart_interval), metadata)


def encode_array(array: np.ndarray, quality: int = 75, *, layout: str = "HWC",
                 subsampling: str = "4:2:0", optimize: bool = False,
                 restart_interval: int = 0, tables: object = None,
                 grayscale: bool = False, progressive: bool = False,
                 scans: ScansLike | None = None, restart_rows: int = 0,
                 force_baseline: bool = True, metadata: Metadata | None = None) -> bytes:
    """Encode a numpy image to a JFIF file, byte-identical to libjpeg-turbo.

    The torch-free codec path: the pipeline's compiled stages
    (:mod:`jpegtorch.kernels`) and the entropy coder run band by band (see
    :func:`encode_rows`), reading the array in place (no copy).

    Args:
        array: uint8 ``[H, W]`` (gray), or ``[H, W, C]`` (``layout="HWC"``) /
            ``[C, H, W]`` (``layout="CHW"``) with C = 1 (gray) or 3 (RGB); any
            strides; 1 <= H, W <= 65535.
        quality: 1..100 (libjpeg's scale; 50 uses the base tables as given).
        subsampling: "4:4:4", "4:2:2", "4:2:0", "4:4:0" (cjpeg's ``-sample
            1x2``) or "4:1:1" (``-sample 4x1``); ignored for gray output.
        optimize: optimal Huffman tables (libjpeg's ``optimize_coding``).
        restart_interval: MCUs between restart markers, 0 = none.
        tables: base quantization tables: None (Annex K), ``[2, 8, 8]`` integers
            (luma, chroma; natural order), a cjpeg ``-qtables`` file or a preset
            name; scaled by quality and clamped to 1..255 as libjpeg does.
        grayscale: write a gray JPEG of an RGB image (libjpeg's luma, as
            ``cjpeg -grayscale``).
        progressive: a progressive JPEG (SOF2): libjpeg's default progression
            with optimal Huffman tables per scan (see
            :func:`write_coefficients`).
        scans: a scan script (a list of
            :class:`~jpegtorch.formats.scans.Scan` or a cjpeg ``-scans``
            file path) instead of the default progression; it decides
            between progressive and multi-scan sequential, as in cjpeg.
        restart_rows: instead of ``restart_interval``, restart markers every
            this many MCU rows (libjpeg's ``restart_in_rows``: Pillow's
            ``restart_marker_rows``, ``cjpeg -restart N``).
        force_baseline: clamp the quality-scaled tables to 1..255 (libjpeg's
            ``force_baseline``: Pillow, ``cjpeg -baseline``). False keeps
            entries up to 32767 as plain ``cjpeg`` does at low quality:
            16-bit DQT, so SOF1 for a sequential file (SOF2 progressive).
        metadata: a :class:`jpegtorch.formats.metadata.Metadata` (EXIF, ICC,
            XMP, comments, density, other APPn segments) written after the
            JFIF header as Pillow does; None = libjpeg-turbo's bytes.

    Returns:
        The JPEG file's bytes (what ``cjpeg -baseline`` and Pillow write;
        ``cjpeg -progressive`` / ``-scans FILE`` and Pillow's
        ``progressive=True`` with those options).

    Raises:
        JPEGError: invalid arguments or an image JPEG cannot hold.
    """
    if not isinstance(array, np.ndarray):
        raise JPEGError(f"array must be a numpy array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise JPEGError(f"array must be uint8, got {array.dtype}")
    if layout not in ("HWC", "CHW"):
        raise JPEGError(f"layout must be 'HWC' or 'CHW', got {layout!r}")
    if array.ndim == 2:
        hwc = array[:, :, None]
    elif array.ndim == 3:
        hwc = array if layout == "HWC" else array.transpose(1, 2, 0)
    else:
        raise JPEGError(f"array must be [H, W] or 3-D ({layout}), got shape {array.shape}")
    height, width, channels = hwc.shape
    if channels not in (1, 3):
        raise JPEGError(f"array must have 1 or 3 channels ({layout}), got shape {array.shape}")
    return encode_rows(lambda y0, y1: hwc[y0:y1], (height, width), channels, quality,
                       subsampling=subsampling, optimize=optimize,
                       restart_interval=restart_interval, tables=tables, grayscale=grayscale,
                       progressive=progressive, scans=scans, restart_rows=restart_rows,
                       force_baseline=force_baseline, metadata=metadata)


def encode_jpeg(image: Tensor, quality: int = 75, *, subsampling: str = "4:2:0",
                optimize: bool = False, restart_interval: int = 0,
                tables: Tensor | str | os.PathLike[str] | None = None,
                trellis: bool = False, tune: str | None = None,
                progressive: bool | None = None, scans: ScansLike | None = None,
                restart_rows: int = 0, force_baseline: bool = True,
                metadata: Metadata | None = None, exif: bytes | None = None,
                icc_profile: bytes | None = None, xmp: bytes | str | None = None,
                comment: bytes | str | None = None,
                dpi: tuple[float, float] | None = None) -> bytes:
    """Encode an image to a JFIF file, byte-identical to libjpeg-turbo.

    Runs the pipeline's compiled stages band by band (see :func:`encode_array`,
    which this wraps without copying the image). With ``trellis`` or ``tune``
    the quantized values are chosen by :mod:`jpegtorch.optimize` instead (still
    a standard Huffman-coded file, baseline or progressive, with optimal
    Huffman tables; no longer libjpeg-turbo's bytes).

    Args:
        image: uint8 tensor ``[C, H, W]`` (C = 1 gray, 3 RGB), values 0..255,
            1 <= H, W <= 65535; any device (copied to the CPU).
        quality: 1..100 (libjpeg's scale; 50 uses the base tables as given).
        subsampling: chroma subsampling "4:4:4", "4:2:2", "4:2:0", "4:4:0" or
            "4:1:1" (ignored for gray images).
        optimize: optimal Huffman tables (libjpeg's / Pillow's ``optimize``).
        restart_interval: MCUs between restart markers, 0 = none (libjpeg's
            ``restart_interval``, Pillow's ``restart_marker_blocks``).
        tables: base quantization tables: None (Annex K), an integer tensor
            ``[2, 8, 8]`` (luma, chroma; natural order), the path of a cjpeg
            ``-qtables`` text file, or a preset name (see
            :mod:`jpegtorch.formats.qtables`). Scaled by quality as libjpeg
            does and clamped to 1..255 (baseline).
        trellis: trellis quantization: every block's values chosen for the
            least RGB squared error plus lambda times its bits
            (:func:`jpegtorch.optimize.tuning.encode_optimized`); implies
            optimal Huffman tables.
        tune: None, "psnr" or "ssim": the best file for that metric at the
            trade-off ``quality`` sets (per-image choices; default tables
            the ``tuned-psnr`` / ``tuned-ssim`` presets; implies ``trellis``).
        progressive: a progressive file (SOF2): libjpeg's default progression
            (``jpeg_simple_progression``) with optimal tables per scan. None
            (default) is False, except with ``tune``: then the encoder picks
            the least ``D + lambda * R`` of the baseline file, the default
            progression and a scan script of spectral bands searched for the
            image (:func:`jpegtorch.optimize.tuning.encode_optimized`); True
            with ``tune`` picks the better progressive one; False: baseline.
        scans, restart_rows, force_baseline: as for :func:`encode_array` (a
            scan script, restart markers every N MCU rows, 16-bit tables as
            plain cjpeg; the last two not with ``trellis`` or ``tune``).
        metadata: a :class:`jpegtorch.formats.metadata.Metadata` to carry
            (e.g. ``read_jpeg_metadata(original)``: EXIF, ICC, XMP, comments,
            density and other APPn segments, like ``jpegtran -copy all``).
        exif, icc_profile, xmp, comment, dpi: as Pillow's ``save`` options
            (``exif`` with or without its ``Exif\\0\\0`` header); they add to
            or replace the fields of ``metadata``.

    Returns:
        The JPEG file's bytes: what Pillow's ``Image.save(..., "JPEG",
        quality=, subsampling=, optimize=, restart_marker_blocks=,
        restart_marker_rows=, progressive=, exif=, icc_profile=, xmp=, comment=,
        dpi=)`` and (without metadata) ``cjpeg -baseline`` (``-progressive``,
        ``-scans FILE``, ``-restart N``) write.

    Raises:
        JPEGError: invalid arguments or an image JPEG cannot hold.
    """
    import torch

    if not isinstance(image, torch.Tensor):
        raise JPEGError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dtype != torch.uint8:
        raise JPEGError(f"image must be uint8, got {image.dtype}")
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise JPEGError(f"image must be [C, H, W] with C = 1 or 3, got {tuple(image.shape)}")
    from .metadata import merge

    extra = merge(metadata, exif=exif, icc_profile=icc_profile, xmp=xmp, comment=comment,
                  dpi=dpi)
    _check_metadata(extra)
    if trellis or tune is not None:
        from jpegtorch.optimize.tuning import encode_optimized

        _check_quality(quality)
        _check_subsampling(subsampling)
        _check_restart(restart_interval)
        if restart_rows or not force_baseline:
            raise JPEGError("restart_rows and force_baseline=False are not available with "
                            "trellis or tune (use restart_interval)")
        return _with_metadata(
            encode_optimized(image, int(quality), subsampling=subsampling, tables=tables,
                             tune=tune, restart_interval=restart_interval,
                             progressive=progressive, scans=scans), extra)
    return encode_array(image.detach().cpu().numpy(), quality, layout="CHW",
                        subsampling=subsampling, optimize=bool(optimize),
                        restart_interval=restart_interval, tables=tables,
                        progressive=bool(progressive), scans=scans, restart_rows=restart_rows,
                        force_baseline=bool(force_baseline), metadata=extra)


__all__: Sequence[str] = (
    "SUBSAMPLINGS", "base_tables", "encode_array", "encode_jpeg", "encode_rows",
    "resolve_base_tables", "write_coefficients",
)
