"""PGM/PPM files whose maxval is not 255, scaled to 8 bits exactly as cjpeg does.

Pillow reads 8-bit PGM/PPM exactly as cjpeg does, but for other maxvals it
returns 16-bit gray unscaled or rounds colour differently; cjpeg (rdppm.c)
maps every sample through ``(v * 255 + maxval // 2) // maxval``. This module
does the same, so ``jtorch encode`` of such a file gives cjpeg's bytes.

Byte layout (Netpbm's pgm(5)/ppm(5)):

    magic     "P2" (plain PGM), "P3" (plain PPM), "P5" (PGM), "P6" (PPM)
    header    width, height, maxval: ASCII decimals separated by whitespace;
              "#" starts a comment that runs to the end of the line
    one whitespace byte after maxval (binary formats), then the samples:
      P5/P6   row-major, gray or R G B; 1 byte per sample when maxval < 256,
              else 2 bytes, most significant first
      P2/P3   ASCII decimals separated by whitespace

maxval is 1..65535; a sample above maxval is an error (as in libjpeg-turbo's
cjpeg). The pixel limit and the file size are checked before allocating.
"""

from __future__ import annotations

import re

import numpy as np

from jpegtorch.errors import JPEGError

MAGICS = {b"P2": (1, False), b"P3": (3, False), b"P5": (1, True), b"P6": (3, True)}
_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*[\n\r]?)*(\d+)")


def _header(data: bytes) -> tuple[int, bool, int, int, int, int] | None:
    """(channels, binary, width, height, maxval, data offset), or None."""
    kind = MAGICS.get(data[:2])
    if kind is None:
        return None
    pos = 2
    values = []
    for _ in range(3):
        match = _TOKEN.match(data, pos)
        if match is None:
            return None
        values.append(int(match.group(1)))
        pos = match.end()
    if pos >= len(data) or data[pos:pos + 1] not in b" \t\r\n":
        return None
    return kind[0], kind[1], values[0], values[1], values[2], pos + 1


def is_deep_pnm(data: bytes) -> bool:
    """A PGM/PPM (plain or binary) whose maxval is not 255."""
    header = _header(data[:4096])
    return header is not None and header[4] != 255


def read_scaled(data: bytes, *, max_pixels: int | None = None) -> tuple[np.ndarray, bool]:
    """The image as cjpeg reads it: (uint8 ``[C, H, W]``, False), C = 1 or 3.

    Raises:
        JPEGError: a damaged header, too few samples, a sample above maxval,
            or more pixels than ``max_pixels``.
    """
    header = _header(data[:4096])
    if header is None:
        raise JPEGError("not a PGM/PPM file")
    channels, binary, width, height, maxval, offset = header
    if width < 1 or height < 1 or not 1 <= maxval <= 65535:
        raise JPEGError(f"bad PGM/PPM header ({width}x{height}, maxval {maxval})")
    if max_pixels is not None and width * height > max_pixels:
        raise JPEGError(f"{width}x{height} = {width * height} pixels is above the limit of "
                        f"{max_pixels} (raise it with --max-pixels)")
    count = width * height * channels
    if binary:
        size = 2 if maxval > 255 else 1
        if len(data) - offset < count * size:
            raise JPEGError("truncated PGM/PPM file")
        dtype = ">u2" if size == 2 else np.uint8
        samples = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    else:
        if (len(data) - offset) // 2 + 1 < count:  # each sample takes >= 2 bytes
            raise JPEGError("truncated PGM/PPM file")
        tokens = data[offset:].split(maxsplit=count)
        if len(tokens) < count or not all(t.isdigit() for t in tokens[:count]):
            raise JPEGError("truncated or damaged plain PGM/PPM file")
        samples = np.array([int(t) for t in tokens[:count]], dtype=np.int64)
    samples = samples.astype(np.int64)
    if samples.size and int(samples.max()) > maxval:
        raise JPEGError(f"sample value above maxval {maxval} in PGM/PPM file")
    scaled = ((samples * 255 + maxval // 2) // maxval).astype(np.uint8)
    return np.ascontiguousarray(scaled.reshape(height, width, channels).transpose(2, 0, 1)), False
