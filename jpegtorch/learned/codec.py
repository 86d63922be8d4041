"""Encode and decode images with the learned codec into ``.jtc`` containers."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import JPEGError
from ..formats import container as jtc
from ..formats.jfif_reader import DEFAULT_MAX_PIXELS
from . import tiled
from .entropy import Tables, decode_symbols, encode_symbols
from .export import CODEC, build_model, content_hash, load_blob
from .model import STRIDE, FactorizedCodec

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "learned_factorized.pt"


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

    The analysis transform runs tile by tile (:mod:`.tiled`), so memory stays
    at the input, the latents (``M / 256`` values per pixel) and one tile's
    working set, whatever the image size. Gray images are coded by an RGB
    model as three equal channels (and decoded back to one). The same input
    and model give the same bytes.
    """
    from . import DEFAULT_LEVEL

    loaded = load_model(model)
    if level is None:
        level = min(DEFAULT_LEVEL, loaded.levels)
    if not isinstance(level, int) or not 1 <= level <= loaded.levels:
        raise ValueError(f"level must be an integer in 1..{loaded.levels}, got {level!r}")
    image = _as_chw(image)
    channels, height, width = image.shape
    if loaded.in_channels == 1:
        channels = 1
    y = tiled.analysis(loaded.net, image.cpu(), level - 1, tile=tiled.TILE, device=device)
    medians = torch.from_numpy(loaded.medians[level - 1]).view(-1, 1, 1)
    q = y.sub_(medians).round_().clamp_(-(2**30), 2**30).to(torch.int32).numpy()
    del y
    latents, escapes = encode_symbols(q, loaded.tables[level - 1])
    box = jtc.Container(
        codec=CODEC, model=loaded.name, model_hash=loaded.hash8, level=level,
        width=width, height=height, channels=channels,
        tensors=(("y", tuple(int(d) for d in q.shape)),),
        streams=(jtc.Stream("latents", latents), jtc.Stream("escapes", escapes)))
    return jtc.pack(box)


def decode_memory(box: jtc.Container, m: int, n: int) -> int:
    """Bytes the decoder allocates for ``box`` (checked against ``max_memory``).

    The decoded image (``C·H·W`` bytes), the integer latents (``4·M`` bytes per
    16×16 block, plus 8 per block while one channel is decoded) and one tile's
    working set of the synthesis transform (three float32 feature maps of
    ``n`` channels at half resolution, the largest stage, plus the tile's
    float32 output). The interpreter, torch and the model weights are not
    counted (as libjpeg's ``max_memory_to_use`` does not count the program).
    """
    rows, cols = -(-box.height // STRIDE), -(-box.width // STRIDE)
    span = rows + cols if tiled.TILE is None else tiled.TILE + 2 * tiled.HALO
    tile_rows, tile_cols = min(span, rows), min(span, cols)
    half = (STRIDE // 2) ** 2 * tile_rows * tile_cols
    working = 3 * 4 * n * half + 4 * 3 * 4 * half
    return box.channels * box.height * box.width + (4 * m + 8) * rows * cols + working


@torch.no_grad()
def decode_image(data: bytes, *, model: str | Path | None = None,
                 device: str | torch.device | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 max_memory: int | None = None) -> Tensor:
    """Decode the bytes of a ``.jtc`` file -> ``uint8 [C, H, W]`` on the CPU.

    Args:
        data: the file's bytes.
        model: model file (default: the shipped weights).
        device: where the synthesis transform runs (default CPU).
        max_pixels: refuse images with more pixels than this, from the header,
            before anything is allocated (``None``: no limit). The default is
            the JPEG decoder's (:data:`jpegtorch.formats.jfif_reader.DEFAULT_MAX_PIXELS`,
            Pillow's decompression-bomb limit).
        max_memory: refuse files whose decoding needs more than this many
            bytes (:func:`decode_memory`, from the header, before allocating;
            ``None``: no budget). Same meaning as the JPEG decoder's.

    Raises :class:`jpegtorch.JPEGError` (one line) for a damaged, foreign or
    too large file: bad magic, unknown version, truncation, a CRC mismatch,
    an unknown codec or model, a level or channel count the model does not
    have, inconsistent latent shapes, an entropy stream that is not consumed
    exactly (empty, too short for its latent, truncated, with data left over,
    or not a valid coding), or the limits above. Nothing large is allocated
    before the header has been checked against what the streams can hold.
    """
    box = jtc.unpack(data)
    if box.codec != CODEC:
        raise JPEGError(f"unknown .jtc codec {box.codec!r} (this build decodes {CODEC!r})")
    pixels = box.width * box.height
    if max_pixels is not None and pixels > max_pixels:
        raise JPEGError(f"image size {box.width}x{box.height} ({pixels} pixels) exceeds the "
                        f"limit of {max_pixels} pixels (decompression-bomb guard; raise "
                        "max_pixels to allow it)")
    loaded = load_model(model)
    if box.model_hash != loaded.hash8:
        raise JPEGError(f"unknown .jtc model {box.model!r} (weights {box.model_hash.hex()}); "
                        f"the loaded model is {loaded.name!r} ({loaded.hash8.hex()})")
    if not 1 <= box.level <= loaded.levels:
        raise JPEGError(f"corrupt .jtc header (level {box.level} not in 1..{loaded.levels})")
    if box.channels > loaded.in_channels:
        raise JPEGError(f"corrupt .jtc header ({box.channels} channels from a "
                        f"{loaded.in_channels}-channel model)")
    m, n = int(loaded.net.config["m"]), int(loaded.net.config["n"])
    expected = (m, -(-box.height // STRIDE), -(-box.width // STRIDE))
    shapes = dict(box.tensors)
    if len(box.tensors) != 1 or set(shapes) != {"y"} or shapes["y"] != expected:
        raise JPEGError(f"corrupt .jtc header (latent shapes {box.tensors}, expected y {expected})")
    streams = {s.name: s.data for s in box.streams}
    if len(box.streams) != 2 or set(streams) != {"latents", "escapes"}:
        raise JPEGError(f"corrupt .jtc file (streams {[s.name for s in box.streams]})")
    need = decode_memory(box, m, n)
    if max_memory is not None and need > max_memory:
        raise JPEGError(f"decoding {box.width}x{box.height} needs about {_mb(need)} of memory, "
                        f"more than the budget of {_mb(max_memory)} (max_memory)")
    try:
        q = decode_symbols(streams["latents"], streams["escapes"], expected,
                           loaded.tables[box.level - 1])
        return tiled.synthesis(loaded.net, torch.from_numpy(q), box.level - 1, box.height,
                               box.width, box.channels,
                               offset=torch.from_numpy(loaded.medians[box.level - 1]),
                               tile=tiled.TILE, device=device)
    except MemoryError:
        raise JPEGError(f"not enough memory to decode {box.width}x{box.height} "
                        f"(about {_mb(need)} needed)") from None
    except RuntimeError as exc:
        if "memory" not in str(exc).lower():
            raise
        raise JPEGError(f"not enough memory to decode {box.width}x{box.height} "
                        f"(about {_mb(need)} needed)") from None


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size} bytes"
