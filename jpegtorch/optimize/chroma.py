"""Chroma choices for the decoder: down-sampled planes fitted to its up-sampling.

libjpeg down-samples chroma with a box filter, while libjpeg-turbo's decoder
(Pillow, OpenCV, djpeg) up-samples 2×1 and 2×2 chroma with a triangle
("fancy") filter. The decoded chroma is therefore blurred twice. A standard
decoder's up-sampler is linear (apart from rounding), so the down-sampled
plane that brings the decoded chroma closest to the original is a least
squares problem, ``min_c ||U c - C||²`` with ``U`` the up-sampler and ``C``
the full-resolution plane, solved here by conjugate gradients from the box
filter's plane. Since ``U c* - C`` is orthogonal to everything ``U`` can
produce, ``||U ĉ - C||² = ||U (ĉ - c*)||² + ||U c* - C||²`` for any coded
plane ``ĉ``: the coefficient optimizers then measure chroma distortion against
``c*`` through ``U`` (:func:`jpegtorch.optimize.trellis.color_weights`), which
is the real error.

:func:`luma_target` goes one step further for RGB error: chroma errors move
R, G and B unequally, but their mean can be cancelled by the luma plane (it
adds the same value to R, G and B), so the luma is coded towards
``Y - (1.4279 e_Cb + 0.6879 e_Cr) / 3`` once the chroma's decoded errors
``e`` are known.

numpy and numba (no torch).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Sum of the RGB coefficients of Cb and Cr in JFIF's YCbCr -> RGB conversion.
CB_TO_RGB_SUM = -0.344136 + 1.772
CR_TO_RGB_SUM = 1.402 - 0.714136


@njit(cache=True, nogil=True)
def _fancy_cols(x):  # pragma: no cover - compiled
    """Factor-2 triangle up-sampling along the last axis of ``[h, w]`` (3/4 near +
    1/4 far, edges replicated)."""
    h, w = x.shape
    out = np.empty((h, 2 * w))
    for i in range(h):
        for k in range(w):
            left = x[i, k - 1] if k > 0 else x[i, 0]
            right = x[i, k + 1] if k < w - 1 else x[i, w - 1]
            out[i, 2 * k] = 0.75 * x[i, k] + 0.25 * left
            out[i, 2 * k + 1] = 0.75 * x[i, k] + 0.25 * right
    return out


@njit(cache=True, nogil=True)
def _fancy_cols_adjoint(g):  # pragma: no cover - compiled
    h, w2 = g.shape
    w = w2 // 2
    x = np.zeros((h, w))
    for i in range(h):
        for k in range(w):
            even = g[i, 2 * k]
            odd = g[i, 2 * k + 1]
            x[i, k] += 0.75 * (even + odd)
            x[i, k - 1 if k > 0 else 0] += 0.25 * even
            x[i, k + 1 if k < w - 1 else w - 1] += 0.25 * odd
    return x


def _fancy_1d(x: np.ndarray, axis: int) -> np.ndarray:
    """Factor-2 triangle up-sampling along ``axis`` (0 or 1) of a 2-D plane."""
    if axis == 1:
        return _fancy_cols(np.ascontiguousarray(x, dtype=np.float64))
    return _fancy_cols(np.ascontiguousarray(x.T, dtype=np.float64)).T


def _fancy_1d_adjoint(g: np.ndarray, axis: int) -> np.ndarray:
    if axis == 1:
        return _fancy_cols_adjoint(np.ascontiguousarray(g, dtype=np.float64))
    return _fancy_cols_adjoint(np.ascontiguousarray(g.T, dtype=np.float64)).T


def _fancy(width: int, hexp: int, vexp: int) -> tuple[bool, bool]:
    """Which axes libjpeg-turbo's default up-sampler filters (jdsample.c): h2v1 and
    h2v2 when the component is wider than 2 samples, h1v2 always; else replication."""
    if (hexp, vexp) in ((2, 1), (2, 2)) and width > 2:
        return True, vexp == 2
    return False, (hexp, vexp) == (1, 2)


def upsample(plane: np.ndarray, hexp: int, vexp: int, shape: tuple[int, int],
             *, width: int | None = None) -> np.ndarray:
    """The decoder's up-sampling without its rounding, cropped to ``shape``.

    ``plane`` ``[h, w]`` float; libjpeg-turbo's h2v1/h2v2 fancy filter when
    the component is wider than 2 samples (``width``, default ``w``), else
    replication (and replication for other factors).
    """
    width = plane.shape[1] if width is None else width
    fancy_h, fancy_v = _fancy(width, hexp, vexp)
    out = plane
    if vexp > 1:
        out = _fancy_1d(out, 0) if fancy_v else np.repeat(out, vexp, axis=0)
    if hexp > 1:
        out = _fancy_1d(out, 1) if fancy_h else np.repeat(out, hexp, axis=1)
    return out[: shape[0], : shape[1]]


def upsample_adjoint(g: np.ndarray, hexp: int, vexp: int, shape: tuple[int, int],
                     width: int) -> np.ndarray:
    """Adjoint of :func:`upsample` (``shape``: the down-sampled plane's shape)."""
    h, w = shape
    full = np.zeros((h * vexp, w * hexp))
    full[: g.shape[0], : g.shape[1]] = g
    fancy_h, fancy_v = _fancy(width, hexp, vexp)
    out = full
    if hexp > 1:
        out = _fancy_1d_adjoint(out, 1) if fancy_h else out.reshape(
            out.shape[0], w, hexp).sum(-1)
    if vexp > 1:
        out = _fancy_1d_adjoint(out, 0) if fancy_v else out.reshape(
            h, vexp, out.shape[1]).sum(1)
    return out


def fit_downsampled(full: np.ndarray, start: np.ndarray, hexp: int, vexp: int, *,
                    iterations: int = 8) -> np.ndarray:
    """The down-sampled plane whose up-sampling best matches ``full`` (least squares).

    Args:
        full: ``[H, W]`` float64 full-resolution plane (0..255).
        start: ``[ceil(H / vexp), ceil(W / hexp)]`` the box filter's plane (the
            starting point).
        hexp, vexp: the down-sampling factors.
        iterations: conjugate-gradient iterations.

    Returns:
        The fitted plane, ``start``'s shape, float64 clamped to 0..255 (not
        rounded).
    """
    shape = start.shape
    width = shape[1]
    if hexp == 1 and vexp == 1:
        return full.astype(np.float64)

    def normal(x: np.ndarray) -> np.ndarray:
        return upsample_adjoint(upsample(x, hexp, vexp, full.shape, width=width), hexp, vexp,
                                shape, width)

    x = start.astype(np.float64).copy()
    r = upsample_adjoint(full - upsample(x, hexp, vexp, full.shape, width=width), hexp, vexp,
                         shape, width)
    p = r.copy()
    rr = float(np.sum(r * r))
    for _ in range(iterations):
        if rr <= 1e-9 * x.size:
            break
        ap = normal(p)
        alpha = rr / float(np.sum(p * ap))
        x += alpha * p
        r -= alpha * ap
        new = float(np.sum(r * r))
        p = r + (new / rr) * p
        rr = new
    return np.clip(x, 0.0, 255.0)


def luma_target(luma: np.ndarray, error_cb: np.ndarray, error_cr: np.ndarray) -> np.ndarray:
    """The luma plane that cancels the mean RGB error of decoded chroma.

    Args:
        luma: ``[H, W]`` the original Y plane.
        error_cb, error_cr: ``[H, W]`` decoded minus original Cb and Cr at full
            resolution.

    Returns:
        ``Y - (CB_TO_RGB_SUM e_Cb + CR_TO_RGB_SUM e_Cr) / 3``, clamped to 0..255.
    """
    shift = (CB_TO_RGB_SUM * error_cb + CR_TO_RGB_SUM * error_cr) / 3.0
    return np.clip(luma - shift, 0.0, 255.0)
