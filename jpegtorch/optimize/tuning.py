"""Per-image encoding choices: trellis quantization and ``tune="psnr"|"ssim"``.

:func:`encode_optimized` writes a standard Huffman-coded JPEG (SOF0, or SOF2
when progressive) whose coefficients are chosen for the image rather than
rounded:

* ``trellis=True``: the tables are the ones asked for (``tables``, scaled by
  ``quality`` as libjpeg does), and every block's values are chosen by
  :func:`jpegtorch.optimize.trellis.trellis_quantize` for the least RGB
  squared error plus ``lambda`` times the bits, with each coefficient's
  ``lambda`` following its own step (:data:`TRELLIS_STRENGTH`), so that the
  tables keep their perceptual meaning; Huffman tables optimal for the result.
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

#: ``trellis=True`` alone: the trade-off per coefficient, ``lambda_z = s * 0.375 * q_z**2``
#: (RGB squared error per bit; 1 would be mozjpeg's ``-tune-psnr`` slope). With Annex K
#: tables on the training photos, s = 0.5 was the best of 1, 0.5 and 0.25 (-4.7 % at
#: equal PSNR, -5.5 % at equal SSIM), where one lambda for all coefficients (as
#: ``tune`` uses with its flat tables) gave -7.1 % and +12.2 %.
TRELLIS_STRENGTH = 0.5

#: Trellis passes over the spectral bands of a progressive candidate (each followed
#: by a new choice of bands and their tables).
PROGRESSIVE_PASSES = 2

#: Rounds of table updates alternated with the trellis (see ``_code_with_tables``).
TABLE_PASSES = 2

#: Multiplier of the chroma distortion weights per mode: SSIM (computed per RGB
#: channel) is less sensitive to chroma errors than squared error is; 0.5 was
#: the best of 0.5, 1 and 2 on the training photos.
CHROMA_WEIGHT: dict[str | None, float] = {None: 1.0, "psnr": 1.0, "ssim": 0.5}

#: Tilt of the distortion weights with frequency per mode: ``exp(tilt * (u + v - 7) / 7)``.
#: SSIM counts high frequencies less than squared error does: -0.7 was the best of
#: 0.7, 0, -0.7, -1.5 and -2.5 on the training photos.
FREQUENCY_TILT: dict[str | None, float] = {None: 0.0, "psnr": 0.0, "ssim": -0.7}


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
                     progressive: bool | None = None, scans: Any = None,
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
        progressive: None: the encoder decides (``tune``: the baseline file,
            libjpeg's default progression of the same values, or spectral
            bands searched for this image with the values re-chosen for them
            (:mod:`jpegtorch.optimize.scans`), whichever has the least ``D +
            lambda * R``; trellis alone: baseline); True: a progressive file
            (``tune``: the better of the two progressive candidates; trellis
            alone: libjpeg's default progression); False: baseline (SOF0).
        scans: a scan script for the writer (a list of ``(components, ss, se,
            ah, al)`` or a cjpeg ``-scans`` file; overrides ``progressive``).
        report: if given, an :class:`EncodeReport` is appended.

    Returns:
        The bytes of a standard Huffman-coded JPEG: baseline (SOF0) with
        optimized Huffman tables, or progressive (SOF2) with optimal tables
        per scan.

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
    if FREQUENCY_TILT[tune]:
        frequency = np.add.outer(np.arange(8), np.arange(8)).reshape(64)
        weights *= np.exp(FREQUENCY_TILT[tune] * (frequency - 7) / 7.0)
    if tune is None:
        # trellis alone keeps the tables' meaning: each coefficient's error counts
        # in units of its own step (mozjpeg's trellis), lambda_z = s * 0.375 q_z**2
        weights = weights / (TRELLIS_STRENGTH * trellis.trellis_lambda(np.ones(1)) *
                             quant.astype(np.float64) ** 2)
        lam = info.lam = 1.0
    coded_raw = list(plain.raw)  # the targets each component was coded towards
    if gray and tune is not None:
        result, quant[:1] = _code_with_tables([plain.raw[0]], quant[:1], weights[:1], lam,
                                              layout, (0,))
        blocks = result.blocks
        info.bits, info.distortion = result.bits, result.distortion
    elif gray:
        result = trellis.trellis_quantize([plain.raw[0]], quant[:1], weights[:1], lam, layout,
                                          (0,))
        blocks = result.blocks
        info.bits, info.distortion = result.bits, result.distortion
    elif tune is None:
        result = trellis.trellis_quantize(list(plain.raw), quant, weights, lam, layout, (0, 1, 1))
        blocks = result.blocks
        info.bits, info.distortion = result.bits, result.distortion
    else:
        blocks, bits, distortion, coded_raw = _tuned_color(plain, quant, weights, lam, layout,
                                                           info)
        info.bits, info.distortion = bits, distortion
    if report is not None:
        report.append(info)
    if scans is not None or (progressive and tune is None):
        return _write(plain, blocks, quant, restart_interval, progressive=bool(progressive),
                      scans=scans)
    baseline = _write(plain, blocks, quant, restart_interval)
    if tune is None or progressive is False:
        return baseline
    return _progressive_choice(plain, blocks, quant, weights, lam, coded_raw, baseline,
                               restart_interval, info, force=bool(progressive))


def _progressive_choice(plain: analysis.Analysis, blocks: list[np.ndarray], quant: np.ndarray,
                        weights: np.ndarray, lam: float, coded_raw: list[np.ndarray],
                        baseline: bytes, restart_interval: int, info: EncodeReport, *,
                        force: bool) -> bytes:
    """The file with the least ``D + lambda * R`` (real file sizes) among:

    * the baseline file (unless ``force``);
    * the same values in libjpeg's default progression (successive
      approximation pays at high quality);
    * spectral bands with their own tables (:mod:`jpegtorch.optimize.scans`),
      the AC values re-chosen by the trellis for those bands (their code
      lengths, their end-of-band-run cost) for :data:`PROGRESSIVE_PASSES`
      passes, the bands chosen once more at the end.
    """
    from . import scans as scan_search

    ncomp = len(blocks)
    slots = tuple(0 if c == 0 else 1 for c in range(ncomp)) if ncomp > 1 else (0,)
    real = [r.shape[:2] for r in coded_raw]
    raw_flat = [np.ascontiguousarray(r.reshape(-1, 64)) for r in coded_raw]

    def own(grid_blocks: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(b[: real[c][0], : real[c][1]].reshape(-1, 64))
                for c, b in enumerate(grid_blocks)]

    def distortion(values: list[np.ndarray]) -> float:
        total = 0.0
        for c in range(ncomp):
            err = (values[c].astype(np.float64) * quant[c] - raw_flat[c] / 8.0)
            total += float(np.sum(err * err * weights[c]))
        return total

    restart = 0  # (restart intervals: the bands are chosen without them)
    current = own(blocks)
    d_base = distortion(current)
    candidates: dict[str, tuple[float, bytes]] = {}
    if not force:
        candidates["baseline"] = (d_base + lam * 8 * len(baseline), baseline)
    simple = _write(plain, blocks, quant, restart_interval, progressive=True)
    candidates["progressive"] = (d_base + lam * 8 * len(simple), simple)
    choice = scan_search.choose_bands(current, slots, restart=restart)
    bands = choice.bands
    costs = choice.costs
    for npass in range(PROGRESSIVE_PASSES):
        new = []
        for c in range(ncomp):
            out = current[c].copy()
            for ss, se in bands[c]:
                band = costs[(c, (ss, se))]
                trellis.trellis_ac(raw_flat[c], quant[c], weights[c], lam, band.lengths,
                                   trellis._ZIGZAG, out, ss, se, band.eob_bits)
            new.append(out)
        current = new
        if npass + 1 < PROGRESSIVE_PASSES:  # the same bands, their new tables
            costs = {(c, b): scan_search.band_cost(current[c], *b, restart)
                     for c in range(ncomp) for b in bands[c]}
    choice = scan_search.choose_bands(current, slots, restart=restart)
    final = []
    for c, b in enumerate(blocks):
        grid = b.copy()
        hib, wib = real[c]
        grid[:hib, :wib] = current[c].reshape(hib, wib, 64)
        final.append(grid)
    data = _write(plain, final, quant, restart_interval,
                  scans=scan_search.band_script(choice.bands))
    candidates["bands"] = (distortion(current) + lam * 8 * len(data), data)
    chosen = min(candidates, key=lambda name: candidates[name][0])
    info.extra.update(sizes={name: len(v[1]) for name, v in candidates.items()},
                      bands=choice.bands, chosen=chosen)
    return candidates[chosen][1]


def _tuned_color(plain: analysis.Analysis, quant: np.ndarray, weights: np.ndarray, lam: float,
                 layout: trellis.Layout, info: EncodeReport
                 ) -> tuple[list[np.ndarray], float, float, list[np.ndarray]]:
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
    chroma_result, quant[1:] = _code_with_tables(list(fitted.raw[1:]), quant[1:], weights[1:],
                                                 lam, layout.subset((1, 2)), (1, 1))
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
    luma_result, quant[:1] = _code_with_tables([luma_in.raw[0]], quant[:1], weights[:1], lam,
                                               layout.subset((0,)), (0,))
    blocks = [luma_result.blocks[0], *chroma_result.blocks]
    return (blocks, luma_result.bits + chroma_result.bits,
            luma_result.distortion + chroma_result.distortion,
            [luma_in.raw[0], *fitted.raw[1:]])


def _code_with_tables(raw: list[np.ndarray], quant: np.ndarray, weights: np.ndarray,
                      lam: float, layout: trellis.Layout, slots: tuple[int, ...]
                      ) -> tuple[trellis.TrellisResult, np.ndarray]:
    """Trellis-code components that share one table, alternating with the table
    itself (Yang & Wang's joint optimization): given the chosen values ``k``, the
    step that minimises the squared error of each frequency is ``sum(w x k) /
    sum(w k**2)`` (``x`` the unquantized coefficient); the table moves there
    (rounded, 1..255) and the trellis runs again, for :data:`TABLE_PASSES`
    rounds or until ``J`` stops falling. Returns the best result and its table."""
    best = trellis.trellis_quantize(raw, quant, weights, lam, layout, slots)
    best_quant = quant
    for _ in range(TABLE_PASSES):
        num = np.zeros(64)
        den = np.zeros(64)
        for c, r in enumerate(raw):
            hib, wib = r.shape[:2]
            k = best.blocks[c][:hib, :wib].reshape(-1, 64).astype(np.float64)
            x = r.reshape(-1, 64) / 8.0
            num += weights[c] * (x * k).sum(0)
            den += weights[c] * (k * k).sum(0)
        step = best_quant[0].astype(np.float64).copy()
        used = den > 0
        step[used] = num[used] / den[used]
        table = np.clip(np.round(step), 1, 255).astype(np.int64)
        if np.array_equal(table, best_quant[0]):
            break
        candidate = np.broadcast_to(table, best_quant.shape).copy()
        result = trellis.trellis_quantize(raw, candidate, weights, lam, layout, slots)
        if result.cost >= best.cost:
            break
        best, best_quant = result, candidate
    return best, best_quant


def _write(plain: analysis.Analysis, blocks: list[np.ndarray], quant: np.ndarray,
           restart_interval: int, *, progressive: bool = False, scans: Any = None) -> bytes:
    import torch

    from ..coefficients import Coefficients
    from ..formats.jfif_writer import write_coefficients

    qt = torch.from_numpy(np.asarray(quant, dtype=np.int32).reshape(1, -1, 8, 8))
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(
        b.reshape(1, b.shape[0], b.shape[1], 8, 8), dtype=np.int32)) for b in blocks)
    coefficients = Coefficients(blocks=tensors, qtables=qt, sampling=plain.sampling,
                                size=plain.size, color=plain.color)
    if progressive or scans is not None:
        return write_coefficients(coefficients, optimize=True,  # type: ignore[call-arg]
                                  restart_interval=restart_interval, progressive=progressive,
                                  scans=scans)
    return write_coefficients(coefficients, optimize=True, restart_interval=restart_interval)
