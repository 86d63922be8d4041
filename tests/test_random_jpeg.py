"""RandomJPEG: per-sample exactness (against jpeg(hard) and Pillow), random
draws and their reproducibility, p, shapes, dtypes, devices, gradients."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from conftest import cuda, load_sample, pillow_roundtrip, synthetic, to_chw, to_hwc

import jpegtorch
from jpegtorch import RandomJPEG


def _batch(n: int = 4, height: int = 37, width: int = 45, seed: int = 0) -> torch.Tensor:
    """``[N, 3, H, W]`` uint8: photo crops and synthetic images, odd sizes."""
    photo = to_chw(load_sample())
    out = []
    for i in range(n):
        if i % 2:
            out.append(to_chw(synthetic(height, width, seed=seed + i)))
        else:
            top, left = 17 * i % (photo.shape[1] - height), 29 * i % (photo.shape[2] - width)
            out.append(photo[:, top:top + height, left:left + width])
    return torch.stack(out)


def _check_exact(out: torch.Tensor, x: torch.Tensor, quality: torch.Tensor,
                 subsampling: str = "4:2:0") -> None:
    for i in range(x.shape[0]):
        expected = jpegtorch.jpeg(x[i], int(quality[i]), subsampling=subsampling, mode="hard")
        assert torch.equal(out[i], expected), i


# ------------------------------------------------------------------ exactness


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4", "4:2:2"])
def test_each_sample_equals_pillow_and_hard_jpeg(subsampling: str) -> None:
    x = _batch(5)
    out, params = RandomJPEG((5, 95), subsampling=subsampling, generator=torch.Generator()
                             .manual_seed(1))(x, return_params=True)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    quality = params["quality"]
    assert len(set(quality.tolist())) > 1  # per-sample qualities
    _check_exact(out, x, quality, subsampling)
    for i in range(x.shape[0]):
        reference = pillow_roundtrip(to_hwc(x[i]), int(quality[i]), subsampling)
        np.testing.assert_array_equal(to_hwc(out[i]), reference)


def test_hard_cpu_path_runs_the_compiled_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """uint8 batches and float batches without grad take the pipeline's compiled
    hard path (jpegtorch.kernels) for encode and decode, never the torch stages
    (the speed target of a Pillow loop rides on it)."""
    from jpegtorch import pipeline

    def torch_stages(*args, **kwargs):
        raise AssertionError("torch stages used on the hard CPU path")

    monkeypatch.setattr(pipeline, "_encode", torch_stages)
    monkeypatch.setattr(pipeline, "_decode", torch_stages)
    x = _batch(3)
    transform = RandomJPEG((10, 95), generator=torch.Generator().manual_seed(3))
    out, params = transform(x, return_params=True)
    for i in range(3):
        expected = to_chw(pillow_roundtrip(to_hwc(x[i]), int(params["quality"][i])))
        assert torch.equal(out[i], expected), i
    xf = x.float() / 255
    outf = transform(xf, params)
    assert outf.dtype == torch.float32
    assert torch.equal((outf * 255).round().to(torch.uint8), out)


def test_float_input_exact_and_differentiable() -> None:
    x8 = _batch(3)
    x = (x8.float() / 255).requires_grad_(True)
    transform = RandomJPEG((10, 50))
    out, params = transform(x, return_params=True)
    assert out.dtype == torch.float32 and out.requires_grad
    expected = torch.stack([jpegtorch.jpeg(x8[i], int(q), mode="hard")
                            for i, q in enumerate(params["quality"])])
    assert torch.equal((out.detach() * 255).round().to(torch.uint8), expected)
    # the same values as the float hard pipeline, bit for bit
    for i, q in enumerate(params["quality"]):
        assert torch.equal(out[i].detach(), jpegtorch.jpeg(x[i].detach(), int(q), mode="hard"))
    target = torch.rand_like(x)
    ((out - target) ** 2).mean().backward()
    assert torch.isfinite(x.grad).all() and (x.grad != 0).float().mean() > 0.5
    # without grad: the hard path, same values
    assert torch.equal(transform(x.detach(), params), out.detach())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes(dtype: torch.dtype) -> None:
    x8 = _batch(2, 16, 24)
    x = x8.to(dtype) / 255
    out = RandomJPEG(40)(x)
    assert out.dtype == dtype and out.shape == x.shape
    work = torch.float64 if dtype == torch.float64 else torch.float32
    expected = jpegtorch.jpeg(x.to(work), 40, mode="hard").to(dtype)
    assert torch.equal(out, expected)
    xg = x.clone().requires_grad_(True)
    RandomJPEG(40)(xg).float().sum().backward()
    assert xg.grad.dtype == dtype and torch.isfinite(xg.grad.float()).all()


def test_grayscale() -> None:
    x = to_chw(load_sample("kodim15_gray_256x256.png", mode="L"))[:, :40, :33]
    out, params = RandomJPEG((20, 30))(x, return_params=True)
    reference = pillow_roundtrip(to_hwc(x), int(params["quality"][0]))
    np.testing.assert_array_equal(to_hwc(out), reference)


# ----------------------------------------------------------------------- draws


def test_qualities_come_from_torch_rng_and_seed_reproduces() -> None:
    x = _batch(6, 16, 16)
    transform = RandomJPEG((30, 60))
    torch.manual_seed(123)
    out1, p1 = transform(x, return_params=True)
    torch.manual_seed(123)
    expected = torch.randint(30, 61, (6,))
    torch.manual_seed(123)
    out2, p2 = transform(x, return_params=True)
    assert torch.equal(p1["quality"], expected) and torch.equal(p1["quality"], p2["quality"])
    assert torch.equal(out1, out2)
    assert torch.equal(transform.last_params["quality"], p2["quality"])


def test_generator_reproduces_and_leaves_global_rng_alone() -> None:
    x = _batch(4, 16, 16)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = RandomJPEG((1, 100), p=0.5, generator=torch.Generator().manual_seed(7))
    b = RandomJPEG((1, 100), p=0.5, generator=torch.Generator().manual_seed(7))
    out_a, pa = a(x, return_params=True)
    out_b, pb = b(x, return_params=True)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(out_a, out_b)
    assert torch.equal(pa["quality"], pb["quality"])
    assert torch.equal(pa["batch_prob"], pb["batch_prob"])
    # the documented order: qualities first, then the coin flips
    g = torch.Generator().manual_seed(7)
    assert torch.equal(pa["quality"], torch.randint(1, 101, (4,), generator=g))
    assert torch.equal(pa["batch_prob"], torch.rand(4, generator=g) < 0.5)
    # the next call draws anew
    _, pc = a(x, return_params=True)
    assert not torch.equal(pc["quality"], pa["quality"])


def test_quality_distribution_is_uniform_over_the_integers() -> None:
    params = RandomJPEG((10, 14), generator=torch.Generator().manual_seed(3)).forward_parameters(
        5000)
    q = params["quality"]
    assert q.dtype == torch.int64
    counts = torch.bincount(q, minlength=15)[10:]
    assert int(q.min()) == 10 and int(q.max()) == 14
    assert (counts - 1000).abs().max() < 100  # ~5 sigma of a binomial(5000, 0.2)


def test_fixed_quality_and_same_on_batch() -> None:
    x = _batch(3, 16, 16)
    out, params = RandomJPEG(37)(x, return_params=True)
    assert params["quality"].tolist() == [37, 37, 37]
    _check_exact(out, x, params["quality"])
    same = RandomJPEG((1, 100), same_on_batch=True, generator=torch.Generator().manual_seed(0))
    _, params = same(x, return_params=True)
    assert len(set(params["quality"].tolist())) == 1


def test_params_replay() -> None:
    x = _batch(3, 16, 16)
    transform = RandomJPEG((1, 100), p=0.5)
    params = {"quality": torch.tensor([10, 20, 90]), "batch_prob": torch.tensor([1, 0, 1])}
    out = transform(x, params)
    assert torch.equal(out[1], x[1])
    _check_exact(out[[0, 2]], x[[0, 2]], torch.tensor([10, 90]))
    assert torch.equal(transform(x, {"quality": torch.tensor(55)}),
                       jpegtorch.jpeg(x, 55, mode="hard"))
    with pytest.raises(ValueError, match="shape"):
        transform(x, {"quality": torch.tensor([10, 20])})
    with pytest.raises(ValueError, match=r"1\.\.100"):
        transform(x, {"quality": torch.tensor([0, 20, 30])})


# --------------------------------------------------------------------------- p


def test_p_zero_is_the_identity_and_cheap() -> None:
    x = _batch(2, 16, 16)
    transform = RandomJPEG((10, 20), p=0.0)
    assert transform(x) is x
    xf = (x.float() / 255).requires_grad_(True)
    out, params = transform(xf, return_params=True)
    assert out is xf and not params["batch_prob"].any()


def test_p_fraction_per_sample() -> None:
    x = _batch(8, 16, 16)
    xf = (x.float() / 255).requires_grad_(True)
    transform = RandomJPEG((5, 15), p=0.5, generator=torch.Generator().manual_seed(2))
    out, params = transform(xf, return_params=True)
    applied = params["batch_prob"]
    assert 0 < int(applied.sum()) < 8
    for i in range(8):
        if applied[i]:
            expected = jpegtorch.jpeg(xf[i].detach(), int(params["quality"][i]), mode="hard")
            assert torch.equal(out[i].detach(), expected)
        else:
            assert torch.equal(out[i], xf[i])
    out.sum().backward()
    assert torch.isfinite(xf.grad).all()
    # untouched samples pass the gradient through unchanged
    assert torch.equal(xf.grad[~applied], torch.ones_like(xf[~applied]))
    flips = RandomJPEG(50, p=0.3, generator=torch.Generator().manual_seed(0)).forward_parameters(
        4000)["batch_prob"]
    assert abs(float(flips.float().mean()) - 0.3) < 0.035


# ---------------------------------------------------------------------- shapes


def test_unbatched_batch_of_one_and_layouts() -> None:
    x = _batch(2, 24, 40)
    transform = RandomJPEG(60)
    expected = jpegtorch.jpeg(x, 60, mode="hard")
    assert torch.equal(transform(x[0]), expected[0]) and transform(x[0]).shape == x[0].shape
    assert torch.equal(transform(x[:1]), expected[:1])
    cl = x.contiguous(memory_format=torch.channels_last)
    out = transform(cl)
    assert torch.equal(out, expected) and out.is_contiguous(memory_format=torch.channels_last)
    # non-contiguous views: a transposed image and a strided crop
    transposed = x.transpose(-1, -2)
    assert torch.equal(transform(transposed), jpegtorch.jpeg(transposed.contiguous(), 60,
                                                             mode="hard"))
    strided = x[:, :, ::2, 1::3]
    assert torch.equal(transform(strided), jpegtorch.jpeg(strided.contiguous(), 60, mode="hard"))
    hwc = torch.from_numpy(to_hwc(x[0]).copy()).permute(2, 0, 1)  # a channels-last [C,H,W] view
    assert torch.equal(transform(hwc), expected[0])


def test_module_conventions() -> None:
    transform = RandomJPEG((20, 80), subsampling="4:4:4", p=0.25)
    assert repr(transform) == ("RandomJPEG(quality=(20, 80), subsampling='4:4:4', p=0.25, "
                               "mode='ste')")
    assert repr(RandomJPEG(75)) == "RandomJPEG(quality=75, subsampling='4:2:0', p=1, mode='ste')"
    assert list(transform.parameters()) == [] and transform.state_dict() == {}
    clone = pickle.loads(pickle.dumps(transform))
    assert clone.quality == (20, 80) and clone.p == 0.25
    copy.deepcopy(RandomJPEG(generator=torch.Generator()))
    x = _batch(2, 16, 16)
    pipeline = torch.nn.Sequential(RandomJPEG(30))
    assert torch.equal(pipeline(x), jpegtorch.jpeg(x, 30, mode="hard"))
    assert RandomJPEG([30, 40]).quality == (30, 40) and RandomJPEG(50.0).quality == (50, 50)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"quality": 0}, ValueError), ({"quality": 101}, ValueError),
    ({"quality": (60, 40)}, ValueError), ({"quality": (0, 40)}, ValueError),
    ({"quality": 50.5}, TypeError), ({"quality": "50"}, TypeError),
    ({"quality": (1, 2, 3)}, TypeError), ({"quality": True}, TypeError),
    ({"p": -0.1}, ValueError), ({"p": 1.5}, ValueError), ({"p": float("nan")}, ValueError),
    ({"mode": "fast"}, ValueError), ({"subsampling": "4:3:1"}, ValueError),
    ({"generator": 0}, TypeError),
])
def test_invalid_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        RandomJPEG(**kwargs)


@pytest.mark.parametrize(("image", "error"), [
    (torch.zeros(3, 8), ValueError), (torch.zeros(1, 1, 3, 8, 8), ValueError),
    (torch.zeros(2, 8, 8), ValueError), (torch.zeros(3, 8, 8, dtype=torch.int32), TypeError),
    (torch.zeros(0, 3, 8, 8), ValueError), (np.zeros((8, 8, 3), np.uint8), TypeError),
])
def test_invalid_images(image, error: type) -> None:
    with pytest.raises(error):
        RandomJPEG()(image)


@cuda
def test_cuda_stays_on_device_and_matches_cpu() -> None:
    x = _batch(3)
    transform = RandomJPEG((10, 90), generator=torch.Generator().manual_seed(0))
    out, params = transform(x.cuda(), return_params=True)
    assert out.is_cuda
    _check_exact(out.cpu(), x, params["quality"])
    xf = (x.float() / 255).cuda().requires_grad_(True)
    out = transform(xf, params)
    assert out.is_cuda
    out.sum().backward()
    assert xf.grad.is_cuda and torch.isfinite(xf.grad).all()
    cuda_gen = RandomJPEG((10, 90), generator=torch.Generator("cuda").manual_seed(0))
    assert cuda_gen(x.cuda()).is_cuda
