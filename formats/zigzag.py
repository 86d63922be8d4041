"""The JPEG zigzag scan order of an 8×8 block (ITU-T T.81, Figure A.6).

Blocks in :class:`jpegtorch.Coefficients` are stored in natural (row-major)
order; DQT segments and entropy-coded data use zigzag order.

- ``ZIGZAG[k]`` (alias ``ZIGZAG_TO_NATURAL``) is the natural index
  (``row * 8 + col``) of the ``k``-th coefficient in zigzag order, so
  ``block.reshape(64)[ZIGZAG]`` gives the zigzag sequence;
- ``NATURAL_TO_ZIGZAG[n]`` is the zigzag position of natural index ``n``, so
  ``zz[NATURAL_TO_ZIGZAG].reshape(8, 8)`` gives the natural block back.

The constants are plain tuples (immutable); the ``*_np`` helpers return fresh
numpy arrays.
"""

from __future__ import annotations

import numpy as np


def _zigzag_order() -> tuple[int, ...]:
    order: list[int] = []
    for s in range(15):  # anti-diagonals: row + col = s
        cells = [(r, s - r) for r in range(8) if 0 <= s - r < 8]
        if s % 2 == 0:  # even diagonals run up-right (row decreasing)
            cells.reverse()
        order.extend(r * 8 + c for r, c in cells)
    return tuple(order)


ZIGZAG: tuple[int, ...] = _zigzag_order()
"""Zigzag position -> natural index (length 64)."""

ZIGZAG_TO_NATURAL: tuple[int, ...] = ZIGZAG

NATURAL_TO_ZIGZAG: tuple[int, ...] = tuple(ZIGZAG.index(n) for n in range(64))
"""Natural index -> zigzag position (length 64)."""


def zigzag_np() -> np.ndarray:
    """``ZIGZAG`` as a new int64 numpy array of shape ``[64]``."""
    return np.array(ZIGZAG, dtype=np.int64)


def natural_to_zigzag_np() -> np.ndarray:
    """``NATURAL_TO_ZIGZAG`` as a new int64 numpy array of shape ``[64]``."""
    return np.array(NATURAL_TO_ZIGZAG, dtype=np.int64)


def to_zigzag(block: np.ndarray) -> np.ndarray:
    """Natural ``[..., 8, 8]`` blocks -> zigzag ``[..., 64]`` (same dtype)."""
    block = np.asarray(block)
    return block.reshape(*block.shape[:-2], 64)[..., list(ZIGZAG)]


def from_zigzag(zz: np.ndarray) -> np.ndarray:
    """Zigzag ``[..., 64]`` sequences -> natural ``[..., 8, 8]`` blocks (same dtype)."""
    zz = np.asarray(zz)
    return zz[..., list(NATURAL_TO_ZIGZAG)].reshape(*zz.shape[:-1], 8, 8)
