"""Quantization-table files (cjpeg's ``-qtables`` format) and named presets.

The file format is libjpeg's (see ``wizard.txt``): plain text with one to
four tables of 64 decimal integers each, in natural (row-major, *not*
zigzag) order, separated by any whitespace; ``#`` starts a comment that runs
to the end of the line. Tables are numbered 0, 1, ... in order of appearance.

Presets are named base-table sets: ``annex-k`` (the Annex K tables libjpeg
uses by default) is built in; any other name ``NAME`` is looked up as the file
``jpegtorch/presets/NAME.txt`` in the same ``-qtables`` format.

This module does not import torch: tables are tuples of 64 ints.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from jpegtorch.errors import JPEGError
from jpegtorch.kernels.quantize import ANNEX_K_CHROMA as _K_CHROMA
from jpegtorch.kernels.quantize import ANNEX_K_LUMA as _K_LUMA

Table = tuple[int, ...]
"""64 quantization values in natural (row-major) order."""

# The Annex K tables are defined once, beside the compiled quantizer.
ANNEX_K_LUMA: Table = _K_LUMA
ANNEX_K_CHROMA: Table = _K_CHROMA

MAX_TABLES = 4
MAX_VALUE = 65535
BUILTIN_PRESETS = ("annex-k",)
_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def presets_dir() -> Path:
    """The directory of preset files (``jpegtorch/presets``)."""
    import jpegtorch

    return Path(jpegtorch.__file__).resolve().parent / "presets"


def parse_qtables(text: str, *, source: str = "tables") -> list[Table]:
    """Parse cjpeg ``-qtables`` text into 1..4 tables of 64 ints (natural order).

    Raises:
        JPEGError: non-numeric data, a table with fewer than 64 values, more
            than four tables, or a value above 65535.
    """
    words = []
    for line in text.splitlines():
        words.extend(line.split("#", 1)[0].split())
    values = []
    for word in words:
        if not word.isdigit():
            raise JPEGError(f"{source}: non-numeric data {word[:20]!r} in quantization tables")
        values.append(int(word))
    if not values:
        raise JPEGError(f"{source}: no quantization tables found")
    if len(values) % 64:
        raise JPEGError(
            f"{source}: {len(values)} values; each quantization table needs 64"
        )
    if len(values) > 64 * MAX_TABLES:
        raise JPEGError(f"{source}: more than {MAX_TABLES} quantization tables")
    if max(values) > MAX_VALUE:
        raise JPEGError(f"{source}: quantization value {max(values)} is above {MAX_VALUE}")
    return [tuple(values[i : i + 64]) for i in range(0, len(values), 64)]


def read_qtables(path: str | os.PathLike[str]) -> list[Table]:
    """Read a cjpeg ``-qtables`` file (see :func:`parse_qtables`)."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise JPEGError(f"{path}: cannot read quantization tables ({exc.strerror})") from None
    return parse_qtables(text, source=str(path))


def format_qtables(tables: Sequence[Sequence[int]], *, comment: str | None = None) -> str:
    """cjpeg ``-qtables`` text for 1..4 tables of 64 values (natural order).

    Each table is written as eight rows of eight right-aligned numbers,
    preceded by a ``# table N`` comment; ``comment`` (may span lines) heads
    the file.
    """
    rows = [list(int(v) for v in t) for t in tables]
    if not 1 <= len(rows) <= MAX_TABLES or any(len(t) != 64 for t in rows):
        raise JPEGError("format_qtables needs 1..4 tables of 64 values")
    if any(not 0 <= v <= MAX_VALUE for t in rows for v in t):
        raise JPEGError(f"quantization values must be 0..{MAX_VALUE}")
    lines = []
    if comment:
        lines.extend(f"# {line}".rstrip() for line in comment.splitlines())
        lines.append("")
    roles = {0: " (luminance)", 1: " (chrominance)"}
    for n, table in enumerate(rows):
        lines.append(f"# table {n}{roles.get(n, '')}")
        for r in range(8):
            lines.append(" ".join(f"{v:3d}" for v in table[8 * r : 8 * r + 8]))
        lines.append("")
    return "\n".join(lines)


def write_qtables(path: str | os.PathLike[str], tables: Sequence[Sequence[int]], *,
                  comment: str | None = None) -> None:
    """Write tables to a cjpeg ``-qtables`` file (see :func:`format_qtables`)."""
    Path(path).write_text(format_qtables(tables, comment=comment), encoding="ascii")


def available_presets() -> list[str]:
    """Names of all presets: the built-in ones and ``jpegtorch/presets/*.txt``."""
    names = set(BUILTIN_PRESETS)
    directory = presets_dir()
    if directory.is_dir():
        names.update(p.stem for p in directory.glob("*.txt"))
    return sorted(names)


def preset_tables(name: str) -> list[Table]:
    """The base tables of the preset ``name`` (``[luma, chroma, ...]``)."""
    if name == "annex-k":
        return [ANNEX_K_LUMA, ANNEX_K_CHROMA]
    if _PRESET_NAME.match(name):
        path = presets_dir() / f"{name}.txt"
        if path.is_file():
            return read_qtables(path)
    raise JPEGError(
        f"unknown quantization-table preset {name!r} "
        f"(presets: {', '.join(available_presets())}; or give a -qtables file)"
    )


def resolve_tables(spec: str | os.PathLike[str]) -> tuple[Table, Table]:
    """Base ``(luma, chroma)`` tables from a ``-qtables`` file path or a preset name.

    An existing file wins over a preset of the same name. As in cjpeg, table 0
    is the luminance table and table 1 the chrominance table; a file with a
    single table keeps the Annex K chrominance table; tables 2 and 3 (used by
    cjpeg only with ``-qslots``) are ignored.
    """
    path = Path(spec)
    if path.is_file():
        tables = read_qtables(path)
    elif isinstance(spec, str) and _PRESET_NAME.match(spec) and os.sep not in spec:
        tables = preset_tables(spec)
    else:
        raise JPEGError(f"{spec}: no such quantization-table file or preset")
    luma = tables[0]
    chroma = tables[1] if len(tables) > 1 else ANNEX_K_CHROMA
    return luma, chroma
