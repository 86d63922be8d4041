"""Image quality metrics and Bjøntegaard deltas.

- :func:`mse`, :func:`psnr`: per image, over all channels and pixels.
- :func:`ssim`, :func:`ms_ssim`: per image, thin wrappers over
  ``pytorch_msssim`` (Gaussian window 11, sigma 1.5, the constants of Wang et
  al.; colour images: the mean over channels). Differentiable.
- :func:`db`: a similarity in [0, 1) on a decibel scale,
  ``-10 log10(1 - s)`` (SSIM 0.9 -> 10 dB, 0.99 -> 20 dB).
- :func:`bd_rate`, :func:`bd_quality`: Bjøntegaard's average rate and
  quality differences between two rate-distortion curves (VCEG-M33).

Image arguments are tensors ``[N, C, H, W]`` or ``[C, H, W]`` (C = 1 or 3):
float in ``[0, data_range]``, or uint8 (then ``data_range`` is taken as 255).
The metric functions return ``[N]`` tensors (float32, or float64 for float64
inputs) and keep gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

#: pytorch_msssim's MS-SSIM needs images larger than (11 - 1) * 2**4 pixels.
MS_SSIM_MIN_SIZE = 161


def _pair(a: Tensor, b: Tensor, data_range: float) -> tuple[Tensor, Tensor, float]:
    """Check and batch two images; uint8 -> float32 with range 255."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("images must be torch tensors")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() not in (3, 4):
        raise ValueError(f"images must be [C, H, W] or [N, C, H, W], got {tuple(a.shape)}")
    if a.dim() == 3:
        a, b = a[None], b[None]
    if a.dtype == torch.uint8 or b.dtype == torch.uint8:
        data_range = 255.0
    dtype = a.dtype if a.dtype.is_floating_point else (
        b.dtype if b.dtype.is_floating_point else torch.float32)
    return a.to(dtype), b.to(dtype), float(data_range)


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per image, ``[N]``, in the images' own units."""
    a, b, _ = _pair(a, b, 1.0)
    return (a - b).square().flatten(1).mean(1)


def psnr(a: Tensor, b: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB, ``[N]`` (inf for equal images).

    ``10 log10(data_range**2 / MSE)`` with the MSE over all channels (RGB
    PSNR for colour images).
    """
    a, b, data_range = _pair(a, b, data_range)
    error = (a - b).square().flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / error)


def ssim(a: Tensor, b: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image, ``[N]`` in [-1, 1] (1 = equal).

    Needs images at least 11 pixels wide and high.
    """
    from pytorch_msssim import ssim as _ssim

    a, b, data_range = _pair(a, b, data_range)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {tuple(a.shape[-2:])}")
    return _ssim(a, b, data_range=data_range, size_average=False)


def ms_ssim(a: Tensor, b: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Multi-scale SSIM per image, ``[N]`` in [0, 1] (5 scales, Wang et al.'s weights).

    Needs images at least :data:`MS_SSIM_MIN_SIZE` (161) pixels wide and high.
    """
    from pytorch_msssim import ms_ssim as _ms_ssim

    a, b, data_range = _pair(a, b, data_range)
    if min(a.shape[-2:]) < MS_SSIM_MIN_SIZE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIZE}x"
                         f"{MS_SSIM_MIN_SIZE} pixels, got {tuple(a.shape[-2:])}")
    return _ms_ssim(a, b, data_range=data_range, size_average=False)


def db(similarity: Tensor | float) -> Tensor | float:
    """``-10 log10(1 - s)``: a similarity (SSIM, MS-SSIM) in decibels."""
    if isinstance(similarity, Tensor):
        return -10.0 * torch.log10(1.0 - similarity)
    return -10.0 * math.log10(1.0 - float(similarity))


# --------------------------------------------------------------------------- Bjøntegaard


def _curve(rates: Sequence[float], quality: Sequence[float], name: str
           ) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rates, dtype=np.float64).reshape(-1)
    d = np.asarray(quality, dtype=np.float64).reshape(-1)
    if r.shape != d.shape:
        raise ValueError(f"curve {name}: {r.size} rates but {d.size} quality values")
    if r.size < 2:
        raise ValueError(f"curve {name}: needs at least 2 points, got {r.size}")
    if not (np.isfinite(r).all() and np.isfinite(d).all()):
        raise ValueError(f"curve {name}: rates and quality values must be finite")
    if (r <= 0).any():
        raise ValueError(f"curve {name}: rates must be positive")
    if np.ptp(d) == 0 or np.ptp(r) == 0:
        raise ValueError(f"curve {name}: the points must span a range of rates and quality")
    return np.log10(r), d


def _pchip(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Monotone piecewise-cubic Hermite interpolation (Fritsch-Carlson), x increasing."""
    h = np.diff(x)
    delta = np.diff(y) / h
    slope = np.zeros_like(y)
    if x.size == 2:
        slope[:] = delta[0]
    else:
        w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
        same = delta[:-1] * delta[1:] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
        slope[1:-1] = np.where(same, harmonic, 0.0)
        for end, (h0, h1, d0, d1) in ((0, (h[0], h[1], delta[0], delta[1])),
                                      (-1, (h[-1], h[-2], delta[-1], delta[-2]))):
            m = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
            if np.sign(m) != np.sign(d0):
                m = 0.0
            elif np.sign(d0) != np.sign(d1) and abs(m) > abs(3 * d0):
                m = 3 * d0
            slope[end] = m
    k = np.clip(np.searchsorted(x, at, side="right") - 1, 0, x.size - 2)
    t = (at - x[k]) / h[k]
    h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2
    h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)
    return h00 * y[k] + h10 * h[k] * slope[k] + h01 * y[k + 1] + h11 * h[k] * slope[k + 1]


def _mean_difference(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray,
                     y_b: np.ndarray, method: str = "cubic") -> float:
    """Mean of ``P_b(x) - P_a(x)`` over the overlap of the x ranges.

    ``cubic``: ``P`` is the least-squares polynomial of ``y`` in ``x`` of
    degree 3 (or ``points - 1`` for curves of fewer than 4 points).
    ``pchip``: ``P`` is the monotone piecewise-cubic interpolant through the
    points (exact on every point; suits curves with many points over a wide
    range, where one cubic misfits).
    """
    if method not in ("cubic", "pchip"):
        raise ValueError(f"method must be 'cubic' or 'pchip', got {method!r}")
    lo = max(x_a.min(), x_b.min())
    hi = min(x_a.max(), x_b.max())
    if not hi > lo:
        raise ValueError("the two curves do not overlap; Bjøntegaard deltas are undefined")
    areas = []
    for x, y in ((x_a, y_a), (x_b, y_b)):
        if method == "pchip":
            order = np.argsort(x, kind="stable")
            xs, ys = x[order], y[order]
            if (np.diff(xs) <= 0).any():
                raise ValueError("pchip needs distinct values along the integration axis")
            grid = np.linspace(lo, hi, 20001)
            areas.append(float(np.trapezoid(_pchip(xs, ys, grid), grid)))
            continue
        degree = min(3, x.size - 1)
        # centre x for a well-conditioned fit; integrate the fit over [lo, hi]
        centre = float(x.mean())
        poly = np.polynomial.Polynomial.fit(x - centre, y, degree, domain=[-1, 1])
        antiderivative = poly.integ()
        areas.append(float(antiderivative(hi - centre) - antiderivative(lo - centre)))
    return (areas[1] - areas[0]) / (hi - lo)


def bd_rate(rates_a: Sequence[float], dists_a: Sequence[float], rates_b: Sequence[float],
            dists_b: Sequence[float], method: str = "cubic") -> float:
    """Bjøntegaard delta rate: the average rate change of curve b against curve a, in %.

    Each curve is fitted with a cubic polynomial of log-rate as a function of
    the quality value (least squares; a lower degree for fewer than 4
    points), and the fits are averaged over the range of quality values both
    curves cover: ``100 * (10**mean(log10 r_b - log10 r_a) - 1)``. Negative:
    b needs fewer bits for the same quality. ``method="pchip"`` uses the
    monotone piecewise-cubic interpolant through the points instead (the
    JVET practice; better for anchors with many points over a wide range,
    e.g. JPEG at qualities 3..95, where one cubic misfits by a few %).

    Args:
        rates_a, dists_a: the anchor's rates (any positive unit: bits, bytes,
            bpp -- the same for both curves) and quality values, one per
            point, higher is better (PSNR in dB, SSIM in dB via :func:`db`,
            ...). Any order.
        rates_b, dists_b: the tested curve.

    Returns:
        The BD-rate in percent (float).

    Raises:
        ValueError: fewer than 2 points, mismatched lengths, non-positive or
            non-finite values, or curves whose quality ranges do not overlap.
    """
    log_a, d_a = _curve(rates_a, dists_a, "a")
    log_b, d_b = _curve(rates_b, dists_b, "b")
    return float(100.0 * (10.0 ** _mean_difference(d_a, log_a, d_b, log_b, method) - 1.0))


def bd_quality(rates_a: Sequence[float], dists_a: Sequence[float], rates_b: Sequence[float],
               dists_b: Sequence[float], method: str = "cubic") -> float:
    """Bjøntegaard delta quality (BD-PSNR for PSNR values): b's mean gain over a.

    The quality value as a cubic of log-rate, averaged over the log-rate range
    both curves cover. Positive: b is better at the same rate. Arguments and
    errors as :func:`bd_rate`; the result is in the quality values' unit.
    """
    log_a, d_a = _curve(rates_a, dists_a, "a")
    log_b, d_b = _curve(rates_b, dists_b, "b")
    return float(_mean_difference(log_a, d_a, log_b, d_b, method))
