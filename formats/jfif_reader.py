"""The JPEG reader: marker parsing, entropy decoding, ``decode_jpeg``.

Reads baseline (SOF0), extended sequential Huffman (SOF1) and progressive
Huffman (SOF2) 8-bit JPEG files with 1 (grey) or 3 (YCbCr, or RGB per Adobe
APP14 transform 0) components, any sampling factors 1..4, interleaved or not,
with restart markers, into :class:`jpegtorch.Coefficients`; ``decode_jpeg``
then turns them into exactly the pixels libjpeg-turbo (and so Pillow, default
settings) produces, through the pipeline's inverse stages.

The parsing follows libjpeg-turbo's ``jdmarker.c`` / ``jdinput.c`` (what is
an error, what is a warning, which quantization table a component uses, the
default Huffman tables of Motion-JPEG frames, colour-space guessing, block
smoothing of incomplete progressive files). The entropy decoder is the numba
kernel of :mod:`jpegtorch.formats.huffman_decode`.

Corrupt data: by default (strict) any of libjpeg's corrupt-data warnings is a
:class:`jpegtorch.JPEGError`; with ``lenient=True`` the file is decoded the way
libjpeg does (missing data reads as zeros, the rest of a restart interval is
left uniform grey) and a :class:`JPEGWarning` is issued instead.
Unsupported files (arithmetic coding, 12/16-bit, lossless, hierarchical,
JPEG-LS, CMYK/YCCK) raise a :class:`jpegtorch.JPEGError` naming the feature.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from jpegtorch.errors import JPEGError

from .zigzag import ZIGZAG

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from jpegtorch.coefficients import Coefficients

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "JPEGInfo",
    "JPEGWarning",
    "decode_jpeg",
    "read_coefficients",
    "read_info",
]

DEFAULT_MAX_PIXELS = 89_478_485
"""Default pixel limit, as Pillow's ``Image.MAX_IMAGE_PIXELS``."""

JPEG_MAX_DIMENSION = 65500  # libjpeg's limit
MAX_BLOCKS_IN_MCU = 10  # T.81 B.2.3, libjpeg's D_MAX_BLOCKS_IN_MCU
MAX_SCANS = 1000
"""Refuse files with more scans: every scan revisits the whole image, so a small
file of many empty scans could otherwise keep the decoder busy for hours
(libjpeg-turbo's tools offer the same guard, ``-maxscans``). Real progressive
files have about 10; the most a sane encoder writes is a few hundred."""

_ZIGZAG = np.array(ZIGZAG, dtype=np.int64)

# marker codes
SOI, EOI, SOS, DHT, DQT, DRI, DAC, DNL, COM = 0xD8, 0xD9, 0xDA, 0xC4, 0xDB, 0xDD, 0xCC, 0xDC, 0xFE
_SOF_NAMES = {
    0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive",
    0xC3: "lossless", 0xC5: "differential sequential (hierarchical)",
    0xC6: "differential progressive (hierarchical)",
    0xC7: "differential lossless (hierarchical)",
    0xC9: "extended sequential, arithmetic-coded", 0xCA: "progressive, arithmetic-coded",
    0xCB: "lossless, arithmetic-coded",
    0xCD: "differential sequential, arithmetic-coded (hierarchical)",
    0xCE: "differential progressive, arithmetic-coded (hierarchical)",
    0xCF: "differential lossless, arithmetic-coded (hierarchical)",
    0xF7: "JPEG-LS",
}
_SUPPORTED_SOF = (0xC0, 0xC1, 0xC2, 0xC9, 0xCA)
_ARITH_SOF = (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
_PROGRESSIVE_SOF = (0xC2, 0xCA)


def _marker_name(m: int) -> str:
    names = {SOI: "SOI", EOI: "EOI", SOS: "SOS", DHT: "DHT", DQT: "DQT", DRI: "DRI",
             DAC: "DAC", DNL: "DNL", COM: "COM", 0xDE: "DHP", 0xDF: "EXP", 0xF8: "LSE",
             0x01: "TEM", 0xC8: "JPG"}
    if m in names:
        return names[m]
    if 0xC0 <= m <= 0xCF:
        return f"SOF{m - 0xC0}"
    if 0xD0 <= m <= 0xD7:
        return f"RST{m - 0xD0}"
    if 0xE0 <= m <= 0xEF:
        return f"APP{m - 0xE0}"
    if m == 0xF7:
        return "SOF55"
    return f"0x{m:02X}"


class JPEGWarning(UserWarning):
    """A JPEG decoded in lenient mode despite corrupt or truncated data."""


# ----------------------------------------------------------------------------
# structured description (also what `jtorch info` prints)
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentInfo:
    id: int
    h: int
    v: int
    qtable: int


@dataclass(frozen=True)
class ScanInfo:
    components: tuple[int, ...]
    ss: int
    se: int
    ah: int
    al: int
    restart_interval: int
    offset: int
    """Offset of the SOS marker."""
    length: int
    """Bytes of entropy-coded data (restart markers included)."""


@dataclass(frozen=True)
class QuantTableInfo:
    slot: int
    precision: int
    """0 = 8-bit entries, 1 = 16-bit entries."""
    values: tuple[int, ...]
    """64 entries in natural (row-major) order."""


@dataclass(frozen=True)
class HuffmanTableInfo:
    table_class: str
    """"DC" or "AC"."""
    slot: int
    bits: tuple[int, ...]
    huffval: tuple[int, ...]
    standard: bool
    """The Annex K table libjpeg uses by default for this slot."""


@dataclass(frozen=True)
class SegmentInfo:
    marker: str
    offset: int
    length: int
    """Payload length (the segment's length field minus 2)."""
    label: str
    """e.g. "JFIF 1.01", "Exif", "ICC_PROFILE", "Adobe (transform 1)"."""


@dataclass(frozen=True)
class JPEGInfo:
    """What the markers of a JPEG file say, without decoding its pixels."""

    file_size: int
    width: int
    height: int
    precision: int
    process: str
    """"baseline", "extended sequential", "progressive", "lossless", ..."""
    sof_marker: int
    components: tuple[ComponentInfo, ...]
    color: str
    """"gray", "ycbcr", "rgb", "cmyk", "ycck" or "unknown" (libjpeg's guess)."""
    subsampling: str
    """"4:4:4", "4:2:2", "4:2:0", "4:4:0", "4:1:1", "4:1:0", "gray" or "custom"."""
    scans: tuple[ScanInfo, ...]
    restart_intervals: tuple[int, ...]
    """Distinct restart intervals in effect for the scans (0 = none)."""
    quant_tables: tuple[QuantTableInfo, ...]
    huffman_tables: tuple[HuffmanTableInfo, ...]
    segments: tuple[SegmentInfo, ...]
    """APPn and COM segments, in file order."""
    has_eoi: bool
    trailing_bytes: int
    """Bytes after the EOI marker."""
    supported: bool
    """Whether :func:`decode_jpeg` can decode it."""
    unsupported_reason: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    """IJG quality estimate: ``{"luma": q, "chroma": q, "exact": bool}``."""

    @property
    def bits_per_pixel(self) -> float:
        return 8.0 * self.file_size / max(1, self.width * self.height)

    @property
    def sampling_factors(self) -> str:
        return ",".join(f"{c.h}x{c.v}" for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary of everything above."""
        d = asdict(self)
        d["bits_per_pixel"] = round(self.bits_per_pixel, 4)
        d["sampling_factors"] = self.sampling_factors
        return d


# ----------------------------------------------------------------------------
# the parser
# ----------------------------------------------------------------------------


@dataclass
class _Comp:
    index: int
    cid: int
    h: int
    v: int
    tq: int
    wib: int = 0  # width in blocks (no MCU padding)
    hib: int = 0
    bx: int = 0  # padded to the MCU grid
    by: int = 0
    offset: int = 0  # offset of its blocks in the flat coefficient array


class _Reader:
    """One parse of one file (all state is local to the instance)."""

    def __init__(self, data: bytes, *, name: str | None, lenient: bool, max_pixels: int | None,
                 decode: bool) -> None:
        self.data = data
        self.n = len(data)
        self.name = name
        self.lenient = lenient
        self.max_pixels = max_pixels
        self.decode = decode  # False: walk the markers only (info)
        self.warnings: list[str] = []
        # tables
        self.qt: list[np.ndarray | None] = [None] * 4
        self.qt_prec: list[int] = [0] * 4
        self.dc_tables: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = [None] * 4
        self.ac_tables: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = [None] * 4
        self.restart_interval = 0
        # arithmetic-coding conditioning (DAC), libjpeg's defaults
        self.arith_dc_l = [0] * 16
        self.arith_dc_u = [1] * 16
        self.arith_ac_k = [5] * 16
        # records for info
        self.qt_defs: list[QuantTableInfo] = []
        self.ht_defs: list[tuple[str, int, tuple[int, ...], tuple[int, ...]]] = []
        self.segments: list[SegmentInfo] = []
        self.scans: list[ScanInfo] = []
        # frame
        self.sof: int | None = None
        self.precision = 0
        self.height = 0
        self.width = 0
        self.comps: list[_Comp] = []
        self.jfif = False
        self.adobe_transform: int | None = None
        # decoding state
        self.started = False  # first SOS seen (libjpeg's initial_setup done)
        self.multiple_scans = False
        self.coefs: np.ndarray | None = None
        self.latched: list[np.ndarray | None] = []
        self.coef_bits: np.ndarray | None = None
        self.prev_coef_bits: np.ndarray | None = None
        self.last_good_row = 0
        self.discarded = 0  # garbage bytes not yet reported (libjpeg's discarded_bytes)
        self.derived: dict[Any, Any] = {}
        self.has_eoi = False
        self.end = 0
        self.mcu_rows = 0
        self.mcu_cols = 0

    # -- errors and warnings -------------------------------------------------

    def error(self, message: str) -> JPEGError:
        return JPEGError(f"{self.name}: {message}" if self.name else message)

    def corrupt(self, message: str) -> None:
        """A libjpeg corrupt-data warning: an error unless lenient."""
        if not self.lenient:
            raise self.error(f"corrupt JPEG data: {message}")
        self.warnings.append(message)

    # -- byte access ---------------------------------------------------------

    def u16(self, pos: int) -> int:
        if pos + 2 > self.n:
            raise self.error("truncated file (in a marker segment)")
        return (self.data[pos] << 8) | self.data[pos + 1]

    def segment(self, pos: int, marker: int) -> tuple[bytes, int]:
        """The payload of the segment whose length field is at ``pos``, and the next position."""
        length = self.u16(pos)
        if length < 2:
            raise self.error(f"bad {_marker_name(marker)} segment length {length}")
        end = pos + length
        if end > self.n:
            raise self.error(f"truncated file (in the {_marker_name(marker)} segment)")
        return self.data[pos + 2 : end], end

    def next_marker(self, pos: int) -> tuple[int, int, bool]:
        """libjpeg's ``next_marker``: (marker, position after it, eof)."""
        data, n = self.data, self.n
        discarded = 0
        while True:
            j = data.find(b"\xff", pos)
            if j < 0:
                self.discarded += discarded + (n - pos)
                return EOI, n, True
            discarded += j - pos
            pos = j
            while pos < n and data[pos] == 0xFF:
                pos += 1
            if pos >= n:
                self.discarded += discarded
                return EOI, n, True
            c = data[pos]
            pos += 1
            if c != 0:
                break
            discarded += 2
        total = self.discarded + discarded
        self.discarded = 0
        if total:
            self.corrupt(f"{total} extraneous bytes before marker 0x{c:02x}")
        return c, pos, False

    def skip_entropy(self, pos: int) -> int:
        """Position of the first marker other than RSTn / stuffing after ``pos``."""
        data, n = self.data, self.n
        while True:
            j = data.find(b"\xff", pos)
            if j < 0 or j + 1 >= n:
                return n
            c = data[j + 1]
            if c == 0 or 0xD0 <= c <= 0xD7 or c == 0xFF:
                pos = j + 1
                continue
            return j

    # -- the marker loop -----------------------------------------------------

    def run(self) -> None:
        data = self.data
        if self.n < 2 or data[0] != 0xFF or data[1] != SOI:
            raise self.error("not a JPEG file (no SOI marker)")
        pos = 2
        pending = 0
        while True:
            if pending:
                marker, pending = pending, 0
            else:
                marker, pos, eof = self.next_marker(pos)
                if eof:
                    if not self.started:
                        raise self.error("truncated file (no image data)")
                    self.corrupt("premature end of JPEG file (no EOI marker)")
                    break
            if marker == EOI:
                self.has_eoi = True
                self.end = pos
                break
            if marker == SOS:
                pos, pending = self.sos(pos)
                continue
            if marker == SOI:
                raise self.error("duplicate SOI marker")
            if 0xC0 <= marker <= 0xCF and marker not in (DHT, DAC, 0xC8):
                pos = self.sof_segment(pos, marker)
            elif marker == DHT:
                pos = self.dht(pos)
            elif marker == DQT:
                pos = self.dqt(pos)
            elif marker == DRI:
                payload, pos = self.segment(pos, marker)
                if len(payload) != 2:
                    raise self.error("bad DRI segment length")
                self.restart_interval = (payload[0] << 8) | payload[1]
            elif 0xE0 <= marker <= 0xEF or marker == COM:
                pos = self.app(pos, marker)
            elif marker == DAC:
                pos = self.dac(pos)
            elif marker == DNL:
                _, pos = self.segment(pos, marker)
            elif 0xD0 <= marker <= 0xD7 or marker == 0x01:
                pass  # parameterless, ignored as libjpeg does
            elif marker in (0xDE, 0xDF):
                raise self.error("hierarchical JPEG (DHP/EXP markers) is not supported")
            elif marker in (0xF7, 0xF8):
                raise self.error("JPEG-LS is not supported")
            else:
                raise self.error(f"unknown marker 0x{marker:02x}")
        if not self.scans:
            raise self.error("no image data (no SOS marker)" if self.sof is not None
                             else "no SOF marker")

    # -- segments ------------------------------------------------------------

    def app(self, pos: int, marker: int) -> int:
        payload, end = self.segment(pos, marker)
        label = ""
        if marker == 0xE0 and payload[:5] == b"JFIF\x00" and len(payload) >= 14:
            self.jfif = True
            label = f"JFIF {payload[5]}.{payload[6]:02d}"
            if payload[5] != 1:
                self.warnings.append(f"unknown JFIF revision number {payload[5]}.{payload[6]:02d}")
        elif marker == 0xEE and payload[:5] == b"Adobe" and len(payload) >= 12:
            self.adobe_transform = payload[11]
            label = f"Adobe (transform {payload[11]})"
        elif marker == COM:
            text = payload[:60].decode("latin-1")
            label = "".join(ch if ch.isprintable() else "." for ch in text)
        else:
            ident = payload.split(b"\x00", 1)[0][:40]
            if ident and all(32 <= b < 127 for b in ident):
                label = ident.decode("ascii")
            if label.startswith("Exif"):
                label = "Exif"
        self.segments.append(SegmentInfo(_marker_name(marker), pos - 2, len(payload), label))
        return end

    def dqt(self, pos: int) -> int:
        payload, end = self.segment(pos, DQT)
        i = 0
        while i < len(payload):
            prec, slot = payload[i] >> 4, payload[i] & 15
            i += 1
            if slot >= 4:
                raise self.error(f"bad DQT table number {slot}")
            size = 128 if prec else 64
            if i + size > len(payload):
                raise self.error("bad DQT segment length")
            raw = np.frombuffer(payload, dtype=">u2" if prec else np.uint8, count=64, offset=i)
            i += size
            table = np.zeros(64, dtype=np.int32)
            table[_ZIGZAG] = raw.astype(np.int32)
            self.qt[slot] = table
            self.qt_prec[slot] = 1 if prec else 0
            self.qt_defs.append(QuantTableInfo(slot, 1 if prec else 0,
                                               tuple(int(x) for x in table)))
        return end

    def dac(self, pos: int) -> int:
        """Arithmetic-coding conditioning (T.81 B.2.4.3), as libjpeg's get_dac."""
        payload, end = self.segment(pos, DAC)
        if len(payload) % 2:
            raise self.error("bad DAC segment length")
        for i in range(0, len(payload), 2):
            index, value = payload[i], payload[i + 1]
            if index >= 32:
                raise self.error(f"bad DAC table index {index}")
            if index >= 16:
                self.arith_ac_k[index - 16] = value
            else:
                low, high = value & 15, value >> 4
                if low > high:
                    raise self.error(f"bad DAC value 0x{value:02x}")
                self.arith_dc_l[index], self.arith_dc_u[index] = low, high
        return end

    def dht(self, pos: int) -> int:
        payload, end = self.segment(pos, DHT)
        i = 0
        length = len(payload)
        while length - i > 16:
            index = payload[i]
            bits = tuple(payload[i + 1 : i + 17])
            i += 17
            count = sum(bits)
            if count > 256 or count > length - i:
                raise self.error("bad Huffman table definition (DHT)")
            huffval = tuple(payload[i : i + count])
            i += count
            is_ac = bool(index & 0x10)
            slot = index - 0x10 if is_ac else index
            if slot < 0 or slot >= 4:
                raise self.error(f"bad DHT table number 0x{index:02x}")
            (self.ac_tables if is_ac else self.dc_tables)[slot] = (bits, huffval)
            self.ht_defs.append(("AC" if is_ac else "DC", slot, bits, huffval))
        if i != length:
            raise self.error("bad DHT segment length")
        return end

    def sof_segment(self, pos: int, marker: int) -> int:
        if self.sof is not None:
            raise self.error("duplicate SOF marker")
        payload, end = self.segment(pos, marker)
        if len(payload) < 6:
            raise self.error("bad SOF segment length")
        self.sof = marker
        self.precision = payload[0]
        self.height = (payload[1] << 8) | payload[2]
        self.width = (payload[3] << 8) | payload[4]
        nc = payload[5]
        if len(payload) != 6 + 3 * nc:
            raise self.error("bad SOF segment length")
        for ci in range(nc):
            cid, hv, tq = payload[6 + 3 * ci : 9 + 3 * ci]
            self.comps.append(_Comp(ci, cid, hv >> 4, hv & 15, tq))
        if self.decode:
            self.check_supported()
        if self.height == 0:
            raise self.error("image height 0 in SOF (height defined by a DNL marker) "
                             "is not supported")
        if self.width == 0 or nc == 0:
            raise self.error("empty image (width or number of components is 0)")
        if self.height > JPEG_MAX_DIMENSION or self.width > JPEG_MAX_DIMENSION:
            raise self.error(f"image {self.width}x{self.height} is too large "
                             f"(maximum dimension {JPEG_MAX_DIMENSION})")
        pixels = self.width * self.height
        if self.max_pixels is not None and pixels > self.max_pixels:
            raise self.error(f"image size {self.width}x{self.height} ({pixels} pixels) exceeds "
                             f"the limit of {self.max_pixels} pixels (decompression-bomb guard; "
                             "raise max_pixels to allow it)")
        for c in self.comps:
            if not (1 <= c.h <= 4 and 1 <= c.v <= 4):
                raise self.error(f"bad sampling factors {c.h}x{c.v} for component {c.cid} "
                                 "(must be 1..4)")
        hmax = max(c.h for c in self.comps)
        vmax = max(c.v for c in self.comps)
        self.mcu_rows = -(-self.height // (8 * vmax))
        self.mcu_cols = -(-self.width // (8 * hmax))
        for c in self.comps:
            c.wib = -(-self.width * c.h // (8 * hmax))
            c.hib = -(-self.height * c.v // (8 * vmax))
            c.bx = self.mcu_cols * c.h
            c.by = self.mcu_rows * c.v
        return end

    def unsupported(self) -> str:
        """Why the frame cannot be decoded ("" when it can)."""
        sof = self.sof
        if sof is None:
            return ""
        if sof not in _SUPPORTED_SOF:
            kind = _SOF_NAMES.get(sof, f"SOF{sof - 0xC0}")
            if sof in (0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF):
                return f"hierarchical JPEG ({kind}, {_marker_name(sof)}) is not supported"
            if sof in (0xC3, 0xCB):
                return f"lossless JPEG ({_marker_name(sof)}) is not supported"
            return f"{kind} JPEG ({_marker_name(sof)}) is not supported"
        if self.precision != 8:
            return f"{self.precision}-bit sample precision is not supported (only 8-bit)"
        nc = len(self.comps)
        if nc == 4:
            return "4-component (CMYK/YCCK) JPEG is not supported"
        if nc not in (1, 3):
            return f"{nc}-component JPEG is not supported (only 1 or 3 components)"
        return ""

    def check_supported(self) -> None:
        reason = self.unsupported()
        if reason:
            raise self.error(reason)

    # -- scans ---------------------------------------------------------------

    def sos(self, pos: int) -> tuple[int, int]:
        """Parse an SOS header and decode (or skip) its entropy-coded data."""
        if self.sof is None:
            raise self.error("SOS marker before any SOF marker")
        if len(self.scans) >= MAX_SCANS:
            raise self.error(f"too many scans (more than {MAX_SCANS}; a corrupt or "
                             "malicious file)")
        sos_offset = pos - 2
        payload, data_pos = self.segment(pos, SOS)
        ns = payload[0] if payload else 0
        if len(payload) != 4 + 2 * ns or not 1 <= ns <= 4:
            raise self.error("bad SOS segment length")
        scan_comps: list[_Comp] = []
        dc_no: list[int] = []
        ac_no: list[int] = []
        filled = [False] * 4  # libjpeg's test of cur_comp_info[ci] (requires frame order)
        for i in range(ns):
            cid, tables = payload[1 + 2 * i], payload[2 + 2 * i]
            found = None
            for ci, c in enumerate(self.comps[:4]):
                if c.cid == cid and not filled[ci]:
                    found = c
                    break
            if found is None or found in scan_comps:
                raise self.error(f"invalid component ID {cid} in SOS")
            filled[i] = True
            scan_comps.append(found)
            dc_no.append(tables >> 4)
            ac_no.append(tables & 15)
        ss, se = payload[1 + 2 * ns], payload[2 + 2 * ns]
        ah, al = payload[3 + 2 * ns] >> 4, payload[3 + 2 * ns] & 15
        progressive = self.sof in _PROGRESSIVE_SOF
        if not self.started:
            self.started = True
            self.multiple_scans = progressive or ns < len(self.comps)
            if self.decode:
                self.start_decoding(progressive)
        elif not self.multiple_scans:
            raise self.error("more than one scan in a single-scan (sequential interleaved) "
                             "file")
        if self.decode:
            pos, pending = self.decode_scan(data_pos, scan_comps, dc_no, ac_no,
                                            ss, se, ah, al, progressive)
            end = pos - 2 if pending else pos
        else:
            end = self.skip_entropy(data_pos)
            pos, pending = end, 0
        self.scans.append(ScanInfo(tuple(c.cid for c in scan_comps), ss, se, ah, al,
                                   self.restart_interval, sos_offset, max(0, end - data_pos)))
        return pos, pending

    def start_decoding(self, progressive: bool) -> None:
        """libjpeg's initial_setup and coefficient buffer allocation."""
        total = 0
        for c in self.comps:
            c.offset = total
            total += c.by * c.bx * 64
        self.coefs = np.zeros(total, dtype=np.int32)
        self.latched = [None] * len(self.comps)
        nc = len(self.comps)
        self.coef_bits = np.full((nc, 64), -1, dtype=np.int64)
        self.prev_coef_bits = np.zeros((nc, 64), dtype=np.int64)
        if self.sof in (0xC0, 0xC1):  # Motion-JPEG: standard tables where none were defined
            from .huffman import STD_AC_TABLES, STD_DC_TABLES

            for slot in (0, 1):
                if self.dc_tables[slot] is None:
                    self.dc_tables[slot] = STD_DC_TABLES[slot]
                if self.ac_tables[slot] is None:
                    self.ac_tables[slot] = STD_AC_TABLES[slot]

    def derive(self, is_dc: bool, slot: int) -> Any:
        from .huffman_decode import HuffmanTableError, derive_table

        table = (self.dc_tables if is_dc else self.ac_tables)[slot] if slot < 4 else None
        if table is None:
            raise self.error(f"Huffman table 0x{slot:02x} was not defined")
        key = (is_dc, table)
        if key not in self.derived:
            try:
                self.derived[key] = derive_table(table[0], table[1], is_dc=is_dc)
            except HuffmanTableError as exc:
                raise self.error(str(exc)) from None
        return self.derived[key]

    def decode_scan(self, pos: int, comps: list[_Comp], dc_no: list[int], ac_no: list[int],
                    ss: int, se: int, ah: int, al: int, progressive: bool) -> tuple[int, int]:
        from . import huffman_decode as hd

        assert self.coefs is not None and self.coef_bits is not None
        assert self.prev_coef_bits is not None
        ns = len(comps)
        # per_scan_setup
        if ns == 1:
            c = comps[0]
            mcus_per_row, mcu_rows, imcu_div = c.wib, c.hib, c.v
            hs, vs = [1], [1]
        else:
            blocks = sum(c.h * c.v for c in comps)
            if blocks > MAX_BLOCKS_IN_MCU:
                raise self.error(f"sampling factors too large for an interleaved scan "
                                 f"({blocks} blocks per MCU, at most {MAX_BLOCKS_IN_MCU})")
            mcus_per_row, mcu_rows, imcu_div = self.mcu_cols, self.mcu_rows, 1
            hs, vs = [c.h for c in comps], [c.v for c in comps]
        # latch_quant_tables
        for c in comps:
            if self.latched[c.index] is None:
                if c.tq >= 4 or self.qt[c.tq] is None:
                    raise self.error(f"quantization table 0x{c.tq:02x} was not defined")
                self.latched[c.index] = self.qt[c.tq].copy()
        # entropy decoder start_pass
        scan_number = len(self.scans) + 1
        if progressive:
            is_dc = ss == 0
            bad = (se != 0) if is_dc else (ss > se or se >= 64 or ns != 1)
            if (ah != 0 and al != ah - 1) or al > 13:
                bad = True
            if bad:
                raise self.error(f"invalid progressive scan parameters Ss={ss} Se={se} "
                                 f"Ah={ah} Al={al}")
            for c in comps:
                bits, prev = self.coef_bits[c.index], self.prev_coef_bits[c.index]
                if not is_dc and bits[0] < 0:
                    self.corrupt(f"inconsistent progression sequence for component {c.index} "
                                 "coefficient 0 (AC scan before any DC scan)")
                lo, hi = min(ss, 1), max(se, 9)
                prev[lo : hi + 1] = bits[lo : hi + 1] if scan_number > 1 else 0
                for k in range(ss, se + 1):
                    expected = max(int(bits[k]), 0)
                    if ah != expected:
                        self.corrupt(f"inconsistent progression sequence for component "
                                     f"{c.index} coefficient {k}")
                        break
                bits[ss : se + 1] = al
            if is_dc:
                kind = hd.DC_FIRST if ah == 0 else hd.DC_REFINE
            else:
                kind = hd.AC_FIRST if ah == 0 else hd.AC_REFINE
            need_dc = is_dc and ah == 0
            need_ac = not is_dc
        else:
            if ss != 0 or se != 63 or ah != 0 or al != 0:
                self.warnings.append("invalid SOS parameters for sequential JPEG (ignored)")
            kind = hd.SEQUENTIAL
            need_dc = need_ac = True
        i64 = np.int64
        stats = np.zeros(hd.NUM_STATS, dtype=np.int64)
        stats[hd.ST_DISCARDED] = self.discarded
        stats[hd.ST_LAST_GOOD_ROW] = self.last_good_row
        buf = np.frombuffer(self.data, dtype=np.uint8)
        geometry = (
            i64(self.restart_interval), i64(mcus_per_row), i64(mcu_rows), i64(imcu_div),
            np.array([c.offset for c in comps], dtype=np.int64),
            np.array([c.bx for c in comps], dtype=np.int64),
            np.array(hs, dtype=np.int64), np.array(vs, dtype=np.int64),
        )
        arithmetic = self.sof in _ARITH_SOF
        if arithmetic:
            from .arith_decode import decode_scan_arith

            for i in range(ns):
                for needed, number in ((need_dc, dc_no[i]), (need_ac, ac_no[i])):
                    if needed and number >= 16:
                        raise self.error(f"arithmetic conditioning table 0x{number:02x} "
                                         "was not defined")
            decode_scan_arith(
                buf, i64(pos), i64(kind), i64(ss), i64(se), i64(ah), i64(al), *geometry,
                np.array(dc_no, dtype=np.int64), np.array(ac_no, dtype=np.int64),
                np.array(self.arith_dc_l, dtype=np.int64),
                np.array(self.arith_dc_u, dtype=np.int64),
                np.array(self.arith_ac_k, dtype=np.int64),
                hd.NATURAL_ORDER_EXT, self.coefs, not self.lenient, stats,
            )
        else:
            self.huffman_scan(hd, buf, pos, kind, ss, se, ah, al, geometry, ns, dc_no, ac_no,
                              need_dc, need_ac, stats)
        return self.scan_outcome(hd, stats, arithmetic)

    def huffman_scan(self, hd: Any, buf: np.ndarray, pos: int, kind: int, ss: int, se: int,
                     ah: int, al: int, geometry: tuple[Any, ...], ns: int, dc_no: list[int],
                     ac_no: list[int], need_dc: bool, need_ac: bool, stats: np.ndarray) -> None:
        # tables: index 0..ns-1 DC, ns..2ns-1 AC (duplicates are cheap)
        tabs = []
        for i in range(ns):
            tabs.append(self.derive(True, dc_no[i]) if need_dc else None)
        for i in range(ns):
            tabs.append(self.derive(False, ac_no[i]) if need_ac else None)
        present = [t for t in tabs if t is not None]
        empty = (np.zeros(512, np.int32), np.full(18, -1, np.int32), np.zeros(18, np.int32),
                 np.zeros(256, np.int32))
        tabs = [t if t is not None else (present[0] if present else empty) for t in tabs]
        lookup = np.stack([t[0] for t in tabs])
        maxcode = np.stack([t[1] for t in tabs])
        valoffset = np.stack([t[2] for t in tabs])
        huffval = np.stack([t[3] for t in tabs])
        i64 = np.int64
        hd.decode_scan(
            buf, i64(pos), i64(kind), i64(ss), i64(se), i64(ah), i64(al), *geometry,
            np.arange(ns, dtype=np.int64), np.arange(ns, 2 * ns, dtype=np.int64),
            lookup, maxcode, valoffset, huffval, hd.NATURAL_ORDER_EXT, self.coefs,
            not self.lenient, stats,
        )

    def scan_outcome(self, hd: Any, stats: np.ndarray, arithmetic: bool) -> tuple[int, int]:
        """Warnings and errors of a decoded scan; the position and pending marker after it."""
        self.discarded = int(stats[hd.ST_DISCARDED])
        self.last_good_row = int(stats[hd.ST_LAST_GOOD_ROW])
        if stats[hd.ST_DC_OVERFLOW]:
            raise self.error("corrupt JPEG data: DC coefficient out of range")
        if stats[hd.ST_EOF]:
            self.corrupt("premature end of JPEG file (truncated in the entropy-coded data)")
        if stats[hd.ST_EXTRANEOUS]:
            self.corrupt(f"{int(stats[hd.ST_EXTRANEOUS_BYTES])} extraneous bytes before marker "
                         f"0x{int(stats[hd.ST_EXTRANEOUS_MARKER]):02x}")
        if stats[hd.ST_RESYNC]:
            self.corrupt(f"found marker 0x{int(stats[hd.ST_RESYNC_MARKER]):02x} instead of "
                         "the expected RST marker")
        if stats[hd.ST_BAD_CODE]:
            self.corrupt("bad arithmetic code" if arithmetic else "bad Huffman code")
        if stats[hd.ST_HIT_MARKER]:
            self.corrupt("premature end of data segment (entropy-coded data ends early)")
        marker = int(stats[hd.ST_MARKER])
        new_pos = int(stats[hd.ST_POS])
        if stats[hd.ST_EOF]:
            return self.n, EOI
        return new_pos, marker

    # -- results ---------------------------------------------------------------

    def color(self) -> str:
        nc = len(self.comps)
        if nc == 1:
            return "gray"
        if nc == 3:
            if self.jfif:
                return "ycbcr"
            if self.adobe_transform is not None:
                if self.adobe_transform == 0:
                    return "rgb"
                if self.adobe_transform != 1:
                    self.warnings.append(f"unknown Adobe color transform code "
                                         f"{self.adobe_transform} (assuming YCbCr)")
                return "ycbcr"
            ids = tuple(c.cid for c in self.comps)
            return "rgb" if ids == (82, 71, 66) else "ycbcr"
        if nc == 4:
            return "ycck" if self.adobe_transform == 2 else "cmyk"
        return "unknown"

    def coefficients(self) -> Coefficients:
        import torch

        from jpegtorch.coefficients import Coefficients

        assert self.coefs is not None
        blocks = []
        qtables = []
        for c in self.comps:
            n = c.by * c.bx * 64
            flat = torch.from_numpy(self.coefs[c.offset : c.offset + n])
            blocks.append(flat.view(1, c.by, c.bx, 8, 8))
            table = self.latched[c.index]
            if table is None:  # never in a scan: its coefficients are all zero
                slot_table = self.qt[c.tq] if c.tq < 4 else None
                table = slot_table if slot_table is not None else np.ones(64, np.int32)
            qtables.append(table)
        qt = torch.from_numpy(np.stack(qtables).astype(np.int32)).view(1, len(self.comps), 8, 8)
        return Coefficients(
            blocks=tuple(blocks), qtables=qt, sampling=tuple((c.h, c.v) for c in self.comps),
            size=(self.height, self.width), color=self.color(),
            component_ids=tuple(c.cid for c in self.comps),
            qtable_slots=tuple(c.tq if c.tq < 4 else 0 for c in self.comps),
        )

    def emit_warnings(self) -> None:
        if self.warnings:
            where = f"{self.name}: " if self.name else ""
            unique = list(dict.fromkeys(self.warnings))
            extra = f" (and {len(unique) - 3} more)" if len(unique) > 3 else ""
            warnings.warn(f"{where}{'; '.join(unique[:3])}{extra}", JPEGWarning, stacklevel=3)


# ----------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------

def _as_bytes(data: Any, name: str | None) -> tuple[bytes, str | None]:
    if isinstance(data, bytes):
        return data, name
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data), name
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        try:
            with open(path, "rb") as handle:
                return handle.read(), name or path
        except OSError as exc:
            raise JPEGError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise JPEGError("expected a 1-D uint8 array of JPEG bytes")
        return data.tobytes(), name
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(data, torch.Tensor):
        if data.dtype != torch.uint8 or data.dim() != 1:
            raise JPEGError(f"expected a 1-D uint8 tensor of JPEG bytes, got "
                            f"{data.dtype} {tuple(data.shape)}")
        return data.detach().cpu().contiguous().numpy().tobytes(), name
    raise JPEGError(f"expected JPEG data as bytes, a 1-D uint8 tensor or a path, got "
                    f"{type(data).__name__}")


def _read(data: Any, *, lenient: bool, max_pixels: int | None, name: str | None) -> _Reader:
    raw, name = _as_bytes(data, name)
    reader = _Reader(raw, name=name, lenient=lenient, max_pixels=max_pixels, decode=True)
    reader.run()
    return reader


def read_coefficients(data: Any, *, lenient: bool = False,
                      max_pixels: int | None = DEFAULT_MAX_PIXELS,
                      name: str | None = None) -> Coefficients:
    """The quantized DCT coefficients of a JPEG file.

    Args:
        data: the file's bytes (``bytes``, ``bytearray``, ``memoryview``, a 1-D
            uint8 numpy array or tensor) or a path.
        lenient: decode corrupt or truncated data as libjpeg does (missing data
            reads as zeros) with a :class:`JPEGWarning`, instead of raising.
        max_pixels: refuse images with more pixels than this before allocating
            anything (``None``: no limit).
        name: a file name for messages.

    Returns:
        :class:`jpegtorch.Coefficients` with a batch of 1: ``blocks[c]`` int32
        ``[1, by, bx, 8, 8]`` covering the full MCU grid (uncoded blocks zero),
        values as libjpeg's 16-bit ``JCOEF``; ``qtables`` int32 ``[1, C, 8, 8]``
        (the table each component's first scan used, natural order, 1..65535);
        sampling, size, colour ("gray", "ycbcr" or "rgb"), component ids and
        table slots as in the file.

    Raises:
        jpegtorch.JPEGError: not a JPEG, unsupported, corrupt (strict), too big.
    """
    reader = _read(data, lenient=lenient, max_pixels=max_pixels, name=name)
    coefficients = reader.coefficients()
    reader.emit_warnings()
    return coefficients


def _smoothed(reader: _Reader, coefficients: Coefficients) -> Coefficients:
    """Apply libjpeg's block smoothing when the progressive data is incomplete."""
    if (reader.sof not in _PROGRESSIVE_SOF or reader.coef_bits is None
            or reader.prev_coef_bits is None):
        return coefficients
    from dataclasses import replace

    import torch

    from .block_smoothing import SAVED_COEFS, smooth_component, smoothing_useful

    latched = [t is not None for t in reader.latched]
    qt = coefficients.qtables[0].reshape(len(reader.comps), 64).numpy()
    if not smoothing_useful(reader.coef_bits, qt, latched):
        return coefficients
    multi_scan = len(reader.scans) > 1
    vmax = max(c.v for c in reader.comps)
    total_imcu_rows = -(-reader.height // (8 * vmax))
    blocks = []
    for c, block in zip(reader.comps, coefficients.blocks, strict=True):
        arr = block[0].reshape(c.by, c.bx, 64).numpy()
        bits = reader.coef_bits[c.index, :SAVED_COEFS]
        prev = (reader.prev_coef_bits[c.index, :SAVED_COEFS] if multi_scan
                else np.full(SAVED_COEFS, -1, dtype=np.int64))
        prev = prev.copy()
        prev[0] = bits[0]
        out = smooth_component(arr, qt[c.index], bits, prev, reader.last_good_row, c.v,
                               total_imcu_rows, c.hib, c.wib)
        blocks.append(torch.from_numpy(out).view(1, c.by, c.bx, 8, 8))
    return replace(coefficients, blocks=tuple(blocks))


def decode_jpeg(data: Any, *, lenient: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                name: str | None = None, device: torch.device | str | None = None,
                ) -> torch.Tensor:
    """Decode a JPEG file to pixels, exactly as libjpeg-turbo (Pillow) does.

    Args:
        data: the file's bytes (``bytes`` or a 1-D uint8 tensor, as
            ``torchvision.io.decode_jpeg``; also bytearray, numpy, a path), or
            a list of them (then a list of tensors is returned).
        lenient: decode corrupt/truncated data as libjpeg does, with a
            :class:`JPEGWarning`, instead of raising.
        max_pixels: pixel limit checked before allocating (``None``: none).
        name: a file name for messages.
        device: where to run the inverse DCT / colour stages (default CPU).

    Returns:
        uint8 ``[C, H, W]`` tensor, values 0..255; C = 1 (grey) or 3 (RGB).

    Raises:
        jpegtorch.JPEGError: not a JPEG, unsupported, corrupt (strict), too big.
    """
    if isinstance(data, (list, tuple)):
        return [decode_jpeg(d, lenient=lenient, max_pixels=max_pixels, name=name, device=device)
                for d in data]  # type: ignore[return-value]
    reader = _read(data, lenient=lenient, max_pixels=max_pixels, name=name)
    hmax = max(c.h for c in reader.comps)
    vmax = max(c.v for c in reader.comps)
    for c in reader.comps:
        if hmax % c.h or vmax % c.v:
            raise reader.error(f"fractional sampling ratios are not supported "
                               f"({','.join(f'{k.h}x{k.v}' for k in reader.comps)}; "
                               "libjpeg-turbo refuses them too)")
    coefficients = _smoothed(reader, reader.coefficients())
    reader.emit_warnings()
    if device is not None:
        coefficients = coefficients.to(device)
    from jpegtorch.pipeline import decode

    return decode(coefficients)[0]


# ----------------------------------------------------------------------------
# info
# ----------------------------------------------------------------------------


def _subsampling(comps: list[_Comp]) -> str:
    if len(comps) == 1:
        return "gray"
    y, rest = comps[0], comps[1:]
    if len(comps) != 3 or any((c.h, c.v) != (rest[0].h, rest[0].v) for c in rest):
        return "custom"
    c = rest[0]
    if y.h % c.h or y.v % c.v:
        return "custom"
    labels = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0",
              (4, 1): "4:1:1", (4, 2): "4:1:0"}
    return labels.get((y.h // c.h, y.v // c.v), "custom")


def _huffman_infos(reader: _Reader) -> tuple[HuffmanTableInfo, ...]:
    from .huffman import STD_AC_TABLES, STD_DC_TABLES

    out = []
    for cls, slot, bits, huffval in reader.ht_defs:
        std = (STD_DC_TABLES if cls == "DC" else STD_AC_TABLES)
        standard = slot < 2 and (tuple(std[slot][0]), tuple(std[slot][1])) == (bits, huffval)
        out.append(HuffmanTableInfo(cls, slot, bits, huffval, standard))
    return tuple(out)


def estimate_quality(tables: dict[str, np.ndarray]) -> dict[str, Any]:
    """Estimate the IJG (libjpeg ``-quality``) setting behind quantization tables.

    Args:
        tables: ``{"luma": [64], "chroma": [64]}`` natural-order tables (chroma
            optional).

    Returns:
        ``{"luma": q, "chroma": q, "quality": q, "exact": bool}``: the quality
        1..100 whose libjpeg-scaled Annex K tables are closest (in log ratio)
        per table; ``quality`` is the luma one, ``exact`` whether the scaled
        tables match exactly (for qualities below 25 written without
        ``-baseline`` the 16-bit entries are compared after clamping to 255).
    """
    import torch

    from jpegtorch.quantize import quality_to_tables

    candidates = quality_to_tables(torch.arange(1, 101, dtype=torch.float64))  # [100, 2, 8, 8]
    cand = candidates.reshape(100, 2, 64).numpy()
    result: dict[str, Any] = {}
    exact = True
    for idx, key in enumerate(("luma", "chroma")):
        table = tables.get(key)
        if table is None:
            continue
        t = np.clip(np.asarray(table, dtype=np.float64).reshape(64), 1, 255)
        err = np.abs(np.log(cand[:, idx]) - np.log(t)[None]).sum(axis=1)
        best = int(np.argmin(err))
        result[key] = best + 1
        exact = exact and bool(err[best] == 0)
    result["quality"] = result.get("luma", result.get("chroma"))
    result["exact"] = exact and bool(result)
    return result


def read_info(data: Any, *, name: str | None = None) -> JPEGInfo:
    """Describe a JPEG file from its markers (no pixel decoding).

    Args:
        data: bytes, a 1-D uint8 tensor/array, or a path.
        name: a file name for messages.

    Returns:
        :class:`JPEGInfo` (``to_dict()`` for JSON).

    Raises:
        jpegtorch.JPEGError: not a JPEG file, or its markers are malformed.
    """
    raw, name = _as_bytes(data, name)
    reader = _Reader(raw, name=name, lenient=True, max_pixels=None, decode=False)
    reader.run()
    comps = reader.comps
    quality: dict[str, Any] = {}
    luma_slot = comps[0].tq if comps else 0
    chroma_slot = comps[1].tq if len(comps) > 1 else None
    tables: dict[str, np.ndarray] = {}
    if luma_slot < 4 and reader.qt[luma_slot] is not None:
        tables["luma"] = reader.qt[luma_slot]  # type: ignore[assignment]
    if (chroma_slot is not None and chroma_slot < 4 and chroma_slot != luma_slot
            and reader.qt[chroma_slot] is not None):
        tables["chroma"] = reader.qt[chroma_slot]  # type: ignore[assignment]
    if tables:
        quality = estimate_quality(tables)
    reason = reader.unsupported()
    if not reason:
        hmax = max(c.h for c in comps)
        vmax = max(c.v for c in comps)
        if any(hmax % c.h or vmax % c.v for c in comps):
            reason = "fractional sampling ratios are not supported"
    assert reader.sof is not None
    return JPEGInfo(
        file_size=reader.n, width=reader.width, height=reader.height,
        precision=reader.precision,
        process=_SOF_NAMES.get(reader.sof, _marker_name(reader.sof)), sof_marker=reader.sof,
        components=tuple(ComponentInfo(c.cid, c.h, c.v, c.tq) for c in comps),
        color=reader.color(), subsampling=_subsampling(comps), scans=tuple(reader.scans),
        restart_intervals=tuple(sorted({s.restart_interval for s in reader.scans})),
        quant_tables=tuple(reader.qt_defs), huffman_tables=_huffman_infos(reader),
        segments=tuple(reader.segments), has_eoi=reader.has_eoi,
        trailing_bytes=max(0, reader.n - reader.end) if reader.has_eoi else 0,
        supported=not reason, unsupported_reason=reason, quality=quality,
    )
