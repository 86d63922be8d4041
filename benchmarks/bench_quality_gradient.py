"""The quality gradient of each differentiable JPEG against the real loss.

For every Kodak image and every quality 20..80, ``d(MSE)/d(quality)`` of
``MSE = mean((JPEG(x, q) - x)^2)`` in each gradient mode (jpegtorch ``ste``,
``soft``, ``ste-quant``; kornia's ``jpeg_codec_differentiable`` when
installed) against the reference: the slope of the *real* loss, libjpeg-turbo's
(``hard``) MSE, over ``q +- 5`` (central finite differences of the expected
loss; the real loss is a staircase in q, so a smaller step measures its
steps, not its trend). Reported per mode: how many gradients are not
negative (they all should be: higher quality, lower error), how often the
sign agrees with the reference, and the ratio gradient / reference
(median and 10th..90th percentiles).

    python benchmarks/bench_quality_gradient.py [--step 1] [--limit 24] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from _common import kodak_paths, load_rgb

import jpegtorch


def mse(x: torch.Tensor, q: torch.Tensor, fn) -> torch.Tensor:
    """Per-sample MSE of ``fn(x, q)`` against ``x`` (``x`` ``[N,3,H,W]`` float)."""
    return ((fn(x, q) - x) ** 2).mean((1, 2, 3))


def hard(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return jpegtorch.jpeg(x, q, mode="hard")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", type=int, default=1, help="quality step (default 1)")
    parser.add_argument("--low", type=int, default=20)
    parser.add_argument("--high", type=int, default=80)
    parser.add_argument("--h", type=int, default=5, help="finite-difference half width")
    parser.add_argument("--limit", type=int, default=24, help="first N Kodak images")
    parser.add_argument("--chunk", type=int, default=16, help="qualities per batch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = {m: (lambda mode: lambda x, q: jpegtorch.jpeg(x, q, mode=mode))(m)
               for m in ("ste", "soft", "ste-quant")}
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
    print(f"{'mode':10s} {'not < 0':>8s} {'sign = ref':>11s} {'grad/ref median':>16s} "
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
        print(f"{name:10s} {row['not_negative']:8d} {row['sign_agreement']:11.3f} "
              f"{row['ratio_median']:16.2f} {row['ratio_p10']:6.2f}..{row['ratio_p90']:<6.2f}")
        if row["not_negative"]:
            print(f"           not negative at: {row['not_negative_at'][:12]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "images": names,
                       "qualities": qualities.tolist(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
