"""Encoder-side optimization: choices that make smaller or better standard JPEGs.

Everything here changes *what* the encoder writes (tables, quantized values,
scan scripts), never how a file is laid out (that is ``formats/``). One module
per technique:

- :mod:`~jpegtorch.optimize.tables`: learn base quantization tables for a data
  set and an objective (``jtorch train tables``; the trainer, its data,
  checkpoints and evaluation).
- :mod:`~jpegtorch.optimize.trellis`: trellis quantization (rate-distortion
  optimal quantized values for Huffman coding; numba kernels).
- :mod:`~jpegtorch.optimize.chroma`: chroma planes fitted to the decoder's
  up-sampling, and the luma target that cancels chroma errors.
- :mod:`~jpegtorch.optimize.tuning`: per-image encoding (``trellis=True``,
  ``tune="psnr"|"ssim"``; :func:`~jpegtorch.optimize.tuning.encode_optimized`).
- :mod:`~jpegtorch.optimize.analysis`: the exact pipeline's planes and FDCT
  output that the optimizers start from.

Importing this package is cheap: modules load on first use, and the
torch-free ones (the compiled kernels) never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("analysis", "chroma", "tables", "trellis", "tuning")


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'jpegtorch.optimize' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_MODULES)
