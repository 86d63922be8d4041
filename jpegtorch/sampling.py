"""Stage: chroma down-sampling (jcsample.c) and up-sampling (jdsample.c).

Down-sampling averages ``hexp × vexp`` boxes with libjpeg's biases: 2×1 boxes
add 0,1,0,1,... and 2×2 boxes add 1,2,1,2,... (alternating by output column)
before the shift; other integral factors add ``numpix // 2``.

Up-sampling follows libjpeg-turbo's default ("fancy") decoder:

- 2×1: triangle filter ``(3*near + far + 1|2) >> 2``, when the component is
  wider than 2 samples, else replication;
- 1×2: the same filter vertically (biases 1 above, 2 below);
- 2×2: separable triangle filter on column sums ``3*near + far`` with biases
  8 and 7 (``>> 4``), when wider than 2 samples, else replication;
- any other integral factors: replication.

Edges replicate the outermost sample, exactly as libjpeg's special cases do.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._arith import descale, floor_div, is_exact

# the named samplings and libjpeg's rounding biases: defined once, beside the compiled kernels
from .kernels.sampling import SUBSAMPLING, bias_row


def parse_subsampling(subsampling: str) -> tuple[tuple[int, int], ...]:
    """Sampling factors ``((h, v), ...)`` of Y, Cb, Cr for a J:a:b name."""
    try:
        return SUBSAMPLING[str(subsampling)]
    except KeyError:
        raise ValueError(
            f"subsampling must be one of {', '.join(SUBSAMPLING)}, got {subsampling!r}"
        ) from None


def sampling_name(sampling: tuple[tuple[int, int], ...]) -> str:
    """The J:a:b name of sampling factors, or ``"HxV,HxV,..."`` when there is none."""
    if len(sampling) == 1:
        return "gray"
    for name, factors in SUBSAMPLING.items():
        if tuple(sampling) == factors:
            return name
    # equivalent ratios, e.g. ((2, 2), (2, 2), (2, 2)) is 4:4:4
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    ratios = tuple((hmax // h if hmax % h == 0 else 0, vmax // v if vmax % v == 0 else 0)
                   for h, v in sampling)
    for name, factors in SUBSAMPLING.items():
        fh = max(h for h, _ in factors)
        fv = max(v for _, v in factors)
        if ratios == tuple((fh // h, fv // v) for h, v in factors):
            return name
    return ",".join(f"{h}x{v}" for h, v in sampling)


def downsample(plane: Tensor, hexp: int, vexp: int, mode: str) -> Tensor:
    """Box down-sampling of a padded plane.

    Args:
        plane: ``[N, H, W]`` samples 0..255, with ``H % vexp == W % hexp == 0``.
        hexp, vexp: horizontal and vertical reduction factors.

    Returns:
        ``[N, H // vexp, W // hexp]`` samples 0..255.
    """
    if hexp == 1 and vexp == 1:
        return plane
    n, height, width = plane.shape
    numpix = hexp * vexp
    if numpix & (numpix - 1) == 0:
        # a power-of-two box: its mean (sum / numpix) is exact, and pooling is fast
        total = torch.nn.functional.avg_pool2d(plane[:, None], (vexp, hexp))[:, 0]
        divisor = 1
    else:
        total = plane.reshape(n, height // vexp, vexp, width // hexp, hexp).sum(dim=(2, 4))
        divisor = numpix
    if not is_exact(mode):
        return total / divisor
    # libjpeg's rounding biases (jcsample.c; kernels.sampling.bias_row)
    bias = torch.from_numpy(bias_row(hexp, vexp, width // hexp)).to(plane.device, plane.dtype)
    return floor_div(total, divisor, bias * divisor / numpix, mode)


def _padded(plane: Tensor, rows: bool, cols: bool) -> Tensor:
    """``plane`` ``[N, h, w]`` with its edge samples replicated one step outwards."""
    if cols:
        plane = torch.cat([plane[..., :1], plane, plane[..., -1:]], dim=-1)
    if rows:
        plane = torch.cat([plane[..., :1, :], plane, plane[..., -1:, :]], dim=-2)
    return plane


def _interleave(parts: list[Tensor], dim: int) -> Tensor:
    """Interleave equally shaped tensors along ``dim`` (-1 or -2)."""
    stacked = torch.stack(parts, dim=dim)
    shape = list(parts[0].shape)
    shape[dim] *= len(parts)
    return stacked.reshape(shape)


def _fancy_exact(plane: Tensor, vexp: int) -> Tensor:
    """libjpeg-turbo's h2v1 / h2v2 fancy up-sampling, exact, without autograd:
    each output phase is computed in place into a strided view of one output."""
    n, h, w = plane.shape
    padded = torch.nn.functional.pad(plane[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    out = torch.empty((n, h * vexp, w * 2), dtype=plane.dtype, device=plane.device)
    if vexp == 1:  # (3 * near + far + 1 | 2) >> 2
        sums, shift, biases = [padded[:, 1:-1]], 0.25, (1.0, 2.0)
    else:  # column sums 3 * near + far (above, below), then (3 * s + s' + 8 | 7) >> 4
        near = padded[:, 1:-1] * 3
        sums = [near + padded[:, :-2], near.add_(padded[:, 2:])]
        shift, biases = 1.0 / 16, (8.0, 7.0)
    for row, colsum in enumerate(sums):
        mid = colsum[..., 1:-1] * 3
        left = out[:, row::vexp, 0::2]
        torch.add(mid, colsum[..., :-2], out=left)
        left.add_(biases[0]).mul_(shift).floor_()
        out[:, row::vexp, 1::2].copy_(mid.add_(colsum[..., 2:]).add_(biases[1]).mul_(shift)
                                      .floor_())
    return out


def upsample(plane: Tensor, hexp: int, vexp: int, mode: str) -> Tensor:
    """libjpeg-turbo's default up-sampling of one component.

    Args:
        plane: ``[N, h, w]`` component samples 0..255 (cropped to the
            component's own size, i.e. libjpeg's ``downsampled_width/height``).
        hexp, vexp: integral expansion factors (``max_samp / samp``).

    Returns:
        ``[N, h * vexp, w * hexp]`` samples 0..255.
    """
    if hexp == 1 and vexp == 1:
        return plane
    width = plane.shape[-1]
    if mode == "hard" and width > 2 and (hexp, vexp) in ((2, 1), (2, 2)):
        return _fancy_exact(plane, vexp)
    if (hexp, vexp) == (2, 1) and width > 2:
        p = _padded(plane, rows=False, cols=True)
        near = 3 * plane
        return _interleave([descale(near + p[..., :-2], 2, mode, bias=1),
                            descale(near + p[..., 2:], 2, mode, bias=2)], -1)
    if (hexp, vexp) == (1, 2):
        p = _padded(plane, rows=True, cols=False)
        near = 3 * plane
        return _interleave([descale(near + p[..., :-2, :], 2, mode, bias=1),
                            descale(near + p[..., 2:, :], 2, mode, bias=2)], -2)
    if (hexp, vexp) == (2, 2) and width > 2:
        p = _padded(plane, rows=True, cols=True)
        near = 3 * p[..., 1:-1, :]
        out_rows = []
        for colsum in (near + p[..., :-2, :], near + p[..., 2:, :]):  # above, below
            mid = 3 * colsum[..., 1:-1]
            out_rows.append(_interleave([descale(mid + colsum[..., :-2], 4, mode, bias=8),
                                         descale(mid + colsum[..., 2:], 4, mode, bias=7)], -1))
        return _interleave(out_rows, -2)
    return plane.repeat_interleave(vexp, dim=-2).repeat_interleave(hexp, dim=-1)
