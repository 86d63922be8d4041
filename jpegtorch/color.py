"""Stage: colour conversion RGB <-> YCbCr with libjpeg's fixed-point arithmetic
(jccolor.c on the encoder side, jdcolor.c on the decoder side).

Encoder (16 fractional bits, ``FIX(x) = round(x * 65536)``)::

    Y  = (FIX(.299) R + FIX(.587) G + FIX(.114) B + 2**15) >> 16
    Cb = (-FIX(.16874) R - FIX(.33126) G + FIX(.5) B + (128 << 16) + 2**15 - 1) >> 16
    Cr = (FIX(.5) R - FIX(.41869) G - FIX(.08131) B + (128 << 16) + 2**15 - 1) >> 16

Decoder (Y enters with weight exactly 1)::

    R = clamp(Y + ((FIX(1.402) Cr' + 2**15) >> 16))
    G = clamp(Y + ((-FIX(.34414) Cb' - FIX(.71414) Cr' + 2**15) >> 16))
    B = clamp(Y + ((FIX(1.772) Cb' + 2**15) >> 16)),     Cb' = Cb - 128, Cr' = Cr - 128

The matrices are parameters: the defaults are JFIF's, and learnable ones are
turned into libjpeg's fixed-point constants in the exact modes (with a
straight-through gradient in ``ste`` mode).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._arith import clamp, combine, descale, is_exact

SCALEBITS = 16
ONE = 1 << SCALEBITS
ONE_HALF = 1 << (SCALEBITS - 1)

# RGB -> YCbCr (rows Y, Cb, Cr; columns R, G, B)
RGB_TO_YCBCR: tuple[tuple[float, ...], ...] = (
    (0.29900, 0.58700, 0.11400),
    (-0.16874, -0.33126, 0.50000),
    (0.50000, -0.41869, -0.08131),
)
# YCbCr -> RGB: contributions of (Cb - 128, Cr - 128) to (R, G, B); Y has weight 1.
YCBCR_TO_RGB: tuple[tuple[float, ...], ...] = (
    (0.0, 1.40200),
    (-0.34414, -0.71414),
    (1.77200, 0.0),
)


def default_forward_matrix(device: torch.device | None = None,
                           dtype: torch.dtype = torch.float32) -> Tensor:
    """JFIF's RGB->YCbCr matrix, ``[3, 3]``."""
    return torch.tensor(RGB_TO_YCBCR, dtype=dtype, device=device)


def default_inverse_matrix(device: torch.device | None = None,
                           dtype: torch.dtype = torch.float32) -> Tensor:
    """JFIF's chroma-to-RGB matrix, ``[3, 2]`` (columns Cb', Cr')."""
    return torch.tensor(YCBCR_TO_RGB, dtype=dtype, device=device)


def fixed_point(matrix: Tensor, mode: str) -> Tensor:
    """libjpeg's ``FIX()`` of each entry, as ``sign(m) * floor(|m| * 65536 + 0.5)``.

    Returns the constants times 65536 (float64). In ``ste`` mode the rounding
    is straight-through, so a learnable matrix receives gradients.
    """
    scaled = matrix.to(torch.float64) * ONE
    if not is_exact(mode):
        return scaled
    exact = torch.sign(scaled.detach()) * torch.floor(scaled.detach().abs() + 0.5)
    return combine(exact, scaled, mode)


def rgb_to_ycbcr(rgb: Tensor, mode: str, matrix: Tensor | None = None) -> Tensor:
    """RGB -> YCbCr as libjpeg's jccolor.c does it.

    Args:
        rgb: ``[N, 3, H, W]`` samples 0..255 (integer-valued in the exact modes), float.
        mode: arithmetic mode.
        matrix: ``[3, 3]`` conversion matrix (default JFIF's), may require grad.

    Returns:
        ``[N, 3, H, W]`` Y, Cb, Cr samples 0..255 in ``rgb``'s dtype.
    """
    dtype = rgb.dtype
    if matrix is None:
        matrix = default_forward_matrix(rgb.device)
    elif is_exact(mode):
        dtype = torch.float64  # learned constants: keep every sum exact
    fixed = fixed_point(matrix, mode).to(dtype)  # [3, 3] times 65536
    channels = rgb.to(dtype).unbind(1)
    # Y gets +2**15; Cb/Cr get (128 << 16) + 2**15 - 1, as libjpeg's tables do
    biases = (float(ONE_HALF), 128.0 * ONE + ONE_HALF - 1, 128.0 * ONE + ONE_HALF - 1)
    out = [descale(_weighted_sum(fixed[o], channels), SCALEBITS, mode, bias=biases[o])
           if is_exact(mode) else _weighted_sum(fixed[o], channels) / ONE + (128.0 if o else 0.0)
           for o in range(3)]
    return torch.stack(out, dim=1).to(rgb.dtype)


def _weighted_sum(weights: Tensor, channels: tuple[Tensor, ...]) -> Tensor:
    """``sum_k weights[k] * channels[k]`` with element-wise ops (no matmul, so
    TF32 settings can never make the integer sums inexact)."""
    total = channels[0] * weights[0]
    for k in range(1, len(channels)):
        total = total + channels[k] * weights[k]
    return total


def ycbcr_to_rgb(ycc: Tensor, mode: str, matrix: Tensor | None = None) -> Tensor:
    """YCbCr -> RGB as libjpeg's jdcolor.c does it (with its output clamp).

    Args:
        ycc: ``[N, 3, H, W]`` Y, Cb, Cr samples 0..255, float.
        matrix: ``[3, 2]`` chroma contributions (default JFIF's), may require grad.

    Returns:
        ``[N, 3, H, W]`` RGB samples clamped to 0..255.
    """
    dtype = ycc.dtype
    if matrix is None:
        matrix = default_inverse_matrix(ycc.device)
    elif is_exact(mode):
        dtype = torch.float64
    fixed = fixed_point(matrix, mode).to(dtype)  # [3, 2] times 65536
    y, cb, cr = ycc.to(dtype).unbind(1)
    chroma = (cb - 128.0, cr - 128.0)
    out = [clamp(y + descale(_weighted_sum(fixed[o], chroma), SCALEBITS, mode, bias=ONE_HALF),
                 0.0, 255.0, mode) for o in range(3)]
    return torch.stack(out, dim=1).to(ycc.dtype)
