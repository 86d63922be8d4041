"""Stage: libjpeg's integer "islow" forward DCT (jfdctint.c) and inverse DCT
with its range limit (jidctint.c).

Each pass of the islow transforms is an integer-linear butterfly network
followed by one ``DESCALE`` (a rounding right shift). We therefore write the
butterflies once, over Python integers (the forward one is the compiled
kernel's own, :func:`jpegtorch.kernels.dct.fdct_1d`), to obtain each pass as
an exact 8×8 integer matrix; a pass is then ``floor((M @ x + 2**(s-1)) / 2**s)``, computed in
float64 (exact: every intermediate is far below 2**53). This gives exactly
libjpeg-turbo's results while running as two small matrix products per block.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor

# libjpeg's constants and the forward butterfly: defined once, beside the compiled kernels
from .kernels.dct import (
    CONST_BITS,
    FDCT_DC_SHIFT1,
    FDCT_DC_SHIFT2,
    FDCT_SHIFT1,
    FDCT_SHIFT2,
    IDCT_SHIFT1,
    IDCT_SHIFT2,
    fdct_1d_exact,
    idct_1d_exact,
)


def _idct_1d(c: list[int], dc_shift: int) -> list[int]:
    """jidctint.c's butterfly over integers (already dequantized), before DESCALE:
    the compiled kernel's own (:func:`jpegtorch.kernels.dct.idct_1d`), whose even
    part is scaled by ``CONST_BITS``."""
    assert dc_shift == CONST_BITS
    return idct_1d_exact(c)


def _matrix(butterfly, dc_shift: int) -> list[list[int]]:
    cols = [butterfly([int(i == j) for i in range(8)], dc_shift) for j in range(8)]
    return [[cols[j][i] for j in range(8)] for i in range(8)]


@cache
def _int_matrices() -> dict[str, list[list[int]]]:
    return {
        # pass 1: DC/4 outputs are (x << PASS1_BITS), written as << (PASS1_BITS + 11) then >> 11
        "f1": _matrix(fdct_1d_exact, FDCT_DC_SHIFT1),
        # pass 2: DC/4 outputs DESCALE by PASS1_BITS: << (15 - 2) then >> 15
        "f2": _matrix(fdct_1d_exact, FDCT_DC_SHIFT2),
        "i1": _matrix(_idct_1d, CONST_BITS),
        "i2": _matrix(_idct_1d, CONST_BITS),
    }


def dct_matrix(name: str, device: torch.device, dtype: torch.dtype = torch.float64) -> Tensor:
    """One pass of the islow transforms as an exact 8×8 matrix (``f1``, ``f2``, ``i1``, ``i2``)."""
    return torch.tensor(_int_matrices()[name], dtype=dtype, device=device)


def _matrices(device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return tuple(dct_matrix(name, device) for name in ("f1", "f2", "i1", "i2"))  # type: ignore[return-value]


def _contiguous64(x: Tensor) -> Tensor:
    return x.to(torch.float64, memory_format=torch.contiguous_format)


def _descale_(v: Tensor, shift: int) -> Tensor:
    """In-place DESCALE of a temporary: ``floor((v + 2**(shift-1)) / 2**shift)``."""
    return v.add_(float(1 << (shift - 1))).mul_(1.0 / (1 << shift)).floor_()


def _fdct_exact(blocks: Tensor) -> Tensor:
    f1, f2, _, _ = _matrices(blocks.device)
    rows = _descale_(_contiguous64(blocks) @ f1.T, FDCT_SHIFT1)
    # pass 2 as a plain matrix product on the transposed blocks: K^T = R^T F2^T
    coef_t = _descale_(rows.transpose(-1, -2).contiguous() @ f2.T, FDCT_SHIFT2)
    return coef_t.to(blocks.dtype).transpose(-1, -2)


def _idct_exact(coefficients: Tensor) -> Tensor:
    _, _, i1, i2 = _matrices(coefficients.device)
    # pass 1 along columns on the transposed blocks: W^T = C^T I1^T
    cols_t = _descale_(_contiguous64(coefficients.transpose(-1, -2)) @ i1.T, IDCT_SHIFT1)
    out = _descale_(cols_t.transpose(-1, -2).contiguous() @ i2.T, IDCT_SHIFT2)
    return _range_limit(out, inplace=True).to(coefficients.dtype)


def _surrogates(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """The real-valued passes: each integer matrix divided by its DESCALE."""
    f1, f2, i1, i2 = _matrices(device)
    return tuple(m.to(dtype) for m in (
        f1 / (1 << FDCT_SHIFT1), f2 / (1 << FDCT_SHIFT2),
        i1 / (1 << IDCT_SHIFT1), i2 / (1 << IDCT_SHIFT2)))


class _StraightFDCT(torch.autograd.Function):
    """Exact islow FDCT forward; the real-valued transform's gradient backward."""

    @staticmethod
    def forward(ctx, blocks: Tensor) -> Tensor:  # type: ignore[override]
        return _fdct_exact(blocks)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        s1, s2, _, _ = _surrogates(grad.device, grad.dtype)
        return (s2.T @ grad) @ s1


class _StraightIDCT(torch.autograd.Function):
    """Exact islow IDCT + range limit forward; the real-valued transform's
    gradient (straight through the range limit) backward."""

    @staticmethod
    def forward(ctx, coefficients: Tensor) -> Tensor:  # type: ignore[override]
        return _idct_exact(coefficients)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        _, _, s3, s4 = _surrogates(grad.device, grad.dtype)
        return s3.T @ (grad @ s4)


def fdct(blocks: Tensor, mode: str) -> Tensor:
    """libjpeg's islow forward DCT of level-shifted samples.

    Args:
        blocks: ``[..., 8, 8]`` samples minus 128 (range -128..127), float.
        mode: arithmetic mode (see :mod:`jpegtorch._arith`). The exact modes
            compute each pass in float64 (intermediate sums reach about 2**30).

    Returns:
        ``[..., 8, 8]`` DCT coefficients scaled by 8 as libjpeg's FDCT leaves
        them (the quantizer divides by ``8 * q``); integers in the exact modes.
        Same dtype as ``blocks``.
    """
    if mode == "hard":
        return _fdct_exact(blocks)
    if mode == "ste":
        return _StraightFDCT.apply(blocks)
    s1, s2, _, _ = _surrogates(blocks.device, blocks.dtype)
    return s2 @ (blocks @ s1.T)


def idct(coefficients: Tensor, mode: str) -> Tensor:
    """libjpeg's islow inverse DCT (jidctint.c) with its range limit.

    Args:
        coefficients: ``[..., 8, 8]`` dequantized coefficients (quantized value
            times table entry), natural order, float.

    Returns:
        ``[..., 8, 8]`` samples 0..255 (integers in the exact modes), same dtype.
    """
    if mode == "hard":
        return _idct_exact(coefficients)
    if mode == "ste":
        return _StraightIDCT.apply(coefficients)
    _, _, s3, s4 = _surrogates(coefficients.device, coefficients.dtype)
    return ((s3 @ coefficients) @ s4.T + 128.0).clamp(0.0, 255.0)


def _range_limit(samples: Tensor, inplace: bool = False) -> Tensor:
    """The post-IDCT range limit: ``clamp(x + 128, 0, 255)``.

    libjpeg's C code indexes a table with ``x & 1023`` (wrapping out-of-range
    values), but the SIMD IDCTs that Pillow and OpenCV run on x86-64 saturate
    instead. Valid streams never reach either case; for corrupt ones a plain
    clamp is the closer match to what users get from libjpeg-turbo.
    """
    return (samples.add_(128.0) if inplace else samples + 128.0).clamp_(0.0, 255.0)
