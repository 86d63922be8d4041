"""The preset dictionary of the ``layout`` stream (layout version 2).

Most JPEG files start with the same few hundred bytes: libjpeg's JFIF APP0,
its quantization tables (Annex K scaled by an IJG quality), the four
standard Huffman tables of Annex K.3, a 4:2:0 or gray frame header and scan
header. zlib's preset dictionary (``zdict``) lets DEFLATE copy those from the
dictionary instead of spelling them out: a Kodak q75 file's layout stream
shrinks from about 470 to about 60 bytes, 0.4 % of the file.

The dictionary is part of the format: :data:`DICTIONARY_SHA256` pins it,
and :func:`dictionary` refuses to run if the bytes it builds ever differ
(a changed constant elsewhere must not silently break old containers).
Segments are laid out as libjpeg's ``jcmarker.c`` writes them: one DQT
segment per table (zigzag order, 8-bit), one DHT segment per table (class
and slot byte, 16 counts, the symbols).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

DICTIONARY_SHA256 = "e7f754522e16bbf90e6d9d6c30b2df0a41f757fe8a6cfd0334ad3608a0d882e8"
"""SHA-256 (hex) of :func:`dictionary`'s bytes."""

_COMMON_QUALITIES = (50, 80, 85, 95, 92, 90, 75)
"""Qualities written last (nearest to the data: the shortest copy distances)."""


def _segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


def _dqt(quality: int) -> bytes:
    from jpegtorch.formats.zigzag import ZIGZAG
    from jpegtorch.kernels.quantize import scaled_tables

    tables = scaled_tables(quality)
    order = np.asarray(ZIGZAG, dtype=np.int64)
    return b"".join(_segment(0xDB, bytes((slot,)) + bytes(tables[slot][order].astype(np.uint8)))
                    for slot in range(2))


def _dht() -> bytes:
    from jpegtorch.formats.huffman import STD_AC_TABLES, STD_DC_TABLES

    out = b""
    for slot in range(2):
        for cls, table in ((0, STD_DC_TABLES[slot]), (1, STD_AC_TABLES[slot])):
            bits, values = table
            out += _segment(0xC4, bytes((cls << 4 | slot,)) + bytes(bits) + bytes(values))
    return out


def _build() -> bytes:
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    exif = _segment(0xE1, b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08")
    sof_gray = _segment(0xC0, bytes((8, 0, 0, 0, 0, 1, 1, 0x11, 0)))
    sof_420 = _segment(0xC0, bytes((8, 0, 0, 0, 0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)))
    sos_gray = _segment(0xDA, bytes((1, 1, 0x00, 0, 63, 0)))
    sos_3 = _segment(0xDA, bytes((3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0)))
    qualities = [q for q in range(1, 101) if q not in _COMMON_QUALITIES] + list(_COMMON_QUALITIES)
    return (exif + sof_gray + sos_gray + b"".join(_dqt(q) for q in qualities)
            + b"\xff\xd8" + app0 + _dqt(75) + sof_420 + _dht() + sos_3)


@functools.lru_cache(maxsize=1)
def dictionary() -> bytes:
    """The preset dictionary (bytes, under zlib's 32 KiB window), checked against its hash."""
    data = _build()
    if len(data) > 32768 or hashlib.sha256(data).hexdigest() != DICTIONARY_SHA256:
        raise RuntimeError("the recompression layout dictionary changed: containers of layout "
                           "version 2 would not decode; restore its constants")
    return data
