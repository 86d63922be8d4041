"""Entropy coding of integer latents with constriction's range coder.

Every channel has an integer frequency table (see :mod:`.export`): table ``c``
covers the values ``offset[c] .. offset[c] + length[c] - 2``, and its last
symbol is an *escape*. A value outside the table is coded as the escape in the
main stream, and its actual value goes to a second stream with fixed uniform
models (side, Elias-gamma length, mantissa). All models are built from
integers (or exact small integers as float64), so the encoder and decoder use
bit-identical models on any machine.

Symbol order: channel by channel, each channel in raster order; escapes in the
same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import constriction
import numpy as np

from ..errors import JPEGError

MAX_ESCAPE_BITS = 23  # |value| beyond the table: below 2**23 (Uniform needs < 2**24)


@dataclass
class Tables:
    """Integer CDF tables of one level.

    ``offsets``/``lengths``: ``int32 [M]``; ``freqs``: ``int32 [sum(lengths)]``.
    """

    offsets: np.ndarray
    lengths: np.ndarray
    freqs: np.ndarray
    _models: list | None = field(default=None, repr=False)

    def models(self) -> list:
        """One constriction ``Categorical`` per channel (built once per instance)."""
        if self._models is None:
            starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
            self._models = [
                constriction.stream.model.Categorical(
                    self.freqs[s:s + n].astype(np.float64), perfect=False)
                for s, n in zip(starts.tolist(), self.lengths.tolist(), strict=True)
            ]
        return self._models


def _to_bytes(words: np.ndarray) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


def _from_bytes(data: bytes, what: str) -> np.ndarray:
    if len(data) % 4:
        raise JPEGError(f"corrupt .jtc stream {what!r} (length not a multiple of 4)")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def encode_symbols(q: np.ndarray, tables: Tables) -> tuple[bytes, bytes]:
    """Range-code integer latents ``q`` (``int32 [M, H, W]``) -> (latents, escapes) bytes."""
    m = q.shape[0]
    if m != tables.offsets.shape[0]:
        raise ValueError("latent channels do not match the tables")
    flat = q.reshape(m, -1).astype(np.int64)
    rel = flat - tables.offsets[:, None].astype(np.int64)
    escape = (tables.lengths - 1)[:, None].astype(np.int64)
    outside = (rel < 0) | (rel >= escape)
    symbols = np.where(outside, escape, rel).astype(np.int32)
    main = constriction.stream.queue.RangeEncoder()
    for c, model in enumerate(tables.models()):
        main.encode(np.ascontiguousarray(symbols[c]), model)
    extra = constriction.stream.queue.RangeEncoder()
    if outside.any():
        uniform = constriction.stream.model.Uniform
        rows, cols = np.nonzero(outside)
        for c, i in zip(rows.tolist(), cols.tolist(), strict=True):
            value = int(flat[c, i])
            low = int(tables.offsets[c])
            high = low + int(tables.lengths[c]) - 2
            side, dist = (0, low - value - 1) if value < low else (1, value - high - 1)
            nbits = (dist + 1).bit_length() - 1
            if nbits > MAX_ESCAPE_BITS:
                raise JPEGError("latent value out of the codable range")
            extra.encode(side, uniform(2))
            extra.encode(nbits, uniform(MAX_ESCAPE_BITS + 1))
            if nbits:
                extra.encode((dist + 1) - (1 << nbits), uniform(1 << nbits))
    return _to_bytes(main.get_compressed()), _to_bytes(extra.get_compressed())


def decode_symbols(latents: bytes, escapes: bytes, shape: tuple[int, int, int],
                   tables: Tables) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: -> ``int32 [M, H, W]``.

    Raises ``JPEGError`` if the streams cannot be decoded (damaged data that
    passed the CRCs, or a mismatched model).
    """
    m, h, w = shape
    if m != tables.offsets.shape[0]:
        raise JPEGError(f"latent tensor has {m} channels, the model {tables.offsets.shape[0]}")
    try:
        main = constriction.stream.queue.RangeDecoder(_from_bytes(latents, "latents"))
        symbols = np.empty((m, h * w), np.int64)
        for c, model in enumerate(tables.models()):
            symbols[c] = main.decode(model, h * w)
        escape = (tables.lengths - 1)[:, None].astype(np.int64)
        values = symbols + tables.offsets[:, None].astype(np.int64)
        outside = symbols == escape
        if outside.any():
            extra = constriction.stream.queue.RangeDecoder(_from_bytes(escapes, "escapes"))
            uniform = constriction.stream.model.Uniform
            rows, cols = np.nonzero(outside)
            for c, i in zip(rows.tolist(), cols.tolist(), strict=True):
                side = int(extra.decode(uniform(2)))
                nbits = int(extra.decode(uniform(MAX_ESCAPE_BITS + 1)))
                dist = (1 << nbits) - 1
                if nbits:
                    dist += int(extra.decode(uniform(1 << nbits)))
                low = int(tables.offsets[c])
                high = low + int(tables.lengths[c]) - 2
                values[c, i] = low - 1 - dist if side == 0 else high + 1 + dist
    except JPEGError:
        raise
    except Exception as exc:  # constriction reports broken streams as generic errors
        raise JPEGError(f"corrupt .jtc entropy stream ({type(exc).__name__})") from exc
    return values.reshape(m, h, w).astype(np.int32)
