"""Huffman tables for baseline JPEG.

- The four standard tables of ITU-T T.81 Annex K.3 (the ones libjpeg uses
  unless asked to optimize), as ``(bits, huffval)`` pairs: ``bits`` holds the
  16 counts of codes of length 1..16 and ``huffval`` the symbols in code order.
- :func:`optimal_table`: the optimal table for a histogram of symbols, by the
  Annex K.2 procedure exactly as libjpeg's ``jpeg_gen_optimal_table`` does it
  (same tie-breaking, same length limiting), so files written with
  ``optimize=True`` match libjpeg's byte for byte.
- :func:`code_table`: the per-symbol code and code length arrays used by the
  entropy coder (Annex C, Figures C.1–C.3), with libjpeg's validity checks.

All functions are pure; tables are immutable tuples.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from jpegtorch.errors import JPEGError

HuffmanTable = tuple[tuple[int, ...], tuple[int, ...]]
"""``(bits, huffval)``: 16 code-length counts (lengths 1..16) and the symbols."""

STD_DC_LUMA: HuffmanTable = (
    (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
    tuple(range(12)),
)
STD_DC_CHROMA: HuffmanTable = (
    (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
    tuple(range(12)),
)
STD_AC_LUMA: HuffmanTable = (
    (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D),
    (
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
        0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1,
        0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18,
        0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
        0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57,
        0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75,
        0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92,
        0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
        0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
        0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8,
        0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2,
        0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ),
)  # fmt: skip
STD_AC_CHROMA: HuffmanTable = (
    (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77),
    (
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
        0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09,
        0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25,
        0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38,
        0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56,
        0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74,
        0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
        0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
        0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
        0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2,
        0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ),
)  # fmt: skip

STD_DC_TABLES: tuple[HuffmanTable, HuffmanTable] = (STD_DC_LUMA, STD_DC_CHROMA)
"""Standard DC tables by table slot (0 = luma, 1 = chroma)."""
STD_AC_TABLES: tuple[HuffmanTable, HuffmanTable] = (STD_AC_LUMA, STD_AC_CHROMA)
"""Standard AC tables by table slot (0 = luma, 1 = chroma)."""

_MAX_CLEN = 32  # longest code length the Huffman procedure may produce before limiting


def validate_table(table: HuffmanTable, *, is_dc: bool) -> None:
    """Raise :class:`JPEGError` unless ``table`` is a valid baseline table.

    Checks, as libjpeg does: 16 counts, 1..256 symbols, a complete-or-less
    prefix code with no all-ones code, symbols 0..15 for DC (0..255 for AC)
    and no duplicated symbol.
    """
    bits, huffval = table
    if len(bits) != 16 or any(b < 0 for b in bits):
        raise JPEGError("bad Huffman table: expected 16 code-length counts")
    count = sum(bits)
    if not 1 <= count <= 256 or count != len(huffval):
        raise JPEGError(f"bad Huffman table: {count} codes for {len(huffval)} symbols")
    code = 0
    for length, n in enumerate(bits, start=1):
        code += n
        if code >= 1 << length:
            raise JPEGError("bad Huffman table: code lengths overflow the code space")
        code <<= 1
    maxsym = 15 if is_dc else 255
    if any(not 0 <= s <= maxsym for s in huffval) or len(set(huffval)) != len(huffval):
        raise JPEGError("bad Huffman table: symbol out of range or duplicated")


def code_table(table: HuffmanTable, *, is_dc: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-symbol ``(codes, sizes)``: two ``[256]`` arrays (uint32, int32).

    ``codes[s]`` is the Huffman code of symbol ``s`` (right-aligned) and
    ``sizes[s]`` its length in bits, 0 for symbols absent from the table.
    """
    validate_table(table, is_dc=is_dc)
    bits, huffval = table
    codes = np.zeros(256, dtype=np.uint32)
    sizes = np.zeros(256, dtype=np.int32)
    code = 0
    p = 0
    for length, n in enumerate(bits, start=1):
        for _ in range(n):
            codes[huffval[p]] = code
            sizes[huffval[p]] = length
            code += 1
            p += 1
        code <<= 1
    return codes, sizes


def optimal_table(freq: Sequence[int] | np.ndarray) -> HuffmanTable:
    """The optimal baseline Huffman table for symbol counts ``freq``.

    Args:
        freq: 256 (or 257; entry 256 is ignored) non-negative counts, indexed
            by symbol (DC: categories 0..11; AC: ``run << 4 | size``).

    Returns:
        ``(bits, huffval)`` as libjpeg's ``jpeg_gen_optimal_table`` makes it:
        a reserved pseudo-symbol keeps any real code from being all ones,
        ties between equal counts go to the larger symbol number, lengths
        over 16 are folded per Annex K.2 (Figure K.3), and symbols are listed
        by code length, then by symbol value.
    """
    counts = [int(f) for f in list(freq)[:256]]
    if len(counts) != 256 or any(f < 0 for f in counts):
        raise JPEGError("optimal_table needs 256 non-negative counts")
    counts.append(1)  # pseudo-symbol 256
    symbols = [s for s in range(257) if counts[s]]
    codesize = [0] * 257
    others = [-1] * 257
    # A heap keyed on (count, -symbol) pops the smallest count, larger symbol
    # first on ties: exactly libjpeg's linear search for c1, then c2.
    heap = [(counts[s], -s) for s in symbols]
    heapq.heapify(heap)
    while len(heap) > 1:
        f1, n1 = heapq.heappop(heap)
        f2, n2 = heapq.heappop(heap)
        c1, c2 = -n1, -n2
        heapq.heappush(heap, (f1 + f2, n1))  # the merged tree keeps c1's number
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            codesize[c2] += 1

    bits = [0] * (_MAX_CLEN + 1)
    for s in symbols:
        if codesize[s] > _MAX_CLEN:
            raise JPEGError("Huffman code length overflow")
        bits[codesize[s]] += 1
    # Limit code lengths to 16 bits (Annex K.2, Figure K.3).
    for i in range(_MAX_CLEN, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # drop the pseudo-symbol from the longest length
    # Symbols sorted by their (unlimited) code length, then by value.
    huffval = tuple(
        s for _, s in sorted((codesize[s], s) for s in symbols if s != 256)
    )
    return tuple(bits[1:17]), huffval
