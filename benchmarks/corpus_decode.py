"""Full-corpus check of the JPEG reader against Pillow (libjpeg-turbo).

For every file of ``../shared/data/jpeg_corpus`` (see its MANIFEST.tsv) this
decodes the file with Pillow and with ``jpegtorch.decode_jpeg`` in strict and
in lenient mode, and classifies the outcome:

- ``identical``: both decode, pixel for pixel equal;
- ``DIFFERENT``: both decode, pixels differ (a bug);
- ``refused``: Pillow decodes, we raise ``JPEGError`` (reason tallied);
- ``both refuse`` / ``only we decode``;
- ``CRASH``: an exception other than ``JPEGError`` (a bug), or a hang.

"In scope" is what issue #4 requires to be identical: baseline, extended
Huffman or progressive Huffman, 8-bit, 1 or 3 components, decoded cleanly by
libjpeg-turbo (``djpeg_turbo215 == ok``).

``--digest`` instead prints one SHA-256 over every file's outcome in both
modes: the decoded pixels, the coefficients (``read_coefficients``), the
warnings and the error messages. A change to the reader or the pixel stages
that must not change behaviour has to leave the digest identical.

Usage::

    python benchmarks/corpus_decode.py [--corpus DIR] [--json out.json] [-v]
    python benchmarks/corpus_decode.py --digest [--corpus DIR]

Exit status 1 if any in-scope file is not identical, a strict decode differs
from Pillow, or on any crash.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import signal
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

import jpegtorch
from jpegtorch.errors import JPEGError

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "jpeg_corpus"


class Hang(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - signal handler
    raise Hang()


def pillow_decode(data: bytes) -> np.ndarray | str:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.format not in ("JPEG", "MPO") or im.mode not in ("L", "RGB"):
                return f"FAIL mode {im.format} {im.mode}"
            return np.asarray(im)
    except Exception as exc:
        return f"FAIL {type(exc).__name__}"


def ours(data: bytes, lenient: bool, timeout: float) -> tuple[np.ndarray | None, str, float]:
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = jpegtorch.decode_jpeg(data, lenient=lenient)
        arr = x.permute(1, 2, 0).numpy()
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
        return arr, "ok", time.perf_counter() - t0
    except JPEGError as exc:
        return None, f"JPEGError: {exc}", time.perf_counter() - t0
    except Hang:
        return None, "CRASH: hang", time.perf_counter() - t0
    except Exception as exc:
        return None, f"CRASH: {type(exc).__name__}: {exc}", time.perf_counter() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def in_scope(row: dict[str, str]) -> bool:
    header = row["header"].split()
    if not header or header[0] not in ("baseline", "ext-seq-huff", "progressive-huff"):
        return False
    if "P=8" not in header:
        return False
    if len(header) > 2 and header[2].count(",") == 3:  # 4 components
        return False
    return row["djpeg_turbo215"].strip() == "ok"


def reason_key(message: str) -> str:
    text = message.split(": ", 1)[-1]
    for word in ("arithmetic", "lossless", "hierarchical", "JPEG-LS", "precision", "4-component",
                 "not a JPEG", "corrupt JPEG data", "truncated", "exceeds", "DNL",
                 "fractional", "Huffman table", "quantization table", "empty image"):
        if word in text:
            return word
    return text[:50]


def outcome(data: bytes, lenient: bool) -> bytes:
    """A byte string recording everything the reader does with ``data``."""
    parts = []
    for what in ("pixels", "coefficients"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if what == "pixels":
                    x = jpegtorch.decode_jpeg(data, lenient=lenient)
                    parts.append(f"{tuple(x.shape)}".encode() + x.contiguous().numpy().tobytes())
                else:
                    c = jpegtorch.read_coefficients(data, lenient=lenient)
                    for b in c.blocks:
                        parts.append(b.to(dtype=b.dtype if b.dtype.is_floating_point else
                                          __import__("torch").int32).numpy().tobytes())
                    parts.append(c.qtables.to(__import__("torch").int32).numpy().tobytes())
                    parts.append(repr((c.sampling, c.size, c.color, c.component_ids,
                                       c.qtable_slots)).encode())
            except JPEGError as exc:
                parts.append(f"JPEGError: {exc}".encode())
            except Exception as exc:  # a crash is an outcome too
                parts.append(f"CRASH {type(exc).__name__}: {exc}".encode())
        parts.extend(str(w.message).encode() for w in caught)
    return b"\0".join(parts)


def digest(corpus: Path, verbose: bool) -> int:
    rows = list(csv.DictReader((corpus / "MANIFEST.tsv").open(), delimiter="\t"))
    total = hashlib.sha256()
    for row in rows:
        data = (corpus / row["file"]).read_bytes()
        one = hashlib.sha256()
        for lenient in (False, True):
            one.update(outcome(data, lenient) + b"\1")
        total.update(row["file"].encode() + one.digest())
        if verbose:
            print(one.hexdigest()[:16], row["file"])
    print(f"corpus digest ({len(rows)} files, strict + lenient: pixels, coefficients, "
          f"warnings, errors): {total.hexdigest()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", type=Path, help="write per-file results here")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per decode")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--digest", action="store_true",
                        help="print the digest of every outcome (see above) and exit")
    args = parser.parse_args()
    manifest = args.corpus / "MANIFEST.tsv"
    if not manifest.exists():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    if args.digest:
        return digest(args.corpus, args.verbose)
    rows = list(csv.DictReader(manifest.open(), delimiter="\t"))
    tally: Counter[str] = Counter()
    lenient_tally: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    problems: list[str] = []
    notes: list[str] = []
    results = []
    t_ours = t_pil = 0.0
    t_start = time.perf_counter()
    for row in rows:
        path = args.corpus / row["file"]
        data = path.read_bytes()
        t0 = time.perf_counter()
        ref = pillow_decode(data)
        t_pil += time.perf_counter() - t0
        scope = in_scope(row)
        entry = {"file": row["file"], "in_scope": scope}
        for lenient in (False, True):
            arr, status, dt = ours(data, lenient, args.timeout)
            if not lenient:
                t_ours += dt
            if status.startswith("CRASH"):
                verdict = "CRASH"
            elif arr is not None and isinstance(ref, np.ndarray):
                verdict = "identical" if (arr.shape == ref.shape and np.array_equal(arr, ref)) \
                    else "DIFFERENT"
            elif arr is not None:
                verdict = "only we decode"
            elif isinstance(ref, np.ndarray):
                verdict = "refused"
            else:
                verdict = "both refuse"
            entry["lenient" if lenient else "strict"] = verdict
            entry[("lenient" if lenient else "strict") + "_status"] = status
            (lenient_tally if lenient else tally)[verdict] += 1
            if not lenient and verdict == "refused":
                reasons[reason_key(status)] += 1
            bad = verdict == "CRASH" or (not lenient and verdict == "DIFFERENT") or (
                scope and not lenient and verdict != "identical")
            if bad:
                problems.append(f"{row['file']} [{'lenient' if lenient else 'strict'}]: "
                                f"{verdict} {status[:150]}")
            elif verdict == "DIFFERENT":  # lenient decode of corrupt data
                notes.append(row["file"])
            if args.verbose:
                print(f"{verdict:15s} {'L' if lenient else 'S'} {row['file']} {status[:100]}")
        results.append(entry)
    scope_rows = [r for r in results if r["in_scope"]]
    scope_ok = sum(r["strict"] == "identical" for r in scope_rows)
    print(f"corpus: {len(rows)} files in {time.perf_counter() - t_start:.1f} s "
          f"(strict decode time: ours {t_ours:.2f} s, Pillow {t_pil:.2f} s)")
    print(f"in scope (Huffman 8-bit 1/3 components, djpeg clean): {scope_ok}/{len(scope_rows)} "
          "identical to Pillow")
    print("strict:  " + ", ".join(f"{k} {v}" for k, v in tally.most_common()))
    print("lenient: " + ", ".join(f"{k} {v}" for k, v in lenient_tally.most_common()))
    print("refused (strict) where Pillow decodes, by reason: "
          + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    if notes:
        print(f"lenient decodes that differ from Pillow ({len(notes)}; corrupt data whose "
              "garbage coefficients overflow the IDCT, where Pillow's SIMD IDCT saturates "
              "16-bit intermediates): " + ", ".join(notes))
    for line in problems:
        print("PROBLEM", line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
