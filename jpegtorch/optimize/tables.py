"""Learn JPEG quantization tables for a data set and an objective.

The trainer behind ``jtorch train tables`` (``jpegtorch.tune`` re-exports
everything here, for the code written before the :mod:`jpegtorch.optimize`
package existed):

- :func:`load_images`: a folder (searched recursively) or file list ->
  uint8 images, skipping what is not an image with one warning each.
- :class:`TrainConfig`: every setting of a run (kept in checkpoints and in
  the JSON sidecar).
- :class:`TableTrainer`: the optimisation. The luma and chroma *base* tables
  are parameters in log space; each step rounds them (straight-through) and
  clamps them to 1..255, scales them by a random quality per crop as libjpeg
  does, runs the ``ste`` pipeline (real libjpeg-turbo pixels forward,
  straight-through gradients backward) and the rate proxy
  (:mod:`jpegtorch.rate`), and takes an Adam step on::

      loss = mean over crops of  D + lambda * log2(bpp)

  with ``D`` the distortion in decibels: ``10 log10 MSE`` (= -PSNR) for
  ``psnr``, ``10 log10(1 - SSIM)`` for ``ssim`` and ``ms-ssim``. In log units
  every quality of the range counts alike (linear MSE and bits vary tenfold
  across 30..90), and ``lambda`` reads as "dB of quality per halving of the
  file". The distortion's gradient is calibrated for tables
  (:func:`calibrated_gradients`). The tables' overall scale (their mean in log
  space, which sets the rate) is handled apart from their shape (see
  :class:`TableTrainer`):

  * ``lam`` given: fixed lambda; the scale follows the loss too;
  * ``target_bpp`` given: the scale is steered until the geometric-mean bpp
    of the crops is the target, and lambda is the measured slope of the
    distortion against the rate along the scale;
  * neither (the default): the same, until the crops' files are, on
    geometric average, as large as with the Annex K tables at the same
    qualities. The tables then keep libjpeg's quality scale: about the same
    size at the same ``-quality``, better PSNR/SSIM.

- :func:`evaluate_tables`: real files (the JFIF writer, optimized Huffman
  tables), decoded by Pillow, on fixed crops: bpp, PSNR, SSIM per quality,
  and BD-rates against another table set.
- :func:`save_checkpoint` / :func:`load_checkpoint`: resumable state
  (parameters, optimizer, step, lambda and slopes, RNG state), written
  atomically.

A run is reproducible: the same data, configuration and seed give the same
tables on the same device, and a run resumed from a checkpoint continues
exactly as if it had not been interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import JPEGError

OBJECTIVES: tuple[str, ...] = ("psnr", "ssim", "ms-ssim")
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
IMAGE_SUFFIXES: frozenset[str] = frozenset({
    ".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".ppm", ".pgm", ".pnm", ".tif", ".tiff",
    ".webp", ".gif", ".tga",
})
CHECKPOINT_FORMAT = "jpegtorch-tables-checkpoint/1"
SIDECAR_FORMAT = "jpegtorch-tables/1"

#: Gradient gains for the distortion path (see :func:`calibrated_gradients`):
#: coefficients quantized to a nonzero value, and to zero (the dead zone).
NONZERO_GAIN = 1.5
ZERO_GAIN = 0.18

#: Bounds of an adapted lambda (dB per halving of the rate).
LAMBDA_RANGE = (0.05, 200.0)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a table-training run.

    Attributes:
        objective: "psnr", "ssim" or "ms-ssim".
        lam: fixed lambda (dB per halving of bpp), or None to adapt it.
        target_bpp: adapt lambda to reach this geometric-mean bpp (None:
            match the Annex K tables' rate when ``lam`` is None too).
        quality_range: ``(low, high)``, qualities drawn uniformly per crop
            (integers, libjpeg's scale 1..100).
        subsampling: "4:4:4", "4:2:2" or "4:2:0".
        steps: total optimisation steps.
        crop: side of the square training crops (pixels).
        batch: crops per step.
        seed: seeds crop and quality sampling.
        lr: Adam learning rate on the log tables (with cosine decay to 10%).
        init: initial tables: a preset name or a ``-qtables`` file.
    """

    objective: str = "psnr"
    lam: float | None = None
    target_bpp: float | None = None
    quality_range: tuple[int, int] = (30, 90)
    subsampling: str = "4:2:0"
    steps: int = 600
    crop: int = 256
    batch: int = 8
    seed: int = 0
    lr: float = 0.02
    init: str = "annex-k"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.lam is not None and self.target_bpp is not None:
            raise ValueError("give lam or target_bpp, not both")
        if self.lam is not None and not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lambda must be a finite number >= 0, got {self.lam}")
        if self.target_bpp is not None and not (
                math.isfinite(self.target_bpp) and self.target_bpp > 0):
            raise ValueError(f"target bpp must be positive, got {self.target_bpp}")
        low, high = self.quality_range
        if not (1 <= int(low) <= int(high) <= 100):
            raise ValueError(f"quality range must satisfy 1 <= low <= high <= 100, "
                             f"got {low}:{high}")
        object.__setattr__(self, "quality_range", (int(low), int(high)))
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, "
                             f"got {self.subsampling!r}")
        if self.steps < 0 or self.batch < 1:
            raise ValueError("steps must be >= 0 and batch >= 1")
        minimum = _min_crop(self.objective)
        if self.crop < minimum:
            raise ValueError(f"crop must be at least {minimum} pixels for objective "
                             f"{self.objective}, got {self.crop}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be positive, got {self.lr}")

    @property
    def lambda_mode(self) -> str:
        """"fixed", "target-bpp" or "match-annex-k"."""
        if self.lam is not None:
            return "fixed"
        return "target-bpp" if self.target_bpp is not None else "match-annex-k"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["quality_range"] = list(self.quality_range)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["quality_range"] = tuple(values["quality_range"])
        return cls(**values)


def _min_crop(objective: str) -> int:
    from ..metrics import MS_SSIM_MIN_SIZE

    return MS_SSIM_MIN_SIZE if objective == "ms-ssim" else 16


# --------------------------------------------------------------------------- data


@dataclass
class ImageSet:
    """Training images and where they came from.

    Attributes:
        images: uint8 tensors ``[3, H, W]`` (grey images are replicated).
        names: one display name per image.
        fingerprint: SHA-256 over the file names (relative to the folder) and
            image sizes, to recognise the data set on ``--resume``.
        source: the folder or file the images were read from.
    """

    images: list[Tensor]
    names: list[str]
    source: str = ""
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if len(self.images) != len(self.names):
            raise ValueError("one name per image")
        if not self.fingerprint:
            digest = hashlib.sha256()
            for name, image in zip(self.names, self.images, strict=True):
                digest.update(f"{name}:{tuple(image.shape)}\n".encode())
            self.fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def pixels(self) -> int:
        return sum(int(i.shape[-2] * i.shape[-1]) for i in self.images)


def _list_files(source: str | os.PathLike[str]) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.exists():
        raise JPEGError(f"{source}: no such file or directory")
    if not path.is_dir():
        raise JPEGError(f"{source}: not a file or directory")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise JPEGError(f"{source}: the folder is empty")
    return files


def load_images(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                min_size: int = 1, warn: Callable[[str], None] | None = None) -> ImageSet:
    """Read the training images of a folder (recursively), a file or a list of files.

    Files that are not images (by content: anything Pillow cannot read) are
    skipped with one ``warn`` line each, and so are images smaller than
    ``min_size`` in either dimension. Hidden files and folders are ignored.

    Args:
        source: a folder, an image file, or a sequence of image files.
        min_size: the smallest usable width and height (the crop size).
        warn: called with one line per skipped file (default: ignore).

    Returns:
        An :class:`ImageSet` of uint8 ``[3, H, W]`` tensors, in sorted path order.

    Raises:
        JPEGError: a missing or empty folder, or no usable image at all (the
            message says why: no images, or all too small).
    """
    import warnings

    import numpy as np
    from PIL import Image

    warn = warn or (lambda message: None)
    if isinstance(source, (str, os.PathLike)):
        files = _list_files(source)
        label = str(source)
    else:
        files = [Path(p) for p in source]
        label = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        if not files:
            raise JPEGError("no training images given")
    images: list[Tensor] = []
    names: list[str] = []
    digest = hashlib.sha256()
    small = 0
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(path) as im:
                    im.load()
                    rgb = im.convert("RGB")
        except Exception as exc:  # Pillow raises many types for non-images
            reason = "not an image" if path.suffix.lower() not in IMAGE_SUFFIXES else (
                f"cannot read it ({type(exc).__name__})")
            warn(f"{path}: skipped, {reason}")
            continue
        width, height = rgb.size
        if min(width, height) < min_size:
            small += 1
            warn(f"{path}: skipped, {width}x{height} is smaller than the "
                 f"{min_size}x{min_size} crop")
            continue
        array = np.asarray(rgb, dtype=np.uint8)
        images.append(torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous())
        names.append(str(path))
        digest.update(f"{_relative(path, source)}:{width}x{height}\n".encode())
    if not images:
        if small:
            raise JPEGError(f"{label}: no image is at least {min_size}x{min_size} pixels "
                            f"(the crop size); use a smaller --crop")
        raise JPEGError(f"{label}: no readable images")
    return ImageSet(images=images, names=names, source=label, fingerprint=digest.hexdigest())


def _relative(path: Path, source: object) -> str:
    """``path`` relative to the source folder (so fingerprints do not depend on the cwd)."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return path.relative_to(Path(source)).as_posix()
    return path.name


class CropSampler:
    """Random crops and qualities, drawn from a seeded ``torch.Generator``.

    ``batch()`` returns uint8 ``[B, 3, crop, crop]`` crops (images chosen
    uniformly, positions uniformly) and float qualities ``[B]`` drawn as
    integers from ``quality_range``. The generator's state is part of
    checkpoints, so a resumed run draws the same crops.
    """

    def __init__(self, data: ImageSet, crop: int, batch: int,
                 quality_range: tuple[int, int], seed: int) -> None:
        self.data = data
        self.crop = crop
        self.batch_size = batch
        self.quality_range = quality_range
        self.generator = torch.Generator().manual_seed(int(seed))

    def _int(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def batch(self) -> tuple[Tensor, Tensor]:
        crops = []
        for _ in range(self.batch_size):
            image = self.data.images[self._int(len(self.data))]
            top = self._int(image.shape[-2] - self.crop + 1)
            left = self._int(image.shape[-1] - self.crop + 1)
            crops.append(image[:, top : top + self.crop, left : left + self.crop])
        low, high = self.quality_range
        quality = torch.randint(low, high + 1, (self.batch_size,), generator=self.generator)
        return torch.stack(crops), quality.to(torch.float64)


# --------------------------------------------------------------------------- objective


def distortion_db(objective: str, decoded: Tensor, original: Tensor) -> Tensor:
    """Per-image distortion in dB (lower is better), ``[N]``.

    ``psnr``: ``10 log10 MSE`` (images in [0, 1]; = -PSNR); ``ssim`` and
    ``ms-ssim``: ``10 log10(1 - s)``. ``decoded`` and ``original`` are float
    ``[N, C, H, W]`` in [0, 1]; differentiable w.r.t. ``decoded``.
    """
    from .. import metrics

    if objective == "psnr":
        error = (decoded - original).square().flatten(1).mean(1)
        return 10.0 * torch.log10(error.clamp(min=1e-10))
    if objective == "ssim":
        similarity = metrics.ssim(decoded, original)
    elif objective == "ms-ssim":
        similarity = metrics.ms_ssim(decoded, original)
    else:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return 10.0 * torch.log10((1.0 - similarity).clamp(min=1e-10))


def calibrated_gradients(coefficients: Any) -> Any:
    """The same coefficients, with the distortion gradient calibrated for tables.

    The ``ste`` quantizer passes ``d round(y) / dy = 1`` for every
    coefficient. For the quantization step that overstates how distortion
    grows with the table entries two- to threefold, and most at high
    frequencies: a coefficient quantized to zero decodes to zero whatever
    the step, yet straight-through rounding credits it a growing error.
    Compared with central differences of the real distortion (hard mode,
    +-20% per table entry, PSNR and SSIM, six training images at qualities
    30..80; ``benchmarks/bench_tables.py gradient``), gains of
    :data:`NONZERO_GAIN` on coefficients quantized to nonzero values (and on
    the dequantization path) and :data:`ZERO_GAIN` on those quantized to zero
    fit best (correlation over the 128 entries 0.93 against 0.8 unweighted).
    Forward values are unchanged (bit for bit).

    Args:
        coefficients: a :class:`~jpegtorch.coefficients.Coefficients` from
            :func:`jpegtorch.encode` in ``ste`` mode.

    Returns:
        A :class:`~jpegtorch.coefficients.Coefficients` to decode for the
        distortion term.
    """
    from dataclasses import replace

    def scaled(value: Tensor, gain: Tensor | float) -> Tensor:
        frozen = value.detach()
        return frozen + gain * (value - frozen)

    blocks = tuple(
        scaled(b, torch.where(b.detach() != 0, NONZERO_GAIN, ZERO_GAIN).to(b.dtype))
        for b in coefficients.blocks)
    return replace(coefficients, blocks=blocks,
                   qtables=scaled(coefficients.qtables, NONZERO_GAIN))


def tables_from_log(log_tables: Tensor) -> Tensor:
    """Integer base tables ``[2, 8, 8]`` from log parameters (straight-through).

    ``round(exp(log_tables))`` clamped to 1..255 forward; the gradient of
    ``exp(log_tables)`` backward (rounding and clamping passed straight
    through).
    """
    real = log_tables.exp()
    exact = real.detach().round().clamp(1.0, 255.0)
    return real + (exact - real).detach()


def initial_tables(init: str | Tensor) -> Tensor:
    """Base tables ``[2, 8, 8]`` float64 from a preset name, a file or a tensor."""
    if isinstance(init, Tensor):
        tables = init.detach().to(torch.float64)
        if tuple(tables.shape) != (2, 8, 8):
            raise ValueError(f"initial tables must be [2, 8, 8], got {tuple(tables.shape)}")
        return tables.clamp(1.0, 255.0)
    from ..formats.qtables import resolve_tables

    luma, chroma = resolve_tables(init)
    return torch.tensor([luma, chroma], dtype=torch.float64).reshape(2, 8, 8).clamp(1, 255)


# --------------------------------------------------------------------------- training


@dataclass
class StepStats:
    """What one step measured (means over the batch, Python floats)."""

    step: int
    loss: float
    bpp: float
    psnr: float
    distortion_db: float
    lam: float
    reference_bpp: float | None = None


class TableTrainer:
    """Optimises base quantization tables; see the module docstring.

    The log tables are split into their mean (the overall scale, which sets
    the rate) and the shape around it. Adam moves the shape with the
    gradient of ``D + lambda * log2(bpp)``, its mean removed; the scale is
    handled apart, because along it the loss is nearly flat and Adam's
    per-entry normalisation would turn the faintest slope into full steps:

    * fixed ``lam``: the scale takes Adam steps on the summed gradient;
    * adapted lambda: lambda is the measured slope ``-(dD/ds) / (dR/ds)``
      along the scale ``s`` (running means over steps), so the shape follows
      the equal-slope condition of "least distortion at this rate", and the
      scale is steered to the rate target by damped Newton steps on
      ``log2(bpp / target)``.

    Args:
        data: the training images.
        config: the run's settings.
        device: where to compute ("cpu", "cuda", ...).
        dtype: the pipeline's float dtype (float32 default; float64 is exact
            too, slower).
    """

    #: Damping of the scale's Newton steps towards the rate target, and their limit.
    SCALE_GAIN: ClassVar[dict[str, float]] = {"match-annex-k": 0.5, "target-bpp": 0.2}
    SCALE_STEP_LIMIT = 0.05
    #: Weight of the newest step in the running slope estimates.
    SLOPE_MOMENTUM = 0.1

    def __init__(self, data: ImageSet, config: TrainConfig, *,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.data = data
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        small = [n for n, i in zip(data.names, data.images, strict=True)
                 if min(i.shape[-2:]) < config.crop]
        if small:
            raise JPEGError(f"{small[0]}: smaller than the {config.crop}x{config.crop} crop")
        start = initial_tables(config.init).log().to(self.device, dtype)
        self.offset = torch.nn.Parameter(start.mean())
        self.shape = torch.nn.Parameter(start - start.mean())
        self.optimizer = torch.optim.Adam([self.shape, self.offset], lr=config.lr,
                                          betas=(0.9, 0.99))
        self.sampler = CropSampler(data, config.crop, config.batch, config.quality_range,
                                   config.seed)
        self.lam: float = float(config.lam) if config.lam is not None else math.nan
        # running sums along the overall scale: dD/ds and -d log2(bpp)/ds
        self.slope_dist = 0.0
        self.slope_rate = 0.0
        self.step = 0
        self.elapsed = 0.0
        self.history: list[StepStats] = []

    # -- state ------------------------------------------------------------------

    @property
    def log_tables(self) -> Tensor:
        """The log base tables ``[2, 8, 8]`` (before rounding and clamping)."""
        return self.shape + self.offset

    def tables(self) -> Tensor:
        """The current integer base tables ``[2, 8, 8]`` (float64, CPU)."""
        return tables_from_log(self.log_tables.detach()).to("cpu", torch.float64)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (see :func:`save_checkpoint`)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "step": self.step,
            "shape": self.shape.detach().cpu().clone(),
            "offset": self.offset.detach().cpu().clone(),
            "optimizer": self.optimizer.state_dict(),
            "lambda": self.lam,
            "slopes": [self.slope_dist, self.slope_rate],
            "rng": self.sampler.generator.get_state(),
            "data_fingerprint": self.data.fingerprint,
            "elapsed_s": self.elapsed,
            "history": [asdict(h) for h in self.history],
            "tables": self.tables(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the configuration must match (steps aside)."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise JPEGError("not a jpegtorch table-training checkpoint")
        saved = TrainConfig.from_dict(state["config"])
        mine = self.config.to_dict()
        for key, value in saved.to_dict().items():
            if key != "steps" and mine[key] != value:
                raise JPEGError(f"the checkpoint was trained with {key}={value!r}, "
                                f"this run has {key}={mine[key]!r}")
        with torch.no_grad():
            self.shape.copy_(state["shape"].to(self.shape))
            self.offset.copy_(state["offset"].to(self.offset))
        self.optimizer.load_state_dict(state["optimizer"])
        self.lam = float(state["lambda"])
        self.slope_dist, self.slope_rate = (float(v) for v in state["slopes"])
        self.sampler.generator.set_state(state["rng"])
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed_s", 0.0))
        self.history = [StepStats(**h) for h in state.get("history", [])]

    # -- optimisation -----------------------------------------------------------

    def _learning_rate(self) -> float:
        total = max(self.config.steps, 1)
        progress = min(self.step / total, 1.0)
        return self.config.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))

    def train_step(self) -> StepStats:
        """One optimisation step; returns its measurements."""
        from ..pipeline import decode, encode
        from ..rate import estimate_bits

        started = time.perf_counter()
        config = self.config
        crops, quality = self.sampler.batch()
        crops = crops.to(self.device)
        quality = quality.to(self.device, self.dtype)
        image = crops.to(self.dtype) / 255.0
        pixels = float(crops.shape[-2] * crops.shape[-1])
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()

        log_tables = self.log_tables.detach().requires_grad_(True)
        coefficients = encode(image, quality, subsampling=config.subsampling,
                              tables=tables_from_log(log_tables), mode="ste")
        decoded = decode(calibrated_gradients(coefficients))
        bpp = estimate_bits(coefficients) / pixels
        dist = distortion_db(config.objective, decoded, image)
        rate_term = torch.log2(bpp).mean()
        dist_term = dist.mean()
        grad_rate, = torch.autograd.grad(rate_term, log_tables, retain_graph=True)
        grad_dist, = torch.autograd.grad(dist_term, log_tables)

        # slopes along the overall scale s (all entries together)
        momentum = self.SLOPE_MOMENTUM if self.step else 1.0
        self.slope_dist += momentum * (float(grad_dist.sum()) - self.slope_dist)
        self.slope_rate += momentum * (-float(grad_rate.sum()) - self.slope_rate)
        adaptive = config.lambda_mode != "fixed"
        if adaptive:
            low, high = LAMBDA_RANGE
            self.lam = min(high, max(low, self.slope_dist / max(self.slope_rate, 1e-9)))
        grad = grad_dist + self.lam * grad_rate
        self.optimizer.zero_grad(set_to_none=True)
        self.shape.grad = grad - grad.mean()
        self.offset.grad = None if adaptive else grad.sum()
        self.optimizer.step()

        with torch.no_grad():
            log_bpp = float(rate_term.detach())
            reference = None
            if config.lambda_mode == "match-annex-k":
                ref = encode(crops, quality, subsampling=config.subsampling, mode="hard")
                reference = float(torch.log2(estimate_bits(ref) / pixels).mean())
                self._steer_scale(log_bpp - reference)
            elif config.lambda_mode == "target-bpp":
                assert config.target_bpp is not None
                self._steer_scale(log_bpp - math.log2(config.target_bpp))
            # keep the shape centred and every entry within 1..255
            self.shape.sub_(self.shape.mean())
            clamped = (self.shape + self.offset).clamp(0.0, math.log(255.0))
            self.shape.copy_(clamped - self.offset)
            mse = (decoded - image).square().flatten(1).mean(1).clamp(min=1e-10)
            psnr = float((-10.0 * torch.log10(mse)).mean())
        self.step += 1
        self.elapsed += time.perf_counter() - started
        stats = StepStats(step=self.step, loss=float(dist_term.detach()) + self.lam * log_bpp,
                          bpp=2.0 ** log_bpp, psnr=psnr, distortion_db=float(dist_term.detach()),
                          lam=self.lam,
                          reference_bpp=None if reference is None else 2.0 ** reference)
        self.history.append(stats)
        return stats

    def _steer_scale(self, excess_log2: float) -> None:
        """Move the overall scale towards the rate target (damped Newton step)."""
        gain = self.SCALE_GAIN[self.config.lambda_mode]
        change = gain * excess_log2 / max(self.slope_rate, 1e-3)
        limit = self.SCALE_STEP_LIMIT
        self.offset.add_(min(limit, max(-limit, change)))

    def train(self, *, callback: Callable[[StepStats], None] | None = None,
              checkpoint: str | os.PathLike[str] | None = None,
              checkpoint_every: int = 0) -> Tensor:
        """Run until ``config.steps``; returns the integer base tables ``[2, 8, 8]``.

        ``callback`` is called after every step; with ``checkpoint`` a
        checkpoint is written every ``checkpoint_every`` steps (0: only at
        the end) and at the end.
        """
        while self.step < self.config.steps:
            stats = self.train_step()
            if callback is not None:
                callback(stats)
            if checkpoint is not None and checkpoint_every > 0 \
                    and self.step % checkpoint_every == 0 and self.step < self.config.steps:
                save_checkpoint(checkpoint, self)
        if checkpoint is not None:
            save_checkpoint(checkpoint, self)
        return self.tables()


def train_tables(data: ImageSet, config: TrainConfig, *, device: str | torch.device = "cpu",
                 callback: Callable[[StepStats], None] | None = None) -> Tensor:
    """Train tables in one call (no checkpoints): integer base tables ``[2, 8, 8]``."""
    return TableTrainer(data, config, device=device).train(callback=callback)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], trainer: TableTrainer) -> None:
    """Write the trainer's state to ``path`` atomically (temporary file + rename)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                               dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(trainer.state_dict(), handle)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (CPU tensors)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise JPEGError(f"{path}: no such checkpoint") from None
    except Exception as exc:
        raise JPEGError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise JPEGError(f"{path}: not a jpegtorch table-training checkpoint")
    return state


# --------------------------------------------------------------------------- evaluation


def evaluation_crops(data: ImageSet, *, count: int = 24, crop: int = 256,
                     seed: int = 12345) -> list[Tensor]:
    """``count`` fixed crops (uint8 ``[3, crop, crop]``, or whole images when
    smaller), one per image in turn, positions from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    crops = []
    order = torch.randperm(len(data), generator=generator).tolist()
    for k in range(count):
        image = data.images[order[k % len(order)]]
        h = min(crop, image.shape[-2])
        w = min(crop, image.shape[-1])
        top = int(torch.randint(image.shape[-2] - h + 1, (1,), generator=generator))
        left = int(torch.randint(image.shape[-1] - w + 1, (1,), generator=generator))
        crops.append(image[:, top : top + h, left : left + w].contiguous())
    return crops


def measure(images: Iterable[Tensor], tables: Tensor | str | None, qualities: Sequence[int],
            *, subsampling: str = "4:2:0") -> dict[str, list[list[float]]]:
    """Real files for every image and quality: bpp, PSNR (RGB) and SSIM.

    Each image (uint8 ``[3, H, W]``) is written by the JFIF writer with
    optimized Huffman tables and decoded by Pillow. Returns per-image lists
    (one value per quality) under "bpp", "psnr" and "ssim".
    """
    import io

    import numpy as np
    from PIL import Image

    from .. import metrics
    from ..formats.jfif_writer import encode_jpeg

    out: dict[str, list[list[float]]] = {"bpp": [], "psnr": [], "ssim": []}
    for image in images:
        rows: dict[str, list[float]] = {"bpp": [], "psnr": [], "ssim": []}
        for q in qualities:
            data = encode_jpeg(image, int(q), subsampling=subsampling, optimize=True,
                               tables=tables)
            decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            restored = torch.from_numpy(decoded.copy()).permute(2, 0, 1)
            a = image[None].double() / 255.0
            b = restored[None].double() / 255.0
            rows["bpp"].append(len(data) * 8 / float(image.shape[-2] * image.shape[-1]))
            rows["psnr"].append(float(metrics.psnr(b, a)[0]))
            rows["ssim"].append(float(metrics.ssim(b, a)[0]))
        for key, values in rows.items():
            out[key].append(values)
    return out


def mean_bd_rate(anchor: dict[str, list[list[float]]], test: dict[str, list[list[float]]],
                 metric: str = "psnr") -> float:
    """Mean over images of the BD-rate (%) of ``test`` against ``anchor``.

    ``metric``: "psnr" (dB) or "ssim" (in dB, see :func:`jpegtorch.metrics.db`).
    Images whose curves do not overlap are left out.
    """
    from ..metrics import bd_rate, db

    def values(seq: list[float]) -> list[float]:
        return [float(db(min(v, 1.0 - 1e-12))) for v in seq] if metric == "ssim" else seq

    results = []
    for ra, da, rb, dbb in zip(anchor["bpp"], anchor[metric], test["bpp"], test[metric],
                               strict=True):
        with contextlib.suppress(ValueError):
            results.append(bd_rate(ra, values(da), rb, values(dbb)))
    if not results:
        raise ValueError("no image has overlapping rate-distortion curves")
    return sum(results) / len(results)


def evaluate_tables(data: ImageSet, tables: Tensor | str, *, qualities: Sequence[int],
                    subsampling: str = "4:2:0", anchor: Tensor | str | None = None,
                    count: int = 24, crop: int = 256) -> dict[str, Any]:
    """Measure ``tables`` against ``anchor`` (None: Annex K) on fixed crops of ``data``.

    Returns a JSON-ready dict: the qualities, mean bpp / PSNR / SSIM per
    quality for both, and the mean per-crop BD-rates (PSNR and SSIM).
    """
    crops = evaluation_crops(data, count=count, crop=crop)
    tuned = measure(crops, tables, qualities, subsampling=subsampling)
    base = measure(crops, anchor, qualities, subsampling=subsampling)

    def means(result: dict[str, list[list[float]]]) -> dict[str, list[float]]:
        return {key: [round(sum(col) / len(col), 5) for col in zip(*rows, strict=True)]
                for key, rows in result.items()}

    return {
        "crops": len(crops),
        "crop": crop,
        "qualities": list(qualities),
        "subsampling": subsampling,
        "tuned": means(tuned),
        "anchor": means(base),
        "bd_rate_psnr": round(mean_bd_rate(base, tuned, "psnr"), 3),
        "bd_rate_ssim": round(mean_bd_rate(base, tuned, "ssim"), 3),
    }
