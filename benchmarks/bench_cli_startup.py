"""Benchmark: how long ``jtorch --help`` and ``jtorch --version`` take (target < 0.5 s),
and that they import no torch.

Each command runs in a fresh process, ``--repeat`` times, interleaved; the
median and the best wall time are reported. ``python -c pass`` (the bare
interpreter) and ``python -c "import torch"`` are measured alongside for
scale. The torch check runs the CLI in-process in a subprocess and lists the
heavy modules in ``sys.modules`` afterwards.

Usage::

    python benchmarks/bench_cli_startup.py [--repeat 15] [--json out.json]

Exits 1 if a median is above the target or torch was imported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.5
HEAVY = ("torch", "numba", "numpy", "PIL", "cv2", "matplotlib", "tqdm")
PROBE = f"""
import sys
from jpegtorch.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="jtorch")
except SystemExit:
    pass
print(",".join(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)
"""


def _jtorch() -> list[str]:
    """The installed console script (what users run), else ``python -m``."""
    script = Path(sys.executable).with_name("jtorch")
    if script.exists():
        return [str(script)]
    found = shutil.which("jtorch")
    return [found] if found else [sys.executable, "-m", "jpegtorch.cli.main"]


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   cwd=ROOT)
    return time.perf_counter() - start


def heavy_modules(*args: str) -> list[str]:
    """Heavy modules imported by ``jtorch ARGS`` (run in a subprocess)."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return [m for m in last.split(",") if m]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    jtorch = _jtorch()
    cases = {
        "jtorch --help": [*jtorch, "--help"],
        "jtorch --version": [*jtorch, "--version"],
        "jtorch compare --help": [*jtorch, "compare", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }
    for argv in cases.values():  # warm the page cache and .pyc files
        _time(argv)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, argv in cases.items():
            times[name].append(_time(argv))

    print(f"CLI start-up, {args.repeat} runs each, fresh processes "
          f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    print(f"{'command':28s} {'median s':>9s} {'best s':>8s}")
    results = {}
    for name, values in times.items():
        median, best = statistics.median(values), min(values)
        results[name] = {"median_s": median, "best_s": best}
        print(f"{name:28s} {median:9.3f} {best:8.3f}")

    failures = 0
    print()
    for args_ in (["--help"], ["--version"], ["compare", "--help"]):
        heavy = heavy_modules(*args_)
        label = "jtorch " + " ".join(args_)
        results[label]["heavy_modules"] = heavy
        status = "FAIL (imports torch)" if "torch" in heavy else "ok"
        failures += "torch" in heavy
        print(f"{label:28s} imports: {', '.join(heavy) or 'nothing heavy'}  {status}")
    for name in ("jtorch --help", "jtorch --version"):
        if results[name]["median_s"] > TARGET_S:
            failures += 1
            print(f"{name}: median {results[name]['median_s']:.3f} s is above the "
                  f"{TARGET_S} s target")
    if not failures:
        print(f"\nok: --help and --version under {TARGET_S} s, no torch import")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
