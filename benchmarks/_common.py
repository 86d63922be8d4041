"""Shared helpers for the benchmarks (run by hand; not part of the test suite)."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def kodak_paths(required: bool = False) -> list[Path]:
    """The 24 Kodak PNGs from ../shared/data/kodak (empty list if absent)."""
    paths = sorted(KODAK.glob("kodim*.png"))
    if required and not paths:
        raise SystemExit(f"Kodak images not found in {KODAK} (../shared/data/kodak)")
    return paths


def load_rgb(path: Path, landscape: bool = True) -> np.ndarray:
    """``[H, W, 3]`` uint8; portrait Kodak images are rotated to 768×512 if asked."""
    array = np.array(Image.open(path).convert("RGB"))
    if landscape and array.shape[0] > array.shape[1]:
        array = np.ascontiguousarray(np.rot90(array))
    return array


def pillow_roundtrip(array: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    return np.array(Image.open(io.BytesIO(buffer.getvalue())))


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, peak: float = 255.0) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def timed(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    if sync:
        sync()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if sync:
        sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(fns: dict[str, Callable[[], object]], repeats: int,
                sync: Callable[[], None] | None = None) -> dict[str, dict[str, float]]:
    """Run each function ``repeats`` times, interleaved (after one warm-up each);
    return median wall and CPU seconds per name."""
    for fn in fns.values():
        fn()
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w, c = timed(fn, sync)
            walls[name].append(w)
            cpus[name].append(c)
    return {k: {"wall": statistics.median(walls[k]), "cpu": statistics.median(cpus[k])}
            for k in fns}
