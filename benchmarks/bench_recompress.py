"""Benchmark: lossless JPEG recompression (``jpegtorch.recompress_jpeg``) against JPEG XL
and jpegtran, in the same run.

1. Kodak (24 images, ../shared/data/kodak) written by Pillow (libjpeg-turbo) at
   q75 4:2:0, q90 4:2:0 and q90 4:2:0 with optimized Huffman tables: total
   saving of ours (every file restored and compared byte for byte), of JPEG
   XL's lossless JPEG transcoding (``imagecodecs.jpegxl_encode_jpeg``, one
   thread, restored and compared too), and of jpegtran ``-optimize`` /
   ``-progressive`` (libjpeg-turbo's and, if ../shared/tools has it,
   mozjpeg's; these rewrite the file and cannot give its bytes back). Times
   per file in process, ours and JPEG XL's interleaved, medians of
   ``--repeat`` runs, wall and CPU.
2. The corpus (../shared/data/jpeg_corpus): how many files are JPEGs, how many
   are modelled, how many kept verbatim (and why), the total saving; every
   file's round trip is checked.
3. Larger images (Kodak 1 upscaled to about 1, 6 and 24 MP, q75): time and
   peak memory (growth of the peak RSS during the call: ``VmHWM`` reset
   through ``/proc/self/clear_refs`` just before it; Linux), in a fresh
   process per codec and size, so that growth with size shows.

Usage::

    python benchmarks/bench_recompress.py [--images N] [--repeat R] [--sizes 1,6,24]
        [--skip-corpus] [--json out.json]

JPEG XL needs ``imagecodecs`` (``pip install -e '.[bench]'``); without it its
columns say "n/a". Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
KODAK = SHARED / "data" / "kodak"
CORPUS = SHARED / "data" / "jpeg_corpus"
MOZ_JPEGTRAN = SHARED / "tools" / "mozjpeg-4.0.3" / "jpegtran"

sys.path.insert(0, str(ROOT))
from jpegtorch.recompress import (  # noqa: E402
    RecompressWarning,
    recompress_info,
    recompress_jpeg,
    restore_jpeg,
)

try:
    import imagecodecs

    HAVE_JXL = bool(getattr(imagecodecs, "JPEGXL", None) and imagecodecs.JPEGXL.available)
except ImportError:  # pragma: no cover - depends on the environment
    imagecodecs = None
    HAVE_JXL = False

SETS = {"q75": dict(quality=75), "q90": dict(quality=90),
        "q90-optimize": dict(quality=90, optimize=True)}


def jxl_encode(data: bytes) -> bytes:
    return imagecodecs.jpegxl_encode_jpeg(data, numthreads=1)


def jxl_decode(data: bytes) -> bytes:
    return imagecodecs.jpegxl_decode_jpeg(data, numthreads=1)


def jpegtran(data: bytes, tool: str, *args: str) -> bytes | None:
    path = shutil.which(tool) if "/" not in tool else (tool if Path(tool).exists() else None)
    if path is None:
        return None
    result = subprocess.run([path, "-copy", "all", *args], input=data, capture_output=True)
    return result.stdout if result.returncode == 0 and result.stdout else None


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median (wall, cpu) seconds of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def kodak_files(count: int) -> list[Path]:
    files = sorted(KODAK.glob("kodim*.png"))[:count]
    if not files:
        raise SystemExit(f"no Kodak images in {KODAK}")
    return files


def bench_sets(files: list[Path], repeat: int) -> dict:
    results = {}
    images = [Image.open(f).convert("RGB") for f in files]
    for name, options in SETS.items():
        totals = Counter()
        times = {"ours_enc": [], "ours_dec": [], "jxl_enc": [], "jxl_dec": []}
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", **options)
            data = buffer.getvalue()
            with warnings.catch_warnings():
                warnings.simplefilter("error", RecompressWarning)
                ours = recompress_jpeg(data)
            assert restore_jpeg(ours) == data, "ours: not exact"
            totals["jpeg"] += len(data)
            totals["ours"] += len(ours)
            if HAVE_JXL:
                jxl = jxl_encode(data)
                assert jxl_decode(jxl) == data, "JPEG XL: not exact"
                totals["jxl"] += len(jxl)
            for key, tool, args in (("jpegtran_opt", "jpegtran", ("-optimize",)),
                                    ("jpegtran_prog", "jpegtran", ("-progressive",)),
                                    ("moz_jpegtran", str(MOZ_JPEGTRAN), ())):
                out = jpegtran(data, tool, *args)
                if out is not None:
                    totals[key] += len(out)
            # interleaved timing, ours and JPEG XL, same file
            for _ in range(repeat):
                times["ours_enc"].append(timed(lambda d=data: recompress_jpeg(d), 1))
                times["ours_dec"].append(timed(lambda o=ours: restore_jpeg(o), 1))
                if HAVE_JXL:
                    times["jxl_enc"].append(timed(lambda d=data: jxl_encode(d), 1))
                    times["jxl_dec"].append(timed(lambda j=jxl: jxl_decode(j), 1))
        row = {"files": len(images), "jpeg_bytes": totals["jpeg"]}
        for key in ("ours", "jxl", "jpegtran_opt", "jpegtran_prog", "moz_jpegtran"):
            row[f"{key}_saving"] = (1 - totals[key] / totals["jpeg"]) if totals[key] else None
        for key, values in times.items():
            if values:
                row[f"{key}_wall_ms"] = 1e3 * statistics.median(v[0] for v in values) * len(images)
                row[f"{key}_cpu_ms"] = 1e3 * statistics.median(v[1] for v in values) * len(images)
        if HAVE_JXL:
            for d in ("enc", "dec"):
                row[f"{d}_ratio_cpu"] = row[f"ours_{d}_cpu_ms"] / row[f"jxl_{d}_cpu_ms"]
                row[f"{d}_ratio_wall"] = row[f"ours_{d}_wall_ms"] / row[f"jxl_{d}_wall_ms"]
        results[name] = row
        print(f"  {name}: ours {100 * row['ours_saving']:.2f} %"
              + (f", JPEG XL {100 * row['jxl_saving']:.2f} %" if HAVE_JXL else ""), flush=True)
    return results


def bench_corpus() -> dict:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file()
                   and p.suffix.lower() not in (".tsv", ".md", ".txt", ".py"))
    counts = Counter()
    reasons = Counter()
    sizes = Counter()
    for path in files:
        data = path.read_bytes()
        counts["files"] += 1
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RecompressWarning)
                packed = recompress_jpeg(data)
        except Exception as exc:  # JPEGError: not a JPEG
            counts["refused (not a JPEG)"] += 1
            reasons[str(exc)[:60]] += 1
            continue
        assert restore_jpeg(packed) == data, path
        counts["jpeg"] += 1
        info = recompress_info(packed)
        sizes["jpeg"] += len(data)
        sizes["container"] += len(packed)
        if caught:
            counts["verbatim (cannot be modelled)"] += 1
            reason = str(caught[0].message).split("(", 1)[-1].rsplit(")", 1)[0]
            reasons[reason[:70]] += 1
        elif info.verbatim:
            counts["verbatim (smaller than modelled)"] += 1
        else:
            counts["modelled"] += 1
            sizes["modelled_jpeg"] += len(data)
            sizes["modelled_container"] += len(packed)
    return {
        "counts": dict(counts),
        "saving_all_jpegs": 1 - sizes["container"] / max(1, sizes["jpeg"]),
        "saving_modelled": 1 - sizes["modelled_container"] / max(1, sizes["modelled_jpeg"]),
        "verbatim_reasons": dict(reasons.most_common(15)),
    }


_PROBE = r"""
import sys, time
data = open(sys.argv[2], 'rb').read()
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1])
def rss():  # peak RSS (kB) since the last reset, the current RSS subtracted by the caller
    return status('VmHWM')
def reset():
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current RSS (Linux >= 4.0)
    return status('VmRSS')
if sys.argv[1] == 'ours':
    from jpegtorch.recompress import recompress_jpeg as enc, restore_jpeg as dec
    dec(enc(open(sys.argv[3], 'rb').read()))  # warm: numba kernels loaded
else:
    import imagecodecs
    enc = lambda d: imagecodecs.jpegxl_encode_jpeg(d, numthreads=1)
    dec = lambda d: imagecodecs.jpegxl_decode_jpeg(d, numthreads=1)
    dec(enc(open(sys.argv[3], 'rb').read()))
base = reset(); t = time.perf_counter(); c = time.process_time()
packed = enc(data)
enc_wall, enc_cpu = time.perf_counter() - t, time.process_time() - c
enc_peak = rss() - base
base = reset(); t = time.perf_counter(); c = time.process_time()
assert dec(packed) == data
print(enc_wall, enc_cpu, enc_peak, time.perf_counter() - t, time.process_time() - c,
      rss() - base, len(packed))
"""


def bench_sizes(sizes_mp: list[float]) -> list[dict]:
    source = Image.open(kodak_files(1)[0]).convert("RGB")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "warm.jpg"
        source.resize((96, 64)).save(small, quality=75)
        for mp in sizes_mp:
            scale = (mp * 1e6 / (source.width * source.height)) ** 0.5
            image = source.resize((round(source.width * scale), round(source.height * scale)),
                                  Image.LANCZOS)
            path = Path(tmp) / f"img_{mp}.jpg"
            image.save(path, quality=75)
            row = {"megapixels": image.width * image.height / 1e6,
                   "jpeg_bytes": path.stat().st_size}
            for codec in (["ours", "jxl"] if HAVE_JXL else ["ours"]):
                out = subprocess.run([sys.executable, "-c", _PROBE, codec, str(path), str(small)],
                                     capture_output=True, text=True, cwd=ROOT)
                if out.returncode:
                    row[codec] = {"error": out.stderr.strip().splitlines()[-1:]}
                    continue
                v = out.stdout.split()
                row[codec] = {"enc_wall_s": float(v[0]), "enc_cpu_s": float(v[1]),
                              "enc_peak_mb": int(v[2]) / 1024, "dec_wall_s": float(v[3]),
                              "dec_cpu_s": float(v[4]), "dec_peak_mb": int(v[5]) / 1024,
                              "saving": 1 - int(v[6]) / row["jpeg_bytes"]}
            rows.append(row)
            print(f"  {row['megapixels']:.1f} MP done", flush=True)
    return rows


def report(results: dict) -> str:
    lines = ["## Kodak (24 images, Pillow 4:2:0)", "",
             "| set | ours | JPEG XL | jpegtran -optimize | jpegtran -progressive "
             "| mozjpeg jpegtran | ours enc / JXL (CPU) | ours dec / JXL (CPU) |",
             "|---|---|---|---|---|---|---|---|"]

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f} %"

    for name, row in results["kodak"].items():
        enc = (f"{row['ours_enc_cpu_ms']:.0f} / {row['jxl_enc_cpu_ms']:.0f} ms "
               f"({row['enc_ratio_cpu']:.2f}x)") if HAVE_JXL else "n/a"
        dec = (f"{row['ours_dec_cpu_ms']:.0f} / {row['jxl_dec_cpu_ms']:.0f} ms "
               f"({row['dec_ratio_cpu']:.2f}x)") if HAVE_JXL else "n/a"
        lines.append(f"| {name} | {pct(row['ours_saving'])} | {pct(row['jxl_saving'])} | "
                     f"{pct(row['jpegtran_opt_saving'])} | {pct(row['jpegtran_prog_saving'])} | "
                     f"{pct(row['moz_jpegtran_saving'])} | {enc} | {dec} |")
    if "corpus" in results:
        c = results["corpus"]
        lines += ["", "## Corpus", "", f"counts: {c['counts']}",
                  f"saving over all JPEG files: {pct(c['saving_all_jpegs'])}; "
                  f"over the modelled ones: {pct(c['saving_modelled'])}",
                  f"verbatim reasons: {c['verbatim_reasons']}"]
    if results.get("sizes"):
        lines += ["", "## Size sweep (q75, fresh process per codec and size)", "",
                  "| MP | JPEG bytes | ours enc s / peak MB | ours dec s / peak MB "
                  "| JXL enc s / peak MB | JXL dec s / peak MB |", "|---|---|---|---|---|---|"]
        for row in results["sizes"]:
            cells = []
            for codec in ("ours", "jxl"):
                r = row.get(codec, {})
                for d in ("enc", "dec"):
                    cells.append(f"{r[f'{d}_cpu_s']:.2f} / {r[f'{d}_peak_mb']:.0f}"
                                 if f"{d}_cpu_s" in r else "n/a")
            lines.append(f"| {row['megapixels']:.1f} | {row['jpeg_bytes']} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1,6,24",
                        help="megapixels for the size sweep ('' = none)")
    parser.add_argument("--skip-corpus", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not HAVE_JXL:
        print("JPEG XL: imagecodecs with JPEG XL support is not installed -> columns n/a")
    results: dict = {"jpegxl": (imagecodecs.jpegxl_version() if HAVE_JXL else None),
                     "imagecodecs": (imagecodecs.__version__ if HAVE_JXL else None)}
    print("Kodak sets ...", flush=True)
    results["kodak"] = bench_sets(kodak_files(args.images), args.repeat)
    if not args.skip_corpus and CORPUS.is_dir():
        print("corpus ...", flush=True)
        results["corpus"] = bench_corpus()
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    if sizes:
        print("size sweep ...", flush=True)
        results["sizes"] = bench_sizes(sizes)
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
