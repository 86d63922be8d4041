"""Scan-script search: spectral bands with their own Huffman tables.

A baseline file codes all AC coefficients of luma with one Huffman table and
those of both chroma components with another (baseline allows two). A
progressive file (SOF2) may instead cut each component's spectrum into bands,
one scan per band, and libjpeg builds optimal tables per scan: low and high
frequencies, Cb and Cr, each get a code fitted to their own statistics, and a
band that is all zero in a run of blocks costs one end-of-band-run symbol
(EOBRUN, T.81 G.1.2.2) for the whole run instead of an EOB per block. For
trellis-coded coefficients (mostly 0 and ±1) successive approximation rarely
pays (measured on training photos: the sequential file is smaller than
libjpeg's default progression in most cases, while single-bit spectral bands
win), so the search here is over spectral selection with ``Al = 0``:

* a band's cost is exact: :func:`jpegtorch.optimize.trellis.band_stats`
  counts its symbols (run/size, ZRL and EOBRUN symbols, as the progressive
  coder emits them), the optimal table for those counts
  (:func:`jpegtorch.formats.huffman.optimal_table`) gives the code lengths,
  and the scan's DHT and SOS segments and padding are added;
* luma tries one band, two bands (split after any zigzag index 1..20, 24 or
  32) and three bands; each chroma component one band or two;
* the DC is one interleaved scan at full precision (the same symbols as in
  the baseline file, with the same two tables).

:func:`choose_bands` returns the best script and its predicted size next to
the baseline file's; :func:`band_script` turns bands into a scan script for
the writer (``write_coefficients(..., scans=script)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats.huffman import code_table, optimal_table
from . import trellis

ScanTuple = tuple[tuple[int, ...], int, int, int, int]
Band = tuple[int, int]

#: Luma band structures tried.
LUMA_BANDS: tuple[tuple[Band, ...], ...] = (
    ((1, 63),),
    *(((1, k), (k + 1, 63)) for k in (*range(1, 21), 24, 32)),
    *(((1, a), (a + 1, b), (b + 1, 63)) for a in (1, 2, 3, 5) for b in (5, 8, 12, 16, 20, 27)
      if a < b),
)
#: Chroma band structures tried (per component).
CHROMA_BANDS: tuple[tuple[Band, ...], ...] = (
    ((1, 63),), *(((1, k), (k + 1, 63)) for k in (1, 2, 3, 5, 8, 12)))

#: Bits of a scan's SOS segment with one component (2 + 2 + 1 + 2 + 3 bytes)
#: plus the expected padding of its last byte.
_SOS_BITS = 8 * 10 + 3.5


@dataclass(frozen=True)
class BandCost:
    """A band's predicted cost and the code its scan would use.

    Attributes:
        bits: entropy-coded bits + DHT + SOS + padding.
        lengths: ``[256]`` code lengths of the band's optimal table (symbols
            absent from the table get the longest length plus one).
        eob_bits: bits spent on end-of-band runs per block that joined one.
    """

    bits: float
    lengths: np.ndarray
    eob_bits: float


def band_cost(blocks: np.ndarray, ss: int, se: int, restart: int = 0) -> BandCost:
    """The cost of coding ``blocks`` ``[B, 64]`` (raster order, natural order
    within blocks) in one progressive AC scan over ``ss..se`` with ``Al = 0``."""
    counts = np.zeros(257, dtype=np.int64)
    extra, eob_blocks = trellis.band_stats(blocks, ss, se, restart, trellis._ZIGZAG, counts)
    table = optimal_table(counts)
    _, sizes = code_table(table, is_dc=False)
    used = counts[:256] > 0
    coded = float(np.dot(counts[:256][used], sizes[used])) + float(extra)
    dht = 8.0 * (21 + int(used.sum()))
    eob_symbol_bits = float(sum(counts[n << 4] * (sizes[n << 4] + n) for n in range(15)))
    lengths = sizes.astype(np.float64)
    lengths[sizes == 0] = float(sizes.max()) + 1.0
    eob = eob_symbol_bits / eob_blocks if eob_blocks else float(lengths[0])
    return BandCost(bits=coded + dht + _SOS_BITS, lengths=lengths, eob_bits=eob)


@dataclass
class BandChoice:
    """The chosen bands per component and the predicted sizes (bits)."""

    bands: list[tuple[Band, ...]]
    progressive_bits: float
    sequential_bits: float
    costs: dict[tuple[int, Band], BandCost]

    @property
    def progressive(self) -> bool:
        return self.progressive_bits < self.sequential_bits


def choose_bands(blocks: list[np.ndarray], slots: tuple[int, ...], *,
                 restart: int = 0) -> BandChoice:
    """The cheapest spectral bands of each component, against the baseline file.

    Args:
        blocks: per component, its own blocks ``[B, 64]`` in raster order
            (natural order within blocks).
        slots: the baseline file's AC table slot per component (components
            sharing a slot share one table there).
        restart: blocks between restart markers in the single-component scans
            (0: none). (A restart interval counts MCUs; for the AC scans of a
            progressive file an MCU is one block.)

    Returns:
        A :class:`BandChoice`; the DC scan is not counted (it costs the same
        in both files).
    """
    costs: dict[tuple[int, Band], BandCost] = {}

    def cost(c: int, band: Band) -> BandCost:
        key = (c, band)
        if key not in costs:
            costs[key] = band_cost(blocks[c], band[0], band[1], restart)
        return costs[key]

    chosen = []
    total = 0.0
    for c in range(len(blocks)):
        options = LUMA_BANDS if c == 0 else CHROMA_BANDS
        best = min(options, key=lambda bands, c=c: sum(cost(c, b).bits for b in bands))
        chosen.append(best)
        total += sum(cost(c, b).bits for b in best)
    # the baseline file: one AC table per slot, EOB per block, one SOS for all
    sequential = 0.0
    for slot in sorted(set(slots)):
        counts = np.zeros(257, dtype=np.int64)
        extra = 0
        for c in range(len(blocks)):
            if slots[c] == slot:
                extra += _sequential_ac(blocks[c], counts)
        table = optimal_table(counts)
        _, sizes = code_table(table, is_dc=False)
        used = counts[:256] > 0
        sequential += float(np.dot(counts[:256][used], sizes[used])) + extra
        sequential += 8.0 * (21 + int(used.sum()))
    return BandChoice(bands=chosen, progressive_bits=total, sequential_bits=sequential,
                      costs=costs)


def _sequential_ac(blocks: np.ndarray, counts: np.ndarray) -> int:
    dc_counts = np.zeros(257, dtype=np.int64)
    order = np.arange(blocks.shape[0], dtype=np.int64)
    reset = np.zeros(blocks.shape[0], dtype=np.bool_)
    reset[0] = True
    extra = trellis.gather_stats(blocks, order, reset, trellis._ZIGZAG, dc_counts, counts)
    dc_extra = int(sum(n * dc_counts[n] for n in range(16)))
    return int(extra) - dc_extra


def band_script(bands: list[tuple[Band, ...]]) -> list[ScanTuple]:
    """The scan script: one interleaved DC scan, then each component's bands."""
    ncomp = len(bands)
    script: list[ScanTuple] = [(tuple(range(ncomp)), 0, 0, 0, 0)]
    for c, component_bands in enumerate(bands):
        script.extend(((c,), ss, se, 0, 0) for ss, se in component_bands)
    return script
