"""Quality and table gradients of each differentiable JPEG against the real loss.

``quality``: for every Kodak image and every quality 20..80,
``d(MSE)/d(quality)`` of ``MSE = mean((JPEG(x, q) - x)^2)`` in each gradient
mode (jpegtorch ``ste``, ``soft``, ``ste-quant``, ``ste`` with the table
trainer's calibrated gains; kornia's ``jpeg_codec_differentiable`` when
installed) against the reference: the slope of the *real* loss,
libjpeg-turbo's (``hard``) MSE, over ``q +- 5`` (central finite differences of
the expected loss; the real loss is a staircase in q, so a smaller step
measures its steps, not its trend). Reported per mode: how many gradients are
not negative (they all should be: higher quality, lower error), how often the
sign agrees with the reference, and the ratio gradient / reference (median
and 10th..90th percentiles).

``tables``: on training photos (never Kodak) at qualities 30..80, the
gradient of the real distortion (10 log10 MSE, dB) w.r.t. each of the 128
base-table entries (log scale: ``grad * entry``) in each mode, against central
differences of the real (hard) distortion with the entry moved by +-20% (at
least 1): correlation over the entries and the ratio of the sums. Modes:
``ste``, ``ste`` with the table trainer's calibrated gains
(:func:`jpegtorch.optimize.tables.calibrated_gradients`), ``soft``,
``ste-quant``, ``exact fwd + soft bwd``.

    python benchmarks/bench_gradient_modes.py quality [--step 1] [--limit 24] [--json out.json]
    python benchmarks/bench_gradient_modes.py tables [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from _common import ROOT, kodak_paths, load_rgb

import jpegtorch


def mse(x: torch.Tensor, q: torch.Tensor, fn) -> torch.Tensor:
    """Per-sample MSE of ``fn(x, q)`` against ``x`` (``x`` ``[N,3,H,W]`` float)."""
    return ((fn(x, q) - x) ** 2).mean((1, 2, 3))


def hard(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return jpegtorch.jpeg(x, q, mode="hard")


def run_quality(args: argparse.Namespace) -> dict:
    methods = {m: (lambda mode: lambda x, q: jpegtorch.jpeg(x, q, mode=mode))(m)
               for m in ("ste", "soft", "ste-quant")}
    methods["ste calibrated"] = lambda x, q: _decode_variant(jpegtorch.encode(x, q, mode="ste"),
                                                             "calibrated")
    try:
        import kornia

        methods["kornia"] = lambda x, q: kornia.enhance.jpeg_codec_differentiable(x, q)
    except ImportError:
        print("(kornia not installed: pip install -e '.[bench]' for its row)")
    qualities = torch.arange(args.low, args.high + 1, args.step, dtype=torch.float32)
    grads: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    references: list[np.ndarray] = []
    names = []
    for path in kodak_paths(required=True)[:args.limit]:
        image = torch.from_numpy(load_rgb(path)).permute(2, 0, 1)[None].float() / 255
        ref, per_method = [], {m: [] for m in methods}
        for chunk in qualities.split(args.chunk):
            x = image.expand(len(chunk), -1, -1, -1)
            with torch.no_grad():
                ref.append(((mse(x, chunk + args.h, hard) - mse(x, chunk - args.h, hard))
                            / (2 * args.h)).numpy())
            for name, fn in methods.items():
                q = chunk.clone().requires_grad_(True)
                mse(x, q, fn).sum().backward()
                per_method[name].append(q.grad.numpy().copy())
        references.append(np.concatenate(ref))
        for name in methods:
            grads[name].append(np.concatenate(per_method[name]))
        names.append(path.stem)
        worst = {m: float(np.max(grads[m][-1])) for m in methods}
        print(f"{path.stem}: largest gradient " + ", ".join(
            f"{m} {v:+.2e}" for m, v in worst.items()), flush=True)
    reference = np.stack(references)
    results: dict[str, dict] = {}
    total = reference.size
    print(f"\n{len(names)} Kodak images x {len(qualities)} qualities "
          f"{args.low}..{args.high} (step {args.step}) = {total} gradients; reference: "
          f"slope of the real MSE over q +- {args.h} (negative at "
          f"{int((reference < 0).sum())}/{total})")
    print(f"{'mode':14s} {'not < 0':>8s} {'sign = ref':>11s} {'grad/ref median':>16s} "
          f"{'p10..p90':>14s}")
    for name in methods:
        g = np.stack(grads[name])
        ratio = g / reference
        row = {
            "not_negative": int((g >= 0).sum()),
            "not_negative_at": [(names[i], float(qualities[j])) for i, j in
                                zip(*np.nonzero(g >= 0), strict=True)],
            "sign_agreement": float(np.mean(np.sign(g) == np.sign(reference))),
            "ratio_median": float(np.median(ratio)),
            "ratio_p10": float(np.percentile(ratio, 10)),
            "ratio_p90": float(np.percentile(ratio, 90)),
        }
        results[name] = row
        print(f"{name:14s} {row['not_negative']:8d} {row['sign_agreement']:11.3f} "
              f"{row['ratio_median']:16.2f} {row['ratio_p10']:6.2f}..{row['ratio_p90']:<6.2f}")
        if row["not_negative"]:
            print(f"           not negative at: {row['not_negative_at'][:12]}")
    return {"images": names, "qualities": qualities.tolist(), "results": results}


TABLE_PICKS = ((3, 50), (10, 30), (17, 80), (25, 60), (33, 40), (40, 70))


def _decode_variant(coefficients, variant: str) -> torch.Tensor:
    from jpegtorch.optimize.tables import calibrated_gradients

    if variant == "calibrated":
        coefficients = calibrated_gradients(coefficients)
    return jpegtorch.decode(coefficients)


def run_tables(args: argparse.Namespace) -> dict:
    from jpegtorch.quantize import annex_k_tables

    files = sorted((ROOT.parent / "shared" / "data" / "train" / "wikipedia_photos").glob("*.png"))
    if not files:
        sys.exit("bench_gradient_modes: no training photos in ../shared/data/train")
    base = annex_k_tables(dtype=torch.float64)
    entries = list(np.ndindex(2, 8, 8))
    variants = ("ste", "calibrated", "soft", "ste-quant", "exact fwd + soft bwd")
    pooled: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    actual_all: list[np.ndarray] = []
    per_pick: dict[str, dict] = {}
    for index, q in TABLE_PICKS[:args.picks]:
        path = files[index % len(files)]
        image = torch.from_numpy(load_rgb(path, landscape=False)[:args.size, :args.size * 3 // 2]
                                 ).permute(2, 0, 1).contiguous()
        original = image[None].double() / 255

        def distortion(decoded: torch.Tensor, original: torch.Tensor = original) -> torch.Tensor:
            return 10 * torch.log10((decoded - original).square().mean())

        predicted = {}
        for variant in variants:
            tables = base.clone().requires_grad_(True)
            mode = {"calibrated": "ste", "exact fwd + soft bwd": "soft"}.get(variant, variant)
            c = jpegtorch.encode(original, q, tables=tables, mode=mode)
            decoded = _decode_variant(c, variant)
            if variant == "exact fwd + soft bwd":
                exact = jpegtorch.jpeg(original, q, tables=base, mode="hard")
                decoded = decoded + (exact - decoded).detach()
            grad, = torch.autograd.grad(distortion(decoded), tables)
            predicted[variant] = (grad * base).reshape(-1).numpy()
        actual = []
        for entry in entries:
            step = max(1.0, round(0.2 * float(base[entry])))
            values = []
            for sign in (1, -1):
                perturbed = base.clone()
                perturbed[entry] += sign * step
                decoded = jpegtorch.jpeg(image, q, tables=perturbed, mode="hard").double() / 255
                values.append(float(distortion(decoded[None])))
            actual.append((values[0] - values[1]) / (2 * step) * float(base[entry]))
        actual = np.array(actual)
        actual_all.append(actual)
        name = f"{path.stem}@q{q}"
        per_pick[name] = {}
        line = []
        for variant in variants:
            pooled[variant].append(predicted[variant])
            corr = float(np.corrcoef(predicted[variant], actual)[0, 1])
            per_pick[name][variant] = corr
            line.append(f"{variant} {corr:.2f}")
        print(f"  {name}: correlation with finite differences: " + ", ".join(line), flush=True)
    actual = np.concatenate(actual_all)
    results = {}
    print(f"\n{len(actual_all)} photos x 128 entries; d(10 log10 MSE)/d(log entry) vs central "
          f"differences of the real distortion (entry +-20%)")
    print(f"{'mode':22s} {'correlation':>11s} {'sum ratio':>10s} {'sign agreement':>15s}")
    for variant in variants:
        p = np.concatenate(pooled[variant])
        results[variant] = {
            "correlation": float(np.corrcoef(p, actual)[0, 1]),
            "sum_ratio": float(p.sum() / actual.sum()),
            "sign_agreement": float(np.mean((np.sign(p) == np.sign(actual))[actual != 0])),
            "per_photo_correlation": {k: v[variant] for k, v in per_pick.items()},
        }
        r = results[variant]
        print(f"{variant:22s} {r['correlation']:11.3f} {r['sum_ratio']:10.2f} "
              f"{r['sign_agreement']:15.3f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("quality", "tables"))
    parser.add_argument("--step", type=int, default=1, help="quality: quality step (default 1)")
    parser.add_argument("--low", type=int, default=20)
    parser.add_argument("--high", type=int, default=80)
    parser.add_argument("--h", type=int, default=5, help="quality: finite-difference half width")
    parser.add_argument("--limit", type=int, default=24, help="quality: first N Kodak images")
    parser.add_argument("--chunk", type=int, default=16, help="quality: qualities per batch")
    parser.add_argument("--picks", type=int, default=len(TABLE_PICKS),
                        help="tables: photo/quality pairs")
    parser.add_argument("--size", type=int, default=512, help="tables: crop height")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = run_quality(args) if args.command == "quality" else run_tables(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), **results}, f, indent=1)


if __name__ == "__main__":
    main()
