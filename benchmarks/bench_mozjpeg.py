"""jtorch's best files against mozjpeg (issue 12): BD-rates on Kodak and encode time.

Sub-commands (default ``all`` = ``rd`` + ``time``)::

    python benchmarks/bench_mozjpeg.py rd      # BD-rates, Kodak, q 30..90, 4:2:0
    python benchmarks/bench_mozjpeg.py time    # encode time against mozjpeg (same run)
    python benchmarks/bench_mozjpeg.py all --json docs/mozjpeg_rd.json

``rd``: every Kodak image (never used to train or tune anything) is encoded
with 4:2:0 chroma at qualities 30, 35, ..., 90 by each encoder below, decoded
by Pillow (libjpeg-turbo), and scored with RGB PSNR and SSIM (RGB,
pytorch-msssim; in dB, ``-10 log10(1 - SSIM)``, for the fit). Per image, the
Bjøntegaard BD-rate (:func:`jpegtorch.metrics.bd_rate`, cubic fit of log-rate
against quality); the tables report the mean over the images. Anchor: Annex K
tables with optimized Huffman codes (libjpeg-turbo's ``-optimize``, our
writer's bytes). Rows:

* ``tune-psnr``, ``tune-ssim``: ``jtorch encode --tune psnr|ssim``;
* ``trellis``: ``--trellis`` alone (Annex K tables);
* ``progressive``: ``--progressive`` alone (libjpeg-turbo's progression,
  optimized Huffman codes), when this jpegtorch has it;
* ``tuned-psnr``: the ``tuned-psnr`` preset with ``--optimize``;
* ``mozjpeg``, ``mozjpeg-psnr``, ``mozjpeg-ssim``: mozjpeg 4.0.3's ``cjpeg``
  with its defaults, ``-tune-psnr``, ``-tune-ssim`` (4:2:0 is its default),
  from ``../shared/tools/mozjpeg-4.0.3`` or ``--mozjpeg``; skipped, with a
  note, when absent.

Also the targets of issue 12: ``tune-psnr`` against ``mozjpeg-psnr`` at equal
PSNR and ``tune-ssim`` against ``mozjpeg`` at equal SSIM (per image, then the
mean).

``time``: on ``--time-images`` Kodak images at qualities 50, 75 and 90, each
encoder is timed in turn (interleaved, after a warm-up), ``--repeats`` times;
medians of wall time per encode. Ours: the library call
(``encode_jpeg(image, q, tune=...)``, image already in memory); mozjpeg: the
``cjpeg`` process reading a PPM from a RAM file system path (its start-up
included, which favours us by a few ms). Run it under the machine's heavy
lock on a shared machine.

Results are cached in ``out/bench_mozjpeg_cache.json`` (per encoder, image and
quality), so an interrupted run resumes; ``--fresh`` ignores the cache and
``--redo ROW ...`` recomputes some encoders.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from jpegtorch.formats.jfif_writer import encode_jpeg
from PIL import Image

from jpegtorch import metrics

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
MOZJPEG = ROOT / ".." / "shared" / "tools" / "mozjpeg-4.0.3" / "cjpeg"
CACHE = ROOT / "out" / "bench_mozjpeg_cache.json"
QUALITIES = tuple(range(30, 91, 5))
TIME_QUALITIES = (50, 75, 90)


def load_rgb(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def kodak(folder: Path, limit: int = 0) -> list[tuple[str, torch.Tensor]]:
    files = sorted(folder.glob("kodim*.png"))
    if not files:
        sys.exit(f"bench_mozjpeg: no Kodak images in {folder} (see ../shared/data/README.md)")
    if limit:
        files = files[:limit]
    return [(f.stem, load_rgb(f)) for f in files]


class Mozjpeg:
    """mozjpeg's cjpeg on an image written once as PPM."""

    def __init__(self, binary: Path) -> None:
        self.binary = str(binary)
        self.tmp = Path(tempfile.mkdtemp(prefix="bench_mozjpeg_", dir="/dev/shm"
                                         if os.path.isdir("/dev/shm") else None))
        self.paths: dict[int, Path] = {}

    def ppm(self, image: torch.Tensor) -> Path:
        key = id(image)
        if key not in self.paths:
            path = self.tmp / f"{len(self.paths)}.ppm"
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
            self.paths[key] = path
        return self.paths[key]

    def encode(self, image: torch.Tensor, quality: int, *options: str) -> bytes:
        run = subprocess.run([self.binary, "-quality", str(quality), *options,
                              str(self.ppm(image))], capture_output=True, check=True)
        return run.stdout

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def has_progressive() -> bool:
    return "progressive" in inspect.signature(encode_jpeg).parameters


def encoders(moz: Mozjpeg | None) -> dict[str, Callable[[torch.Tensor, int], bytes]]:
    rows: dict[str, Callable[[torch.Tensor, int], bytes]] = {
        "annex-k": lambda im, q: encode_jpeg(im, q, optimize=True),
        "tune-psnr": lambda im, q: encode_jpeg(im, q, tune="psnr"),
        "tune-ssim": lambda im, q: encode_jpeg(im, q, tune="ssim"),
        "trellis": lambda im, q: encode_jpeg(im, q, trellis=True),
        "tuned-psnr": lambda im, q: encode_jpeg(im, q, optimize=True, tables="tuned-psnr"),
    }
    if has_progressive():
        rows["progressive"] = lambda im, q: encode_jpeg(im, q, optimize=True,
                                                        progressive=True)  # type: ignore[call-arg]
    if moz is not None:
        rows["mozjpeg"] = lambda im, q: moz.encode(im, q)
        rows["mozjpeg-psnr"] = lambda im, q: moz.encode(im, q, "-tune-psnr")
        rows["mozjpeg-ssim"] = lambda im, q: moz.encode(im, q, "-tune-ssim")
    return rows


def score(data: bytes, image: torch.Tensor) -> tuple[float, float, float]:
    """(bpp, RGB PSNR, SSIM) of a file decoded by Pillow."""
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    restored = torch.from_numpy(decoded.copy()).permute(2, 0, 1)[None].double() / 255.0
    reference = image[None].double() / 255.0
    return (len(data) * 8 / (image.shape[-2] * image.shape[-1]),
            float(metrics.psnr(restored, reference)[0]),
            float(metrics.ssim(restored, reference)[0]))


# --------------------------------------------------------------------------- rd


def load_cache(fresh: bool) -> dict:
    if fresh or not CACHE.exists():
        return {}
    return json.loads(CACHE.read_text())


def save_cache(cache: dict) -> None:
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".part")
    tmp.write_text(json.dumps(cache))
    os.replace(tmp, CACHE)


def mean_bd(anchor: dict, test: dict, names: list[str], metric: str) -> dict[str, float]:
    """Mean / median of per-image BD-rates (%), and how many images are better."""
    values = []
    for name in names:
        a, b = anchor[name], test[name]
        qa = a[metric] if metric == "psnr" else [metrics.db(min(s, 1 - 1e-12)) for s in a["ssim"]]
        qb = b[metric] if metric == "psnr" else [metrics.db(min(s, 1 - 1e-12)) for s in b["ssim"]]
        try:
            values.append(metrics.bd_rate(a["bpp"], qa, b["bpp"], qb))
        except ValueError:
            continue
    if not values:
        return {"mean": math.nan, "median": math.nan, "better": 0, "images": 0}
    return {"mean": float(np.mean(values)), "median": float(np.median(values)),
            "better": int(sum(v < 0 for v in values)), "images": len(values)}


def run_rd(args: argparse.Namespace, moz: Mozjpeg | None) -> dict:
    images = kodak(Path(args.kodak), args.limit)
    rows = encoders(moz)
    if args.rows:
        rows = {k: v for k, v in rows.items() if k in args.rows or k == "annex-k"}
    cache = load_cache(args.fresh)
    for key in [k for k in cache if k.split("/")[0] in args.redo]:
        del cache[key]
    qualities = tuple(args.qualities)
    curves: dict[str, dict[str, dict[str, list[float]]]] = {r: {} for r in rows}
    started = time.perf_counter()
    for name, image in images:
        for row, fn in rows.items():
            points = {"bpp": [], "psnr": [], "ssim": []}
            for q in qualities:
                key = f"{row}/{name}/{q}"
                if key not in cache:
                    cache[key] = score(fn(image, q), image)
                    save_cache(cache)
                for k, v in zip(("bpp", "psnr", "ssim"), cache[key], strict=True):
                    points[k].append(v)
            curves[row][name] = points
        print(f"  {name} done [{time.perf_counter() - started:.0f} s]", flush=True)
    names = [n for n, _ in images]
    anchor = curves["annex-k"]
    summary: dict[str, dict] = {}
    for row in rows:
        summary[row] = {"psnr": mean_bd(anchor, curves[row], names, "psnr"),
                        "ssim": mean_bd(anchor, curves[row], names, "ssim"),
                        "mean_bpp": [float(np.mean([curves[row][n]["bpp"][k] for n in names]))
                                     for k in range(len(qualities))],
                        "mean_psnr": [float(np.mean([curves[row][n]["psnr"][k] for n in names]))
                                      for k in range(len(qualities))]}
    targets = {}
    if "mozjpeg-psnr" in curves:
        targets["tune-psnr vs mozjpeg -tune-psnr, equal PSNR"] = mean_bd(
            curves["mozjpeg-psnr"], curves["tune-psnr"], names, "psnr")
        targets["tune-ssim vs mozjpeg -tune-psnr, equal PSNR"] = mean_bd(
            curves["mozjpeg-psnr"], curves["tune-ssim"], names, "psnr")
    if "mozjpeg" in curves:
        targets["tune-ssim vs mozjpeg default, equal SSIM"] = mean_bd(
            curves["mozjpeg"], curves["tune-ssim"], names, "ssim")
        targets["tune-psnr vs mozjpeg default, equal SSIM"] = mean_bd(
            curves["mozjpeg"], curves["tune-psnr"], names, "ssim")
    if "mozjpeg-ssim" in curves:
        targets["tune-ssim vs mozjpeg -tune-ssim, equal SSIM"] = mean_bd(
            curves["mozjpeg-ssim"], curves["tune-ssim"], names, "ssim")

    print(f"\nKodak ({len(names)} images), 4:2:0, q {qualities[0]}..{qualities[-1]}: "
          f"BD-rate against Annex K + optimized Huffman (mean of per-image values; "
          f"negative = smaller files)")
    print(f"{'encoder':<14}{'equal PSNR':>12}{'better':>8}{'equal SSIM':>12}{'better':>8}")
    for row, s in summary.items():
        print(f"{row:<14}{s['psnr']['mean']:>11.2f}%{s['psnr']['better']:>5}/{len(names):<2}"
              f"{s['ssim']['mean']:>11.2f}%{s['ssim']['better']:>5}/{len(names):<2}")
    if targets:
        print("\nissue 12 targets (per image, then the mean):")
        for label, t in targets.items():
            print(f"  {label:<48} {t['mean']:7.2f}%  (median {t['median']:.2f}%, "
                  f"better on {t['better']}/{t['images']})")
    return {"images": len(names), "qualities": list(qualities), "subsampling": "4:2:0",
            "anchor": "annex-k + optimized Huffman", "summary": summary, "targets": targets,
            "curves": curves}


# --------------------------------------------------------------------------- time


def run_time(args: argparse.Namespace, moz: Mozjpeg | None) -> dict:
    if moz is None:
        print("time: mozjpeg not found, skipped")
        return {}
    images = kodak(Path(args.kodak), args.time_images)
    rows = encoders(moz)
    pairs = {"tune-psnr": "mozjpeg-psnr", "tune-ssim": "mozjpeg", "trellis": "mozjpeg-psnr"}
    names = [*pairs, "mozjpeg-psnr", "mozjpeg"]
    times: dict[str, list[float]] = {k: [] for k in names}
    for _name, image in images:
        for q in TIME_QUALITIES:
            for k in names:  # warm-up (numba compiles on the first call)
                rows[k](image, q)
            for _ in range(args.repeats):
                for k in names:
                    start = time.perf_counter()
                    rows[k](image, q)
                    times[k].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratios = {f"{ours} / {peer}": medians[ours] / medians[peer] for ours, peer in pairs.items()}
    print(f"\nencode time, {len(images)} Kodak images x q {TIME_QUALITIES}, "
          f"{args.repeats} interleaved repeats, median wall seconds per encode:")
    for k, v in medians.items():
        print(f"  {k:<14} {v * 1000:8.1f} ms")
    for label, r in ratios.items():
        print(f"  {label:<28} {r:6.2f}x")
    return {"images": len(images), "qualities": list(TIME_QUALITIES), "repeats": args.repeats,
            "median_s": medians, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="all", choices=("all", "rd", "time"))
    parser.add_argument("--kodak", default=str(DATA / "kodak"))
    parser.add_argument("--mozjpeg", default=str(MOZJPEG), help="mozjpeg's cjpeg")
    parser.add_argument("--qualities", type=lambda s: [int(v) for v in s.split(",")],
                        default=list(QUALITIES))
    parser.add_argument("--limit", type=int, default=0, help="rd: only the first N images")
    parser.add_argument("--rows", nargs="*", help="rd: only these encoders (and the anchor)")
    parser.add_argument("--time-images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument("--redo", nargs="*", default=[],
                        help="rd: recompute these encoders (after a change), keep the rest")
    parser.add_argument("--json", help="write the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    binary = Path(args.mozjpeg)
    moz = Mozjpeg(binary) if binary.is_file() and os.access(binary, os.X_OK) else None
    if moz is None:
        print(f"mozjpeg not found at {binary}: its rows are skipped")
    results = {}
    try:
        if args.command in ("all", "rd"):
            results["rd"] = run_rd(args, moz)
        if args.command in ("all", "time"):
            results["time"] = run_time(args, moz)
    finally:
        if moz is not None:
            moz.close()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
