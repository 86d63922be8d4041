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

from ._arith import combine, is_exact

# libjpeg's constants and JFIF's matrices: defined once, beside the compiled kernels
from .kernels.color import FORWARD_BIAS, ONE, ONE_HALF, RGB_TO_YCBCR, YCBCR_TO_RGB


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


# rounding constants: Y gets +2**15; Cb/Cr get (128 << 16) + 2**15 - 1 (jccolor.c)
_FORWARD_BIAS = tuple(float(b) for b in FORWARD_BIAS)


def _weighted_planes(planes: list[Tensor], fixed: list[list[float]], bias: list[float],
                     out: Tensor, exact: bool) -> Tensor:
    """``out[:, o] = (sum_k fixed[o][k] * planes[k] + bias[o]) / 65536`` (floored
    when ``exact``: libjpeg's ``>> 16``), computed in place with element-wise ops:
    no temporaries, and no matmul, so TF32 settings can never make the integer
    sums inexact."""
    inv = 1.0 / ONE
    for o in range(out.shape[1]):
        view = out[:, o]
        torch.mul(planes[0], fixed[o][0], out=view)
        for k in range(1, len(planes)):
            view.add_(planes[k], alpha=fixed[o][k])
        if bias[o]:
            view.add_(bias[o])
        view.mul_(inv)
        if exact:
            view.floor_()
    return out


def _empty_planes(like: Tensor, channels: int) -> Tensor:
    n, _, h, w = like.shape
    return torch.empty((n, channels, h, w), dtype=like.dtype, device=like.device)


def _forward_exact(rgb: Tensor, fixed: Tensor) -> Tensor:
    return _weighted_planes(list(rgb.unbind(1)), fixed.tolist(), list(_FORWARD_BIAS),
                            _empty_planes(rgb, 3), True)


def _inverse_exact(ycc: Tensor, fixed: Tensor) -> Tensor:
    y, cb, cr = ycc.unbind(1)
    out = _weighted_planes([cb - 128.0, cr - 128.0], fixed.tolist(), [float(ONE_HALF)] * 3,
                           _empty_planes(ycc, 3), True)
    return out.add_(y[:, None]).clamp_(0.0, 255.0)


def _exact_in_float32(fixed: Tensor, max_input: float, bias: tuple[float, ...]) -> bool:
    """Whether every partial sum of ``fixed @ x + bias`` (|x| <= max_input) stays
    below 2**24, so that float32 computes it exactly."""
    f = fixed.detach().double()
    positive = f.clamp(min=0).sum(1) * max_input + torch.tensor(bias, dtype=torch.float64,
                                                                  device=f.device)
    negative = f.clamp(max=0).sum(1).abs() * max_input
    return bool(torch.maximum(positive, negative).max() < 2**24)


class _StraightForwardColor(torch.autograd.Function):
    """Exact RGB->YCbCr forward; the real-valued matrix's gradient backward."""

    @staticmethod
    def forward(ctx, rgb: Tensor, fixed: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(rgb if ctx.needs_input_grad[1] else None, fixed)
        return _forward_exact(rgb, fixed.detach())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        rgb, fixed = ctx.saved_tensors
        grad_rgb = None
        if ctx.needs_input_grad[0]:  # the transposed matrix, applied plane by plane
            grad_rgb = _weighted_planes(list(grad.unbind(1)), fixed.T.tolist(), [0.0] * 3,
                                        _empty_planes(grad, 3), False)
        grad_fixed = None
        if ctx.needs_input_grad[1]:
            grad_fixed = (torch.einsum("nohw,nkhw->ok", grad, rgb.to(grad.dtype)) / ONE).to(
                fixed.dtype)
        return grad_rgb, grad_fixed


class _StraightInverseColor(torch.autograd.Function):
    """Exact YCbCr->RGB (with clamp) forward; the real-valued map's gradient
    (straight through the clamp) backward."""

    @staticmethod
    def forward(ctx, ycc: Tensor, fixed: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(ycc if ctx.needs_input_grad[1] else None, fixed)
        return _inverse_exact(ycc, fixed.detach())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        ycc, fixed = ctx.saved_tensors
        grad_ycc = None
        if ctx.needs_input_grad[0]:  # Y: weight 1 into every channel; Cb, Cr: the matrix
            weights = [[float(ONE)] * 3, *fixed.T.tolist()]
            grad_ycc = _weighted_planes(list(grad.unbind(1)), weights, [0.0] * 3,
                                        _empty_planes(grad, 3), False)
        grad_fixed = None
        if ctx.needs_input_grad[1]:
            chroma = ycc[:, 1:].to(grad.dtype) - 128.0
            grad_fixed = (torch.einsum("nohw,nkhw->ok", grad, chroma) / ONE).to(fixed.dtype)
        return grad_ycc, grad_fixed


def rgb_to_ycbcr(rgb: Tensor, mode: str, matrix: Tensor | None = None) -> Tensor:
    """RGB -> YCbCr as libjpeg's jccolor.c does it.

    Args:
        rgb: ``[N, 3, H, W]`` samples 0..255 (integer-valued in the exact modes), float.
        mode: arithmetic mode.
        matrix: ``[3, 3]`` conversion matrix (default JFIF's), may require grad.

    Returns:
        ``[N, 3, H, W]`` Y, Cb, Cr samples 0..255 in ``rgb``'s dtype.
    """
    if matrix is None:
        matrix = default_forward_matrix(rgb.device)
    fixed = fixed_point(matrix, mode)  # [3, 3] times 65536, float64
    if is_exact(mode):
        # JFIF's constants keep every sum below 2**24 (exact in float32);
        # learned ones may not, so they compute in float64
        exact32 = rgb.dtype != torch.float64 and _exact_in_float32(fixed, 255.0, _FORWARD_BIAS)
        work = rgb if exact32 else rgb.double()
        if mode == "hard":
            return _forward_exact(work, fixed.detach()).to(rgb.dtype)
        return _StraightForwardColor.apply(work, fixed).to(rgb.dtype)
    weights = (fixed / ONE).to(rgb.dtype)
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("ok,nkhw->nohw", weights, rgb) + offset.view(1, 3, 1, 1)


def ycbcr_to_rgb(ycc: Tensor, mode: str, matrix: Tensor | None = None) -> Tensor:
    """YCbCr -> RGB as libjpeg's jdcolor.c does it (with its output clamp).

    Args:
        ycc: ``[N, 3, H, W]`` Y, Cb, Cr samples 0..255, float.
        matrix: ``[3, 2]`` chroma contributions (default JFIF's), may require grad.

    Returns:
        ``[N, 3, H, W]`` RGB samples clamped to 0..255.
    """
    if matrix is None:
        matrix = default_inverse_matrix(ycc.device)
    fixed = fixed_point(matrix, mode)  # [3, 2] times 65536, float64
    if is_exact(mode):
        exact32 = ycc.dtype != torch.float64 and _exact_in_float32(fixed, 128.0, (ONE_HALF,) * 3)
        work = ycc if exact32 else ycc.double()
        if mode == "hard":
            return _inverse_exact(work, fixed.detach()).to(ycc.dtype)
        return _StraightInverseColor.apply(work, fixed).to(ycc.dtype)
    weights = (fixed / ONE).to(ycc.dtype)
    chroma = ycc[:, 1:] - 128.0
    rgb = ycc[:, :1] + torch.einsum("ok,nkhw->nohw", weights, chroma)
    return rgb.clamp(0.0, 255.0)
