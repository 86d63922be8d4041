"""Lossless recompression of JPEG files (``recompress_jpeg`` / ``restore_jpeg``).

A JPEG file's quantized coefficients are coded with a context model and
constriction's range coder into the ``.jtc`` container (codec
``jpeg-recompress``); everything else in the file is kept as it is, and
``restore_jpeg`` gives the original file back byte for byte. Nothing here
imports torch.

- :mod:`.api`: the two functions, the container streams, verification;
- :mod:`.coder`: the wave-by-wave driver of constriction;
- :mod:`.model`: the contexts (compiled kernels);
- :mod:`.tables`: the prior count tables shipped with the package;
- :mod:`.train`: how those tables are made.

The byte layout around the scans lives in :mod:`jpegtorch.formats.jpeg_layout`.
"""

from .api import (
    CODEC,
    RecompressInfo,
    RecompressWarning,
    recompress_info,
    recompress_jpeg,
    restore_jpeg,
)

__all__ = ["CODEC", "RecompressInfo", "RecompressWarning", "recompress_info",
           "recompress_jpeg", "restore_jpeg"]
