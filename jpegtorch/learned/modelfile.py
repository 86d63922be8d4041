"""Learned-codec model files without torch: identity, levels and entropy tables.

A model file (written by :func:`.export.export_model`) is a ``torch.save``
archive: a zip holding ``<name>/data.pkl`` (a pickle of plain dicts, lists,
strings and numbers whose tensors point to raw storages by key) and
``<name>/data/<key>`` (each storage's bytes, little-endian). This module reads
it with numpy and a restricted unpickler that knows only the globals such a
file uses (``torch._utils._rebuild_tensor_v2``, ``torch.<Type>Storage``,
``collections.OrderedDict``), so that everything a ``.jtc`` decoder checks
before it decodes (model hash, levels, channels, tables) needs no torch:
``jtorch decode`` refuses a hostile file in a fraction of a second and
imports torch only for the synthesis transform of a file that passed.

:func:`content_hash` is the one definition of a model's identity (the
container stores its first 8 bytes); it hashes numpy arrays and torch tensors
alike.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import JPEGError
from .entropy import Tables

FORMAT = "jpegtorch-learned-model"
FORMAT_VERSION = 1
CODEC = "factorized-gain"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "learned_factorized.pt"

# torch's storage classes -> numpy dtypes (little-endian, as torch writes them)
_STORAGES = {
    "HalfStorage": "<f2", "FloatStorage": "<f4", "DoubleStorage": "<f8",
    "ByteStorage": "u1", "CharStorage": "i1", "ShortStorage": "<i2", "IntStorage": "<i4",
    "LongStorage": "<i8", "BoolStorage": "?",
}
# numpy dtypes -> torch's names, as content_hash spells them (``str(tensor.dtype)``)
_TORCH_NAMES = {
    "float16": "torch.float16", "float32": "torch.float32", "float64": "torch.float64",
    "uint8": "torch.uint8", "int8": "torch.int8", "int16": "torch.int16",
    "int32": "torch.int32", "int64": "torch.int64", "bool": "torch.bool",
}


class _StorageType:
    """Stands for ``torch.<Type>Storage`` in the pickle: its numpy dtype."""

    def __init__(self, dtype: str) -> None:
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_: Any) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` in numpy: a strided view, copied."""
    count = 1
    for n in size:
        count *= n
    if count == 0:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if offset < 0 or any(s < 0 for s in stride) or last >= storage.size:
        raise pickle.UnpicklingError("tensor outside its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * item for s in stride])
    return np.array(view)


class _Unpickler(pickle.Unpickler):
    """Only the globals a model file uses; storages read from the zip."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError("unexpected persistent id")
        _, kind, key, _location, numel = pid
        raw = self.archive.read(f"{self.prefix}data/{key}")
        storage = np.frombuffer(raw, dtype=kind.dtype)
        if storage.size < int(numel):
            raise pickle.UnpicklingError("short storage")
        return storage


def read_blob(path: Path | str) -> dict[str, Any]:
    """The content of a model file, tensors as numpy arrays (no torch).

    Raises ``JPEGError`` when the file is not a learned-codec model file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise pickle.UnpicklingError("not a torch.save archive")
            prefix = pickles[0][: -len("data.pkl")]
            order = archive.read(f"{prefix}byteorder").decode() \
                if f"{prefix}byteorder" in archive.namelist() else "little"
            if order != "little":
                raise pickle.UnpicklingError(f"{order}-endian storages")
            blob = _Unpickler(archive.read(pickles[0]), archive, prefix).load()
    except FileNotFoundError:
        raise
    except Exception as exc:  # zip/pickle errors of all kinds
        raise JPEGError(f"{path}: not a learned-codec model file ({type(exc).__name__})") \
            from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise JPEGError(f"{path}: not a learned-codec model file")
    if blob.get("format_version") != FORMAT_VERSION or blob.get("codec") != CODEC:
        raise JPEGError(f"{path}: unsupported model file version or codec")
    return blob


def content_hash(blob: dict[str, Any]) -> bytes:
    """SHA-256 over a model file's canonical content (names, dtypes, shapes, bytes).

    Independent of how ``torch.save`` lays the file out; the container stores
    its first 8 bytes to tie a ``.jtc`` file to the weights that made it.
    Tensors may be torch tensors or numpy arrays (the same bytes hash alike).
    """
    digest = hashlib.sha256()

    def feed(name: str, value: Any) -> None:
        digest.update(name.encode())
        if hasattr(value, "detach"):  # a torch tensor
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, np.ndarray):
            a = np.ascontiguousarray(value)
            digest.update(f"{_TORCH_NAMES[a.dtype.name]}{tuple(a.shape)}".encode())
            digest.update(a.tobytes() if a.size else b"")
        elif isinstance(value, dict):
            for key in sorted(value):
                feed(f"{name}/{key}", value[key])
        else:
            digest.update(json.dumps(value, sort_keys=True).encode())

    for key in sorted(blob):
        if key != "meta":
            feed(key, blob[key])
    return digest.digest()


@dataclass
class ModelInfo:
    """What a ``.jtc`` decoder needs to check a file against a model, without torch.

    ``medians``: float32 ``[L, M]``; ``tables``: one :class:`.entropy.Tables`
    per level; ``hash8``: the first 8 bytes of :func:`content_hash`.
    """

    path: Path
    name: str
    hash8: bytes
    n: int
    m: int
    in_channels: int
    medians: np.ndarray
    tables: list[Tables]
    lambdas: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return len(self.tables)


@functools.lru_cache(maxsize=4)
def _info_cached(path: str, stamp: tuple[int, int]) -> ModelInfo:
    blob = read_blob(path)
    try:
        cfg = blob["config"]
        n, m, in_channels = int(cfg["n"]), int(cfg["m"]), int(cfg["in_channels"])
        offsets = np.asarray(blob["cdf_offsets"], np.int32)
        lengths = np.asarray(blob["cdf_lengths"], np.int32)
        freqs = np.asarray(blob["cdf_freqs"], np.int32)
        medians = np.asarray(blob["medians"], np.float32)
        lambdas = tuple(float(v) for v in blob["lambdas"])
        meta = json.loads(blob.get("meta") or "{}")
    except (KeyError, TypeError, ValueError) as exc:
        raise JPEGError(f"{path}: incomplete learned-codec model file ({exc})") from None
    levels = offsets.shape[0] if offsets.ndim == 2 else 0
    if (levels < 1 or offsets.shape != (levels, m) or lengths.shape != (levels, m)
            or medians.shape != (levels, m) or (lengths < 2).any()
            or int(lengths.sum()) != freqs.size or (freqs < 1).any()):
        raise JPEGError(f"{path}: inconsistent CDF tables")
    tables, start = [], 0
    for level in range(levels):
        count = int(lengths[level].sum())
        tables.append(Tables(offsets[level], lengths[level], freqs[start:start + count]))
        start += count
    name = str(meta.get("name") or f"{CODEC}-n{n}-m{m}-c{in_channels}")
    return ModelInfo(path=Path(path), name=name, hash8=content_hash(blob)[:8], n=n, m=m,
                     in_channels=in_channels, medians=medians, tables=tables,
                     lambdas=lambdas, meta=meta)


def resolve(path: str | Path | None) -> Path:
    """The model file for ``path`` (``None``: the shipped weights); must exist."""
    target = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not target.exists():
        raise JPEGError(f"learned-codec weights not found: {target}")
    return target.resolve()


def model_info(path: str | Path | None = None) -> ModelInfo:
    """Identity and tables of a model file (``None``: the shipped weights), cached.

    Torch-free. The cache is keyed on the file's path, size and modification
    time, so a rewritten file is read again.
    """
    target = resolve(path)
    stat = target.stat()
    return _info_cached(str(target), (stat.st_size, stat.st_mtime_ns))
