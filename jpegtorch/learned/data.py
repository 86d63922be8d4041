"""Training data for the learned codec: image folders and MNIST IDX files.

Images are decoded once into memory as ``uint8`` arrays ``[H, W, C]`` (optionally
cached to a file) and random crops are drawn from them per step.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def find_mnist(directory: Path) -> Path | None:
    """The MNIST-style IDX image file in ``directory`` (``*images-idx3-ubyte[.gz]``), if any."""
    for path in sorted(directory.glob("*images*idx3-ubyte*")):
        return path
    return None


def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX3 image file (optionally gzipped) -> ``uint8 [N, H, W]``."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 16 or raw[:4] != b"\x00\x00\x08\x03":
        raise ValueError(f"{path}: not an IDX3 uint8 image file")
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    if len(raw) < 16 + n * h * w:
        raise ValueError(f"{path}: truncated IDX file")
    return np.frombuffer(raw, np.uint8, n * h * w, 16).reshape(n, h, w)


def load_images(directory: Path, scales: tuple[float, ...] = (1.0, 0.7, 0.5),
                min_side: int = 128) -> list[np.ndarray]:
    """Every image under ``directory`` as RGB ``uint8 [H, W, 3]``, at several scales.

    Downscaling (Lanczos) removes noise and JPEG block artefacts, and brings
    megapixel photos closer to the statistics of Kodak-sized images. Versions
    whose shorter side would fall below ``min_side`` are skipped.
    """
    from PIL import Image

    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images found under {directory}")
    images = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB")
            for scale in scales:
                w, h = round(im.width * scale), round(im.height * scale)
                if scale != 1.0 and min(w, h) < min_side:
                    continue
                version = im if scale == 1.0 else im.resize((w, h), Image.Resampling.LANCZOS)
                images.append(np.asarray(version, dtype=np.uint8).copy())
    return images


class CropSampler:
    """Random crops from a list of ``uint8 [H, W, C]`` arrays.

    ``sample(rng, batch, crop)`` -> float32 ``[B, C, crop, crop]`` in [0, 1],
    with random horizontal flips. Images smaller than ``crop`` are padded
    (edge replication).
    """

    def __init__(self, images: list[np.ndarray]) -> None:
        if not images:
            raise ValueError("no training images")
        self.images = [im if im.ndim == 3 else im[:, :, None] for im in images]
        self.channels = self.images[0].shape[2]

    def sample(self, rng: np.random.Generator, batch: int, crop: int) -> Tensor:
        out = np.empty((batch, crop, crop, self.channels), np.uint8)
        for i in range(batch):
            im = self.images[int(rng.integers(len(self.images)))]
            h, w = im.shape[:2]
            if h < crop or w < crop:
                im = np.pad(im, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)),
                            mode="edge")
                h, w = im.shape[:2]
            top = int(rng.integers(h - crop + 1))
            left = int(rng.integers(w - crop + 1))
            patch = im[top:top + crop, left:left + crop]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def load_training_set(directory: Path, cache: Path | None = None) -> tuple[list[np.ndarray], str]:
    """Images for training from ``directory``: ``(arrays, kind)``.

    ``kind`` is ``"mnist"`` (gray ``[32, 32, 1]`` digits, zero-padded from
    28×28) when the folder holds an IDX image file, else ``"rgb"``.
    """
    if cache is not None and cache.exists():
        blob = torch.load(cache, weights_only=True)
        kind = "mnist" if int(blob["kind"]) == 1 else "rgb"
        return [t.numpy() for t in blob["images"]], kind
    idx = find_mnist(directory)
    if idx is not None:
        digits = read_idx_images(idx)
        padded = np.zeros((digits.shape[0], 32, 32, 1), np.uint8)
        padded[:, 2:30, 2:30, 0] = digits
        images, kind = list(padded), "mnist"
    else:
        images, kind = load_images(directory), "rgb"
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"images": [torch.from_numpy(np.ascontiguousarray(a)) for a in images],
                    "kind": torch.tensor(1 if kind == "mnist" else 0)}, cache)
    return images, kind
