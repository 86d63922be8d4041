"""The ``.jtc`` container: a header, entropy-coded streams and CRC32s.

Layout (all integers little-endian; see ``formats/CONTAINER.md``)::

    magic        8 bytes   89 'J' 'T' 'C' 0D 0A 1A 0A
    version      u8        1
    header_size  u32       size H of the header body
    header body  H bytes   codec, model, model hash, level, image size,
                           tensor shapes, stream table (name, length, CRC32)
    header_crc   u32       CRC32 of every byte before it (magic .. body)
    streams      the stream payloads back to back, in table order; nothing after

Reading checks, in order: magic, version, truncation, the header CRC, the
header's own consistency, the stream lengths against the file size (truncation
or trailing bytes), then each stream's CRC. Every failure raises
:class:`jpegtorch.JPEGError` with a one-line message. This module is pure
Python (no torch), so ``jtorch info`` stays light.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from jpegtorch.errors import JPEGError

MAGIC = b"\x89JTC\r\n\x1a\n"
VERSION = 1
EXTENSION = ".jtc"
_FIXED = len(MAGIC) + 1 + 4  # magic, version, header_size
_MAX_HEADER = 1 << 20
RECOMPRESS_CODEC = "jpeg-recompress"
"""Codec of losslessly recompressed JPEG files (jpegtorch.recompress): its image
size may be 0 (unknown: a file stored verbatim) and it may have 0..4 channels."""


def _geometry_ok(codec: str, width: int, height: int, channels: int) -> bool:
    if codec == RECOMPRESS_CODEC:
        return 0 <= width < 1 << 32 and 0 <= height < 1 << 32 and 0 <= channels <= 4
    return 0 < width < 1 << 32 and 0 < height < 1 << 32 and channels in (1, 3)


@dataclass(frozen=True)
class Stream:
    """One entropy-coded stream: a name (e.g. ``"latents"``) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Container:
    """The content of a ``.jtc`` file.

    ``model_hash`` is 8 bytes (the start of the SHA-256 of the model's weights);
    ``tensors`` lists ``(name, shape)`` of the coded latent tensors; ``width``,
    ``height`` and ``channels`` (1 or 3) describe the decoded image.
    """

    codec: str
    model: str
    model_hash: bytes
    level: int
    width: int
    height: int
    channels: int
    tensors: tuple[tuple[str, tuple[int, ...]], ...] = ()
    streams: tuple[Stream, ...] = field(default_factory=tuple)
    version: int = VERSION


def is_container(data: bytes) -> bool:
    """Whether ``data`` starts with the ``.jtc`` magic bytes."""
    return bytes(data[: len(MAGIC)]) == MAGIC


def container_codec(data: bytes) -> str | None:
    """The codec named in a ``.jtc`` header (None: not a container or a damaged header)."""
    if not is_container(data):
        return None
    try:
        return _parse_header(data)[0].codec
    except JPEGError:
        return None


def _str8(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"{what} is longer than 255 bytes")
    return bytes([len(raw)]) + raw


def pack(container: Container) -> bytes:
    """Serialize ``container`` to the bytes of a ``.jtc`` file (deterministic)."""
    c = container
    if c.version != VERSION:
        raise ValueError(f"can only write version {VERSION}")
    if len(c.model_hash) != 8:
        raise ValueError("model_hash must be 8 bytes")
    if not 0 <= c.level <= 255:
        raise ValueError("level must fit a byte")
    if not _geometry_ok(c.codec, c.width, c.height, c.channels):
        raise ValueError("image size or channels out of range")
    if len(c.tensors) > 255 or len(c.streams) > 255:
        raise ValueError("at most 255 tensors and 255 streams")
    body = bytearray()
    body += _str8(c.codec, "codec") + _str8(c.model, "model") + bytes(c.model_hash)
    body += struct.pack("<BIIB", c.level, c.width, c.height, c.channels)
    body.append(len(c.tensors))
    for name, shape in c.tensors:
        if len(shape) > 255 or any(not 0 <= d < 1 << 32 for d in shape):
            raise ValueError(f"tensor {name!r}: bad shape {shape}")
        body += _str8(name, "tensor name") + bytes([len(shape)])
        body += struct.pack(f"<{len(shape)}I", *shape)
    body.append(len(c.streams))
    for stream in c.streams:
        if len(stream.data) >= 1 << 32:
            raise ValueError(f"stream {stream.name!r} too long")
        body += _str8(stream.name, "stream name")
        body += struct.pack("<II", len(stream.data), zlib.crc32(stream.data))
    head = MAGIC + struct.pack("<BI", VERSION, len(body)) + bytes(body)
    out = bytearray(head)
    out += struct.pack("<I", zlib.crc32(head))
    for stream in c.streams:
        out += stream.data
    return bytes(out)


class _Reader:
    """Bounds-checked reads from the (CRC-verified) header body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise JPEGError("corrupt .jtc header (fields run past its end)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def str8(self) -> str:
        (n,) = self.unpack("<B")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise JPEGError("corrupt .jtc header (a name is not UTF-8)") from None


def _parse_header(data: bytes) -> tuple[Container, list[tuple[str, int, int]], int]:
    """Check magic, version, truncation and header CRC; parse the header.

    Returns the container without stream data, the stream table
    ``[(name, length, crc)]`` and the offset of the first stream.
    """
    data = bytes(data)
    if not is_container(data):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise JPEGError("truncated .jtc file (inside the magic bytes)")
        raise JPEGError("not a .jtc file (bad magic bytes)")
    if len(data) < len(MAGIC) + 1:
        raise JPEGError("truncated .jtc file (no version byte)")
    version = data[len(MAGIC)]
    if version != VERSION:
        raise JPEGError(f"unsupported .jtc version {version} (this build reads version {VERSION})")
    if len(data) < _FIXED:
        raise JPEGError("truncated .jtc file (inside the header)")
    (size,) = struct.unpack_from("<I", data, len(MAGIC) + 1)
    if size > _MAX_HEADER:
        raise JPEGError(f"corrupt .jtc header (header size {size} is implausible)")
    end = _FIXED + size
    if len(data) < end + 4:
        raise JPEGError("truncated .jtc file (inside the header)")
    (crc,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[:end]) != crc:
        raise JPEGError("corrupt .jtc header (CRC32 mismatch)")
    r = _Reader(data[_FIXED:end])
    codec, model = r.str8(), r.str8()
    model_hash = r.take(8)
    level, width, height, channels = r.unpack("<BIIB")
    tensors = []
    for _ in range(r.unpack("<B")[0]):
        name = r.str8()
        (ndim,) = r.unpack("<B")
        tensors.append((name, tuple(r.unpack(f"<{ndim}I"))))
    table = []
    for _ in range(r.unpack("<B")[0]):
        name = r.str8()
        length, stream_crc = r.unpack("<II")
        table.append((name, length, stream_crc))
    if r.pos != len(r.data):
        raise JPEGError("corrupt .jtc header (unexpected bytes at its end)")
    if not _geometry_ok(codec, width, height, channels):
        raise JPEGError(f"corrupt .jtc header (image {width}x{height}x{channels})")
    container = Container(codec=codec, model=model, model_hash=model_hash, level=level,
                          width=width, height=height, channels=channels,
                          tensors=tuple(tensors), streams=(), version=version)
    return container, table, end + 4


def unpack(data: bytes) -> Container:
    """Parse and fully verify a ``.jtc`` file (raises ``JPEGError`` on any damage)."""
    data = bytes(data)
    container, table, pos = _parse_header(data)
    needed = pos + sum(length for _, length, _ in table)
    if len(data) < needed:
        raise JPEGError(f"truncated .jtc file ({len(data)} of {needed} bytes)")
    if len(data) > needed:
        raise JPEGError(f"trailing data after the last .jtc stream ({len(data) - needed} bytes)")
    streams = []
    for name, length, crc in table:
        chunk = data[pos:pos + length]
        pos += length
        if zlib.crc32(chunk) != crc:
            raise JPEGError(f"corrupt .jtc stream {name!r} (CRC32 mismatch)")
        streams.append(Stream(name, chunk))
    return Container(**{**container.__dict__, "streams": tuple(streams)})


def describe(data: bytes) -> dict[str, Any]:
    """A JSON-ready summary of a ``.jtc`` file (for ``jtorch info``).

    Keys: ``format``, ``version``, ``codec``, ``model``, ``model_hash`` (hex),
    ``level``, ``width``, ``height``, ``channels``, ``tensors`` (name, shape),
    ``streams`` (name, bytes, bits, crc32 hex), ``header_bytes``, ``file_bytes``,
    ``bpp`` (file bits per pixel). Fully verifies the file first.
    """
    c = unpack(data)
    _, table, first = _parse_header(data)
    pixels = c.width * c.height
    return {
        "format": "jtc",
        "version": c.version,
        "codec": c.codec,
        "model": c.model,
        "model_hash": c.model_hash.hex(),
        "level": c.level,
        "width": c.width,
        "height": c.height,
        "channels": c.channels,
        "tensors": [{"name": n, "shape": list(s)} for n, s in c.tensors],
        "streams": [{"name": name, "bytes": length, "bits": 8 * length,
                     "crc32": f"{crc:08x}"} for name, length, crc in table],
        "header_bytes": first,
        "file_bytes": len(data),
        "bpp": 8 * len(data) / pixels,
    }
