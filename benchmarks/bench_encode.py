"""Benchmark: JPEG encoding against Pillow (libjpeg-turbo): time, growth, peak memory.

Three parts, every number a median of interleaved runs in one process unless
said otherwise, q = 75, 4:2:0, one thread (``NUMBA_NUM_THREADS=1``,
``OMP_NUM_THREADS=1``, one torch thread):

1. **Kodak** (24 images 768×512): CPU time per image of Pillow's
   ``Image.save(..., "JPEG")`` and of ours: ``encode_array`` (numpy in, the
   torch-free banded encoder the CLI runs), ``encode_jpeg`` (a torch tensor in),
   ``jpegtorch.encode(..., mode="hard")`` (the pipeline on the CPU: the compiled
   stage kernels, coefficients out) and ``write_coefficients`` (the entropy
   coder alone, on those coefficients). Every file is checked to be
   byte-identical to Pillow's.
2. **Sizes** 1, 4, 16 and 24 MP: CPU time of ``encode_array`` and Pillow, per
   pixel, and the growth of our per-pixel cost from 1 MP (the issue asks for
   16 MP / 1 MP <= 1.3). The big photos are mosaics of the Wikipedia photos in
   ``../shared/data/train/wikipedia_photos`` (or Kodak), each photo resampled
   (Lanczos) to a 1200×800 tile: 1×1 tile = 0.96 MP, 2×2 = 3.84 MP, 4×4 = 15.4
   MP, 5×5 = 6000×4000 = 24 MP, so every size has the same detail per pixel.
   The 1 MP figure is the median over the 16 single tiles of the 16 MP mosaic:
   the same pixels, encoded one tile at a time.
3. **Peak memory** (max RSS, GNU ``command time -f %M``, fresh processes):
   ``python -c "import jpegtorch"`` (the baseline the issue measures against),
   ``jtorch encode big.png -o out.jpg``, the same with Pillow
   (``Image.open(png).save(jpg, quality=75)``) and ``cjpeg`` reading a PPM, for
   each size; plus whether the CLI imported torch.

Usage::

    python benchmarks/bench_encode.py [--repeat R] [--sizes 1,4,16,24]
        [--no-kodak] [--no-memory] [--json out.json] [--markdown]

Takes about 5-10 minutes on 2 cores. Without ../shared it falls back to
samples/ (and says so).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TILE = (800, 1200)  # rows, columns of one mosaic tile (0.96 MP)
SIZES = {1: 1, 4: 2, 16: 4, 24: 5}  # nominal MP -> tiles per side
QUALITY = 75


def photos(count: int) -> tuple[list[Image.Image], str]:
    """Source photos: the Wikipedia training photos, else Kodak, else samples/."""
    for folder, pattern in ((SHARED / "train" / "wikipedia_photos", "*.png"),
                            (SHARED / "kodak", "kodim*.png"), (ROOT / "samples", "*.png")):
        files = sorted(folder.glob(pattern)) if folder.is_dir() else []
        files = [f for f in files if "gray" not in f.name]
        if files:
            images = [Image.open(f).convert("RGB") for f in files]
            return [images[i % len(images)] for i in range(count)], str(folder)
    raise SystemExit("no photos found (../shared/data or samples/)")


def tiles(count: int) -> tuple[list[np.ndarray], str]:
    sources, where = photos(count)
    out = []
    for im in sources:
        if im.height > im.width:
            im = im.transpose(Image.Transpose.ROTATE_90)
        out.append(np.asarray(im.resize((TILE[1], TILE[0]), Image.Resampling.LANCZOS)))
    return out, where


def mosaic(parts: list[np.ndarray], side: int) -> np.ndarray:
    rows = [np.concatenate(parts[r * side:(r + 1) * side], axis=1) for r in range(side)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def cpu_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median CPU seconds of each function, interleaved, after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def pillow_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def kodak_part(repeat: int) -> dict:
    import torch
    from jpegtorch.formats.jfif_writer import encode_array, encode_jpeg, write_coefficients

    import jpegtorch

    torch.set_num_threads(1)
    files = sorted((SHARED / "kodak").glob("kodim*.png"))
    where = str(SHARED / "kodak")
    if not files:
        files = [f for f in sorted((ROOT / "samples").glob("*.png")) if "gray" not in f.name]
        where = "samples/ (no Kodak set found)"
    arrays = []
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB"))
        arrays.append(np.ascontiguousarray(np.rot90(a)) if a.shape[0] > a.shape[1] else a)
    names = ("pillow", "encode_array", "encode_jpeg", "pipeline", "entropy")
    per: dict[str, list[float]] = {k: [] for k in names}
    identical = 0
    for a in arrays:
        image = Image.fromarray(a)
        x = torch.from_numpy(a).permute(2, 0, 1).contiguous()
        coefficients = jpegtorch.encode(x, QUALITY, mode="hard")
        identical += encode_array(a, QUALITY) == encode_jpeg(x, QUALITY) == pillow_bytes(a)
        stats = cpu_medians({
            "pillow": lambda im=image: im.save(io.BytesIO(), "JPEG", quality=QUALITY),
            "encode_array": lambda a=a: encode_array(a, QUALITY),
            "encode_jpeg": lambda x=x: encode_jpeg(x, QUALITY),
            "pipeline": lambda x=x: jpegtorch.encode(x, QUALITY, mode="hard"),
            "entropy": lambda c=coefficients: write_coefficients(c),
        }, repeat)
        for k in names:
            per[k].append(stats[k])
    ms = {k: statistics.median(v) * 1e3 for k, v in per.items()}
    return {"source": where, "images": len(arrays), "size": list(arrays[0].shape[:2]),
            "identical": identical, "ms": ms,
            "ratio": {k: ms[k] / ms["pillow"] for k in names}}


def sizes_part(sizes: list[int], repeat: int, parts: list[np.ndarray]) -> list[dict]:
    from jpegtorch.formats.jfif_writer import encode_array

    rows = []
    singles = []  # per-pixel ns of single tiles (the 1 MP reference)
    for tile in parts[:16]:
        stats = cpu_medians({"ours": lambda t=tile: encode_array(t, QUALITY),
                             "pillow": lambda t=tile: pillow_bytes(t)}, repeat)
        singles.append({k: v / tile.shape[0] / tile.shape[1] * 1e9 for k, v in stats.items()})
    tile_ns = {k: statistics.median(s[k] for s in singles) for k in ("ours", "pillow")}
    for mp in sizes:
        side = SIZES[mp]
        big = mosaic(parts, side)
        assert encode_array(big, QUALITY) == pillow_bytes(big), f"{mp} MP differs from Pillow"
        reps = max(3, repeat // side)
        stats = cpu_medians({"ours": lambda b=big: encode_array(b, QUALITY),
                             "pillow": lambda b=big: pillow_bytes(b)}, reps)
        pixels = big.shape[0] * big.shape[1]
        ns = {k: v / pixels * 1e9 for k, v in stats.items()}
        rows.append({"mp": mp, "shape": list(big.shape[:2]), "ms": {k: v * 1e3 for k, v in
                                                                    stats.items()},
                     "ns_per_px": ns, "ratio": stats["ours"] / stats["pillow"],
                     "growth_vs_1mp_tiles": {k: ns[k] / tile_ns[k] for k in ns}})
    return [{"tiles_1mp_ns_per_px": tile_ns}, *rows]


def peak_rss(cmd: list[str], cwd: Path) -> tuple[int, float, str]:
    """(max RSS in KB, wall seconds, stderr) of a command, by GNU time."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    t = time.perf_counter()
    result = subprocess.run([gnu_time, "-f", "MAXRSS %M", *cmd], cwd=cwd, capture_output=True,
                            text=True)
    wall = time.perf_counter() - t
    if result.returncode:
        raise RuntimeError(f"{cmd} failed: {result.stderr.strip()[-500:]}")
    line = [x for x in result.stderr.splitlines() if x.startswith("MAXRSS")][-1]
    return int(line.split()[1]), wall, result.stderr


def memory_part(sizes: list[int], parts: list[np.ndarray]) -> list[dict]:
    python = sys.executable
    jtorch = shutil.which("jtorch", path=str(Path(python).parent)) or "jtorch"
    cjpeg = shutil.which("cjpeg")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_encode_") as tmp:
        work = Path(tmp)
        base, _, _ = peak_rss([python, "-c", "import jpegtorch"], work)
        probe = ("import sys, runpy; sys.argv = ['jtorch', *sys.argv[1:]];\n"
                 "try:\n    runpy.run_module('jpegtorch.cli.main', run_name='__main__')\n"
                 "finally:\n    print('TORCH', 'torch' in sys.modules, file=sys.stderr)")
        for mp in sizes:
            big = mosaic(parts, SIZES[mp])
            Image.fromarray(big).save(work / "big.png", compress_level=1)
            Image.fromarray(big).save(work / "big.ppm")
            del big
            # warm the numba cache once (a first run compiles; not what we measure)
            subprocess.run([jtorch, "encode", "big.png", "-o", "warm.jpg", "-Q"], cwd=work,
                           check=True)
            ours, ours_wall, err = peak_rss([python, "-c", probe, "encode", "big.png", "-o",
                                             "ours.jpg", "-Q"], work)
            torch_loaded = "TORCH True" in err
            pil_code = ("import sys; from PIL import Image; Image.MAX_IMAGE_PIXELS = None; "
                        "Image.open(sys.argv[1]).save(sys.argv[2], quality=75)")
            pil, pil_wall, _ = peak_rss([python, "-c", pil_code, "big.png", "pil.jpg"], work)
            same = (work / "ours.jpg").read_bytes() == (work / "pil.jpg").read_bytes()
            row = {"mp": mp, "import_jpegtorch_kb": base, "cli_kb": ours, "cli_wall_s": ours_wall,
                   "cli_over_import_mb": (ours - base) / 1024, "pillow_kb": pil,
                   "pillow_wall_s": pil_wall, "cli_imported_torch": torch_loaded,
                   "same_bytes_as_pillow": same}
            if cjpeg:
                cj, cj_wall, _ = peak_rss([cjpeg, "-quality", "75", "-outfile", "cj.jpg",
                                           "big.ppm"], work)
                row.update(cjpeg_kb=cj, cjpeg_wall_s=cj_wall)
            rows.append(row)
            for name in ("big.png", "big.ppm", "ours.jpg", "pil.jpg", "cj.jpg", "warm.jpg"):
                (work / name).unlink(missing_ok=True)
    return rows


def markdown(result: dict) -> str:
    lines = []
    k = result.get("kodak")
    if k:
        lines += [f"Kodak ({k['images']} images {k['size'][1]}x{k['size'][0]}, q=75 4:2:0, 1 "
                  f"thread, CPU time; {k['identical']}/{k['images']} byte-identical to Pillow):",
                  "", "| | ms / image | × Pillow |", "|---|---|---|"]
        labels = {"pillow": "Pillow (libjpeg-turbo)", "encode_array": "encode_array (numpy)",
                  "encode_jpeg": "encode_jpeg (tensor)",
                  "pipeline": "jpegtorch.encode hard (kernels, coefficients)",
                  "entropy": "write_coefficients (entropy coder)"}
        for name, label in labels.items():
            lines.append(f"| {label} | {k['ms'][name]:.2f} | {k['ratio'][name]:.2f} |")
        lines.append("")
    sizes = result.get("sizes")
    memory = {r["mp"]: r for r in result.get("memory", [])}
    if sizes:
        ref = sizes[0]["tiles_1mp_ns_per_px"]
        lines += ["| size | ours ms | Pillow ms | × Pillow | ours ns/px | growth vs 1 MP "
                  "| CLI peak MB (over import) | Pillow peak MB | cjpeg peak MB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in sizes[1:]:
            m = memory.get(r["mp"], {})
            cli = (f"{m['cli_kb'] / 1024:.0f} ({m['cli_over_import_mb']:.0f})"
                   if m else "–")
            pil = f"{m['pillow_kb'] / 1024:.0f}" if m else "–"
            cj = f"{m['cjpeg_kb'] / 1024:.0f}" if m.get("cjpeg_kb") else "–"
            lines.append(
                f"| {r['shape'][1]}×{r['shape'][0]} ({r['mp']} MP) | {r['ms']['ours']:.0f} | "
                f"{r['ms']['pillow']:.0f} | {r['ratio']:.2f} | {r['ns_per_px']['ours']:.1f} | "
                f"{r['growth_vs_1mp_tiles']['ours']:.2f} | {cli} | {pil} | {cj} |")
        lines.append(f"\n1 MP reference (16 single 1200×800 tiles): ours "
                     f"{ref['ours']:.1f} ns/px, Pillow {ref['pillow']:.1f} ns/px.")
        if memory:
            base = next(iter(memory.values()))["import_jpegtorch_kb"] / 1024
            torch_used = any(m["cli_imported_torch"] for m in memory.values())
            lines.append(f"`import jpegtorch`: {base:.0f} MB; the CLI imported torch: "
                         f"{'yes' if torch_used else 'no'}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="1,4,16,24")
    parser.add_argument("--no-kodak", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a README table")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(s not in SIZES for s in sizes):
        raise SystemExit(f"sizes must be among {sorted(SIZES)}")

    result: dict = {"quality": QUALITY, "subsampling": "4:2:0"}
    if not args.no_kodak:
        result["kodak"] = kodak_part(args.repeat)
        k = result["kodak"]
        print(f"Kodak: {k['identical']}/{k['images']} identical; " + ", ".join(
            f"{n} {k['ms'][n]:.2f} ms ({k['ratio'][n]:.2f}x)" for n in k["ms"]), flush=True)
    parts, where = tiles(25)
    result["mosaic_source"] = where
    result["sizes"] = sizes_part(sizes, args.repeat, parts)
    for r in result["sizes"][1:]:
        print(f"{r['mp']} MP: ours {r['ms']['ours']:.0f} ms, Pillow {r['ms']['pillow']:.0f} ms "
              f"({r['ratio']:.2f}x), {r['ns_per_px']['ours']:.1f} ns/px, growth "
              f"{r['growth_vs_1mp_tiles']['ours']:.2f}", flush=True)
    if not args.no_memory:
        result["memory"] = memory_part(sizes, parts)
        for m in result["memory"]:
            print(f"{m['mp']} MP peak RSS: CLI {m['cli_kb'] / 1024:.0f} MB "
                  f"({m['cli_over_import_mb']:.0f} over import), Pillow "
                  f"{m['pillow_kb'] / 1024:.0f} MB, torch imported: {m['cli_imported_torch']}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.markdown:
        print(markdown(result))


if __name__ == "__main__":
    main()
