"""Arithmetic entropy decoding of JPEG scans (SOF9 sequential, SOF10 progressive).

The QM-coder of ITU-T T.81 Annex D with the statistics models of Annex F.1.4.4
(F.2.4 for decoding), following libjpeg-turbo's ``jdarith.c`` exactly: the
same conditioning (DAC parameters L, U, Kx), the same treatment of markers met
inside the data (they are legal: zeros are read from there on), the same
reaction to impossible codes (a "bad arithmetic code" warning and the rest of
the restart interval left as it is) and 16-bit ``JCOEF`` storage.

One numba kernel, :func:`decode_scan_arith`, with the same calling convention
and statistics array as :func:`jpegtorch.formats.huffman_decode.decode_scan`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .huffman_decode import (
    AC_FIRST,
    AC_REFINE,
    DC_FIRST,
    DC_REFINE,
    SEQUENTIAL,
    ST_BAD_CODE,
    ST_DISCARDED,
    ST_EOF,
    ST_EXTRANEOUS,
    ST_LAST_GOOD_ROW,
    ST_MARKER,
    ST_MCUS_DONE,
    ST_POS,
    ST_RESYNC,
    read_restart_marker,
)

__all__ = ["ArithScanState", "decode_rows_arith", "decode_scan_arith"]

# T.81 Table D.2 (probability estimation state machine): Qe, Next_Index_LPS,
# Next_Index_MPS, Switch_MPS for states 0..112, plus state 113: the fixed
# probability 0.5 of T.851 Table 5 (sign bits and DC/AC refinement bits).
_QE = (
    0x5A1D, 0x2586, 0x1114, 0x080B, 0x03D8, 0x01DA, 0x00E5, 0x006F, 0x0036, 0x001A,
    0x000D, 0x0006, 0x0003, 0x0001, 0x5A7F, 0x3F25, 0x2CF2, 0x207C, 0x17B9, 0x1182,
    0x0CEF, 0x09A1, 0x072F, 0x055C, 0x0406, 0x0303, 0x0240, 0x01B1, 0x0144, 0x00F5,
    0x00B7, 0x008A, 0x0068, 0x004E, 0x003B, 0x002C, 0x5AE1, 0x484C, 0x3A0D, 0x2EF1,
    0x261F, 0x1F33, 0x19A8, 0x1518, 0x1177, 0x0E74, 0x0BFB, 0x09F8, 0x0861, 0x0706,
    0x05CD, 0x04DE, 0x040F, 0x0363, 0x02D4, 0x025C, 0x01F8, 0x01A4, 0x0160, 0x0125,
    0x00F6, 0x00CB, 0x00AB, 0x008F, 0x5B12, 0x4D04, 0x412C, 0x37D8, 0x2FE8, 0x293C,
    0x2379, 0x1EDF, 0x1AA9, 0x174E, 0x1424, 0x119C, 0x0F6B, 0x0D51, 0x0BB6, 0x0A40,
    0x5832, 0x4D1C, 0x438E, 0x3BDD, 0x34EE, 0x2EAE, 0x299A, 0x2516, 0x5570, 0x4CA9,
    0x44D9, 0x3E22, 0x3824, 0x32B4, 0x2E17, 0x56A8, 0x4F46, 0x47E5, 0x41CF, 0x3C3D,
    0x375E, 0x5231, 0x4C0F, 0x4639, 0x415E, 0x5627, 0x50E7, 0x4B85, 0x5597, 0x504F,
    0x5A10, 0x5522, 0x59EB, 0x5A1D,
)  # fmt: skip
_NLPS = (
    1, 14, 16, 18, 20, 23, 25, 28, 30, 33, 35, 9, 10, 12, 15, 36, 38, 39, 40, 42,
    43, 45, 46, 48, 49, 51, 52, 54, 56, 57, 59, 60, 62, 63, 32, 33, 37, 64, 65, 67,
    68, 69, 70, 72, 73, 74, 75, 77, 78, 79, 48, 50, 50, 51, 52, 53, 54, 55, 56, 57,
    58, 59, 61, 61, 65, 80, 81, 82, 83, 84, 86, 87, 87, 72, 72, 74, 74, 75, 77, 77,
    80, 88, 89, 90, 91, 92, 93, 86, 88, 95, 96, 97, 99, 99, 93, 95, 101, 102, 103, 104,
    99, 105, 106, 107, 103, 105, 108, 109, 110, 111, 110, 112, 112, 113,
)  # fmt: skip
_NMPS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 15, 16, 17, 18, 19, 20,
    21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 9, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
    61, 62, 63, 32, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 48,
    81, 82, 83, 84, 85, 86, 87, 71, 89, 90, 91, 92, 93, 94, 86, 96, 97, 98, 99, 100,
    93, 102, 103, 104, 99, 106, 107, 103, 109, 107, 111, 109, 111, 113,
)  # fmt: skip
_SWITCH = frozenset((0, 14, 36, 64, 80, 88, 95, 105, 110, 112))
FIXED_STATE = 113
# bit length of 0..255, for the renormalization's shift count
_BIT_LENGTH = np.array([int(i).bit_length() for i in range(256)], dtype=np.int64)
FIXED_ROW = 32  # the row of the statistics bins holding the fixed state

# packed as libjpeg packs it: Qe << 16 | Next_MPS << 8 | Switch << 7 | Next_LPS
ARITAB = np.array([(qe << 16) | (nm << 8) | ((i in _SWITCH) << 7) | nl
                   for i, (qe, nl, nm) in enumerate(zip(_QE, _NLPS, _NMPS, strict=True))],
                  dtype=np.int64)

# indices of the arithmetic decoder state vector
_C, _A, _CT, _POS, _MARKER, _EOF = 0, 1, 2, 3, 4, 5


@njit(cache=True, nogil=True)
def _renormalize(data, state, c, a, ct):  # pragma: no cover - compiled
    """Renormalization and data input (T.81 D.2.6; libjpeg's loop at the top of
    ``arith_decode``): shift ``A`` (and the code register ``C``) until
    ``A >= 0x8000``, reading bytes as needed; returns ``(c, a, ct)``. Kept out
    of line: with well-predicted decisions it runs rarely, and the inline part
    of :func:`_decide` stays small. The byte reader's position, marker and
    end-of-data flag live in ``state``. Shifts that need no new byte are made
    at once (a table of bit lengths), not one bit per iteration."""
    while a < 0x8000:
        if a > 0 and ct > 0:  # shift as far as possible without reading a byte
            top = a >> 8
            need = 8 - _BIT_LENGTH[top] if top else 16 - _BIT_LENGTH[a]
            if need > ct:
                need = ct
            a <<= need
            ct -= need
            continue
        ct -= 1
        if ct < 0:
            byte = np.int64(0)
            if state[_MARKER] == 0:
                pos = state[_POS]
                n = data.shape[0]
                if pos >= n:
                    state[_MARKER] = 0xD9  # libjpeg's fake EOI at the end of the data
                    state[_EOF] = 1
                else:
                    byte = np.int64(data[pos])
                    pos += 1
                    if byte == 0xFF:
                        while True:
                            if pos >= n:
                                byte = np.int64(0xD9)
                                state[_EOF] = 1
                                break
                            byte = np.int64(data[pos])
                            pos += 1
                            if byte != 0xFF:
                                break
                        if byte == 0:
                            byte = np.int64(0xFF)
                        else:  # a marker: legal here; zeros from now on
                            state[_MARKER] = byte
                            byte = np.int64(0)
                    state[_POS] = pos
            c = (c << 8) | byte
            ct += 8
            if ct < 0:
                ct += 1
                if ct == 0:
                    a = np.int64(0x8000)  # got the two initial bytes
        a <<= 1
    return c, a, ct


@njit(inline="always")
def _decide(data, state, bins, row, index, aritab, c, a, ct):  # pragma: no cover - compiled
    """Decode one binary decision with the adaptive context ``bins[row, index]``.

    The coder's registers travel as ``(c, a, ct)`` (locals of the kernel, kept
    in machine registers): returns ``(bit, c, a, ct)``.
    """
    if a < 0x8000:
        c, a, ct = _renormalize(data, state, c, a, ct)
    sv = np.int64(bins[row, index])
    entry = aritab[sv & 0x7F]
    qe = entry >> 16
    a -= qe
    temp = a << ct
    if c >= temp:
        c -= temp
        if a < qe:  # conditional exchange
            bins[row, index] = (sv & 0x80) ^ ((entry >> 8) & 0xFF)
        else:
            bins[row, index] = (sv & 0x80) ^ (entry & 0xFF)
            sv ^= 0x80
        a = qe
    elif a < 0x8000:
        if a < qe:
            bins[row, index] = (sv & 0x80) ^ (entry & 0xFF)
            sv ^= 0x80
        else:
            bins[row, index] = (sv & 0x80) ^ ((entry >> 8) & 0xFF)
    return sv >> 7, c, a, ct


# indices of the kernel state of a resumable scan (beside the coder's state vector)
AS_RESTARTS = 0  # MCUs left in the restart interval
AS_NEXT_RST = 1  # the next RSTn expected
AS_LAST_DC = 2  # 4 DC predictions
AS_DC_CONTEXT = 6  # 4 DC conditioning contexts
NUM_ASTATE = 10


class ArithScanState:
    """Everything the arithmetic decoder carries from one band of a scan to the next."""

    def __init__(self, pos: int, restart_interval: int, discarded: int = 0,
                 last_good_row: int = 0) -> None:
        from .huffman_decode import NUM_STATS

        self.stats = np.zeros(NUM_STATS, dtype=np.int64)
        self.stats[ST_DISCARDED] = discarded
        self.stats[ST_LAST_GOOD_ROW] = last_good_row
        self.coder = np.zeros(6, dtype=np.int64)
        self.coder[_POS] = pos
        self.coder[_CT] = -16
        # statistics bins: rows 0..15 DC tables, 16..31 AC tables, FIXED_ROW the
        # fixed probability 0.5 (sign and refinement bits)
        self.bins = np.zeros((FIXED_ROW + 1, 256), dtype=np.uint8)
        self.bins[FIXED_ROW, 0] = FIXED_STATE
        self.kst = np.zeros(NUM_ASTATE, dtype=np.int64)
        self.kst[AS_RESTARTS] = restart_interval


def decode_scan_arith(data, pos, kind, ss, se, ah, al, restart_interval,
                      mcus_per_row, mcu_rows, imcu_div,
                      comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac,
                      dc_l, dc_u, ac_k, natural, coefs, strict, stats,
                      ) -> None:
    """Decode one arithmetic-coded scan into ``coefs``; fill ``stats``.

    Arguments as :func:`jpegtorch.formats.huffman_decode.decode_scan`, except
    that ``comp_dc``/``comp_ac`` are conditioning-table numbers (0..15) and
    ``dc_l``, ``dc_u``, ``ac_k`` (int64 ``[16]``) the DAC parameters.
    """
    st = ArithScanState(int(pos), int(restart_interval), int(stats[ST_DISCARDED]),
                        int(stats[ST_LAST_GOOD_ROW]))
    decode_rows_arith(data, kind, ss, se, ah, al, restart_interval, mcus_per_row, 0, mcu_rows,
                      0, imcu_div, comp_off, comp_bx, comp_h, comp_v, comp_dc, comp_ac, dc_l,
                      dc_u, ac_k, natural, coefs, strict, st)
    stats[:] = st.stats


def decode_rows_arith(data, kind, ss, se, ah, al, restart_interval, mcus_per_row, row_start,
                      row_end, row_origin, imcu_div, comp_off, comp_bx, comp_h, comp_v,
                      comp_dc, comp_ac, dc_l, dc_u, ac_k, natural, coefs, strict,
                      state: ArithScanState) -> None:
    """Decode MCU rows ``row_start .. row_end - 1`` of a scan into ``coefs``,
    which holds the blocks of MCU rows ``row_origin ...``; ``state`` carries
    the decoder between calls (and its ``stats`` the outcome)."""
    i64 = np.int64
    _decode_arith(data, i64(kind), i64(ss), i64(se), i64(ah), i64(al), i64(restart_interval),
                  i64(mcus_per_row), i64(row_start * mcus_per_row), i64(row_end * mcus_per_row),
                  i64(row_origin), i64(imcu_div), comp_off, comp_bx, comp_h, comp_v, comp_dc,
                  comp_ac, dc_l, dc_u, ac_k, natural, coefs, bool(strict), state.stats,
                  state.coder, state.bins, state.kst)


@njit(cache=True, nogil=True)
def _decode_arith(data, kind, ss, se, ah, al, restart_interval, mcus_per_row, mcu_start,
                  mcu_end, row_origin, imcu_div, comp_off, comp_bx, comp_h, comp_v, comp_dc,
                  comp_ac, dc_l, dc_u, ac_k, natural, coefs, strict, stats, state, bins,
                  kst):  # pragma: no cover - compiled
    """The kernel of :func:`decode_rows_arith`."""
    aritab = ARITAB
    n_comp = comp_off.shape[0]
    last_dc = kst[AS_LAST_DC:AS_LAST_DC + 4]
    dc_context = kst[AS_DC_CONTEXT:AS_DC_CONTEXT + 4]
    restarts_to_go = kst[AS_RESTARTS]
    next_rst = kst[AS_NEXT_RST]
    discarded = stats[ST_DISCARDED]
    p1 = np.int64(1) << al
    m1 = -p1
    n_bad = stats[ST_BAD_CODE]
    eof = stats[ST_EOF]
    done = stats[ST_MCUS_DONE]
    c = state[_C]
    a = state[_A]
    ct = state[_CT]
    for mcu in range(mcu_start, mcu_end):
        mrow = mcu // mcus_per_row
        mcol = mcu - mrow * mcus_per_row
        stats[ST_LAST_GOOD_ROW] = mrow // imcu_div
        if restart_interval > 0:
            if restarts_to_go == 0:
                marker, p, discarded, e = read_restart_marker(
                    data, state[_POS], state[_MARKER], next_rst, discarded, stats)
                state[_POS] = p
                state[_MARKER] = marker
                eof |= e
                next_rst = (next_rst + 1) & 7
                for ci in range(n_comp):
                    if kind == SEQUENTIAL or kind == DC_FIRST:
                        bins[comp_dc[ci], :] = 0
                        last_dc[ci] = 0
                        dc_context[ci] = 0
                    if kind == SEQUENTIAL or kind == AC_FIRST or kind == AC_REFINE:
                        bins[16 + comp_ac[ci], :] = 0
                c = np.int64(0)
                a = np.int64(0)
                ct = np.int64(-16)
                restarts_to_go = restart_interval
                if strict and (stats[ST_EXTRANEOUS] or stats[ST_RESYNC] or eof):
                    break
            restarts_to_go -= 1
        done += 1
        if ct == -1 and kind != DC_REFINE:
            continue  # after a bad code, nothing until the next restart
        bad = False
        for ci in range(n_comp):
            bx = comp_bx[ci]
            hh = comp_h[ci]
            vv = comp_v[ci]
            dtab = comp_dc[ci]
            arow = 16 + comp_ac[ci]
            for yy in range(vv):
                for xx in range(hh):
                    base = comp_off[ci] + (((mrow - row_origin) * vv + yy) * bx
                                           + mcol * hh + xx) * 64
                    if kind == DC_REFINE:
                        bit, c, a, ct = _decide(data, state, bins, FIXED_ROW, 0, aritab, c, a, ct)
                        if bit:
                            v = coefs[base] | p1
                            coefs[base] = ((v + 32768) & 0xFFFF) - 32768
                        continue
                    if kind == SEQUENTIAL or kind == DC_FIRST:
                        s0 = dc_context[ci]
                        bit, c, a, ct = _decide(data, state, bins, dtab, s0, aritab, c, a, ct)
                        if bit == 0:
                            dc_context[ci] = 0
                        else:
                            sign, c, a, ct = _decide(data, state, bins, dtab, s0 + 1, aritab,
                                                     c, a, ct)
                            st = s0 + 2 + sign
                            m, c, a, ct = _decide(data, state, bins, dtab, st, aritab, c, a, ct)
                            if m != 0:
                                st = 20
                                while True:
                                    bit, c, a, ct = _decide(data, state, bins, dtab, st, aritab,
                                                            c, a, ct)
                                    if bit == 0:
                                        break
                                    m <<= 1
                                    if m == 0x8000:
                                        bad = True
                                        break
                                    st += 1
                            if bad:
                                break
                            if m < ((1 << dc_l[dtab]) >> 1):
                                dc_context[ci] = 0
                            elif m > ((1 << dc_u[dtab]) >> 1):
                                dc_context[ci] = 12 + sign * 4
                            else:
                                dc_context[ci] = 4 + sign * 4
                            v = m
                            st += 14
                            m >>= 1
                            while m:
                                bit, c, a, ct = _decide(data, state, bins, dtab, st, aritab,
                                                        c, a, ct)
                                if bit:
                                    v |= m
                                m >>= 1
                            v += 1
                            if sign:
                                v = -v
                            last_dc[ci] = (last_dc[ci] + v) & 0xFFFF
                        v = last_dc[ci] << al if kind == DC_FIRST else last_dc[ci]
                        coefs[base] = ((v + 32768) & 0xFFFF) - 32768
                        if kind == DC_FIRST:
                            continue
                    if kind == SEQUENTIAL or kind == AC_FIRST:
                        k = np.int64(1) if kind == SEQUENTIAL else ss
                        kend = np.int64(63) if kind == SEQUENTIAL else se
                        while k <= kend:
                            st = 3 * (k - 1)
                            bit, c, a, ct = _decide(data, state, bins, arow, st, aritab, c, a, ct)
                            if bit:
                                break  # end of block
                            while True:
                                bit, c, a, ct = _decide(data, state, bins, arow, st + 1, aritab,
                                                        c, a, ct)
                                if bit != 0:
                                    break
                                st += 3
                                k += 1
                                if k > kend:
                                    bad = True
                                    break
                            if bad:
                                break
                            sign, c, a, ct = _decide(data, state, bins, FIXED_ROW, 0, aritab,
                                                     c, a, ct)
                            st += 2
                            m, c, a, ct = _decide(data, state, bins, arow, st, aritab, c, a, ct)
                            if m != 0:
                                bit, c, a, ct = _decide(data, state, bins, arow, st, aritab,
                                                        c, a, ct)
                                if bit:
                                    m <<= 1
                                    st = 189 if k <= ac_k[arow - 16] else 217
                                    while True:
                                        bit, c, a, ct = _decide(data, state, bins, arow, st,
                                                                aritab, c, a, ct)
                                        if bit == 0:
                                            break
                                        m <<= 1
                                        if m == 0x8000:
                                            bad = True
                                            break
                                        st += 1
                                    if bad:
                                        break
                            v = m
                            st += 14
                            m >>= 1
                            while m:
                                bit, c, a, ct = _decide(data, state, bins, arow, st, aritab,
                                                        c, a, ct)
                                if bit:
                                    v |= m
                                m >>= 1
                            v += 1
                            if sign:
                                v = -v
                            if kind == AC_FIRST:
                                v = v << al
                            coefs[base + natural[k]] = ((v + 32768) & 0xFFFF) - 32768
                            k += 1
                    else:  # AC_REFINE
                        kex = se
                        while kex > 0:
                            if coefs[base + natural[kex]] != 0:
                                break
                            kex -= 1
                        k = ss
                        while k <= se:
                            st = 3 * (k - 1)
                            if k > kex:
                                bit, c, a, ct = _decide(data, state, bins, arow, st, aritab,
                                                        c, a, ct)
                                if bit:
                                    break
                            while True:
                                idx = base + natural[k]
                                cv = coefs[idx]
                                if cv != 0:
                                    bit, c, a, ct = _decide(data, state, bins, arow, st + 2,
                                                            aritab, c, a, ct)
                                    if bit:
                                        cv = cv + m1 if cv < 0 else cv + p1
                                        coefs[idx] = ((cv + 32768) & 0xFFFF) - 32768
                                    break
                                bit, c, a, ct = _decide(data, state, bins, arow, st + 1, aritab,
                                                        c, a, ct)
                                if bit:
                                    bit, c, a, ct = _decide(data, state, bins, FIXED_ROW, 0,
                                                            aritab, c, a, ct)
                                    coefs[idx] = m1 if bit else p1
                                    break
                                st += 3
                                k += 1
                                if k > se:
                                    bad = True
                                    break
                            if bad:
                                break
                            k += 1
                    if bad:
                        break
                if bad:
                    break
            if bad:
                break
        if bad:
            n_bad += 1
            ct = np.int64(-1)  # libjpeg: skip the rest of the restart interval
            if strict:
                break
    state[_C] = c
    state[_A] = a
    state[_CT] = ct
    stats[ST_POS] = state[_POS]
    stats[ST_MARKER] = state[_MARKER]
    stats[ST_EOF] = state[_EOF] | eof
    stats[ST_BAD_CODE] = n_bad
    stats[ST_DISCARDED] = discarded
    stats[ST_MCUS_DONE] = done
    kst[AS_RESTARTS] = restarts_to_go
    kst[AS_NEXT_RST] = next_rst
