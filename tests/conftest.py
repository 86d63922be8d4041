"""Shared test helpers: reference encodes/decodes through Pillow (libjpeg-turbo)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def load_sample(name: str = "kodim05_384x256.png", mode: str = "RGB") -> np.ndarray:
    """A sample image as ``[H, W, 3]`` (or ``[H, W]`` for mode "L") uint8."""
    return np.array(Image.open(SAMPLES / name).convert(mode))


def pillow_jpeg(array: np.ndarray, quality: int, subsampling: str = "4:2:0",
                **kwargs) -> bytes:
    """Pillow's (libjpeg-turbo's) JPEG bytes of an ``[H, W(, 3)]`` uint8 array."""
    buffer = io.BytesIO()
    options = dict(quality=quality, **kwargs)
    if array.ndim == 3:
        options["subsampling"] = PIL_SUBSAMPLING[subsampling]
    Image.fromarray(array).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def pillow_decode(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)))


def pillow_roundtrip(array: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    return pillow_decode(pillow_jpeg(array, quality, subsampling))


def to_chw(array: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]``/``[H, W]`` uint8 -> ``[C, H, W]`` uint8 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    return t.permute(2, 0, 1).contiguous() if t.dim() == 3 else t[None].contiguous()


def to_hwc(tensor: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` uint8 -> ``[H, W, 3]`` or ``[H, W]`` array."""
    array = tensor.detach().cpu().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def float_to_uint8(t: torch.Tensor) -> torch.Tensor:
    return (t.detach() * 255).round().clamp(0, 255).to(torch.uint8)


def synthetic(height: int, width: int, seed: int = 0, kind: str = "mixed") -> np.ndarray:
    """A deterministic ``[H, W, 3]`` uint8 test image: gradients, edges and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    base = np.stack([
        128 + 100 * np.sin(xx / 7.0 + yy / 13.0),
        (xx * 3 + yy * 5) % 256,
        255 * ((xx // 5 + yy // 3) % 2),
    ], axis=-1)
    base += rng.normal(0, 12, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


# The CLI's one-time "compiling the codec's kernels" notice depends on numba's
# cache, not on the command: keep it out of the output the tests compare
# (tests/test_cli_batch.py checks the notice itself in a fresh cache).
os.environ.setdefault("JTORCH_NO_COMPILE_NOTICE", "1")

# Tests run two xdist workers on small tensors: one torch thread each avoids
# oversubscribing the cores (torch's barrier stalls made some tests 15x slower).
torch.set_num_threads(1)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _no_global_autograd_leak():
    """Library and CLI code must not switch autograd off globally: a command run
    in-process (CliRunner, notebooks) would silently break later training."""
    yield
    leaked = not torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    assert not leaked, "the test left torch.is_grad_enabled() == False"
