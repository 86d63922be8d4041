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
``optimize`` and encoding). Nonzero AC coefficients are visited through a
64-bit mask (lowest set bit first) rather than by a branch per coefficient.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from jpegtorch.errors import JPEGError

from .huffman import STD_AC_TABLES, STD_DC_TABLES, HuffmanTable, code_table, optimal_table
from .zigzag import ZIGZAG

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

    from jpegtorch.coefficients import Coefficients

    from .metadata import Metadata

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
MAX_BLOCKS_IN_MCU = 10  # libjpeg's C_MAX_BLOCKS_IN_MCU (T.81 B.2.3)

_ZIGZAG = np.array(ZIGZAG, dtype=np.int64)

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
def _put(out, pos, acc, nacc, code, size):  # pragma: no cover - compiled
    """Append ``size`` bits of ``code``; emit 32 bits (with 0xFF stuffing) when full."""
    acc = (acc << size) | code
    nacc += size
    if nacc >= 32:
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
def _scan(coef, offsets, row_stride, hs, vs, dc_tab, ac_tab, mcu_rows, mcu_cols,
          restart_interval, zigzag, nbits_lut, debruijn_lut, codes, sizes, counts,
          gather):  # pragma: no cover - compiled
    """Gather symbol statistics (``gather``) or entropy-code one scan.

    coef: flat int32 array of all components' blocks, each block 64 values in
    natural order; component ``c``'s block ``(row, col)`` starts at
    ``offsets[c] + (row * row_stride[c] + col) * 64``. An MCU holds, per
    component, ``vs[c]`` rows of ``hs[c]`` blocks, coded with DC table
    ``dc_tab[c]`` and AC table ``ac_tab[c]``. ``codes``/``sizes`` ``[4, 256]``:
    Huffman codes and lengths (rows 0-1 DC, 2-3 AC tables); ``counts``
    ``[4, 257]`` int64 receives the statistics when gathering.
    Returns ``(bytes, length, error, mcu_index)``.
    """
    ncomp = offsets.shape[0]
    blocks_per_mcu = 0
    for c in range(ncomp):
        blocks_per_mcu += hs[c] * vs[c]
    margin = blocks_per_mcu * 420 + 32  # worst case of one MCU, stuffed, plus RSTn
    nmcu = mcu_rows * mcu_cols
    if gather:
        out = np.empty(0, dtype=np.uint8)
    else:
        out = np.empty(nmcu * blocks_per_mcu * 32 + margin, dtype=np.uint8)
    pos = 0
    acc = np.int64(0)  # pending bits, right-aligned
    nacc = np.int64(0)  # number of pending bits (< 32 between puts)
    last_dc = np.zeros(ncomp, dtype=np.int64)
    restarts_to_go = restart_interval
    next_restart = 0
    mcu = 0
    for mr in range(mcu_rows):
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
                dct = dc_tab[c]
                act = ac_tab[c] + 2
                for v in range(vs[c]):
                    rowbase = offsets[c] + ((mr * vs[c] + v) * row_stride[c] + mc * hs[c]) * 64
                    for h in range(hs[c]):
                        base = rowbase + h * 64
                        # DC difference (F.1.2.1)
                        dc = np.int64(coef[base])
                        diff = dc - last_dc[c]
                        last_dc[c] = dc
                        mag = -diff if diff < 0 else diff
                        if mag >= 2048:
                            return out, pos, 1, mcu
                        nbits = np.int64(nbits_lut[mag])
                        if gather:
                            counts[dct, nbits] += 1
                        else:
                            size = np.int64(sizes[dct, nbits])
                            if size == 0:
                                return out, pos, 3, mcu
                            if diff < 0:
                                diff -= 1
                            code = (np.int64(codes[dct, nbits]) << nbits) \
                                | (diff & ((np.int64(1) << nbits) - 1))
                            pos, acc, nacc = _put(out, pos, acc, nacc, code, size + nbits)
                        # AC run lengths (F.1.2.2)
                        # Bit k-1 of mask: coefficient k (zigzag) is nonzero. Visiting
                        # the set bits (lowest first, de Bruijn) avoids a branch per
                        # coefficient.
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
                                return out, pos, 2, mcu
                            nbits = np.int64(nbits_lut[mag])
                            while run > 15:
                                if gather:
                                    counts[act, 0xF0] += 1
                                else:
                                    size = np.int64(sizes[act, 0xF0])
                                    if size == 0:
                                        return out, pos, 3, mcu
                                    pos, acc, nacc = _put(out, pos, acc, nacc,
                                                          np.int64(codes[act, 0xF0]), size)
                                run -= 16
                            sym = (run << 4) + nbits
                            if gather:
                                counts[act, sym] += 1
                            else:
                                size = np.int64(sizes[act, sym])
                                if size == 0:
                                    return out, pos, 3, mcu
                                if val < 0:
                                    val -= 1
                                code = (np.int64(codes[act, sym]) << nbits) \
                                    | (val & ((np.int64(1) << nbits) - 1))
                                pos, acc, nacc = _put(out, pos, acc, nacc, code, size + nbits)
                        if prev < 63:  # end of block
                            if gather:
                                counts[act, 0] += 1
                            else:
                                size = np.int64(sizes[act, 0])
                                if size == 0:
                                    return out, pos, 3, mcu
                                pos, acc, nacc = _put(out, pos, acc, nacc,
                                                      np.int64(codes[act, 0]), size)
            mcu += 1
    if not gather:
        pos = _flush(out, pos, acc, nacc)
    return out, pos, 0, mcu


# Two entry points, so that ``gather`` is a compile-time constant in each.
@njit(cache=True, nogil=True)
def _encode_scan(coef, offsets, row_stride, hs, vs, dc_tab, ac_tab, mcu_rows, mcu_cols,
                 restart_interval, zigzag, nbits_lut, debruijn_lut, codes,
                 sizes):  # pragma: no cover - compiled
    """Entropy-code one scan (see ``_scan``); returns ``(bytes, length, error, mcu)``."""
    counts = np.zeros((1, 1), dtype=np.int64)
    return _scan(coef, offsets, row_stride, hs, vs, dc_tab, ac_tab, mcu_rows, mcu_cols,
                 restart_interval, zigzag, nbits_lut, debruijn_lut, codes, sizes, counts,
                 False)


@njit(cache=True, nogil=True)
def _gather_scan(coef, offsets, row_stride, hs, vs, dc_tab, ac_tab, mcu_rows, mcu_cols,
                 restart_interval, zigzag, nbits_lut, debruijn_lut,
                 counts):  # pragma: no cover - compiled
    """Count the Huffman symbols of one scan into ``counts`` (see ``_scan``)."""
    codes = np.zeros((1, 1), dtype=np.uint32)
    sizes = np.zeros((1, 1), dtype=np.int32)
    return _scan(coef, offsets, row_stride, hs, vs, dc_tab, ac_tab, mcu_rows, mcu_cols,
                 restart_interval, zigzag, nbits_lut, debruijn_lut, codes, sizes, counts,
                 True)


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


# --------------------------------------------------------------------------- API


def _table_slots(coefficients: Coefficients) -> tuple[int, ...]:
    """Huffman table slot per component, as libjpeg's jpeg_set_colorspace assigns them."""
    if coefficients.color == "ycbcr":
        return tuple(0 if c == 0 else 1 for c in range(coefficients.num_components))
    return (0,) * coefficients.num_components


def _check_restart(restart_interval: int) -> int:
    if isinstance(restart_interval, bool) or not isinstance(restart_interval, (int, np.integer)):
        raise JPEGError(f"restart_interval must be an int, got {type(restart_interval).__name__}")
    if not 0 <= int(restart_interval) <= 65535:
        raise JPEGError(f"restart_interval must be 0..65535 MCUs, got {restart_interval}")
    return int(restart_interval)


def _blocks_as_int32(block: Tensor) -> np.ndarray:
    """Blocks as a C-contiguous int32 numpy array (float blocks are rounded).

    int32 blocks are used as they are (the kernel checks the baseline ranges);
    other dtypes are range-checked first so that the conversion cannot wrap.
    """
    import torch

    b = block.detach()
    if b.dtype != torch.int32:
        if b.is_floating_point():
            if not bool(torch.isfinite(b).all()):
                raise JPEGError("coefficients must be finite")
            b = torch.round(b)
        elif b.dtype not in (torch.int16, torch.int64, torch.uint8, torch.int8):
            raise JPEGError(f"unsupported coefficient dtype {b.dtype}")
        if b.numel() and (float(b.min()) < -32768 or float(b.max()) > 32767):
            raise JPEGError("coefficient out of range for baseline JPEG")
        b = b.to(torch.int32)
    return np.ascontiguousarray(b.cpu().numpy())


def write_coefficients(coefficients: Coefficients, *, optimize: bool = False,
                       restart_interval: int = 0, metadata: Metadata | None = None) -> bytes:
    """Write quantized coefficients as a baseline JFIF file.

    Args:
        coefficients: a :class:`~jpegtorch.Coefficients` of batch size 1, from
            :func:`jpegtorch.encode` or read from a file. Blocks ``[1, by, bx,
            8, 8]`` per component (integers; float blocks are rounded), values
            within baseline limits (|AC| < 1024, |DC difference| < 2048);
            qtables ``[1, C, 8, 8]`` with values 1..65535 (above 255 gives a
            16-bit DQT and SOF1, as libjpeg does). Colour "gray" and "ycbcr"
            get a JFIF APP0 header, "rgb" an Adobe APP14 (transform 0).
        optimize: build optimal Huffman tables for this image (libjpeg's
            ``optimize_coding``) instead of the Annex K tables.
        restart_interval: MCUs between restart markers (0 = none), 0..65535.
        metadata: EXIF, ICC profile, XMP, comments, density and other APPn
            segments to write after the JFIF/Adobe header
            (:class:`jpegtorch.formats.metadata.Metadata`, e.g. from
            ``read_jpeg_metadata``); None writes libjpeg-turbo's bytes.

    Returns:
        The bytes of the JPEG file.

    Raises:
        JPEGError: the coefficients cannot be written as a baseline JPEG.
    """
    import torch

    restart_interval = _check_restart(restart_interval)
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
    sixteen_bit = any(int(t.max()) > 255 for t in slot_tables.values())

    # Block layout of the scan.
    blocks = [_blocks_as_int32(b) for b in coefficients.blocks]
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
    row_stride = np.array([b.shape[2] for b in blocks], dtype=np.int64)
    sizes_flat = [b.size for b in blocks]
    offsets = np.cumsum([0, *sizes_flat[:-1]]).astype(np.int64)
    coef = blocks[0].reshape(-1) if n == 1 else np.concatenate([b.reshape(-1) for b in blocks])

    slots = _table_slots(coefficients)
    tab = np.array(slots, dtype=np.int64)
    dc_tables: dict[int, HuffmanTable] = {}
    ac_tables: dict[int, HuffmanTable] = {}
    codes = np.zeros((4, 256), dtype=np.uint32)
    sizes = np.zeros((4, 256), dtype=np.int32)
    counts = np.zeros((4, 257), dtype=np.int64)

    def run(gather: bool) -> np.ndarray:
        args = (coef, offsets, row_stride, hs, vs, tab, tab, mcu_rows, mcu_cols,
                restart_interval, _ZIGZAG, _NBITS, _DEBRUIJN_LUT)
        if gather:
            out, length, err, mcu = _gather_scan(*args, counts)
        else:
            out, length, err, mcu = _encode_scan(*args, codes, sizes)
        if err:
            where = f"in MCU {mcu} (row {mcu // mcu_cols}, column {mcu % mcu_cols})"
            if err == _BAD_DC:
                raise JPEGError(f"DC difference out of baseline range {where}")
            if err == _BAD_AC:
                raise JPEGError(f"AC coefficient out of baseline range (|v| > 1023) {where}")
            raise JPEGError(f"symbol missing from the Huffman table {where}")
        return out[:length]

    if optimize:
        run(True)
        for s in sorted(set(slots)):
            dc_tables[s] = optimal_table(counts[s])
            ac_tables[s] = optimal_table(counts[s + 2])
    else:
        for s in set(slots):
            dc_tables[s] = STD_DC_TABLES[s]
            ac_tables[s] = STD_AC_TABLES[s]
    for s in set(slots):
        codes[s], sizes[s] = code_table(dc_tables[s], is_dc=True)
        codes[s + 2], sizes[s + 2] = code_table(ac_tables[s], is_dc=False)
    data = run(False)

    # Headers, in libjpeg's order.
    parts = [b"\xff\xd8"]
    if coefficients.color == "rgb":
        parts.append(_adobe_app14(coefficients.color))
    else:
        parts.append(_jfif_app0())
    sent: set[int] = set()
    for slot in coefficients.qtable_slots:
        if slot not in sent:
            parts.append(_dqt(slot, slot_tables[slot]))
            sent.add(slot)
    sof = bytearray((8, *height.to_bytes(2, "big"), *width.to_bytes(2, "big"), n))
    for c in range(n):
        h, v = coefficients.sampling[c]
        sof += bytes((coefficients.component_ids[c], h << 4 | v, coefficients.qtable_slots[c]))
    parts.append(_segment(0xC1 if sixteen_bit else 0xC0, bytes(sof)))
    sent_dc: set[int] = set()
    sent_ac: set[int] = set()
    for s in slots:
        if s not in sent_dc:
            parts.append(_dht(0, s, dc_tables[s]))
            sent_dc.add(s)
        if s not in sent_ac:
            parts.append(_dht(1, s, ac_tables[s]))
            sent_ac.add(s)
    if restart_interval:
        parts.append(_segment(0xDD, restart_interval.to_bytes(2, "big")))
    sos = bytearray((n,))
    for c in range(n):
        sos += bytes((coefficients.component_ids[c], slots[c] << 4 | slots[c]))
    sos += bytes((0, 63, 0))
    parts.append(_segment(0xDA, bytes(sos)))
    parts.append(data.tobytes())
    parts.append(b"\xff\xd9")
    if metadata:
        from .metadata import insert_into_jpeg

        return insert_into_jpeg(b"".join(parts), metadata)
    return b"".join(parts)


def resolve_base_tables(tables: Tensor | str | os.PathLike[str] | None) -> Tensor | None:
    """Base tables ``[2, 8, 8]`` int64 (luma, chroma; natural order) or None.

    ``tables``: None (Annex K), a ``[2, 8, 8]`` integer-valued tensor (values
    0..65535), the path of a cjpeg ``-qtables`` file or a preset name.
    """
    import torch

    if tables is None:
        return None
    if isinstance(tables, torch.Tensor):
        if tuple(tables.shape) != (2, 8, 8):
            raise JPEGError(f"tables must be a [2, 8, 8] tensor, got {tuple(tables.shape)}")
        if tables.is_floating_point():
            if not torch.equal(tables, torch.round(tables)):
                raise JPEGError("tables must hold integers")
        t = tables.detach().to(device="cpu", dtype=torch.int64)
        if int(t.min()) < 0 or int(t.max()) > 65535:
            raise JPEGError("base quantization table values must be 0..65535")
        return t
    if isinstance(tables, (str, os.PathLike)):
        from .qtables import resolve_tables

        luma, chroma = resolve_tables(tables)
        return torch.tensor([luma, chroma], dtype=torch.int64).reshape(2, 8, 8)
    raise JPEGError(
        f"tables must be None, a [2, 8, 8] tensor, a file path or a preset name, "
        f"got {type(tables).__name__}"
    )


def encode_jpeg(image: Tensor, quality: int = 75, *, subsampling: str = "4:2:0",
                optimize: bool = False, restart_interval: int = 0,
                tables: Tensor | str | os.PathLike[str] | None = None,
                trellis: bool = False, tune: str | None = None,
                metadata: Metadata | None = None, exif: bytes | None = None,
                icc_profile: bytes | None = None, xmp: bytes | str | None = None,
                comment: bytes | str | None = None,
                dpi: tuple[float, float] | None = None) -> bytes:
    """Encode an image to a baseline JFIF file, byte-identical to libjpeg-turbo.

    With ``trellis`` or ``tune`` the quantized values are chosen by
    :mod:`jpegtorch.optimize` instead (still a standard baseline file, with
    optimal Huffman tables; no longer libjpeg-turbo's bytes).

    Args:
        image: uint8 tensor ``[C, H, W]`` (C = 1 gray, 3 RGB), values 0..255,
            1 <= H, W <= 65535; any device.
        quality: 1..100 (libjpeg's scale; 50 uses the base tables as given).
        subsampling: chroma subsampling "4:4:4", "4:2:2" or "4:2:0" (ignored
            for gray images).
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
        metadata: a :class:`jpegtorch.formats.metadata.Metadata` to carry
            (e.g. ``read_jpeg_metadata(original)``: EXIF, ICC, XMP, comments,
            density and other APPn segments, like ``jpegtran -copy all``).
        exif, icc_profile, xmp, comment, dpi: as Pillow's ``save`` options
            (``exif`` with or without its ``Exif\0\0`` header); they add to
            or replace the fields of ``metadata``.

    Returns:
        The JPEG file's bytes: what Pillow's ``Image.save(..., "JPEG",
        quality=, subsampling=, optimize=, restart_marker_blocks=, exif=,
        icc_profile=, xmp=, comment=, dpi=)`` and (without metadata)
        ``cjpeg -baseline`` write.

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
    if not (1 <= image.shape[1] <= 65535 and 1 <= image.shape[2] <= 65535):
        raise JPEGError(f"image size {tuple(image.shape[1:])} is outside JPEG's 1..65535")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise JPEGError(f"quality must be an int 1..100, got {quality!r}")
    if not 1 <= int(quality) <= 100:
        raise JPEGError(f"quality must be 1..100, got {quality}")
    if subsampling not in SUBSAMPLINGS:
        raise JPEGError(
            f"subsampling must be one of {', '.join(SUBSAMPLINGS)}, got {subsampling!r}"
        )
    _check_restart(restart_interval)
    from .metadata import insert_into_jpeg, merge

    extra = merge(metadata, exif=exif, icc_profile=icc_profile, xmp=xmp, comment=comment,
                  dpi=dpi)
    if extra is not None:
        extra.jpeg_segments()  # too-long EXIF/XMP/comments fail before the work
    if trellis or tune is not None:
        from jpegtorch.optimize.tuning import encode_optimized

        return insert_into_jpeg(
            encode_optimized(image, int(quality), subsampling=subsampling, tables=tables,
                             tune=tune, restart_interval=restart_interval), extra)
    base = resolve_base_tables(tables)

    from jpegtorch.pipeline import encode

    coefficients = encode(image.cpu(), int(quality), subsampling=subsampling, tables=base,
                          mode="hard")
    return write_coefficients(coefficients, optimize=bool(optimize),
                              restart_interval=restart_interval, metadata=extra)


__all__: Sequence[str] = (
    "SUBSAMPLINGS", "encode_jpeg", "resolve_base_tables", "write_coefficients",
)
