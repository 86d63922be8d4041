"""Arithmetic modes: how each integer step of libjpeg is computed and differentiated.

Every integer step of the pipeline is written as a real-valued *surrogate*
(the same linear arithmetic without rounding or clamping) and an *exact*
result (libjpeg-turbo's integer arithmetic, carried in float64 so that it is
exact on every device). The mode decides which one is the forward value and
where gradients come from:

=============  ===================================  ==========================================
mode           forward                              backward
=============  ===================================  ==========================================
``hard``       exact libjpeg-turbo integers         true derivative: zero through rounding
``ste``        exact libjpeg-turbo integers         straight-through: the surrogate's gradient
                                                    at every rounding and clamp
``soft``       float arithmetic; quantization uses  its own (smooth) gradient, except
               soft rounding (Agustsson & Theis)    w.r.t. quantization steps (below)
``ste-quant``  float arithmetic; quantization is    straight-through at quantization only
               hard rounding                        (as in the earliest trainable JPEGs)
=============  ===================================  ==========================================

Quantization steps (quality, tables): in every differentiable mode the
gradient w.r.t. a step ``q`` is that of ``t / (8 q)`` through the rounding, so
``d(q * rounded)/dq = rounded - t / (8 q)``: the rounding residual scales with
the step (see :func:`jpegtorch.quantize.quantize`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MODES: tuple[str, ...] = ("hard", "ste", "soft", "ste-quant")
EXACT_MODES: tuple[str, ...] = ("hard", "ste")

# Soft-rounding sharpness for ``soft`` mode: s(x) -> round(x) as alpha -> inf.
SOFT_ROUND_ALPHA = 8.0


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def is_exact(mode: str) -> bool:
    """Whether the forward pass of ``mode`` is libjpeg-turbo's integer arithmetic."""
    return mode in EXACT_MODES


def work_dtype(mode: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype the pipeline computes in outside the DCT.

    Integers below 2**24 are exact in float32, which covers every sample,
    colour-conversion sum (with JFIF's constants), quantization ratio and
    dequantized coefficient; the DCT passes compute in float64 internally.
    float64 images stay float64.
    """
    if dtype == torch.float64:
        return torch.float64
    return torch.float32


def _floor_div(v: Tensor, divisor: int, bias: float | Tensor) -> Tensor:
    out = v + bias
    if divisor & (divisor - 1) == 0:  # a power of two: multiplying is exact
        return out.mul_(1.0 / divisor).floor_()
    return out.div_(divisor).floor_()


class _FloorDiv(torch.autograd.Function):
    """``floor((v + bias) / divisor)`` forward, ``v / divisor`` backward."""

    @staticmethod
    def forward(ctx, v: Tensor, divisor: int, bias: float | Tensor) -> Tensor:  # type: ignore[override]
        ctx.divisor = divisor
        return _floor_div(v, divisor, bias)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        if ctx.divisor == 1:
            return grad, None, None
        return grad * (1.0 / ctx.divisor), None, None


class _StraightClamp(torch.autograd.Function):
    """Clamp forward, identity backward."""

    @staticmethod
    def forward(ctx, v: Tensor, lo: float, hi: float) -> Tensor:  # type: ignore[override]
        return v.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        return grad, None, None


def combine(exact: Tensor | None, surrogate: Tensor, mode: str) -> Tensor:
    """Pick the forward value and gradient path of an integer step for ``mode``.

    Args:
        exact: the exact integer-valued result (float tensor), or None in the
            float modes (where it is not needed).
        surrogate: the real-valued result of the same step without rounding.
    """
    if mode == "hard":
        assert exact is not None
        return exact
    if mode == "ste":
        assert exact is not None
        return surrogate + (exact - surrogate).detach()
    return surrogate


def descale(v: Tensor, shift: int, mode: str, bias: int | None = None) -> Tensor:
    """libjpeg's ``DESCALE``/right shift: ``floor((v + bias) / 2**shift)``.

    ``bias`` defaults to ``2**(shift-1)`` (round half up). The surrogate is
    ``v / 2**shift``.
    """
    if bias is None:
        bias = 1 << (shift - 1)
    return floor_div(v, 1 << shift, float(bias), mode)


def floor_div(v: Tensor, divisor: int, bias: float | Tensor, mode: str) -> Tensor:
    """``floor((v + bias) / divisor)`` in the exact modes (straight-through in
    ``ste``); the surrogate ``v / divisor`` in the float modes."""
    if mode == "ste":
        return _FloorDiv.apply(v, divisor, bias)
    if mode == "hard":
        return _floor_div(v, divisor, bias)
    return v / divisor


def clamp(v: Tensor, lo: float, hi: float, mode: str) -> Tensor:
    """Clamp to ``[lo, hi]``; straight-through in ``ste`` mode."""
    if mode == "ste":
        return _StraightClamp.apply(v, lo, hi)
    return v.clamp(lo, hi)


def soft_round(x: Tensor, alpha: float = SOFT_ROUND_ALPHA) -> Tensor:
    """Soft rounding (Agustsson & Theis, 2020): smooth, monotone, exact at
    integers and half-integers' midpoints; tends to ``round`` as alpha grows."""
    m = torch.floor(x).detach() + 0.5
    r = x - m
    return m + 0.5 * torch.tanh(alpha * r) / math.tanh(alpha / 2)


def round_half_away(v: Tensor) -> Tensor:
    """Round half away from zero (the rounding of libjpeg's quantizer)."""
    return torch.sign(v) * torch.floor(v.abs() + 0.5)
