"""Tile-by-tile inference of the learned codec's transforms, in bounded memory.

The analysis transform ``g_a`` (4 × 5×5 convolution, stride 2, GDN between)
and the synthesis transform ``g_s`` (its mirror with transposed convolutions
and inverse GDN) are local: a latent depends on pixels within 30 of its
16×16 block, a pixel on latents within 1.9 latents of it. :func:`analysis`
and :func:`synthesis` run them over square tiles of :data:`TILE` latents
(384 pixels). Each tile starts from just the context its outputs depend on,
and after every layer keeps only the region the following layers still
need (derived from the layers' kernel, stride and padding by
:func:`_plan`), so the context costs ~1 % extra work instead of recomputing
a halo. Peak memory is the input, the output, the latents and one tile's
working set (~100 MB at ``N = 80``), whatever the image size.

Exactness. Every value a tile keeps is computed from exactly the inputs the
whole-image computation uses (the image border's zero padding included), so
tiling changes no value mathematically: in float64, tiled and whole-image
results agree to rounding (1e-14), and with too little context (``halo=1``)
they do not (``tests/test_learned_tiled.py``). In float32 on the CPU they can
differ in the last bits, because oneDNN picks its convolution algorithms by
size (a tile and the whole image are summed in different orders; even a
polyphase rewrite of the transposed convolutions into ``conv2d`` is not
size-invariant for small inputs). That can move a latent that sits on a
rounding edge by one step in the encoder, or a pixel by one level in the
decoder, and nothing more: the decoder never recomputes the latents (they are
in the file), so encoder and decoder always agree on them bit for bit,
whatever either's tiling. :data:`TILE` is a constant, so the same input gives
the same bytes and pixels on a given machine. Measured on Kodak (24 images ×
6 levels): every file identical to whole-image coding.

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

        self.layers = [op[1] for op in self.ops if op[0] == "layer"]
        self.upsample = which == "synthesis"

    def __call__(self, x: Tensor, rows: list[tuple[int, int]] | None = None,
                 cols: list[tuple[int, int]] | None = None) -> Tensor:
        """``[1, C, h, w]`` (consumed) -> the layers' output.

        With ``rows``/``cols`` (from :func:`_plan`: the global range of every
        stage, the input's first), the map is cropped to its stage's range
        after each resampling layer.
        """
        import torch.nn.functional as F

        stage = 0
        origin = None if rows is None or cols is None else (rows[0][0], cols[0][0])
        for op in self.ops:
            if op[0] == "layer":
                x = op[1](x)
                if origin is not None:
                    assert rows is not None and cols is not None
                    x, origin = _crop(x, origin, rows[stage + 1], cols[stage + 1],
                                      self.upsample)
                stage += 1
            else:
                _, gamma, beta, inverse = op
                # GDN mixes channels per pixel only: in bands of rows, in place, so that
                # its temporaries stay at ~4 MB whatever the tile
                step = max(1, _GDN_BAND // (x.shape[1] * x.shape[3]))
                for top in range(0, x.shape[2], step):
                    band = x[:, :, top:top + step]
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


def _needed(layer: Any, start: int, stop: int) -> tuple[int, int]:
    """The input range a resampling layer's outputs ``[start, stop)`` depend on (one axis)."""
    k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
    if layer.transposed:  # out[o] = sum over s*i - p + t = o, t in [0, k)
        return -((k - 1 - p - start) // s), (stop - 1 + p) // s + 1
    return s * start - p, s * (stop - 1) - p + k


def _plan(transform: _Transform, start: int, stop: int, size: int,
          context: tuple[int, int] | None) -> list[tuple[int, int]]:
    """Global ranges, stage by stage (input first), for final outputs ``[start, stop)``.

    Backwards from the output: each stage keeps what the next layer needs
    for the next stage's range, within the stage's extent (``size`` is the
    input's extent on this axis); the image border's padding is the layers'
    own, as for the whole image. ``context`` overrides the input range (to
    show what too little context does).
    """
    sizes = [size]
    for layer in transform.layers:
        k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
        n = sizes[-1]
        sizes.append((n - 1) * s - 2 * p + k + layer.output_padding[0] if layer.transposed
                     else (n + 2 * p - k) // s + 1)
    ranges = [(start, stop)]
    for layer, n in zip(reversed(transform.layers), reversed(sizes[:-1]), strict=True):
        lo, hi = _needed(layer, *ranges[0])
        ranges.insert(0, (max(lo, 0), min(hi, n)))
    if context is not None:
        ranges[0] = (max(context[0], 0), min(context[1], size))
    return ranges


def _crop(x: Tensor, origin: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int],
          upsample: bool) -> tuple[Tensor, tuple[int, int]]:
    """Cut a layer's output to the global ``rows`` x ``cols`` it is still needed for.

    ``origin``: the global (row, column) of the layer's input's first value.
    Returns the cut map and the global (row, column) of its first value.
    """
    if upsample:  # a transposed convolution's output o comes from inputs around o / 2
        top, left = 2 * origin[0], 2 * origin[1]
    else:  # a strided convolution's output j is centred on its input 2 j
        if origin[0] % 2 or origin[1] % 2:  # pragma: no cover - _plan keeps them even
            raise ValueError("a strided convolution's input must start on its stride")
        top, left = origin[0] // 2, origin[1] // 2
    lo_r, hi_r = max(rows[0], top), min(rows[1], top + x.shape[2])
    lo_c, hi_c = max(cols[0], left), min(cols[1], left + x.shape[3])
    if (lo_r, hi_r, lo_c, hi_c) != (top, top + x.shape[2], left, left + x.shape[3]):
        x = x[:, :, lo_r - top:hi_r - top, lo_c - left:hi_c - left].contiguous()
    return x, (lo_r, lo_c)


def _check_tiling(tile: int | None, halo: int | None) -> None:
    if tile is not None and (not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of latents or None, got {tile!r}")
    if halo is not None and (not isinstance(halo, int) or halo < 0):
        raise ValueError(f"halo must be None or a non-negative number of latents, got {halo!r}")


def _to_luma(x: Tensor) -> Tensor:
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]`` (BT.601 weights), same dtype."""
    import torch

    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@_no_grad
def analysis(net: FactorizedCodec, image: Tensor, level: int, *, tile: int | None = TILE,
             halo: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Scaled latents ``y`` of an image, tile by tile.

    Args:
        net: the codec network.
        image: ``uint8 [C, H, W]`` (C = 1 or 3; a gray image is fed to an RGB
            model as three equal channels, an RGB image to a gray model as
            BT.601 luma). The image is extended to a multiple of 16 by edge
            replication.
        level: 0-based quality level.
        tile: latents per tile side; ``None``: the whole image at once.
        halo: ``None`` (default): each tile gets the context its latents
            depend on; an integer: exactly that many latents' worth of
            pixels around it (for tests: too little changes the result).
        device: where the transform runs (default: the CPU).

    Returns ``[M, ceil(H/16), ceil(W/16)]`` in the network's dtype, on the
    CPU: ``net.analysis`` of the padded image (exactly so for ``tile=None``;
    see the module's notes for tiles).
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
        around = None if halo is None else STRIDE * halo
        plan_r = _plan(transform, r0, r1, STRIDE * rows,
                       None if around is None else (STRIDE * r0 - around, STRIDE * r1 + around))
        plan_c = _plan(transform, c0, c1, STRIDE * cols,
                       None if around is None else (STRIDE * c0 - around, STRIDE * c1 + around))
        # the pixels the tile needs, edge-replicated beyond the image
        ys = torch.arange(*plan_r[0]).clamp_(max=height - 1)
        xs = torch.arange(*plan_c[0]).clamp_(max=width - 1)
        x = image.index_select(1, ys).index_select(2, xs).to(dev, transform.dtype)
        x = x.div_(255.0)[None]
        if in_channels == 3 and channels == 1:
            x = x.expand(1, 3, *x.shape[2:])
        elif in_channels == 1 and channels == 3:
            x = _to_luma(x)
        y = transform(x - 0.5, plan_r, plan_c) * transform.gain
        if out is None:
            out = torch.empty(y.shape[1], rows, cols, dtype=y.dtype)
        out[:, r0:r1, c0:c1] = y[0].cpu()
        del x, y
    assert out is not None
    return out


@_no_grad
def synthesis(net: FactorizedCodec, y_hat: Tensor, level: int, height: int, width: int,
              channels: int, *, offset: Tensor | None = None, tile: int | None = TILE,
              halo: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Decoded image from quantized scaled latents, tile by tile.

    Args:
        net: the codec network.
        y_hat: ``[M, h, w]`` with ``h = ceil(height/16)``, ``w = ceil(width/16)``:
            the dequantized latents ``q + μ``, or the integer symbols ``q``
            (e.g. ``int32``) with ``offset`` = ``μ``; converted to the
            network's dtype one tile at a time.
        offset: ``[M]`` added to ``y_hat`` per channel (after the conversion),
            or ``None``.
        level: 0-based quality level.
        height, width: size of the decoded image.
        channels: 1 or 3 (a gray image from an RGB model is its BT.601 luma).
        tile, device: as in :func:`analysis`.
        halo: ``None`` (default): each tile gets the latents its pixels depend
            on; an integer: exactly that many latents around it (for tests).

    Returns ``uint8 [channels, height, width]`` on the CPU:
    ``round(255 · clamp(g_s(y_hat · gain) + 0.5, 0, 1))`` (exactly so for
    ``tile=None``; see the module's notes for tiles).
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
        plan_r = _plan(transform, STRIDE * r0, STRIDE * r1, rows,
                       None if halo is None else (r0 - halo, r1 + halo))
        plan_c = _plan(transform, STRIDE * c0, STRIDE * c1, cols,
                       None if halo is None else (c0 - halo, c1 + halo))
        (a0, a1), (b0, b1) = plan_r[0], plan_c[0]
        y = y_hat[:, a0:a1, b0:b1].to(dev, transform.dtype)[None]
        if shift is not None:
            y = y + shift
        x = transform(y * transform.gain, plan_r, plan_c)  # rows 16 r0 .., columns 16 c0 ..
        del y
        h = min(STRIDE * r1, height) - STRIDE * r0
        w = min(STRIDE * c1, width) - STRIDE * c0
        x = x[:, :, :h, :w].add(0.5).clamp_(0.0, 1.0)
        if channels == 1 and x.shape[1] == 3:
            x = _to_luma(x)
        pixels = torch.round(x[0].mul_(255.0)).to("cpu", torch.uint8)
        out[:, STRIDE * r0:STRIDE * r0 + h, STRIDE * c0:STRIDE * c0 + w] = pixels
        del x, pixels
    return out
