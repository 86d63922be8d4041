"""Per-image encoding choices: trellis quantization and ``tune="psnr"|"ssim"``.

:func:`encode_optimized` writes a standard Huffman-coded JPEG (SOF0, or SOF2
when progressive) whose coefficients are chosen for the image rather than
rounded:

* ``trellis=True``: the tables are the ones asked for (``tables``, scaled by
  ``quality`` as libjpeg does), and every block's values are chosen by
  :func:`jpegtorch.optimize.trellis.trellis_quantize` for the least RGB
  squared error plus ``lambda`` times the bits, ``lambda`` following the luma
  table (:func:`~jpegtorch.optimize.trellis.trellis_lambda`); Huffman tables
  optimal for the result.
* ``tune="psnr"``: the best file this encoder can make for RGB PSNR at the
  trade-off ``quality`` sets (higher: larger file, better quality). The
  tables start from the ``tuned-psnr`` preset (or ``tables``); the chroma
  planes are fitted to the decoder's up-sampling
  (:func:`jpegtorch.optimize.chroma.fit_downsampled`) and coded first, then
  the luma plane is coded towards the target that cancels the decoded
  chroma's mean RGB error (:func:`jpegtorch.optimize.chroma.luma_target`);
  both with the trellis.
* ``tune="ssim"``: the same, with the ``tuned-ssim`` preset and the trade-off
  calibrated for SSIM.

Nothing here changes the file format: any JPEG decoder reads the result.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import JPEGError
from . import analysis, chroma, trellis

TUNE_OBJECTIVES: tuple[str, ...] = ("psnr", "ssim")

#: Preset tables each objective starts from (when no ``tables`` are given).
TUNE_PRESETS: dict[str, str] = {"psnr": "tuned-psnr", "ssim": "tuned-ssim"}

#: Multiplier of :func:`~jpegtorch.optimize.trellis.trellis_lambda` per mode,
#: fitted on the training photos (see ``benchmarks/bench_mozjpeg.py``).
LAMBDA_SCALE: dict[str | None, float] = {None: 1.0, "psnr": 1.0, "ssim": 1.0}

#: Multiplier of the chroma distortion weights per mode: SSIM (computed per RGB
#: channel) is less sensitive to chroma errors than squared error is; 0.5 was
#: the best of 0.5, 1 and 2 on the training photos.
CHROMA_WEIGHT: dict[str | None, float] = {None: 1.0, "psnr": 1.0, "ssim": 0.5}


@dataclass
class EncodeReport:
    """What :func:`encode_optimized` chose (for ``--debug`` and benchmarks).

    Attributes:
        quant: ``[C, 64]`` quantization tables used per component (natural order).
        lam: the Lagrange multiplier (RGB squared error per bit).
        bits: entropy-coded bits the trellis predicted (no headers).
        distortion: its predicted RGB squared error (sum over pixels and channels).
        chroma_fit: whether the chroma planes were fitted to the up-sampler.
        luma_compensation: whether the luma was coded towards the compensating target.
        extra: anything else worth reporting.
    """

    quant: np.ndarray
    lam: float
    bits: float = math.nan
    distortion: float = math.nan
    chroma_fit: bool = False
    luma_compensation: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _scaled_tables(quality: int, base: Any) -> np.ndarray:
    """Quality-scaled tables ``[2, 64]`` int64 (luma, chroma), libjpeg's scaling."""
    import torch

    from ..quantize import quality_to_tables

    tables = quality_to_tables(int(quality), base, mode="hard", dtype=torch.float64)
    return tables[0].reshape(2, 64).round().to(torch.int64).numpy()


def _as_numpy_image(image: Any) -> np.ndarray:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise JPEGError(f"image must be uint8, got {image.dtype}")
        return image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise JPEGError(f"image must be uint8, got {array.dtype}")
    return array


def encode_optimized(image: Any, quality: int = 75, *, subsampling: str = "4:2:0",
                     tables: Any = None, tune: str | None = None, restart_interval: int = 0,
                     report: list[EncodeReport] | None = None) -> bytes:
    """Encode an image with trellis quantization and, optionally, per-image tuning.

    Args:
        image: uint8 ``[C, H, W]`` (C = 1 gray or 3 RGB), a torch tensor or a
            numpy array, 1 <= H, W <= 65535.
        quality: 1..100. Without ``tune``: libjpeg's quality scaling of
            ``tables``. With ``tune``: the rate-distortion trade-off (higher:
            larger file, better quality; monotone), on about the same scale.
        subsampling: "4:4:4", "4:2:2" or "4:2:0" (ignored for gray).
        tables: base tables (None: Annex K, or the tune preset), a ``[2, 8, 8]``
            integer tensor, a cjpeg ``-qtables`` file or a preset name.
        tune: None, "psnr" or "ssim".
        restart_interval: MCUs between restart markers (0: none).
        report: if given, an :class:`EncodeReport` is appended.

    Returns:
        The bytes of a baseline JPEG (SOF0, optimized Huffman tables).

    Raises:
        JPEGError: invalid arguments.
    """
    from ..formats.jfif_writer import SUBSAMPLINGS, resolve_base_tables

    if tune is not None and tune not in TUNE_OBJECTIVES:
        raise JPEGError(f"tune must be one of {', '.join(TUNE_OBJECTIVES)}, got {tune!r}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) \
            or not 1 <= int(quality) <= 100:
        raise JPEGError(f"quality must be an int 1..100, got {quality!r}")
    if subsampling not in SUBSAMPLINGS:
        raise JPEGError(f"subsampling must be one of {', '.join(SUBSAMPLINGS)}, "
                        f"got {subsampling!r}")
    pixels = _as_numpy_image(image)
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise JPEGError(f"image must be [C, H, W] with C = 1 or 3, got {pixels.shape}")
    if not (1 <= pixels.shape[1] <= 65535 and 1 <= pixels.shape[2] <= 65535):
        raise JPEGError(f"image size {pixels.shape[1:]} is outside JPEG's 1..65535")
    if tables is None and tune is not None:
        tables = TUNE_PRESETS[tune]
    base = resolve_base_tables(tables if not isinstance(tables, os.PathLike) else str(tables))
    scaled = _scaled_tables(int(quality), base)
    gray = pixels.shape[0] == 1
    ncomp = 1 if gray else 3
    quant = np.stack([scaled[0]] + [scaled[1]] * (ncomp - 1))
    lam = trellis.trellis_lambda(quant[0], LAMBDA_SCALE[tune])
    info = EncodeReport(quant=quant, lam=lam)

    # trellis alone: libjpeg's integer planes and FDCT; tuned: the real-valued targets
    plain = (analysis.analyze(pixels, subsampling) if tune is None
             else analysis.analyze_float(pixels, subsampling))
    hmax, vmax = plain.max_sampling
    layout = trellis.Layout(sampling=plain.sampling, mcu_grid=plain.mcu_grid if ncomp > 1
                            else plain.raw[0].shape[:2],
                            real=tuple(r.shape[:2] for r in plain.raw),
                            restart_interval=int(restart_interval))
    weights = np.stack([trellis.color_weights((hmax // h, vmax // v), c)
                        for c, (h, v) in enumerate(plain.sampling)])
    weights[1:] *= CHROMA_WEIGHT[tune]
    if gray:
        result = trellis.trellis_quantize([plain.raw[0]], quant[:1], weights[:1], lam, layout,
                                          (0,))
        blocks = result.blocks
        info.bits, info.distortion = result.bits, result.distortion
    elif tune is None:
        result = trellis.trellis_quantize(list(plain.raw), quant, weights, lam, layout, (0, 1, 1))
        blocks = result.blocks
        info.bits, info.distortion = result.bits, result.distortion
    else:
        blocks, bits, distortion = _tuned_color(plain, quant, weights, lam, layout, info)
        info.bits, info.distortion = bits, distortion
    if report is not None:
        report.append(info)
    return _write(plain, blocks, quant, restart_interval)


def _tuned_color(plain: analysis.Analysis, quant: np.ndarray, weights: np.ndarray, lam: float,
                 layout: trellis.Layout, info: EncodeReport) -> tuple[list[np.ndarray], float,
                                                                       float]:
    """Chroma fitted to the up-sampler and coded first, then the compensating luma."""
    height, width = plain.size
    hmax, vmax = plain.max_sampling
    replaced: dict[int, np.ndarray] = {}
    for c in (1, 2):
        h, v = plain.sampling[c]
        if (h, v) != (hmax, vmax):
            own = analysis.component_size(plain, c)
            replaced[c] = chroma.fit_downsampled(
                plain.full[c], plain.planes[c][: own[0], : own[1]], hmax // h, vmax // v)
    info.chroma_fit = bool(replaced)
    fitted = analysis.replace_planes(plain, replaced) if replaced else plain
    chroma_layout = layout.subset((1, 2))
    chroma_result = trellis.trellis_quantize(list(fitted.raw[1:]), quant[1:], weights[1:], lam,
                                             chroma_layout, (1, 1))
    errors = []
    for k, c in enumerate((1, 2)):
        h, v = plain.sampling[c]
        own = analysis.component_size(plain, c)
        decoded = analysis.inverse_plane(chroma_result.blocks[k], quant[c], own)
        upsampled = chroma.upsample(decoded, hmax // h, vmax // v, (height, width))
        errors.append(upsampled - plain.full[c])
    target = chroma.luma_target(plain.full[0], errors[0], errors[1])
    info.luma_compensation = True
    luma_in = analysis.replace_planes(plain, {0: target})
    luma_layout = layout.subset((0,))
    luma_result = trellis.trellis_quantize([luma_in.raw[0]], quant[:1], weights[:1], lam,
                                           luma_layout, (0,))
    blocks = [luma_result.blocks[0], *chroma_result.blocks]
    return (blocks, luma_result.bits + chroma_result.bits,
            luma_result.distortion + chroma_result.distortion)


def _write(plain: analysis.Analysis, blocks: list[np.ndarray], quant: np.ndarray,
           restart_interval: int) -> bytes:
    import torch

    from ..coefficients import Coefficients
    from ..formats.jfif_writer import write_coefficients

    qt = torch.from_numpy(np.asarray(quant, dtype=np.int32).reshape(1, -1, 8, 8))
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(
        b.reshape(1, b.shape[0], b.shape[1], 8, 8), dtype=np.int32)) for b in blocks)
    coefficients = Coefficients(blocks=tensors, qtables=qt, sampling=plain.sampling,
                                size=plain.size, color=plain.color)
    return write_coefficients(coefficients, optimize=True, restart_interval=restart_interval)
