"""The forward pass equals libjpeg-turbo (Pillow's encode + decode) pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import (
    float_to_uint8,
    load_sample,
    pillow_decode,
    pillow_jpeg,
    pillow_roundtrip,
    synthetic,
    to_chw,
    to_hwc,
)

import jpegtorch

QUALITIES = [1, 2, 5, 10, 17, 25, 33, 49, 50, 51, 62, 75, 85, 90, 95, 99, 100]
SUBSAMPLINGS = ["4:4:4", "4:2:2", "4:2:0"]
SIZES = [(1, 1), (8, 9), (17, 13), (2, 3), (16, 17), (217, 333), (333, 217)]


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_photo_all_modes_match_pillow(quality: int, subsampling: str) -> None:
    image = load_sample()
    reference = pillow_roundtrip(image, quality, subsampling)
    x = to_chw(image)
    ours_u8 = jpegtorch.jpeg(x, quality, subsampling=subsampling)
    assert ours_u8.dtype == torch.uint8
    np.testing.assert_array_equal(to_hwc(ours_u8), reference)
    for mode in ("hard", "ste"):
        ours = jpegtorch.jpeg(x.float() / 255, quality, subsampling=subsampling, mode=mode)
        assert ours.dtype == torch.float32
        np.testing.assert_array_equal(to_hwc(float_to_uint8(ours)), reference)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
@pytest.mark.parametrize("kind", ["mixed", "noise"])
def test_odd_sizes_match_pillow(size: tuple[int, int], subsampling: str, kind: str) -> None:
    image = synthetic(*size, seed=sum(size), kind=kind)
    for quality in (3, 40, 75, 97):
        reference = pillow_roundtrip(image, quality, subsampling)
        ours = jpegtorch.jpeg(to_chw(image).float() / 255, quality, subsampling=subsampling,
                              mode="ste")
        np.testing.assert_array_equal(to_hwc(float_to_uint8(ours)), reference,
                                      err_msg=f"q={quality}")


@pytest.mark.parametrize("size", [*SIZES, (256, 256)])
@pytest.mark.parametrize("quality", [1, 10, 50, 75, 90, 100])
def test_grayscale_matches_pillow(size: tuple[int, int], quality: int) -> None:
    image = synthetic(*size, seed=7)[..., 1].copy() if size != (256, 256) else load_sample(
        "kodim15_gray_256x256.png", "L")
    reference = pillow_decode(pillow_jpeg(image, quality))
    ours = jpegtorch.jpeg(to_chw(image), quality)
    assert ours.shape == (1, *image.shape)
    np.testing.assert_array_equal(to_hwc(ours), reference)
    ours_f = jpegtorch.jpeg(to_chw(image).double() / 255, quality, mode="ste")
    assert ours_f.dtype == torch.float64
    np.testing.assert_array_equal(to_hwc(float_to_uint8(ours_f)), reference)


def test_every_quality_on_a_photo() -> None:
    """All 100 qualities, 4:2:0, on a photo crop (batched per quality)."""
    image = load_sample("kodim23_256x192.png")[:64, :80]
    batch = to_chw(image)[None].expand(100, -1, -1, -1)
    qualities = torch.arange(1, 101)
    ours = jpegtorch.jpeg(batch, qualities)
    for q in range(1, 101):
        np.testing.assert_array_equal(to_hwc(ours[q - 1]), pillow_roundtrip(image, q),
                                      err_msg=f"quality {q}")


def test_per_sample_quality_equals_individual_coding() -> None:
    images = torch.stack([to_chw(load_sample(n)[:120, :136]) for n in (
        "kodim05_384x256.png", "kodim23_256x192.png", "kodim15_256x256.png")]).float() / 255
    qualities = torch.tensor([12.0, 55.0, 91.0])
    for mode in ("hard", "ste", "soft", "ste-quant"):
        batched = jpegtorch.jpeg(images, qualities, mode=mode)
        for i in range(3):
            alone = jpegtorch.jpeg(images[i], float(qualities[i]), mode=mode)
            torch.testing.assert_close(batched[i], alone, rtol=0, atol=1e-6)


def test_custom_tables_match_pillow_qtables() -> None:
    image = load_sample("kodim23_256x192.png")
    rng = np.random.default_rng(3)
    base = rng.integers(1, 120, size=(2, 8, 8))
    for quality in (20, 50, 80):
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        scaled = np.clip((base * scale + 50) // 100, 1, 255)
        # Pillow takes already-scaled tables in natural order
        # with qtables, Pillow scales them by its `quality` like libjpeg: 50 = as given
        data = pillow_jpeg(image, 50, qtables=[t.flatten().tolist() for t in scaled])
        reference = pillow_decode(data)
        ours = jpegtorch.jpeg(to_chw(image), quality, tables=torch.tensor(base))
        np.testing.assert_array_equal(to_hwc(ours), reference)


def test_encode_decode_compose_to_jpeg() -> None:
    image = to_chw(load_sample("kodim01_233x151.png")).float() / 255
    coefficients = jpegtorch.encode(image, 40, mode="ste")
    assert isinstance(coefficients, jpegtorch.Coefficients)
    assert coefficients.sampling == ((2, 2), (1, 1), (1, 1))
    assert coefficients.size == (151, 233)
    # MCU grid 16x16: 10 MCU rows, 15 MCU columns
    assert coefficients.blocks[0].shape == (1, 20, 30, 8, 8)
    assert coefficients.blocks[1].shape == (1, 10, 15, 8, 8)
    torch.testing.assert_close(jpegtorch.decode(coefficients)[0], jpegtorch.jpeg(image, 40),
                               rtol=0, atol=0)


def test_dummy_blocks_follow_libjpeg() -> None:
    """Blocks outside the image are libjpeg's dummy blocks: zero AC, copied DC."""
    image = to_chw(synthetic(17, 17, seed=1))
    blocks = jpegtorch.encode(image, 75).blocks[0][0]  # Y: 3x3 real blocks in a 4x4 grid
    assert blocks.shape == (4, 4, 8, 8)
    assert torch.equal(blocks[:3, 3, 0, 0], blocks[:3, 2, 0, 0])
    assert (blocks[:, 3].flatten(1)[:, 1:] == 0).all()
    assert torch.equal(blocks[3, :, 0, 0], blocks[2, 1::2, 0, 0].repeat_interleave(2))


def test_uint8_batch_and_shapes() -> None:
    batch = torch.stack([to_chw(synthetic(24, 40, seed=s)) for s in range(3)])
    out = jpegtorch.jpeg(batch, 60, subsampling="4:2:2")
    assert out.shape == batch.shape and out.dtype == torch.uint8
    for i in range(3):
        np.testing.assert_array_equal(
            to_hwc(out[i]), pillow_roundtrip(to_hwc(batch[i]), 60, "4:2:2"))


@pytest.mark.parametrize("bad", [0, 0.5, 101, -3, float("nan"), float("inf")])
def test_quality_out_of_range_is_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="quality"):
        jpegtorch.jpeg(torch.zeros(3, 8, 8), bad)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="subsampling"):
        jpegtorch.jpeg(torch.zeros(3, 8, 8), 50, subsampling="4:3:1")
    with pytest.raises(ValueError, match="mode"):
        jpegtorch.jpeg(torch.zeros(3, 8, 8), 50, mode="fuzzy")
    with pytest.raises(ValueError, match="channels"):
        jpegtorch.jpeg(torch.zeros(4, 8, 8), 50)
    with pytest.raises(ValueError, match="tables"):
        jpegtorch.jpeg(torch.zeros(3, 8, 8), 50, tables=torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="batch"):
        jpegtorch.jpeg(torch.zeros(2, 3, 8, 8), torch.tensor([10.0, 20.0, 30.0]))


def test_float64_and_float32_agree() -> None:
    image = to_chw(load_sample("kodim01_233x151.png"))
    a = jpegtorch.jpeg(image.float() / 255, 30)
    b = jpegtorch.jpeg(image.double() / 255, 30)
    assert torch.equal(float_to_uint8(a), float_to_uint8(b))


def test_soft_modes_are_close_to_real_jpeg() -> None:
    image = to_chw(load_sample()).float() / 255
    exact = jpegtorch.jpeg(image, 50, mode="hard")
    for mode in ("soft", "ste-quant"):
        approx = jpegtorch.jpeg(image, 50, mode=mode)
        psnr = -10 * torch.log10(((approx - exact) ** 2).mean())
        assert psnr > 30, (mode, float(psnr))


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    image = to_chw(load_sample()).float() / 255
    for mode in ("hard", "ste"):
        cpu = jpegtorch.jpeg(image, 37, mode=mode)
        gpu = jpegtorch.jpeg(image.cuda(), 37, mode=mode).cpu()
        assert torch.equal(cpu, gpu)
