"""jpegtorch: a libjpeg-turbo-exact, differentiable JPEG engine in PyTorch.

Importing the package is cheap: the public names below are loaded on first
use (PEP 562), so ``jtorch --help`` never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import JPEGError

# public name -> "module:attribute" (relative to this package)
_LAZY: dict[str, str] = {
    "jpeg": "pipeline:jpeg",
    "encode": "pipeline:encode",
    "decode": "pipeline:decode",
    "JPEG": "module:JPEG",
    "RandomJPEG": "augment:RandomJPEG",
    "Coefficients": "coefficients:Coefficients",
    "quality_to_tables": "quantize:quality_to_tables",
    "ANNEX_K_LUMA": "quantize:ANNEX_K_LUMA",
    "ANNEX_K_CHROMA": "quantize:ANNEX_K_CHROMA",
    "MODES": "_arith:MODES",
    # JFIF writer (formats/)
    "encode_jpeg": "formats.jfif_writer:encode_jpeg",
    "write_coefficients": "formats.jfif_writer:write_coefficients",
    # lossless recompression (recompress/, torch-free)
    "recompress_jpeg": "recompress:recompress_jpeg",
    "restore_jpeg": "recompress:restore_jpeg",
    # JPEG reader (formats/)
    "decode_jpeg": "formats.jfif_reader:decode_jpeg",
    "read_coefficients": "formats.jfif_reader:read_coefficients",
}

__all__ = [
    "ANNEX_K_CHROMA",
    "ANNEX_K_LUMA",
    "JPEG",
    "MODES",
    "Coefficients",
    "JPEGError",
    "RandomJPEG",
    "__version__",
    "decode",
    "decode_jpeg",
    "encode",
    "encode_jpeg",
    "jpeg",
    "quality_to_tables",
    "read_coefficients",
    "recompress_jpeg",
    "restore_jpeg",
    "write_coefficients",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)  # a submodule
        raise AttributeError(f"module 'jpegtorch' has no attribute {name!r}")
    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(f".{module_name}", __name__), attr)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._arith import MODES
    from .augment import RandomJPEG
    from .coefficients import Coefficients
    from .formats.jfif_reader import decode_jpeg, read_coefficients
    from .formats.jfif_writer import encode_jpeg, write_coefficients
    from .module import JPEG
    from .pipeline import decode, encode, jpeg
    from .quantize import ANNEX_K_CHROMA, ANNEX_K_LUMA, quality_to_tables
    from .recompress import recompress_jpeg, restore_jpeg
