"""Encoder-side optimization: choices that make smaller or better standard JPEGs.

Everything here changes *what* the encoder writes (tables, quantized values,
scan scripts), never how a file is laid out (that is ``formats/``). One module
per technique:

- :mod:`~jpegtorch.optimize.tables`: learn base quantization tables for a data
  set and an objective (``jtorch train tables``; the trainer, its data,
  checkpoints and evaluation).

Importing this package is cheap: modules load on first use, and the
torch-free ones (the compiled kernels) never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("tables",)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'jpegtorch.optimize' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(_MODULES)
