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

import math
from dataclasses import dataclass, field
from typing import Any

import constriction
import numpy as np

from ..errors import JPEGError

PRECISION = 16  # the tables' frequencies sum to 2**PRECISION (see export.py)
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


# Bits every escaped value costs in the escape stream at least: its side (1 bit)
# and its Elias-gamma length (log2(MAX_ESCAPE_BITS + 1) bits).
ESCAPE_MIN_BITS = 1.0 + math.log2(MAX_ESCAPE_BITS + 1)
# The range coder's slack: its 64-bit state can hold up to two words' worth of
# information that no emitted word has paid for yet (see min_stream_bits).
_SLACK_BITS = 64


def min_symbol_bits(tables: Tables) -> np.ndarray:
    """``float64 [M]``: a lower bound on the bits any one symbol of each channel costs.

    constriction quantizes a table's probabilities ``f / sum(f)`` to its
    fixed-point precision (24 bits) by floor differences of the scaled CDF plus
    one per symbol, so no symbol gets more than ``f / sum(f) + 2**-23``; the
    bound allows ``2**-15`` (sound for any precision of 16 bits or more). No
    symbol of channel ``c`` then costs less than
    ``-log2(max f_c / sum f_c + 2**-15)`` bits.
    """
    starts = np.concatenate([[0], np.cumsum(tables.lengths)[:-1]]).astype(np.int64)
    freqs = tables.freqs.astype(np.float64)
    peak = np.maximum.reduceat(freqs, starts) / np.add.reduceat(freqs, starts)
    return -np.log2(np.minimum(peak + 2.0**-15, 1.0))


def min_stream_bits(shape: tuple[int, int, int], tables: Tables) -> float:
    """Fewest bits a ``latents`` stream holding an ``int32 [M, H, W]`` latent can have.

    The range coder starts with a 64-bit range, narrows it by each symbol's
    probability and emits a 32-bit word whenever it falls below 2**32; so a
    stream of ``n`` words holds at most ``32 n + 64`` bits of information, and
    ``H * W * sum(min_symbol_bits)`` is the least information of any latent of
    that shape. Checked before allocating anything for the latent.
    """
    _, h, w = shape
    return float(h) * float(w) * float(min_symbol_bits(tables).sum())


def encode_symbols(q: np.ndarray, tables: Tables) -> tuple[bytes, bytes]:
    """Range-code integer latents ``q`` (``int32 [M, H, W]``) -> (latents, escapes) bytes."""
    m = q.shape[0]
    if m != tables.offsets.shape[0]:
        raise ValueError("latent channels do not match the tables")
    main = constriction.stream.queue.RangeEncoder()
    extra = constriction.stream.queue.RangeEncoder()
    flat = q.reshape(m, -1)
    for c, model in enumerate(tables.models()):  # one channel at a time: bounded temporaries
        rel = flat[c].astype(np.int64) - int(tables.offsets[c])
        escape = int(tables.lengths[c]) - 1
        outside = (rel < 0) | (rel >= escape)
        symbols = np.where(outside, escape, rel).astype(np.int32)
        main.encode(symbols, model)
        if outside.any():
            _encode_escapes(extra, flat[c][outside], int(tables.offsets[c]),
                            int(tables.lengths[c]))
    return _to_bytes(main.get_compressed()), _to_bytes(extra.get_compressed())


def _encode_escapes(extra: Any, values: np.ndarray, low: int, length: int) -> None:
    """Code values outside ``low .. low + length - 2`` (one channel) into ``extra``."""
    uniform = constriction.stream.model.Uniform
    high = low + length - 2
    for value in values.tolist():
        side, dist = (0, low - value - 1) if value < low else (1, value - high - 1)
        nbits = (dist + 1).bit_length() - 1
        if nbits > MAX_ESCAPE_BITS:
            raise JPEGError("latent value out of the codable range")
        extra.encode(side, uniform(2))
        extra.encode(nbits, uniform(MAX_ESCAPE_BITS + 1))
        if nbits:
            extra.encode((dist + 1) - (1 << nbits), uniform(1 << nbits))


def _check_consumed(words: np.ndarray, again: np.ndarray, what: str) -> None:
    """The stream must be exactly the coding of the symbols decoded from it."""
    if again.size > words.size:
        raise JPEGError(f"truncated .jtc stream {what!r} ({4 * words.size} bytes; its "
                        f"symbols need {4 * again.size})")
    if again.size < words.size:
        raise JPEGError(f"corrupt .jtc stream {what!r} ({4 * (words.size - again.size)} "
                        "bytes left over after its symbols)")
    if not np.array_equal(words, again):
        raise JPEGError(f"corrupt .jtc stream {what!r} (not a valid coding of its symbols)")


def decode_symbols(latents: bytes, escapes: bytes, shape: tuple[int, int, int],
                   tables: Tables) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: -> ``int32 [M, H, W]``.

    Raises ``JPEGError`` (one line) unless both streams are consumed exactly:
    a stream too short to hold the latent (checked before allocating, from
    :func:`min_stream_bits`), one that ends before its symbols do (truncated),
    one with words left over, or any other stream that is not exactly what
    :func:`encode_symbols` writes for the symbols read from it. Damaged data
    that passed the CRCs therefore never decodes to a garbage latent unless
    it happens to be a valid coding.
    """
    m, h, w = shape
    if m != tables.offsets.shape[0]:
        raise JPEGError(f"latent tensor has {m} channels, the model {tables.offsets.shape[0]}")
    words = _from_bytes(latents, "latents")
    need = min_stream_bits(shape, tables)
    if need > 32.0 * words.size + _SLACK_BITS:
        what = "empty" if not words.size else f"{4 * words.size} bytes"
        raise JPEGError(f"corrupt .jtc stream 'latents' ({what}; a {m}x{h}x{w} latent needs "
                        f"at least {max(int(need - _SLACK_BITS) // 8, 1)} bytes)")
    extra_words = _from_bytes(escapes, "escapes")
    n = h * w
    values = np.empty((m, n), np.int32)
    escaped: list[tuple[int, np.ndarray]] = []
    count = 0
    stage = "latents"
    try:
        main = constriction.stream.queue.RangeDecoder(words)
        check = constriction.stream.queue.RangeEncoder()
        for c, model in enumerate(tables.models()):
            symbols = main.decode(model, n)
            check.encode(symbols, model)
            escape = int(tables.lengths[c]) - 1
            np.add(symbols, int(tables.offsets[c]), out=values[c])
            where = np.flatnonzero(symbols == escape)
            if where.size:
                escaped.append((c, where))
                count += where.size
            del symbols
        _check_consumed(words, check.get_compressed(), "latents")
        if count * ESCAPE_MIN_BITS > 32.0 * extra_words.size + _SLACK_BITS:
            raise JPEGError(f"truncated .jtc stream 'escapes' ({4 * extra_words.size} bytes "
                            f"for {count} escaped values)")
        stage = "escapes"
        if escaped:
            extra = constriction.stream.queue.RangeDecoder(extra_words)
            recheck = constriction.stream.queue.RangeEncoder()
            uniform = constriction.stream.model.Uniform
            for c, where in escaped:
                low = int(tables.offsets[c])
                high = low + int(tables.lengths[c]) - 2
                decoded = []
                for _ in range(where.size):
                    side = int(extra.decode(uniform(2)))
                    nbits = int(extra.decode(uniform(MAX_ESCAPE_BITS + 1)))
                    dist = (1 << nbits) - 1
                    if nbits:
                        dist += int(extra.decode(uniform(1 << nbits)))
                    decoded.append(low - 1 - dist if side == 0 else high + 1 + dist)
                values[c, where] = decoded
                _encode_escapes(recheck, values[c, where], low, int(tables.lengths[c]))
            _check_consumed(extra_words, recheck.get_compressed(), "escapes")
        else:
            _check_consumed(extra_words, extra_words[:0], "escapes")
    except JPEGError:
        raise
    except Exception as exc:  # constriction reports invalid data as AssertionError
        raise JPEGError(f"corrupt .jtc stream {stage!r} (invalid data for its range "
                        "coder)") from exc
    return values.reshape(m, h, w)
