"""Benchmark: JPEG decoding, jpegtorch against Pillow (libjpeg-turbo), 1 to 24 MP.

Photos: mosaics of the 52 Wikipedia photos of ``../shared/data/train`` (real
photographic content at every size; synthetic images when absent), encoded by
Pillow at quality 75, 4:2:0 (baseline, and progressive for the memory rows).

Columns, per size:

- **time**: in process, one thread, interleaved with Pillow, the median of
  ``--repeat`` decodes to a numpy array each (``decode_jpeg_array``, the
  torch-free path that ``decode_jpeg`` wraps without a copy; Pillow:
  ``np.asarray(Image.open(...))``), every decode checked identical to
  Pillow's; the ratio ours / Pillow, and ns per pixel (the per-pixel cost at
  16 MP over that at 1 MP shows whether time grows linearly). Both decoders
  run on one thread, so the process CPU time is the measure (on a shared
  machine, wall time mostly measures the neighbours); wall-clock medians are
  in the JSON too;
- **memory**: peak RSS of a fresh process (GNU ``time -f %M`` when
  installed, else the process's own ``VmHWM``) decoding the file: ours
  in process, Pillow in process, and ``jtorch decode FILE -o out.png`` (the
  command line streams JPEG -> PNG band by band), each also over the process
  that only imports the package (``python -c "import jpegtorch"``).

Usage::

    python benchmarks/bench_decode.py [--sizes 1 4 16 24] [--repeat 5] [--json out.json]
                                      [--markdown]

Run on a quiet machine (ratios are from
one run, interleaved, so machine load affects both sides alike).
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
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "train" / "wikipedia_photos"
SIZES = {1: (1224, 816), 4: (2448, 1632), 16: (4896, 3264), 24: (6000, 4000)}
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def mosaic(width: int, height: int) -> np.ndarray:
    """``[H, W, 3]`` uint8: photos tiled in rows (or synthetic content without them)."""
    files = sorted(PHOTOS.glob("*.png"))
    if not files:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:height, :width]
        base = np.stack([128 + 100 * np.sin(xx / 17 + yy / 29), (xx + yy) % 256,
                         128 + 60 * np.cos(yy / 11)], -1) + rng.normal(0, 10, (height, width, 3))
        return np.clip(base, 0, 255).astype(np.uint8)
    out = np.zeros((height, width, 3), np.uint8)
    y, i = 0, 0
    while y < height:
        x, row_height = 0, 0
        while x < width:
            photo = np.asarray(Image.open(files[i % len(files)]).convert("RGB"))
            i += 1
            h, w = min(photo.shape[0], height - y), min(photo.shape[1], width - x)
            out[y : y + h, x : x + w] = photo[:h, :w]
            x += w
            row_height = max(row_height, h)
        y += row_height
    return out


def encode(image: np.ndarray, progressive: bool) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=75, subsampling=2,
                                progressive=progressive)
    return buffer.getvalue()


def peak_mb(code: str, *args: str) -> float:
    """Peak RSS (MB) of ``python -c code args`` in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    if GNU_TIME:
        out = subprocess.run([GNU_TIME, "-f", "%M", sys.executable, "-c", code, *args],
                             capture_output=True, text=True, env=env, check=True)
        return int(out.stderr.strip().splitlines()[-1]) / 1024
    probe = (code + "\nimport sys\nprint([l.split()[1] for l in open('/proc/self/status') "
             "if l.startswith('VmHWM')][0], file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                         env=env, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


OURS = ("import sys\nfrom jpegtorch.formats.jfif_reader import decode_jpeg_array\n"
        "decode_jpeg_array(open(sys.argv[1], 'rb').read())")
PILLOW = ("import sys\nimport numpy as np\nfrom PIL import Image\n"
          "np.asarray(Image.open(sys.argv[1]))")
CLI = ("import sys\nfrom jpegtorch.cli.main import cli\n"
       "sys.argv = ['jtorch', 'decode', sys.argv[1], '-o', sys.argv[2], '-Q']\n"
       "try:\n    cli()\nexcept SystemExit as exc:\n    assert not exc.code\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 24],
                        choices=sorted(SIZES))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="numba threads (the kernels run on one; kept for run_all)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args()

    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    from jpegtorch.formats.jfif_reader import decode_jpeg_array

    base_import = peak_mb("import jpegtorch")
    base_pillow = peak_mb("import numpy, PIL.Image")
    print(f"baseline: python -c 'import jpegtorch' {base_import:.0f} MB, "
          f"'import numpy, PIL.Image' {base_pillow:.0f} MB; "
          f"memory by {'GNU time -f %M' if GNU_TIME else 'VmHWM'}; photos from "
          f"{PHOTOS if PHOTOS.is_dir() else 'synthetic content'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.sizes:
            width, height = SIZES[mp]
            image = mosaic(width, height)
            for progressive in (False, True):
                data = encode(image, progressive)
                path = Path(tmp) / f"{mp}mp{'_prog' if progressive else ''}.jpg"
                path.write_bytes(data)
                ref = np.asarray(Image.open(io.BytesIO(data)))
                if not np.array_equal(decode_jpeg_array(data), ref):
                    print(f"MISMATCH with Pillow at {mp} MP", file=sys.stderr)
                    return 1
                t_ours, t_pil, w_ours, w_pil = [], [], [], []
                for _ in range(args.repeat):
                    w0, t0 = time.perf_counter(), time.process_time()
                    decode_jpeg_array(data)
                    t_ours.append(time.process_time() - t0)
                    w_ours.append(time.perf_counter() - w0)
                    w0, t0 = time.perf_counter(), time.process_time()
                    np.asarray(Image.open(io.BytesIO(data)))
                    t_pil.append(time.process_time() - t0)
                    w_pil.append(time.perf_counter() - w0)
                ours, pil = statistics.median(t_ours), statistics.median(t_pil)
                mem_ours = peak_mb(OURS, str(path))
                mem_pil = peak_mb(PILLOW, str(path))
                mem_cli = peak_mb(CLI, str(path), str(Path(tmp) / "out.png"))
                row = {"megapixels": width * height / 1e6, "size": f"{width}x{height}",
                       "progressive": progressive, "bytes": len(data),
                       "ours_ms": ours * 1e3, "pillow_ms": pil * 1e3, "ratio": ours / pil,
                       "ours_wall_ms": statistics.median(w_ours) * 1e3,
                       "pillow_wall_ms": statistics.median(w_pil) * 1e3,
                       "ours_ns_per_px": ours / (width * height) * 1e9,
                       "pillow_ns_per_px": pil / (width * height) * 1e9,
                       "mem_ours_mb": mem_ours, "mem_pillow_mb": mem_pil,
                       "mem_cli_mb": mem_cli, "mem_cli_over_import_mb": mem_cli - base_import,
                       "mem_ours_over_import_mb": mem_ours - base_import}
                rows.append(row)
                print(f"{mp:>3} MP {'prog' if progressive else 'base'}: "
                      f"ours {ours * 1e3:8.1f} ms ({row['ours_ns_per_px']:.1f} ns/px), "
                      f"Pillow {pil * 1e3:8.1f} ms, ratio {ours / pil:.2f}; peak "
                      f"ours {mem_ours:.0f} MB, Pillow {mem_pil:.0f} MB, "
                      f"jtorch decode -> PNG {mem_cli:.0f} MB "
                      f"(+{mem_cli - base_import:.0f} over the import)")
    base = [r for r in rows if not r["progressive"]]
    by_mp = {round(r["megapixels"]): r for r in base}
    if 1 in by_mp and 16 in by_mp:
        growth = by_mp[16]["ours_ns_per_px"] / by_mp[1]["ours_ns_per_px"]
        growth_pil = by_mp[16]["pillow_ns_per_px"] / by_mp[1]["pillow_ns_per_px"]
        print(f"per-pixel time 16 MP / 1 MP: ours {growth:.2f}, Pillow {growth_pil:.2f}")
    else:
        growth = growth_pil = None
    result = {"base_import_mb": base_import, "base_pillow_mb": base_pillow, "rows": rows,
              "per_pixel_16_over_1": growth, "pillow_per_pixel_16_over_1": growth_pil,
              "repeat": args.repeat}
    if args.markdown:
        print("\n| size | coding | ours (ms CPU) | Pillow (ms CPU) | ratio | peak: ours / "
              "Pillow / `jtorch decode` (MB) |")
        print("|---|---|---:|---:|---:|---|")
        for r in rows:
            print(f"| {r['size']} | {'progressive' if r['progressive'] else 'baseline'} | "
                  f"{r['ours_ms']:.0f} | {r['pillow_ms']:.0f} | {r['ratio']:.2f}x | "
                  f"{r['mem_ours_mb']:.0f} / {r['mem_pillow_mb']:.0f} / {r['mem_cli_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
