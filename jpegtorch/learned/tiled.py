"""Tile-by-tile inference of the learned codec's transforms, in bounded memory.

The analysis transform ``g_a`` (4 × 5×5 convolution, stride 2, GDN between)
and the synthesis transform ``g_s`` (its mirror with transposed convolutions
and inverse GDN) are local: a latent depends on a 61×61-pixel window and a
pixel on a few latents around it. :func:`analysis` and :func:`synthesis` run
them over square tiles of :data:`TILE` latents (384 pixels), each grown by a
halo of :data:`HALO` latents on every side that has neighbours, and keep only
the tile's own part of the result. Peak memory is then the input, the output
and one tile's working set (about 120 MB at ``N = 80``), whatever the image size.

Exactness. The halo is wider than the transforms' reach (a latent depends
on pixels within 30 of its 16×16 block, a pixel on latents within 1.9 latents),
so tiling changes no value mathematically: in float64, tiled and whole-image
results agree to rounding (1e-15). In float32 on the CPU they can differ in
the last bits, because oneDNN picks its convolution algorithms by size (a
tile and the whole image are summed in different orders; even a polyphase
rewrite of the transposed convolutions into ``conv2d`` is not size-invariant
for small inputs). That can move a latent that sits on a rounding edge by one
step in the encoder, or a pixel by one level in the decoder, and nothing
more: the decoder never recomputes the latents (they are in the file), so
encoder and decoder always agree on them bit for bit, whatever either's
tiling. :data:`TILE` and :data:`HALO` are constants, so the same input gives
the same bytes and pixels on a given machine.
``tests/test_learned_tiled.py`` checks all of this on sizes that are not
multiples of the tile (and that a too-small halo is caught).

Shapes: images ``uint8 [C, H, W]``; latents ``[M, ceil(H/16), ceil(W/16)]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover  (torch is imported by the functions that run)
    import torch
    from torch import Tensor

    from .model import GDN, FactorizedCodec

STRIDE = 16  # pixels per latent (model.STRIDE)
TILE = 24  # latents per tile side (384 pixels)
HALO = 2  # latents of context on each inner tile edge (the transforms reach < 2)
_GDN_BAND = 1 << 20  # values per band of GDN's temporaries (4 MB in float32)
_LUMA = (0.299, 0.587, 0.114)


_F = TypeVar("_F", bound=Callable[..., Any])


def _no_grad(fn: _F) -> _F:
    """``torch.no_grad()`` around ``fn``, importing torch only when it runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _gdn_params(gdn: GDN) -> tuple[Tensor, Tensor]:
    """GDN's ``(gamma [C, C, 1, 1], beta [C])`` as its forward computes them (inference)."""
    channels = gdn.beta.shape[0]
    beta = gdn.beta.detach().clamp_min(gdn._beta_bound) ** 2 - gdn._pedestal
    gamma = gdn.gamma.detach().clamp_min(gdn._gamma_bound) ** 2 - gdn._pedestal
    return gamma.view(channels, channels, 1, 1), beta


class _Transform:
    """One transform (``g_a`` or ``g_s``) of a level, prepared for tile-wise inference.

    Runs the network's own layers in order; GDN is computed in place (the same
    operations as :class:`~.model.GDN`, so the values are identical) to keep
    one tile's working set at three feature maps.
    """

    def __init__(self, net: FactorizedCodec, level: int, which: str,
                 device: torch.device) -> None:
        import torch

        from .model import GDN

        self.ops: list[tuple] = []
        layers = net.g_a if which == "analysis" else net.g_s
        for layer in layers:
            if isinstance(layer, GDN):
                gamma, beta = _gdn_params(layer)
                self.ops.append(("gdn", gamma.to(device), beta.to(device), layer.inverse))
            else:
                self.ops.append(("layer", layer.to(device)))
        gains = net.log_gain_enc if which == "analysis" else net.log_gain_dec
        self.gain = torch.exp(gains[level].detach()).view(1, -1, 1, 1).to(device)
        self.dtype = self.gain.dtype

    def __call__(self, x: Tensor) -> Tensor:
        """``[1, C, h, w]`` (consumed) -> the layers' output."""
        import torch.nn.functional as F

        for op in self.ops:
            if op[0] == "layer":
                x = op[1](x)
            else:
                _, gamma, beta, inverse = op
                # GDN mixes channels per pixel only: in bands of rows, in place, so that
                # its temporaries stay at ~4 MB whatever the tile
                rows = max(1, _GDN_BAND // (x.shape[1] * x.shape[3]))
                for top in range(0, x.shape[2], rows):
                    band = x[:, :, top:top + rows]
                    norm = F.conv2d(band * band, gamma, beta)
                    norm.sqrt_()
                    if inverse:
                        band.mul_(norm)
                    else:
                        band.div_(norm)
                    del norm, band
        return x


def _tiles(rows: int, cols: int, tile: int | None) -> Iterator[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` latent ranges of the tiles, in raster order."""
    step_r = rows if tile is None else tile
    step_c = cols if tile is None else tile
    for r0 in range(0, rows, step_r):
        for c0 in range(0, cols, step_c):
            yield r0, min(r0 + step_r, rows), c0, min(c0 + step_c, cols)


def _check_tiling(tile: int | None, halo: int) -> None:
    if tile is not None and (not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of latents or None, got {tile!r}")
    if not isinstance(halo, int) or halo < 0:
        raise ValueError(f"halo must be a non-negative number of latents, got {halo!r}")


def _to_luma(x: Tensor) -> Tensor:
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]`` (BT.601 weights), same dtype."""
    import torch

    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@_no_grad
def analysis(net: FactorizedCodec, image: Tensor, level: int, *, tile: int | None = TILE,
             halo: int = HALO, device: torch.device | str | None = None) -> Tensor:
    """Scaled latents ``y`` of an image, tile by tile.

    Args:
        net: the codec network (float32).
        image: ``uint8 [C, H, W]`` (C = 1 or 3; a gray image is fed to an RGB
            model as three equal channels, an RGB image to a gray model as
            BT.601 luma). The image is extended to a multiple of 16 by edge
            replication.
        level: 0-based quality level.
        tile: latents per tile side; ``None``: the whole image at once.
        halo: latents of context around each tile (:data:`HALO`).
        device: where the transform runs (default: the CPU).

    Returns ``float32 [M, ceil(H/16), ceil(W/16)]`` on the CPU: exactly
    ``net.analysis`` of the padded image (bit-identical for every ``tile``).
    """
    import torch

    _check_tiling(tile, halo)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    channels, height, width = image.shape
    rows, cols = -(-height // STRIDE), -(-width // STRIDE)
    transform = _Transform(net, level, "analysis", dev)
    in_channels = int(net.config["in_channels"])
    out = None
    for r0, r1, c0, c1 in _tiles(rows, cols, tile):
        a0, a1 = max(r0 - halo, 0), min(r1 + halo, rows)
        b0, b1 = max(c0 - halo, 0), min(c1 + halo, cols)
        # pixel rows/columns of the tile, edge-replicated beyond the image
        ys = torch.arange(STRIDE * a0, STRIDE * a1).clamp_(max=height - 1)
        xs = torch.arange(STRIDE * b0, STRIDE * b1).clamp_(max=width - 1)
        x = image.index_select(1, ys).index_select(2, xs).to(dev, transform.dtype)
        x = x.div_(255.0)[None]
        if in_channels == 3 and channels == 1:
            x = x.expand(1, 3, *x.shape[2:])
        elif in_channels == 1 and channels == 3:
            x = _to_luma(x)
        y = transform(x - 0.5)
        y = y[:, :, r0 - a0:r1 - a0, c0 - b0:c1 - b0] * transform.gain
        if out is None:
            out = torch.empty(y.shape[1], rows, cols, dtype=y.dtype)
        out[:, r0:r1, c0:c1] = y[0].cpu()
        del x, y
    assert out is not None
    return out


@_no_grad
def synthesis(net: FactorizedCodec, y_hat: Tensor, level: int, height: int, width: int,
              channels: int, *, offset: Tensor | None = None, tile: int | None = TILE,
              halo: int = HALO, device: torch.device | str | None = None) -> Tensor:
    """Decoded image from quantized scaled latents, tile by tile.

    Args:
        net: the codec network (float32).
        y_hat: ``[M, h, w]`` with ``h = ceil(height/16)``, ``w = ceil(width/16)``:
            the dequantized latents ``q + μ``, or the integer symbols ``q``
            (e.g. ``int32``) with ``offset`` = ``μ``; converted to the
            network's dtype one tile at a time.
        offset: ``[M]`` added to ``y_hat`` per channel (after the conversion),
            or ``None``.
        level: 0-based quality level.
        height, width: size of the decoded image.
        channels: 1 or 3 (a gray image from an RGB model is its BT.601 luma).
        tile, halo, device: as in :func:`analysis`.

    Returns ``uint8 [channels, height, width]`` on the CPU:
    ``round(255 · clamp(g_s(y_hat · gain) + 0.5, 0, 1))``, bit-identical for
    every ``tile``.
    """
    import torch

    _check_tiling(tile, halo)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    rows, cols = y_hat.shape[1:]
    if (rows, cols) != (-(-height // STRIDE), -(-width // STRIDE)):
        raise ValueError(f"latents {tuple(y_hat.shape)} do not fit a {width}x{height} image")
    transform = _Transform(net, level, "synthesis", dev)
    shift = None if offset is None else offset.to(dev, transform.dtype).view(1, -1, 1, 1)
    out = torch.empty(channels, height, width, dtype=torch.uint8)
    for r0, r1, c0, c1 in _tiles(rows, cols, tile):
        a0, a1 = max(r0 - halo, 0), min(r1 + halo, rows)
        b0, b1 = max(c0 - halo, 0), min(c1 + halo, cols)
        y = y_hat[:, a0:a1, b0:b1].to(dev, transform.dtype)[None]
        if shift is not None:
            y = y + shift
        y = y * transform.gain
        x = transform(y)
        del y
        top, left = STRIDE * (r0 - a0), STRIDE * (c0 - b0)
        h = min(STRIDE * r1, height) - STRIDE * r0
        w = min(STRIDE * c1, width) - STRIDE * c0
        x = x[:, :, top:top + h, left:left + w].add(0.5).clamp_(0.0, 1.0)
        if channels == 1 and x.shape[1] == 3:
            x = _to_luma(x)
        pixels = torch.round(x[0].mul_(255.0)).to("cpu", torch.uint8)
        out[:, STRIDE * r0:STRIDE * r0 + h, STRIDE * c0:STRIDE * c0 + w] = pixels
        del x, pixels
    return out
