"""``jtorch info``: what a JPEG file's markers say (no pixel decoding)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._batch import JPEG_EXTENSIONS, batch_options, collect_inputs
from ._common import (
    STDIO,
    describe_exception,
    error_line,
    handle_errors,
    quiet_debug_options,
    read_input,
)

_COLOR_NAMES = {"gray": "gray", "ycbcr": "YCbCr", "rgb": "RGB", "cmyk": "CMYK",
                "ycck": "YCCK", "unknown": "unknown colour space"}


def _quality_text(quality: dict[str, Any]) -> str:
    if not quality:
        return "unknown (no quantization table)"
    parts = [f"{key} {quality[key]}" for key in ("luma", "chroma") if key in quality]
    if quality.get("exact"):
        return f"{quality['quality']} (IJG tables, exact match; {', '.join(parts)})"
    return f"~{quality['quality']} (estimate: tables are not IJG-scaled; {', '.join(parts)})"


def _table_grid(values: tuple[int, ...]) -> list[str]:
    return ["      " + " ".join(f"{v:3d}" for v in values[r * 8 : r * 8 + 8]) for r in range(8)]


def _scan_script(info: Any) -> str:
    """The scans in cjpeg's ``-scans`` syntax (component indexes, not ids), so
    that ``jtorch encode --scans`` / ``cjpeg -scans`` can reproduce them."""
    index = {c.id: i for i, c in enumerate(info.components)}
    entries = []
    for s in info.scans:
        comps = ",".join(str(index.get(c, c)) for c in s.components)
        if (s.ss, s.se, s.ah, s.al) == (0, 63, 0, 0):
            entries.append(f"{comps};")
        else:
            entries.append(f"{comps}: {s.ss}-{s.se}, {s.ah}, {s.al};")
    return " ".join(entries)


def metadata_record(data: bytes) -> dict[str, Any]:
    """The metadata of a JPEG file for ``info``: what :meth:`Metadata.describe` says,
    plus the number of APP2 segments the ICC profile takes."""
    from jpegtorch.formats.metadata import ICC_HEADER, iter_segments, read_jpeg_metadata

    record = read_jpeg_metadata(data).describe()
    if "icc_profile" in record:
        record["icc_profile"]["segments"] = sum(
            1 for marker, _, payload in iter_segments(data)
            if marker == 0xE2 and payload.startswith(ICC_HEADER))
    return record


def format_metadata(record: dict[str, Any]) -> list[str]:
    """Lines describing :func:`metadata_record`'s result."""
    from jpegtorch.formats.metadata import ORIENTATIONS

    items = []
    if "exif" in record:
        exif = record["exif"]
        orientation = exif.get("orientation")
        text = f"EXIF: {exif['bytes']} bytes"
        if orientation is not None:
            text += f", orientation {orientation} ({ORIENTATIONS.get(orientation, '?')})"
        items.append(text)
    if "icc_profile" in record:
        icc = record["icc_profile"]
        n = icc.get("segments", 1)
        text = f"ICC profile: {icc['bytes']} bytes in {n} segment{'s' if n != 1 else ''}"
        if icc.get("color_space"):
            text += f", {icc['color_space']}"
        if icc.get("description"):
            text += f', "{icc["description"]}"'
        items.append(text)
    if "xmp" in record:
        items.append(f"XMP: {record['xmp']['bytes']} bytes")
    for comment in record.get("comments", []):
        short = comment if len(comment) <= 60 else comment[:57] + "..."
        items.append("comment: " + json.dumps(short, ensure_ascii=False))
    if "density" in record:
        d = record["density"]
        unit = {"none": " (aspect ratio)", "dpi": " dpi", "dpcm": " dots/cm"}.get(d["units"], "")
        items.append(f"density: {d['x']}x{d['y']}{unit}")
    groups: dict[tuple[str, str], list[int]] = {}  # (marker, label) -> sizes, in order
    for other in record.get("other_segments", []):
        groups.setdefault((other["marker"], other.get("label") or ""), []).append(other["bytes"])
    for (marker, label), sizes in groups.items():
        count = f"{len(sizes)} segments, " if len(sizes) > 1 else ""
        items.append(f"other: {marker}{' ' + label if label else ''} ({count}"
                     f"{sum(sizes)} bytes)")
    if not items:
        return ["  metadata:      none"]
    return ["  metadata:      " + items[0]] + ["                 " + i for i in items[1:]]


def format_info(name: str, info: Any, *, verbose: bool = False,
                metadata: dict[str, Any] | None = None) -> str:
    """Human-readable description of a :class:`JPEGInfo`."""
    comps = info.components
    color = _COLOR_NAMES.get(info.color, info.color)
    lines = [
        f"{name}: JPEG {info.width}x{info.height}, {len(comps)} component"
        f"{'s' if len(comps) != 1 else ''} ({color}), {info.precision}-bit",
        f"  sampling:      {info.subsampling} ({info.sampling_factors}; component ids "
        f"{','.join(str(c.id) for c in comps)})",
        f"  coding:        {info.process} (SOF{info.sof_marker - 0xC0}), {len(info.scans)} scan"
        f"{'s' if len(info.scans) != 1 else ''}",
        "  restart:       " + (", ".join(f"every {r} MCUs" if r else "none"
                                         for r in info.restart_intervals) or "none"),
        f"  quality:       {_quality_text(info.quality)}",
    ]
    qt = ", ".join(f"{t.slot} ({'16' if t.precision else '8'}-bit)" for t in info.quant_tables)
    lines.append(f"  quant tables:  {qt or 'none'}")
    if verbose:
        for t in info.quant_tables:
            lines.append(f"    table {t.slot}:")
            lines.extend(_table_grid(t.values))
    if info.huffman_tables:
        kinds = {t.standard for t in info.huffman_tables}
        label = ("standard (Annex K)" if kinds == {True}
                 else "optimized" if kinds == {False} else "mixed standard and custom")
        names = " ".join(f"{t.table_class}{t.slot}{'' if t.standard else '*'}"
                         for t in info.huffman_tables)
        lines.append(f"  huffman:       {label}: {names}")
    elif "arithmetic" in info.process:
        lines.append("  huffman:       none (arithmetic coding)")
    else:
        lines.append("  huffman:       none defined (standard tables assumed, as Motion-JPEG)")
    if info.segments:
        segs = ", ".join(f"{s.marker} {s.label}".strip() + f" ({s.length} bytes)"
                         for s in info.segments)
        lines.append(f"  segments:      {segs}")
    else:
        lines.append("  segments:      none")
    if len(info.scans) > 1:
        lines.append(f"  scan script:   {_scan_script(info)}")
    if verbose:
        for i, s in enumerate(info.scans):
            lines.append(f"    scan {i + 1}: components {','.join(map(str, s.components))} "
                         f"Ss={s.ss} Se={s.se} Ah={s.ah} Al={s.al} ({s.length} bytes)")
    if metadata is not None:
        lines.extend(format_metadata(metadata))
    tail = "" if info.has_eoi else ", no EOI marker (truncated?)"
    if info.trailing_bytes:
        tail += f", {info.trailing_bytes} bytes after EOI"
    lines.append(f"  file:          {info.file_size} bytes, {info.bits_per_pixel:.3f} bpp{tail}")
    if not info.supported:
        lines.append(f"  decodable:     no: {info.unsupported_reason}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list, one object per file (errors as {file, error}).")
@click.option("-v", "--verbose", is_flag=True, help="Also print the tables and every scan.")
@batch_options(jobs=False, json_records=False, force=False)
@quiet_debug_options
@handle_errors
def info(inputs: tuple[str, ...], as_json: bool, verbose: bool, recursive: bool,
         files_from: str | None, null: bool, quiet: bool, debug: bool) -> None:
    """Describe JPEG files: size, sampling, coding, tables, quality, markers.

    Prints, per file: size and components, chroma sampling ("4:2:0", ...,
    plus the raw factors), baseline/extended/progressive and the number of
    scans, restart interval, quantization tables with an estimate of the
    IJG (libjpeg -quality) setting, Huffman tables (standard or optimized),
    APPn/COM segments, the metadata (EXIF with its orientation, ICC profile,
    XMP, comments, density), and file size in bytes and bits per pixel.

    \b
    Examples:
      jtorch info photo.jpg
      jtorch info *.jpg --json | python -m json.tool
      jtorch info -r photos/ --json | jq -r '.[] | [.file, .metadata.exif.orientation] | @tsv'
    """
    found = collect_inputs(inputs, files_from=files_from, null=null, recursive=recursive,
                           extensions=JPEG_EXTENSIONS)
    from jpegtorch.formats.container import RECOMPRESS_CODEC, describe, is_container
    from jpegtorch.formats.jfif_reader import read_info

    failures = 0
    records: list[dict[str, Any]] = []
    blocks: list[str] = []
    for name, message in found.problems:
        failures += 1
        error_line(name, message)
        records.append({"file": name, "error": message})
    for src in (source.path for source in found.sources):
        name = "<stdin>" if src == STDIO else src
        try:
            data = read_input(src)
            if is_container(data):  # a .jtc (by magic bytes)
                described = describe(data)
                if described.get("codec") == RECOMPRESS_CODEC:
                    from jpegtorch.recompress import recompress_info

                    described["recompressed"] = recompress_info(data).to_dict()
                if as_json:
                    records.append({"file": name, **described})
                else:
                    if blocks:
                        click.echo("")
                    click.echo(format_container(name, described))
                    blocks.append(name)
                continue
            result = read_info(data)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            failures += 1
            if debug:
                import traceback

                traceback.print_exc()
            message = describe_exception(exc)
            error_line(name, message)
            records.append({"file": name, "error": message})
            continue
        meta = metadata_record(data)
        if as_json:
            records.append({"file": name, **result.to_dict(), "metadata": meta})
        else:
            text = format_info(name, result, verbose=verbose, metadata=meta)
            if blocks:
                click.echo("")
            click.echo(text)
            blocks.append(text)
    if as_json:
        click.echo(json.dumps(records, indent=2))
    if failures:
        sys.exit(1)


def format_container(name: str, info: dict[str, Any]) -> str:
    """Human-readable summary of a .jtc file (from ``container.describe``)."""
    if "recompressed" in info:
        return _format_recompressed(name, info)
    lines = [f"{name}: jtorch learned container v{info.get('version')}, "
             f"{info.get('width')}x{info.get('height')}, {info.get('channels')} channels"]
    lines.append(f"  codec:         {info.get('codec')} (model {info.get('model')}, "
                 f"weights {info.get('model_hash')}, level {info.get('level')})")
    for stream in info.get("streams", []):
        lines.append(f"  stream:        {stream.get('name')}: {stream.get('bytes')} bytes "
                     f"({stream.get('bits')} bits), crc32 {stream.get('crc32')}")
    lines.append(f"  header:        {info.get('header_bytes')} bytes")
    lines.append(f"  file:          {info.get('file_bytes')} bytes, {info.get('bpp', 0):.3f} bpp")
    return "\n".join(lines)


def _format_recompressed(name: str, info: dict[str, Any]) -> str:
    """Summary of a .jtc holding a losslessly recompressed JPEG."""
    r = info["recompressed"]
    size = (f"{info.get('width')}x{info.get('height')}, {info.get('channels')} components"
            if info.get("width") else "size unknown")
    how = ("stored verbatim (could not be modelled exactly; no saving)" if r["verbatim"]
           else f"coefficients modelled (model {info.get('model')})")
    lines = [f"{name}: jtorch recompressed JPEG (.jtc v{info.get('version')}), {size}",
             f"  content:       {how}",
             f"  original:      {r['original_bytes']} bytes (restored byte for byte; "
             "jtorch decode -o file.jpg)",
             f"  container:     {info.get('file_bytes')} bytes, saving "
             f"{100 * r['saving']:.1f} %"]
    for stream in info.get("streams", []):
        lines.append(f"  stream:        {stream.get('name')}: {stream.get('bytes')} bytes, "
                     f"crc32 {stream.get('crc32')}")
    return "\n".join(lines)
