"""An integer range coder for the recompression model (compiled, inlined).

Why not constriction (which the learned codec uses): the model codes one
symbol per coded coefficient, about 150 000 for a Kodak-sized q75 file. With
constriction's vectorized ``Categorical`` (one probability row per symbol)
the entropy decoding alone took 68 ms of a 186 ms restore in the same run in
which JPEG XL's whole decode took 25-30 ms, so "within 3x JPEG XL's time"
was out of reach; every wave also cost Python round trips. Coding inside
the compiled context kernels removes both, and lets the counts adapt after
every symbol instead of every wave.

The coder is LZMA's range coder (Igor Pavlov's rc, public domain as an
algorithm; written here from the description): a 33-bit ``low`` with a
cached byte for carry propagation, a 32-bit ``range`` renormalized a byte at
a time below 2**24. Symbols are coded from integer frequency tables
(``cum``, ``freq``, ``total`` with ``total <= 2**16``), raw bits 8 at a time.
Everything is integer arithmetic: encoder and decoder agree on any machine.

The state is five integers (see below); the byte buffer travels beside it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TOP = 1 << 24
MAX_TOTAL = 1 << 16
BAD = 3  # state index: the decoder met damaged data
POS = 4  # state index: bytes written / read

# The coder's state is a tuple of five int64 ``(x, range, cache, n, pos)``
# threaded through the inlined functions (kept in registers by the compiler;
# a kernel loads it from and stores it to an int64 [5] array at its ends):
# encoder: x = low, cache = the byte held back for carries, n = its count + 1;
# decoder: x = code, n = 1 once it read past the end or met an impossible value.


def encoder_state() -> np.ndarray:
    """A fresh encoder state array."""
    return np.array([0, 0xFFFFFFFF, 0, 1, 0], dtype=np.int64)


def decoder_state(data: np.ndarray) -> np.ndarray:
    """A decoder state array for ``data`` (positioned after its first 5 bytes)."""
    code = 0
    for i in range(5):
        code = (code << 8) | (int(data[i]) if i < len(data) else 0)
    return np.array([code & 0xFFFFFFFFFF, 0xFFFFFFFF, 0, int(len(data) < 5), 5], dtype=np.int64)


@njit(inline="always")
def load(st):  # pragma: no cover - compiled
    return st[0], st[1], st[2], st[3], st[4]


@njit(inline="always")
def store(st, s):  # pragma: no cover - compiled
    st[0], st[1], st[2], st[3], st[4] = s


@njit(inline="always")
def _shift_low(out, low, cache, n, pos):  # pragma: no cover - compiled
    if low < 0xFF000000 or low >= 0x100000000:
        carry = low >> 32
        temp = cache
        while True:
            out[pos] = (temp + carry) & 0xFF
            pos += 1
            temp = 0xFF
            n -= 1
            if n == 0:
                break
        cache = (low >> 24) & 0xFF
    n += 1
    low = (low & 0x00FFFFFF) << 8
    return low, cache, n, pos


@njit(inline="always")
def encode_symbol(out, s, cum, freq, total):  # pragma: no cover - compiled
    """Code a symbol occupying ``[cum, cum + freq)`` of ``total``; returns the state."""
    low, rng, cache, n, pos = s
    r = rng // total
    low += r * cum
    rng = r * freq
    while rng < TOP:
        rng <<= 8
        low, cache, n, pos = _shift_low(out, low, cache, n, pos)
    return low, rng, cache, n, pos


@njit(inline="always")
def encode_scaled(out, s, unit, cum, freq):  # pragma: no cover - compiled
    """Code a symbol occupying ``[cum, cum + freq)`` in steps of ``unit``.

    ``unit`` is ``range / total`` rounded down, computed by the caller from a
    reciprocal of the total (no division here); ``unit * total <= range``.
    """
    low, rng, cache, n, pos = s
    low += unit * cum
    rng = unit * freq
    while rng < TOP:
        rng <<= 8
        low, cache, n, pos = _shift_low(out, low, cache, n, pos)
    return low, rng, cache, n, pos


@njit(inline="always")
def encode_bits(out, s, value, nbits):  # pragma: no cover - compiled
    """Code ``nbits`` (0..32) raw bits of ``value``, most significant first."""
    low, rng, cache, n, pos = s
    while nbits > 0:
        m = 8 if nbits > 8 else nbits
        nbits -= m
        rng >>= m
        low += rng * ((value >> nbits) & ((1 << m) - 1))
        while rng < TOP:
            rng <<= 8
            low, cache, n, pos = _shift_low(out, low, cache, n, pos)
    return low, rng, cache, n, pos


@njit(cache=True, nogil=True)
def encoder_flush(st, out):  # pragma: no cover - compiled
    """Write the final bytes; returns the stream length."""
    low, rng, cache, n, pos = load(st)
    for _ in range(5):
        low, cache, n, pos = _shift_low(out, low, cache, n, pos)
    store(st, (low, rng, cache, n, pos))
    return pos


@njit(inline="always")
def _next(data, code, pos, bad):  # pragma: no cover - compiled
    if pos < data.shape[0]:
        b = np.int64(data[pos])
    else:
        b = np.int64(0)
        bad = 1
    return ((code << 8) | b) & 0xFFFFFFFFFF, pos + 1, bad


@njit(inline="always")
def decode_target(s, total):  # pragma: no cover - compiled
    """First half of decoding a symbol: ``(value in [0, total), r, state)``."""
    code, rng, cache, bad, pos = s
    r = rng // total
    v = code // r
    if v >= total:  # only in a damaged stream
        v = total - 1
        bad = 1
    return v, r, (code, rng, cache, bad, pos)


@njit(inline="always")
def decode_commit(data, s, r, cum, freq):  # pragma: no cover - compiled
    """Second half: consume the symbol found at ``[cum, cum + freq)``; returns the state."""
    code, rng, cache, bad, pos = s
    code -= r * cum
    rng = r * freq
    while rng < TOP:
        rng <<= 8
        code, pos, bad = _next(data, code, pos, bad)
    return code, rng, cache, bad, pos


@njit(inline="always")
def decode_scaled(data, s, unit, cum, freq):  # pragma: no cover - compiled
    """Consume the symbol at ``[cum, cum + freq)`` found with steps of ``unit``."""
    code, rng, cache, bad, pos = s
    code -= unit * cum
    rng = unit * freq
    while rng < TOP:
        rng <<= 8
        code, pos, bad = _next(data, code, pos, bad)
    return code, rng, cache, bad, pos


@njit(inline="always")
def decode_bits(data, s, nbits):  # pragma: no cover - compiled
    """Inverse of :func:`encode_bits`: ``(value, state)``."""
    code, rng, cache, bad, pos = s
    value = np.int64(0)
    while nbits > 0:
        m = 8 if nbits > 8 else nbits
        nbits -= m
        rng >>= m
        if m <= 3:  # the usual case (a sign and a bit or two): compare, no division
            chunk = np.int64(0)
            for bit in range(m - 1, -1, -1):
                trial = chunk | (np.int64(1) << bit)
                if code >= trial * rng:
                    chunk = trial
            if code >= (np.int64(1) << m) * rng:
                bad = 1
        else:
            chunk = code // rng
            if chunk >= (1 << m):
                chunk = (1 << m) - 1
                bad = 1
        code -= chunk * rng
        value = (value << m) | chunk
        while rng < TOP:
            rng <<= 8
            code, pos, bad = _next(data, code, pos, bad)
    return value, (code, rng, cache, bad, pos)
