"""Trellis quantization and per-image tuning (issue 12): exactness of the analysis,
the trellis against libjpeg's rounding, rate-distortion gains, standard files that
every decoder reads alike, monotone quality, the chroma fit, the CLI."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import load_sample, synthetic, to_chw
from jpegtorch.cli.main import cli
from jpegtorch.formats.jfif_writer import encode_jpeg, resolve_base_tables
from PIL import Image

import jpegtorch
from jpegtorch import metrics
from jpegtorch.errors import JPEGError
from jpegtorch.optimize import analysis, chroma, trellis, tuning

DJPEG = shutil.which("djpeg")


def rgb_psnr(data: bytes, image: torch.Tensor) -> float:
    decoded = torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1)
    return float(metrics.psnr(decoded[None], image[None])[0])


def quant_for(quality: int, tables: str | None, ncomp: int) -> np.ndarray:
    scaled = tuning._scaled_tables(quality, resolve_base_tables(tables))
    return np.stack([scaled[0]] + [scaled[1]] * (ncomp - 1))


def layout_of(an: analysis.Analysis) -> trellis.Layout:
    return trellis.Layout(sampling=an.sampling, mcu_grid=an.mcu_grid,
                          real=tuple(r.shape[:2] for r in an.raw))


# --------------------------------------------------------------------------- analysis


@pytest.mark.parametrize(("shape", "subsampling", "gray"), [
    ((37, 53), "4:2:0", False), ((40, 29), "4:2:2", False), ((17, 9), "4:4:4", False),
    ((23, 41), "4:2:0", True)])
def test_analysis_rounds_to_the_pipeline_coefficients(shape: tuple[int, int], subsampling: str,
                                                      gray: bool) -> None:
    """libjpeg's quantizer applied to ``analyze``'s FDCT output gives exactly
    ``jpegtorch.encode``'s coefficients (every real block, every component)."""
    image = to_chw(synthetic(*shape, seed=3))
    if gray:
        image = image[:1].contiguous()
    an = analysis.analyze(image, subsampling)
    quant = quant_for(60, "tuned-psnr", an.num_components)
    ref = jpegtorch.encode(image, 60, subsampling=subsampling,
                           tables=resolve_base_tables("tuned-psnr"), mode="hard")
    for c in range(an.num_components):
        raw = an.raw[c].astype(np.int64)
        q8 = 8 * quant[c]
        rounded = np.sign(raw) * ((np.abs(raw) + q8 // 2) // q8)
        hib, wib = raw.shape[:2]
        expected = ref.blocks[c][0, :hib, :wib].reshape(hib, wib, 64).numpy()
        np.testing.assert_array_equal(rounded, expected)


# --------------------------------------------------------------------------- trellis


def test_tiny_lambda_gives_libjpeg_rounding() -> None:
    """As lambda -> 0 the trellis minimises distortion alone: every value is the
    nearest multiple (libjpeg's rounding), except at exact half steps."""
    image = to_chw(load_sample("kodim23_256x192.png"))
    an = analysis.analyze(image, "4:2:0")
    quant = quant_for(50, None, 3)
    weights = np.stack([trellis.color_weights((2, 2) if c else (1, 1), c) for c in range(3)])
    result = trellis.trellis_quantize(list(an.raw), quant, weights, 1e-9, layout_of(an),
                                      (0, 1, 1))
    ref = jpegtorch.encode(image, 50, mode="hard")
    for c in range(3):
        raw = an.raw[c].astype(np.int64)
        hib, wib = raw.shape[:2]
        chosen = result.blocks[c][:hib, :wib]
        expected = ref.blocks[c][0, :hib, :wib].reshape(hib, wib, 64).numpy()
        tie = (np.abs(raw) % (8 * quant[c])) == 4 * quant[c]
        assert np.array_equal(chosen[~tie], expected[~tie])
        assert (chosen != expected).sum() <= tie.sum()


def test_trellis_beats_rounding_on_its_own_cost() -> None:
    """The chosen values cost less (D + lambda R, under optimal Huffman codes) than
    libjpeg's rounding, and the passes alternate with the Huffman tables."""
    image = to_chw(load_sample("kodim05_384x256.png"))
    an = analysis.analyze(image, "4:2:0")
    quant = quant_for(75, "tuned-psnr", 3)
    weights = np.stack([trellis.color_weights((2, 2) if c else (1, 1), c) for c in range(3)])
    lam = trellis.trellis_lambda(quant[0])
    result = trellis.trellis_quantize(list(an.raw), quant, weights, lam, layout_of(an),
                                      (0, 1, 1))
    rounding = trellis.trellis_quantize(list(an.raw), quant, weights, 1e-9, layout_of(an),
                                        (0, 1, 1))
    assert result.cost < rounding.distortion + lam * rounding.bits
    assert result.bits < 0.9 * rounding.bits
    assert 1 <= result.passes <= 4


def test_trellis_rd_gain_on_real_files() -> None:
    """At equal RGB PSNR the trellis files are clearly smaller than libjpeg's
    (BD-rate over q 40..90 on two samples, real files decoded by Pillow)."""
    qualities = (40, 55, 70, 90)
    gains = []
    for name in ("kodim05_384x256.png", "kodim15_256x256.png"):
        image = to_chw(load_sample(name))
        plain = [encode_jpeg(image, q, optimize=True) for q in qualities]
        trell = [encode_jpeg(image, q, trellis=True) for q in qualities]
        gains.append(metrics.bd_rate([len(d) for d in plain], [rgb_psnr(d, image) for d in plain],
                                     [len(d) for d in trell],
                                     [rgb_psnr(d, image) for d in trell]))
    assert max(gains) < -8.0, gains


def test_tune_psnr_beats_trellis_alone() -> None:
    """The per-image choices (chroma fitted to the decoder, compensating luma) add
    to the trellis with the same tables."""
    image = to_chw(load_sample("kodim23_256x192.png"))
    qualities = (40, 60, 80, 90)
    alone = [encode_jpeg(image, q, trellis=True, tables="tuned-psnr") for q in qualities]
    tuned = [encode_jpeg(image, q, tune="psnr") for q in qualities]
    gain = metrics.bd_rate([len(d) for d in alone], [rgb_psnr(d, image) for d in alone],
                           [len(d) for d in tuned], [rgb_psnr(d, image) for d in tuned])
    assert gain < -2.0, gain


# --------------------------------------------------------------------------- standard files


def _decoders(data: bytes, tmp_path: Path) -> list[np.ndarray]:
    import cv2

    out = [np.array(Image.open(io.BytesIO(data)))]
    flag = cv2.IMREAD_UNCHANGED
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    out.append(decoded[..., ::-1] if decoded.ndim == 3 else decoded)
    out.append(jpegtorch.decode_jpeg(data).permute(1, 2, 0).squeeze(-1).numpy())
    if DJPEG:
        path = tmp_path / "f.jpg"
        path.write_bytes(data)
        run = subprocess.run([DJPEG, "-strict", str(path)], capture_output=True, check=True)
        assert run.stderr == b"", run.stderr  # no libjpeg-turbo warning
        out.append(np.array(Image.open(io.BytesIO(run.stdout))))
    return out


@pytest.mark.parametrize(("options", "subsampling", "gray", "shape"), [
    ({"tune": "psnr"}, "4:2:0", False, None),
    ({"tune": "ssim"}, "4:2:2", False, (61, 45)),
    ({"trellis": True, "restart_interval": 3}, "4:2:0", False, (75, 83)),
    ({"trellis": True}, "4:4:4", False, (33, 70)),
    ({"tune": "psnr"}, "4:2:0", True, (50, 31)),
    ({"tune": "psnr", "restart_interval": 2}, "4:2:0", False, (53, 77)),
    ({"tune": "ssim"}, "4:2:0", False, (9, 250)),
])
def test_files_decode_identically_everywhere(options: dict, subsampling: str, gray: bool,
                                             shape: tuple[int, int] | None,
                                             tmp_path: Path) -> None:
    """Trellis and tuned files are standard baseline JPEGs: Pillow, OpenCV, djpeg
    (-strict, no warning) and our decoder give the same pixels."""
    array = load_sample("kodim05_384x256.png")
    if shape is not None:
        array = array[: shape[0], : shape[1]]
    image = to_chw(array)
    if gray:
        image = image[:1].contiguous()
    data = encode_jpeg(image, 70, subsampling=subsampling, **options)
    assert data[:2] == b"\xff\xd8" and b"\xff\xc0" in data
    first, *others = _decoders(data, tmp_path)
    for other in others:
        np.testing.assert_array_equal(first, other)


# --------------------------------------------------------------------------- quality scale


@pytest.mark.parametrize("options", [{"tune": "psnr"}, {"tune": "ssim"}, {"trellis": True}])
def test_quality_is_monotone(options: dict) -> None:
    """Higher quality: a larger file and a better PSNR, across the whole range."""
    image = to_chw(load_sample("kodim15_256x256.png"))
    sizes, quality = [], []
    for q in (5, 20, 35, 50, 65, 80, 90, 97):
        data = encode_jpeg(image, q, **options)
        sizes.append(len(data))
        quality.append(rgb_psnr(data, image))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    assert quality == sorted(quality), quality


# --------------------------------------------------------------------------- chroma


def test_upsampling_model_and_its_adjoint() -> None:
    from jpegtorch.sampling import upsample as exact_upsample

    rng = np.random.default_rng(0)
    for shape, (hexp, vexp) in (((7, 9), (2, 2)), ((6, 2), (2, 2)), ((5, 8), (2, 1)),
                                ((6, 5), (1, 2))):
        x = rng.integers(0, 256, shape).astype(np.float64)
        full = (shape[0] * vexp - 1, shape[1] * hexp - 1)
        g = rng.random(full)
        up = chroma.upsample(x, hexp, vexp, full)
        back = chroma.upsample_adjoint(g, hexp, vexp, shape, shape[1])
        assert abs(np.sum(up * g) - np.sum(x * back)) < 1e-9
        exact = exact_upsample(torch.from_numpy(x)[None], hexp, vexp, "hard")[0].numpy()
        assert np.abs(exact[: full[0], : full[1]] - up).max() <= 0.5  # libjpeg's rounding


def test_fitted_chroma_is_closer_after_upsampling() -> None:
    image = to_chw(load_sample("kodim23_256x192.png"))
    an = analysis.analyze(image, "4:2:0")
    for c in (1, 2):
        own = analysis.component_size(an, c)
        box = an.planes[c][: own[0], : own[1]]
        fitted = np.round(chroma.fit_downsampled(an.full[c], box, 2, 2))
        errors = [np.mean((chroma.upsample(p, 2, 2, an.size) - an.full[c]) ** 2)
                  for p in (box, fitted)]
        assert errors[1] < 0.85 * errors[0], errors


# --------------------------------------------------------------------------- API and CLI


def test_errors() -> None:
    image = to_chw(load_sample("kodim23_256x192.png"))
    with pytest.raises(JPEGError, match="tune"):
        encode_jpeg(image, 75, tune="lpips")
    with pytest.raises(JPEGError, match="quality"):
        tuning.encode_optimized(image, 0, tune="psnr")
    with pytest.raises(JPEGError, match="uint8"):
        tuning.encode_optimized(image.float(), 50)
    with pytest.raises(ValueError, match="lambda"):
        an = analysis.analyze(image, "4:2:0")
        trellis.trellis_quantize(list(an.raw), quant_for(50, None, 3), np.ones((3, 64)), 0.0,
                                 layout_of(an), (0, 1, 1))


def test_cli_trellis_and_tune(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(load_sample("kodim23_256x192.png")).save(source)
    runner = CliRunner()
    sizes = {}
    for flags in ((), ("--optimize",), ("--trellis",), ("--tune", "psnr"), ("--tune", "ssim")):
        out = tmp_path / f"out{len(sizes)}.jpg"
        result = runner.invoke(cli, ["encode", str(source), "-q", "60", *flags, "-o", str(out)])
        assert result.exit_code == 0, result.output
        sizes[flags] = out.stat().st_size
        assert Image.open(out).size == (256, 192)
    assert sizes[("--trellis",)] < sizes[("--optimize",)] < sizes[()]
    result = runner.invoke(cli, ["encode", str(source), "--codec", "learned", "--tune", "psnr",
                                 "-o", str(tmp_path / "x.jtc")])
    assert result.exit_code != 0 and "--codec jpeg only" in result.output
