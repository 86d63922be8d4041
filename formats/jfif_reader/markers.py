"""JPEG marker segments: the parse of everything but the entropy-coded data.

Byte layout (ITU-T T.81 Annex B; what is an error and what a warning follows
libjpeg-turbo's ``jdmarker.c``). A file is ``FF D8`` (SOI), then marker
segments, each ``FF xx`` followed, for all markers but SOI, EOI, RSTn and TEM,
by a big-endian 16-bit length that counts itself and the payload:

- ``FF C0..CF`` but C4, C8, CC (SOFn): ``P(8) Y(16) X(16) Nf(8)``, then per
  component ``Ci(8) Hi(4) Vi(4) Tqi(8)``. C0 baseline, C1 extended, C2
  progressive, C9/CA their arithmetic-coded versions; the others (lossless,
  hierarchical) are recognised and refused.
- ``FF C4`` (DHT): tables ``Tc(4) Th(4) L1..L16(8 each) V(sum L)``.
- ``FF DB`` (DQT): tables ``Pq(4) Tq(4)`` + 64 entries in zigzag order, 8-bit
  (Pq 0) or 16-bit (Pq 1).
- ``FF CC`` (DAC): pairs ``Tc(4) Tb(4) Cs(8)`` (arithmetic conditioning).
- ``FF DD`` (DRI): ``Ri(16)``, the restart interval in MCUs.
- ``FF DA`` (SOS): ``Ns(8)``, per component ``Csj(8) Tdj(4) Taj(4)``, then
  ``Ss(8) Se(8) Ah(4) Al(4)``; the entropy-coded data follows the segment (see
  :mod:`.scans`).
- ``FF E0..EF`` (APPn), ``FF FE`` (COM), ``FF DC`` (DNL): skipped (APP0 JFIF
  and APP14 Adobe are read for the colour space). A length below 2 is read
  as an empty segment, as libjpeg's ``skip_variable`` / ``get_interesting_appn``
  do: what follows is then searched for the next marker (garbage bytes there
  are libjpeg's "extraneous bytes" warning). One running past the end of the
  file after the image data has begun ends the file (libjpeg's "premature end
  of JPEG file" warning).
- ``FF D0..D7`` (RSTn) and ``FF 01`` (TEM) outside the data: ignored.
- ``FF D9`` (EOI) ends the file; bytes between segments other than ``FF``
  fill are the "extraneous bytes" warning.

The reader here keeps all state on the instance; :mod:`.scans` adds the
entropy decoding on top of it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from jpegtorch.errors import JPEGError

from ..zigzag import ZIGZAG
from .info import QuantTableInfo, ScanInfo, SegmentInfo

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
SOF_NAMES = {
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
SUPPORTED_SOF = (0xC0, 0xC1, 0xC2, 0xC9, 0xCA)
ARITH_SOF = (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
PROGRESSIVE_SOF = (0xC2, 0xCA)


def marker_name(m: int) -> str:
    """The name of marker code ``m`` (``SOF2``, ``APP1``, ``RST3``, ...)."""
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



@dataclass
class Component:
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


class MarkerReader:
    """One parse of one file's markers (all state is local to the instance)."""

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
        self.comps: list[Component] = []
        self.jfif = False
        self.adobe_transform: int | None = None
        # scan state
        self.started = False  # first SOS seen (libjpeg's initial_setup done)
        self.multiple_scans = False
        self.discarded = 0  # garbage bytes not yet reported (libjpeg's discarded_bytes)
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
        """The payload of the segment whose length field is at ``pos``, and the next position.

        A length below 2 is an error, except for the segments libjpeg skips
        without looking (APPn, COM, DNL): those read as empty, and the search
        for the next marker starts right after the length field.
        """
        length = self.u16(pos)
        skippable = 0xE0 <= marker <= 0xEF or marker in (COM, DNL)
        if length < 2:
            if skippable:
                return b"", pos + 2
            raise self.error(f"bad {marker_name(marker)} segment length {length}")
        end = pos + length
        if end > self.n:
            if skippable and self.started:  # libjpeg skips into the end of the data
                self.corrupt(f"premature end of JPEG file (in the {marker_name(marker)} "
                             "segment)")
                return self.data[pos + 2 :], self.n
            raise self.error(f"truncated file (in the {marker_name(marker)} segment)")
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
        self.segments.append(SegmentInfo(marker_name(marker), pos - 2, len(payload), label))
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
            self.comps.append(Component(ci, cid, hv >> 4, hv & 15, tq))
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
        if sof not in SUPPORTED_SOF:
            kind = SOF_NAMES.get(sof, f"SOF{sof - 0xC0}")
            if sof in (0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF):
                return f"hierarchical JPEG ({kind}, {marker_name(sof)}) is not supported"
            if sof in (0xC3, 0xCB):
                return f"lossless JPEG ({marker_name(sof)}) is not supported"
            return f"{kind} JPEG ({marker_name(sof)}) is not supported"
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

    # -- scans (the entropy-coded data is the subclass's) -----------------------

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
        scan_comps: list[Component] = []
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
        progressive = self.sof in PROGRESSIVE_SOF
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

    def start_decoding(self, progressive: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode_scan(self, pos: int, comps: list[Component], dc_no: list[int], ac_no: list[int],
                    ss: int, se: int, ah: int, al: int, progressive: bool,
                    ) -> tuple[int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

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

    def emit_warnings(self) -> None:
        if self.warnings:
            where = f"{self.name}: " if self.name else ""
            unique = list(dict.fromkeys(self.warnings))
            extra = f" (and {len(unique) - 3} more)" if len(unique) > 3 else ""
            warnings.warn(f"{where}{'; '.join(unique[:3])}{extra}", JPEGWarning, stacklevel=3)
