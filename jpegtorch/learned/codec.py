"""Encode and decode images with the learned codec into ``.jtc`` containers.

torch is imported only where a transform runs: every check of a ``.jtc``
file (container, limits, model identity, entropy streams) is torch-free
(:mod:`.modelfile`), so a damaged or hostile file is refused without the
~220 MB and seconds that importing torch costs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import JPEGError
from ..formats import container as jtc
from ..formats.jfif_reader import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS
from .entropy import Tables, decode_symbols, encode_symbols
from .modelfile import CODEC, DEFAULT_WEIGHTS, WEIGHTS_DIR, ModelInfo, model_info, resolve

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import Tensor

    from .model import FactorizedCodec

__all__ = ["DEFAULT_MAX_MEMORY", "DEFAULT_WEIGHTS", "WEIGHTS_DIR", "LoadedModel",
           "decode_image", "decode_memory", "encode_image", "load_model"]

STRIDE = 16  # pixels per latent (model.STRIDE; repeated to keep this module torch-free)


@dataclass
class LoadedModel:
    """A model file ready for coding: the network and :class:`.modelfile.ModelInfo`."""

    net: FactorizedCodec
    info: ModelInfo

    @property
    def medians(self) -> np.ndarray:  # float32 [L, M]
        return self.info.medians

    @property
    def tables(self) -> list[Tables]:
        return self.info.tables

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def hash8(self) -> bytes:
        return self.info.hash8

    @property
    def lambdas(self) -> tuple[float, ...]:
        return self.info.lambdas

    @property
    def meta(self) -> dict[str, Any]:
        return self.info.meta

    @property
    def levels(self) -> int:
        return self.info.levels

    @property
    def in_channels(self) -> int:
        return self.info.in_channels


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, stamp: tuple[int, int]) -> LoadedModel:
    from .export import build_model, load_blob

    info = model_info(path)
    return LoadedModel(net=build_model(load_blob(path)), info=info)


def load_model(path: str | Path | None = None) -> LoadedModel:
    """Load (and cache) a model file with its network (torch); ``None``: the shipped weights."""
    target = resolve(path)
    stat = target.stat()
    return _load_cached(str(target), (stat.st_size, stat.st_mtime_ns))


def _as_chw(image: Tensor) -> Tensor:
    import torch

    if not isinstance(image, torch.Tensor):
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
    import torch

    from . import DEFAULT_LEVEL, tiled

    loaded = load_model(model)
    if level is None:
        level = min(DEFAULT_LEVEL, loaded.levels)
    if not isinstance(level, int) or not 1 <= level <= loaded.levels:
        raise ValueError(f"level must be an integer in 1..{loaded.levels}, got {level!r}")
    image = _as_chw(image)
    channels, height, width = image.shape
    if loaded.in_channels == 1:
        channels = 1
    with torch.no_grad():
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
    working set of the synthesis transform: six float32 feature maps of ``n``
    channels at half resolution, its largest stage (the transposed
    convolution's output, oneDNN's reordered copies of its input and output,
    GDN's temporaries; measured ~110 MB at ``n = 80``), plus the tile's float32
    output. The interpreter, torch and the model weights are not counted (as
    libjpeg's ``max_memory_to_use`` does not count the program).
    """
    from . import tiled  # torch-free at import

    rows, cols = -(-box.height // STRIDE), -(-box.width // STRIDE)
    tile_rows = rows if tiled.TILE is None else min(tiled.TILE, rows)
    tile_cols = cols if tiled.TILE is None else min(tiled.TILE, cols)
    # the half-resolution stage of one tile: its 8 x 8 per latent and one more on each side
    half = (STRIDE // 2 * tile_rows + 2) * (STRIDE // 2 * tile_cols + 2)
    working = 6 * 4 * n * half + 4 * 3 * 4 * half
    return box.channels * box.height * box.width + (4 * m + 8) * rows * cols + working


def decode_image(data: bytes, *, model: str | Path | None = None,
                 device: str | torch.device | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 max_memory: int | None = DEFAULT_MAX_MEMORY) -> Tensor:
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
            ``None``: no budget). Same name, meaning and default (1 GiB) as
            the JPEG decoder's, like libjpeg's ``max_memory_to_use``.

    Every check runs before torch is imported (a refused file costs no torch).
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
    info = model_info(model)
    if box.model_hash != info.hash8:
        raise JPEGError(f"unknown .jtc model {box.model!r} (weights {box.model_hash.hex()}); "
                        f"the loaded model is {info.name!r} ({info.hash8.hex()})")
    if not 1 <= box.level <= info.levels:
        raise JPEGError(f"corrupt .jtc header (level {box.level} not in 1..{info.levels})")
    if box.channels > info.in_channels:
        raise JPEGError(f"corrupt .jtc header ({box.channels} channels from a "
                        f"{info.in_channels}-channel model)")
    expected = (info.m, -(-box.height // STRIDE), -(-box.width // STRIDE))
    shapes = dict(box.tensors)
    if len(box.tensors) != 1 or set(shapes) != {"y"} or shapes["y"] != expected:
        raise JPEGError(f"corrupt .jtc header (latent shapes {box.tensors}, expected y {expected})")
    streams = {s.name: s.data for s in box.streams}
    if len(box.streams) != 2 or set(streams) != {"latents", "escapes"}:
        raise JPEGError(f"corrupt .jtc file (streams {[s.name for s in box.streams]})")
    need = decode_memory(box, info.m, info.n)
    if max_memory is not None and need > max_memory:
        raise JPEGError(f"decoding {box.width}x{box.height} needs about {_mb(need)} of memory, "
                        f"more than the budget of {_mb(max_memory)} (max_memory)")
    try:
        q = decode_symbols(streams["latents"], streams["escapes"], expected,
                           info.tables[box.level - 1])
        # every check passed: now the synthesis transform (torch)
        import torch

        from . import tiled

        loaded = load_model(model)
        with torch.no_grad():
            return tiled.synthesis(loaded.net, torch.from_numpy(q), box.level - 1, box.height,
                                   box.width, box.channels,
                                   offset=torch.from_numpy(info.medians[box.level - 1]),
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
