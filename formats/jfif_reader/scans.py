"""Entropy-coded data: scans decoded into coefficients, or straight into pixels.

Byte layout (ITU-T T.81 B.2.3, F.1.2, G.1.2, Annex D; libjpeg-turbo's
``jdhuff.c``, ``jdphuff.c``, ``jdarith.c``, ``jdcoefct.c``): the bytes after
an SOS segment are the scan's entropy-coded data: Huffman codes and raw bits
(or QM-coder bytes) most significant bit first, every ``FF`` data byte stuffed
as ``FF 00``, and an ``RSTn`` marker (``FF D0..D7``, n cycling) after every
restart interval of MCUs. The first other marker ends the scan. An
interleaved scan (Ns > 1) codes MCUs of ``Hi × Vi`` blocks per component over
the MCU grid; a non-interleaved scan codes each block of its component's own
grid (``ceil(width_c / 8) × ceil(height_c / 8)``) in raster order. A
progressive scan codes the zigzag band ``Ss..Se``, first at bit ``Al``
(``Ah = 0``) or refining bit ``Al`` (``Ah = Al + 1``).

Coefficients are libjpeg's ``JCOEF``: int16, 64 per block in natural order,
over the full MCU grid (dummy blocks included), 128 bytes per block.

How a file is decoded:

- multi-scan files (progressive, or sequential with non-interleaved scans)
  keep the coefficient array of the whole image, as libjpeg's
  ``jdcoefct.c`` does; the pixels come after the last scan (with libjpeg's
  block smoothing when the progressive data is incomplete);
- a single-scan file decoded to pixels is decoded band by band (a few iMCU
  rows of coefficients at a time) and each band goes straight to the pixel
  kernels (:class:`jpegtorch.kernels.decode.BandDecoder`): memory is the
  output plus a fixed working set.

Bounds on hostile input (all checked from the headers, before allocating):

- ``max_pixels`` (the frame) and ``max_memory`` (coefficients of multi-scan
  files + output pixels + working buffers);
- in strict mode a Huffman scan that codes at least one bit per block
  (sequential, DC first, DC refinement) must have the bytes for it: when the
  file cannot hold the first scan, the decode is refused before anything big
  is allocated (it would end in libjpeg's "premature end" warning anyway);
- work: every scan revisits its blocks, and arithmetic-coded (or EOB-run)
  data can make that nearly free in bytes, so the blocks visited by all scans
  together are limited to ``max(MAX_PASSES × blocks, MIN_WORK)`` (real
  progressive files visit each block 4-10 times), besides ``MAX_SCANS``; a
  Huffman scan that runs out of data stops there (the rest stays zero, as
  libjpeg leaves it) instead of walking its remaining MCUs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .markers import (
    ARITH_SOF,
    MAX_BLOCKS_IN_MCU,
    MAX_SCANS,
    PROGRESSIVE_SOF,
    Component,
    MarkerReader,
)

if TYPE_CHECKING:  # pragma: no cover
    from jpegtorch.coefficients import Coefficients


MAX_PASSES = 20
"""Scans may visit ``MAX_PASSES`` times the image's blocks in all (or ``MIN_WORK``
blocks, whichever is more). libjpeg's own progressive script visits a block 4
to 6 times, mozjpeg's and jpegtran's up to about 10; arithmetic-coded scans
can cost ~100 ns per block visit even without data, so this bounds the time a
small file can take (about 2 s at the default pixel limit)."""
MIN_WORK = 1 << 25

ALLOC_CHECK_BYTES = 16 << 20
"""Allocations above this are made only once the data is known to be able to
fill them (strict mode, Huffman; see the module docstring)."""

BAND_BLOCKS = 1 << 15
"""Coefficient blocks per band of a streamed single-scan decode (4 MiB)."""


class Reader(MarkerReader):
    """One decode of one file: markers, scans, then coefficients or pixels.

    Args (besides :class:`MarkerReader`'s):
        max_memory: bytes the decode may allocate (None: no limit).
        want: "coefficients" (keep the whole coefficient array) or "pixels"
            (decode to uint8 pixels; single-scan files are streamed).
        planar: pixels as ``[C, H, W]`` instead of ``[H, W, C]``.
    """

    def __init__(self, data: bytes, *, name: str | None, lenient: bool, max_pixels: int | None,
                 decode: bool, max_memory: int | None = None, want: str = "coefficients",
                 planar: bool = False, sink: Any = None) -> None:
        super().__init__(data, name=name, lenient=lenient, max_pixels=max_pixels, decode=decode)
        self.max_memory = max_memory
        self.want = want
        self.planar = planar
        self.sink = sink  # pixels go to sink.write(rows) band by band instead of one array
        self.coefs: np.ndarray | None = None
        self.latched: list[np.ndarray | None] = []
        self.coef_bits: np.ndarray | None = None
        self.prev_coef_bits: np.ndarray | None = None
        self.last_good_row = 0
        self.derived: dict[Any, Any] = {}
        self.streamed = False  # single-scan file decoded band by band into pixels
        self.band_rows = 0
        self.band: Any = None  # the BandDecoder of a streamed decode
        self.color_space = ""
        self.work = 0
        self.work_limit = 0
        self.total_blocks = 0

    # -- set-up ------------------------------------------------------------------

    def start_decoding(self, progressive: bool) -> None:
        """libjpeg's initial_setup and buffer allocation, after the budget checks."""
        pixels = self.want == "pixels"
        self.color_space = self.color()
        if pixels:
            self.check_pixels_supported()
        total = 0
        for c in self.comps:
            c.offset = total * 64  # in coefficients, into the whole-image array
            total += c.by * c.bx
        self.work_limit = max(MAX_PASSES * total, MIN_WORK)
        self.total_blocks = total
        self.streamed = pixels and not self.multiple_scans
        blocks_per_row = sum(c.v * c.bx for c in self.comps)  # per iMCU row
        if self.streamed:
            self.band_rows = max(1, min(self.mcu_rows, BAND_BLOCKS // blocks_per_row))
            coef_blocks = self.band_rows * blocks_per_row
        else:
            coef_blocks = total
        need = coef_blocks * 128
        if pixels:
            from jpegtorch.kernels.decode import BandDecoder, geometry

            geo = geometry([(c.h, c.v) for c in self.comps], (self.height, self.width))
            if self.sink is None:
                need += self.height * self.width * len(self.comps)
            need += BandDecoder.working_bytes(geo, self.output_band())
            if progressive:
                need += total * 8  # block smoothing keeps the DC values
        if self.max_memory is not None and need > self.max_memory:
            raise self.error(f"decoding this {self.width}x{self.height} image needs about "
                             f"{_mib(need)} of memory, more than the limit of "
                             f"{_mib(self.max_memory)} (max_memory)")
        self.coefs = np.zeros(coef_blocks * 64, dtype=np.int16)
        if pixels and self.sink is not None:
            self.sink.begin(self.height, self.width, len(self.comps))
        self.latched = [None] * len(self.comps)
        nc = len(self.comps)
        self.coef_bits = np.full((nc, 64), -1, dtype=np.int64)
        self.prev_coef_bits = np.zeros((nc, 64), dtype=np.int64)
        if self.sof in (0xC0, 0xC1):  # Motion-JPEG: standard tables where none were defined
            from ..huffman import STD_AC_TABLES, STD_DC_TABLES

            for slot in (0, 1):
                if self.dc_tables[slot] is None:
                    self.dc_tables[slot] = STD_DC_TABLES[slot]
                if self.ac_tables[slot] is None:
                    self.ac_tables[slot] = STD_AC_TABLES[slot]

    def output_band(self) -> int:
        """iMCU rows per call of the band decoder that feeds a sink (0: whole image)."""
        if self.sink is None:
            return 0
        return self.band_rows if self.streamed else 1

    def check_pixels_supported(self) -> None:
        """Refuse what the pixel stages cannot do (fractional sampling ratios)."""
        hmax = max(c.h for c in self.comps)
        vmax = max(c.v for c in self.comps)
        if any(hmax % c.h or vmax % c.v for c in self.comps):
            raise self.error(f"fractional sampling ratios are not supported "
                             f"({','.join(f'{k.h}x{k.v}' for k in self.comps)}; "
                             "libjpeg-turbo refuses them too)")

    def check_data(self, pos: int, kind: int, blocks: int) -> None:
        """Refuse, before a big allocation, a strict Huffman decode the data cannot fill."""
        from .. import huffman_decode as hd

        if (self.lenient or self.sof in ARITH_SOF
                or kind not in (hd.SEQUENTIAL, hd.DC_FIRST, hd.DC_REFINE)):
            return
        available = self.n - pos
        if 8 * available < blocks:
            raise self.error(f"corrupt JPEG data: premature end of data segment ({available} "
                             f"bytes of entropy-coded data cannot hold the {blocks} blocks of "
                             f"a {self.width}x{self.height} image)")

    def planned_work(self, pos: int, first: int) -> int:
        """Blocks visited by the first scan (``first``) and by every later one,
        found by walking the SOS headers after ``pos`` without decoding (a
        malformed file may end the walk early; the running count still holds)."""
        data, n = self.data, self.n
        total = first
        scans = 1
        by_id = {c.cid: c for c in self.comps}
        while scans <= MAX_SCANS:
            pos = self.skip_entropy(pos)
            if pos + 4 > n:
                break
            marker = data[pos + 1]
            if marker == 0xD9:
                break
            if 0xD0 <= marker <= 0xD8 or marker == 0x01:
                pos += 2
                continue
            length = (data[pos + 2] << 8) | data[pos + 3]
            if marker == 0xDA and length >= 3:
                if pos + 4 >= n:
                    break
                ns = data[pos + 4]
                comps = [by_id.get(data[pos + 5 + 2 * i]) for i in range(ns)
                         if pos + 5 + 2 * i < n]
                comps = [c for c in comps if c is not None]
                if len(comps) == 1:
                    total += comps[0].wib * comps[0].hib
                elif comps:
                    total += self.mcu_rows * self.mcu_cols * sum(c.h * c.v for c in comps)
                scans += 1
            pos += 2 + max(length, 2)
        return total

    def derive(self, is_dc: bool, slot: int) -> Any:
        from ..huffman_decode import HuffmanTableError, derive_table

        table = (self.dc_tables if is_dc else self.ac_tables)[slot] if slot < 4 else None
        if table is None:
            raise self.error(f"Huffman table 0x{slot:02x} was not defined")
        key = (is_dc, table)
        if key not in self.derived:
            try:
                self.derived[key] = derive_table(table[0], table[1], is_dc=is_dc)
            except HuffmanTableError as exc:
                raise self.error(str(exc)) from None
        return self.derived[key]

    # -- one scan ----------------------------------------------------------------

    def decode_scan(self, pos: int, comps: list[Component], dc_no: list[int], ac_no: list[int],
                    ss: int, se: int, ah: int, al: int, progressive: bool) -> tuple[int, int]:
        from .. import huffman_decode as hd

        assert self.coefs is not None and self.coef_bits is not None
        assert self.prev_coef_bits is not None
        ns = len(comps)
        # per_scan_setup
        if ns == 1:
            c = comps[0]
            mcus_per_row, mcu_rows, imcu_div = c.wib, c.hib, c.v
            hs, vs = [1], [1]
        else:
            blocks = sum(c.h * c.v for c in comps)
            if blocks > MAX_BLOCKS_IN_MCU:
                raise self.error(f"sampling factors too large for an interleaved scan "
                                 f"({blocks} blocks per MCU, at most {MAX_BLOCKS_IN_MCU})")
            mcus_per_row, mcu_rows, imcu_div = self.mcu_cols, self.mcu_rows, 1
            hs, vs = [c.h for c in comps], [c.v for c in comps]
        scan_blocks = mcus_per_row * mcu_rows * sum(h * v for h, v in zip(hs, vs, strict=True))
        if not self.scans and self.multiple_scans:
            # all the file's scans, from their headers: refuse now rather than
            # after decoding the first MAX_PASSES of them
            planned = self.planned_work(pos, scan_blocks)
            if planned > self.work_limit:
                raise self.error(f"too many scans: they would visit {planned} blocks of an "
                                 f"image of {self.total_blocks} (at most {self.work_limit}: "
                                 f"{MAX_PASSES} passes; a corrupt or malicious file)")
        self.work += scan_blocks
        if self.work > self.work_limit:
            raise self.error(f"too many scans: they would visit {self.work} blocks of an image "
                             f"of {self.total_blocks} (at most {self.work_limit}: "
                             f"{MAX_PASSES} passes; a corrupt or malicious file)")
        # latch_quant_tables
        for c in comps:
            if self.latched[c.index] is None:
                if c.tq >= 4 or self.qt[c.tq] is None:
                    raise self.error(f"quantization table 0x{c.tq:02x} was not defined")
                self.latched[c.index] = self.qt[c.tq].copy()
        # entropy decoder start_pass
        scan_number = len(self.scans) + 1
        if progressive:
            is_dc = ss == 0
            bad = (se != 0) if is_dc else (ss > se or se >= 64 or ns != 1)
            if (ah != 0 and al != ah - 1) or al > 13:
                bad = True
            if bad:
                raise self.error(f"invalid progressive scan parameters Ss={ss} Se={se} "
                                 f"Ah={ah} Al={al}")
            for c in comps:
                bits, prev = self.coef_bits[c.index], self.prev_coef_bits[c.index]
                if not is_dc and bits[0] < 0:
                    self.corrupt(f"inconsistent progression sequence for component {c.index} "
                                 "coefficient 0 (AC scan before any DC scan)")
                lo, hi = min(ss, 1), max(se, 9)
                prev[lo : hi + 1] = bits[lo : hi + 1] if scan_number > 1 else 0
                for k in range(ss, se + 1):
                    expected = max(int(bits[k]), 0)
                    if ah != expected:
                        self.corrupt(f"inconsistent progression sequence for component "
                                     f"{c.index} coefficient {k}")
                        break
                bits[ss : se + 1] = al
            if is_dc:
                kind = hd.DC_FIRST if ah == 0 else hd.DC_REFINE
            else:
                kind = hd.AC_FIRST if ah == 0 else hd.AC_REFINE
            need_dc = is_dc and ah == 0
            need_ac = not is_dc
        else:
            if ss != 0 or se != 63 or ah != 0 or al != 0:
                self.warnings.append("invalid SOS parameters for sequential JPEG (ignored)")
            kind = hd.SEQUENTIAL
            need_dc = need_ac = True
        if scan_number == 1 and self.allocation() > ALLOC_CHECK_BYTES:
            self.check_data(pos, kind, scan_blocks)
        i64 = np.int64
        buf = np.frombuffer(self.data, dtype=np.uint8)
        offsets = [c.offset for c in comps]
        if self.streamed:
            offsets = [0] * ns
            for i in range(1, ns):
                prev_c = comps[i - 1]
                offsets[i] = offsets[i - 1] + self.band_rows * prev_c.v * prev_c.bx * 64
        geometry = (
            np.array(offsets, dtype=np.int64), np.array([c.bx for c in comps], dtype=np.int64),
            np.array(hs, dtype=np.int64), np.array(vs, dtype=np.int64),
        )
        arithmetic = self.sof in ARITH_SOF
        if arithmetic:
            for i in range(ns):
                for needed, number in ((need_dc, dc_no[i]), (need_ac, ac_no[i])):
                    if needed and number >= 16:
                        raise self.error(f"arithmetic conditioning table 0x{number:02x} "
                                         "was not defined")
            from ..arith_decode import ArithScanState, decode_rows_arith

            state = ArithScanState(pos, self.restart_interval, self.discarded,
                                   self.last_good_row)
            stats = state.stats
            tables = (np.array(dc_no, dtype=np.int64), np.array(ac_no, dtype=np.int64),
                      np.array(self.arith_dc_l, dtype=np.int64),
                      np.array(self.arith_dc_u, dtype=np.int64),
                      np.array(self.arith_ac_k, dtype=np.int64), hd.NATURAL_ORDER_EXT)

            def run(row0: int, row1: int, origin: int) -> None:
                decode_rows_arith(buf, kind, ss, se, ah, al, self.restart_interval,
                                  mcus_per_row, row0, row1, origin, imcu_div, *geometry,
                                  *tables, self.coefs, not self.lenient, state)
        else:
            stats, kstate = hd.new_scan_state(pos, self.restart_interval, self.discarded,
                                              self.last_good_row)
            tables = self.huffman_tables(ns, dc_no, ac_no, need_dc, need_ac)
            if kind == hd.SEQUENTIAL:
                def run(row0: int, row1: int, origin: int) -> None:
                    hd.decode_sequential_rows(
                        buf, kind, ss, se, ah, al, self.restart_interval, mcus_per_row, row0,
                        row1, origin, imcu_div, *geometry,
                        np.arange(ns, dtype=np.int64), np.arange(ns, 2 * ns, dtype=np.int64),
                        *tables, hd.NATURAL_ORDER_EXT, self.coefs, not self.lenient, stats,
                        kstate)
            else:
                def run(row0: int, row1: int, origin: int) -> None:
                    assert row0 == 0 and origin == 0
                    hd.decode_scan(
                        buf, i64(pos), i64(kind), i64(ss), i64(se), i64(ah), i64(al),
                        i64(self.restart_interval), i64(mcus_per_row), i64(row1),
                        i64(imcu_div), *geometry,
                        np.arange(ns, dtype=np.int64), np.arange(ns, 2 * ns, dtype=np.int64),
                        *tables, hd.NATURAL_ORDER_EXT, self.coefs, not self.lenient, stats)
        if self.streamed:
            self.stream_scan(run, stats, comps, mcu_rows, imcu_div, hd)
        else:
            run(0, mcu_rows, 0)
        return self.scan_outcome(hd, stats, arithmetic)

    def huffman_tables(self, ns: int, dc_no: list[int], ac_no: list[int], need_dc: bool,
                       need_ac: bool) -> tuple[np.ndarray, ...]:
        """The scan's derived tables: index 0..ns-1 DC, ns..2ns-1 AC."""
        tabs = []
        for i in range(ns):
            tabs.append(self.derive(True, dc_no[i]) if need_dc else None)
        for i in range(ns):
            tabs.append(self.derive(False, ac_no[i]) if need_ac else None)
        present = [t for t in tabs if t is not None]
        empty = (np.zeros(512, np.int32), np.full(18, -1, np.int32), np.zeros(18, np.int32),
                 np.zeros(256, np.int32))
        tabs = [t if t is not None else (present[0] if present else empty) for t in tabs]
        return tuple(np.stack([t[i] for t in tabs]) for i in range(4))

    def stream_scan(self, run: Any, stats: np.ndarray, comps: list[Component], mcu_rows: int,
                    imcu_div: int, hd: Any) -> None:
        """Decode a single-scan file band by band, each band straight into pixels.

        ``mcu_rows`` are the scan's; ``imcu_div`` of them make an iMCU row (a
        grey image's non-interleaved scan codes block rows).
        """
        from jpegtorch.kernels.decode import BandDecoder, geometry

        assert self.coefs is not None
        geo = geometry([(c.h, c.v) for c in comps], (self.height, self.width))
        self.band = BandDecoder(geo, self.tables(), self.color_space, planar=self.planar,
                                band=self.output_band())
        views = []
        start = 0
        for c in comps:
            size = self.band_rows * c.v * c.bx * 64
            views.append(self.coefs[start : start + size])
            start += size
        warn = (hd.ST_HIT_MARKER, hd.ST_BAD_CODE, hd.ST_EXTRANEOUS, hd.ST_RESYNC, hd.ST_EOF)
        for k0 in range(0, self.mcu_rows, self.band_rows):
            k1 = min(k0 + self.band_rows, self.mcu_rows)
            self.coefs.fill(0)
            run(k0 * imcu_div, min(k1 * imcu_div, mcu_rows), k0 * imcu_div)
            if not self.lenient and any(stats[i] for i in warn):
                return  # scan_outcome raises
            y0, y1 = self.band.rows(tuple(views), k0, k1 - k0)
            if self.sink is not None and y1 > y0:
                self.sink.write(self.band.out[: y1 - y0])

    def scan_outcome(self, hd: Any, stats: np.ndarray, arithmetic: bool) -> tuple[int, int]:
        """Warnings and errors of a decoded scan; the position and pending marker after it."""
        self.discarded = int(stats[hd.ST_DISCARDED])
        self.last_good_row = int(stats[hd.ST_LAST_GOOD_ROW])
        if stats[hd.ST_DC_OVERFLOW]:
            raise self.error("corrupt JPEG data: DC coefficient out of range")
        if stats[hd.ST_EOF]:
            self.corrupt("premature end of JPEG file (truncated in the entropy-coded data)")
        if stats[hd.ST_EXTRANEOUS]:
            self.corrupt(f"{int(stats[hd.ST_EXTRANEOUS_BYTES])} extraneous bytes before marker "
                         f"0x{int(stats[hd.ST_EXTRANEOUS_MARKER]):02x}")
        if stats[hd.ST_RESYNC]:
            self.corrupt(f"found marker 0x{int(stats[hd.ST_RESYNC_MARKER]):02x} instead of "
                         "the expected RST marker")
        if stats[hd.ST_BAD_CODE]:
            self.corrupt("bad arithmetic code" if arithmetic else "bad Huffman code")
        if stats[hd.ST_HIT_MARKER]:
            self.corrupt("premature end of data segment (entropy-coded data ends early)")
        marker = int(stats[hd.ST_MARKER])
        new_pos = int(stats[hd.ST_POS])
        if stats[hd.ST_EOF]:
            return self.n, 0xD9
        return new_pos, marker

    def allocation(self) -> int:
        """Bytes of the big allocations of this decode (coefficients + output)."""
        out = self.height * self.width * len(self.comps) if self.want == "pixels" else 0
        return (0 if self.coefs is None else self.coefs.nbytes) + out

    # -- results -------------------------------------------------------------------

    def tables(self) -> np.ndarray:
        """``[C, 64]`` int32: the table each component's first scan latched (natural order)."""
        out = []
        for c in self.comps:
            table = self.latched[c.index] if self.latched else None
            if table is None:  # never in a scan: its coefficients are all zero
                slot_table = self.qt[c.tq] if c.tq < 4 else None
                table = slot_table if slot_table is not None else np.ones(64, np.int32)
            out.append(table)
        return np.stack(out).astype(np.int32)

    def component_blocks(self) -> list[np.ndarray]:
        """Per component, ``[by, bx, 64]`` int16 views of the coefficient array."""
        assert self.coefs is not None and not self.streamed
        return [self.coefs[c.offset : c.offset + c.by * c.bx * 64].reshape(c.by, c.bx, 64)
                for c in self.comps]

    def coefficients(self) -> Coefficients:
        """The coefficient array as :class:`Coefficients` (int16 blocks, shared memory)."""
        import torch

        from jpegtorch.coefficients import Coefficients

        blocks = tuple(torch.from_numpy(b).view(1, b.shape[0], b.shape[1], 8, 8)
                       for b in self.component_blocks())
        qt = torch.from_numpy(self.tables()).view(1, len(self.comps), 8, 8)
        return Coefficients(
            blocks=blocks, qtables=qt, sampling=tuple((c.h, c.v) for c in self.comps),
            size=(self.height, self.width), color=self.color_space or self.color(),
            component_ids=tuple(c.cid for c in self.comps),
            qtable_slots=tuple(c.tq if c.tq < 4 else 0 for c in self.comps),
        )

    def smooth(self) -> None:
        """libjpeg's block smoothing of incomplete progressive data, in place."""
        if (self.sof not in PROGRESSIVE_SOF or self.coef_bits is None
                or self.prev_coef_bits is None):
            return
        from ..block_smoothing import SAVED_COEFS, smooth_component, smoothing_useful

        latched = [t is not None for t in self.latched]
        qt = self.tables()
        if not smoothing_useful(self.coef_bits, qt, latched):
            return
        multi_scan = len(self.scans) > 1
        vmax = max(c.v for c in self.comps)
        total_imcu_rows = -(-self.height // (8 * vmax))
        for c, blocks in zip(self.comps, self.component_blocks(), strict=True):
            bits = self.coef_bits[c.index, :SAVED_COEFS]
            prev = (self.prev_coef_bits[c.index, :SAVED_COEFS] if multi_scan
                    else np.full(SAVED_COEFS, -1, dtype=np.int64))
            prev = prev.copy()
            prev[0] = bits[0]
            smooth_component(blocks, qt[c.index], bits, prev, self.last_good_row, c.v,
                             total_imcu_rows, c.hib, c.wib, inplace=True)

    def pixels(self) -> np.ndarray | None:
        """The decoded image: uint8 ``[H, W, C]`` (``[C, H, W]`` if planar), or
        None when the pixels went to the sink."""
        if self.streamed:
            assert self.band is not None and self.band.done
            return None if self.sink is not None else self.band.out
        from jpegtorch.kernels.decode import BandDecoder, decode_coefficients, geometry

        self.smooth()
        if self.sink is not None:
            sampling = [(c.h, c.v) for c in self.comps]
            decoder = BandDecoder(geometry(sampling, (self.height, self.width)),
                                  self.tables(), self.color_space, band=1)
            blocks = [b.reshape(-1) for b in self.component_blocks()]
            for k in range(self.mcu_rows):
                views = tuple(b[k * c.v * c.bx * 64 :]
                              for b, c in zip(blocks, self.comps, strict=True))
                y0, y1 = decoder.rows(views, k, 1)
                if y1 > y0:
                    self.sink.write(decoder.out[: y1 - y0])
            return None
        return decode_coefficients(self.component_blocks(), self.tables(),
                                   tuple((c.h, c.v) for c in self.comps),
                                   (self.height, self.width), self.color_space,
                                   planar=self.planar)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"
