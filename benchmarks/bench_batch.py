"""Benchmark: batches from the shell (issue 11): a loop of one ``jtorch encode`` per
file against one call over the folder, ``-j 2`` and ``-j 0``, and cjpeg's loop.

The 24 Kodak PNGs (../shared/data/kodak) are encoded at the default settings
(q 75, 4:2:0). Every mode runs ``--repeat`` times, interleaved (mode 1, mode
2, ..., then again), in fresh output folders, after one warm-up call (numba's
cache and the OS file cache are warm, as for a user's second run); the median
wall time is reported, with the peak RSS of a one-file call and of the
one-call batch (GNU ``time -f %M``: the largest process). The outputs of every
mode are compared byte for byte with the one-call batch's.

Modes:

- ``loop``: ``for f in *.png; do jtorch encode "$f" -o out/; done`` (24 processes);
- ``call``: ``jtorch encode kodak/ -o out/`` (one process);
- ``j2``: the same with ``-j 2``; ``j0``: with ``-j 0`` (one worker per core);
- ``cjpeg-loop``: ``for f in *.ppm; do cjpeg -outfile out/$f.jpg $f; done``
  (the PPMs made beforehand; what the issue compares against).

Also the per-call start-up: ``jtorch encode`` of one 64x64 image, median.

Usage::

    python benchmarks/bench_batch.py [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT.parent / "shared" / "data" / "kodak"
GNU_TIME = shutil.which("time") or "/usr/bin/time"


def jtorch_argv() -> list[str]:
    script = Path(sys.executable).with_name("jtorch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jpegtorch.cli.main"]


def run(command: str, *, cwd: Path) -> float:
    """Wall seconds of a shell command (which must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command!r} failed:\n{done.stderr}")
    return seconds


def peak_kb(argv: list[str], *, cwd: Path) -> int | None:
    """Peak RSS (kB) of the largest process of ``argv`` (GNU time), or None."""
    if not Path(GNU_TIME).exists():
        return None
    done = subprocess.run([GNU_TIME, "-f", "%M", *argv], cwd=cwd, capture_output=True,
                          text=True)
    try:
        return int(done.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sources = sorted(KODAK.glob("kodim*.png"))
    if not sources:
        raise SystemExit(f"Kodak images not found in {KODAK}")
    jt = " ".join(jtorch_argv())
    cjpeg = shutil.which("cjpeg")
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        kodak = work / "kodak"
        kodak.mkdir()
        for src in sources:
            shutil.copy(src, kodak / src.name)
        ppm = work / "ppm"
        ppm.mkdir()
        from PIL import Image

        for src in sources:
            Image.open(src).convert("RGB").save(ppm / (src.stem + ".ppm"))
        tiny = work / "tiny.png"
        Image.new("RGB", (64, 64), (10, 120, 200)).save(tiny)
        # warm numba's cache and the OS file cache
        subprocess.run([*jtorch_argv(), "encode", str(kodak), "-o", str(work / "warm"),
                        "-Q"], check=True)
        modes = {
            "loop": f'mkdir -p {{out}} && for f in {kodak}/*.png; do {jt} encode "$f" '
                    f'-o {{out}}/ -Q || exit 1; done',
            "call": f"{jt} encode {kodak} -o {{out}} -Q",
            "j2": f"{jt} encode {kodak} -o {{out}} -Q -j 2",
            "j0": f"{jt} encode {kodak} -o {{out}} -Q -j 0",
            "startup": f"{jt} encode {tiny} -o {{out}}/tiny.jpg -Q",
        }
        if cjpeg:
            modes["cjpeg-loop"] = (f'mkdir -p {{out}} && for f in {ppm}/*.ppm; do {cjpeg} '
                                   f'-outfile {{out}}/$(basename "$f" .ppm).jpg "$f"; done')
        times: dict[str, list[float]] = {m: [] for m in modes}
        for r in range(args.repeat):
            for mode, command in modes.items():
                out = work / f"out-{mode}-{r}"
                if mode == "startup":
                    out.mkdir()
                seconds = run(command.format(out=out), cwd=work)
                times[mode].append(seconds)
        reference = {p.name: p.read_bytes() for p in (work / "out-call-0").iterdir()}
        identical = {}
        for mode in ("loop", "j2", "j0", "cjpeg-loop"):
            if mode in modes:
                got = {p.name: p.read_bytes() for p in (work / f"out-{mode}-0").iterdir()}
                identical[mode] = got == reference
        peaks = {
            "call": peak_kb([*jtorch_argv(), "encode", str(kodak), "-o", str(work / "pk1"),
                             "-Q"], cwd=work),
            "startup": peak_kb([*jtorch_argv(), "encode", str(tiny), "-o",
                                str(work / "pk2.jpg"), "-Q"], cwd=work),
        }
        result = {
            "images": len(sources),
            "repeat": args.repeat,
            "median_s": {m: round(statistics.median(v), 3) for m, v in times.items()},
            "all_s": {m: [round(t, 3) for t in v] for m, v in times.items()},
            "bytes_identical_to_call": identical,
            "peak_rss_mb": {m: None if v is None else round(v / 1024, 1)
                            for m, v in peaks.items()},
            "cpus": len(os.sched_getaffinity(0)),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = result["median_s"]
    print(f"24 Kodak images, median of {args.repeat} (interleaved), {result['cpus']} cores:")
    for mode, label in (("loop", "for f in *.png; do jtorch encode $f; done"),
                        ("call", "jtorch encode kodak/ (one call)"),
                        ("j2", "jtorch encode kodak/ -j 2"),
                        ("j0", "jtorch encode kodak/ -j 0"),
                        ("cjpeg-loop", "for f in *.ppm; do cjpeg $f; done"),
                        ("startup", "one call on a 64x64 image (start-up)")):
        if mode in med:
            same = result["bytes_identical_to_call"].get(mode)
            note = "" if same is None else ("  same bytes" if same else "  DIFFERENT BYTES")
            print(f"  {label:45s} {med[mode]:7.2f} s{note}")
    print(f"  peak RSS: one call {result['peak_rss_mb']['call']} MB, "
          f"start-up {result['peak_rss_mb']['startup']} MB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
