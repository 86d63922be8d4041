"""Image metadata: EXIF, XMP, ICC profiles, comments and density, in JPEG and beyond.

A JPEG file carries its metadata in marker segments before the frame header
(ITU-T T.81 B.2.4: ``FF En`` APPn and ``FF FE`` COM, each a 2-byte big-endian
length that counts itself, so a payload holds at most 65533 bytes). The
segments this module reads and writes:

    APP0  "JFIF\\0", version (2), units (1: 0 aspect ratio only, 1 dots per
          inch, 2 dots per cm), Xdensity (2), Ydensity (2), thumbnail size
          (2 x 1) -- JFIF 1.02 (ECMA TR/98). The writer always makes one;
          only the density fields are metadata.
    APP1  "Exif\\0\\0" + a TIFF structure (Exif 2.3, CIPA DC-008, 4.5.4 and
          4.6): "II" or "MM" byte order, 42, the offset of IFD0; an IFD is a
          2-byte count of 12-byte entries (tag, type, count, value or
          offset) and the offset of the next IFD. Orientation is tag 0x0112
          of IFD0, a SHORT 1..8 (the row/column order of the stored pixels).
    APP1  "http://ns.adobe.com/xap/1.0/\\0" + an XMP packet (XMP part 3,
          1.1.3), UTF-8, at most 65504 bytes; larger packets continue in
          "http://ns.adobe.com/xmp/extension/\\0" segments (kept as they are).
    APP2  "ICC_PROFILE\\0", sequence number (1, from 1), chunk count (1), then
          a chunk of the profile (ICC.1:2010 Annex B.4); a profile longer than
          65519 bytes is split over several segments, written in order.
    COM   free text (T.81 B.2.4.5).

Other APPn segments (Photoshop/IPTC APP13, JFXX thumbnails, extended XMP,
...) are kept as they are, like ``jpegtran -copy all``, except MPF (APP2
"MPF\\0", CIPA DC-007), whose offsets point into the original file's later
images, which a re-encode does not carry.

Order of writing (what libjpeg-turbo does with Pillow's ``save(exif=, extra=,
xmp=, icc_profile=, comment=)``: the segments follow the JFIF APP0 / Adobe
APP14 header, before the quantization tables): APP1 Exif, the other APPn
segments, APP1 XMP, APP2 ICC chunks, COM. So with metadata our files are
byte-identical to Pillow's, and without it to libjpeg-turbo's. (One
exception: a JFXX APP0 extension goes first, right after the JFIF APP0, as
JFIF 1.02 requires.)

Other containers, through Pillow (PNG: iCCP, eXIf, iTXt "XML:com.adobe.xmp",
tEXt "Comment", pHYs; TIFF: tags 34675 ICC, 700 XMP, the Exif and GPS IFDs,
IFD0's descriptive tags, resolution; WebP: ICCP, EXIF, XMP chunks) are
mapped by :func:`from_pillow` and :func:`pillow_save_options`.

Everything here is pure Python over bytes (no torch); hostile input is
bounded by the segment lengths.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from jpegtorch.errors import JPEGError

EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
ICC_HEADER = b"ICC_PROFILE\x00"
MPF_HEADER = b"MPF\x00"
MAX_PAYLOAD = 65533  # 0xFFFF minus the 2-byte length field
ICC_CHUNK = MAX_PAYLOAD - len(ICC_HEADER) - 2  # 65519
MAX_EXIF = MAX_PAYLOAD - len(EXIF_HEADER)  # 65527
MAX_XMP = MAX_PAYLOAD - len(XMP_HEADER)  # 65504
ORIENTATION_TAG = 0x0112
APP0, APP1, APP2, APP14, COM, SOS, EOI = 0xE0, 0xE1, 0xE2, 0xEE, 0xFE, 0xDA, 0xD9

# The eight EXIF orientations, as what turns the stored pixels upright.
ORIENTATIONS = {
    1: "normal", 2: "mirrored horizontally", 3: "rotated 180", 4: "mirrored vertically",
    5: "mirrored, rotated 90 CCW", 6: "rotated 90 CW", 7: "mirrored, rotated 90 CW",
    8: "rotated 90 CCW",
}


@dataclass(frozen=True)
class Metadata:
    """Metadata carried from one image file to another.

    Attributes:
        exif: the Exif TIFF structure (what follows ``Exif\\0\\0``), or None.
        icc_profile: the whole ICC profile, or None.
        xmp: the XMP packet (UTF-8 bytes, without the namespace header), or None.
        comments: COM segment payloads (or PNG/GIF comments), in order.
        density: JFIF ``(units, x, y)`` (units 0 aspect ratio, 1 dpi, 2 dots
            per cm), or None for the default 1:1 with no units.
        extra: other APPn segments ``(marker 0xE0..0xEF, payload)``, in order,
            kept only between JPEG files.
    """

    exif: bytes | None = None
    icc_profile: bytes | None = None
    xmp: bytes | None = None
    comments: tuple[bytes, ...] = ()
    density: tuple[int, int, int] | None = None
    extra: tuple[tuple[int, bytes], ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc_profile or self.xmp or self.comments
                    or self.density or self.extra)

    @property
    def orientation(self) -> int | None:
        """EXIF orientation 1..8 (None when there is no EXIF or no valid tag)."""
        return exif_orientation(self.exif) if self.exif else None

    def with_orientation(self, value: int = 1) -> Metadata:
        """The same metadata with the orientation set to ``value`` in EXIF (if it
        has the tag) and in XMP (``tiff:Orientation``, if present)."""
        exif = set_exif_orientation(self.exif, value) if self.exif else self.exif
        xmp = set_xmp_orientation(self.xmp, value) if self.xmp else self.xmp
        return replace(self, exif=exif, xmp=xmp)

    def kinds(self) -> list[str]:
        """What is present, in words ("ICC profile", "EXIF", ...)."""
        names = []
        if self.icc_profile:
            names.append("ICC profile")
        if self.exif:
            names.append("EXIF")
        if self.xmp:
            names.append("XMP")
        if self.comments:
            names.append("comment")
        if self.density:
            names.append("density")
        names += _count_segments(marker for marker, _ in self.extra)
        return names

    def fit_jpeg(self) -> tuple[Metadata, list[str]]:
        """What of this metadata fits into JPEG segments, and what does not (in words).

        EXIF and XMP must fit one segment each (65527 and 65504 bytes), each
        comment one COM (65533); ICC profiles are split, so they always fit.
        """
        dropped = []
        exif, xmp = self.exif, self.xmp
        if exif is not None and len(exif) > MAX_EXIF:
            dropped.append(f"EXIF ({len(exif)} bytes, more than one JPEG segment holds)")
            exif = None
        if xmp is not None and len(xmp) > MAX_XMP:
            dropped.append(f"XMP ({len(xmp)} bytes, more than one JPEG segment holds)")
            xmp = None
        comments = tuple(c for c in self.comments if len(c) <= MAX_PAYLOAD)
        if len(comments) < len(self.comments):
            dropped.append("a comment longer than 65533 bytes")
        return replace(self, exif=exif, xmp=xmp, comments=comments), dropped

    def jpeg_segments(self) -> bytes:
        """The APPn/COM segments, in the order Pillow (libjpeg) writes them.

        Raises:
            JPEGError: EXIF, XMP or a comment too long for one segment.
        """
        parts = []
        # APP0 extensions (JFXX thumbnails) must follow the JFIF APP0 at once (JFIF 1.02).
        for marker, payload in self.extra:
            if marker == APP0:
                parts.append(segment(marker, payload))
        if self.exif:
            if len(self.exif) > MAX_EXIF:
                raise JPEGError(f"EXIF data is too long for a JPEG segment "
                                f"({len(self.exif)} > {MAX_EXIF} bytes)")
            parts.append(segment(APP1, EXIF_HEADER + self.exif))
        for marker, payload in self.extra:
            if marker != APP0:
                parts.append(segment(marker, payload))
        if self.xmp:
            if len(self.xmp) > MAX_XMP:
                raise JPEGError(f"XMP data is too long for a JPEG segment "
                                f"({len(self.xmp)} > {MAX_XMP} bytes)")
            parts.append(segment(APP1, XMP_HEADER + self.xmp))
        if self.icc_profile:
            chunks = [self.icc_profile[i:i + ICC_CHUNK]
                      for i in range(0, len(self.icc_profile), ICC_CHUNK)]
            if len(chunks) > 255:
                raise JPEGError(f"ICC profile too large for JPEG ({len(self.icc_profile)} "
                                "bytes, more than 255 segments)")
            for number, chunk in enumerate(chunks, 1):
                parts.append(segment(APP2, ICC_HEADER + bytes((number, len(chunks))) + chunk))
        for comment in self.comments:
            if len(comment) > MAX_PAYLOAD:
                raise JPEGError(f"comment too long for a COM segment ({len(comment)} bytes)")
            parts.append(segment(COM, comment))
        return b"".join(parts)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``jtorch info``)."""
        out: dict[str, Any] = {}
        if self.exif is not None:
            out["exif"] = {"bytes": len(self.exif), "orientation": self.orientation}
        if self.icc_profile is not None:
            out["icc_profile"] = {"bytes": len(self.icc_profile),
                                  **icc_summary(self.icc_profile)}
        if self.xmp is not None:
            out["xmp"] = {"bytes": len(self.xmp)}
        if self.comments:
            out["comments"] = [c.decode("utf-8", "replace") for c in self.comments]
        if self.density is not None:
            units, x, y = self.density
            out["density"] = {"units": {0: "none", 1: "dpi", 2: "dpcm"}.get(units, units),
                              "x": x, "y": y}
        if self.extra:
            out["other_segments"] = [{"marker": f"APP{m - APP0}", "bytes": len(p),
                                      "label": _label(p)} for m, p in self.extra]
        return out


def merge(metadata: Metadata | None = None, *, exif: bytes | Any = None,
          icc_profile: bytes | None = None, xmp: bytes | str | None = None,
          comment: bytes | str | None = None,
          dpi: tuple[float, float] | None = None) -> Metadata | None:
    """``metadata`` with the Pillow-style keyword arguments of the writers on top.

    ``exif`` may start with ``Exif\0\0`` (as Pillow's ``info["exif"]``) or be
    the bare TIFF structure, or be a ``PIL.Image.Exif``; ``dpi`` becomes a
    JFIF density in dots per inch (rounded, as Pillow does). None when there
    is nothing to write.
    """
    if hasattr(exif, "tobytes"):  # PIL.Image.Exif
        exif = exif.tobytes()
    changes: dict[str, Any] = {}
    if exif is not None:
        exif = bytes(exif)
        changes["exif"] = (exif[len(EXIF_HEADER):] if exif.startswith(EXIF_HEADER)
                           else exif) or None
    if icc_profile is not None:
        changes["icc_profile"] = bytes(icc_profile) or None
    if xmp is not None:
        changes["xmp"] = _as_bytes(xmp)
    if comment is not None:
        text = _as_bytes(comment)
        changes["comments"] = (text,) if text else ()
    if dpi is not None:
        x, y = (round(float(v)) for v in dpi)
        if not (0 < x <= 0xFFFF and 0 < y <= 0xFFFF):
            raise JPEGError(f"dpi must be 1..65535, got {dpi}")
        changes["density"] = (1, x, y)
    merged = replace(metadata or Metadata(), **changes)
    return merged or None


def _count_segments(markers: Iterator[int] | Any) -> list[str]:
    """["APP13 segment", "3 APP2 segments"]: each marker once, in order, with a count."""
    counts: dict[int, int] = {}
    for marker in markers:
        counts[marker] = counts.get(marker, 0) + 1
    return [f"{n} APP{m - APP0} segments" if n > 1 else f"APP{m - APP0} segment"
            for m, n in counts.items()]


def segment(marker: int, payload: bytes) -> bytes:
    """``FF marker``, the 2-byte length (payload + 2), the payload."""
    if len(payload) > MAX_PAYLOAD:
        raise JPEGError(f"marker segment 0x{marker:02X} is too long ({len(payload)} bytes)")
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _label(payload: bytes) -> str:
    head = payload[:40].split(b"\x00", 1)[0]
    return head.decode("latin-1") if head.isascii() and head.strip() else ""


# --------------------------------------------------------------------------- JPEG


def iter_segments(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(marker, offset, payload)`` of each segment from SOI up to SOS or EOI.

    Stops quietly at anything malformed (the decoder reports it).
    """
    if not data.startswith(b"\xff\xd8"):
        return
    pos = 2
    size = len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            return
        marker = data[pos]
        pos += 1
        if marker in (SOS, EOI) or marker == 0x00:
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            continue
        if pos + 2 > size:
            return
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2 or pos + length > size:
            return
        yield marker, pos - 2, data[pos + 2:pos + length]
        pos += length


def read_jpeg_metadata(data: bytes) -> Metadata:
    """The metadata of a JPEG file (see the module docstring for what is kept)."""
    exif = xmp = None
    density = None
    comments: list[bytes] = []
    extra: list[tuple[int, bytes]] = []
    icc_chunks: list[tuple[int, int, bytes, bytes]] = []  # (seq, count, chunk, payload)
    for marker, _, payload in iter_segments(data):
        if marker == APP0 and payload.startswith(b"JFIF\x00") and len(payload) >= 12:
            units, x, y = payload[7], *struct.unpack(">HH", payload[8:12])
            if (units, x, y) != (0, 1, 1):
                density = (units, x, y)
        elif marker == APP14 and payload.startswith(b"Adobe"):
            continue  # colour transform: written by the encoder itself
        elif marker == APP1 and payload.startswith(EXIF_HEADER) and exif is None:
            exif = payload[len(EXIF_HEADER):]
        elif marker == APP1 and payload.startswith(XMP_HEADER) and xmp is None:
            xmp = payload[len(XMP_HEADER):]
        elif marker == APP2 and payload.startswith(ICC_HEADER) and len(payload) >= 14:
            icc_chunks.append((payload[12], payload[13], payload[14:], payload))
        elif marker == APP2 and payload.startswith(MPF_HEADER):
            continue  # offsets into the original file: meaningless after a re-encode
        elif marker == COM:
            comments.append(payload)
        elif 0xE0 <= marker <= 0xEF:
            extra.append((marker, payload))
    icc = None
    if icc_chunks:
        count = icc_chunks[0][1]
        numbers = sorted(c[0] for c in icc_chunks)
        if count >= 1 and all(c[1] == count for c in icc_chunks) and \
                numbers == list(range(1, count + 1)):
            icc = b"".join(c[2] for c in sorted(icc_chunks, key=lambda c: c[0]))
        else:  # an inconsistent set: keep the segments as they are (jpegtran does)
            extra += [(APP2, c[3]) for c in icc_chunks]
    return Metadata(exif=exif, icc_profile=icc, xmp=xmp, comments=tuple(comments),
                    density=density, extra=tuple(extra))


def insert_into_jpeg(jpeg: bytes, metadata: Metadata | None) -> bytes:
    """``jpeg`` (as the writer lays it out: SOI, then a JFIF APP0 or an Adobe
    APP14) with ``metadata``'s segments after that header and its density in
    the JFIF APP0. No metadata: the bytes unchanged."""
    if not metadata:
        return jpeg
    if not jpeg.startswith(b"\xff\xd8\xff") or jpeg[3] not in (APP0, APP14):
        raise JPEGError("not a JPEG file as the writer lays it out")
    header_end = 4 + int.from_bytes(jpeg[4:6], "big")
    head = bytearray(jpeg[:header_end])
    if metadata.density is not None and jpeg[3] == APP0 and jpeg[6:11] == b"JFIF\x00":
        units, x, y = metadata.density
        if not (0 <= units <= 2 and 0 <= x <= 0xFFFF and 0 <= y <= 0xFFFF):
            raise JPEGError(f"bad JFIF density {metadata.density}")
        head[13] = units
        head[14:18] = struct.pack(">HH", x, y)
    return bytes(head) + metadata.jpeg_segments() + jpeg[header_end:]


# --------------------------------------------------------------------------- EXIF


def _ifd0_orientation_entry(tiff: bytes) -> tuple[str, int, int] | None:
    """(byte order, entry offset, type) of IFD0's orientation entry, or None."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    magic, ifd = struct.unpack(order + "HI", tiff[2:8])
    if magic != 42 or ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    for i in range(min(count, (len(tiff) - ifd - 2) // 12)):
        entry = ifd + 2 + 12 * i
        tag, kind, number = struct.unpack(order + "HHI", tiff[entry:entry + 8])
        if tag == ORIENTATION_TAG and number == 1 and kind in (3, 4):  # SHORT or LONG
            return order, entry, kind
    return None


def exif_orientation(tiff: bytes | None) -> int | None:
    """The orientation (1..8) in an Exif TIFF structure, or None."""
    if not tiff:
        return None
    if tiff.startswith(EXIF_HEADER):
        tiff = tiff[len(EXIF_HEADER):]
    found = _ifd0_orientation_entry(tiff)
    if found is None:
        return None
    order, entry, kind = found
    value = struct.unpack(order + ("H" if kind == 3 else "I"), tiff[entry + 8:entry + 8 + (
        2 if kind == 3 else 4)])[0]
    return value if 1 <= value <= 8 else None


def set_exif_orientation(tiff: bytes, value: int) -> bytes:
    """The Exif TIFF structure with IFD0's orientation set to ``value`` (in place: the
    layout, every other byte and the offsets stay). Without the tag: unchanged."""
    if not 1 <= value <= 8:
        raise ValueError("orientation must be 1..8")
    prefix = EXIF_HEADER if tiff.startswith(EXIF_HEADER) else b""
    body = tiff[len(prefix):]
    found = _ifd0_orientation_entry(body)
    if found is None:
        return tiff
    order, entry, kind = found
    patched = bytearray(body)
    patched[entry + 8:entry + 12] = struct.pack(order + ("HH" if kind == 3 else "I"),
                                                *((value, 0) if kind == 3 else (value,)))
    return prefix + bytes(patched)


_XMP_ORIENTATION = (re.compile(rb"(tiff:Orientation\s*=\s*[\"'])\s*[1-8]\s*([\"'])"),
                    re.compile(rb"(<tiff:Orientation>)\s*[1-8]\s*(</tiff:Orientation>)"))


def set_xmp_orientation(xmp: bytes, value: int) -> bytes:
    """The XMP packet with ``tiff:Orientation`` (attribute or element) set to ``value``."""
    for pattern in _XMP_ORIENTATION:
        xmp = pattern.sub(rb"\g<1>" + str(value).encode() + rb"\g<2>", xmp)
    return xmp


def orient(array: Any, orientation: int | None) -> Any:
    """Pixels ``[C, H, W]`` turned upright for an EXIF ``orientation`` (numpy or torch
    indexing; what ``PIL.ImageOps.exif_transpose`` does). 1 or None: unchanged."""
    if orientation in (None, 1):
        return array
    import numpy as np

    a = np.asarray(array)
    flip_x = (slice(None), slice(None), slice(None, None, -1))
    flip_y = (slice(None), slice(None, None, -1), slice(None))
    turned = {
        2: lambda: a[flip_x],
        3: lambda: a[:, ::-1, ::-1],
        4: lambda: a[flip_y],
        5: lambda: a.transpose(0, 2, 1),
        6: lambda: a.transpose(0, 2, 1)[flip_x],   # 90 clockwise
        7: lambda: a.transpose(0, 2, 1)[:, ::-1, ::-1],
        8: lambda: a.transpose(0, 2, 1)[flip_y],   # 90 counter-clockwise
    }[int(orientation)]()
    return np.ascontiguousarray(turned)


# --------------------------------------------------------------------------- ICC


def icc_summary(profile: bytes) -> dict[str, Any]:
    """Colour space, version and description of an ICC profile (ICC.1 7.2, 9.2.41)."""
    out: dict[str, Any] = {}
    if len(profile) < 132:
        return out
    out["color_space"] = profile[16:20].decode("latin-1").strip()
    out["version"] = f"{profile[8]}.{profile[9] >> 4}"
    description = _icc_description(profile)
    if description:
        out["description"] = description
    return out


def _icc_description(profile: bytes) -> str | None:
    (count,) = struct.unpack(">I", profile[128:132])
    for i in range(min(count, (len(profile) - 132) // 12)):
        sig, offset, size = struct.unpack(">4sII", profile[132 + 12 * i:144 + 12 * i])
        if sig != b"desc" or offset + size > len(profile) or size < 12:
            continue
        tag = profile[offset:offset + size]
        if tag[:4] == b"desc":  # v2 textDescriptionType: ASCII count + string
            (n,) = struct.unpack(">I", tag[8:12])
            return tag[12:12 + n].split(b"\x00", 1)[0].decode("latin-1", "replace") or None
        if tag[:4] == b"mluc":  # v4 multiLocalizedUnicodeType: first record, UTF-16BE
            records, record_size = struct.unpack(">II", tag[8:16])
            if records and record_size >= 12 and len(tag) >= 28:
                length, start = struct.unpack(">II", tag[20:28])
                return tag[start:start + length].decode("utf-16-be", "replace") or None
    return None


# --------------------------------------------------------------------------- Pillow

# IFD0 tags that describe the picture (TIFF 6.0 / Exif 2.3), as opposed to
# tags describing a TIFF file's own layout (strips, compression, ...).
DESCRIPTIVE_TIFF_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x011A, 0x011B, 0x0128, 0x0131,
                         0x0132, 0x013B, 0x013E, 0x013F, 0x0211, 0x0213, 0x0214, 0x8298)
EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def _as_bytes(value: Any) -> bytes | None:
    if value is None or value == b"" or value == "":
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def from_pillow(image: Any) -> Metadata:
    """The metadata of an image opened with Pillow (PNG, TIFF, WebP, GIF, ...).

    JPEG files are better read with :func:`read_jpeg_metadata` (every segment,
    byte for byte).
    """
    info = image.info
    icc = _as_bytes(info.get("icc_profile"))
    xmp = _as_bytes(info.get("xmp") or info.get("XML:com.adobe.xmp"))
    exif = None
    if getattr(image, "format", None) == "TIFF":
        exif = _tiff_exif(image)
    else:
        raw = _as_bytes(info.get("exif"))
        if raw is None and "Raw profile type exif" in info:  # ImageMagick's PNG text
            raw = _raw_profile(info["Raw profile type exif"])
        if raw:
            exif = raw[len(EXIF_HEADER):] if raw.startswith(EXIF_HEADER) else raw
    comments = []
    for key in ("comment", "Comment"):
        value = _as_bytes(info.get(key))
        if value:
            comments.append(value)
    density = None
    dpi = info.get("dpi")
    if dpi and len(dpi) == 2 and dpi[0] and dpi[1]:
        if getattr(image, "format", None) == "BMP":
            # cjpeg (rdbmp.c) keeps a BMP's pixels per metre as dots per cm,
            # truncated: so do we (Pillow gives ppm / 39.3701 as "dpi").
            x, y = (round(float(v) * 39.3701) // 100 for v in dpi)
            units = 2
        else:
            x, y = (round(float(v)) for v in dpi)
            units = 1
        if 0 < x <= 0xFFFF and 0 < y <= 0xFFFF:
            density = (units, x, y)
    return Metadata(exif=exif or None, icc_profile=icc, xmp=xmp, comments=tuple(comments),
                    density=density)


def _raw_profile(text: Any) -> bytes | None:
    """ImageMagick's "Raw profile type exif" PNG text: name, length, hex digits."""
    try:
        parts = str(text).split()
        data = bytes.fromhex("".join(parts[2:]))
        return data[: int(parts[1])] if data else None
    except (ValueError, IndexError):
        return None


def _tiff_exif(image: Any) -> bytes | None:
    """A clean Exif block from a TIFF's tags: IFD0's descriptive tags and the Exif
    and GPS IFDs (not the strips, compression, ... of the TIFF file itself)."""
    from PIL import Image

    source = image.getexif()
    clean = Image.Exif()
    for tag in DESCRIPTIVE_TIFF_TAGS:
        if tag in source:
            clean[tag] = source[tag]
    for ifd in (EXIF_IFD, GPS_IFD):
        sub = source.get_ifd(ifd)
        if sub:
            clean[ifd] = dict(sub)
    if not len(clean):
        return None
    data = clean.tobytes()
    return data[len(EXIF_HEADER):] if data.startswith(EXIF_HEADER) else data


# Which metadata each Pillow output format can hold.
_FORMAT_HOLDS = {
    "JPEG": {"icc_profile", "exif", "xmp", "comments", "density"},
    "PNG": {"icc_profile", "exif", "xmp", "comments", "density"},
    "TIFF": {"icc_profile", "exif", "xmp", "comments", "density"},
    "WEBP": {"icc_profile", "exif", "xmp"},
    "GIF": {"comments"},
    "BMP": {"density"},
}
_WORDS = {"icc_profile": "ICC profile", "exif": "EXIF", "xmp": "XMP", "comments": "comment",
          "density": "density"}


def pillow_save_options(metadata: Metadata, fmt: str) -> tuple[dict[str, Any], list[str]]:
    """``Image.save`` keyword arguments that write ``metadata`` in format ``fmt``
    (a Pillow format name), and what cannot be written there (in words)."""
    holds = _FORMAT_HOLDS.get(fmt.upper(), set())
    options: dict[str, Any] = {}
    dropped = []
    for key in ("icc_profile", "exif", "xmp", "comments"):  # (density: not worth a word)
        value = getattr(metadata, key)
        if value and key not in holds:
            dropped.append(_WORDS[key])
    if metadata.extra:
        dropped += _count_segments(m for m, _ in metadata.extra)
    if metadata.icc_profile and "icc_profile" in holds:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif and "exif" in holds:
        options["exif"] = EXIF_HEADER + metadata.exif
    if metadata.density and "density" in holds:
        units, x, y = metadata.density
        if units in (1, 2) and x and y:
            scale = 2.54 if units == 2 else 1.0
            options["dpi"] = (x * scale, y * scale)
    fmt = fmt.upper()
    if fmt == "PNG" and (metadata.xmp or metadata.comments):
        from PIL import PngImagePlugin

        text = PngImagePlugin.PngInfo()
        if metadata.xmp:
            text.add_itxt("XML:com.adobe.xmp", metadata.xmp.decode("utf-8", "replace"))
        for comment in metadata.comments:
            text.add_itxt("Comment", comment.decode("utf-8", "replace"))
        options["pnginfo"] = text
    elif fmt in ("WEBP", "JPEG") and metadata.xmp:
        options["xmp"] = metadata.xmp
    elif fmt == "TIFF" and (metadata.xmp or metadata.comments):
        from PIL import TiffImagePlugin

        tags = TiffImagePlugin.ImageFileDirectory_v2()
        if metadata.exif:
            exif = _exif_object(metadata.exif)
            for tag, value in exif.items():
                tags[tag] = exif.get_ifd(tag) if tag in (EXIF_IFD, GPS_IFD) else value
        if metadata.xmp:
            tags[700] = metadata.xmp
        if metadata.comments and 0x010E not in tags:
            tags[0x010E] = metadata.comments[0].decode("utf-8", "replace")
        options.pop("exif", None)
        options["tiffinfo"] = tags
    if fmt == "JPEG" and metadata.comments:
        options["comment"] = metadata.comments[0]
        if len(metadata.comments) > 1:
            dropped.append("all comments but the first")
    if fmt == "GIF" and metadata.comments:
        options["comment"] = metadata.comments[0]
    return options, dropped


def _exif_object(tiff: bytes) -> Any:
    from PIL import Image

    exif = Image.Exif()
    exif.load(EXIF_HEADER + tiff)
    return exif
