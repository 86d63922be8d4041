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

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .model import FactorizedCodec

FORMAT = "jpegtorch-learned-model"
FORMAT_VERSION = 1
CODEC = "factorized-gain"
PRECISION = 16
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


@torch.no_grad()
def compute_tables(model: FactorizedCodec) -> dict[str, torch.Tensor]:
    """Integer CDF tables of every level and channel (float64 on the CPU)."""
    medians, offsets, lengths, freqs = [], [], [], []
    for prior in model.priors:
        density = _float64_copy(prior)
        q = density.quantiles.detach()[:, 0, :]  # [M, 3]
        med = q[:, 1]
        lo = torch.floor(q[:, 0] - med).clamp(-MAX_TABLE, 0).to(torch.int64)
        hi = torch.ceil(q[:, 2] - med).clamp(0, MAX_TABLE).to(torch.int64)
        level_freqs = []
        level_offsets = []
        for c in range(density.channels):
            lo_c, hi_c = int(lo[c]), int(hi[c])
            if hi_c - lo_c + 1 > MAX_TABLE:  # keep the widest tables bounded
                half = MAX_TABLE // 2
                lo_c, hi_c = max(lo_c, -half), min(hi_c, half)
            values = med[c] + torch.arange(lo_c, hi_c + 1, dtype=torch.float64)
            v = values.view(1, 1, -1).expand(density.channels, 1, -1)
            lower = density.cdf_logits(v - 0.5)[c, 0]
            upper = density.cdf_logits(v + 0.5)[c, 0]
            sign = -torch.sign(lower + upper)
            pmf = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
            low_tail = torch.sigmoid(density.cdf_logits(v[:, :, :1] - 0.5)[c, 0, 0])
            high_tail = torch.sigmoid(-density.cdf_logits(v[:, :, -1:] + 0.5)[c, 0, 0])
            tail = float(low_tail + high_tail)
            level_freqs.append(quantize_pmf(pmf.numpy(), tail))
            level_offsets.append(lo_c)
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


def content_hash(blob: dict[str, Any]) -> bytes:
    """SHA-256 over a model file's canonical content (names, dtypes, shapes, bytes).

    Independent of how ``torch.save`` lays the file out; the container stores
    its first 8 bytes to tie a ``.jtc`` file to the weights that made it.
    """
    digest = hashlib.sha256()

    def feed(name: str, value: Any) -> None:
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            for key in sorted(value):
                feed(f"{name}/{key}", value[key])
        else:
            digest.update(json.dumps(value, sort_keys=True).encode())

    for key in sorted(blob):
        if key != "meta":
            feed(key, blob[key])
    return digest.digest()


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
