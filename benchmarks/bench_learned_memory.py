"""Time and peak memory of the learned codec through the CLI at 1, 6 and 24 MP.

    .venv/bin/python benchmarks/bench_learned_memory.py              # 1, 6, 24 MP
    .venv/bin/python benchmarks/bench_learned_memory.py --sizes 1,6 --repeats 3
    .venv/bin/python benchmarks/bench_learned_memory.py --untiled    # + the whole-image path

Each measurement is one process, ``jtorch encode --codec learned`` or
``jtorch decode``, measured by GNU ``command time -f "%e %U %S %M"`` (wall and
CPU seconds, peak resident memory); medians over ``--repeats`` runs,
interleaved. On a shared machine the CPU seconds are the steadier number. The reference
points are the peaks of ``python -c "import jpegtorch"`` (the issue's budgets
are "over the memory of the import") and of ``python -c "import torch"`` (the
codec needs torch; that alone is ~220 MB). ``--untiled`` adds the same work
with the transforms run on the whole image at once (``tiled.TILE = None``),
(the same code with one tile covering the image). Test images: mosaics of upscaled
Kodak photos (../shared/data/kodak), or smooth noise when absent.
Writes docs/learned_memory.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, kodak_paths

SIZES = {1: (1224, 816), 6: (3000, 2000), 24: (6000, 4000)}
GNU_TIME = "/usr/bin/time"
UNTILED = """
import sys, torch
from PIL import Image
import numpy as np
from jpegtorch.learned import codec, tiled
tiled.TILE = None
mode, src, dst = sys.argv[1:4]
if mode == "encode":
    arr = np.asarray(Image.open(src).convert("RGB"))
    image = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    open(dst, "wb").write(codec.encode_image(image))
else:
    image = codec.decode_image(open(src, "rb").read())
    Image.fromarray(image.permute(1, 2, 0).contiguous().numpy()).save(dst)
"""


def mosaic(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like test image: upscaled Kodak photos side by side."""
    paths = kodak_paths()
    rng = np.random.default_rng(seed)
    if not paths:
        small = rng.random((height // 32 + 2, width // 32 + 2, 3))
        up = Image.fromarray((small * 255).astype(np.uint8)).resize((width, height),
                                                                   Image.BICUBIC)
        return up
    canvas = Image.new("RGB", (width, height))
    tile_w, tile_h = 1536, 1024
    for y in range(0, height, tile_h):
        for x in range(0, width, tile_w):
            im = Image.open(paths[int(rng.integers(len(paths)))]).convert("RGB")
            if im.height > im.width:
                im = im.rotate(90, expand=True)
            canvas.paste(im.resize((tile_w, tile_h), Image.LANCZOS), (x, y))
    return canvas


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one process, by GNU time."""
    out = subprocess.run([GNU_TIME, "-f", "%e %U %S %M", *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    wall, user, system, kb = out.stderr.strip().splitlines()[-1].split()
    return float(wall), float(user) + float(system), int(kb) / 1024


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,6,24", help="megapixels, of 1, 6, 24 [1,6,24]")
    parser.add_argument("--repeats", type=int, default=1, help="runs per measurement [1]")
    parser.add_argument("--untiled", action="store_true",
                        help="also the whole-image path (1 and 6 MP only: 24 MP needs ~7 GB)")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "learned_memory.json")
    args = parser.parse_args()
    if not Path(GNU_TIME).exists():
        raise SystemExit("needs GNU time (/usr/bin/time)")
    py = sys.executable
    jtorch = [py, "-m", "jpegtorch.cli.main"]
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_learned_memory_"))
    rows = []
    try:
        base = {name: statistics.median(measure([py, "-c", f"import {name}"])[2]
                                        for _ in range(3))
                for name in ("jpegtorch", "torch")}
        print(f"import jpegtorch: {base['jpegtorch']:.0f} MB, import torch: "
              f"{base['torch']:.0f} MB (peak RSS)")
        for mp in sizes:
            width, height = SIZES[mp]
            src = work / f"{mp}mp.png"
            mosaic(width, height).save(src)
            jtc, png = work / f"{mp}mp.jtc", work / f"{mp}mp.out.png"
            runs: dict[str, list[tuple[float, float, float]]] = {}
            plan = {
                "encode": [*jtorch, "encode", "--codec", "learned", str(src), "-o", str(jtc)],
                "decode": [*jtorch, "decode", str(jtc), "-o", str(png)],
            }
            if args.untiled and mp <= 6:
                plan["encode (untiled)"] = [py, "-c", UNTILED, "encode", str(src),
                                            str(work / "u.jtc")]
                plan["decode (untiled)"] = [py, "-c", UNTILED, "decode", str(jtc),
                                            str(work / "u.png")]
            for _ in range(args.repeats):
                for name, cmd in plan.items():
                    runs.setdefault(name, []).append(measure(cmd))
            original = np.asarray(Image.open(src).convert("RGB"))
            quality = psnr(original, np.asarray(Image.open(png).convert("RGB")))
            bpp = 8 * jtc.stat().st_size / (width * height)
            for name, values in runs.items():
                wall = statistics.median(v[0] for v in values)
                cpu = statistics.median(v[1] for v in values)
                peak = statistics.median(v[2] for v in values)
                row = {"mp": mp, "width": width, "height": height, "what": name,
                       "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                       "peak_mb": round(peak, 1),
                       "over_import_mb": round(peak - base["jpegtorch"], 1),
                       "over_torch_mb": round(peak - base["torch"], 1),
                       "bpp": round(bpp, 4), "psnr": round(quality, 3),
                       "repeats": args.repeats}
                rows.append(row)
                print(f"{mp:>3} MP {name:<17} {wall:7.1f} s ({cpu:6.1f} s CPU) {peak:7.0f} MB peak "
                      f"({peak - base['jpegtorch']:6.0f} MB over the import)  "
                      f"{bpp:.3f} bpp {quality:.2f} dB", flush=True)
            for path in (src, jtc, png):
                path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| image | step | wall (s) | CPU (s) | peak (MB) | over `import jpegtorch` (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mp']} MP ({r['width']}×{r['height']}) | {r['what']} | {r['seconds']:.1f} "
              f"| {r['cpu_seconds']:.1f} | {r['peak_mb']:.0f} | {r['over_import_mb']:.0f} |")
    args.json.write_text(json.dumps({"import_mb": base, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")


if __name__ == "__main__":
    main()
