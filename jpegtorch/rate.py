"""A differentiable estimate of a JPEG file's size: the rate proxy.

:func:`estimate_bits` predicts ``len(write_coefficients(c, optimize=True)) * 8``
-- the whole baseline file, headers included -- from quantized coefficients,
and passes gradients to them (and, through the ``ste`` pipeline, to the
quantization tables and the quality).

The model follows the entropy coder symbol by symbol (ITU-T T.81 F.1.2):

* **Symbols, counted exactly.** Per image and Huffman table (luma / chroma,
  DC / AC) the proxy counts the symbols the coder emits: DC difference
  categories; AC ``(run, size)`` pairs, ZRL (16 zeros) and EOB, in zigzag
  order and in the scan's MCU order, dummy blocks included.
* **Code lengths from the counts.** An optimized Huffman code gives a symbol
  of probability ``p`` about ``-log2 p`` bits, but never less than one bit.
  The proxy uses the optimal real-valued lengths under that constraint:
  ``l = -log2 p``; when one symbol has ``p_max > 1/2`` it gets 1 bit and the
  others ``1 - log2(p / (1 - p_max))`` (they share the other half of the
  Kraft budget). libjpeg's reserved pseudo-symbol (count 1) is included.
  ``huffman="standard"`` uses the Annex K code lengths instead (files
  written with ``optimize=False``).
* **Bits.** ``sum(count * (l + HUFFMAN_OVERHEAD)) + extra bits`` per table
  (the magnitude bits: ``size`` per symbol), times ``1 + STUFFING`` for the
  0x00 bytes stuffed after 0xFF, plus half a byte of final padding, plus the
  markers: SOI, APP0 (APP14 for RGB), DQT, SOF0, DHT (17 + 1 byte per
  symbol in use), SOS, EOI.

``HUFFMAN_OVERHEAD`` and ``STUFFING`` are the two calibrated constants, fitted
by least squares to real files (see ``benchmarks/bench_tables.py
calibrate``). On Kodak (never used for fitting) the estimate is within about
±2% of the real size, over qualities 10..95 and random tables.

**Gradients.** Counts of integers have no useful derivative, so the
estimate is straight-through, like the ``ste`` pipeline: the forward value
above is exact for the given integer coefficients, and the backward pass is
the gradient of a per-coefficient linearisation of the same cost model,
``d bits / d |k|``:

* a coefficient of magnitude 1 (a DC difference of 1) costs its whole
  symbol plus one extra bit to keep, so its gradient is that cost: shrinking
  it to zero saves it (``symbol length + overhead + 1`` bits per unit);
* a larger coefficient costs ``log2 |k|`` extra bits plus the change of its
  symbol's length with the size category, so its gradient is
  ``(1 + delta) / (|k| ln 2)`` with ``delta = l(run, size + 1) - l(run, size)``
  from this image's own (smoothed) statistics.

Zero coefficients have zero gradient (as in the ``ste`` quantizer's
straight-through rounding). The symbol lengths are per image, so coefficients
in sparse, expensive contexts (long zero runs) weigh more.

**Progressive files** (``scans=``): the same counting per scan of a scan
script -- DC first and refinement scans, AC first scans with end-of-band runs,
AC refinement scans with correction bits -- each scan with its own optimal
tables, DHT and SOS (see :func:`estimate_rate`). Trellis-chosen values need
nothing new: the symbols are counted from whatever integers are given.

Nothing here imports the writer: the proxy is pure torch, batched over the
images of a :class:`~jpegtorch.coefficients.Coefficients`, on any device and
in float32 or float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .coefficients import Coefficients

#: Calibrated: mean excess of a length-limited Huffman code over the ideal
#: lengths above, in bits per symbol (fitted on crops of the training set).
HUFFMAN_OVERHEAD: float = 0.0465

#: Calibrated: fraction of entropy-coded bits added by 0xFF00 byte stuffing.
STUFFING: float = 0.00335

#: Calibrated: the Huffman excess per symbol of progressive files' per-scan tables.
PROGRESSIVE_OVERHEAD: float = 0.0465


@dataclass(frozen=True)
class Calibration:
    """The proxy's fitted constants (see ``benchmarks/bench_tables.py calibrate``).

    Attributes:
        huffman_overhead: bits per symbol a real (integer, length-limited)
            optimal Huffman code spends above the ideal lengths.
        stuffing: fraction of entropy-coded bits added by byte stuffing.
        progressive_overhead: the same excess as ``huffman_overhead`` for the
            per-scan tables of a progressive file (fewer symbols per table).
    """

    huffman_overhead: float = HUFFMAN_OVERHEAD
    stuffing: float = STUFFING
    progressive_overhead: float = PROGRESSIVE_OVERHEAD


DEFAULT_CALIBRATION = Calibration()

#: Expected padding of the last entropy-coded byte (uniform 0..7 bits).
PADDING_BITS: float = 3.5

HUFFMAN_MODES: tuple[str, ...] = ("optimal", "standard")

_ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34,
    27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44,
    51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip
_ZRL, _EOB = 0xF0, 0x00
_DC_SYMBOLS = 12  # categories 0..11 (8-bit data)
_AC_SYMBOLS = 256


@dataclass(frozen=True)
class RateEstimate:
    """The parts of an estimate, each ``[N]`` (bits, float).

    Attributes:
        total: the predicted file size in bits (``= data + headers``),
            differentiable (straight-through, see the module docstring).
        data: entropy-coded bits, padding and byte stuffing included.
        headers: marker-segment bits (SOI ... DHT, SOS, EOI).
        per_table: entropy-coded bits per Huffman table, ``[N, 4]``: DC luma,
            AC luma, DC chroma, AC chroma (before stuffing and padding); for a
            multi-scan file, summed over the scans by kind.
        per_scan: for a multi-scan file, ``[N, S]`` entropy-coded bits of each
            scan (before stuffing and padding); None for a baseline file.
    """

    total: Tensor
    data: Tensor
    headers: Tensor
    per_table: Tensor
    per_scan: Tensor | None = None


def estimate_bits(coefficients: Coefficients, *, huffman: str = "optimal",
                  calibration: Calibration = DEFAULT_CALIBRATION,
                  scans: object = None) -> Tensor:
    """The predicted size in bits of the JPEG file of each image.

    Args:
        coefficients: quantized coefficients (from :func:`jpegtorch.encode`,
            any mode, or read from a file): blocks ``[N, by, bx, 8, 8]`` per
            component, integer-valued (soft-mode values are rounded for the
            counts), float blocks may carry gradients.
        huffman: ``"optimal"`` for files written with optimized Huffman
            tables (``optimize=True``), ``"standard"`` for the Annex K tables.
        calibration: the fitted constants (the default is the shipped fit).
        scans: None for a baseline file (one interleaved scan); ``True`` for
            libjpeg's default progression (``progressive=True``); or a scan
            script (a sequence of :class:`~jpegtorch.formats.scans.Scan` or
            ``(components, ss, se, ah, al)`` tuples) for a progressive file
            with optimal tables per scan (see :func:`estimate_rate`).

    Returns:
        ``[N]`` estimated file sizes in bits (float; the blocks' dtype, or
        float64 for integer blocks), differentiable w.r.t. float blocks.
    """
    return estimate_rate(coefficients, huffman=huffman, calibration=calibration,
                         scans=scans).total


def estimate_bpp(coefficients: Coefficients, *, huffman: str = "optimal",
                 calibration: Calibration = DEFAULT_CALIBRATION,
                 scans: object = None) -> Tensor:
    """:func:`estimate_bits` divided by the pixel count: ``[N]`` bits per pixel."""
    height, width = coefficients.size
    bits = estimate_bits(coefficients, huffman=huffman, calibration=calibration, scans=scans)
    return bits / float(height * width)


def estimate_rate(coefficients: Coefficients, *, huffman: str = "optimal",
                  calibration: Calibration = DEFAULT_CALIBRATION,
                  scans: object = None) -> RateEstimate:
    """:func:`estimate_bits` with its parts (see :class:`RateEstimate`).

    With ``scans`` (a progressive file; ``huffman`` must be "optimal": libjpeg
    always optimizes progressive tables) every scan is counted as the
    progressive coder codes it (T.81 G.1.2): DC first scans as differences
    of ``dc >> Al`` per component (interleaved scans in MCU order with the
    dummy blocks, single-component scans over the component's own blocks),
    DC refinement scans one bit per block; AC first scans as run/size
    symbols of ``|v| >> Al`` in the band with ZRLs, the bands that end in
    zeros gathered into end-of-band runs (EOBRUN symbols ``n << 4`` plus
    ``n`` bits, broken by the next block with a nonzero value and at 0x7FFF);
    AC refinement scans as run/size-1 symbols of the newly nonzero values
    (runs counting only still-zero coefficients, ZRLs folded into the EOB
    after the last one), a sign bit each, a correction bit for every value
    already nonzero, and EOBRUNs (also cut when more than 937 correction bits
    wait, as libjpeg does; approximated by evenly split runs). Each scan has
    its own optimal tables (lengths from its counts as above, plus
    ``calibration.progressive_overhead``), its DHT and SOS segments and its
    padding; restart markers are not modelled. The gradient is the baseline
    model's (the same coefficients' marginal costs).
    """
    if scans is not None and scans is not False:
        if huffman != "optimal":
            raise ValueError("progressive files always have optimal Huffman tables")
        return _estimate_multiscan(coefficients, _resolve_scans(coefficients, scans),
                                   calibration)
    if huffman not in HUFFMAN_MODES:
        raise ValueError(f"huffman must be one of {HUFFMAN_MODES}, got {huffman!r}")
    first = coefficients.blocks[0]
    dtype = first.dtype if first.dtype.is_floating_point else torch.float64
    device = first.device
    n = coefficients.batch_size
    ncomp = coefficients.num_components
    overhead = calibration.huffman_overhead if huffman == "optimal" else 0.0
    stuffing = calibration.stuffing
    slots = _huffman_slots(coefficients)
    scans = [_scan_blocks(coefficients, c).to(dtype) for c in range(ncomp)]

    per_table = torch.zeros(n, 4, dtype=dtype, device=device)
    surrogate = torch.zeros(n, dtype=dtype, device=device)
    dht_bytes = torch.zeros(n, dtype=dtype, device=device)
    for slot in sorted(set(slots)):
        members = [scans[c] for c in range(ncomp) if slots[c] == slot]
        dc = torch.cat([_dc_differences(z[..., 0]) for z in members], dim=1)  # [N, M]
        ac = torch.cat([z[..., 1:] for z in members], dim=1)  # [N, M, 63]
        for is_dc, values in ((True, dc), (False, ac)):
            stats = _symbols(values, is_dc)
            lengths = _code_lengths(stats.counts, huffman, is_dc, slot)
            real = stats.counts[:, :-1]
            bits = (real * (lengths[:, :-1] + overhead)).sum(-1) + stats.extra_bits
            per_table[:, 2 * min(slot, 1) + (0 if is_dc else 1)] += bits
            used = (real > 0).sum(-1).to(dtype)
            dht_bytes += 21.0 + (used if huffman == "optimal" else (
                12.0 if is_dc else 162.0))
            surrogate = surrogate + _surrogate(values, stats, lengths, is_dc, overhead)

    data = per_table.sum(-1) * (1.0 + stuffing) + PADDING_BITS
    headers = 8.0 * (_fixed_header_bytes(coefficients) + dht_bytes)
    value = (data + headers).detach()
    total = value + (surrogate - surrogate.detach()) * (1.0 + stuffing)
    return RateEstimate(total=total, data=data.detach(), headers=headers.detach(),
                        per_table=per_table.detach())


# --------------------------------------------------------------------------- scan layout


def _huffman_slots(coefficients: Coefficients) -> tuple[int, ...]:
    """The Huffman table slot of each component, as libjpeg assigns them (and our
    writer): YCbCr 0 for luma and 1 for chroma; grey and RGB all 0."""
    if coefficients.color == "ycbcr":
        return tuple(0 if c == 0 else 1 for c in range(coefficients.num_components))
    return (0,) * coefficients.num_components


def _scan_blocks(coefficients: Coefficients, c: int) -> Tensor:
    """Component ``c``'s blocks in scan order and zigzag order: ``[N, M, 64]``.

    An interleaved scan (several components) visits MCU by MCU, and in each
    MCU the component's ``v x h`` blocks row by row; a single component is
    coded non-interleaved over its own ``ceil(size / 8)`` blocks.
    """
    blocks = coefficients.blocks[c]
    n = blocks.shape[0]
    zigzag = torch.tensor(_ZIGZAG, device=blocks.device)
    if coefficients.num_components == 1:
        rows, cols = coefficients.component_blocks(c)
        flat = blocks[:, :rows, :cols].reshape(n, rows * cols, 64)
    else:
        mcu_rows, mcu_cols = coefficients.mcu_grid
        h, v = coefficients.sampling[c]
        grid = blocks[:, : mcu_rows * v, : mcu_cols * h].reshape(n, mcu_rows, v, mcu_cols, h, 64)
        flat = grid.permute(0, 1, 3, 2, 4, 5).reshape(n, -1, 64)
    return flat[..., zigzag]


def _dc_differences(dc: Tensor) -> Tensor:
    """DC prediction differences of one component ``[N, M]`` (predictor starts at 0)."""
    return dc - torch.nn.functional.pad(dc[:, :-1], (1, 0))


# --------------------------------------------------------------------------- symbols


@dataclass(frozen=True)
class _Symbols:
    counts: Tensor  # [N, S + 1] symbol counts, last entry: libjpeg's pseudo-symbol (1)
    extra_bits: Tensor  # [N] magnitude bits
    magnitude: Tensor  # integer magnitudes |v|, values' shape
    size: Tensor  # size categories (bit lengths), values' shape
    symbol: Tensor  # symbol index of each value (AC: run/size of nonzeros), long
    zrl: Tensor  # AC: ZRL symbols emitted before each nonzero


def _bit_length(magnitude: Tensor) -> Tensor:
    """Bit length of non-negative integer-valued floats (0 -> 0), as the dtype."""
    return torch.frexp(magnitude).exponent.to(magnitude.dtype)


def _symbols(values: Tensor, is_dc: bool) -> _Symbols:
    """Count the Huffman symbols of DC differences ``[N, M]`` or AC ``[N, M, 63]``."""
    with torch.no_grad():
        integer = values.detach().round()
        magnitude = integer.abs()
        size = _bit_length(magnitude)
        n = values.shape[0]
        if is_dc:
            symbol = size.long().clamp(max=_DC_SYMBOLS - 1)
            counts = torch.zeros(n, _DC_SYMBOLS + 1, dtype=values.dtype, device=values.device)
            counts.scatter_add_(1, symbol.reshape(n, -1), torch.ones_like(size).reshape(n, -1))
            zrl = torch.zeros_like(size)
        else:
            nonzero = magnitude > 0
            pos = torch.arange(1, 64, device=values.device, dtype=values.dtype)
            last = torch.where(nonzero, pos, torch.zeros_like(pos)).cummax(dim=-1).values
            previous = torch.nn.functional.pad(last[..., :-1], (1, 0))
            run = torch.where(nonzero, pos - previous - 1.0, torch.zeros_like(pos))
            zrl = torch.floor(run / 16.0)
            symbol = ((run - 16.0 * zrl) * 16.0 + size.clamp(max=15)).long()
            weight = nonzero.to(values.dtype)
            counts = torch.zeros(n, _AC_SYMBOLS + 1, dtype=values.dtype, device=values.device)
            counts.scatter_add_(1, symbol.reshape(n, -1), weight.reshape(n, -1))
            counts[:, _ZRL] += zrl.reshape(n, -1).sum(-1)
            counts[:, _EOB] += (last[..., -1] < 63).to(values.dtype).sum(-1)
        counts[:, -1] = 1.0  # libjpeg reserves one code point (jpeg_gen_optimal_table)
        extra = size.reshape(n, -1).sum(-1)
    return _Symbols(counts=counts, extra_bits=extra, magnitude=magnitude, size=size,
                    symbol=symbol, zrl=zrl)


def _code_lengths(counts: Tensor, huffman: str, is_dc: bool, slot: int) -> Tensor:
    """Code length (bits) of every symbol, ``[N, S + 1]`` (see the module docstring)."""
    if huffman == "standard":
        return _standard_lengths(is_dc, min(slot, 1), counts)
    real = counts[:, :-1]
    total = counts.sum(-1, keepdim=True)
    p = counts / total
    p_max, arg_max = p[:, :-1].max(-1, keepdim=True)
    tiny = torch.finfo(counts.dtype).tiny
    plain = -torch.log2(p.clamp(min=tiny))
    rest = (1.0 - p_max).clamp(min=tiny)
    clamped = 1.0 - torch.log2((p / rest).clamp(min=tiny))
    lengths = torch.where(p_max > 0.5, clamped, plain)
    one = torch.ones_like(lengths)
    is_max = torch.zeros_like(lengths, dtype=torch.bool).scatter_(1, arg_max, True)
    lengths = torch.where(is_max & (p_max > 0.5), one, lengths)
    return torch.where(torch.nn.functional.pad(real > 0, (0, 1)), lengths,
                       torch.zeros_like(lengths))


def _standard_lengths(is_dc: bool, slot: int, like: Tensor) -> Tensor:
    """The Annex K code lengths per symbol (0 for symbols without a code)."""
    from .formats.huffman import STD_AC_TABLES, STD_DC_TABLES

    bits, values = (STD_DC_TABLES if is_dc else STD_AC_TABLES)[slot]
    lengths = [0.0] * like.shape[-1]
    k = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            lengths[values[k]] = float(length)
            k += 1
    return torch.tensor(lengths, dtype=like.dtype, device=like.device).expand_as(like)


def _surrogate(values: Tensor, stats: _Symbols, lengths: Tensor, is_dc: bool,
               overhead: float) -> Tensor:
    """``[N]``: a function of ``values`` whose gradient is the model's marginal cost."""
    if not values.requires_grad:
        return torch.zeros(values.shape[0], dtype=values.dtype, device=values.device)
    n = values.shape[0]
    with torch.no_grad():
        smooth = _smoothed_lengths(stats.counts)  # [N, S + 1]
        flat_symbol = stats.symbol.reshape(n, -1)
        own = torch.gather(lengths, 1, flat_symbol).reshape(stats.symbol.shape)
        if is_dc:
            zero = lengths[:, :1].reshape(n, *([1] * (values.dim() - 1)))
            keep = (own - zero).clamp(min=0.0) + 1.0  # a DC difference of 1 vs 0
            bigger = flat_symbol + 1
        else:
            zrl_cost = (lengths[:, _ZRL] + overhead).reshape(n, 1, 1)
            keep = own + overhead + 1.0 + stats.zrl * zrl_cost
            bigger = torch.where(stats.size.reshape(n, -1) < 15, flat_symbol + 1, flat_symbol)
        bigger = bigger.clamp(max=smooth.shape[1] - 2)
        delta = (torch.gather(smooth, 1, bigger) - torch.gather(smooth, 1, flat_symbol))
        slope = (1.0 + delta.reshape(stats.symbol.shape).clamp(-0.5, 4.0)) / math.log(2.0)
        unit = stats.magnitude == 1
        large = stats.magnitude >= 2
    magnitude = values.abs()
    unit_term = torch.where(unit, keep * magnitude, torch.zeros_like(magnitude))
    large_term = torch.where(large, slope * torch.log(magnitude.clamp(min=1.0)),
                             torch.zeros_like(magnitude))
    return (unit_term + large_term).reshape(n, -1).sum(-1)


def _smoothed_lengths(counts: Tensor) -> Tensor:
    """``-log2`` of add-1/2 smoothed symbol frequencies: lengths for unseen symbols too."""
    smoothed = counts + 0.5
    return torch.log2(smoothed.sum(-1, keepdim=True)) - torch.log2(smoothed)


# --------------------------------------------------------------------------- headers


def _fixed_header_bytes(coefficients: Coefficients) -> float:
    """Bytes of every marker segment except DHT: SOI, APP0/APP14, DQT, SOF, SOS, EOI."""
    ncomp = coefficients.num_components
    app = 16 if coefficients.color == "rgb" else 18
    qtables = coefficients.qtables.detach()
    dqt = 0
    seen: set[int] = set()
    for c, slot in enumerate(coefficients.qtable_slots):
        if slot in seen:
            continue
        seen.add(slot)
        wide = bool((qtables[:, c] > 255).any())
        dqt += 5 + (128 if wide else 64)
    sof = 10 + 3 * ncomp
    sos = 8 + 2 * ncomp
    return float(2 + app + dqt + sof + sos + 2)


# --------------------------------------------------------------------------- progressive

#: libjpeg's correction-bit buffer limit before an EOBRUN is sent early (jcphuff.c's
#: ``MAX_CORR_BITS - DCTSIZE2 + 1``), and the longest EOBRUN.
_MAX_PENDING_CORRECTIONS = 937
_EOBRUN_MAX = 0x7FFF


def _resolve_scans(coefficients: Coefficients, scans: object) -> list[tuple]:
    """Scan script -> list of ``(components, ss, se, ah, al)``."""
    if scans is True:
        from .formats.scans import simple_progression

        scans = simple_progression(coefficients.num_components, coefficients.color)
    out = []
    for scan in scans:  # type: ignore[attr-defined]
        if hasattr(scan, "components"):
            comps, ss, se, ah, al = scan.components, scan.ss, scan.se, scan.ah, scan.al
        else:
            comps, ss, se, ah, al = scan
        comps = (comps,) if isinstance(comps, int) else tuple(comps)
        if not (0 <= ss <= se <= 63) or any(not 0 <= c < coefficients.num_components
                                             for c in comps):
            raise ValueError(f"bad scan {scan!r}")
        if ss > 0 and len(comps) != 1:
            raise ValueError(f"an AC scan carries one component, got {scan!r}")
        out.append((comps, int(ss), int(se), int(ah), int(al)))
    if not out:
        raise ValueError("empty scan script")
    return out


def _blocks_in_order(coefficients: Coefficients, c: int, interleaved: bool) -> Tensor:
    """Component ``c``'s blocks as a scan visits them, zigzag order: ``[N, M, 64]``."""
    if interleaved and coefficients.num_components > 1:
        return _scan_blocks(coefficients, c)
    blocks = coefficients.blocks[c]
    n = blocks.shape[0]
    rows, cols = coefficients.component_blocks(c)
    zigzag = torch.tensor(_ZIGZAG, device=blocks.device)
    return blocks[:, :rows, :cols].reshape(n, rows * cols, 64)[..., zigzag]


def _shift(values: Tensor, al: int) -> Tensor:
    """``values >> al`` on the magnitude (the AC point transform)."""
    return torch.floor(values.abs() / float(1 << al)) if al else values.abs()


def _eobrun_counts(runs: Tensor, pieces: Tensor, counts: Tensor) -> Tensor:
    """Add the EOBRUN symbols of runs ``[N, K]`` (each split into ``pieces``) to
    ``counts`` ``[N, 257]``; returns their extra bits ``[N]``."""
    n = runs.shape[0]
    active = runs > 0
    pieces = torch.where(active, pieces.clamp(min=1.0), torch.zeros_like(pieces))
    full = torch.floor(runs / _EOBRUN_MAX)
    pieces = torch.maximum(pieces, full + (runs > full * _EOBRUN_MAX).to(runs.dtype))
    length = torch.where(active, runs / pieces.clamp(min=1.0), torch.ones_like(runs))
    size = torch.floor(torch.log2(length.clamp(min=1.0))).clamp(max=14)
    symbol = (size * 16).long()
    counts.scatter_add_(1, symbol.reshape(n, -1), (pieces * active).reshape(n, -1))
    return (size * pieces * active).reshape(n, -1).sum(-1)


def _segment_runs(breaks: Tensor, eob: Tensor, extra: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """End-of-band runs per segment: blocks ``[N, M]`` with ``breaks`` (a block that
    sends the pending run first) and ``eob`` (a block that joins the run).
    Returns ``(runs, pending)`` ``[N, M + 1]``: blocks per run and, when
    ``extra`` is given, their summed pending correction bits."""
    n, m = eob.shape
    segment = torch.cumsum(breaks.long(), dim=1)  # [N, M], 0 before the first break
    runs = torch.zeros(n, m + 1, dtype=eob.dtype, device=eob.device)
    runs.scatter_add_(1, segment, eob)
    pending = torch.zeros_like(runs)
    if extra is not None:
        pending.scatter_add_(1, segment, extra * eob)
    return runs, pending


def _ac_first_counts(z: Tensor, ss: int, se: int, al: int) -> tuple[Tensor, Tensor]:
    """Symbol counts ``[N, 257]`` and extra bits ``[N]`` of an AC first scan."""
    with torch.no_grad():
        band = _shift(z[..., ss : se + 1], al)  # [N, M, L]
        n, _, length = band.shape
        nonzero = band > 0
        pos = torch.arange(length, device=z.device, dtype=z.dtype)
        last = torch.where(nonzero, pos, torch.full_like(pos, -1.0)).cummax(dim=-1).values
        previous = torch.nn.functional.pad(last[..., :-1], (1, 0), value=-1.0)
        run = torch.where(nonzero, pos - previous - 1.0, torch.zeros_like(pos))
        zrl = torch.floor(run / 16.0)
        size = _bit_length(band)
        symbol = ((run - 16.0 * zrl) * 16.0 + size.clamp(max=15)).long()
        counts = torch.zeros(n, _AC_SYMBOLS + 1, dtype=z.dtype, device=z.device)
        counts.scatter_add_(1, symbol.reshape(n, -1), nonzero.to(z.dtype).reshape(n, -1))
        counts[:, _ZRL] += zrl.reshape(n, -1).sum(-1)
        has = nonzero.any(-1)
        eob = (last[..., -1] < length - 1).to(z.dtype)  # the band ends in zeros
        runs, _ = _segment_runs(has, eob)
        extra = size.reshape(n, -1).sum(-1) + _eobrun_counts(runs, torch.ones_like(runs),
                                                             counts)
    return counts, extra


def _ac_refine_counts(z: Tensor, ss: int, se: int, al: int) -> tuple[Tensor, Tensor]:
    """Symbol counts ``[N, 257]`` and extra bits ``[N]`` of an AC refinement scan."""
    with torch.no_grad():
        band = _shift(z[..., ss : se + 1], al)
        n, _, length = band.shape
        history = band > 1
        new = band == 1
        zero = band == 0
        pos = torch.arange(length, device=z.device, dtype=z.dtype)
        zeros_before = torch.cumsum(zero.to(z.dtype), dim=-1) - zero.to(z.dtype)
        last_new = torch.where(new, pos, torch.full_like(pos, -1.0)).cummax(dim=-1).values
        prev_new = torch.nn.functional.pad(last_new[..., :-1], (1, 0), value=-1.0)
        # zeros strictly between the previous newly nonzero value and this one
        zeros_at_prev = torch.gather(torch.nn.functional.pad(zeros_before, (1, 0)), -1,
                                     (prev_new + 1.0).long())
        run = torch.where(new, zeros_before - zeros_at_prev, torch.zeros_like(pos))
        zrl = torch.floor(run / 16.0)
        symbol = ((run - 16.0 * zrl) * 16.0 + 1.0).long()
        counts = torch.zeros(n, _AC_SYMBOLS + 1, dtype=z.dtype, device=z.device)
        counts.scatter_add_(1, symbol.reshape(n, -1), new.to(z.dtype).reshape(n, -1))
        counts[:, _ZRL] += zrl.reshape(n, -1).sum(-1)
        final = last_new[..., -1]  # [N, M]
        eob = (final < length - 1).to(z.dtype)
        after = (pos > final[..., None]) & history
        pending = after.to(z.dtype).sum(-1)
        runs, waiting = _segment_runs(new.any(-1), eob, pending)
        pieces = 1.0 + torch.floor(waiting / (_MAX_PENDING_CORRECTIONS + 1))
        extra = (new.to(z.dtype).sum((-1, -2)) + history.to(z.dtype).sum((-1, -2))
                 + _eobrun_counts(runs, pieces, counts))
    return counts, extra


def _estimate_multiscan(coefficients: Coefficients, scans: list[tuple],
                        calibration: Calibration) -> RateEstimate:
    first = coefficients.blocks[0]
    dtype = first.dtype if first.dtype.is_floating_point else torch.float64
    device = first.device
    n = coefficients.batch_size
    slots = _huffman_slots(coefficients)
    overhead = calibration.progressive_overhead
    orders: dict[tuple[int, bool], Tensor] = {}

    def blocks(c: int, interleaved: bool) -> Tensor:
        key = (c, interleaved)
        if key not in orders:
            orders[key] = _blocks_in_order(coefficients, c, interleaved).detach().round().to(dtype)
        return orders[key]

    per_scan = torch.zeros(n, len(scans), dtype=dtype, device=device)
    per_table = torch.zeros(n, 4, dtype=dtype, device=device)
    dht_bytes = torch.zeros(n, dtype=dtype, device=device)
    sos_bytes = 0.0
    for k, (comps, ss, se, ah, al) in enumerate(scans):
        sos_bytes += 8.0 + 2.0 * len(comps)
        interleaved = len(comps) > 1
        if ss == 0:  # DC scan (a sequential 0-63 entry is not a progressive scan)
            if se != 0:
                raise ValueError("a DC scan of a progressive file has Se = 0")
            for slot in sorted({slots[c] for c in comps}):
                members = [blocks(c, interleaved)[..., 0] for c in comps if slots[c] == slot]
                if ah:
                    bits = float(sum(m.shape[1] for m in members)) * torch.ones(
                        n, dtype=dtype, device=device)
                else:
                    values = torch.cat([_dc_differences(torch.floor(m / float(1 << al)))
                                        for m in members], dim=1)
                    stats = _symbols(values, True)
                    lengths = _code_lengths(stats.counts, "optimal", True, slot)
                    real = stats.counts[:, :-1]
                    bits = (real * (lengths[:, :-1] + overhead)).sum(-1) + stats.extra_bits
                    dht_bytes += 21.0 + (real > 0).sum(-1).to(dtype)
                per_scan[:, k] += bits
                per_table[:, 2 * min(slot, 1)] += bits
            continue
        c = comps[0]
        z = blocks(c, False)
        counts, extra = (_ac_refine_counts if ah else _ac_first_counts)(z, ss, se, al)
        counts[:, -1] = 1.0  # libjpeg's reserved code point
        lengths = _code_lengths(counts, "optimal", False, slots[c])
        real = counts[:, :-1]
        bits = (real * (lengths[:, :-1] + overhead)).sum(-1) + extra
        dht_bytes += 21.0 + (real > 0).sum(-1).to(dtype)
        per_scan[:, k] += bits
        per_table[:, 2 * min(slots[c], 1) + 1] += bits

    data = (per_scan.sum(-1) * (1.0 + calibration.stuffing)
            + PADDING_BITS * len(scans))
    ncomp = coefficients.num_components
    fixed = _fixed_header_bytes(coefficients) - (8 + 2 * ncomp)  # one SOS is in there
    headers = 8.0 * (fixed + sos_bytes + dht_bytes)
    value = (data + headers).detach()
    if any(b.requires_grad for b in coefficients.blocks):
        baseline = estimate_rate(coefficients, calibration=calibration).total
        total = value + (baseline - baseline.detach())
    else:
        total = value
    return RateEstimate(total=total, data=data.detach(), headers=headers.detach(),
                        per_table=per_table.detach(), per_scan=per_scan.detach())
