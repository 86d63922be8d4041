"""The decoder's compiled stage kernels (jpegtorch.kernels) against the torch
formulation of each stage and against Pillow (libjpeg-turbo), and the band
driver against whole-image decoding.

- IDCT + range limit: identical to ``jpegtorch.dct.idct`` for random blocks
  of every magnitude (16-bit coefficients, 16-bit tables);
- up-sampling + colour: ``decode_coefficients`` identical to the torch
  pipeline (``pipeline._decode``) for every sampling the decoder supports
  (also the odd ones: 4:4:0, 4:1:1, 2x1/1x2 mixes, 4x4, 3x1...), odd sizes,
  grey, RGB, quality 1..100 and custom tables;
- bands: a single-scan file streamed band by band (bands of one iMCU row
  forced) gives the pixels of the whole-image decode and of Pillow, with
  restarts, every sampling, odd sizes; progressive files likewise;
- ``jpegtorch.decode`` in hard mode on CPU runs the kernels (int16, int32,
  int64, integer-valued float coefficients, batches) with the torch result;
- ``jtorch decode`` / ``jtorch info`` of a JPEG do not import torch.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import pillow_decode, synthetic, to_chw
from jpegtorch.formats.jfif_reader import decode_jpeg, decode_jpeg_array, read_coefficients
from jpegtorch.formats.jfif_reader import scans as reader_scans
from PIL import Image

import jpegtorch
from jpegtorch import Coefficients
from jpegtorch import pipeline as pipeline_module
from jpegtorch.dct import idct
from jpegtorch.kernels.dct import idct_plane
from jpegtorch.kernels.decode import BandDecoder, decode_coefficients, geometry

HAVE_CJPEG = shutil.which("cjpeg") is not None
needs_cjpeg = pytest.mark.skipif(not HAVE_CJPEG, reason="needs cjpeg (libjpeg-turbo-progs)")
SAMPLINGS = [
    ((1, 1), (1, 1), (1, 1)), ((2, 1), (1, 1), (1, 1)), ((2, 2), (1, 1), (1, 1)),
    ((1, 2), (1, 1), (1, 1)), ((4, 1), (1, 1), (1, 1)), ((4, 2), (1, 1), (1, 1)),
    ((1, 4), (1, 1), (1, 1)), ((2, 2), (2, 1), (1, 2)), ((1, 1), (2, 2), (2, 2)),
    ((4, 4), (2, 2), (1, 1)), ((3, 1), (1, 1), (1, 1)), ((2, 4), (1, 2), (2, 4)),
    ((2, 2), (2, 2), (2, 2)),
]
SIZES = [(1, 1), (2, 3), (5, 3), (8, 8), (9, 17), (16, 16), (17, 13), (37, 29), (33, 70)]


def torch_pixels(coefficients: Coefficients) -> np.ndarray:
    """The torch formulation of every stage (what autograd and GPUs run)."""
    with torch.no_grad():
        return pipeline_module._decode(coefficients, "hard", None).numpy()


def random_coefficients(sampling, size, rng, magnitude=60, zeros=0.8, color="ycbcr",
                        qmax=20) -> Coefficients:
    height, width = size
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    rows, cols = -(-height // (8 * vmax)), -(-width // (8 * hmax))
    blocks = []
    for h, v in sampling:
        x = rng.integers(-magnitude, magnitude + 1, (1, rows * v, cols * h, 8, 8))
        x[rng.random(x.shape) < zeros] = 0
        x[..., 0, 0] = rng.integers(-magnitude * 8, magnitude * 8 + 1, x.shape[:3])
        blocks.append(torch.from_numpy(x.astype(np.int16)))
    qt = torch.from_numpy(rng.integers(1, qmax + 1, (1, len(sampling), 8, 8)).astype(np.int32))
    return Coefficients(blocks=tuple(blocks), qtables=qt, sampling=tuple(sampling), size=size,
                        color=color)


def kernel_pixels(coefficients: Coefficients) -> np.ndarray:
    return decode_coefficients([b[0].numpy() for b in coefficients.blocks],
                               coefficients.qtables[0].numpy(), coefficients.sampling,
                               coefficients.size, coefficients.color, planar=True)[None]


# --------------------------------------------------------------------------
# stage kernels == torch formulation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("magnitude, qmax", [(3, 2), (40, 16), (1000, 255), (32767, 65535)])
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_idct_equals_the_torch_stage(magnitude: int, qmax: int, dtype) -> None:
    rng = np.random.default_rng(magnitude)
    coefs = rng.integers(-magnitude, magnitude + 1, (12, 15, 8, 8)).astype(dtype)
    coefs[rng.random(coefs.shape) < 0.6] = 0
    coefs[0, :, 1:, :] = 0  # whole zero columns / rows: the shortcuts
    coefs[1, :, :, 1:] = 0
    table = rng.integers(1, qmax + 1, (8, 8)).astype(np.int32)
    ours = idct_plane(coefs, table)
    ref = idct(torch.from_numpy(coefs.astype(np.float64)) * torch.from_numpy(table).double(),
               "hard")
    ref = ref.permute(0, 2, 1, 3).reshape(12 * 8, 15 * 8).to(torch.uint8).numpy()
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=lambda s: ",".join(f"{h}x{v}" for h, v in s))
def test_every_sampling_and_odd_size_equals_the_torch_pipeline(sampling) -> None:
    rng = np.random.default_rng(len(sampling) + sampling[0][0] * 7 + sampling[1][1])
    for size in SIZES:
        coefficients = random_coefficients(sampling, size, rng)
        np.testing.assert_array_equal(kernel_pixels(coefficients), torch_pixels(coefficients),
                                      err_msg=f"{sampling} {size}")


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_gray_and_rgb_equal_the_torch_pipeline(color: str) -> None:
    rng = np.random.default_rng(5)
    sampling = ((2, 2),) if color == "gray" else ((1, 1), (2, 1), (1, 1))
    for size in SIZES:
        coefficients = random_coefficients(sampling, size, rng, color=color)
        np.testing.assert_array_equal(kernel_pixels(coefficients), torch_pixels(coefficients))


def test_every_quality_and_custom_tables_equal_the_torch_pipeline() -> None:
    image = to_chw(synthetic(29, 41, seed=11))
    for quality in range(1, 101):
        sub = ("4:2:0", "4:2:2", "4:4:4", "4:4:0", "4:1:1")[quality % 5]
        coefficients = jpegtorch.encode(image, quality, subsampling=sub, mode="hard")
        np.testing.assert_array_equal(kernel_pixels(coefficients), torch_pixels(coefficients),
                                      err_msg=f"q{quality} {sub}")
    tables = torch.randint(1, 255, (2, 8, 8)).double()
    coefficients = jpegtorch.encode(image, 50, tables=tables, mode="hard")
    np.testing.assert_array_equal(kernel_pixels(coefficients), torch_pixels(coefficients))
    gray = jpegtorch.encode(image[:1], 37, mode="hard")
    np.testing.assert_array_equal(kernel_pixels(gray), torch_pixels(gray))


def test_extreme_coefficients_saturate_like_the_torch_pipeline() -> None:
    """Garbage (corrupt) data: 16-bit coefficients, 16-bit tables; saturating range limit."""
    rng = np.random.default_rng(2)
    coefficients = random_coefficients(((2, 2), (1, 1), (1, 1)), (37, 45), rng,
                                       magnitude=32767, zeros=0.5, qmax=65535)
    np.testing.assert_array_equal(kernel_pixels(coefficients), torch_pixels(coefficients))


# --------------------------------------------------------------------------
# jpegtorch.decode dispatches to the kernels
# --------------------------------------------------------------------------


def test_pipeline_decode_runs_the_kernels_in_hard_mode_on_cpu(monkeypatch) -> None:
    image = to_chw(synthetic(23, 35, seed=4))
    batch = torch.stack([image, image.flip(-1)])
    coefficients = jpegtorch.encode(batch, 60, subsampling="4:2:0", mode="hard")
    expected = torch_pixels(coefficients)
    calls = []
    real = pipeline_module._decode_compiled
    monkeypatch.setattr(pipeline_module, "_decode_compiled",
                        lambda c: calls.append(1) or real(c))
    for dtype in (torch.int16, torch.int32, torch.int64):
        blocks = tuple(b.to(dtype) for b in coefficients.blocks)
        out = jpegtorch.decode(Coefficients(blocks=blocks, qtables=coefficients.qtables,
                                            sampling=coefficients.sampling,
                                            size=coefficients.size))
        assert out.dtype == torch.uint8 and out.is_contiguous()
        np.testing.assert_array_equal(out.numpy(), expected)
    assert len(calls) == 3
    # float coefficients of a hard-mode float encode: floats in [0, 1] out, same pixels
    floats = jpegtorch.encode(batch.float() / 255, 60, subsampling="4:2:0", mode="hard")
    out = jpegtorch.decode(floats, mode="hard")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, pipeline_module._decode(floats, "hard", None), rtol=0,
                               atol=0)
    # the hard-mode round trip jpeg() equals Pillow
    assert torch.equal(jpegtorch.jpeg(image, 75, mode="hard"),
                       to_chw(pillow_decode(_pillow_jpeg(image, 75))))


def test_pipeline_decode_keeps_autograd_on_the_torch_path() -> None:
    image = to_chw(synthetic(16, 24, seed=1)).float().div(255).requires_grad_()
    out = jpegtorch.jpeg(image, 50, mode="ste")
    out.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def _pillow_jpeg(image: torch.Tensor, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# bands: streamed == whole image == Pillow
# --------------------------------------------------------------------------


def _cjpeg(image: np.ndarray, *options: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PPM")
    return subprocess.run(["cjpeg", *options], input=buffer.getvalue(), capture_output=True,
                          check=True).stdout


def _whole_image(data: bytes) -> np.ndarray:
    c = read_coefficients(data)
    return decode_coefficients([b[0].numpy() for b in c.blocks], c.qtables[0].numpy(),
                               c.sampling, c.size, c.color)


@needs_cjpeg
@pytest.mark.parametrize("options", [
    ("-sample", "2x2"), ("-sample", "2x1"), ("-sample", "1x1"), ("-sample", "1x2"),
    ("-sample", "4x1"), ("-sample", "4x2"), ("-sample", "2x1,1x2,1x1"),
    ("-sample", "2x2", "-restart", "1"), ("-sample", "1x2", "-restart", "3B"),
    ("-grayscale",), ("-grayscale", "-sample", "2x2"), ("-rgb",),
    ("-sample", "2x2", "-progressive"), ("-arithmetic", "-sample", "2x2", "-restart", "2"),
    ("-arithmetic", "-progressive"),
], ids=lambda o: " ".join(o))
@pytest.mark.parametrize("size", [(1, 1), (13, 17), (45, 61), (70, 33)])
def test_bands_equal_the_whole_image_and_pillow(monkeypatch, options, size) -> None:
    image = synthetic(*size, seed=size[0])
    data = _cjpeg(image, *options)
    reference = pillow_decode(data)
    whole = _whole_image(data)
    for band_blocks in (1, 7, 1 << 15):  # one iMCU row per band, a few, all at once
        monkeypatch.setattr(reader_scans, "BAND_BLOCKS", band_blocks)
        streamed = decode_jpeg_array(data)
        np.testing.assert_array_equal(streamed, whole)
        np.testing.assert_array_equal(streamed.squeeze(-1) if streamed.shape[2] == 1
                                      else streamed, reference)


def test_band_decoder_fed_row_by_row_equals_one_call() -> None:
    rng = np.random.default_rng(9)
    coefficients = random_coefficients(((2, 2), (1, 1), (1, 1)), (45, 37), rng)
    geo = geometry(coefficients.sampling, coefficients.size)
    decoder = BandDecoder(geo, coefficients.qtables[0].numpy(), "ycbcr")
    for k in range(geo.imcu_rows):
        band = tuple(b[0, k * v : (k + 1) * v].contiguous().numpy().reshape(-1)
                     for b, v in zip(coefficients.blocks, geo.v, strict=True))
        decoder.rows(band, k, 1)
    assert decoder.done
    np.testing.assert_array_equal(decoder.out.transpose(2, 0, 1)[None],
                                  torch_pixels(coefficients))
    with pytest.raises(ValueError, match="in order"):
        decoder.rows(band, 0, 1)


def test_decode_jpeg_returns_a_contiguous_tensor_sharing_the_kernel_output() -> None:
    data = _pillow_jpeg(to_chw(synthetic(31, 47, seed=2)), 80)
    out = decode_jpeg(data)
    assert out.dtype == torch.uint8 and out.is_contiguous() and out.shape == (3, 31, 47)
    np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), pillow_decode(data))


# --------------------------------------------------------------------------
# the command line's JPEG paths do not import torch
# --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["decode", "info"])
def test_cli_jpeg_paths_do_not_import_torch(tmp_path: Path, command: str) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(_pillow_jpeg(to_chw(synthetic(40, 56, seed=3)), 75))
    args = [command, str(src)] + (["-o", str(tmp_path / "out.png")] if command == "decode"
                                  else [])
    code = ("import sys\nfrom jpegtorch.cli.main import cli\n"
            f"sys.argv = ['jtorch', *{args!r}]\n"
            "try:\n    cli()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=True)
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH", out.stdout + out.stderr
    if command == "decode":
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")),
                                      pillow_decode(src.read_bytes()))
