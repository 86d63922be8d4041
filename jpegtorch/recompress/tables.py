"""The model's prior count tables (learned offline, shipped with the package).

``jrc_tables.npz`` holds three uint16 arrays, ``nz`` ``[NZ_CONTEXTS, 64]``,
``ac`` ``[AC_CONTEXTS, VALUE_SYMBOLS]`` and ``dc`` ``[DC_CONTEXTS,
VALUE_SYMBOLS]``: per context, symbol counts gathered by
:mod:`jpegtorch.recompress.train` on ``../shared/data/train`` (never Kodak),
scaled down so that a file's own statistics soon outweigh them. They are
integers, so encoder and decoder build the same distributions everywhere;
their SHA-256 (with the model name) goes into every container, and a
container made with other tables is refused rather than mis-decoded.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

import numpy as np

from . import model as M
from .coder import Tables

MODEL_NAME = "jrc-2"
TABLES_FILE = "jrc_tables.npz"


def _shapes() -> dict[str, tuple[int, int]]:
    return {"nz": (M.NZ_CONTEXTS, M.NZ_SYMBOLS), "ac": (M.AC_CONTEXTS, M.VALUE_SYMBOLS),
            "dc": (M.DC_CONTEXTS, M.VALUE_SYMBOLS)}


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Tables, bytes]:
    path = resources.files("jpegtorch.recompress").joinpath(TABLES_FILE)
    digest = hashlib.sha256(MODEL_NAME.encode())
    arrays = {}
    if path.is_file():
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
            for name, shape in _shapes().items():
                a = np.asarray(npz[name], dtype=np.uint16)
                if a.shape != shape:
                    raise RuntimeError(f"{TABLES_FILE}: table {name} has shape {a.shape}, "
                                       f"the model needs {shape}")
                arrays[name] = a
    else:  # a build without trained tables: flat priors (still exact, less compact)
        arrays = {name: np.ones(shape, dtype=np.uint16) for name, shape in _shapes().items()}
    for name in ("nz", "ac", "dc"):
        digest.update(name.encode() + arrays[name].astype("<u2").tobytes())
    tables = Tables.from_counts(arrays["nz"], arrays["ac"], arrays["dc"])
    for a in (tables.nz, tables.ac, tables.dc):
        a.flags.writeable = False
    return tables, digest.digest()[:8]


def load_tables() -> Tables:
    """The prior tables (read-only arrays; the coder works on a copy)."""
    return _load()[0]


def model_hash() -> bytes:
    """8 bytes identifying the model and its tables (stored in every container)."""
    return _load()[1]
