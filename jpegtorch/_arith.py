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
``soft``       float arithmetic; quantization uses  its own (smooth) gradient
               soft rounding (Agustsson & Theis)
``ste-quant``  float arithmetic; quantization is    straight-through at quantization only
               hard rounding                        (as in the earliest trainable JPEGs)
=============  ===================================  ==========================================
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MODES: tuple[str, ...] = ("hard", "ste", "soft", "ste-quant")
EXACT_MODES: tuple[str, ...] = ("hard", "ste")

# Soft-rounding sharpness for ``soft`` mode: s(x) -> round(x) as alpha -> inf.
SOFT_ROUND_ALPHA = 4.0


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def is_exact(mode: str) -> bool:
    """Whether the forward pass of ``mode`` is libjpeg-turbo's integer arithmetic."""
    return mode in EXACT_MODES


def work_dtype(mode: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype the pipeline computes in: float64 for the exact modes (integers up
    to 2**53 are exact), the image's own float dtype otherwise."""
    if is_exact(mode) or not dtype.is_floating_point:
        return torch.float64
    return dtype


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
    scale = float(1 << shift)
    surrogate = v / scale
    if not is_exact(mode):
        return surrogate
    if bias is None:
        bias = 1 << (shift - 1)
    exact = torch.floor((v.detach() + bias) / scale) if mode == "ste" else torch.floor(
        (v + bias) / scale)
    return combine(exact, surrogate, mode)


def clamp(v: Tensor, lo: float, hi: float, mode: str) -> Tensor:
    """Clamp to ``[lo, hi]``; straight-through in ``ste`` mode."""
    if mode == "ste":
        return combine(v.detach().clamp(lo, hi), v, mode)
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
