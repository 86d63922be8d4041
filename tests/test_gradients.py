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


def test_soft_gradients_match_finite_differences(monkeypatch: pytest.MonkeyPatch) -> None:
    """soft mode in float64: the image gradient = central differences of the
    soft forward; the quality and table gradients = central differences of the
    same forward with each coefficient's soft-rounding residual ``s(r) - r``
    held fixed (the additive-noise model of quantization)."""
    import jpegtorch.quantize as quantize_module

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

    # record the residuals at (q0, tables), one per quantize call (component)
    soft_quantize = quantize_module._soft_quantize
    residuals: list[torch.Tensor] = []
    with torch.no_grad():
        monkeypatch.setattr(quantize_module, "_soft_quantize", lambda t, table: (
            residuals.append(soft_quantize(t, table) - t / (8 * table)) or residuals[-1]
            + t / (8 * table)))
        loss(x, q0, tables)
    replay: list[torch.Tensor] = []

    def frozen(t: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        replay.append(residuals[len(replay) % len(residuals)])
        return t / (8 * table) + replay[-1]

    monkeypatch.setattr(quantize_module, "_soft_quantize", frozen)
    fd_q = _directional_fd(lambda z: loss(x, z, tables), q0, torch.ones(1, dtype=torch.float64),
                           1e-5)
    assert abs(float(qr.grad) - fd_q) <= 1e-5 * max(1.0, abs(fd_q))

    w = torch.randn(tables.shape, generator=gen, dtype=torch.float64)
    fd_t = _directional_fd(lambda z: loss(x, q0, z), tables, w, 1e-6)
    assert abs(float((tr.grad * w).sum()) - fd_t) <= 1e-5 * max(1.0, abs(fd_t))
    assert abs(fd_t) > 1e-3 and abs(fd_q) > 1e-4  # the checks are not vacuous


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


def _sign_test_images() -> dict[str, torch.Tensor]:
    """Photos, crops and a photo under a flat bright sky (the case that made
    soft mode's quality gradient positive: the DC of a flat region, shared by
    many blocks, with one rounding error), ``[3, H, W]`` float in [0, 1]."""
    photo = to_chw(load_sample()).float() / 255
    sky = photo[:, :192, :192].clone()
    sky[:, :96] = 0.95
    images = {
        "kodim05": photo[:, :160, :224],
        "kodim01": to_chw(load_sample("kodim01_233x151.png")).float() / 255,
        "kodim23 crop": (to_chw(load_sample("kodim23_256x192.png")).float() / 255)[:, 40:104,
                                                                                    90:170],
        "kodim15 crop": (to_chw(load_sample("kodim15_256x256.png")).float() / 255)[:, 64:160,
                                                                                    64:160],
        "sky": sky,
    }
    for value in (0.9, 1.0):
        bright = sky.clone()
        bright[:, :96] = value
        images[f"sky {value}"] = bright
    return images


@pytest.mark.slow
def test_quality_gradient_sign_q20_to_80_against_finite_differences() -> None:
    """d(MSE)/d(quality) < 0 at every quality 20..80 in every differentiable
    mode, on photos, crops and flat bright skies; the reference is the slope
    of the real (hard) MSE over q +- 5 (finite differences of the expected
    loss), negative at the same points."""
    qualities = torch.arange(20, 81, 3, dtype=torch.float32)
    for name, image in _sign_test_images().items():
        x = image[None].expand(len(qualities), -1, -1, -1)
        with torch.no_grad():
            lo = ((jpegtorch.jpeg(x, qualities - 5, mode="hard") - x) ** 2).mean((1, 2, 3))
            hi = ((jpegtorch.jpeg(x, qualities + 5, mode="hard") - x) ** 2).mean((1, 2, 3))
        fd = (hi - lo) / 10
        assert (fd < 0).all(), (name, fd)
        for mode in DIFF_MODES:
            q = qualities.clone().requires_grad_(True)
            ((jpegtorch.jpeg(x, q, mode=mode) - x) ** 2).mean((1, 2, 3)).sum().backward()
            bad = [int(v) for v, g in zip(qualities, q.grad, strict=True) if not g < 0]
            assert not bad, (mode, name, bad)
            # same order of magnitude as the real slope (ste: about 2x, see README)
            ratio = q.grad / fd
            assert (ratio > 0.3).all() and (ratio < 5).all(), (mode, name, ratio)


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_ste_image_gradient_is_one_fixed_linear_map(subsampling: str) -> None:
    """ste's image gradient does not depend on the image or the quality: it is
    the vector-Jacobian product of one fixed linear map (colour conversion,
    down/up-sampling and the DCT pair without rounding or clamping), i.e.
    BPDA; for 4:4:4 that map is the identity up to libjpeg's fixed-point
    constants (see test_ste_forward_equals_hard_and_gradient_is_straight_through)."""
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(1, 3, 24, 40, generator=gen)
    grads = []
    for image, quality in ((_photo(40)[..., :24, :40], 10.0), (_photo(40)[..., 8:32, :40], 90.0),
                           (torch.rand(1, 3, 24, 40, generator=gen), 50.0)):
        x = image.clone().requires_grad_(True)
        (jpegtorch.jpeg(x, quality, subsampling=subsampling, mode="ste") * v).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[2], rtol=0, atol=1e-6)
    identity_error = float((grads[0] - v).abs().max())
    assert (identity_error < 2e-3) == (subsampling == "4:4:4"), identity_error
