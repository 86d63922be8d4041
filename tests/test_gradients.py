"""Gradients: signs, finiteness, straight-through identity and finite differences."""

from __future__ import annotations

import pytest
import torch
from conftest import load_sample, to_chw

import jpegtorch
from jpegtorch.quantize import annex_k_tables

DIFF_MODES = ["ste", "soft", "ste-quant"]


def _photo(size: int = 96, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (to_chw(load_sample()[:size, :size]).to(dtype) / 255)[None]


@pytest.mark.parametrize("mode", DIFF_MODES)
def test_quality_gradient_is_negative_mid_range(mode: str) -> None:
    x = _photo()
    for q0 in (30.0, 50.0, 70.0):
        q = torch.tensor([q0], requires_grad=True)
        mse = ((jpegtorch.jpeg(x, q, mode=mode) - x) ** 2).mean()
        mse.backward()
        assert q.grad is not None and float(q.grad) < 0, (mode, q0, q.grad)


@pytest.mark.parametrize("mode", DIFF_MODES)
def test_table_gradient_sum_is_positive(mode: str) -> None:
    x = _photo()
    tables = annex_k_tables(dtype=torch.float32).requires_grad_(True)
    mse = ((jpegtorch.jpeg(x, 50, tables=tables, mode=mode) - x) ** 2).mean()
    mse.backward()
    assert tables.grad is not None and float(tables.grad.sum()) > 0


@pytest.mark.parametrize("mode", DIFF_MODES)
def test_image_gradients_finite_and_nonzero(mode: str) -> None:
    x = _photo().requires_grad_(True)
    target = torch.rand_like(x)
    loss = ((jpegtorch.jpeg(x, 50, mode=mode) - target) ** 2).mean()
    loss.backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad != 0).float().mean() > 0.5


@pytest.mark.parametrize("quality", [1.0, 100.0])
@pytest.mark.parametrize("kind", ["black", "white", "noise"])
@pytest.mark.parametrize("mode", DIFF_MODES)
def test_no_nan_or_inf_at_extremes(quality: float, kind: str, mode: str) -> None:
    shape = (2, 3, 19, 23)
    x = {"black": torch.zeros(shape), "white": torch.ones(shape),
         "noise": torch.rand(shape, generator=torch.Generator().manual_seed(0))}[kind]
    x = x.requires_grad_(True)
    q = torch.full((2,), quality, requires_grad=True)
    tables = annex_k_tables(dtype=torch.float32).requires_grad_(True)
    module = jpegtorch.JPEG(50, mode=mode, learn_color=True)
    out = jpegtorch.jpeg(x, q, tables=tables, mode=mode)
    (out.square().sum() + module(x).sum()).backward()
    for t in (out, x.grad, q.grad, tables.grad, module.color_matrix.grad):
        assert torch.isfinite(t).all()


def test_ste_forward_equals_hard_and_gradient_is_straight_through() -> None:
    """ste is hard's forward; for 4:4:4 at q=100 its Jacobian is ~identity."""
    x = _photo(32).requires_grad_(True)
    ste = jpegtorch.jpeg(x, 100, subsampling="4:4:4", mode="ste")
    assert torch.equal(ste, jpegtorch.jpeg(x.detach(), 100, subsampling="4:4:4", mode="hard"))
    v = torch.randn_like(x)
    (ste * v).sum().backward()
    # d(out)/d(x) = C^-1 · C (colour) ∘ IDCT·FDCT ≈ I up to fixed-point constants
    torch.testing.assert_close(x.grad, v, rtol=0, atol=2e-3)


def test_hard_mode_has_no_gradient() -> None:
    x = _photo(16).requires_grad_(True)
    assert not jpegtorch.jpeg(x, 50, mode="hard").requires_grad


def _directional_fd(f, x: torch.Tensor, v: torch.Tensor, eps: float) -> float:
    with torch.no_grad():
        return float((f(x + eps * v) - f(x - eps * v)) / (2 * eps))


def test_soft_gradients_match_finite_differences() -> None:
    """soft mode in float64: analytic gradients = central differences."""
    gen = torch.Generator().manual_seed(0)
    # a smooth mid-grey image keeps every clamp inactive
    x = 0.3 + 0.4 * torch.rand(1, 3, 24, 24, generator=gen, dtype=torch.float64)
    target = torch.rand(1, 3, 24, 24, generator=gen, dtype=torch.float64)
    tables = annex_k_tables(dtype=torch.float64) * 1.1

    def loss(img: torch.Tensor, q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return ((jpegtorch.jpeg(img, q, tables=t, mode="soft") - target) ** 2).sum()

    xr = x.clone().requires_grad_(True)
    qr = torch.tensor([60.0], dtype=torch.float64, requires_grad=True)
    tr = tables.clone().requires_grad_(True)
    loss(xr, qr, tr).backward()
    q0 = torch.tensor([60.0], dtype=torch.float64)

    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    fd = _directional_fd(lambda z: loss(z, q0, tables), x, v, 1e-6)
    assert abs(float((xr.grad * v).sum()) - fd) <= 1e-5 * max(1.0, abs(fd))

    fd_q = _directional_fd(lambda z: loss(x, z, tables), q0, torch.ones(1, dtype=torch.float64),
                           1e-5)
    assert abs(float(qr.grad) - fd_q) <= 1e-5 * max(1.0, abs(fd_q))

    w = torch.randn(tables.shape, generator=gen, dtype=torch.float64)
    fd_t = _directional_fd(lambda z: loss(x, q0, z), tables, w, 1e-6)
    assert abs(float((tr.grad * w).sum()) - fd_t) <= 1e-5 * max(1.0, abs(fd_t))


def test_module_parameters_get_gradients() -> None:
    x = _photo(48)
    module = jpegtorch.JPEG(40, learn_quality=True, learn_tables=True, learn_color=True)
    names = {name for name, _ in module.named_parameters()}
    assert names == {"quality", "log_tables", "color_matrix", "inverse_color_matrix"}
    ((module(x) - x) ** 2).mean().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert float(module.quality.grad) < 0
    assert list(jpegtorch.JPEG(40).parameters()) == []


def test_module_equals_function() -> None:
    x = _photo(40)
    assert torch.equal(jpegtorch.JPEG(33, subsampling="4:2:2")(x),
                       jpegtorch.jpeg(x, 33, subsampling="4:2:2"))
    # per-call, per-sample quality
    xb = x.expand(2, -1, -1, -1)
    out = jpegtorch.JPEG(80)(xb, torch.tensor([20.0, 80.0]))
    assert torch.equal(out[0], jpegtorch.jpeg(x[0], 20))
