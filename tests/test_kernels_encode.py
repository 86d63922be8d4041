"""The compiled encoder stages (jpegtorch.kernels) equal the torch formulation
and libjpeg-turbo; the banded, torch-free JPEG encoder equals the whole-image
one and Pillow/cjpeg byte for byte."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_sample, pillow_jpeg, synthetic, to_chw
from jpegtorch.formats import jfif_writer
from jpegtorch.formats.jfif_writer import encode_array, encode_jpeg, encode_rows
from PIL import Image, ImageFile

import jpegtorch
from jpegtorch import pipeline
from jpegtorch.kernels import color as kcolor
from jpegtorch.kernels import dct as kdct
from jpegtorch.kernels import quantize as kquantize
from jpegtorch.kernels import sampling as ksampling

ALL_SUBSAMPLINGS = ["4:4:4", "4:2:2", "4:2:0", "4:4:0", "4:1:1"]
PIL_SUBSAMPLINGS = ["4:4:4", "4:2:2", "4:2:0"]
ODD_SIZES = [(1, 1), (2, 3), (8, 9), (17, 13), (16, 17), (31, 45), (333, 217)]
CJPEG = shutil.which("cjpeg")
CJPEG_SAMPLE = {"4:4:4": "1x1", "4:2:2": "2x1", "4:2:0": "2x2", "4:4:0": "1x2",
                "4:1:1": "4x1"}


def pillow_bytes(array: np.ndarray, quality: int, subsampling: str = "4:2:0",
                 **kwargs) -> bytes:
    """Pillow's file, with a buffer large enough for optimized noise."""
    saved = ImageFile.MAXBLOCK
    ImageFile.MAXBLOCK = 1 << 24
    try:
        return pillow_jpeg(array, quality, subsampling, **kwargs)
    finally:
        ImageFile.MAXBLOCK = saved


def torch_formulation(image: torch.Tensor, quality, subsampling: str = "4:2:0",
                      tables: torch.Tensor | None = None) -> jpegtorch.Coefficients:
    """The torch stages in hard mode (what ``encode`` ran before the kernels)."""
    with torch.no_grad():
        return pipeline._encode(image, quality, subsampling, tables, "hard", None)


def assert_same_coefficients(a: jpegtorch.Coefficients, b: jpegtorch.Coefficients) -> None:
    assert a.sampling == b.sampling and a.size == b.size and a.color == b.color
    assert a.qtable_slots == b.qtable_slots and a.mode == b.mode
    assert a.qtables.dtype == b.qtables.dtype and torch.equal(a.qtables, b.qtables)
    for x, y in zip(a.blocks, b.blocks, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x, y)


# --------------------------------------------------------------------------- stage kernels


def test_constants_are_libjpegs() -> None:
    assert kcolor.RGB_TO_YCBCR_FIXED.tolist() == [
        [19595, 38470, 7471], [-11059, -21709, 32768], [32768, -27439, -5329]]
    assert [kcolor.fix(v) for row in kcolor.YCBCR_TO_RGB for v in row] == [
        0, 91881, -22554, -46802, 116130, 0]
    assert (kdct.F_0_298631336, kdct.F_0_541196100, kdct.F_1_175875602,
            kdct.F_3_072711026) == (2446, 4433, 9633, 25172)
    # the torch stages use the same objects
    from jpegtorch.formats import qtables

    from jpegtorch import color, dct, quantize, sampling

    assert color.RGB_TO_YCBCR is kcolor.RGB_TO_YCBCR and dct.CONST_BITS == kdct.CONST_BITS
    assert sampling.SUBSAMPLING is ksampling.SUBSAMPLING
    assert qtables.ANNEX_K_LUMA is kquantize.ANNEX_K_LUMA
    assert tuple(quantize.ANNEX_K_CHROMA.reshape(64).tolist()) == kquantize.ANNEX_K_CHROMA


def test_color_kernel_equals_torch_stage() -> None:
    from jpegtorch.color import rgb_to_ycbcr

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 1024, 3), dtype=np.uint8)
    rgb[0, :8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                  [255, 255, 0], [0, 255, 255], [255, 0, 255]]
    ref = rgb_to_ycbcr(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), "hard")[0]
    ref = ref.to(torch.uint8).numpy()
    rows = rgb.reshape(64, 1024 * 3)
    planes = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    no_rows, no_planes = np.empty((0, 0), np.uint8), np.empty((0, 0, 0), np.uint8)
    for interleaved, planar in ((rows, no_planes), (no_rows, planes)):
        out = np.empty((3, 64, 1030), dtype=np.uint8)
        kcolor.rgb_to_ycbcr_rows(interleaved, planar, 0, 0, 64, 64, 1024, 3, out)
        np.testing.assert_array_equal(out[:, :, :1024], ref)
        np.testing.assert_array_equal(out[:, :, 1024:], np.repeat(out[:, :, 1023:1024], 6, 2))
        luma = np.empty((1, 64, 1024), dtype=np.uint8)  # RGB -> gray: Y only
        kcolor.rgb_to_ycbcr_rows(interleaved, planar, 0, 0, 64, 64, 1024, 1, luma)
        np.testing.assert_array_equal(luma[0], ref[0])
        # rows below the image repeat its last row; src_row0 offsets the source
        tail = np.empty((3, 8, 1024), dtype=np.uint8)
        kcolor.rgb_to_ycbcr_rows(interleaved[60:], planar[:, 60:], 60, 60, 8, 64, 1024, 3,
                                 tail)
        np.testing.assert_array_equal(tail[:, :4], ref[:, 60:64])
        np.testing.assert_array_equal(tail[:, 4:], np.repeat(ref[:, 63:64], 4, 1))
    gray = rgb[..., 1].copy()
    for interleaved, planar in ((gray, no_planes), (no_rows, gray[None])):
        out = np.empty((1, 64, 1024), dtype=np.uint8)
        kcolor.rgb_to_ycbcr_rows(interleaved, planar, 0, 0, 64, 64, 1024, 1, out)
        np.testing.assert_array_equal(out[0], gray)


@pytest.mark.parametrize("box", [(2, 1), (2, 2), (1, 2), (4, 1), (3, 1), (3, 2), (4, 4)])
def test_downsample_kernel_equals_torch_stage(box: tuple[int, int]) -> None:
    from jpegtorch.sampling import downsample

    hexp, vexp = box
    rng = np.random.default_rng(hexp * 7 + vexp)
    rows, width = 8 * vexp, 40
    src = rng.integers(0, 256, (rows, width * hexp), dtype=np.uint8)
    src[0] = 255  # largest sums
    out = np.empty((8, width), dtype=np.uint8)
    ksampling.downsample_rows(src, 0, hexp, vexp, 8, 8, ksampling.bias_row(hexp, vexp, width),
                              out)
    ref = downsample(torch.from_numpy(src)[None].float(), hexp, vexp, "hard")[0]
    np.testing.assert_array_equal(out, ref.to(torch.uint8).numpy())
    # rows at or past `avail` repeat the last available one
    ksampling.downsample_rows(src, 0, hexp, vexp, 8, 3, ksampling.bias_row(hexp, vexp, width),
                              out)
    np.testing.assert_array_equal(out[:3], ref[:3].to(torch.uint8).numpy())
    np.testing.assert_array_equal(out[3:], np.repeat(out[2:3], 5, 0))


def test_fdct_kernel_equals_torch_stage() -> None:
    from jpegtorch.dct import fdct

    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (500, 8, 8), dtype=np.uint8)
    blocks[0], blocks[1] = 0, 255  # extreme DC
    blocks[2] = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)  # extreme AC
    blocks[3] = np.where(np.arange(8) < 4, 0, 255).astype(np.uint8)
    out = np.empty((500, 64), dtype=np.int32)
    kdct.fdct_blocks(blocks, out)
    ref = fdct(torch.from_numpy(blocks).double() - 128.0, "hard")
    np.testing.assert_array_equal(out.reshape(500, 8, 8), ref.long().numpy())


def test_quantize_kernel_equals_torch_stage() -> None:
    from jpegtorch.formats.zigzag import ZIGZAG

    from jpegtorch.quantize import quantize

    t = np.arange(-8192 * 8, 8192 * 8, dtype=np.int32)  # every FDCT output (scaled by 8)
    nblocks = t.size // 64
    out = np.empty(t.size, dtype=np.int32)
    masks = np.empty(nblocks, dtype=np.int64)
    for q in (1, 2, 3, 7, 16, 99, 128, 255, 4000, 65535):
        half, mult = kquantize.reciprocals(np.full(64, 8 * q))
        kquantize.quantize_rows(t, nblocks, half, mult, out, 0, masks, 0, jfif_writer._AC_MASK_LUT)
        ref = quantize(torch.from_numpy(t).double(), torch.tensor(float(q)), "hard")
        np.testing.assert_array_equal(out, ref.long().numpy())
    # the AC masks the entropy coder reads (bit z - 1: zigzag value z is nonzero)
    rng = np.random.default_rng(4)
    coef = (rng.integers(-300, 300, 64 * 50) * (rng.random(64 * 50) < 0.2)).astype(np.int32)
    half, mult = kquantize.reciprocals(np.arange(8, 8 * 65, 8))
    values = np.empty(64 * 51, dtype=np.int16)
    masks = np.full(51, -1, dtype=np.int64)
    kquantize.quantize_rows(coef, 50, half, mult, values, 64, masks, 1, jfif_writer._AC_MASK_LUT)
    zigzag = values[64:].reshape(50, 64)[:, list(ZIGZAG)]
    bits = (zigzag[:, 1:] != 0).astype(np.int64) << np.arange(63)
    np.testing.assert_array_equal(masks[1:], bits.sum(axis=1))
    assert masks[0] == -1 and np.count_nonzero(zigzag) > 100


def test_reciprocal_division_is_exact() -> None:
    x = np.arange(1 << 17, dtype=np.int64)  # |t| + d // 2 for every FDCT output
    divisors = [*range(8, 8 * 256, 8), *range(8 * 256, 8 * 65536, 8 * 997), 8 * 65535]
    for d in divisors:
        _, mult = kquantize.reciprocals(np.array([d]))
        np.testing.assert_array_equal((x * mult[0]) >> kquantize.RECIPROCAL_SHIFT, x // d,
                                      err_msg=f"divisor {d}")


def test_quality_tables_equal_torch_stage() -> None:
    from jpegtorch.quantize import quality_to_tables

    rng = np.random.default_rng(2)
    bases = [None, rng.integers(0, 256, (2, 64)), rng.integers(0, 65536, (2, 64))]
    for base in bases:
        ref = quality_to_tables(torch.arange(1, 101), None if base is None else
                                torch.from_numpy(base).reshape(2, 8, 8), mode="hard")
        ours = np.stack([kquantize.scaled_tables(q, base) for q in range(1, 101)])
        np.testing.assert_array_equal(ours, ref.reshape(100, 2, 64).long().numpy())


# --------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("subsampling", ALL_SUBSAMPLINGS)
def test_compiled_pipeline_equals_torch_formulation(subsampling: str) -> None:
    for size in ODD_SIZES:
        images = torch.from_numpy(np.stack([synthetic(*size, seed=s, kind=k) for s, k in
                                            ((1, "mixed"), (2, "noise"))])).permute(0, 3, 1, 2)
        quality = torch.tensor([23, 91])
        ours = jpegtorch.encode(images, quality, subsampling=subsampling, mode="hard")
        assert_same_coefficients(ours, torch_formulation(images, quality, subsampling))
        gray = images[:, 1:2]
        ours = jpegtorch.encode(gray, 64, subsampling=subsampling)
        assert_same_coefficients(ours, torch_formulation(gray, 64))


def test_compiled_pipeline_every_quality_batched() -> None:
    image = torch.from_numpy(load_sample()[:40, :56]).permute(2, 0, 1)
    images = image[None].expand(100, -1, -1, -1)
    quality = torch.arange(1, 101)
    for subsampling in ("4:2:0", "4:4:4"):
        ours = jpegtorch.encode(images, quality, subsampling=subsampling)
        assert_same_coefficients(ours, torch_formulation(images, quality, subsampling))
    # and each image of the batch is what Pillow writes at its quality
    for q in (1, 37, 75, 100):
        data = jfif_writer.write_coefficients(ours.select(q - 1))
        assert data == pillow_bytes(load_sample()[:40, :56], q, "4:4:4")


def test_compiled_pipeline_custom_tables_float_inputs_and_strides() -> None:
    rng = np.random.default_rng(3)
    image = torch.from_numpy(synthetic(37, 29, seed=3)).permute(2, 0, 1)
    tables = torch.from_numpy(rng.integers(0, 400, (3, 2, 8, 8)))
    images = image[None].expand(3, -1, -1, -1)
    quality = torch.tensor([10, 50, 95])
    ours = jpegtorch.encode(images, quality, tables=tables, mode="hard")
    assert_same_coefficients(ours, torch_formulation(images, quality, tables=tables))
    for dtype in (torch.float32, torch.float64):
        x = images.to(dtype) / 255 + 0.3 / 255  # not multiples of 1/255
        x[0, 0, 0, 0] = -0.5  # clamped
        x[1, 1, 1, 1] = 7.0
        ours = jpegtorch.encode(x, 75, mode="hard")
        ref = torch_formulation(x, 75)
        assert_same_coefficients(ours, ref)
        assert ours.blocks[0].dtype == dtype
    channels_last = images.contiguous(memory_format=torch.channels_last)
    view = torch.from_numpy(synthetic(60, 70, seed=4)).permute(2, 0, 1)[:, 5:42:2, 3:60]
    for x in (channels_last, view):
        assert_same_coefficients(jpegtorch.encode(x, 80), torch_formulation(
            x.contiguous()[None] if x.dim() == 3 else x.contiguous(), 80))


def test_compiled_pipeline_keeps_the_api() -> None:
    image = to_chw(synthetic(20, 30))
    coefficients = jpegtorch.encode(image, 75)
    assert coefficients.blocks[0].dtype == torch.int32
    assert coefficients.qtables.dtype == torch.int32 and coefficients.qtables.is_contiguous()
    coefficients.qtables.add_(0)  # a real tensor, not a broadcast view
    assert coefficients.blocks[0].shape == (1, 4, 4, 8, 8)
    out = jpegtorch.jpeg(image, 75)
    assert out.dtype == torch.uint8 and out.shape == image.shape
    with pytest.raises(ValueError, match="batch size"):
        jpegtorch.encode(image[None].expand(3, -1, -1, -1), torch.tensor([50, 60]))


# --------------------------------------------------------------------------- banded writer


@pytest.fixture
def tiny_bands(monkeypatch):
    """One MCU row per band, and no kept coefficients for optimize."""
    monkeypatch.setattr(jfif_writer, "BAND_PIXELS", 1)
    monkeypatch.setattr(jfif_writer, "KEEP_COEFFICIENTS_BYTES", 0)


@pytest.mark.parametrize("subsampling", PIL_SUBSAMPLINGS)
def test_bands_equal_whole_image_and_pillow(subsampling: str, tiny_bands) -> None:
    for size in ODD_SIZES:
        image = synthetic(*size, seed=size[0], kind="noise" if size[0] % 2 else "mixed")
        for options in ({}, {"optimize": True}, {"restart": 1}, {"restart": 3, "optimize": True}):
            kwargs = {"optimize": options.get("optimize", False),
                      "restart_interval": options.get("restart", 0)}
            expected = pillow_bytes(image, 75, subsampling, optimize=kwargs["optimize"],
                                   restart_marker_blocks=kwargs["restart_interval"])
            assert encode_array(image, 75, subsampling=subsampling, **kwargs) == expected
            whole = jpegtorch.encode(to_chw(image), 75, subsampling=subsampling)
            assert jfif_writer.write_coefficients(whole, **kwargs) == expected
        gray = image[..., 0].copy()
        assert encode_array(gray, 60, optimize=True) == pillow_bytes(gray, 60, optimize=True)


def test_band_size_does_not_change_the_file(monkeypatch) -> None:
    image = synthetic(130, 70, seed=9)
    expected = pillow_bytes(image, 90, "4:2:0", optimize=True)
    for band_pixels in (1, 70 * 16 * 3, 1 << 30):
        for keep in (0, 1 << 30):
            monkeypatch.setattr(jfif_writer, "BAND_PIXELS", band_pixels)
            monkeypatch.setattr(jfif_writer, "KEEP_COEFFICIENTS_BYTES", keep)
            assert encode_array(image, 90, optimize=True) == expected


@pytest.mark.skipif(CJPEG is None, reason="cjpeg not installed")
@pytest.mark.parametrize("subsampling", ["4:4:0", "4:1:1"])
def test_all_samplings_match_cjpeg(subsampling: str, tmp_path: Path, tiny_bands) -> None:
    for size, seed in (((37, 53), 1), ((16, 32), 2), ((5, 3), 3)):
        image = synthetic(*size, seed=seed)
        ppm = tmp_path / "x.ppm"
        Image.fromarray(image).save(ppm)
        for quality, restart in ((75, 0), (30, 2)):
            args = ["-baseline", "-quality", str(quality), "-sample", CJPEG_SAMPLE[subsampling]]
            if restart:
                args += ["-restart", f"{restart}B"]
            expected = subprocess.run([CJPEG, *args, str(ppm)], capture_output=True,
                                      check=True).stdout
            assert encode_array(image, quality, subsampling=subsampling,
                                restart_interval=restart) == expected
            coefficients = jpegtorch.encode(to_chw(image), quality, subsampling=subsampling)
            assert jfif_writer.write_coefficients(coefficients,
                                                  restart_interval=restart) == expected


def test_encode_array_layouts_and_strides() -> None:
    image = synthetic(45, 38, seed=5)
    expected = pillow_bytes(image, 80)
    assert encode_array(image, 80) == expected
    assert encode_array(np.ascontiguousarray(image.transpose(2, 0, 1)), 80,
                        layout="CHW") == expected
    assert encode_jpeg(to_chw(image), 80) == expected
    flipped = np.ascontiguousarray(image[::-1, ::-1])[::-1, ::-1]  # negative strides
    assert encode_array(flipped, 80) == expected
    padded = np.zeros((50, 40, 4), np.uint8)
    padded[:45, :38, :3] = image
    assert encode_array(padded[:45, :38, :3], 80) == expected  # row padding, 4-byte pixels
    gray = image[..., 2].copy()
    assert encode_array(gray, 80) == encode_array(gray[:, :, None], 80) == pillow_bytes(gray, 80)
    assert encode_array(image, 80, grayscale=True) == encode_array(_luma(image), 80)
    rows = encode_rows(lambda y0, y1: image[y0:y1], (45, 38), 3, 80)
    assert rows == expected


def _luma(image: np.ndarray) -> np.ndarray:
    from jpegtorch.color import rgb_to_ycbcr

    x = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    return rgb_to_ycbcr(x, "hard")[0, 0].to(torch.uint8).numpy()


@pytest.mark.parametrize("bad", [
    dict(array=np.zeros((8, 8, 3), np.float32)), dict(array=np.zeros((8, 8, 4), np.uint8)),
    dict(array=np.zeros((2, 8, 8, 3), np.uint8)), dict(array=np.zeros((0, 8, 3), np.uint8)),
    dict(array=[[0]]), dict(layout="WHC"), dict(quality=0), dict(subsampling="4:2:1"),
    dict(restart_interval=70000), dict(tables=np.zeros((2, 8), np.int64)),
    dict(tables=np.full((2, 8, 8), 70000)), dict(tables=np.full((2, 8, 8), 0.5)),
])
def test_encode_array_errors(bad: dict) -> None:
    arguments = dict(array=np.zeros((8, 8, 3), np.uint8))
    arguments.update(bad)
    with pytest.raises(jpegtorch.JPEGError) as info:
        encode_array(**arguments)
    assert "\n" not in str(info.value)


def test_encode_rows_checks_what_it_is_given() -> None:
    with pytest.raises(jpegtorch.JPEGError, match="read_rows"):
        encode_rows(lambda y0, y1: np.zeros((y1 - y0, 7, 3), np.uint8), (16, 8), 3)


def test_writer_accepts_int16_and_int32_blocks() -> None:
    image = to_chw(synthetic(33, 41, seed=6))
    coefficients = jpegtorch.encode(image, 85)
    expected = encode_jpeg(image, 85)
    for dtype in (torch.int16, torch.int32, torch.int64, torch.float32):
        blocks = tuple(b.to(dtype) for b in coefficients.blocks)
        converted = jpegtorch.Coefficients(blocks=blocks, qtables=coefficients.qtables,
                                           sampling=coefficients.sampling,
                                           size=coefficients.size)
        assert jfif_writer.write_coefficients(converted) == expected
        assert jfif_writer.write_coefficients(converted, optimize=True) == encode_jpeg(
            image, 85, optimize=True)
    mixed = (coefficients.blocks[0].to(torch.int16), *coefficients.blocks[1:])
    assert jfif_writer.write_coefficients(jpegtorch.Coefficients(
        blocks=mixed, qtables=coefficients.qtables, sampling=coefficients.sampling,
        size=coefficients.size)) == expected


def test_output_buffer_grows() -> None:
    # noise at q=100 needs far more than the first buffer (32 bytes per block)
    image = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    saved = jfif_writer._capacity
    try:
        jfif_writer._capacity = lambda blocks: 16
        assert encode_array(image, 100, subsampling="4:4:4") == pillow_bytes(image, 100, "4:4:4")
    finally:
        jfif_writer._capacity = saved


# --------------------------------------------------------------------------- torch-free CLI


def test_cli_jpeg_encode_does_not_import_torch(tmp_path: Path) -> None:
    image = synthetic(40, 50, seed=8)
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(image).save(tmp_path / "y.jpg", quality=95)
    Image.fromarray(image).convert("RGBA").save(tmp_path / "z.png")
    code = (
        "import sys\n"
        "from jpegtorch.cli.main import main\n"
        "sys.argv = ['jtorch', 'encode', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'numba' in sys.modules\n"
    )
    for args in (["x.png", "-o", "x.jpg"], ["y.jpg", "-o", "y2.jpg", "--optimize"],
                 ["z.png", "-o", "z.jpg", "-Q", "--grayscale"]):
        result = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.jpg").read_bytes() == pillow_bytes(image, 75)
    y = np.array(Image.open(tmp_path / "y.jpg"))
    assert (tmp_path / "y2.jpg").read_bytes() == pillow_bytes(y, 75, optimize=True)
    z = Image.open(io.BytesIO((tmp_path / "z.jpg").read_bytes()))
    assert z.mode == "L" and z.size == (50, 40)
