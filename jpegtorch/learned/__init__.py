"""The learned image codec: a GDN autoencoder with a factorized prior, in ``.jtc`` files.

Public API (torch is imported on first use, not by ``import jpegtorch.learned``):

- :func:`encode_image` ``(uint8 [C, H, W], level) -> bytes`` of a ``.jtc`` file;
- :func:`decode_image` ``(bytes) -> uint8 [C, H, W]``;
- :data:`LEVELS` (the shipped quality levels, 1 = smallest file) and
  :data:`DEFAULT_LEVEL`;
- :func:`load_model` (a model file, cached), :func:`train` / :class:`TrainConfig`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
DEFAULT_LEVEL: int = 4

_LAZY = {
    "encode_image": "codec",
    "decode_image": "codec",
    "load_model": "codec",
    "DEFAULT_WEIGHTS": "codec",
    "FactorizedCodec": "model",
    "TrainConfig": "train",
    "train": "train",
    "export_model": "export",
}

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_WEIGHTS",
    "LEVELS",
    "FactorizedCodec",
    "TrainConfig",
    "decode_image",
    "encode_image",
    "export_model",
    "load_model",
    "train",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jpegtorch.learned' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:  # pragma: no cover
    from .codec import DEFAULT_WEIGHTS, decode_image, encode_image, load_model
    from .export import export_model
    from .model import FactorizedCodec
    from .train import TrainConfig, train
