"""Benchmark: in-process ``jpegtorch.decode_jpeg`` against Pillow (libjpeg-turbo).

Kodak-size photos (768x512) are encoded by Pillow at quality 75, 4:2:0, then
decoded by both in the same process, alternately, several times each; the
median per image is reported, with the ratio ours / Pillow, and our time split
into parsing + Huffman decoding (``read_coefficients``, the numba kernel) and
the pixel pipeline (``jpegtorch.decode``: dequantize, IDCT, upsampling,
colour). Every decode is checked to be identical to Pillow's.

Cold timings run in fresh processes: "first call" includes importing jpegtorch
and loading the numba kernel from its on-disk cache; "compile" does the same
with an empty numba cache (what the very first run after installing costs).

Usage::

    python benchmarks/bench_decode.py [--kodak DIR] [--images N] [--repeat R]
                                      [--threads T] [--json out.json]

Without ../shared/data/kodak it falls back to the repository's samples/ or
synthetic images (and says so).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import jpegtorch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KODAK = ROOT / ".." / "shared" / "data" / "kodak"


def load_images(kodak: Path, count: int) -> tuple[list[np.ndarray], str]:
    files = sorted(kodak.glob("kodim*.png")) if kodak.is_dir() else []
    if files:
        return [np.asarray(Image.open(f).convert("RGB")) for f in files[:count]], str(kodak)
    samples = sorted((ROOT / "samples").glob("*.png"))
    if samples:
        return ([np.asarray(Image.open(f).convert("RGB")) for f in samples[:count]],
                "samples/ (no Kodak set found)")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:512, :768]
    images = []
    for _ in range(count):
        base = np.stack([128 + 100 * np.sin(xx / 17 + yy / 29), (xx + yy) % 256,
                         128 + 60 * np.cos(yy / 11)], -1) + rng.normal(0, 10, (512, 768, 3))
        images.append(np.clip(base, 0, 255).astype(np.uint8))
    return images, "synthetic 768x512 (no Kodak set found)"


def pillow_jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2)
    return buffer.getvalue()


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def timed(fn, repeat: int) -> tuple[float, object]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


COLD = """
import sys, time
t0 = time.perf_counter()
from jpegtorch import decode_jpeg
data = open(sys.argv[1], "rb").read()
decode_jpeg(data)
t1 = time.perf_counter()
decode_jpeg(data)
print(t1 - t0, time.perf_counter() - t1)
"""


def cold_run(path: Path, *, fresh_cache: bool) -> tuple[float, float]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run([sys.executable, "-c", COLD, str(path)], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", type=Path, default=DEFAULT_KODAK)
    parser.add_argument("--images", type=int, default=8, help="how many images (max 24)")
    parser.add_argument("--repeat", type=int, default=5, help="timed decodes per image")
    parser.add_argument("--quality", type=int, default=75)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start runs")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    images, source = load_images(args.kodak, args.images)
    files = [pillow_jpeg(im, args.quality) for im in images]
    print(f"{len(files)} images from {source}, q={args.quality} 4:2:0, "
          f"{sum(map(len, files)) / len(files) / 1024:.1f} KiB average; "
          f"torch threads {torch.get_num_threads()}")

    jpegtorch.decode_jpeg(files[0])  # warm: numba kernel loaded / compiled
    rows = []
    for data in files:
        t_pil, ref = timed(lambda d=data: pillow_decode(d), args.repeat)
        t_ours, out = timed(lambda d=data: jpegtorch.decode_jpeg(d), args.repeat)
        t_read, coefs = timed(lambda d=data: jpegtorch.read_coefficients(d), args.repeat)
        t_pix, _ = timed(lambda c=coefs: jpegtorch.decode(c), args.repeat)
        pixels = out.permute(1, 2, 0).numpy()
        if not np.array_equal(pixels, ref):
            print("MISMATCH with Pillow", file=sys.stderr)
            return 1
        rows.append((t_pil, t_ours, t_read, t_pix))
    t_pil, t_ours, t_read, t_pix = (statistics.median(col) for col in zip(*rows, strict=True))
    ms = 1e3
    print(f"Pillow decode:           {t_pil * ms:8.2f} ms / image (median)")
    print(f"jpegtorch.decode_jpeg:   {t_ours * ms:8.2f} ms / image = {t_ours / t_pil:.1f}x Pillow")
    print(f"  parse + Huffman:       {t_read * ms:8.2f} ms ({t_read / t_pil:.2f}x Pillow's "
          "whole decode)")
    print(f"  pixel pipeline:        {t_pix * ms:8.2f} ms")
    result = {"images": len(files), "source": source, "quality": args.quality,
              "threads": torch.get_num_threads(), "pillow_ms": t_pil * ms,
              "ours_ms": t_ours * ms, "ratio": t_ours / t_pil, "read_ms": t_read * ms,
              "pipeline_ms": t_pix * ms}
    if not args.no_cold:
        with tempfile.NamedTemporaryFile(suffix=".jpg", delete=False) as handle:
            handle.write(files[0])
        try:
            first, second = cold_run(Path(handle.name), fresh_cache=False)
            compile_first, _ = cold_run(Path(handle.name), fresh_cache=True)
        finally:
            os.unlink(handle.name)
        print(f"cold, new process (import + cached kernel + decode): {first * ms:8.0f} ms, "
              f"then {second * ms:.1f} ms")
        print(f"cold, empty numba cache (import + compile + decode):  {compile_first * ms:8.0f} ms")
        result.update(cold_first_ms=first * ms, cold_second_ms=second * ms,
                      compile_first_ms=compile_first * ms)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
