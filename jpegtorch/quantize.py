"""Stage: quantization tables (Annex K, IJG quality scaling) and quantization.

Quality scaling is libjpeg's ``jpeg_quality_scaling`` + ``jpeg_add_quant_table``
with ``force_baseline`` (the default, as Pillow and ``cjpeg -baseline``)::

    scale = 5000 // q  if q < 50  else  200 - 2 q
    entry = clamp((base * scale + 50) // 100, 1, 255)

(without ``force_baseline``, as plain ``cjpeg``: clamped to 1..32767 instead).

Quantization is libjpeg's: the FDCT output ``t`` (scaled by 8) is divided by
``8 q`` and rounded half away from zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._arith import clamp, combine, is_exact, round_half_away, soft_round
from .kernels.quantize import ANNEX_K_CHROMA as _K_CHROMA
from .kernels.quantize import ANNEX_K_LUMA as _K_LUMA

# the Annex K tables: defined once, beside the compiled quantizer
_LUMA = tuple(_K_LUMA[r * 8 : r * 8 + 8] for r in range(8))
_CHROMA = tuple(_K_CHROMA[r * 8 : r * 8 + 8] for r in range(8))

#: The IJG (Annex K) base tables, natural order, ``[8, 8]`` int32.
ANNEX_K_LUMA: Tensor = torch.tensor(_LUMA, dtype=torch.int32)
ANNEX_K_CHROMA: Tensor = torch.tensor(_CHROMA, dtype=torch.int32)


def annex_k_tables(device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float64) -> Tensor:
    """The Annex K base tables as ``[2, 8, 8]`` (luma, chroma)."""
    return torch.tensor((_LUMA, _CHROMA), dtype=dtype, device=device)


def check_quality(quality: float | Tensor) -> None:
    """Raise ``ValueError`` unless every quality is a finite number in 1..100."""
    q = torch.as_tensor(quality).detach()
    if q.dim() > 1:
        raise ValueError(f"quality must be a number or a [N] tensor, got shape {tuple(q.shape)}")
    if q.is_complex() or not torch.isfinite(q.double()).all() or (q < 1).any() or (q > 100).any():
        raise ValueError(f"quality must be in 1..100, got {quality}")


def quality_to_tables(quality: float | Tensor, tables: Tensor | None = None, *,
                      mode: str = "hard", dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None,
                      force_baseline: bool = True) -> Tensor:
    """Quality-scaled quantization tables, as libjpeg computes them.

    Args:
        quality: a number or a tensor ``[]``/``[N]`` in 1..100 (float allowed;
            may require grad). Fractional qualities use the same formula
            without the integer rounding of ``5000 // q``'s argument.
        tables: base tables ``[2, 8, 8]`` or ``[N, 2, 8, 8]`` (luma, chroma),
            natural order; None for Annex K. May require grad.
        mode: arithmetic mode: exact integer tables in ``hard``/``ste``
            (straight-through gradients in ``ste``), real-valued otherwise.
        force_baseline: clamp to 1..255 (libjpeg's ``force_baseline``, as
            Pillow and ``cjpeg -baseline``); False clamps to 1..32767 as plain
            ``cjpeg`` does (16-bit tables at low quality).

    Returns:
        ``[N, 2, 8, 8]`` tables (``N = 1`` for a scalar quality and ``[2,8,8]``
        tables), values 1..255 (1..32767), in ``dtype``.
    """
    check_quality(quality)
    if tables is None:
        base = annex_k_tables(device, dtype)
    else:
        if not isinstance(tables, Tensor):
            raise TypeError("tables must be a tensor [2, 8, 8] or [N, 2, 8, 8]")
        if tables.shape[-3:] != (2, 8, 8) or tables.dim() not in (3, 4):
            raise ValueError(f"tables must be [2, 8, 8] or [N, 2, 8, 8], got {tuple(tables.shape)}")
        base = tables.to(dtype=dtype, device=device if device is not None else tables.device)
    device = base.device
    q = torch.as_tensor(quality, device=device).to(dtype)
    q = q.reshape(-1, 1, 1, 1)
    if base.dim() == 3:
        base = base[None]
    surrogate_scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    if is_exact(mode):
        qd = q.detach()
        exact_scale = torch.where(qd < 50, torch.floor(5000.0 / qd), 200.0 - 2.0 * qd)
        scale = combine(exact_scale, surrogate_scale, mode)
        raw = base * scale
        exact = torch.floor((raw.detach() + 50.0) / 100.0)
        scaled = combine(exact, raw / 100.0, mode)
    else:
        scaled = base * surrogate_scale / 100.0
    return clamp(scaled, 1.0, 255.0 if force_baseline else 32767.0, mode)


def quantize(coefficients: Tensor, table: Tensor, mode: str) -> Tensor:
    """Quantize FDCT output as libjpeg does.

    Args:
        coefficients: ``[..., 8, 8]`` FDCT output (scaled by 8, see
            :func:`jpegtorch.dct.fdct`).
        table: quantization table broadcastable to ``coefficients`` (1..255).

    Returns:
        Quantized coefficients: ``round_half_away(t / (8 q))`` (integers) in the
        exact modes; soft rounding in ``soft``; straight-through rounding in
        ``ste-quant``. The gradient w.r.t. the table is the same in every
        differentiable mode: that of ``t / (8 q)`` (the rounding residual
        scales with the step).
    """
    if mode == "hard":
        return _quantize_exact(coefficients, table)
    if mode == "ste":
        return _StraightQuantize.apply(coefficients, table)
    if mode == "soft":
        # soft rounding of t / (8 q), differentiated w.r.t. t as it is, and
        # w.r.t. the step q straight through the rounding (see _soft_quantize)
        return _soft_quantize(coefficients, table)
    ratio = coefficients / (8.0 * table)
    return ratio + (round_half_away(ratio.detach()) - ratio).detach()  # ste-quant


def _soft_quantize(t: Tensor, table: Tensor) -> Tensor:
    """``soft_round(t / (8 q))``: its own gradient w.r.t. ``t``; w.r.t. the step
    ``q``, the gradient of ``t / (8 q)`` (straight through the rounding).

    Why: dequantized, a coefficient is ``q s(r)`` with ``r = t / (8 q)``. Its
    exact derivative w.r.t. ``q`` is ``s(r) - r s'(r)``; away from the
    half-integers ``s' ~ 0`` and that is ``~ k = round(r)``, the slope of the
    staircase *between* its steps, whose contribution ``2 e k`` to
    ``d(e^2)/dq`` has the sign of the rounding error ``e`` and grows with
    ``|k|``. For large coefficients sharing one rounding error (the DC of a
    flat bright sky) it outweighs everything else and turns
    ``d(MSE)/d(quality)`` positive (Kodak 20 at q 27 and 38). Treating the
    rounding residual ``s(r) - r`` as independent of the step (the
    additive-noise model of quantization, as ``ste`` and ``ste-quant`` do)
    gives ``d(q s(r))/dq = s(r) - r`` and ``d(e^2)/dq = 2 e^2 / q >= 0`` per
    coefficient: larger steps, larger errors, whatever the image.
    """
    ratio_t = t / (8.0 * table.detach())  # carries the gradient w.r.t. t
    ratio_q = t.detach() / (8.0 * table)  # carries the gradient w.r.t. q
    return soft_round(ratio_t) + (ratio_q - ratio_q.detach())


def _quantize_exact(t: Tensor, table: Tensor) -> Tensor:
    # sign(t) * floor((|t| + 4q) / 8q) == trunc((t + copysign(4q, t)) / 8q); every
    # operand is an integer below 2**24, so float32 division rounds correctly.
    return torch.div(torch.copysign(4.0 * table, t).add_(t), 8.0 * table, rounding_mode="trunc")


def _sum_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum a broadcast gradient back to ``shape``."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dims, keepdim=True) if dims else grad


class _StraightQuantize(torch.autograd.Function):
    """libjpeg's quantizer forward; the gradient of ``t / (8 q)`` backward."""

    @staticmethod
    def forward(ctx, t: Tensor, table: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(t, table)
        return _quantize_exact(t, table)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        t, table = ctx.saved_tensors
        inv = 1.0 / (8.0 * table)
        grad_t = grad * inv if ctx.needs_input_grad[0] else None
        grad_q = None
        if ctx.needs_input_grad[1]:
            grad_q = _sum_to(-(grad * t) * (inv / table), table.shape)
        return grad_t, grad_q


def dequantize(quantized: Tensor, table: Tensor) -> Tensor:
    """``quantized * table`` (the decoder's DEQUANTIZE), broadcasting ``table``."""
    return quantized * table
