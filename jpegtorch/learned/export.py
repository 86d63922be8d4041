"""Compact model files: float16 transforms plus integer CDF tables.

A model file (``torch.save`` of plain tensors and strings, read with
``weights_only=True``) holds everything the codec needs and nothing else:

- ``state``: the analysis/synthesis transforms (float16) and the gain vectors
  (float32), keyed like :class:`~.model.FactorizedCodec`'s state dict;
- ``medians`` ``float32 [L, M]``: the per-level, per-channel offsets μ; the coded
  symbol is ``round(y − μ)``;
- ``cdf_offsets`` ``int32 [L, M]``: the smallest coded value of each table;
  ``cdf_lengths`` ``int32 [L, M]``: table sizes including the final escape
  symbol; ``cdf_freqs`` ``int32 [sum(lengths)]``: integer frequencies, every
  table summing to ``2**PRECISION``.

The tables are computed once, here, in float64 on the CPU from the trained
densities. Encoder and decoder then only ever see these integers, so the
entropy coding is bit-identical on every device by construction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .entropy import PRECISION
from .model import FactorizedCodec
from .modelfile import CODEC, FORMAT, FORMAT_VERSION

MAX_TABLE = 4095  # most integer values in one table (before the escape symbol)


def quantize_pmf(pmf: np.ndarray, tail: float, precision: int = PRECISION) -> np.ndarray:
    """Float64 probabilities (+ escape mass) -> integer frequencies summing to 2**precision.

    Every symbol, the escape included, gets at least 1. Deterministic (it only
    runs at export time anyway). Returns ``int32 [len(pmf) + 1]``.
    """
    total = 1 << precision
    probs = np.append(np.asarray(pmf, np.float64), max(float(tail), 0.0))
    probs = np.maximum(probs, 0.0)
    probs = probs / probs.sum()
    n = probs.size
    if n >= total:
        raise ValueError("table longer than the coding precision allows")
    freqs = np.floor(probs * (total - n)).astype(np.int64) + 1
    remainder = total - int(freqs.sum())
    # hand out what is left by largest fractional part, ties by index
    frac = probs * (total - n) - np.floor(probs * (total - n))
    order = np.lexsort((np.arange(n), -frac))
    freqs[order[:remainder]] += 1
    assert int(freqs.sum()) == total and int(freqs.min()) >= 1
    return freqs.astype(np.int32)


def _solve(density: Any, target: float, bound: float = 1e5, iters: int = 80) -> torch.Tensor:
    """Per-channel ``v`` with ``cdf_logits(v) == target`` by bisection (float64) -> ``[C]``.

    The cumulative logits are monotonic in ``v`` by construction (positive
    matrices, factors bounded by tanh), so bisection is exact to float64
    precision within ``[-bound, bound]``.
    """
    c = density.channels
    lo = torch.full((c, 1, 1), -bound, dtype=torch.float64)
    hi = torch.full((c, 1, 1), bound, dtype=torch.float64)
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = density.cdf_logits(mid) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return ((lo + hi) / 2).view(c)


@torch.no_grad()
def compute_tables(model: FactorizedCodec) -> dict[str, torch.Tensor]:
    """Integer CDF tables of every level and channel (float64 on the CPU).

    Per channel: the median μ (where the CDF is 1/2) and the integer range
    ``[lo, hi]`` of ``round(y − μ)`` outside which the density has less than
    ``tail_mass`` on each side; the pmf of each integer ``v`` is the density's
    mass on ``[μ + v − 1/2, μ + v + 1/2]``, the escape gets the two tails.
    Medians and ranges are found by bisection on the CDF, so they do not
    depend on how far the auxiliary loss got.
    """
    medians, offsets, lengths, freqs = [], [], [], []
    for prior in model.priors:
        density = _float64_copy(prior)
        target = math.log(2 / density.tail_mass - 1)
        med = _solve(density, 0.0)
        lower = _solve(density, -target)
        upper = _solve(density, target)
        lo = torch.floor(lower - med).clamp(-MAX_TABLE, 0).to(torch.int64)
        hi = torch.ceil(upper - med).clamp(0, MAX_TABLE).to(torch.int64)
        # clip over-wide tables symmetrically to MAX_TABLE values
        half = MAX_TABLE // 2
        wide = (hi - lo + 1) > MAX_TABLE
        lo = torch.where(wide, lo.clamp_min(-half), lo)
        hi = torch.where(wide, hi.clamp_max(half), hi)
        # one evaluation per level on a padded grid of edges, sliced per channel
        width = int((hi - lo).max()) + 2
        steps = torch.arange(width, dtype=torch.float64)
        edges = (med + lo.to(torch.float64) - 0.5)[:, None] + steps[None, :]
        logits = density.cdf_logits(edges[:, None, :])[:, 0, :]
        cdf, sf = torch.sigmoid(logits), torch.sigmoid(-logits)
        # differences of the CDF, computed on the side where they do not cancel
        pmf_all = torch.where(logits[:, :-1] < 0, cdf[:, 1:] - cdf[:, :-1],
                              sf[:, :-1] - sf[:, 1:]).clamp_min(0)
        level_freqs = []
        for c in range(density.channels):
            k = int(hi[c] - lo[c]) + 1
            tail = float(cdf[c, 0] + sf[c, k])
            level_freqs.append(quantize_pmf(pmf_all[c, :k].numpy(), tail))
        level_offsets = lo.tolist()
        medians.append(med.to(torch.float32))
        offsets.append(torch.tensor(level_offsets, dtype=torch.int32))
        lengths.append(torch.tensor([f.size for f in level_freqs], dtype=torch.int32))
        freqs.extend(level_freqs)
    return {
        "medians": torch.stack(medians),
        "cdf_offsets": torch.stack(offsets),
        "cdf_lengths": torch.stack(lengths),
        "cdf_freqs": torch.from_numpy(np.concatenate(freqs).astype(np.int32)),
    }


def _float64_copy(module: torch.nn.Module) -> Any:
    import copy

    return copy.deepcopy(module).to(device="cpu", dtype=torch.float64)


def export_model(model: FactorizedCodec, lambdas: tuple[float, ...] | list[float], path: Path,
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the compact model file for ``model`` to ``path``; returns its content."""
    model = model.to("cpu")
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("priors."):
            continue
        t = tensor.detach().cpu()
        state[name] = t.to(torch.float32) if name.startswith("log_gain") else t.to(torch.float16)
    blob: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "codec": CODEC,
        "config": dict(model.config),
        "lambdas": [float(v) for v in lambdas],
        "precision": PRECISION,
        "state": state,
        **compute_tables(model),
        "meta": json.dumps(meta or {}, sort_keys=True),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(blob, tmp)
    tmp.replace(path)
    return blob


def load_blob(path: Path | str) -> dict[str, Any]:
    """Read and check a model file (raises ``JPEGError`` when it is not one)."""
    from ..errors import JPEGError

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pickle/zip errors of all kinds
        raise JPEGError(f"{path}: not a learned-codec model file ({type(exc).__name__})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise JPEGError(f"{path}: not a learned-codec model file")
    if blob.get("format_version") != FORMAT_VERSION or blob.get("codec") != CODEC:
        raise JPEGError(f"{path}: unsupported model file version or codec")
    return blob


def build_model(blob: dict[str, Any]) -> FactorizedCodec:
    """The inference network (float32, CPU, eval mode) of a loaded model file."""
    cfg = blob["config"]
    model = FactorizedCodec(int(cfg["n"]), int(cfg["m"]), int(cfg["levels"]),
                            int(cfg["in_channels"]))
    state = {k: v.to(torch.float32) for k, v in blob["state"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("priors.") for k in missing):
        from ..errors import JPEGError

        raise JPEGError("model file does not match the network layout")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def entropy_bits(freqs: np.ndarray) -> float:
    """Entropy (bits) of an integer frequency table (for diagnostics)."""
    p = freqs / freqs.sum()
    return float(-(p * np.log2(p)).sum()) if math.isfinite(p.sum()) else math.nan
