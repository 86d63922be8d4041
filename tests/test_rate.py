"""jpegtorch.rate: the rate proxy against the sizes of real files (our writer,
Pillow and cjpeg), and its gradients against finite differences of real sizes."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_sample, synthetic, to_chw
from jpegtorch.formats.jfif_writer import write_coefficients
from jpegtorch.formats.qtables import write_qtables
from PIL import Image

import jpegtorch
from jpegtorch import rate

CJPEG = shutil.which("cjpeg")
SAMPLES = ("kodim05_384x256.png", "kodim23_256x192.png", "kodim15_256x256.png",
           "kodim01_233x151.png")
#: the issue's bound for the proxy, per image
BOUND = 0.05



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

def random_tables(seed: int) -> torch.Tensor:
    """Base tables of several kinds: perturbed Annex K, ramps, flat, wild."""
    rng = np.random.default_rng(seed)
    annex = jpegtorch.quantize.annex_k_tables(dtype=torch.float64).numpy()
    kind = seed % 4
    uv = np.add.outer(np.arange(8), np.arange(8))
    if kind == 0:
        t = annex * np.exp(rng.normal(0, 0.4, (2, 8, 8)))
    elif kind == 1:
        t = np.stack([rng.uniform(3, 30) * (1 + rng.uniform(0, 1.5) * uv) for _ in range(2)])
    elif kind == 2:
        t = np.full((2, 8, 8), rng.uniform(3, 60))
    else:
        t = np.exp(rng.uniform(0, np.log(200), (2, 8, 8)))
    return torch.from_numpy(np.clip(np.round(t), 1, 255))


def real_and_estimate(image: torch.Tensor, quality: int, tables=None, subsampling="4:2:0",
                      optimize=True) -> tuple[float, float]:
    c = jpegtorch.encode(image, quality, subsampling=subsampling, tables=tables, mode="hard")
    real = len(write_coefficients(c, optimize=optimize)) * 8
    huffman = "optimal" if optimize else "standard"
    return real, float(rate.estimate_bits(c, huffman=huffman)[0])


def test_calibration_bound_against_pillow_files() -> None:
    """Annex K at q 10..95, 4:2:0 and 4:4:4: Pillow's optimized files, sizes within ±5%."""
    errors = []
    for name in SAMPLES:
        array = load_sample(name)
        for quality in (10, 30, 50, 75, 95):
            for subsampling, pil in (("4:2:0", 2), ("4:4:4", 0)):
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, "JPEG", quality=quality, optimize=True,
                                            subsampling=pil)
                c = jpegtorch.encode(to_chw(array), quality, subsampling=subsampling,
                                     mode="hard")
                estimate = float(rate.estimate_bits(c)[0])
                errors.append(estimate / (8 * len(buffer.getvalue())) - 1)
    errors = np.array(errors)
    assert np.abs(errors).max() <= BOUND, errors
    assert abs(errors.mean()) < 0.01  # calibrated: no bias to speak of


@pytest.mark.skipif(CJPEG is None, reason="cjpeg not installed")
def test_calibration_bound_random_tables_against_cjpeg(tmp_path: Path) -> None:
    """Random tables through ``cjpeg -qtables ... -optimize``: within ±5%."""
    array = load_sample("kodim05_384x256.png")
    source = tmp_path / "in.ppm"
    Image.fromarray(array).save(source)
    errors = []
    for seed in range(8):
        tables = random_tables(seed)
        path = tmp_path / f"t{seed}.txt"
        write_qtables(path, [tables[0].reshape(-1).long().tolist(),
                             tables[1].reshape(-1).long().tolist()])
        for quality in (15, 50, 85):
            real = len(subprocess.run(
                [CJPEG, "-baseline", "-optimize", "-qtables", str(path), "-quality",
                 str(quality), str(source)], capture_output=True, check=True).stdout) * 8
            c = jpegtorch.encode(to_chw(array), quality, tables=tables, mode="hard")
            errors.append(float(rate.estimate_bits(c)[0]) / real - 1)
    assert np.abs(errors).max() <= BOUND, errors


def test_gray_tiny_and_standard_huffman() -> None:
    gray = torch.from_numpy(load_sample("kodim15_gray_256x256.png", mode="L"))[None]
    for quality in (20, 80):
        real, estimate = real_and_estimate(gray, quality)
        assert abs(estimate / real - 1) <= BOUND
    # a tiny image is mostly headers: DQT, DHT and friends are modelled
    tiny = to_chw(synthetic(8, 16))
    for quality in (10, 90):
        real, estimate = real_and_estimate(tiny, quality)
        assert abs(estimate / real - 1) <= BOUND
    # Annex K Huffman tables: code lengths are known, only stuffing is estimated
    image = to_chw(load_sample("kodim23_256x192.png"))
    for quality in (25, 75):
        real, estimate = real_and_estimate(image, quality, optimize=False)
        assert abs(estimate / real - 1) <= 0.01


def test_batch_dtype_and_modes_agree() -> None:
    images = torch.stack([to_chw(load_sample("kodim15_256x256.png")),
                          to_chw(synthetic(256, 256))])
    quality = torch.tensor([35.0, 80.0])
    hard = rate.estimate_bits(jpegtorch.encode(images, quality, mode="hard"))
    assert hard.dtype == torch.float64 and hard.shape == (2,)
    for i in range(2):
        single = rate.estimate_bits(jpegtorch.encode(images[i], float(quality[i]), mode="hard"))
        assert float(single[0]) == pytest.approx(float(hard[i]), rel=1e-12)
    for dtype in (torch.float32, torch.float64):
        ste = rate.estimate_bits(jpegtorch.encode(images.to(dtype) / 255.0, quality,
                                                  mode="ste"))
        assert ste.dtype == dtype
        assert torch.allclose(ste.double(), hard, rtol=1e-5)
    parts = rate.estimate_rate(jpegtorch.encode(images, quality, mode="hard"))
    assert torch.allclose(parts.data + parts.headers, parts.total)
    assert parts.per_table.shape == (2, 4)


def test_gradient_follows_real_sizes() -> None:
    """d bits / d table entry: the sign everywhere, and the size of a global change."""
    image = to_chw(load_sample("kodim05_384x256.png"))
    base = jpegtorch.quantize.annex_k_tables(dtype=torch.float64)
    quality = 50
    tables = base.clone().requires_grad_(True)
    c = jpegtorch.encode(image[None].double() / 255.0, quality, tables=tables, mode="ste")
    bits = rate.estimate_bits(c)
    bits.sum().backward()
    grad = tables.grad
    assert torch.isfinite(grad).all()
    assert (grad <= 1e-9).all()  # coarser steps never cost bits in the model
    predicted = float((grad * base).sum())  # d bits / d log(scale) of both tables
    sizes = []
    for factor in (1.1, 1 / 1.1):
        c = jpegtorch.encode(image, quality, tables=base * factor, mode="hard")
        sizes.append(len(write_coefficients(c, optimize=True)) * 8)
    actual = (sizes[0] - sizes[1]) / (2 * np.log(1.1))
    assert 0.75 < predicted / actual < 1.33, (predicted, actual)


def test_errors() -> None:
    c = jpegtorch.encode(to_chw(synthetic(16, 16)), 50, mode="hard")
    with pytest.raises(ValueError, match="huffman"):
        rate.estimate_bits(c, huffman="arithmetic")


def test_rgb_files_share_one_huffman_table() -> None:
    """Adobe RGB files (one table pair for all components, APP14) are modelled too."""
    from dataclasses import replace

    image = to_chw(load_sample("kodim23_256x192.png"))
    for quality in (30, 85):
        c = jpegtorch.encode(image, quality, subsampling="4:4:4", mode="hard")
        rgb = replace(c, color="rgb")
        real = len(write_coefficients(rgb, optimize=True)) * 8
        assert abs(float(rate.estimate_bits(rgb)[0]) / real - 1) <= BOUND


# --------------------------------------------------------------------------- issue 12

JPEGTRAN = shutil.which("jpegtran")
#: libjpeg's jpeg_simple_progression for YCbCr (what jpegtran -progressive writes)
SIMPLE_YCC = (((0, 1, 2), 0, 0, 0, 1), ((0,), 1, 5, 0, 2), ((2,), 1, 63, 0, 1),
              ((1,), 1, 63, 0, 1), ((0,), 6, 63, 0, 2), ((0,), 1, 63, 2, 1),
              ((0, 1, 2), 0, 0, 1, 0), ((2,), 1, 63, 1, 0), ((1,), 1, 63, 1, 0),
              ((0,), 1, 63, 1, 0))
#: a script with more refinement: 3 bits of successive approximation, split bands
DEEP = (((0, 1, 2), 0, 0, 0, 0), ((0,), 1, 8, 0, 3), ((0,), 9, 63, 0, 3),
        ((1,), 1, 63, 0, 1), ((2,), 1, 63, 0, 1), ((0,), 1, 63, 3, 2), ((0,), 1, 63, 2, 1),
        ((1,), 1, 63, 1, 0), ((2,), 1, 63, 1, 0), ((0,), 1, 63, 1, 0))


def _jpegtran(data: bytes, script: tuple, tmp_path: Path) -> bytes:
    text = "".join(f"{' '.join(map(str, c))}: {ss} {se} {ah} {al};\n"
                   for c, ss, se, ah, al in script)
    path = tmp_path / "scans.txt"
    path.write_text(text)
    return subprocess.run([JPEGTRAN, "-scans", str(path), "-copy", "none"], input=data,
                          capture_output=True, check=True).stdout


@pytest.mark.skipif(JPEGTRAN is None, reason="needs libjpeg-turbo's jpegtran")
@pytest.mark.parametrize("script", [SIMPLE_YCC, DEEP], ids=["simple", "deep"])
def test_progressive_estimate_against_real_files(script: tuple, tmp_path: Path) -> None:
    """Progressive sizes (jpegtran's files: libjpeg-turbo's progressive coder with
    optimal tables per scan) within 3%, for rounded and trellis-chosen values."""
    errors = []
    for name in SAMPLES[:3]:
        image = to_chw(load_sample(name))
        for quality in (20, 55, 90):
            for options in ({"optimize": True}, {"tune": "psnr"}):
                from jpegtorch.formats.jfif_writer import encode_jpeg

                data = _jpegtran(encode_jpeg(image, quality, **options), script, tmp_path)
                c = jpegtorch.read_coefficients(data)
                estimate = rate.estimate_rate(c, scans=script)
                assert estimate.per_scan is not None and estimate.per_scan.shape == (1, 10)
                errors.append(float(estimate.total[0]) / (len(data) * 8) - 1)
    assert max(abs(e) for e in errors) < 0.03, errors


def test_trellis_files_within_bound() -> None:
    """The baseline estimate of trellis-chosen values (sparser blocks, more EOBs)."""
    from jpegtorch.formats.jfif_writer import encode_jpeg

    for name in SAMPLES:
        image = to_chw(load_sample(name))
        for quality in (15, 50, 85):
            for options in ({"trellis": True}, {"tune": "ssim"}):
                data = encode_jpeg(image, quality, **options)
                c = jpegtorch.read_coefficients(data)
                error = float(rate.estimate_bits(c)[0]) / (len(data) * 8) - 1
                assert abs(error) < 0.03, (name, quality, options, error)


def test_progressive_estimate_gradient_and_errors() -> None:
    image = (to_chw(load_sample("kodim23_256x192.png")).double()[None] / 255).requires_grad_()
    c = jpegtorch.encode(image, 60, mode="ste")
    bits = rate.estimate_bits(c, scans=SIMPLE_YCC)
    grad, = torch.autograd.grad(bits.sum(), image)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one component"):
        rate.estimate_bits(c, scans=[((0, 1), 1, 63, 0, 0)])
    with pytest.raises(ValueError, match="optimal"):
        rate.estimate_bits(c, scans=SIMPLE_YCC, huffman="standard")
