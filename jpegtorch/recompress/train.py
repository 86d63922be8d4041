"""Learning the model's prior count tables offline (``jrc_tables.npz``).

    python -m jpegtorch.recompress.train ../shared/data/train -o jpegtorch/recompress/jrc_tables.npz

Every training image is written as JPEG files with Pillow (libjpeg-turbo) at
several qualities and samplings; the model then codes their coefficients,
and the raw symbol counts of every context are gathered (the contexts do
not depend on the tables, so one pass suffices). Each context's counts are
smoothed towards its parent (the same component class, position group and
pass, all neighbour/own/count buckets pooled) and scaled to rows of about
``PRIOR_TOTAL``, every entry at least 1. Never train on the Kodak set (the
benchmark).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

from . import model as M
from .coder import Stats, Tables, accumulate

CONFIGS = ((50, 2), (75, 2), (85, 2), (90, 2), (95, 2), (75, 0), (90, 0), (90, 1))
"""(quality, Pillow subsampling: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0) per training image."""
SMOOTHING = 32.0


def _images(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return [p for p in files if "kodak" not in str(p).lower()]


def gather(root: Path, *, limit: int | None = None, quiet: bool = False) -> Stats:
    """Raw symbol counts of the model over JPEG versions of the images under ``root``."""
    from PIL import Image

    from jpegtorch.formats import jpeg_layout as jl

    from .api import _read_coefficients

    stats = Stats.zeros()
    flat = Tables.flat()
    files = _images(root)[:limit]
    start = time.time()
    for i, path in enumerate(files):
        image = Image.open(path).convert("RGB")
        for quality, subsampling in CONFIGS:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality, subsampling=subsampling)
            data = buffer.getvalue()
            accumulate(_read_coefficients(data, jl.parse_layout(data), None), flat, stats)
        if not quiet:
            print(f"\r{i + 1}/{len(files)} images, {time.time() - start:.0f} s", end="",
                  file=sys.stderr, flush=True)
    if not quiet:
        print(file=sys.stderr)
    return stats


def _prior(counts: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Rows of about PRIOR_TOTAL (entries >= 1) from counts smoothed towards their parent."""
    counts = counts.astype(np.float64)
    k = counts.shape[1]
    pooled = np.zeros((parents.max() + 1, k))
    np.add.at(pooled, parents, counts)
    parent_p = (pooled + 0.5) / (pooled + 0.5).sum(axis=1, keepdims=True)
    p = (counts + SMOOTHING * parent_p[parents]) / (counts.sum(axis=1, keepdims=True)
                                                     + SMOOTHING)
    rows = np.maximum(1, np.round(p * (M.PRIOR_TOTAL - k)) + 1)
    return rows.astype(np.uint16)


def prior_tables(stats: Stats) -> dict[str, np.ndarray]:
    """The shipped tables from gathered counts."""
    nz_parent = np.arange(M.NZ_CONTEXTS) // M.NZ_BUCKETS
    ac_parent = np.arange(M.AC_CONTEXTS) // (M.NB_BUCKETS * M.OWN_BUCKETS * M.NZR_BUCKETS)
    dc_parent = np.arange(M.DC_CONTEXTS) // M.DC_BUCKETS
    return {"nz": _prior(stats.nz, nz_parent), "ac": _prior(stats.ac, ac_parent),
            "dc": _prior(stats.dc, dc_parent)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder of training images (PNG/JPEG)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .npz to write")
    parser.add_argument("--limit", type=int, default=None, help="use the first N images only")
    parser.add_argument("--stats", type=Path, default=None,
                        help="also save the raw counts here (or, if it exists and ROOT is "
                             "'-', derive the tables from it)")
    args = parser.parse_args(argv)
    if str(args.root) == "-" and args.stats is not None:
        with np.load(args.stats) as raw:
            stats = Stats(raw["nz"], raw["ac"], raw["dc"])
    else:
        stats = gather(args.root, limit=args.limit)
        if args.stats is not None:
            np.savez_compressed(args.stats, nz=stats.nz, ac=stats.ac, dc=stats.dc)
    tables = prior_tables(stats)
    with open(args.output, "wb") as handle:
        np.savez_compressed(handle, **tables)
    used = {name: int((getattr(stats, name).sum(axis=1) > 0).sum()) for name in ("nz", "ac", "dc")}
    print(f"wrote {args.output} (contexts seen: {used})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
