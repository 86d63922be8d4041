"""Default resource limits of the decoders (one definition for the library and the CLI).

Import-free on purpose: the CLI reads these for its ``--help`` defaults without
importing numpy, numba, Pillow or torch.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_MEMORY", "DEFAULT_MAX_PIXELS"]

DEFAULT_MAX_PIXELS = 89_478_485
"""Default pixel limit: Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``,
1 GiB / 4 / 3 pixels)."""

DEFAULT_MAX_MEMORY = 1 << 30
"""Default ``max_memory`` (1 GiB): enough for an 89-megapixel (the default
pixel limit) progressive 4:4:4 file, whose coefficients (537 MB) and RGB
output (268 MB) are the largest legitimate allocations at that limit."""
