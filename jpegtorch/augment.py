"""``RandomJPEG``: an exact, differentiable JPEG augmentation (a data transform).

In the style of torchvision's ``v2.JPEG`` and kornia's ``RandomJPEG``: a
quality is drawn per sample, uniformly among the integers of a range, from
torch's random number generator, and every sample comes out exactly as
libjpeg-turbo (Pillow, OpenCV, ``cjpeg``/``djpeg``) would encode and decode it
at that quality, ``jpegtorch.jpeg(x_i, q_i, mode="hard")`` pixel for pixel.
Float images that require grad go through the ``ste`` pipeline (same forward,
straight-through gradients); everything else takes the pipeline's hard path
(the compiled kernels on CPU).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._arith import check_mode
from .sampling import parse_subsampling


def _check_quality_range(quality: int | Sequence[int]) -> tuple[int, int]:
    """``quality`` -> ``(low, high)`` inclusive, validated like torchvision's JPEG."""
    if isinstance(quality, Tensor):
        quality = quality.tolist()
    if isinstance(quality, numbers.Number) and not isinstance(quality, bool):
        values: list[Any] = [quality, quality]
    elif isinstance(quality, Sequence) and not isinstance(quality, str) and len(quality) == 2:
        values = list(quality)
    else:
        raise TypeError(f"quality must be an int or a sequence (low, high) of two ints, "
                        f"got {quality!r}")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
                float(value) != int(value)):
            raise TypeError(f"quality must be integers in 1..100, got {quality!r}")
        out.append(int(value))
    low, high = out
    if not 1 <= low <= high <= 100:
        raise ValueError(f"quality must satisfy 1 <= low <= high <= 100, got {quality!r}")
    return low, high


class RandomJPEG(nn.Module):
    """Randomly JPEG-compress images, exactly as libjpeg-turbo does.

    ``RandomJPEG(quality=(30, 90))(x)`` draws one integer quality per sample,
    uniformly in ``30..90`` (both included), and returns each sample as
    libjpeg-turbo's decode of its encode at that quality (baseline, Annex K
    tables, ``subsampling``): ``out[i] == jpegtorch.jpeg(x[i], q[i], mode="hard")``
    and Pillow's round trip, bit for bit. Float images that require grad are
    differentiable (``mode``, default ``"ste"``: the same exact forward,
    straight-through gradients).

    Random draws, in this order, from ``generator`` (default: torch's global
    CPU generator, so ``torch.manual_seed`` reproduces a run on any device):
    the qualities ``torch.randint(low, high + 1, (N,))`` (one value repeated
    with ``same_on_batch``), then, only when ``0 < p < 1``, the coin flips
    ``torch.rand(N) < p``.

    Args:
        quality: an int (fixed quality) or ``(low, high)`` integers, 1..100
            (torchvision's convention).
        subsampling: chroma subsampling, "4:4:4", "4:2:2" or "4:2:0"
            (also "4:4:0", "4:1:1"); ignored for grayscale images.
        p: probability that a sample is compressed (per sample); the others
            pass through unchanged (same values; for ``p = 0`` the very input
            tensor is returned).
        mode: gradient mode for float inputs that require grad: "ste"
            (default) or "hard" are exact; "soft" and "ste-quant" have a float
            forward (not libjpeg's values) and are there for experiments. uint8
            inputs and inputs without grad are always coded exactly.
        same_on_batch: one quality for the whole batch (kornia's option).
        generator: a ``torch.Generator`` (on the CPU, or on the device of the
            images) to draw from instead of the global one.

    Forward:
        ``image``: ``[C, H, W]`` or ``[N, C, H, W]``, C = 1 or 3; uint8 (0..255)
        or float in [0, 1] (float16/bfloat16 are computed in float32), any
        device and memory layout. Returns the same shape, dtype, device and
        memory format. ``params`` replays earlier draws (a dict as returned by
        ``return_params=True``) instead of drawing; ``return_params=True``
        returns ``(image, params)``. The last draws are also kept in
        :attr:`last_params`.

        params: ``{"quality": int64 [N], "batch_prob": bool [N]}`` on the CPU:
        the quality drawn for every sample and whether it was compressed.
    """

    def __init__(self, quality: int | Sequence[int] = (30, 90), *, subsampling: str = "4:2:0",
                 p: float = 1.0, mode: str = "ste", same_on_batch: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.quality = _check_quality_range(quality)
        parse_subsampling(subsampling)
        self.subsampling = subsampling
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.mode = check_mode(mode)
        self.same_on_batch = bool(same_on_batch)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, "
                            f"got {type(generator).__name__}")
        self.generator = generator
        self.last_params: dict[str, Tensor] | None = None

    # ------------------------------------------------------------------ draws

    def forward_parameters(self, batch_size: int) -> dict[str, Tensor]:
        """Draw the parameters of a batch: ``{"quality": int64 [N], "batch_prob":
        bool [N]}`` (CPU tensors), in the documented order."""
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        g = self.generator
        device = g.device if g is not None else torch.device("cpu")
        low, high = self.quality
        count = 1 if self.same_on_batch else batch_size
        quality = torch.randint(low, high + 1, (count,), generator=g, device=device)
        quality = quality.to("cpu", torch.int64).expand(batch_size).clone()
        if self.p >= 1.0:
            apply = torch.ones(batch_size, dtype=torch.bool)
        elif self.p <= 0.0:
            apply = torch.zeros(batch_size, dtype=torch.bool)
        else:
            apply = (torch.rand(batch_size, generator=g, device=device) < self.p).cpu()
        return {"quality": quality, "batch_prob": apply}

    # ---------------------------------------------------------------- forward

    def forward(self, image: Tensor, params: dict[str, Tensor] | None = None, *,
                return_params: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        from .pipeline import _check_image

        _check_image(image)
        batched = image.dim() == 4
        x = image if batched else image[None]
        n = x.shape[0]
        if params is None:
            params = self.forward_parameters(n)
        else:
            params = _check_params(params, n)
        self.last_params = params
        apply = params["batch_prob"]
        if not bool(apply.any()):
            out = image  # p = 0 (or no sample drawn): the input itself, no copy
        else:
            out = self._compress(x, params["quality"], apply)
            out = out if batched else out[0]
        return (out, params) if return_params else out

    def _compress(self, x: Tensor, quality: Tensor, apply: Tensor) -> Tensor:
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        differentiable = x.dtype.is_floating_point and x.requires_grad and torch.is_grad_enabled()
        mode = self.mode if differentiable else "hard"
        if bool(apply.all()):
            out = _jpeg_per_sample(x, quality, self.subsampling, mode)
        else:
            index = apply.nonzero().flatten()
            out = x.clone()
            out[index.to(x.device)] = _jpeg_per_sample(x[index.to(x.device)], quality[index],
                                                      self.subsampling, mode)
        if channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def extra_repr(self) -> str:
        low, high = self.quality
        quality = f"{low}" if low == high else f"({low}, {high})"
        text = (f"quality={quality}, subsampling={self.subsampling!r}, p={self.p:g}, "
                f"mode={self.mode!r}")
        if self.same_on_batch:
            text += ", same_on_batch=True"
        return text


def _check_params(params: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    if not isinstance(params, dict) or "quality" not in params:
        raise ValueError("params must be a dict with a 'quality' tensor [N] "
                         "(and optionally 'batch_prob' [N])")
    quality = torch.as_tensor(params["quality"]).detach().to("cpu")
    if quality.dim() == 0:
        quality = quality.expand(n)
    if quality.shape != (n,):
        raise ValueError(f"params['quality'] must have shape [{n}], got {tuple(quality.shape)}")
    if quality.is_floating_point() and not torch.equal(quality, quality.round()):
        raise ValueError("params['quality'] must be integers")
    quality = quality.to(torch.int64)
    if bool((quality < 1).any()) or bool((quality > 100).any()):
        raise ValueError("params['quality'] must be in 1..100")
    apply = params.get("batch_prob")
    apply = (torch.ones(n, dtype=torch.bool) if apply is None
             else torch.as_tensor(apply).detach().to("cpu", torch.bool))
    if apply.shape != (n,):
        raise ValueError(f"params['batch_prob'] must have shape [{n}], got {tuple(apply.shape)}")
    return {"quality": quality, "batch_prob": apply}


def _jpeg_per_sample(x: Tensor, quality: Tensor, subsampling: str, mode: str) -> Tensor:
    """``jpeg(x[i], quality[i], mode=mode)`` for every sample of ``x`` ``[N, C, H, W]``
    (``quality``: int64 ``[N]`` on the CPU); same dtype and device as ``x``."""
    from .pipeline import _quantize_pixels, jpeg

    if mode == "hard" and x.dtype.is_floating_point:
        # the float hard path rounds to 8 bits first (floor(255 x + 0.5)); do it
        # here and take the uint8 path, then scale back as the pipeline does
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        pixels = _quantize_pixels(x.to(work)).to(torch.uint8)
        out = _jpeg_uint8(pixels, quality, subsampling)
        return (out.to(work) * (1.0 / 255.0)).to(x.dtype)
    if mode == "hard":
        return _jpeg_uint8(x, quality, subsampling)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    q = quality.to(x.device, work)
    return jpeg(x.to(work), q, subsampling=subsampling, mode=mode).to(x.dtype)


def _jpeg_uint8(x: Tensor, quality: Tensor, subsampling: str) -> Tensor:
    """Exact ``jpeg`` of uint8 ``[N, C, H, W]`` with per-sample int64 qualities."""
    from .pipeline import jpeg

    return jpeg(x, quality.to(x.device, torch.float32), subsampling=subsampling, mode="hard")
