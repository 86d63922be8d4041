"""Run every benchmark in turn (``make bench``). Each prints its own medians and
ratios against peers measured in the same run; see each script's --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["bench_cli_startup.py"],
    ["bench_pipeline.py", "--threads", "2"],
    ["bench_pipeline.py", "--threads", "1", "--skip-accuracy"],
    ["bench_precompensation.py", "--threads", "1"],
    ["bench_encode.py", "--threads", "1"],
    ["bench_decode.py", "--threads", "1"],
    ["corpus_decode.py"],
    ["bench_tables.py", "all"],
    ["bench_learned.py", "--threads", "1"],
]


def main() -> int:
    failed = []
    for args in RUNS:
        print(f"\n=== {' '.join(args)} ===", flush=True)
        if subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent):
            failed.append(args[0])
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
