"""The JPEG pipeline composed from its stages: ``encode``, ``decode`` and ``jpeg``.

Encoder: pixels -> (RGB->YCbCr) -> pad + down-sample -> 8×8 blocks -> islow
FDCT -> quantize -> :class:`~jpegtorch.coefficients.Coefficients`.
Decoder: dequantize -> islow IDCT + range limit -> crop -> up-sample ->
(YCbCr->RGB) -> pixels. ``jpeg == decode ∘ encode``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._arith import check_mode, work_dtype
from .blocks import add_dummy_blocks, blockify, ceil_div, replicate_pad, unblockify
from .coefficients import Coefficients
from .color import rgb_to_ycbcr, ycbcr_to_rgb
from .dct import fdct, idct
from .quantize import dequantize, quality_to_tables, quantize
from .sampling import downsample, parse_subsampling, upsample


def _check_image(image: Tensor) -> None:
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() not in (3, 4):
        raise ValueError(f"image must be [C,H,W] or [N,C,H,W], got shape {tuple(image.shape)}")
    channels = image.shape[-3]
    if channels not in (1, 3):
        raise ValueError(f"image must have 1 (gray) or 3 (RGB) channels, got {channels}")
    if image.shape[-1] < 1 or image.shape[-2] < 1 or (image.dim() == 4 and image.shape[0] < 1):
        raise ValueError(f"image must not be empty, got shape {tuple(image.shape)}")
    if image.shape[-1] > 65535 or image.shape[-2] > 65535:
        raise ValueError("JPEG images are at most 65535 pixels wide and high")
    if image.dtype != torch.uint8 and not image.dtype.is_floating_point:
        raise TypeError(f"image must be uint8 or floating point, got {image.dtype}")


def _to_pixels(image: Tensor, mode: str, dtype: torch.dtype) -> Tensor:
    """Image -> samples 0..255 in ``dtype`` (rounded to 8 bits in the exact modes)."""
    if image.dtype == torch.uint8:
        return image.to(dtype)
    if mode == "hard":
        return _quantize_pixels(image.to(dtype))
    if mode == "ste":
        return _StraightPixels.apply(image.to(dtype))
    return (image.to(dtype) * 255.0).clamp(0.0, 255.0)


def _quantize_pixels(x: Tensor) -> Tensor:
    return (x * 255.0).add_(0.5).floor_().clamp_(0.0, 255.0)


class _StraightPixels(torch.autograd.Function):
    """``clamp(floor(255 x + 0.5), 0, 255)`` forward, ``255 x`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return _quantize_pixels(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad * 255.0


def encode(image: Tensor, quality: float | Tensor = 75, *, subsampling: str = "4:2:0",
           tables: Tensor | None = None, mode: str = "ste",
           color_matrix: Tensor | None = None, force_baseline: bool = True) -> Coefficients:
    """Encode images to quantized DCT coefficients, exactly as libjpeg-turbo does.

    Args:
        image: ``[N, C, H, W]`` or ``[C, H, W]``; C = 1 (grayscale JPEG) or 3
            (RGB, coded as YCbCr). uint8 (0..255), or float in [0, 1]
            (rounded to 8 bits as ``floor(255 x + 0.5)`` in the exact modes).
        quality: 1..100, a number or a tensor ``[]``/``[N]`` (per sample);
            float allowed and differentiable in ``ste``/``soft`` modes.
        subsampling: "4:4:4", "4:2:2" or "4:2:0" (also "4:4:0", "4:1:1");
            ignored for grayscale.
        tables: base quantization tables ``[2, 8, 8]`` or ``[N, 2, 8, 8]``
            (luma, chroma; natural order), scaled by ``quality`` as libjpeg
            does (50 = as given). None for Annex K. May require grad.
        mode: "hard", "ste", "soft" or "ste-quant" (see :mod:`jpegtorch._arith`).
            uint8 images are always coded exactly.
        color_matrix: ``[3, 3]`` RGB->YCbCr matrix (default JFIF's); learnable.
        force_baseline: quality-scaled tables clamped to 1..255 (libjpeg's
            ``force_baseline``, Pillow, ``cjpeg -baseline``); False keeps
            libjpeg's 1..32767 (plain ``cjpeg`` at low quality).

    Returns:
        :class:`Coefficients` with int32 blocks for uint8 images, else blocks in
        the image's float dtype.
    """
    _check_image(image)
    check_mode(mode)
    if image.dtype == torch.uint8:
        mode = "hard"
    # hard mode has no gradient through rounding: skip autograd altogether
    with torch.set_grad_enabled(torch.is_grad_enabled() and mode != "hard"):
        if mode == "hard" and image.device.type == "cpu" and color_matrix is None:
            return _encode_compiled(image, quality, subsampling, tables, force_baseline)
        return _encode(image, quality, subsampling, tables, mode, color_matrix, force_baseline)


def _encode_compiled(image: Tensor, quality: float | Tensor, subsampling: str,
                     tables: Tensor | None, force_baseline: bool = True) -> Coefficients:
    """Hard mode on the CPU: the same stages, run by the compiled kernels
    (:mod:`jpegtorch.kernels`) MCU row by MCU row. Identical results to
    :func:`_encode` (tests prove it), several times faster and without
    whole-image float64 temporaries."""
    from .kernels.encode import encode_coefficients

    integer_io = image.dtype == torch.uint8
    x = image if image.dim() == 4 else image[None]
    n, channels, height, width = x.shape
    dtype = work_dtype("hard", x.dtype)
    qt = quality_to_tables(quality, tables, mode="hard", dtype=dtype, device=x.device,
                           force_baseline=force_baseline)
    if qt.shape[0] not in (1, n):
        raise ValueError(f"quality/tables have batch size {qt.shape[0]}, images have {n}")
    if channels == 3:
        sampling = parse_subsampling(subsampling)
        color = "ycbcr"
    else:
        sampling = ((1, 1),)
        color = "gray"
    slots = tuple(0 if c == 0 else 1 for c in range(len(sampling)))
    component_tables = qt[:, list(slots)]  # [1 or N, C, 8, 8], integers 1..255 (32767)
    pixels = x if integer_io else _quantize_pixels(x.to(dtype)).to(torch.uint8)
    blocks = encode_coefficients(
        pixels.numpy().transpose(0, 2, 3, 1), sampling,
        component_tables.reshape(-1, len(sampling), 64).to(torch.int64).numpy(),
        dtype=np.int32)
    if integer_io:
        blocks_out = tuple(torch.from_numpy(b) for b in blocks)
        qtables = component_tables.to(torch.int32).expand(n, -1, -1, -1).contiguous()
    else:
        blocks_out = tuple(torch.from_numpy(b).to(x.dtype) for b in blocks)
        qtables = component_tables.to(x.dtype).expand(n, -1, -1, -1).contiguous()
    return Coefficients(
        blocks=blocks_out, qtables=qtables, sampling=sampling, size=(height, width),
        color=color, qtable_slots=slots, mode="hard",
    )


def _encode(image: Tensor, quality: float | Tensor, subsampling: str, tables: Tensor | None,
            mode: str, color_matrix: Tensor | None,
            force_baseline: bool = True) -> Coefficients:
    integer_io = image.dtype == torch.uint8
    x = image if image.dim() == 4 else image[None]
    n, channels, height, width = x.shape
    dtype = work_dtype(mode, x.dtype)
    qt = quality_to_tables(quality, tables, mode=mode, dtype=dtype, device=x.device,
                           force_baseline=force_baseline)
    if qt.shape[0] not in (1, n):
        raise ValueError(f"quality/tables have batch size {qt.shape[0]}, images have {n}")
    qt = qt.expand(n, 2, 8, 8)

    pixels = _to_pixels(x, mode, dtype)
    if channels == 3:
        sampling = parse_subsampling(subsampling)
        planes = rgb_to_ycbcr(pixels, mode, color_matrix)
        color = "ycbcr"
    else:
        sampling = ((1, 1),)
        planes = pixels
        color = "gray"
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    mcu_rows, mcu_cols = ceil_div(height, 8 * vmax), ceil_div(width, 8 * hmax)
    slots = tuple(0 if c == 0 else 1 for c in range(len(sampling)))

    blocks = []
    component_planes = planes.unbind(1)
    for c, (h, v) in enumerate(sampling):
        hexp, vexp = hmax // h, vmax // v
        wib = ceil_div(ceil_div(width * h, hmax), 8)
        hib = ceil_div(ceil_div(height * v, vmax), 8)
        plane = replicate_pad(component_planes[c], ceil_div(height, vmax) * vmax, wib * 8 * hexp)
        if vexp > 1 and plane.shape[-2] % vexp:
            plane = replicate_pad(plane, ceil_div(plane.shape[-2], vexp) * vexp, plane.shape[-1])
        plane = downsample(plane, hexp, vexp, mode)
        plane = replicate_pad(plane, hib * 8, wib * 8)
        coef = fdct(blockify(plane) - 128.0, mode)
        table = qt[:, slots[c], None, None]  # [N, 1, 1, 8, 8]
        quantized = quantize(coef, table, mode)
        blocks.append(add_dummy_blocks(quantized, mcu_rows * v, mcu_cols * h, h))

    out_dtype = torch.int32 if integer_io else x.dtype
    component_tables = qt[:, list(slots)]
    if integer_io:
        blocks_out = tuple(b.round().to(torch.int32) for b in blocks)
        qtables = component_tables.round().to(torch.int32)
    else:
        blocks_out = tuple(b.to(out_dtype) for b in blocks)
        qtables = component_tables.to(out_dtype)
    return Coefficients(
        blocks=blocks_out, qtables=qtables, sampling=sampling, size=(height, width),
        color=color, qtable_slots=slots, mode=mode,
    )


def decode(coefficients: Coefficients, *, mode: str | None = None,
           color_matrix: Tensor | None = None) -> Tensor:
    """Decode quantized coefficients to pixels, exactly as libjpeg-turbo does.

    Dequantize, islow IDCT with libjpeg's range limit, crop each component to
    its size, up-sample as libjpeg-turbo's default ("fancy") decoder and
    convert YCbCr to RGB.

    In ``hard`` mode on CPU tensors (integer coefficients, or integer-valued
    floats without gradients, and the default colour matrix) this runs the
    compiled stage kernels of :mod:`jpegtorch.kernels` band by band (the
    decoder's own path, identical results, a fraction of the time and
    memory); otherwise the torch formulation of each stage (autograd, GPUs).

    Args:
        coefficients: from :func:`encode` or :func:`jpegtorch.read_coefficients`.
        mode: arithmetic mode; defaults to the one the coefficients were made
            with (integer coefficients always decode exactly).
        color_matrix: ``[3, 2]`` chroma->RGB matrix (default JFIF's); learnable.

    Returns:
        ``[N, C, H, W]``: uint8 (0..255) for integer coefficients, otherwise
        floats in [0, 1] in the coefficients' dtype.
    """
    mode = check_mode(mode or coefficients.mode)
    if not coefficients.blocks[0].dtype.is_floating_point:
        mode = "hard"
    if mode == "hard" and color_matrix is None:
        pixels = _decode_compiled(coefficients)
        if pixels is not None:
            return pixels
    with torch.set_grad_enabled(torch.is_grad_enabled() and mode != "hard"):
        return _decode(coefficients, mode, color_matrix)


def _integral_numpy(t: Tensor, low: int, high: int) -> np.ndarray | None:
    """``t`` as an int16/int32 numpy array if it holds integers in [low, high], else None."""
    if t.device.type != "cpu" or t.requires_grad:
        return None
    if t.dtype in (torch.int16, torch.int32):
        return t.contiguous().numpy()
    if t.numel() == 0:
        return None
    if t.dtype.is_floating_point:
        if not bool(torch.all(t == torch.round(t))):
            return None
    elif t.dtype not in (torch.int8, torch.uint8, torch.int64):
        return None
    if int(t.min()) < low or int(t.max()) > high:
        return None
    return t.to(torch.int32).contiguous().numpy()


def _decode_compiled(coefficients: Coefficients) -> Tensor | None:
    """The hard-mode CPU decode through :mod:`jpegtorch.kernels`, or None when
    the coefficients are not what the kernels take (then the torch stages run)."""
    if coefficients.num_components not in (1, 3):
        return None
    blocks = []
    for b in coefficients.blocks:
        array = _integral_numpy(b, -(1 << 31), (1 << 31) - 1)
        if array is None:
            return None
        blocks.append(array)
    qtables = _integral_numpy(coefficients.qtables, 0, 65535)
    if qtables is None:
        return None
    if len({a.dtype for a in blocks}) > 1:
        blocks = [a.astype(np.int32) for a in blocks]
    from .kernels.decode import decode_coefficients, geometry

    height, width = coefficients.size
    geo = geometry(coefficients.sampling, coefficients.size)  # ValueError: fractional
    n = coefficients.batch_size
    for c, a in enumerate(blocks):
        if a.shape[1:] != (geo.imcu_rows * geo.v[c], geo.bx[c], 8, 8):
            return None
    out = np.empty((n, coefficients.num_components, height, width), dtype=np.uint8)
    for i in range(n):
        decode_coefficients([a[i] for a in blocks], qtables[i].reshape(-1, 64),
                            coefficients.sampling, coefficients.size, coefficients.color,
                            planar=True, out=out[i])
    pixels = torch.from_numpy(out)
    first = coefficients.blocks[0]
    if first.dtype.is_floating_point:  # as _decode: scaled in the work dtype
        return (pixels.to(work_dtype("hard", first.dtype)) * (1.0 / 255.0)).to(first.dtype)
    return pixels


def _decode(coefficients: Coefficients, mode: str, color_matrix: Tensor | None) -> Tensor:
    first = coefficients.blocks[0]
    integer_io = not first.dtype.is_floating_point
    dtype = work_dtype(mode, first.dtype)
    height, width = coefficients.size
    hmax, vmax = coefficients.max_sampling
    planes = []
    for c, (h, v) in enumerate(coefficients.sampling):
        if hmax % h or vmax % v:
            raise ValueError(f"fractional sampling factors are not supported: "
                             f"{coefficients.sampling}")
        table = coefficients.qtables[:, c, None, None].to(dtype)
        samples = idct(dequantize(coefficients.blocks[c].to(dtype), table), mode)
        plane = unblockify(samples)
        plane = upsample(_crop(plane, *coefficients.component_size(c)), hmax // h, vmax // v,
                         mode)
        planes.append(_crop(plane, height, width))
    pixels = torch.stack(planes, dim=1)
    if coefficients.color == "ycbcr":
        pixels = ycbcr_to_rgb(pixels, mode, color_matrix)
    if integer_io:
        return pixels.to(torch.uint8)  # exact integers 0..255 already
    return (pixels * (1.0 / 255.0)).to(first.dtype)


def _crop(plane: Tensor, height: int, width: int) -> Tensor:
    """``plane[:, :height, :width]``, without a slicing node when nothing is cut."""
    if plane.shape[-2] == height and plane.shape[-1] == width:
        return plane
    return plane[:, :height, :width]


def jpeg(image: Tensor, quality: float | Tensor = 75, *, subsampling: str = "4:2:0",
         tables: Tensor | None = None, mode: str = "ste") -> Tensor:
    """JPEG-compress and decompress images, exactly as libjpeg-turbo would.

    ``jpeg(x, q)`` equals Pillow's decode of Pillow's encode of ``x`` at quality
    ``q`` in the ``hard`` and ``ste`` modes, pixel for pixel, and is
    differentiable w.r.t. the image, the quality and the tables.

    Args:
        image: ``[N, C, H, W]`` or ``[C, H, W]``, C = 1 or 3; float in [0, 1]
            or uint8 (then the result is uint8 and computed exactly).
        quality: 1..100, number or tensor ``[]``/``[N]``; float allowed.
        subsampling: "4:4:4", "4:2:2" or "4:2:0".
        tables: None (Annex K) or base tables ``[2, 8, 8]`` / ``[N, 2, 8, 8]``.
        mode: "hard", "ste" (default), "soft" or "ste-quant".

    Returns:
        The decoded image, same shape as ``image``; float in [0, 1] in the
        image's dtype (multiples of 1/255 in the exact modes), or uint8.
    """
    coefficients = encode(image, quality, subsampling=subsampling, tables=tables, mode=mode)
    out = decode(coefficients)
    return out if image.dim() == 4 else out[0]
