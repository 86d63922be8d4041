"""The learned codec's training loop: λ·D + R with gain units, resumable and DDP-ready.

One model is trained for all quality levels at once: each step draws one level
(the same on every process) and minimizes ``λ_k · 255² · MSE + bpp`` plus the
auxiliary loss that places the factorized priors' quantiles. Checkpoints hold
everything needed to resume bit-for-bit (model, optimizer, step, seeds).

Distributed: run under ``torchrun --nproc_per_node N``; the loop picks up
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, uses NCCL on CUDA and gloo on CPU, wraps
the model in DistributedDataParallel, gives every rank its own crops, and only
rank 0 writes checkpoints and the exported model.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .model import FactorizedCodec

DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.048)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised when SIGINT/SIGTERM stopped training; the checkpoint is up to date.

    ``step`` is the number of completed steps saved in ``checkpoint``.
    """

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class TrainConfig:
    """Settings of one training run (stored in checkpoints)."""

    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    steps: int = 10000
    crop: int = 128
    batch: int = 8
    lr: float = 5e-4
    prior_lr_scale: float = 10.0  # the densities' parameters learn this much faster
    aux_lr: float = 5e-3
    warmup: int = 200
    decay_from: float = 0.85  # fraction of ``steps`` after which lr drops 10x
    clip: float = 1.0
    seed: int = 0
    n: int = 80
    m: int = 128
    in_channels: int = 3
    checkpoint_minutes: float = 5.0
    log_every: int = 100
    extra: dict[str, Any] = field(default_factory=dict)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then constant, then ÷10 for the last part of the run."""
    lr = config.lr * min(1.0, (step + 1) / max(1, config.warmup))
    if step >= config.decay_from * config.steps:
        lr *= 0.1
    return lr


def step_rng(seed: int, rank: int, step: int) -> np.random.Generator:
    """The random generator of one step on one rank (makes resumes exact)."""
    return np.random.default_rng([seed, rank, step])


def level_of_step(seed: int, step: int, levels: int) -> int:
    """The level trained at ``step`` (identical on every rank)."""
    return int(np.random.default_rng([seed, 1 << 20, step]).integers(levels))


def rd_loss(model: torch.nn.Module, x: Tensor, level: int, lam: float
            ) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss, bpp, mse)`` of one batch ``x`` ``[B, C, H, W]`` in [0, 1] at ``level``."""
    x_hat, likelihood = model(x, level)
    return _rd_terms(x, x_hat, likelihood, lam)


def _rd_terms(x: Tensor, x_hat: Tensor, likelihood: Tensor, lam: float
              ) -> tuple[Tensor, Tensor, Tensor]:
    b, _, h, w = x.shape
    bpp = torch.log(likelihood).sum() / (-math.log(2) * b * h * w)
    mse = torch.mean((x_hat - x) ** 2)
    return lam * 255.0**2 * mse + bpp, bpp, mse


class _WithAux(torch.nn.Module):
    """Runs the codec and its auxiliary loss in one ``forward`` (what DDP needs)."""

    def __init__(self, model: FactorizedCodec) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, level: int) -> tuple[Tensor, Tensor, Tensor]:
        x_hat, likelihood = self.model(x, level)
        return x_hat, likelihood, self.model.aux_loss()


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(config: TrainConfig, sampler: Any, output: Path, *, checkpoint: Path,
          resume: Path | None = None, device: str = "cpu", progress: bool = True,
          log: Callable[[str], None] | None = None,
          meta: dict[str, Any] | None = None) -> dict[str, float]:
    """Train (or resume) and export the model to ``output``.

    ``sampler.sample(rng, batch, crop)`` must return float ``[B, C, crop, crop]``
    in [0, 1]. Returns the final running averages (``loss``, per-level ``bpp``
    and ``psnr``). Writes ``checkpoint`` every ``checkpoint_minutes`` and at the
    end; ``output`` gets the compact exported model (:func:`export.export_model`).
    """
    from .export import export_model

    world, rank, local = _dist_info()
    distributed = world > 1
    if device == "cuda":
        dev = torch.device("cuda", local if distributed else 0)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    own_group = distributed and not torch.distributed.is_initialized()
    if own_group:
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    say = log if log is not None and rank == 0 else (lambda _msg: None)

    state: dict[str, Any] | None = None
    if resume is not None:
        state = torch.load(resume, map_location="cpu", weights_only=False)
        saved = TrainConfig(**state["config"])
        # the architecture and λ set come from the checkpoint; the schedule may change
        for key in ("lambdas", "n", "m", "in_channels", "seed"):
            setattr(config, key, getattr(saved, key))
    torch.manual_seed(config.seed)
    model = FactorizedCodec(config.n, config.m, len(config.lambdas), config.in_channels)
    if state is not None:
        model.load_state_dict(state["model"])
    model = model.to(dev).to(memory_format=torch.channels_last)
    groups: dict[str, list[torch.nn.Parameter]] = {"main": [], "prior": [], "aux": []}
    for name, p in model.named_parameters():
        kind = ("aux" if name.endswith("quantiles") else
                "prior" if name.startswith("priors.") else "main")
        groups[kind].append(p)
    main_params = groups["main"] + groups["prior"]
    optimizer = torch.optim.Adam([{"params": groups["main"], "lr": config.lr},
                                  {"params": groups["prior"], "lr": config.lr},
                                  {"params": groups["aux"], "lr": config.aux_lr}])
    step = 0
    elapsed = 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        elapsed = float(state.get("elapsed", 0.0))
    net: torch.nn.Module = _WithAux(model)
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=True)

    levels = len(config.lambdas)
    ema_bpp = [math.nan] * levels
    ema_psnr = [math.nan] * levels
    ema_loss = math.nan

    def ema(old: float, new: float, k: float = 0.05) -> float:
        return new if math.isnan(old) else old + k * (new - old)

    def save_checkpoint() -> None:
        if rank != 0:
            return
        _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "step": step, "config": asdict(config),
                      "elapsed": elapsed + time.monotonic() - started,
                      "meta": meta or {}}, checkpoint)

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=min(step, config.steps), unit="step",
                   file=sys.stderr, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 60.0)
    started = time.monotonic()
    last_save = started
    model.train()
    # Ctrl-C / SIGTERM (e.g. a scheduler's pre-emption) stop at the next step
    # boundary and save the checkpoint, so no work since the last save is lost.
    # Single-process runs only: under DDP the ranks would stop at different steps.
    stop: list[int] = []
    previous: dict[int, Any] = {}
    if not distributed and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _frame: stop.append(signum))
    try:
        while step < config.steps and not stop:
            level = level_of_step(config.seed, step, levels)
            rng = step_rng(config.seed, rank, step)
            torch.manual_seed(int(rng.integers(2**62)))
            x = sampler.sample(rng, config.batch, config.crop).to(dev)
            x = x.contiguous(memory_format=torch.channels_last)
            lr = learning_rate(config, step)
            optimizer.param_groups[0]["lr"] = lr
            optimizer.param_groups[1]["lr"] = lr * config.prior_lr_scale
            x_hat, likelihood, aux = net(x, level)
            loss, bpp, mse = _rd_terms(x, x_hat, likelihood, config.lambdas[level])
            optimizer.zero_grad(set_to_none=True)
            (loss + aux).backward()
            if config.clip > 0:
                torch.nn.utils.clip_grad_norm_(main_params, config.clip)
            optimizer.step()
            step += 1
            loss_v, bpp_v = float(loss.detach()), float(bpp.detach())
            psnr_v = -10 * math.log10(max(float(mse.detach()), 1e-10))
            if not math.isfinite(loss_v):
                raise FloatingPointError(f"loss became {loss_v} at step {step}")
            ema_loss = ema(ema_loss, loss_v, 0.02)
            ema_bpp[level] = ema(ema_bpp[level], bpp_v)
            ema_psnr[level] = ema(ema_psnr[level], psnr_v)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"loss {ema_loss:.3f} L{level + 1} bpp {ema_bpp[level]:.3f} "
                                    f"psnr {ema_psnr[level]:.2f}", refresh=False)
            if step % config.log_every == 0 or step == config.steps:
                per_level = " ".join(f"L{k + 1} {ema_bpp[k]:.3f}/{ema_psnr[k]:.2f}"
                                     for k in range(levels))
                say(f"step {step} loss {ema_loss:.4f} aux {float(aux.detach()):.1f} lr {lr:.1e} "
                    f"t {elapsed + time.monotonic() - started:.0f}s | bpp/psnr {per_level}")
            now = time.monotonic()
            if now - last_save >= config.checkpoint_minutes * 60:
                save_checkpoint()
                last_save = now
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if bar is not None:
            bar.close()
    save_checkpoint()
    if stop:
        raise TrainingInterrupted(step, checkpoint)
    if rank == 0:
        export_model(model, config.lambdas, output, meta={**(meta or {}), "steps": step})
    if distributed:
        torch.distributed.barrier()
        if own_group:
            torch.distributed.destroy_process_group()
    result = {"loss": ema_loss}
    for k in range(levels):
        result[f"bpp{k + 1}"] = ema_bpp[k]
        result[f"psnr{k + 1}"] = ema_psnr[k]
    return result
