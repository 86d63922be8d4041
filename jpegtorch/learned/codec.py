"""Encode and decode images with the learned codec into ``.jtc`` containers."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import JPEGError
from ..formats import container as jtc
from .entropy import Tables, decode_symbols, encode_symbols
from .export import CODEC, build_model, content_hash, load_blob
from .model import STRIDE, FactorizedCodec

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "learned_factorized.pt"
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class LoadedModel:
    """A model file ready for coding: network, per-level tables, identity."""

    net: FactorizedCodec
    medians: np.ndarray  # float32 [L, M]
    tables: list[Tables]
    name: str
    hash8: bytes
    lambdas: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return len(self.tables)

    @property
    def in_channels(self) -> int:
        return int(self.net.config["in_channels"])


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> LoadedModel:
    blob = load_blob(path)
    net = build_model(blob)
    offsets = blob["cdf_offsets"].numpy().astype(np.int32)
    lengths = blob["cdf_lengths"].numpy().astype(np.int32)
    freqs = blob["cdf_freqs"].numpy().astype(np.int32)
    tables = []
    start = 0
    for level in range(offsets.shape[0]):
        n = int(lengths[level].sum())
        tables.append(Tables(offsets[level], lengths[level], freqs[start:start + n]))
        start += n
    if start != freqs.size:
        raise JPEGError(f"{path}: inconsistent CDF tables")
    cfg = net.config
    meta = json.loads(blob.get("meta") or "{}")
    name = str(meta.get("name") or f"{CODEC}-n{cfg['n']}-m{cfg['m']}-c{cfg['in_channels']}")
    return LoadedModel(net=net, medians=blob["medians"].numpy().astype(np.float32),
                       tables=tables, name=name, hash8=content_hash(blob)[:8],
                       lambdas=tuple(blob["lambdas"]), meta=meta)


def load_model(path: str | Path | None = None) -> LoadedModel:
    """Load (and cache) a model file; ``None`` means the shipped weights."""
    target = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not target.exists():
        raise JPEGError(f"learned-codec weights not found: {target}")
    return _load_cached(str(target.resolve()))


def _as_chw(image: Tensor) -> Tensor:
    if not isinstance(image, Tensor):
        raise TypeError("image must be a torch.Tensor")
    if image.dtype != torch.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be [C, H, W] with C in (1, 3), got {tuple(image.shape)}")
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError("image is empty")
    return image


def _to_luma(x: Tensor) -> Tensor:
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]`` (BT.601 weights), same dtype."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@torch.no_grad()
def encode_image(image: Tensor, level: int | None = None, *, model: str | Path | None = None,
                 device: str | torch.device | None = None) -> bytes:
    """Compress an image into the bytes of a ``.jtc`` file.

    Args:
        image: ``uint8 [C, H, W]`` (C = 1 gray or 3 RGB) or ``[H, W]``, any size.
        level: quality level, 1 (smallest file) .. number of levels; ``None``:
            :data:`DEFAULT_LEVEL` (clamped to the model's levels).
        model: model file (default: the shipped weights).
        device: where the analysis transform runs (default CPU). The coded
            symbols come from the integer tables, so any device can decode.

    Gray images are coded by an RGB model as three equal channels (and
    decoded back to one). The same input and model give the same bytes.
    """
    from . import DEFAULT_LEVEL

    loaded = load_model(model)
    if level is None:
        level = min(DEFAULT_LEVEL, loaded.levels)
    if not isinstance(level, int) or not 1 <= level <= loaded.levels:
        raise ValueError(f"level must be an integer in 1..{loaded.levels}, got {level!r}")
    image = _as_chw(image)
    channels, height, width = image.shape
    dev = torch.device(device) if device is not None else torch.device("cpu")
    net = loaded.net.to(dev)
    x = image.to(dev, torch.float32).div(255.0)[None]
    if loaded.in_channels == 3 and channels == 1:
        x = x.expand(1, 3, height, width)
    elif loaded.in_channels == 1 and channels == 3:
        x = _to_luma(x)
        channels = 1
    pad_h, pad_w = -height % STRIDE, -width % STRIDE
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    y = net.analysis(x, level - 1)[0].to("cpu", torch.float32)
    medians = torch.from_numpy(loaded.medians[level - 1]).view(-1, 1, 1)
    q = torch.round(y - medians).clamp(-(2**30), 2**30).to(torch.int32).numpy()
    latents, escapes = encode_symbols(q, loaded.tables[level - 1])
    box = jtc.Container(
        codec=CODEC, model=loaded.name, model_hash=loaded.hash8, level=level,
        width=width, height=height, channels=channels,
        tensors=(("y", tuple(int(d) for d in q.shape)),),
        streams=(jtc.Stream("latents", latents), jtc.Stream("escapes", escapes)))
    return jtc.pack(box)


@torch.no_grad()
def decode_image(data: bytes, *, model: str | Path | None = None,
                 device: str | torch.device | None = None) -> Tensor:
    """Decode the bytes of a ``.jtc`` file -> ``uint8 [C, H, W]`` on the CPU.

    Raises :class:`jpegtorch.JPEGError` (one line) for a damaged or foreign
    file: bad magic, unknown version, truncation, a CRC mismatch, an unknown
    codec or model, or inconsistent latent shapes.
    """
    box = jtc.unpack(data)
    if box.codec != CODEC:
        raise JPEGError(f"unknown .jtc codec {box.codec!r} (this build decodes {CODEC!r})")
    loaded = load_model(model)
    if box.model_hash != loaded.hash8:
        raise JPEGError(f"unknown .jtc model {box.model!r} (weights {box.model_hash.hex()}); "
                        f"the loaded model is {loaded.name!r} ({loaded.hash8.hex()})")
    if not 1 <= box.level <= loaded.levels:
        raise JPEGError(f"corrupt .jtc header (level {box.level} not in 1..{loaded.levels})")
    m = int(loaded.net.config["m"])
    expected = (m, -(-box.height // STRIDE), -(-box.width // STRIDE))
    shapes = dict(box.tensors)
    if set(shapes) != {"y"} or shapes["y"] != expected:
        raise JPEGError(f"corrupt .jtc header (latent shapes {box.tensors}, expected y {expected})")
    streams = {s.name: s.data for s in box.streams}
    if set(streams) != {"latents", "escapes"}:
        raise JPEGError(f"corrupt .jtc file (streams {sorted(streams)})")
    q = decode_symbols(streams["latents"], streams["escapes"], expected,
                       loaded.tables[box.level - 1])
    dev = torch.device(device) if device is not None else torch.device("cpu")
    medians = torch.from_numpy(loaded.medians[box.level - 1]).view(-1, 1, 1)
    y_hat = (torch.from_numpy(q).to(torch.float32) + medians)[None].to(dev)
    x_hat = loaded.net.to(dev).synthesis(y_hat, box.level - 1)
    x_hat = x_hat[:, :, :box.height, :box.width].clamp(0.0, 1.0)
    if box.channels == 1 and x_hat.shape[1] == 3:
        x_hat = _to_luma(x_hat)
    return torch.round(x_hat[0] * 255.0).to("cpu", torch.uint8)
