"""The learned codec runs tile by tile: same results as the whole image at once.

- float64: tiled and whole-image transforms agree to rounding (1e-12) on sizes
  that are not multiples of 16 nor of the tile, and tiles given too little
  context (one latent) are caught (so these tests can fail);
- float32 (what ships): the coded latents and decoded pixels of tiled and
  whole-image runs agree but for values on a rounding edge (±1, rare), with
  equal PSNR, and every run gives the same bytes and pixels;
- the working set is one tile: no layer ever sees more than a tile and its context.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import load_sample, to_chw
from jpegtorch.formats import container as jtc

from jpegtorch.learned import codec, entropy, tiled
from jpegtorch.learned.model import FactorizedCodec

torch.set_num_threads(1)


def _photo(h: int, w: int) -> torch.Tensor:
    image = to_chw(load_sample("kodim05_384x256.png"))
    reps = (1, -(-h // image.shape[1]), -(-w // image.shape[2]))
    return image.repeat(*reps)[:, :h, :w].contiguous()


@pytest.fixture(scope="module")
def net64() -> FactorizedCodec:
    """A random network in float64 (untrained: what matters is the arithmetic)."""
    torch.manual_seed(0)
    return FactorizedCodec(n=8, m=8, levels=1).double().eval()


@pytest.mark.parametrize("size, channels", [((157, 203), 3), ((100, 37), 1), ((16, 48), 3)])
def test_analysis_tiled_equals_whole_image_float64(net64, size, channels):
    image = _photo(*size)[:channels].contiguous()
    whole = tiled.analysis(net64, image, 0, tile=None)
    # the reference: the model's own forward on the edge-replicated image
    x = image.to(torch.float64).div(255)[None]
    if channels == 1:
        x = x.expand(1, 3, *size)
    x = F.pad(x, (0, -size[1] % 16, 0, -size[0] % 16), mode="replicate")
    with torch.no_grad():
        assert torch.equal(whole, net64.analysis(x, 0)[0])
    for tile in (1, 2, 3, 5):
        parts = tiled.analysis(net64, image, 0, tile=tile)
        assert float((parts - whole).abs().max()) < 1e-12, tile
    if min(whole.shape[1:]) > 2:  # one latent of context is too little: caught
        short = tiled.analysis(net64, image, 0, tile=2, halo=1)
        assert float((short - whole).abs().max()) > 1e-3


@pytest.mark.parametrize("size, channels", [((157, 203), 3), ((100, 37), 1)])
def test_synthesis_tiled_equals_whole_image_float64(net64, size, channels):
    torch.manual_seed(1)
    rows, cols = -(-size[0] // 16), -(-size[1] // 16)
    y_hat = torch.round(4 * torch.randn(8, rows, cols, dtype=torch.float64))
    whole = tiled.synthesis(net64, y_hat, 0, *size, channels, tile=None)
    assert whole.shape == (channels, *size) and whole.dtype == torch.uint8
    with torch.no_grad():  # the model's own forward, as the decoder has always computed it
        ref = net64.synthesis(y_hat[None], 0)[:, :, :size[0], :size[1]].clamp(0, 1)
        if channels == 1:
            ref = (ref * torch.tensor([0.299, 0.587, 0.114], dtype=ref.dtype).view(1, 3, 1, 1)
                   ).sum(1, keepdim=True)
        assert torch.equal(whole, torch.round(ref[0] * 255).to(torch.uint8))
    for tile in (1, 2, 3):
        assert torch.equal(tiled.synthesis(net64, y_hat, 0, *size, channels, tile=tile), whole)
    short = tiled.synthesis(net64, y_hat, 0, *size, channels, tile=2, halo=1)
    assert not torch.equal(short, whole)


def test_tiles_bound_the_working_set(monkeypatch):
    """No layer sees more than a tile and the context it needs (< 3 latents)."""
    loaded = codec.load_model()
    seen: list[tuple[int, ...]] = []
    call = tiled._Transform.__call__

    def spy(self, x, *plans):
        seen.append(tuple(x.shape))
        return call(self, x, *plans)

    monkeypatch.setattr(tiled._Transform, "__call__", spy)
    monkeypatch.setattr(tiled, "TILE", 4)
    image = _photo(130, 170)  # 9 x 11 latents: 3 x 3 tiles of 4
    data = codec.encode_image(image, 2)
    assert len(seen) == 9
    side = 16 * 4 + 30 + 15  # a latent depends on pixels 30 above/left to 15 below/right
    assert all(s[2] <= side and s[3] <= side for s in seen)
    assert max(s[2] for s in seen) == side  # an inner tile
    seen.clear()
    back = codec.decode_image(data)
    assert len(seen) == 9 and all(s[2] <= 4 + 3 and s[3] <= 4 + 3 for s in seen)
    assert max(s[3] for s in seen) == 4 + 3  # a pixel depends on latents 1 before, 2 after
    assert back.shape == image.shape and loaded.levels == 6


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return 10 * math.log10(255**2 / mse)


def test_float32_tiled_and_whole_image_agree(monkeypatch):
    """What ships (float32): equal but for rare rounding-edge values, equal PSNR."""
    loaded = codec.load_model()
    tile = 5
    image = _photo(217, 331)  # 14 x 21 latents: 3 x 5 tiles
    monkeypatch.setattr(tiled, "TILE", None)
    whole = codec.encode_image(image, 3)
    monkeypatch.setattr(tiled, "TILE", tile)
    parts = codec.encode_image(image, 3)
    shape = tuple(jtc.unpack(whole).tensors[0][1])
    q = [entropy.decode_symbols(*(s.data for s in jtc.unpack(d).streams), shape,
                                loaded.tables[2]) for d in (whole, parts)]
    differ = q[0] != q[1]
    assert differ.mean() < 1e-3 and int(np.abs(q[0] - q[1]).max()) <= 1
    # the decoder: same file, tiled or not
    monkeypatch.setattr(tiled, "TILE", None)
    back_whole = codec.decode_image(parts)
    monkeypatch.setattr(tiled, "TILE", tile)
    back_parts = codec.decode_image(parts)
    assert int((back_whole.int() - back_parts.int()).abs().max()) <= 1
    assert (back_whole != back_parts).double().mean() < 1e-3
    assert abs(_psnr(image, back_whole) - _psnr(image, back_parts)) < 0.01
    assert abs(_psnr(image, codec.decode_image(whole)) - _psnr(image, back_parts)) < 0.01


def test_real_tile_size_deterministic():
    """Several real tiles (TILE = 24): the same bytes and pixels on every run."""
    image = _photo(400, 300)  # 25 x 19 latents: 2 x 1 tiles
    assert math.ceil(400 / 16) > tiled.TILE
    data = codec.encode_image(image, 4)
    assert codec.encode_image(image.clone(), 4) == data
    first = codec.decode_image(data)
    assert torch.equal(codec.decode_image(data), first)
    assert _psnr(image, first) > 25


def test_bad_tiling_arguments(net64):
    image = _photo(32, 32)
    with pytest.raises(ValueError, match="tile"):
        tiled.analysis(net64, image, 0, tile=0)
    with pytest.raises(ValueError, match="halo"):
        tiled.analysis(net64, image, 0, halo=-1)
    # the context each tile gets, derived from the layers' kernels, strides and padding
    transform = tiled._Transform(net64, 0, "synthesis", torch.device("cpu"))
    assert tiled._plan(transform, 16 * 5, 16 * 9, 20, None) == \
        [(4, 11), (9, 20), (19, 38), (39, 73), (80, 144)]
    transform = tiled._Transform(net64, 0, "analysis", torch.device("cpu"))
    assert tiled._plan(transform, 5, 9, 16 * 20, None)[0] == (16 * 5 - 30, 16 * 9 + 15)
    with pytest.raises(ValueError, match="do not fit"):
        tiled.synthesis(net64, torch.zeros(8, 2, 2, dtype=torch.float64), 0, 40, 32, 3)
