"""Benchmark: ``jpegtorch.encode_jpeg`` against Pillow (libjpeg-turbo), same run.

In-process encoding of Kodak-size photos (768×512, q=75, 4:2:0): median
wall-clock time per image of Pillow's ``Image.save(..., "JPEG")`` and of
``encode_jpeg`` (warm: numba kernel already compiled/loaded), split into the
pipeline (``jpegtorch.encode``: colour, down-sampling, DCT, quantization) and
the writer (``write_coefficients``: entropy coding and markers). Prints the
ratios to Pillow, the cold first-call time (numba cache load or compile), and
the batch throughput of ``jtorch encode`` on all images in one call.

Usage: python benchmarks/bench_encode.py [--kodak DIR] [--repeat N] [--threads T]
       [--no-cli] [--cold]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import KODAK, ROOT, interleaved, load_rgb
from PIL import Image


def load_images(kodak: Path, limit: int) -> tuple[list[Path], list[np.ndarray]]:
    """Kodak photos as ``[512, 768, 3]`` arrays (portrait ones rotated), or tiled samples."""
    paths = sorted(kodak.glob("kodim*.png"))[:limit] if kodak.is_dir() else []
    if not paths:
        print(f"note: no Kodak images in {kodak} (../shared/data/kodak); using samples/ "
              "tiled to 768x512 instead", file=sys.stderr)
        tiles = [np.array(Image.open(p).convert("RGB")) for p in sorted(
            (ROOT / "samples").glob("kodim*.png")) if "gray" not in p.name]
        arrays = [np.tile(t, (4, 4, 1))[:512, :768] for t in tiles]
        tmp = Path(tempfile.mkdtemp(prefix="bench_encode_"))
        paths = []
        for n, a in enumerate(arrays):
            paths.append(tmp / f"tile{n:02d}.png")
            Image.fromarray(a).save(paths[-1])
        return paths, arrays
    return paths, [load_rgb(p) for p in paths]


def cold_first_call(fresh_cache: bool) -> float:
    """Seconds of the first encode_jpeg call in a new process (imports excluded)."""
    code = (
        "import time, torch, jpegtorch\n"
        "from jpegtorch.formats.jfif_writer import encode_jpeg\n"
        "x = torch.zeros(3, 16, 16, dtype=torch.uint8)\n"
        "t = time.perf_counter(); encode_jpeg(x); print(time.perf_counter() - t)\n"
    )
    env = dict(os.environ)
    tmp = None
    if fresh_cache:
        tmp = tempfile.mkdtemp(prefix="numba_cache_")
        env["NUMBA_CACHE_DIR"] = tmp
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True).stdout
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", type=Path, default=KODAK)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per image")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--no-cli", action="store_true", help="skip the jtorch batch run")
    parser.add_argument("--cold", action="store_true",
                        help="also time a first call with an empty numba cache (compile)")
    args = parser.parse_args()

    from jpegtorch.formats.jfif_writer import encode_jpeg, write_coefficients

    from jpegtorch import encode

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    paths, arrays = load_images(args.kodak, args.images)
    print(f"{len(arrays)} images {arrays[0].shape[1]}x{arrays[0].shape[0]}, q=75, 4:2:0; "
          f"torch threads: {torch.get_num_threads()}; median of {args.repeat} runs each")

    images = [Image.fromarray(a) for a in arrays]
    tensors = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]

    t0 = time.perf_counter()
    first = encode_jpeg(tensors[0])
    first_call = time.perf_counter() - t0

    names = ("pillow", "encode_jpeg", "pipeline", "writer")
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    identical = 0
    for image, x in zip(images, tensors, strict=True):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=75)
        identical += encode_jpeg(x) == buffer.getvalue()
        coefficients = encode(x, 75, mode="hard")
        # interleaved, so that all see the same machine load
        stats = interleaved({
            "pillow": lambda im=image: im.save(io.BytesIO(), "JPEG", quality=75),
            "encode_jpeg": lambda t=x: encode_jpeg(t),
            "pipeline": lambda t=x: encode(t, 75, mode="hard"),
            "writer": lambda c=coefficients: write_coefficients(c),
        }, args.repeat)
        for k in names:
            wall[k].append(stats[k]["wall"] * 1e3)
            cpu[k].append(stats[k]["cpu"] * 1e3)
    assert first

    w = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"byte-identical to Pillow: {identical}/{len(arrays)}")
    print(f"{'':24s}{'wall ms':>9s}{'ratio':>8s}{'cpu ms':>10s}{'ratio':>8s}")
    labels = {"pillow": "Pillow", "encode_jpeg": "jpegtorch.encode_jpeg",
              "pipeline": "  pipeline (encode)", "writer": "  writer (entropy+hdr)"}
    for k in names:
        print(f"{labels[k]:24s}{w[k]:9.2f}{w[k] / w['pillow']:7.2f}x"
              f"{c[k]:10.2f}{c[k] / c['pillow']:7.2f}x")
    print(f"first call in this process (numba cache load or compile): {first_call:.2f} s")
    if args.cold:
        print(f"first call, fresh process, empty numba cache (compile): "
              f"{cold_first_call(True):.2f} s")
        print(f"first call, fresh process, warm numba cache (load):     "
              f"{cold_first_call(False):.2f} s")

    if not args.no_cli:
        jtorch = shutil.which("jtorch", path=str(Path(sys.executable).parent)) or "jtorch"
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = subprocess.run([jtorch, "encode", *map(str, paths), "-o", out, "-Q"],
                                    capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if result.returncode:
                print(f"jtorch encode failed: {result.stderr.strip()}")
            else:
                print(f"jtorch encode, {len(paths)} images in one call: {elapsed:.2f} s "
                      f"= {len(paths) / elapsed:.1f} images/s (process start and imports "
                      f"included)")
        t0 = time.perf_counter()
        for p in paths:
            Image.open(p).convert("RGB").save(io.BytesIO(), "JPEG", quality=75)
        elapsed = time.perf_counter() - t0
        print(f"Pillow in-process read+encode of the same files: "
              f"{len(paths) / elapsed:.1f} images/s")


if __name__ == "__main__":
    main()
