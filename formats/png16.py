"""16-bit PNG samples, scaled to 8 bits as cjpeg scales deep samples.

Pillow reads 16-bit colour PNGs by keeping the high byte of each sample
(``v >> 8``); cjpeg scales samples deeper than 8 bits with rounding,
``(v * 255 + maxval // 2) // maxval`` (rdppm.c's rescale table, maxval =
65535). This module reads the 16-bit samples itself so that a 16-bit PNG
encodes exactly like the same samples in a 16-bit PPM through cjpeg.

Byte layout (PNG, ISO/IEC 15948 / W3C PNG 2nd ed.):

    signature  89 50 4E 47 0D 0A 1A 0A
    chunks     length (4, big-endian, <= 2**31 - 1), type (4 ASCII letters),
               data (length bytes), CRC-32 of type + data (4)
    IHDR       first chunk: width (4), height (4), bit depth (1), colour type
               (1: 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA),
               compression (1, 0 = deflate), filter (1, 0), interlace
               (1: 0 none, 1 Adam7) -- sections 11.2.2
    IDAT       the zlib stream (RFC 1950) of all IDAT chunks concatenated:
               for each pass (one, or Adam7's seven sub-images), each row is
               a filter-type byte (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth;
               section 9) followed by the row's samples, 16-bit big-endian,
               filtered bytewise against the byte ``bpp`` to the left (bpp =
               bytes per pixel) and the byte above in the same pass
    IEND       last chunk

Adam7 (section 8.2): pass (x0, y0, dx, dy) = (0,0,8,8), (4,0,8,8), (0,4,4,8),
(2,0,4,4), (0,2,2,4), (1,0,2,2), (0,1,1,2); a pass with no pixels has no rows.
CRCs of IHDR and IDAT are checked; ancillary chunks are skipped. The
decompressed size is bounded by what IHDR says, and the pixel limit is
checked before anything is allocated.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from numba import njit

from jpegtorch.errors import JPEGError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))


def is_deep_png(data: bytes) -> bool:
    """A PNG whose IHDR says 16 bits per sample (gray, RGB, gray + alpha or RGBA)."""
    return (len(data) >= 33 and data.startswith(SIGNATURE) and data[12:16] == b"IHDR"
            and data[24] == 16 and data[25] in CHANNELS)


@njit(cache=True, nogil=True)
def _unfilter(raw, height, rowbytes, bpp):  # pragma: no cover - compiled
    """Undo the per-row filters of one pass: ``raw`` holds ``height`` rows of
    ``1 + rowbytes`` bytes; returns ``[height, rowbytes]`` uint8, or an empty
    array for an unknown filter type."""
    out = np.empty((height, rowbytes), dtype=np.uint8)
    for y in range(height):
        base = y * (rowbytes + 1)
        kind = raw[base]
        for x in range(rowbytes):
            v = np.int32(raw[base + 1 + x])
            a = np.int32(out[y, x - bpp]) if x >= bpp else np.int32(0)
            b = np.int32(out[y - 1, x]) if y > 0 else np.int32(0)
            if kind == 0:
                pass
            elif kind == 1:
                v += a
            elif kind == 2:
                v += b
            elif kind == 3:
                v += (a + b) >> 1
            elif kind == 4:
                c = np.int32(out[y - 1, x - bpp]) if (y > 0 and x >= bpp) else np.int32(0)
                p = a + b - c
                pa = abs(p - a)
                pb = abs(p - b)
                pc = abs(p - c)
                if pa <= pb and pa <= pc:
                    v += a
                elif pb <= pc:
                    v += b
                else:
                    v += c
            else:
                return np.empty((0, 0), dtype=np.uint8)
            out[y, x] = v & 0xFF
    return out


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks = []
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise JPEGError("truncated PNG file")
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"IHDR", b"IDAT"):
            (crc,) = struct.unpack(">I", data[pos + 8 + length:end])
            if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
                raise JPEGError(f"broken PNG file (bad {kind.decode()} CRC)")
        chunks.append((kind, body))
        pos = end
        if kind == b"IEND":
            break
    return chunks


def read_samples(data: bytes, *, max_pixels: int | None = None) -> np.ndarray:
    """The 16-bit samples of a 16-bit PNG: uint16 ``[H, W, channels]``.

    Raises:
        JPEGError: not a 16-bit PNG, damaged, or more pixels than ``max_pixels``.
    """
    if not is_deep_png(data):
        raise JPEGError("not a 16-bit PNG file")
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise JPEGError("broken PNG file (no IHDR)")
    width, height, _depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1])
    if width == 0 or height == 0 or compression or filtering or interlace > 1:
        raise JPEGError("broken PNG file (bad IHDR)")
    if max_pixels is not None and width * height > max_pixels:
        raise JPEGError(f"{width}x{height} = {width * height} pixels is above the limit of "
                        f"{max_pixels} (raise it with --max-pixels)")
    channels = CHANNELS[color]
    bpp = 2 * channels
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    shapes = []
    for x0, y0, dx, dy in passes:
        pw = (width - x0 + dx - 1) // dx if width > x0 else 0
        ph = (height - y0 + dy - 1) // dy if height > y0 else 0
        shapes.append((pw, ph))
    expected = sum(ph * (1 + pw * bpp) for pw, ph in shapes if pw and ph)
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(stream, expected)
    except zlib.error as exc:
        raise JPEGError(f"broken PNG file ({exc})") from None
    if len(raw) < expected:
        raise JPEGError("truncated PNG file (image data ends early)")
    out = np.empty((height, width, channels), dtype=np.uint16)
    buffer = np.frombuffer(raw, dtype=np.uint8)
    offset = 0
    for (x0, y0, dx, dy), (pw, ph) in zip(passes, shapes, strict=True):
        if not pw or not ph:
            continue
        size = ph * (1 + pw * bpp)
        rows = _unfilter(buffer[offset:offset + size], ph, pw * bpp, bpp)
        offset += size
        if rows.size == 0:
            raise JPEGError("broken PNG file (unknown filter type)")
        samples = rows.view(">u2").reshape(ph, pw, channels)
        out[y0::dy, x0::dx] = samples
    return out


def read_scaled(data: bytes, *, max_pixels: int | None = None) -> tuple[np.ndarray, bool]:
    """A 16-bit PNG as cjpeg would read its samples: (uint8 ``[C, H, W]``, had alpha).

    C = 1 (gray) or 3 (RGB); alpha is dropped (the flag says it was there);
    each sample ``v`` becomes ``(v * 255 + 32767) // 65535``.
    """
    samples = read_samples(data, max_pixels=max_pixels)
    channels = samples.shape[2]
    alpha = channels in (2, 4)
    color = samples[:, :, :3] if channels >= 3 else samples[:, :, :1]
    scaled = ((color.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1)), alpha
