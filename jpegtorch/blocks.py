"""Stage: padding to whole blocks/MCUs, 8×8 blocking, and cropping back.

The encoder pads like libjpeg-turbo: each full-resolution plane is extended
by edge replication to the width its down-sampler reads
(``width_in_blocks * 8 * hexp``) and to whole row groups (``vmax`` rows);
after down-sampling, the last sample row is replicated to whole blocks.
Blocks that an interleaved MCU needs beyond the component's own blocks are
libjpeg's *dummy blocks*: all-zero AC, with the DC of the neighbouring real
block (jccoefct.c). The decoder crops each component back to its own size.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def replicate_pad(plane: Tensor, height: int, width: int) -> Tensor:
    """Extend (or crop) ``[N, H, W]`` to ``[N, height, width]`` by edge replication."""
    h, w = plane.shape[-2:]
    if width != w:
        idx = torch.arange(width, device=plane.device).clamp(max=w - 1)
        plane = plane.index_select(-1, idx)
    if height != h:
        idx = torch.arange(height, device=plane.device).clamp(max=h - 1)
        plane = plane.index_select(-2, idx)
    return plane


def blockify(plane: Tensor) -> Tensor:
    """``[N, 8*by, 8*bx]`` -> ``[N, by, bx, 8, 8]``."""
    n, h, w = plane.shape
    return plane.reshape(n, h // 8, 8, w // 8, 8).transpose(2, 3)


def unblockify(blocks: Tensor) -> Tensor:
    """``[N, by, bx, 8, 8]`` -> ``[N, 8*by, 8*bx]``."""
    n, by, bx = blocks.shape[:3]
    return blocks.transpose(2, 3).reshape(n, by * 8, bx * 8)


def add_dummy_blocks(blocks: Tensor, rows: int, cols: int, h: int) -> Tensor:
    """Extend a component's real blocks to its full MCU grid as libjpeg does.

    Args:
        blocks: ``[N, hib, wib, 8, 8]`` quantized coefficients of real blocks.
        rows, cols: the MCU grid size in blocks (``mcu_rows * v``, ``mcu_cols * h``).
        h: the component's horizontal sampling factor (blocks per MCU row).

    Returns:
        ``[N, rows, cols, 8, 8]``: dummy blocks to the right copy the DC of the
        last real block of their row; dummy block rows at the bottom copy the
        DC of the last block of the row above within their MCU.
    """
    n, hib, wib = blocks.shape[:3]
    if cols == wib and rows == hib:
        return blocks
    dc_mask = torch.zeros(8, 8, dtype=blocks.dtype, device=blocks.device)
    dc_mask[0, 0] = 1
    if cols > wib:
        last_dc = blocks[:, :, wib - 1 : wib, 0, 0]  # [N, hib, 1]
        dummy = last_dc.expand(n, hib, cols - wib)[..., None, None] * dc_mask
        blocks = torch.cat([blocks, dummy], dim=2)
    if rows > hib:
        mcu_last = blocks[:, hib - 1, h - 1 :: h, 0, 0]  # [N, mcu_cols]: last block of each MCU
        dc = mcu_last.repeat_interleave(h, dim=1)  # [N, cols]
        dummy = dc[:, None, :, None, None].expand(n, rows - hib, cols, 1, 1) * dc_mask
        blocks = torch.cat([blocks, dummy], dim=1)
    return blocks
