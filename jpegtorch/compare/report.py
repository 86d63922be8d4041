"""Reports of a comparison: per-codec summaries, BD-rates, and the text
table, JSON and CSV formats."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .records import COLUMNS, MIN_BD_POINTS, Record


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def bd_rates(records: Sequence[Record], codec: str, baseline: str,
             metric: str = "psnr") -> float | None:
    """Mean BD-rate (percent; negative = smaller files) of ``codec`` against
    ``baseline`` over the images where both curves have at least
    :data:`MIN_BD_POINTS` distinct points.

    Per image, :func:`jpegtorch.metrics.bd_rate` (Bjøntegaard: a cubic fit of
    log-rate against quality, averaged over the common quality range) of bpp
    against ``metric``: ``"psnr"`` (dB) or ``"ssim"`` (converted to dB with
    :func:`jpegtorch.metrics.db`, as is usual for SSIM BD-rates).
    """
    from jpegtorch import metrics

    def value_of(r: Record) -> float | None:
        value = getattr(r, metric)
        if value is None:
            return None
        if metric in ("ssim", "ms_ssim"):
            value = float(metrics.db(value)) if value < 1 else math.inf
        return value if math.isfinite(value) else None

    results = []
    for image in dict.fromkeys(r.image for r in records):
        curves = []
        for name in (baseline, codec):
            points = {(r.bpp, value_of(r)) for r in records
                      if r.image == image and r.codec == name and value_of(r) is not None}
            curves.append(sorted(points))
        if any(len({p[1] for p in c}) < MIN_BD_POINTS or len({p[0] for p in c}) < MIN_BD_POINTS
               for c in curves):
            continue
        try:
            value = metrics.bd_rate([p[0] for p in curves[0]], [p[1] for p in curves[0]],
                                    [p[0] for p in curves[1]], [p[1] for p in curves[1]])
        except ValueError:  # curves that do not overlap
            continue
        if math.isfinite(value):
            results.append(float(value))
    return sum(results) / len(results) if results else None


def summarize(records: Sequence[Record], baseline: str | None = None) -> list[dict[str, Any]]:
    """Per-codec means (in order of appearance), identity counts and BD-rates
    (PSNR and SSIM) against ``baseline``."""
    rows = []
    for codec in dict.fromkeys(r.codec for r in records):
        mine = [r for r in records if r.codec == codec]
        checked = [r for r in mine if r.bytes_identical is not None]
        row: dict[str, Any] = {
            "codec": codec,
            "records": len(mine),
            "images": len({r.image for r in mine}),
            "bytes": _mean(r.bytes for r in mine),
            "bpp": _mean(r.bpp for r in mine),
            "psnr": _mean(r.psnr for r in mine),
            "psnr_y": _mean(r.psnr_y for r in mine),
            "ssim": _mean(r.ssim for r in mine),
            "ms_ssim": _mean(r.ms_ssim for r in mine),
            "encode_ms": _mean(r.encode_ms for r in mine),
            "decode_ms": _mean(r.decode_ms for r in mine),
            "checked": len(checked),
            "bytes_identical": sum(bool(r.bytes_identical) for r in checked),
            "pixels_identical": sum(bool(r.pixels_identical) for r in checked),
            "decoder_identical": sum(bool(r.decoder_identical) for r in mine
                                     if r.decoder_identical is not None),
            "decoder_checked": sum(r.decoder_identical is not None for r in mine),
            "bd_rate": None,
            "bd_rate_ssim": None,
        }
        if baseline is not None and codec != baseline:
            row["bd_rate"] = bd_rates(records, codec, baseline, "psnr")
            row["bd_rate_ssim"] = bd_rates(records, codec, baseline, "ssim")
        rows.append(row)
    return rows


def _fmt(value: float | None, spec: str, *, inf: str = "inf") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return inf
    return format(value, spec)


def _vs_ours(r: Record) -> str:
    if r.bytes_identical is None:
        return ""
    if r.bytes_identical:
        return "same bytes"
    if r.pixels_identical:
        return "same pixels"
    return f"differs ({_fmt(r.psnr_vs_jpegtorch, '.2f')} dB)"


def _align(rows: list[list[str]], left: int) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_table(records: Sequence[Record], baseline: str | None = None) -> str:
    """The aligned text report: one row per record, then the per-codec means
    (with BD-rates against ``baseline`` when there are enough qualities)."""
    if not records:
        return "no results"
    compared = any(r.bytes_identical is not None for r in records)
    decoder_checked = any(r.decoder_identical is not None for r in records)
    header = ["image", "codec", "q", "bytes", "bpp", "PSNR", "PSNR-Y", "SSIM", "MS-SSIM",
              "enc ms", "dec ms"] + (["vs jpegtorch"] if compared else [])
    rows = [header]
    for r in records:
        row = [Path(r.image).name, r.codec, str(r.quality), str(r.bytes), f"{r.bpp:.3f}",
               _fmt(r.psnr, ".2f"), _fmt(r.psnr_y, ".2f"), _fmt(r.ssim, ".4f"),
               _fmt(r.ms_ssim, ".4f"), f"{r.encode_ms:.2f}", f"{r.decode_ms:.2f}"]
        if compared:
            row.append(_vs_ours(r))
        rows.append(row)
    lines = _align(rows, left=2)
    summary = summarize(records, baseline)
    images = len({r.image for r in records})
    lines += ["", f"Means per codec over {images} image{'s' if images != 1 else ''}:"]
    with_bd = baseline is not None and any(s["bd_rate"] is not None for s in summary)
    head = ["codec", "n", "bytes", "bpp", "PSNR", "PSNR-Y", "SSIM", "MS-SSIM", "enc ms",
            "dec ms"]
    if compared:
        head += ["same bytes", "same pixels"]
    if decoder_checked:
        head.append("our decoder")
    if with_bd:
        head += [f"BD-rate PSNR vs {baseline}", "BD-rate SSIM"]
    rows = [head]
    for s in summary:
        row = [s["codec"], str(s["records"]), _fmt(s["bytes"], ".0f"), _fmt(s["bpp"], ".3f"),
               _fmt(s["psnr"], ".2f"), _fmt(s["psnr_y"], ".2f"), _fmt(s["ssim"], ".4f"),
               _fmt(s["ms_ssim"], ".4f"), _fmt(s["encode_ms"], ".2f"),
               _fmt(s["decode_ms"], ".2f")]
        if compared:
            if s["checked"]:
                row += [f"{s['bytes_identical']}/{s['checked']}",
                        f"{s['pixels_identical']}/{s['checked']}"]
            else:
                row += ["", ""]
        if decoder_checked:
            row.append(f"{s['decoder_identical']}/{s['decoder_checked']}"
                       if s["decoder_checked"] else "")
        if with_bd:
            row += [_fmt(s["bd_rate"], "+.2f") + ("%" if s["bd_rate"] is not None else ""),
                    _fmt(s["bd_rate_ssim"], "+.2f")
                    + ("%" if s["bd_rate_ssim"] is not None else "")]
        rows.append(row)
    lines += _align(rows, left=1)
    return "\n".join(lines)


def to_json(records: Sequence[Record]) -> str:
    """One JSON array, a record per (image, codec, quality); non-finite numbers
    (the PSNR of an identical decode) are ``null``."""
    return json.dumps([r.to_dict() for r in records], indent=2, allow_nan=False)


def to_csv(records: Sequence[Record]) -> str:
    """CSV with the JSON keys as columns (empty cells for ``null``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = r.to_dict()
        writer.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def format_report(records: Sequence[Record], fmt: str = "table",
                  baseline: str | None = None) -> str:
    """The report in ``table``, ``json`` or ``csv`` format."""
    if fmt == "json":
        return to_json(records)
    if fmt == "csv":
        return to_csv(records)
    if fmt == "table":
        return format_table(records, baseline)
    raise ValueError(f"unknown format {fmt!r}")

