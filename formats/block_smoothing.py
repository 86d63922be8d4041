"""libjpeg's inter-block smoothing of incompletely coded progressive JPEGs.

When a progressive file ends with some of the low-frequency AC coefficients
(zigzag 1..9) not fully known -- scans missing, or successive approximation
never refined to bit 0 -- libjpeg-turbo (``jdcoefct.c``,
``decompress_smooth_data``; on by default, so also in Pillow) estimates them
from the DC values of the 5x5 neighbouring blocks before the IDCT. When no AC
coefficient is known at all it also re-estimates the DC. This is a
coefficient-domain step specific to decoding files, so it lives with the
reader; the pixel pipeline then decodes the smoothed coefficients.

Pure numpy, vectorised over the blocks of a component.
"""

from __future__ import annotations

import numpy as np

SAVED_COEFS = 10
# natural positions of zigzag coefficients 1..9
_POS = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24)


def smoothing_useful(coef_bits: np.ndarray, qtables: np.ndarray, latched: list[bool]) -> bool:
    """libjpeg's ``smoothing_ok``: whether block smoothing applies at all.

    Args:
        coef_bits: ``[C, 64]`` int, the successive-approximation bit each
            coefficient was last coded to (-1 = never).
        qtables: ``[C, 64]`` natural-order quantization tables.
        latched: per component, whether its table was latched by a scan.
    """
    useful = False
    for c in range(coef_bits.shape[0]):
        if not latched[c]:
            return False
        if any(int(qtables[c, p]) == 0 for p in _POS):
            return False
        if coef_bits[c, 0] < 0:
            return False
        if (coef_bits[c, 1:SAVED_COEFS] != 0).any():
            useful = True
    return useful


def _predict(num: np.ndarray, q: int, al: int) -> np.ndarray:
    q7 = q << 7
    q8 = q << 8
    pos = (q7 + num) // q8
    neg = (q7 - num) // q8
    if al > 0:
        cap = (1 << al) - 1
        pos = np.minimum(pos, cap)
        neg = np.minimum(neg, cap)
    return np.where(num >= 0, pos, -neg)


def _smooth_rows(blocks: np.ndarray, dc: np.ndarray, rows: np.ndarray, prev: np.ndarray,
                 prev2: np.ndarray, nxt: np.ndarray, nxt2: np.ndarray, wib: int,
                 qtable: np.ndarray, bits: np.ndarray) -> None:
    """Smooth the given block rows of ``blocks`` (``[by, bx, 64]``) in place."""
    cols = np.arange(wib)
    cidx = [np.clip(cols + d, 0, wib - 1) for d in (-2, -1, 0, 1, 2)]
    row_sets = (prev2, prev, rows, nxt, nxt2)
    # DC[i][j]: libjpeg's DC(5*i + j + 1), i = row offset -2..2, j = column offset -2..2
    dcv = [[dc[r][:, cidx[j]] for j in range(5)] for r in row_sets]
    (d01, d02, d03, d04, d05), (d06, d07, d08, d09, d10), (d11, d12, d13, d14, d15), \
        (d16, d17, d18, d19, d20), (d21, d22, d23, d24, d25) = dcv
    change_dc = bool((bits[1:SAVED_COEFS] == -1).all())
    q = [int(qtable[p]) for p in _POS]
    q00 = q[0]
    work = blocks[rows][:, :wib].astype(np.int64)  # [R, wib, 64]
    orig = work.copy()
    if change_dc:
        exprs = {
            1: (-d01 - d02 + d04 + d05 - 3 * d06 + 13 * d07 - 13 * d09 + 3 * d10
                - 3 * d11 + 38 * d12 - 38 * d14 + 3 * d15 - 3 * d16 + 13 * d17
                - 13 * d19 + 3 * d20 - d21 - d22 + d24 + d25),
            2: (-d01 - 3 * d02 - 3 * d03 - 3 * d04 - d05 - d06 + 13 * d07 + 38 * d08
                + 13 * d09 - d10 + d16 - 13 * d17 - 38 * d18 - 13 * d19 + d20 + d21
                + 3 * d22 + 3 * d23 + 3 * d24 + d25),
            3: (d03 + 2 * d07 + 7 * d08 + 2 * d09 - 5 * d12 - 14 * d13 - 5 * d14
                + 2 * d17 + 7 * d18 + 2 * d19 + d23),
            4: (-d01 + d05 + 9 * d07 - 9 * d09 - 9 * d17 + 9 * d19 + d21 - d25),
            5: (2 * d07 - 5 * d08 + 2 * d09 + d11 + 7 * d12 - 14 * d13 + 7 * d14
                + d15 + 2 * d17 - 5 * d18 + 2 * d19),
            6: (d07 - d09 + 2 * d12 - 2 * d14 + d17 - d19),
            7: (d07 - 3 * d08 + d09 - d17 + 3 * d18 - d19),
            8: (d07 - d09 - 3 * d12 + 3 * d14 + d17 - d19),
            9: (d07 + 2 * d08 + d09 - d17 - 2 * d18 - d19),
        }
    else:
        exprs = {
            1: (-7 * d11 + 50 * d12 - 50 * d14 + 7 * d15),
            2: (-7 * d03 + 50 * d08 - 50 * d18 + 7 * d23),
            3: (-d03 + 13 * d08 - 24 * d13 + 13 * d18 - d23),
            4: (d10 + d16 - 10 * d17 + 10 * d19 - d02 - d20 + d22 - d24 + d04 - d06
                + 10 * d07 - 10 * d09),
            5: (-d11 + 13 * d12 - 24 * d13 + 13 * d14 - d15),
        }
    for k, expr in exprs.items():
        al = int(bits[k])
        if al == 0:
            continue
        p = _POS[k]
        pred = _predict(q00 * expr, q[k], al)
        work[..., p] = np.where(orig[..., p] == 0, pred, orig[..., p])
    if change_dc:
        num = q00 * (-2 * d01 - 6 * d02 - 8 * d03 - 6 * d04 - 2 * d05 - 6 * d06 + 6 * d07
                     + 42 * d08 + 6 * d09 - 6 * d10 - 8 * d11 + 42 * d12 + 152 * d13
                     + 42 * d14 - 8 * d15 - 6 * d16 + 6 * d17 + 42 * d18 + 6 * d19
                     - 6 * d20 - 2 * d21 - 6 * d22 - 8 * d23 - 6 * d24 - 2 * d25)
        work[..., 0] = _predict(num, q00, 0)
    work = ((work + 32768) & 0xFFFF) - 32768  # JCOEF
    sub = blocks[rows]
    sub[:, :wib] = work
    blocks[rows] = sub


ROWS_PER_STEP = 16
"""Block rows smoothed per vectorised step (bounds the int64 temporaries)."""


def smooth_component(blocks: np.ndarray, qtable: np.ndarray, bits: np.ndarray,
                     prev_bits: np.ndarray, last_good_row: int, v_samp: int,
                     total_imcu_rows: int, height_in_blocks: int,
                     width_in_blocks: int, *, inplace: bool = False) -> np.ndarray:
    """One component's blocks smoothed as libjpeg's output pass does it.

    Each block's estimate reads only its own coefficients and its neighbours'
    DC values (kept aside first), so the blocks can be smoothed in place; the
    work goes ``ROWS_PER_STEP`` block rows at a time, so the temporaries stay
    small whatever the image size.

    Args:
        blocks: int16 (libjpeg's JCOEF) or int32 ``[by, bx, 64]``
            natural-order coefficients (the padded grid; dummy blocks are used
            as neighbours exactly where libjpeg uses them).
        qtable: ``[64]`` natural-order quantization table.
        bits: ``[10]`` latched ``coef_bits`` of zigzag coefficients 0..9.
        prev_bits: ``[10]`` the same before the last scan (used for iMCU rows
            after ``last_good_row``, where the last scan ran out of data).
        last_good_row: libjpeg's ``last_good_iMCU_row``.
        v_samp, total_imcu_rows, height_in_blocks, width_in_blocks: geometry.

        inplace: smooth ``blocks`` itself instead of a copy.

    Returns:
        ``[by, bx, 64]``, ``blocks``' dtype (``blocks`` itself when in place).
    """
    out = blocks if inplace else blocks.copy()
    dc = blocks[..., 0].astype(np.int64)
    hib, wib, v, t = height_in_blocks, width_in_blocks, v_samp, total_imcu_rows
    last = t - 1
    y = np.arange(hib)
    big_r = y // v
    br = y - big_r * v
    tail = hib % v or v
    block_rows = np.where(big_r < last, v, tail)
    ib_row = big_r * block_rows + br
    ib_rows = block_rows * t
    prev = np.where(ib_row > 0, y - 1, y)
    prev2 = np.where(ib_row > 1, y - 2, prev)
    nxt = np.where(ib_row < ib_rows - 1, y + 1, y)
    nxt2 = np.where(ib_row < ib_rows - 2, y + 2, nxt)
    for use_prev in (False, True):
        mask = (big_r > last_good_row) if use_prev else (big_r <= last_good_row)
        if not mask.any():
            continue
        row_bits = prev_bits if use_prev else bits
        if not (row_bits[1:SAVED_COEFS] != 0).any():
            continue  # every low-frequency coefficient is exact: nothing to estimate
        rows, p1, p2, n1, n2 = y[mask], prev[mask], prev2[mask], nxt[mask], nxt2[mask]
        for i in range(0, rows.shape[0], ROWS_PER_STEP):
            step = slice(i, i + ROWS_PER_STEP)
            _smooth_rows(out, dc, rows[step], p1[step], p2[step], n1[step], n2[step], wib,
                         qtable, row_bits)
    return out
