"""Benchmark: progressive output (``encode_jpeg(..., progressive=True)``, issue 12).

Sub-commands (default ``all`` = ``rd`` + ``time``)::

    python benchmarks/bench_progressive.py rd     # Kodak: bytes, BD-rate, identity
    python benchmarks/bench_progressive.py time   # writer time and peak memory, 1..24 MP
    python benchmarks/bench_progressive.py all --json out/bench_progressive.json

``rd``: every Kodak image at qualities 30, 35, ..., 90, chroma 4:2:0 and
4:4:4, is written three ways from the same quantized coefficients: Annex K
sequential with optimized Huffman codes (the anchor, libjpeg-turbo's
``-optimize``), progressive (libjpeg-turbo's ``jpeg_simple_progression``,
optimal tables per scan), and Pillow's ``progressive=True`` (libjpeg-turbo
3.x), which must be byte-identical to ours (every file is checked). The
sequential and progressive files carry the same coefficients, so they decode
to the same pixels (checked with our decoder on every pair): the BD-rate at
equal PSNR or SSIM is then the mean log size ratio over the quality range
(computed with :func:`jpegtorch.metrics.bd_rate` on (bpp, PSNR) like any other
BD-rate, and equal for every metric). Reported: mean and range over images.

``time``: the writer alone (``write_coefficients`` on coefficients already
computed), baseline optimized vs progressive, on Kodak tiled to about 1, 6
and 24 MP (4:2:0, q 75): median wall time of interleaved runs, and the peak
resident memory of a separate process that encodes the image once each way
(GNU ``time -f %M``; the difference to a process that only builds the
coefficients is the writer's own memory). Run it under the machine's heavy
lock on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import KODAK, ROOT, load_rgb
from jpegtorch.formats.jfif_writer import write_coefficients
from PIL import Image

import jpegtorch
from jpegtorch import metrics

QUALITIES = tuple(range(30, 91, 5))
PIL_SAMPLING = {"4:2:0": 2, "4:4:4": 0}


def pillow_progressive(array: np.ndarray, quality: int, subsampling: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality, progressive=True,
                                subsampling=PIL_SAMPLING[subsampling])
    return buffer.getvalue()


def run_rd(paths: list[Path], subsamplings: list[str]) -> dict:
    results: dict = {}
    for subsampling in subsamplings:
        per_image = []
        identical = checked = 0
        for path in paths:
            array = load_rgb(path, landscape=False)
            image = torch.from_numpy(array).permute(2, 0, 1).contiguous()
            height, width = array.shape[:2]
            pixels = height * width
            seq_bpp, prog_bpp, quality_db = [], [], []
            for quality in QUALITIES:
                coefficients = jpegtorch.encode(image, quality, subsampling=subsampling)
                sequential = write_coefficients(coefficients, optimize=True)
                progressive = write_coefficients(coefficients, progressive=True)
                reference = pillow_progressive(array, quality, subsampling)
                checked += 1
                identical += progressive == reference
                decoded = jpegtorch.decode_jpeg(sequential)
                if not torch.equal(decoded, jpegtorch.decode_jpeg(progressive)):
                    raise SystemExit(f"{path.name} q{quality}: progressive decodes differently")
                psnr = float(metrics.psnr(image[None].double(), decoded[None].double(),
                                          data_range=255.0)[0])
                seq_bpp.append(8 * len(sequential) / pixels)
                prog_bpp.append(8 * len(progressive) / pixels)
                quality_db.append(psnr)
            bd = float(metrics.bd_rate(seq_bpp, quality_db, prog_bpp, quality_db))
            ratio = statistics.mean(p / s for p, s in zip(prog_bpp, seq_bpp, strict=True))
            per_image.append({"image": path.name, "bd_rate": bd, "mean_size_ratio": ratio,
                              "bpp_sequential_q75": seq_bpp[QUALITIES.index(75)],
                              "bpp_progressive_q75": prog_bpp[QUALITIES.index(75)]})
            print(f"  {subsampling} {path.name}: BD-rate {bd:+.2f}%  (q75: "
                  f"{seq_bpp[QUALITIES.index(75)]:.3f} -> {prog_bpp[QUALITIES.index(75)]:.3f}"
                  " bpp)", file=sys.stderr)
        rates = [r["bd_rate"] for r in per_image]
        results[subsampling] = {
            "images": len(per_image), "qualities": list(QUALITIES),
            "bd_rate_mean": statistics.mean(rates), "bd_rate_min": min(rates),
            "bd_rate_max": max(rates), "byte_identical_to_pillow": f"{identical}/{checked}",
            "per_image": per_image,
        }
        print(f"{subsampling}: --progressive vs Annex K sequential optimized: BD-rate "
              f"{statistics.mean(rates):+.2f}% (images {min(rates):+.2f}..{max(rates):+.2f}%); "
              f"byte-identical to Pillow progressive: {identical}/{checked}")
    return results


def tiled(target_mp: float, paths: list[Path]) -> np.ndarray:
    """Kodak photos tiled into a landscape image of about ``target_mp`` megapixels."""
    tile = load_rgb(paths[0]) if paths else np.array(
        Image.open(ROOT / "samples" / "kodim05_384x256.png").convert("RGB"))
    side = math.sqrt(target_mp * 1e6 / 1.5)
    rows, cols = max(1, round(side / tile.shape[0])), max(1, round(1.5 * side / tile.shape[1]))
    return np.ascontiguousarray(np.tile(tile, (rows, cols, 1)))


_CHILD = """
import sys, numpy as np, torch
import jpegtorch
from jpegtorch.formats.jfif_writer import write_coefficients
array = np.load(sys.argv[1])
c = jpegtorch.encode(torch.from_numpy(array).permute(2, 0, 1).contiguous(), 75)
mode = sys.argv[2]
if mode == "baseline":
    write_coefficients(c, optimize=True)
elif mode == "progressive":
    write_coefficients(c, progressive=True)
"""


def peak_rss_mb(array_path: str, mode: str) -> float | None:
    gnu_time = shutil.which("time") or "/usr/bin/time"
    if not Path(gnu_time).exists():
        return None
    done = subprocess.run([gnu_time, "-f", "%M", sys.executable, "-c", _CHILD, array_path,
                           mode], capture_output=True, text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def run_time(paths: list[Path], sizes: list[float], repeat: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for mp in sizes:
            array = tiled(mp, paths)
            image = torch.from_numpy(array).permute(2, 0, 1).contiguous()
            coefficients = jpegtorch.encode(image, 75)
            write_coefficients(coefficients, optimize=True)  # warm up (numba)
            write_coefficients(coefficients, progressive=True)
            times: dict[str, list[float]] = {"baseline": [], "progressive": []}
            for _ in range(repeat):
                for mode in times:
                    start = time.perf_counter()
                    if mode == "baseline":
                        write_coefficients(coefficients, optimize=True)
                    else:
                        write_coefficients(coefficients, progressive=True)
                    times[mode].append(time.perf_counter() - start)
            path = str(Path(folder) / f"{mp}.npy")
            np.save(path, array)
            memory = {mode: peak_rss_mb(path, mode) for mode in ("none", "baseline",
                                                                 "progressive")}
            row = {
                "megapixels": array.shape[0] * array.shape[1] / 1e6,
                "baseline_optimized_s": statistics.median(times["baseline"]),
                "progressive_s": statistics.median(times["progressive"]),
                "peak_rss_mb": memory,
            }
            row["ratio"] = row["progressive_s"] / row["baseline_optimized_s"]
            results[f"{mp:g}MP"] = row
            mem = ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items() if v is not None)
            print(f"{row['megapixels']:.1f} MP: writer baseline+optimize "
                  f"{row['baseline_optimized_s'] * 1000:.0f} ms, progressive "
                  f"{row['progressive_s'] * 1000:.0f} ms ({row['ratio']:.2f}x); peak RSS "
                  f"{mem}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="?", default="all", choices=["rd", "time", "all"])
    parser.add_argument("--kodak", type=Path, default=KODAK)
    parser.add_argument("--limit", type=int, default=0, help="use the first N images")
    parser.add_argument("--subsampling", nargs="+", default=["4:2:0", "4:4:4"])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 6, 24])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = sorted(args.kodak.glob("kodim*.png"))
    if args.limit:
        paths = paths[: args.limit]
    out: dict = {}
    if args.what in ("rd", "all"):
        if not paths:
            raise SystemExit(f"no Kodak images in {args.kodak}")
        out["rd"] = run_rd(paths, args.subsampling)
    if args.what in ("time", "all"):
        out["time"] = run_time(paths, args.sizes, args.repeat)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
