"""Huffman entropy decoding of JPEG scans (the hot loop of the reader).

:func:`decode_scan` decodes one scan of a sequential (baseline / extended) or
progressive Huffman JPEG into quantized coefficient blocks with one of two
numba kernels (``cache=True``; each compiled on first use), following
libjpeg-turbo's ``jdhuff.c`` / ``jdphuff.c`` semantics exactly, including its
behaviour on corrupt data:

- the bit buffer is a 64-bit register filled byte by byte; ``FF 00`` is a
  stuffed ``FF``; any other ``FF xx`` is a marker that stops the filling (the
  marker is consumed and remembered, as libjpeg's ``unread_marker``);
- a code or value that needs bits past such a marker reads zero bits, counts a
  "premature end of data segment" warning and marks the restart interval as
  out of data: its remaining MCUs are left zero (uniform grey);
- an invalid Huffman code consumes 17 bits and decodes as symbol 0;
- restart markers are checked and resynchronised as ``jdmarker.c`` does;
- coefficients are stored as libjpeg's 16-bit ``JCOEF`` (wrapped), AC
  positions past 63 (corrupt run lengths) land on coefficient 63.

Huffman decoding uses a 9-bit lookahead table (code length and symbol in one
``int32``) and falls back to the canonical ``maxcode`` walk for longer codes.
The lookahead is written out inline at each call site on purpose: moved into
a helper it is not inlined by numba/LLVM and the kernels ran 2-8x slower (each
call passes the table arrays, with reference counting); the rare paths
(:func:`_symbol`, :func:`_bits`, :func:`_ensure`) are shared helpers.
While at least 32 bits are buffered a whole code + value is decoded without
further checks; near a marker the careful bit-by-bit path reproduces libjpeg's
zero filling exactly.

Everything here is pure: the kernel writes into arrays it is given and returns
its statistics; the table builders return new arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from .zigzag import ZIGZAG

LOOKAHEAD = 9
"""Bits of Huffman lookahead (libjpeg uses 8; the result is the same)."""

# scan kinds
SEQUENTIAL = 0
DC_FIRST = 1
DC_REFINE = 2
AC_FIRST = 3
AC_REFINE = 4

# indices of the statistics array returned by the kernel
ST_POS = 0  # next unread byte
ST_MARKER = 1  # marker hit and consumed while reading (0 = none)
ST_EOF = 2  # the data ended without a marker (libjpeg inserts a fake EOI)
ST_HIT_MARKER = 3  # "premature end of data segment" warnings
ST_BAD_CODE = 4  # "bad Huffman code" warnings
ST_EXTRANEOUS = 5  # "extraneous bytes before marker" warnings
ST_EXTRANEOUS_BYTES = 6  # byte count of the first such warning
ST_EXTRANEOUS_MARKER = 7  # marker of the first such warning
ST_RESYNC = 8  # "found marker xx instead of RSTn" warnings
ST_RESYNC_MARKER = 9  # the first such marker
ST_DISCARDED = 10  # discarded bytes not yet reported (carried to the next marker search)
ST_LAST_GOOD_ROW = 11  # last iMCU row started with data (libjpeg's last_good_iMCU_row)
ST_DC_OVERFLOW = 12  # progressive DC value overflowed 32 bits (libjpeg: fatal)
ST_MCUS_DONE = 13  # MCUs processed (less than all when stopped early in strict mode)
NUM_STATS = 14

# indices of the kernel state of a resumable sequential scan
KS_ACC = 0  # bit buffer
KS_NBITS = 1  # bits in it
KS_SHORT = 2  # out of data for the rest of the restart interval
KS_RESTARTS = 3  # MCUs left in the restart interval
KS_NEXT_RST = 4  # the next RSTn expected
KS_LAST_DC = 5  # 4 DC predictions
NUM_KSTATE = 9

# natural position of zigzag index k, with libjpeg's 16 guard entries (k >= 64 -> 63)
NATURAL_ORDER_EXT = np.array(list(ZIGZAG) + [63] * 16, dtype=np.int64)


class HuffmanTableError(ValueError):
    """A Huffman table that libjpeg's ``jpeg_make_d_derived_tbl`` rejects."""


def derive_table(bits: Sequence[int], huffval: Sequence[int], *, is_dc: bool,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decoding tables of one Huffman table, with libjpeg's validity checks.

    Args:
        bits: the 16 code counts for lengths 1..16.
        huffval: the symbols in code order (``sum(bits)`` of them).
        is_dc: DC tables may only hold symbols 0..15.

    Returns:
        ``(lookup, maxcode, valoffset, huffval)``: ``lookup`` int32 ``[512]``
        (``length << 8 | symbol`` for codes of at most 9 bits, 0 otherwise),
        ``maxcode``/``valoffset`` int32 ``[18]`` (F.15; ``maxcode[17]`` is a
        sentinel), ``huffval`` int32 ``[256]``.

    Raises:
        HuffmanTableError: the counts overflow 256 symbols, describe an
            impossible code, or a DC symbol exceeds 15.
    """
    counts = [int(b) for b in bits]
    nsym = sum(counts)
    if len(counts) != 16 or min(counts) < 0 or nsym > 256 or len(huffval) < nsym:
        raise HuffmanTableError("bad Huffman table (symbol counts)")
    sizes: list[int] = []
    for length, count in enumerate(counts, start=1):
        sizes.extend([length] * count)
    codes: list[int] = []
    code = 0
    p = 0
    si = sizes[0] if sizes else 0
    while p < nsym:
        while p < nsym and sizes[p] == si:
            codes.append(code)
            code += 1
            p += 1
        if code >= (1 << si):
            raise HuffmanTableError("bad Huffman table (code lengths overflow)")
        code <<= 1
        si += 1
    vals = np.zeros(256, dtype=np.int32)
    vals[:nsym] = np.asarray(list(huffval[:nsym]), dtype=np.int32)
    if is_dc and nsym and (vals[:nsym].max() > 15 or vals[:nsym].min() < 0):
        raise HuffmanTableError("bad Huffman table (DC symbol above 15)")
    maxcode = np.full(18, -1, dtype=np.int32)
    valoffset = np.zeros(18, dtype=np.int32)
    p = 0
    for length in range(1, 17):
        count = counts[length - 1]
        if count:
            valoffset[length] = p - codes[p]
            p += count
            maxcode[length] = codes[p - 1]
    maxcode[17] = 0xFFFFF
    lookup = np.zeros(1 << LOOKAHEAD, dtype=np.int32)
    for p in range(nsym):
        length = sizes[p]
        if length > LOOKAHEAD:
            break
        shift = LOOKAHEAD - length
        start = codes[p] << shift
        lookup[start : start + (1 << shift)] = (length << 8) | int(vals[p])
    return lookup, maxcode, valoffset, vals


@njit(cache=True, nogil=True, _nrt=False)
def _fill(data, acc, nbits, pos, marker):  # pragma: no cover - compiled
    """Load bytes until at least 57 bits are buffered or a marker is met.

    Returns ``(acc, nbits, pos, marker, eof)``; at the end of the data the
    marker is a fake EOI (0xD9) and ``eof`` is 1, as libjpeg's memory source.
    """
    n = data.shape[0]
    eof = 0
    if marker != 0:
        return acc, nbits, pos, marker, eof
    while nbits <= 56:
        if pos >= n:
            marker = 0xD9
            eof = 1
            break
        c = np.int64(data[pos])
        pos += 1
        if c == 0xFF:
            while True:
                if pos >= n:
                    c = 0xD9
                    eof = 1
                    break
                c = np.int64(data[pos])
                pos += 1
                if c != 0xFF:
                    break
            if c == 0:
                c = 0xFF
            else:
                marker = c
                break
        acc = (acc << 8) | c
        nbits += 8
    return acc, nbits, pos, marker, eof


@njit(cache=True, nogil=True)
def _next_marker(data, pos):  # pragma: no cover - compiled
    """libjpeg's ``next_marker``: skip to the next marker.

    Returns ``(marker, pos, discarded, eof)`` with ``pos`` just past the
    marker code and ``discarded`` the garbage bytes skipped (FF fill bytes are
    free; stuffed ``FF 00`` pairs count 2).
    """
    n = data.shape[0]
    discarded = 0
    while True:
        if pos >= n:
            return 0xD9, pos, discarded, 1
        c = np.int64(data[pos])
        pos += 1
        while c != 0xFF:
            discarded += 1
            if pos >= n:
                return 0xD9, pos, discarded, 1
            c = np.int64(data[pos])
            pos += 1
        while c == 0xFF:
            if pos >= n:
                return 0xD9, pos, discarded, 1
            c = np.int64(data[pos])
            pos += 1
        if c != 0:
            return c, pos, discarded, 0
        discarded += 2


@njit(cache=True, nogil=True)
def read_restart_marker(data, pos, marker, next_rst, discarded, stats):  # pragma: no cover
    """libjpeg's ``read_restart_marker`` + ``jpeg_resync_to_restart``.

    ``marker`` is the marker already met (0 if none), ``discarded`` the garbage
    bytes not yet reported. Counts warnings into ``stats`` and returns
    ``(marker, pos, discarded, eof)``: ``marker`` is 0 when the expected RSTn
    was consumed, else the marker left for the caller (the interval then reads
    as empty).
    """
    eof = 0
    if marker == 0:
        marker, pos, skipped, eof = _next_marker(data, pos)
        discarded += skipped
        if discarded:
            if stats[ST_EXTRANEOUS] == 0:
                stats[ST_EXTRANEOUS_BYTES] = discarded
                stats[ST_EXTRANEOUS_MARKER] = marker
            stats[ST_EXTRANEOUS] += 1
            discarded = 0
    if marker == 0xD0 + next_rst:
        return 0, pos, discarded, eof
    if stats[ST_RESYNC] == 0:
        stats[ST_RESYNC_MARKER] = marker
    stats[ST_RESYNC] += 1
    while True:
        if marker < 0xC0:
            action = 2  # invalid marker: scan on
        elif marker < 0xD0 or marker > 0xD7:
            action = 3  # a valid non-RST marker: leave it
        elif marker == 0xD0 + ((next_rst + 1) & 7) or marker == 0xD0 + ((next_rst + 2) & 7):
            action = 3  # one of the next two restarts
        elif marker == 0xD0 + ((next_rst - 1) & 7) or marker == 0xD0 + ((next_rst - 2) & 7):
            action = 2  # a prior restart: scan on
        else:
            action = 1  # desired restart or too far away: take it
        if action == 1:
            return 0, pos, discarded, eof
        if action == 3:
            return marker, pos, discarded, eof
        marker, pos, skipped, e = _next_marker(data, pos)
        eof |= e
        discarded += skipped
        if discarded:
            if stats[ST_EXTRANEOUS] == 0:
                stats[ST_EXTRANEOUS_BYTES] = discarded
                stats[ST_EXTRANEOUS_MARKER] = marker
            stats[ST_EXTRANEOUS] += 1
            discarded = 0


@njit(cache=True, nogil=True, _nrt=False)
def _ensure(data, need, acc, nbits, pos, marker, eof, short, n_hit):  # pragma: no cover
    """Make ``need`` (1..16) bits available, reading bytes as needed.

    Past a marker or the end of the data, libjpeg supplies zero bits: the
    buffer is padded with zeros, ``short`` ("insufficient data") becomes True
    and the first time counts one "premature end of data segment" warning.
    The bit-reader state travels as ``(acc, nbits, pos, marker, eof, short,
    n_hit)``; every helper below takes and returns it in that order.
    """
    if nbits < need:
        acc, nbits, pos, marker, e = _fill(data, acc, nbits, pos, marker)
        eof |= e
        if nbits < need:
            if not short:
                short = True
                n_hit += 1
            acc = acc << (57 - nbits)
            nbits = 57
    return acc, nbits, pos, marker, eof, short, n_hit


@njit(cache=True, nogil=True, _nrt=False)
def _bits(data, n, acc, nbits, pos, marker, eof, short, n_hit):  # pragma: no cover
    """Read ``n`` (1..16) raw bits: ``(value, *state)``."""
    acc, nbits, pos, marker, eof, short, n_hit = _ensure(
        data, n, acc, nbits, pos, marker, eof, short, n_hit)
    nbits -= n
    return (acc >> nbits) & ((1 << n) - 1), acc, nbits, pos, marker, eof, short, n_hit


@njit(cache=True, nogil=True, _nrt=False)
def _extend(v, s):  # pragma: no cover - compiled
    """JPEG's EXTEND: the ``s``-bit magnitude category value ``v`` as a signed int."""
    return v + 1 - (1 << s) if v < (1 << (s - 1)) else v


@njit(cache=True, nogil=True, _nrt=False)
def _symbol(data, t, maxcode, valoffset, huffval,
            acc, nbits, pos, marker, eof, short, n_hit, n_bad):  # pragma: no cover
    """Decode one Huffman symbol the 9-bit lookahead did not: ``(symbol, *state, n_bad)``.

    The kernels try ``lookup`` first (inline, the common case); this handles
    the rest: with 32+ bits buffered, the ``maxcode`` walk for codes longer
    than 9 bits; nearer a marker, bit by bit with libjpeg's zero filling. An
    invalid code (17 bits) counts a "bad Huffman code" warning and decodes as 0.
    """
    if nbits >= 32:
        length = 10
        code = (acc >> (nbits - 10)) & 1023
        while length < 17 and code > maxcode[t, length]:
            length += 1
            code = (acc >> (nbits - length)) & ((1 << length) - 1)
        nbits -= length
    else:
        code = np.int64(0)
        length = 0
        while True:
            acc, nbits, pos, marker, eof, short, n_hit = _ensure(
                data, 1, acc, nbits, pos, marker, eof, short, n_hit)
            nbits -= 1
            code = (code << 1) | ((acc >> nbits) & 1)
            length += 1
            if length >= 17 or code <= maxcode[t, length]:
                break
    if length > 16:
        n_bad += 1
        sym = np.int64(0)
    else:
        sym = np.int64(huffval[t, code + valoffset[t, length]])
    return sym, acc, nbits, pos, marker, eof, short, n_hit, n_bad


@njit(cache=True, nogil=True, _nrt=False)
def _refine_bit(coefs, idx, p1, m1, data, acc, nbits, pos, marker, eof, short,
                n_hit):  # pragma: no cover - compiled
    """AC refinement of a nonzero coefficient: read its correction bit and apply it."""
    bit, acc, nbits, pos, marker, eof, short, n_hit = _bits(
        data, 1, acc, nbits, pos, marker, eof, short, n_hit)
    cv = coefs[idx]
    if bit and (cv & p1) == 0:
        cv = cv + p1 if cv >= 0 else cv + m1
        coefs[idx] = ((cv + 32768) & 0xFFFF) - 32768
    return acc, nbits, pos, marker, eof, short, n_hit


@njit(cache=True, nogil=True)
def _restart(data, pos, marker, nbits, next_rst, discarded, eof, last_dc,
             stats):  # pragma: no cover - compiled
    """Process the restart marker due now (``jdhuff.c`` ``process_restart``).

    Drops the buffered bits (whole bytes count as discarded), reads and checks
    RSTn and resets the DC predictions. Returns ``(pos, marker, discarded,
    eof, next_rst)``; the caller empties its bit buffer.
    """
    discarded += nbits // 8
    marker, pos, discarded, e = read_restart_marker(data, pos, marker, next_rst, discarded,
                                                    stats)
    for i in range(4):
        last_dc[i] = 0
    return pos, marker, discarded, eof | e, (next_rst + 1) & 7


@njit(cache=True, nogil=True)
def _store_stats(stats, pos, marker, eof, n_hit, n_bad, discarded, last_good,
                 done):  # pragma: no cover - compiled
    """Write a kernel's final state into ``stats`` (see the ``ST_*`` indices)."""
    stats[ST_POS] = pos
    stats[ST_MARKER] = marker
    stats[ST_EOF] = eof
    stats[ST_HIT_MARKER] = n_hit
    stats[ST_BAD_CODE] = n_bad
    stats[ST_DISCARDED] = discarded
    stats[ST_LAST_GOOD_ROW] = last_good
    stats[ST_MCUS_DONE] = done


@njit(cache=True, nogil=True)
def _decode_sequential(data, kind, ss, se, ah, al, restart_interval,
                       mcus_per_row, mcu_start, mcu_end, row_origin, imcu_div,
                       comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac,
                       lookup, maxcode, valoffset, huffval, natural, coefs, strict, stats, kst,
                       ):  # pragma: no cover - compiled
    """Sequential (baseline / extended) scan, MCUs ``mcu_start .. mcu_end - 1``:
    see :func:`decode_scan`. Resumable: the bit reader, the DC predictions and
    the restart state live in ``kst`` and ``stats`` between calls."""
    n_comp = comp_off.shape[0]
    acc = kst[KS_ACC]
    nbits = kst[KS_NBITS]
    short = kst[KS_SHORT] != 0  # libjpeg's "insufficient_data" of the restart interval
    last_dc = kst[KS_LAST_DC:KS_LAST_DC + 4]
    restarts_to_go = kst[KS_RESTARTS]
    next_rst = kst[KS_NEXT_RST]
    pos = stats[ST_POS]
    marker = stats[ST_MARKER]
    eof = stats[ST_EOF]
    discarded = stats[ST_DISCARDED]
    n_hit = stats[ST_HIT_MARKER]
    n_bad = stats[ST_BAD_CODE]
    last_good = stats[ST_LAST_GOOD_ROW]
    done = stats[ST_MCUS_DONE]
    for mcu in range(mcu_start, mcu_end):
        mrow = mcu // mcus_per_row
        mcol = mcu - mrow * mcus_per_row
        if not short:  # checked before the restart, as jdcoefct.c does
            last_good = mrow // imcu_div
        # ---- restart marker -------------------------------------------------
        if restart_interval > 0:
            if restarts_to_go == 0:
                pos, marker, discarded, eof, next_rst = _restart(
                    data, pos, marker, nbits, next_rst, discarded, eof, last_dc, stats)
                nbits = 0
                restarts_to_go = restart_interval
                if marker == 0:
                    short = False
                if strict and (stats[ST_EXTRANEOUS] or stats[ST_RESYNC] or eof):
                    break
            restarts_to_go -= 1
        if short:  # out of data: leave the rest of the interval zero
            if restart_interval == 0:  # ... which is the rest of the scan: stop here
                done += mcu_end - mcu
                break
            done += 1
            continue
        # ---- one MCU --------------------------------------------------------
        for ci in range(n_comp):
            bx = comp_bx[ci]
            hh = comp_h[ci]
            vv = comp_v[ci]
            dct = comp_dc[ci]
            act = comp_ac[ci]
            for yy in range(vv):
                brow = (mrow - row_origin) * vv + yy
                for xx in range(hh):
                    bcol = mcol * hh + xx
                    base = comp_off[ci] + (brow * bx + bcol) * 64
                    # ======== DC coefficient ========
                    if nbits < 32:
                        acc, nbits, pos, marker, e = _fill(data, acc, nbits, pos, marker)
                        eof |= e
                    ent = lookup[dct, (acc >> (nbits - 9)) & 511] if nbits >= 32 else 0
                    if ent != 0:
                        nbits -= ent >> 8
                        s = np.int64(ent & 255)
                    else:
                        s, acc, nbits, pos, marker, eof, short, n_hit, n_bad = _symbol(
                            data, dct, maxcode, valoffset, huffval,
                            acc, nbits, pos, marker, eof, short, n_hit, n_bad)
                    if s:
                        r, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                            data, s, acc, nbits, pos, marker, eof, short, n_hit)
                        s = _extend(r, s)
                    v = last_dc[ci] + s
                    v = ((v + 2147483648) & 0xFFFFFFFF) - 2147483648  # C int arithmetic
                    last_dc[ci] = v
                    coefs[base] = ((v + 32768) & 0xFFFF) - 32768  # JCOEF
                    # ======== AC coefficients ========
                    k = 1
                    while k < 64:
                        if nbits < 32:
                            acc, nbits, pos, marker, e = _fill(data, acc, nbits, pos, marker)
                            eof |= e
                        ent = lookup[act, (acc >> (nbits - 9)) & 511] if nbits >= 32 else 0
                        if ent != 0:
                            nbits -= ent >> 8
                            sym = np.int64(ent & 255)
                        else:
                            sym, acc, nbits, pos, marker, eof, short, n_hit, n_bad = _symbol(
                                data, act, maxcode, valoffset, huffval,
                                acc, nbits, pos, marker, eof, short, n_hit, n_bad)
                        r = sym >> 4
                        s = sym & 15
                        if s:
                            k += r
                            v, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                                data, s, acc, nbits, pos, marker, eof, short, n_hit)
                            coefs[base + natural[k]] = _extend(v, s)
                        elif r == 15:
                            k += 15
                        else:
                            break
                        k += 1
        done += 1
        if (strict and (n_hit or n_bad or stats[ST_EXTRANEOUS] or stats[ST_RESYNC])):
            break
    _store_stats(stats, pos, marker, eof, n_hit, n_bad, discarded, last_good, done)
    kst[KS_ACC] = acc
    kst[KS_NBITS] = nbits
    kst[KS_SHORT] = 1 if short else 0
    kst[KS_RESTARTS] = restarts_to_go
    kst[KS_NEXT_RST] = next_rst


@njit(cache=True, nogil=True)
def _decode_progressive(data, pos, kind, ss, se, ah, al, restart_interval,
                        mcus_per_row, mcu_rows, imcu_div,
                        comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac,
                        lookup, maxcode, valoffset, huffval, natural, coefs, strict, stats,
                        ):  # pragma: no cover - compiled
    """Progressive scan (DC/AC, first/refinement): see :func:`decode_scan`."""
    n_comp = comp_off.shape[0]
    acc = np.int64(0)
    nbits = np.int64(0)
    marker = np.int64(0)
    eof = np.int64(0)
    short = False  # libjpeg's "insufficient_data" of the current restart interval
    last_dc = np.zeros(4, dtype=np.int64)
    eobrun = np.int64(0)
    restarts_to_go = restart_interval
    next_rst = np.int64(0)
    discarded = stats[ST_DISCARDED]
    n_hit = np.int64(0)
    n_bad = np.int64(0)
    last_good = stats[ST_LAST_GOOD_ROW]
    dc_overflow = np.int64(0)
    p1 = np.int64(1) << al
    m1 = -p1
    total = mcus_per_row * mcu_rows
    done = np.int64(0)
    stop = False
    for mcu in range(total):
        mrow = mcu // mcus_per_row
        mcol = mcu - mrow * mcus_per_row
        if not short:  # checked before the restart, as jdcoefct.c does
            last_good = mrow // imcu_div
        # ---- restart marker -------------------------------------------------
        if restart_interval > 0:
            if restarts_to_go == 0:
                pos, marker, discarded, eof, next_rst = _restart(
                    data, pos, marker, nbits, next_rst, discarded, eof, last_dc, stats)
                nbits = 0
                eobrun = 0
                restarts_to_go = restart_interval
                if marker == 0:
                    short = False
                if strict and (stats[ST_EXTRANEOUS] or stats[ST_RESYNC] or eof):
                    break
            restarts_to_go -= 1
        if short:  # out of data: leave the rest of the interval zero
            if restart_interval == 0:  # ... which is the rest of the scan: stop here
                done += total - mcu
                break
            done += 1
            continue
        # ---- one MCU --------------------------------------------------------
        for ci in range(n_comp):
            bx = comp_bx[ci]
            hh = comp_h[ci]
            vv = comp_v[ci]
            dct = comp_dc[ci]
            act = comp_ac[ci]
            for yy in range(vv):
                brow = mrow * vv + yy
                for xx in range(hh):
                    bcol = mcol * hh + xx
                    base = comp_off[ci] + (brow * bx + bcol) * 64
                    # ======== DC first ========
                    if kind == DC_FIRST:
                        if nbits < 32:
                            acc, nbits, pos, marker, e = _fill(data, acc, nbits, pos, marker)
                            eof |= e
                        ent = lookup[dct, (acc >> (nbits - 9)) & 511] if nbits >= 32 else 0
                        if ent != 0:
                            nbits -= ent >> 8
                            s = np.int64(ent & 255)
                        else:
                            s, acc, nbits, pos, marker, eof, short, n_hit, n_bad = _symbol(
                                data, dct, maxcode, valoffset, huffval,
                                acc, nbits, pos, marker, eof, short, n_hit, n_bad)
                        if s:
                            r, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                                data, s, acc, nbits, pos, marker, eof, short, n_hit)
                            s = _extend(r, s)
                        v = last_dc[ci] + s
                        if v > 2147483647 or v < -2147483648:
                            dc_overflow = 1  # libjpeg: fatal JERR_BAD_DCT_COEF
                            stop = True
                            break
                        last_dc[ci] = v
                        v = v << al
                        coefs[base] = ((v + 32768) & 0xFFFF) - 32768  # JCOEF
                    # ======== DC refinement ========
                    elif kind == DC_REFINE:
                        bit, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                            data, 1, acc, nbits, pos, marker, eof, short, n_hit)
                        if bit:
                            v = coefs[base] | p1
                            coefs[base] = ((v + 32768) & 0xFFFF) - 32768
                    # ======== AC first: one block per MCU ========
                    elif kind == AC_FIRST:
                        if eobrun > 0:
                            eobrun -= 1
                            continue
                        k = ss
                        while k <= se:
                            if nbits < 32:
                                acc, nbits, pos, marker, e = _fill(data, acc, nbits, pos, marker)
                                eof |= e
                            ent = lookup[act, (acc >> (nbits - 9)) & 511] if nbits >= 32 else 0
                            if ent != 0:
                                nbits -= ent >> 8
                                sym = np.int64(ent & 255)
                            else:
                                sym, acc, nbits, pos, marker, eof, short, n_hit, n_bad = _symbol(
                                    data, act, maxcode, valoffset, huffval,
                                    acc, nbits, pos, marker, eof, short, n_hit, n_bad)
                            r = sym >> 4
                            s = sym & 15
                            if s:
                                k += r
                                v, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                                    data, s, acc, nbits, pos, marker, eof, short, n_hit)
                                v = _extend(v, s) << al
                                coefs[base + natural[k]] = ((v + 32768) & 0xFFFF) - 32768
                            elif r == 15:
                                k += 15
                            else:
                                eobrun = np.int64(1) << r
                                if r:
                                    extra, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                                        data, r, acc, nbits, pos, marker, eof, short, n_hit)
                                    eobrun += extra
                                eobrun -= 1
                                break
                            k += 1
                    # ======== AC refinement ========
                    elif kind == AC_REFINE:
                        k = ss
                        if eobrun == 0:
                            while k <= se:
                                if nbits < 32:
                                    acc, nbits, pos, marker, e = _fill(
                                        data, acc, nbits, pos, marker)
                                    eof |= e
                                ent = (lookup[act, (acc >> (nbits - 9)) & 511]
                                       if nbits >= 32 else 0)
                                if ent != 0:
                                    nbits -= ent >> 8
                                    sym = np.int64(ent & 255)
                                else:
                                    sym, acc, nbits, pos, marker, eof, short, n_hit, n_bad = \
                                        _symbol(data, act, maxcode, valoffset, huffval,
                                                acc, nbits, pos, marker, eof, short, n_hit, n_bad)
                                r = sym >> 4
                                s = sym & 15
                                if s:
                                    if s != 1:
                                        n_bad += 1
                                    bit, acc, nbits, pos, marker, eof, short, n_hit = _bits(
                                        data, 1, acc, nbits, pos, marker, eof, short, n_hit)
                                    s = p1 if bit else m1
                                elif r != 15:
                                    eobrun = np.int64(1) << r
                                    if r:
                                        extra, acc, nbits, pos, marker, eof, short, n_hit = \
                                            _bits(data, r, acc, nbits, pos, marker, eof, short,
                                                  n_hit)
                                        eobrun += extra
                                    break
                                # skip r zero coefficients, correcting the nonzero ones
                                while True:
                                    idx = base + natural[k]
                                    if coefs[idx] != 0:
                                        acc, nbits, pos, marker, eof, short, n_hit = \
                                            _refine_bit(coefs, idx, p1, m1, data, acc, nbits,
                                                        pos, marker, eof, short, n_hit)
                                    else:
                                        r -= 1
                                        if r < 0:
                                            break
                                    k += 1
                                    if k > se:
                                        break
                                if s:
                                    coefs[base + natural[k]] = s
                                k += 1
                        if eobrun > 0:
                            while k <= se:
                                idx = base + natural[k]
                                if coefs[idx] != 0:
                                    acc, nbits, pos, marker, eof, short, n_hit = _refine_bit(
                                        coefs, idx, p1, m1, data, acc, nbits, pos, marker, eof,
                                        short, n_hit)
                                k += 1
                            eobrun -= 1
                if stop:
                    break
            if stop:
                break
        done += 1
        if stop or (strict and (n_hit or n_bad or stats[ST_EXTRANEOUS] or stats[ST_RESYNC])):
            break
    _store_stats(stats, pos, marker, eof, n_hit, n_bad, discarded, last_good, done)
    stats[ST_DC_OVERFLOW] = dc_overflow


def new_scan_state(pos: int, restart_interval: int, discarded: int = 0,
                   last_good_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(stats, kstate)`` at the start of a scan whose data begins at ``pos``."""
    stats = np.zeros(NUM_STATS, dtype=np.int64)
    stats[ST_POS] = pos
    stats[ST_DISCARDED] = discarded
    stats[ST_LAST_GOOD_ROW] = last_good_row
    kstate = np.zeros(NUM_KSTATE, dtype=np.int64)
    kstate[KS_RESTARTS] = restart_interval
    return stats, kstate


def decode_scan(data, pos, kind, ss, se, ah, al, restart_interval,
                mcus_per_row, mcu_rows, imcu_div,
                comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac,
                lookup, maxcode, valoffset, huffval, natural, coefs, strict, stats,
                ) -> None:
    """Decode one scan into ``coefs``; return nothing, fill ``stats``.

    Two compiled kernels (sequential, progressive), each compiled on first use.

    Args:
        data: uint8 ``[n]``: the whole file.
        pos: offset of the first entropy-coded byte (just after the SOS header).
        kind: SEQUENTIAL, DC_FIRST, DC_REFINE, AC_FIRST or AC_REFINE.
        ss, se, ah, al: spectral selection and successive approximation.
        restart_interval: MCUs per restart interval (0 = none).
        mcus_per_row, mcu_rows: MCU grid of the scan (blocks for a
            non-interleaved scan).
        imcu_div: MCU rows per iMCU row (v factor for a non-interleaved scan,
            else 1): for libjpeg's ``last_good_iMCU_row``.
        comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac: int64 ``[S]`` per
            component of the scan: offset of its blocks in ``coefs``, blocks
            per row, MCU width/height in blocks (1, 1 if non-interleaved), DC
            and AC table index into the table arrays.
        lookup, maxcode, valoffset, huffval: int32 ``[T, 512]``, ``[T, 18]``,
            ``[T, 18]``, ``[T, 256]`` tables from :func:`derive_table`.
        natural: int64 ``[80]``: :data:`NATURAL_ORDER_EXT`.
        coefs: int16 (libjpeg's JCOEF) or int32, flat: blocks of 64
            natural-order coefficients, pre-zeroed (or holding earlier scans'
            values).
        strict: stop at the first corrupt-data warning.
        stats: int64 ``[NUM_STATS]``: in: ``ST_DISCARDED``,
            ``ST_LAST_GOOD_ROW``; out: everything.
    """
    if kind == SEQUENTIAL:
        start, kstate = new_scan_state(pos, restart_interval, int(stats[ST_DISCARDED]),
                                       int(stats[ST_LAST_GOOD_ROW]))
        stats[:] = start
        decode_sequential_rows(data, kind, ss, se, ah, al, restart_interval, mcus_per_row, 0,
                               mcu_rows, 0, imcu_div, comp_off, comp_bx, comp_h, comp_v,
                               comp_dc, comp_ac, lookup, maxcode, valoffset, huffval, natural,
                               coefs, strict, stats, kstate)
        return
    _decode_progressive(data, pos, kind, ss, se, ah, al, restart_interval, mcus_per_row,
                        mcu_rows, imcu_div, comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac,
                        lookup, maxcode, valoffset, huffval, natural, coefs, strict, stats)


def decode_sequential_rows(data, kind, ss, se, ah, al, restart_interval, mcus_per_row,
                           row_start, row_end, row_origin, imcu_div,
                           comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac,
                           lookup, maxcode, valoffset, huffval, natural, coefs, strict, stats,
                           kstate) -> None:
    """Decode MCU rows ``row_start .. row_end - 1`` of a sequential scan.

    Arguments as :func:`decode_scan`, plus: ``coefs`` holds the blocks of MCU
    rows ``row_origin ...`` (a band); ``stats`` and ``kstate`` (from
    :func:`new_scan_state`) carry the decoder between calls, so a scan can be
    decoded band by band into a small buffer (single-scan files). Stop calling
    once a strict decode has counted a warning.
    """
    i64 = np.int64
    _decode_sequential(data, i64(kind), i64(ss), i64(se), i64(ah), i64(al),
                       i64(restart_interval), i64(mcus_per_row), i64(row_start * mcus_per_row),
                       i64(row_end * mcus_per_row), i64(row_origin), i64(imcu_div),
                       comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac, lookup, maxcode,
                       valoffset, huffval, natural, coefs, bool(strict), stats, kstate)
