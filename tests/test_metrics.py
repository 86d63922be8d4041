"""jpegtorch.metrics: PSNR/SSIM against scikit-image, Bjøntegaard deltas against
closed forms and an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import load_sample, pillow_roundtrip, synthetic
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jpegtorch import metrics


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

def pair(quality: int = 30) -> tuple[np.ndarray, np.ndarray]:
    a = load_sample("kodim23_256x192.png")
    return a, pillow_roundtrip(a, quality)


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1)[None].double() / 255.0


def test_psnr_matches_scikit_image() -> None:
    a, b = pair()
    expected = peak_signal_noise_ratio(a, b, data_range=255)
    assert float(metrics.psnr(chw(a), chw(b))[0]) == pytest.approx(expected, abs=1e-9)
    # uint8 tensors: data range 255
    ua = torch.from_numpy(a).permute(2, 0, 1)
    ub = torch.from_numpy(b).permute(2, 0, 1)
    assert float(metrics.psnr(ua, ub)[0]) == pytest.approx(expected, abs=1e-6)
    assert math.isinf(float(metrics.psnr(ua, ua)[0]))
    assert float(metrics.mse(chw(a), chw(b))[0]) == pytest.approx(
        np.mean((a / 255.0 - b / 255.0) ** 2))


def test_psnr_per_image_in_a_batch() -> None:
    a, b = pair(30)
    c = pillow_roundtrip(a, 70)
    batch = metrics.psnr(torch.cat([chw(b), chw(c)]), torch.cat([chw(a), chw(a)]))
    assert batch.shape == (2,)
    assert float(batch[1]) > float(batch[0])
    assert float(batch[1]) == pytest.approx(peak_signal_noise_ratio(a, c, data_range=255))


def test_ssim_matches_scikit_image_gaussian_ssim() -> None:
    a, b = pair()
    expected = structural_similarity(a / 255.0, b / 255.0, data_range=1.0, channel_axis=2,
                                     gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert float(metrics.ssim(chw(a), chw(b))[0]) == pytest.approx(expected, abs=1e-4)
    assert float(metrics.ssim(chw(a), chw(a))[0]) == pytest.approx(1.0, abs=1e-9)


def test_ms_ssim_range_gradients_and_size_limit() -> None:
    a, b = pair(20)
    x = chw(b).requires_grad_(True)
    value = metrics.ms_ssim(x, chw(a))
    assert 0.8 < float(value.detach()[0]) < 1.0
    value.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    small = torch.rand(1, 3, 100, 200)
    with pytest.raises(ValueError, match="161"):
        metrics.ms_ssim(small, small)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(small, small[..., :100])


def test_db() -> None:
    assert metrics.db(0.9) == pytest.approx(10.0)
    assert float(metrics.db(torch.tensor(0.99))) == pytest.approx(20.0)


# --------------------------------------------------------------------------- BD-rate

# rate-distortion points of two real codecs (Pillow at q 30..90, Annex K tables,
# 4:2:0 and 4:4:4) measured on a sample, so the curves have realistic shapes
def jpeg_curve(subsampling: int) -> tuple[list[float], list[float]]:
    import io

    from PIL import Image

    a = load_sample("kodim05_384x256.png")
    rates, psnrs = [], []
    for q in (30, 45, 60, 75, 90):
        buffer = io.BytesIO()
        Image.fromarray(a).save(buffer, "JPEG", quality=q, subsampling=subsampling,
                                optimize=True)
        b = np.array(Image.open(io.BytesIO(buffer.getvalue())))
        rates.append(len(buffer.getvalue()) * 8 / a[..., 0].size)
        psnrs.append(peak_signal_noise_ratio(a, b, data_range=255))
    return rates, psnrs


def reference_bd_rate(r1, d1, r2, d2) -> float:
    """Bjøntegaard's VCEG-M33 procedure as commonly scripted: natural log, np.polyfit."""
    l1, l2 = np.log(r1), np.log(r2)
    p1, p2 = np.polyfit(d1, l1, 3), np.polyfit(d2, l2, 3)
    lo, hi = max(min(d1), min(d2)), min(max(d1), max(d2))
    i1, i2 = np.polyint(p1), np.polyint(p2)
    avg = ((np.polyval(i2, hi) - np.polyval(i2, lo))
           - (np.polyval(i1, hi) - np.polyval(i1, lo))) / (hi - lo)
    return (math.exp(avg) - 1) * 100


def test_bd_rate_closed_forms() -> None:
    rates, psnrs = jpeg_curve(2)
    assert metrics.bd_rate(rates, psnrs, rates, psnrs) == pytest.approx(0.0, abs=1e-9)
    # the same quality for 10% fewer bits at every point: exactly -10%
    assert metrics.bd_rate(rates, psnrs, [0.9 * r for r in rates], psnrs) == pytest.approx(
        -10.0, abs=1e-9)
    assert metrics.bd_rate([0.9 * r for r in rates], psnrs, rates, psnrs) == pytest.approx(
        100 / 0.9 - 100, abs=1e-9)
    # units do not matter; neither does the order of the points
    bits = [r * 98304 for r in rates]
    order = [3, 0, 4, 1, 2]
    assert metrics.bd_rate([bits[i] for i in order], [psnrs[i] for i in order],
                           [0.9 * b for b in bits], psnrs) == pytest.approx(-10.0, abs=1e-9)
    # BD-quality: +0.5 dB everywhere at the same rates
    assert metrics.bd_quality(rates, psnrs, rates, [p + 0.5 for p in psnrs]) == pytest.approx(
        0.5, abs=1e-9)


def test_bd_rate_matches_an_independent_implementation() -> None:
    r1, d1 = jpeg_curve(2)
    r2, d2 = jpeg_curve(0)
    ours = metrics.bd_rate(r1, d1, r2, d2)
    assert ours == pytest.approx(reference_bd_rate(r1, d1, r2, d2), abs=1e-6)
    # 4:4:4 costs more bits at equal PSNR on this image than 4:2:0 at low rates...
    assert math.isfinite(ours)
    # ...and swapping anchor and test inverts the average log-ratio
    back = metrics.bd_rate(r2, d2, r1, d1)
    assert math.log1p(ours / 100) == pytest.approx(-math.log1p(back / 100), abs=1e-9)


def test_bd_rate_with_few_points_and_errors() -> None:
    rates, psnrs = jpeg_curve(2)
    # three points: a quadratic fit, still exact for a pure rate scaling
    assert metrics.bd_rate(rates[:3], psnrs[:3], [0.8 * r for r in rates[:3]],
                           psnrs[:3]) == pytest.approx(-20.0, abs=1e-9)
    with pytest.raises(ValueError, match="overlap"):
        metrics.bd_rate(rates, psnrs, rates, [p + 100 for p in psnrs])
    with pytest.raises(ValueError, match="positive"):
        metrics.bd_rate([0.0, *rates[1:]], psnrs, rates, psnrs)
    with pytest.raises(ValueError, match="rates but"):
        metrics.bd_rate(rates[:4], psnrs, rates, psnrs)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.bd_rate(rates[:1], psnrs[:1], rates, psnrs)
    with pytest.raises(ValueError, match="finite"):
        metrics.bd_rate(rates, [math.inf, *psnrs[1:]], rates, psnrs)


def test_synthetic_images_have_lower_psnr_after_heavy_jpeg() -> None:
    a = synthetic(64, 64)
    b = pillow_roundtrip(a, 10)
    c = pillow_roundtrip(a, 90)
    assert metrics.psnr(chw(b), chw(a)) < metrics.psnr(chw(c), chw(a))


def test_bd_rate_pchip_matches_scipy() -> None:
    """method="pchip": the monotone piecewise-cubic interpolant (scipy as the reference)."""
    interpolate = pytest.importorskip("scipy.interpolate")
    r1, d1 = jpeg_curve(2)
    r2, d2 = jpeg_curve(0)

    def reference(ra, da, rb, db) -> float:
        lo, hi = max(min(da), min(db)), min(max(da), max(db))
        areas = []
        for r, d in ((ra, da), (rb, db)):
            order = np.argsort(d)
            f = interpolate.PchipInterpolator(np.asarray(d)[order], np.log10(r)[order])
            areas.append(float(f.integrate(lo, hi)))
        return (10 ** ((areas[1] - areas[0]) / (hi - lo)) - 1) * 100

    ours = metrics.bd_rate(r1, d1, r2, d2, method="pchip")
    assert ours == pytest.approx(reference(r1, d1, r2, d2), abs=1e-5)
    # a 2-point curve against a 5-point one; pure rate scaling stays exact
    assert metrics.bd_rate(r1[:2], d1[:2], r2, d2, method="pchip") == pytest.approx(
        reference(r1[:2], d1[:2], r2, d2), abs=1e-5)
    assert metrics.bd_rate(r1, d1, [0.8 * r for r in r1], d1, method="pchip") == pytest.approx(
        -20.0, abs=1e-9)
    assert metrics.bd_quality(r1, d1, r1, [p + 0.5 for p in d1], method="pchip") == pytest.approx(
        0.5, abs=1e-9)
    with pytest.raises(ValueError, match="method"):
        metrics.bd_rate(r1, d1, r2, d2, method="spline")
    with pytest.raises(ValueError, match="distinct"):
        metrics.bd_rate([*r1, r1[0]], [*d1, d1[0]], r2, d2, method="pchip")
