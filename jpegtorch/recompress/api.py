"""``recompress_jpeg`` / ``restore_jpeg``: JPEG files <-> ``.jtc`` containers, bit-exact.

The container (codec ``jpeg-recompress``, see ``formats/CONTAINER.md``)
holds three streams:

- ``layout``: everything of the file but its entropy-coded data (marker
  segments in order, fill bytes, EOI, trailing data), the padding bits of
  each entropy-coded segment and any bytes after a scan's last segment,
  the original size and CRC-32; compressed with zlib or LZMA, whichever is
  smaller;
- ``coefficients``: the quantized coefficients, range-coded by the context
  model (:mod:`.coder`);
- ``jpeg``: the whole file as it is, for a file that cannot be modelled
  (then the other two are empty).

Restoring regenerates each scan from the coefficients with the file's own
Huffman tables (:mod:`jpegtorch.formats.jpeg_layout`) and checks the
result's size and CRC-32. ``recompress_jpeg`` always restores its own output
and compares it with the input before returning it; anything that does not
come back byte for byte is stored verbatim instead, with a
:class:`RecompressWarning`.
"""

from __future__ import annotations

import io
import lzma
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from jpegtorch.errors import JPEGError
from jpegtorch.formats import container as jtc
from jpegtorch.formats import jpeg_layout as jl
from jpegtorch.limits import DEFAULT_MAX_PIXELS

from . import headers
from .coder import Store, decode_store, encode_store
from .tables import MODEL_NAME, load_tables, model_hash

CODEC = "jpeg-recompress"
LAYOUT_VERSION = 2
"""Version of the ``layout`` stream written (1: no preset dictionary; both are read)."""

_MODELLED, _VERBATIM = 0, 1
_RAW, _ZLIB, _LZMA, _ZLIB_DICT = 0, 1, 2, 3


class RecompressWarning(UserWarning):
    """A JPEG stored verbatim (no saving) because it could not be modelled exactly."""


@dataclass(frozen=True)
class _Parsed:
    verbatim: bool
    size: int
    crc: int
    pieces: list[bytes]
    pads: list[np.ndarray | None]
    tails: list[bytes]


# ---------------------------------------------------------------- layout stream


def _pack_layout(size: int, crc: int, pieces: list[bytes] | None,
                 pads: list[np.ndarray | None] | None, tails: list[bytes] | None) -> bytes:
    body = io.BytesIO()
    body.write(struct.pack("<BII", _VERBATIM if pieces is None else _MODELLED, size, crc))
    if pieces is not None and pads is not None and tails is not None:
        body.write(struct.pack("<H", len(pieces) - 1))
        for piece in pieces:
            body.write(struct.pack("<I", len(piece)))
            body.write(piece)
        for pad, tail in zip(pads, tails, strict=True):
            body.write(struct.pack("<B", (pad is not None) | (bool(tail) << 1)))
            if pad is not None:
                body.write(struct.pack("<I", len(pad)))
                body.write(np.asarray(pad, dtype="<u2").tobytes())
            if tail:
                body.write(struct.pack("<I", len(tail)))
                body.write(tail)
    raw = body.getvalue()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=headers.dictionary())
    options = [(_RAW, raw), (_ZLIB, zlib.compress(raw, 9)),
               (_ZLIB_DICT, packer.compress(raw) + packer.flush())]
    if len(raw) > 2048:  # metadata worth LZMA's time (a dictionary sized to the data)
        dict_size = max(1 << 16, 1 << (len(raw) - 1).bit_length())
        options.append((_LZMA, lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": min(dict_size, 1 << 26)}])))
    method, packed = min(options, key=lambda item: len(item[1]))
    return bytes((LAYOUT_VERSION, method)) + packed


def _unpack_layout(data: bytes) -> _Parsed:
    if len(data) < 2:
        raise JPEGError("corrupt .jtc layout stream (too short)")
    version, method = data[0], data[1]
    if version not in (1, LAYOUT_VERSION):
        raise JPEGError(f"unsupported recompressed layout version {version} "
                        f"(this build reads versions 1 and {LAYOUT_VERSION})")
    try:
        if method == _RAW:
            raw = data[2:]
        elif method == _ZLIB:
            raw = zlib.decompress(data[2:])
        elif method == _ZLIB_DICT and version >= 2:
            unpacker = zlib.decompressobj(-15, zdict=headers.dictionary())
            raw = unpacker.decompress(data[2:]) + unpacker.flush()
            if not unpacker.eof or unpacker.unused_data:
                raise JPEGError("corrupt .jtc layout stream (deflate data)")
        elif method == _LZMA:
            raw = lzma.decompress(data[2:], format=lzma.FORMAT_RAW,
                                  filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 26}])
        else:
            raise JPEGError(f"corrupt .jtc layout stream (compression {method})")
    except (zlib.error, lzma.LZMAError) as exc:
        raise JPEGError(f"corrupt .jtc layout stream ({exc})") from None
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(raw):
            raise JPEGError("corrupt .jtc layout stream (truncated)")
        chunk = raw[pos:pos + n]
        pos += n
        return chunk

    mode, size, crc = struct.unpack("<BII", take(9))
    if mode == _VERBATIM:
        parsed = _Parsed(True, size, crc, [], [], [])
    elif mode == _MODELLED:
        (nscans,) = struct.unpack("<H", take(2))
        pieces = [take(struct.unpack("<I", take(4))[0]) for _ in range(nscans + 1)]
        pads: list[np.ndarray | None] = []
        tails: list[bytes] = []
        for _ in range(nscans):
            (flags,) = struct.unpack("<B", take(1))
            if flags & ~3:
                raise JPEGError("corrupt .jtc layout stream (flags)")
            pad = None
            if flags & 1:
                (n,) = struct.unpack("<I", take(4))
                pad = np.frombuffer(take(2 * n), dtype="<u2").astype(np.uint16)
            pads.append(pad)
            tails.append(take(struct.unpack("<I", take(4))[0]) if flags & 2 else b"")
        parsed = _Parsed(False, size, crc, pieces, pads, tails)
    else:
        raise JPEGError(f"corrupt .jtc layout stream (mode {mode})")
    if pos != len(raw):
        raise JPEGError("corrupt .jtc layout stream (unexpected bytes at its end)")
    return parsed


# ---------------------------------------------------------------- coefficients


def _read_coefficients(data: bytes, layout: jl.Layout, max_pixels: int | None) -> Store:
    """The file's coefficients in a :class:`Store` over the blocks its scans code.

    Read by the JPEG reader (its numpy internals: one place to adapt), strict
    first; lenient when that fails (the regeneration check then decides
    whether what the lenient decoder made of the file is the whole story).
    """
    from jpegtorch.formats import jfif_reader

    try:
        reader = jfif_reader._read(data, lenient=False, max_pixels=max_pixels, name=None)
    except JPEGError as exc:
        if "exceeds the limit" in str(exc):
            raise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = jfif_reader._read(data, lenient=True, max_pixels=max_pixels, name=None)
    if reader.coefs is None or len(reader.comps) != len(layout.components):
        raise JPEGError("the reader and the layout disagree on the components")
    store = Store(_coded_grid(layout), _qtables(layout))
    for i, c in enumerate(reader.comps):
        if store.rows[i] > c.by or store.cols[i] > c.bx:
            raise JPEGError("the reader and the layout disagree on the block grid")
        store.fill(i, reader.coefs, c.offset, c.bx)
    return store


def _coded_grid(layout: jl.Layout) -> list[tuple[int, int]]:
    """Per component the block grid its scans code (MCU grid if interleaved, else own)."""
    shapes = []
    for index, comp in enumerate(layout.components):
        rows, cols = 0, 0
        for scan in layout.scans:
            if index in scan.components:
                r, c = ((comp.by, comp.bx) if len(scan.components) > 1
                        else (comp.hib, comp.wib))
                rows, cols = max(rows, r), max(cols, c)
        shapes.append((rows, cols))
    return shapes


def _qtables(layout: jl.Layout) -> list[np.ndarray]:
    """Per component its quantization table (zigzag; ones when unknown): DC prediction only."""
    out = []
    for index in range(len(layout.components)):
        table = layout.quant_tables[index] if index < len(layout.quant_tables) else None
        out.append(np.array(table if table is not None else [1] * 64, dtype=np.int64))
    return out


def _check_modellable(layout: jl.Layout) -> None:
    if layout.sof is None or not layout.scans:
        raise JPEGError("no frame or no scan")
    if layout.sof not in jl.SEQUENTIAL_HUFFMAN:
        kind = {0xC2: "progressive"}.get(layout.sof, f"SOF{layout.sof - 0xC0}")
        raise JPEGError(f"{kind} JPEG files are stored as they are")
    if layout.precision != 8:
        raise JPEGError(f"{layout.precision}-bit JPEG files are stored as they are")
    seen: set[int] = set()
    for scan in layout.scans:
        if seen & set(scan.components):
            raise JPEGError("a component in two sequential scans")
        seen |= set(scan.components)


# ---------------------------------------------------------------- public API


def _container(layout: jl.Layout | None, streams: list[tuple[str, bytes]], verbatim: bool,
               shapes: list[tuple[int, int]]) -> bytes:
    width = layout.width if layout is not None else 0
    height = layout.height if layout is not None else 0
    channels = len(layout.components) if layout is not None else 0
    box = jtc.Container(
        codec=CODEC, model=MODEL_NAME, model_hash=model_hash(), level=int(verbatim),
        width=width, height=height, channels=min(channels, 255),
        tensors=tuple((f"c{i}", (r, c)) for i, (r, c) in enumerate(shapes)),
        streams=tuple(jtc.Stream(name, data) for name, data in streams))
    return jtc.pack(box)


def _verbatim(data: bytes, layout: jl.Layout | None, reason: str, *, warn: bool) -> bytes:
    if warn:
        warnings.warn(f"JPEG stored without recompression ({reason}); no saving",
                      RecompressWarning, stacklevel=3)
    size, crc = len(data), zlib.crc32(data)
    return _container(layout, [("layout", _pack_layout(size, crc, None, None, None)),
                               ("coefficients", b""), ("jpeg", data)], True, [])


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        return data.tobytes()
    raise JPEGError(f"expected bytes, got {type(data).__name__}")


def recompress_jpeg(data: bytes, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> bytes:
    """Losslessly recompress a JPEG file into a ``.jtc`` container.

    Baseline and extended sequential Huffman files (any sampling, gray,
    restart markers, any tables, metadata, trailing data) are modelled; other
    JPEG files (progressive, arithmetic-coded, 12-bit, corrupt, ...) are
    stored verbatim with a :class:`RecompressWarning`. The output is always
    verified: :func:`restore_jpeg` gives ``data`` back byte for byte; and it
    is never larger than the file stored verbatim (tiny files may be).

    Args:
        data: the JPEG file's bytes.
        max_pixels: larger images are stored verbatim (``None``: no limit).

    Returns:
        The bytes of a ``.jtc`` file (codec ``jpeg-recompress``).

    Raises:
        JPEGError: ``data`` is not a JPEG file (no SOI marker).
    """
    data = _as_bytes(data)
    if len(data) < 3 or data[0] != 0xFF or data[1] != 0xD8 or data[2] != 0xFF:
        raise JPEGError("not a JPEG file (no SOI marker)")
    try:
        layout = jl.parse_layout(data)
    except JPEGError as exc:
        return _verbatim(data, None, str(exc), warn=True)
    try:
        packed = _recompress(data, layout, max_pixels)
    except JPEGError as exc:
        return _verbatim(data, layout, str(exc), warn=True)
    try:
        ok = restore_jpeg(packed, max_pixels=None) == data
    except JPEGError:
        ok = False
    if not ok:
        return _verbatim(data, layout, "the reconstruction check failed", warn=True)
    if len(packed) < len(data):
        return packed
    whole = _verbatim(data, layout, "", warn=False)
    return packed if len(packed) < len(whole) else whole  # never larger than storing it


def _recompress(data: bytes, layout: jl.Layout, max_pixels: int | None) -> bytes:
    _check_modellable(layout)
    store = _read_coefficients(data, layout, max_pixels)
    coefficients = (store.z, store.off, store.cols)
    masks = jl.nonzero_masks(store.z)
    pads: list[np.ndarray | None] = []
    tails: list[bytes] = []
    for scan in layout.scans:
        original = data[scan.start:scan.end]

        def encode(p: np.ndarray | None, scan: jl.ScanLayout = scan, hint: int = len(original),
                   ) -> tuple[bytes, np.ndarray, np.ndarray]:
            return jl.encode_sequential_scan(layout, scan, coefficients, p, masks,
                                             size_hint=hint)

        match = jl.match_scan(original, encode)
        if match is None:
            raise JPEGError("a scan's data differs from its regeneration")
        pads.append(match[0])
        tails.append(match[1])
    streams = encode_store(store, load_tables())
    layout_stream = _pack_layout(len(data), zlib.crc32(data), layout.piece_bytes(data), pads,
                                 tails)
    return _container(layout, [("layout", layout_stream), ("coefficients", streams),
                               ("jpeg", b"")], False, _coded_grid(layout))


def _open(data: bytes) -> tuple[jtc.Container, dict[str, bytes], _Parsed]:
    box = jtc.unpack(_as_bytes(data))
    if box.codec != CODEC:
        raise JPEGError(f"not a recompressed JPEG (.jtc codec {box.codec!r})")
    streams = {s.name: s.data for s in box.streams}
    if set(streams) != {"layout", "coefficients", "jpeg"}:
        raise JPEGError("corrupt recompressed JPEG (unexpected streams)")
    parsed = _unpack_layout(streams["layout"])
    if not parsed.verbatim and (box.model != MODEL_NAME or box.model_hash != model_hash()):
        raise JPEGError(f"unknown recompression model {box.model!r} "
                        f"({box.model_hash.hex()}); this build has {MODEL_NAME}")
    return box, streams, parsed


def restore_jpeg(data: bytes, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> bytes:
    """The original JPEG file of a ``.jtc`` made by :func:`recompress_jpeg`.

    Args:
        data: the ``.jtc`` file's bytes.
        max_pixels: refuse containers whose coefficient grids exceed this many
            pixels, before allocating them (``None``: no limit).

    Returns:
        The original file's bytes, checked against its stored size and CRC-32.

    Raises:
        JPEGError: not a recompressed JPEG, damaged (CRC, truncation, version,
            inconsistent streams) or over ``max_pixels``.
    """
    box, streams, parsed = _open(data)
    if parsed.verbatim:
        out = streams["jpeg"]
    else:
        out = _restore(box, streams, parsed, max_pixels)
    if len(out) != parsed.size or zlib.crc32(out) != parsed.crc:
        raise JPEGError("corrupt recompressed JPEG (the restored file fails its CRC-32 check)")
    return out


def _restore(box: jtc.Container, streams: dict[str, bytes], parsed: _Parsed,
             max_pixels: int | None) -> bytes:
    skeleton = b"".join(parsed.pieces)
    try:
        layout = jl.parse_layout(skeleton)
    except JPEGError as exc:
        raise JPEGError(f"corrupt recompressed JPEG (layout: {exc})") from None
    bounds = []
    at = 0
    for piece in parsed.pieces:
        bounds.append((at, at + len(piece)))
        at += len(piece)
    if tuple(bounds) != layout.pieces or len(parsed.pads) != len(layout.scans):
        raise JPEGError("corrupt recompressed JPEG (layout pieces do not match)")
    try:
        _check_modellable(layout)
    except JPEGError as exc:
        raise JPEGError(f"corrupt recompressed JPEG ({exc})") from None
    shapes = _coded_grid(layout)
    if [tuple(s) for _, s in box.tensors] != shapes:
        raise JPEGError("corrupt recompressed JPEG (coefficient grids do not match the frame)")
    if max_pixels is not None and layout.width * layout.height > max_pixels:
        raise JPEGError(f"recompressed JPEG of {layout.width}x{layout.height} exceeds the limit "
                        f"of {max_pixels} pixels (raise max_pixels to allow it)")
    store = Store(shapes, _qtables(layout))
    decode_store(streams["coefficients"], store, load_tables())
    coefficients = (store.z, store.off, store.cols)
    masks = jl.nonzero_masks(store.z)
    out = [parsed.pieces[0]]
    for i, scan in enumerate(layout.scans):
        try:
            scan_data, _, _ = jl.encode_sequential_scan(layout, scan, coefficients,
                                                        parsed.pads[i], masks,
                                                        size_hint=parsed.size)
        except JPEGError as exc:
            raise JPEGError(f"corrupt recompressed JPEG ({exc})") from None
        out += [scan_data, parsed.tails[i], parsed.pieces[i + 1]]
    return b"".join(out)


@dataclass(frozen=True)
class RecompressInfo:
    """What a recompressed ``.jtc`` holds (for ``jtorch info``)."""

    original_bytes: int
    container_bytes: int
    verbatim: bool
    model: str
    width: int
    height: int
    components: int

    @property
    def saving(self) -> float:
        """Fraction of the original size saved (0.2 = 20 % smaller)."""
        return 1.0 - self.container_bytes / max(1, self.original_bytes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (with ``saving``)."""
        return {"original_bytes": self.original_bytes, "container_bytes": self.container_bytes,
                "verbatim": self.verbatim, "model": self.model, "saving": self.saving}


def recompress_info(data: bytes) -> RecompressInfo:
    """Describe a recompressed ``.jtc`` without decoding its coefficients."""
    box, _, parsed = _open(data)
    return RecompressInfo(parsed.size, len(data), parsed.verbatim, box.model, box.width,
                          box.height, box.channels)
