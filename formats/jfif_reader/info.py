"""What a JPEG file's markers say: the records of ``jtorch info`` and the
reader (components, scans, tables, segments) and :func:`read_info`.

No byte layout of its own: the records describe the marker segments parsed by
:mod:`.markers` (see there). Reading the markers needs neither torch nor numba.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .markers import Component, MarkerReader

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
# read_info
# ----------------------------------------------------------------------------



def _subsampling(comps: list[Component]) -> str:
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


def _huffman_infos(reader: MarkerReader) -> tuple[HuffmanTableInfo, ...]:
    from ..huffman import STD_AC_TABLES, STD_DC_TABLES

    out = []
    for cls, slot, bits, huffval in reader.ht_defs:
        std = (STD_DC_TABLES if cls == "DC" else STD_AC_TABLES)
        standard = slot < 2 and (tuple(std[slot][0]), tuple(std[slot][1])) == (bits, huffval)
        out.append(HuffmanTableInfo(cls, slot, bits, huffval, standard))
    return tuple(out)


def _ijg_candidates() -> np.ndarray:
    """libjpeg's quality-scaled Annex K tables for quality 1..100, ``[100, 2, 64]``
    (``jpeg_quality_scaling`` + ``jpeg_add_quant_table`` with force_baseline,
    as :func:`jpegtorch.quality_to_tables`; numpy here so that ``jtorch info``
    needs no torch)."""
    from ..qtables import ANNEX_K_CHROMA, ANNEX_K_LUMA

    quality = np.arange(1, 101, dtype=np.int64)[:, None, None]
    scale = np.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    base = np.array((ANNEX_K_LUMA, ANNEX_K_CHROMA), dtype=np.int64)[None]
    return np.clip((base * scale + 50) // 100, 1, 255).astype(np.float64)


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
    cand = _ijg_candidates()  # [100, 2, 64]
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
    from .api import _as_bytes
    from .markers import SOF_NAMES, marker_name
    from .scans import Reader

    raw, name = _as_bytes(data, name)
    reader = Reader(raw, name=name, lenient=True, max_pixels=None, decode=False)
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
        process=SOF_NAMES.get(reader.sof, marker_name(reader.sof)), sof_marker=reader.sof,
        components=tuple(ComponentInfo(c.cid, c.h, c.v, c.tq) for c in comps),
        color=reader.color(), subsampling=_subsampling(comps), scans=tuple(reader.scans),
        restart_intervals=tuple(sorted({s.restart_interval for s in reader.scans})),
        quant_tables=tuple(reader.qt_defs), huffman_tables=_huffman_infos(reader),
        segments=tuple(reader.segments), has_eoi=reader.has_eoi,
        trailing_bytes=max(0, reader.n - reader.end) if reader.has_eoi else 0,
        supported=not reason, unsupported_reason=reason, quality=quality,
    )
