"""The JPEG reader: marker parsing, entropy decoding, ``decode_jpeg``.

Reads baseline (SOF0), extended sequential (SOF1) and progressive (SOF2)
8-bit JPEG files, Huffman or arithmetic coded (SOF9, SOF10), with 1 (grey) or
3 (YCbCr, or RGB per Adobe APP14 transform 0) components, any sampling
factors 1..4, interleaved or not, with restart markers, into
:class:`jpegtorch.Coefficients` or straight into exactly the pixels
libjpeg-turbo (and so Pillow, default settings) produces, through the
pipeline's stage kernels (:mod:`jpegtorch.kernels`).

One module per concern:

- :mod:`.markers`: the byte layout of the marker segments and their parse
  (``jdmarker.c``: what is an error, what a warning, colour-space guessing);
- :mod:`.scans`: the entropy-coded data (Huffman kernels in
  :mod:`jpegtorch.formats.huffman_decode`, arithmetic in
  :mod:`jpegtorch.formats.arith_decode`), the coefficient buffer, streaming
  of single-scan files into pixels, the memory / work bounds;
- :mod:`.info`: what ``jtorch info`` shows (:func:`read_info`);
- :mod:`.api`: :func:`decode_jpeg`, :func:`decode_jpeg_array`,
  :func:`decode_jpeg_rows` (band by band into a writer), :func:`read_coefficients`.

Corrupt data: by default (strict) any of libjpeg's corrupt-data warnings is a
:class:`jpegtorch.JPEGError`; with ``lenient=True`` the file is decoded the way
libjpeg does (missing data reads as zeros, the rest of a restart interval is
left uniform grey) and a :class:`JPEGWarning` is issued instead. Unsupported
files (12/16-bit, lossless, hierarchical, JPEG-LS, CMYK/YCCK) raise a
:class:`jpegtorch.JPEGError` naming the feature. Neither torch nor numba is
imported until something is decoded.
"""

from __future__ import annotations

from jpegtorch.limits import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS

from .api import _read as _read  # the reader after its run, for jpegtorch.recompress
from .api import decode_jpeg, decode_jpeg_array, decode_jpeg_rows, read_coefficients
from .info import (
    ComponentInfo,
    HuffmanTableInfo,
    JPEGInfo,
    QuantTableInfo,
    ScanInfo,
    SegmentInfo,
    estimate_quality,
    read_info,
)
from .markers import JPEGWarning, MarkerReader
from .scans import Reader

_Reader = Reader  # the names tests and tools (jpegtorch.recompress) have used

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_PIXELS",
    "ComponentInfo",
    "HuffmanTableInfo",
    "JPEGInfo",
    "JPEGWarning",
    "MarkerReader",
    "QuantTableInfo",
    "Reader",
    "ScanInfo",
    "SegmentInfo",
    "decode_jpeg",
    "decode_jpeg_array",
    "decode_jpeg_rows",
    "estimate_quality",
    "read_coefficients",
    "read_info",
]
