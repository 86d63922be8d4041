"""Does training on *exact* JPEG pay? A JPEG-artifact-removal benchmark.

The same small residual CNN (DnCNN-style, ``--width`` channels, ``--depth``
3×3 convolutions; 38 k parameters by default) is trained to undo JPEG on
random crops of ../shared/data/train, with its *inputs* made by:

- ``exact``: jpegtorch, libjpeg-turbo's integers (identical to real files);
- ``kornia``: kornia's differentiable JPEG (``jpeg_codec_differentiable``);
- ``ste-quant``: a float DiffJPEG-style model (float colour/DCT, hard
  rounding at quantization only; jpegtorch's ``ste-quant`` forward);
- ``soft``: the same with soft rounding (jpegtorch's ``soft`` forward).

Every method sees the same crops, the same per-sample qualities (uniform
integers 10..50, 4:2:0) and the same initial weights for a given seed; only the
JPEG that makes the inputs differs. Each model is then judged on *real*
libjpeg-turbo files of the 24 Kodak images (Pillow encode + decode, 4:2:0,
never trained on): PSNR of the restored image (rounded to 8 bits) against the
original, per quality, and its gain over the JPEG itself.

    python benchmarks/bench_train_value.py run --method exact --seed 0   # one run -> JSON
    python benchmarks/bench_train_value.py all --seeds 0 1 2             # every method x seed
    python benchmarks/bench_train_value.py report                        # the table

Runs are sequential, one thread each (``nice`` them on a shared machine); each
writes ``out/bench_train_value/<method>-s<seed>.json`` (curve + Kodak
results), which ``report`` aggregates (mean and spread over seeds, gap to
``exact``) and can write to ``--json``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, kodak_paths, load_rgb, psnr
from PIL import Image
from torch import nn

import jpegtorch

TRAIN = ROOT.parent / "shared" / "data" / "train"
OUT = ROOT / "out" / "bench_train_value"
METHODS = ("exact", "kornia", "ste-quant", "soft")


# ------------------------------------------------------------------- the model


class ArtifactRemover(nn.Module):
    """DnCNN-style residual CNN: ``x + f(x - 0.5)``, ``f`` = ``depth`` 3×3
    convolutions of ``width`` channels with ReLUs (He initialisation; the last
    layer starts at zero, so the model starts as the identity)."""

    def __init__(self, width: int = 32, depth: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        for layer in layers:
            if isinstance(layer, nn.Conv2d):  # torch's default initialisation vanishes here
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        nn.init.zeros_(layers[-1].weight)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x - 0.5)


# --------------------------------------------------------------------- the data


def load_training_images(limit: int = 0) -> list[np.ndarray]:
    paths = sorted(p for p in TRAIN.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    if not paths:
        sys.exit(f"bench_train_value: no training images in {TRAIN} (../shared/data/train)")
    paths = paths[:limit] if limit else paths
    return [np.array(Image.open(p).convert("RGB")) for p in paths]


def crop_batch(images: list[np.ndarray], rng: np.random.Generator, batch: int,
               size: int) -> torch.Tensor:
    """``[batch, 3, size, size]`` uint8 random crops (random flips)."""
    out = np.empty((batch, size, size, 3), dtype=np.uint8)
    for i in range(batch):
        image = images[rng.integers(len(images))]
        top = rng.integers(image.shape[0] - size + 1)
        left = rng.integers(image.shape[1] - size + 1)
        crop = image[top:top + size, left:left + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = crop
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def make_inputs(method: str, crops: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """The JPEG'd training inputs, float in [0, 1]."""
    x = crops.float() / 255
    with torch.no_grad():
        if method == "exact":
            return jpegtorch.jpeg(crops, quality.float(), mode="hard").float() / 255
        if method in ("ste-quant", "soft"):
            return jpegtorch.jpeg(x, quality.float(), mode=method).clamp(0, 1)
        if method == "kornia":
            import kornia

            return kornia.enhance.jpeg_codec_differentiable(x, quality.float()).clamp(0, 1)
    raise ValueError(f"unknown method {method!r}")


def pillow_roundtrip(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality, subsampling=2)
    return np.array(Image.open(io.BytesIO(buffer.getvalue())))


# ----------------------------------------------------------------- one training run


def restore(model: nn.Module, array: np.ndarray) -> np.ndarray:
    """Model output for an ``[H, W, 3]`` uint8 image, rounded to uint8."""
    x = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = model(x)[0].clamp(0, 1)
    return (y * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def validation_set(images: list[np.ndarray], size: int, count: int = 24,
                   qualities: tuple[int, ...] = (10, 30, 50)) -> list[tuple]:
    """Fixed real-JPEG crops from the held-out training images (learning curves)."""
    rng = np.random.default_rng(12345)
    out = []
    for i in range(count):
        image = images[i % len(images)]
        top = rng.integers(image.shape[0] - size + 1)
        left = rng.integers(image.shape[1] - size + 1)
        crop = np.ascontiguousarray(image[top:top + size, left:left + size])
        q = qualities[i % len(qualities)]
        out.append((crop, pillow_roundtrip(crop, q)))
    return out


def validate(model: nn.Module, pairs: list[tuple]) -> float:
    return float(np.mean([psnr(restore(model, jpeg_), orig) for orig, jpeg_ in pairs]))


def evaluate_kodak(model: nn.Module, qualities: tuple[int, ...]) -> dict:
    rows: dict[str, dict] = {}
    for q in qualities:
        jpeg_psnr, restored_psnr = [], []
        for path in kodak_paths(required=True):
            original = load_rgb(path)
            decoded = pillow_roundtrip(original, q)
            jpeg_psnr.append(psnr(decoded, original))
            restored_psnr.append(psnr(restore(model, decoded), original))
        rows[str(q)] = {"jpeg_psnr": float(np.mean(jpeg_psnr)),
                        "restored_psnr": float(np.mean(restored_psnr)),
                        "per_image": restored_psnr}
    return rows


def run(args: argparse.Namespace, method: str, seed: int) -> dict:
    torch.set_num_threads(args.threads)
    images = load_training_images(args.limit)
    # hold out every 25th image for the learning curve (never trained on)
    held_out = images[::25]
    train = [im for i, im in enumerate(images) if i % 25]
    pairs = validation_set(held_out, 96)
    torch.manual_seed(seed)
    model = ArtifactRemover(args.width, args.depth)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    data_rng = np.random.default_rng(seed)
    quality_gen = torch.Generator().manual_seed(seed)
    curve = [(0, validate(model, pairs))]
    start = time.process_time()
    jpeg_seconds = 0.0
    for step in range(1, args.steps + 1):
        crops = crop_batch(train, data_rng, args.batch, args.crop)
        quality = torch.randint(args.qmin, args.qmax + 1, (args.batch,), generator=quality_gen)
        t0 = time.process_time()
        inputs = make_inputs(method, crops, quality)
        jpeg_seconds += time.process_time() - t0
        target = crops.float() / 255
        loss = ((model(inputs) - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % args.eval_every == 0 or step == args.steps:
            curve.append((step, validate(model, pairs)))
            print(f"  [{method} s{seed}] step {step}: loss {loss.item():.6f}, held-out real-JPEG "
                  f"PSNR {curve[-1][1]:.3f} dB, {time.process_time() - start:.0f} CPU s",
                  flush=True)
    train_cpu = time.process_time() - start
    kodak = evaluate_kodak(model, tuple(args.eval_qualities))
    result = {
        "method": method, "seed": seed, "parameters": params, "train_cpu_seconds": train_cpu,
        "jpeg_cpu_seconds": jpeg_seconds, "curve": curve, "kodak": kodak,
        "settings": {k: v for k, v in vars(args).items() if k not in ("func",)},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{method}-s{seed}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    mean = statistics.mean(r["restored_psnr"] for r in kodak.values())
    print(f"[{method} s{seed}] {params} parameters, {train_cpu:.0f} CPU s training; Kodak "
          f"restored PSNR (mean over q {args.eval_qualities}) {mean:.3f} dB -> {path}")
    return result


# --------------------------------------------------------------------------- report


def report(args: argparse.Namespace) -> dict:
    runs = [json.loads(p.read_text()) for p in sorted(OUT.glob("*-s*.json"))]
    if not runs:
        sys.exit(f"no runs in {OUT}")
    by_method: dict[str, list[dict]] = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(r)
    qualities = list(runs[0]["kodak"])
    jpeg_row = {q: runs[0]["kodak"][q]["jpeg_psnr"] for q in qualities}

    def mean_over_q(r: dict) -> float:
        return statistics.mean(r["kodak"][q]["restored_psnr"] for q in qualities)

    summary: dict[str, dict] = {}
    exact = {r["seed"]: r for r in by_method.get("exact", [])}
    print("Kodak (24 images), real libjpeg-turbo files (Pillow, 4:2:0); restored PSNR, dB; "
          "mean ± sample std over seeds; gap = method - exact, paired by seed")
    header = "".join(f"{'q' + q:>9s}" for q in qualities)
    print(f"{'method':12s} {'seeds':>5s}{header} {'mean':>16s} {'gap to exact':>16s}")
    print(f"{'JPEG itself':12s} {'':5s}" + "".join(f"{jpeg_row[q]:9.3f}" for q in qualities)
          + f"{statistics.mean(jpeg_row.values()):17.3f}")
    for method in [m for m in METHODS if m in by_method]:
        rs = sorted(by_method[method], key=lambda r: r["seed"])
        per_q = {q: [r["kodak"][q]["restored_psnr"] for r in rs] for q in qualities}
        means = [mean_over_q(r) for r in rs]
        gaps = [mean_over_q(r) - mean_over_q(exact[r["seed"]]) for r in rs if r["seed"] in exact]
        sd = statistics.stdev(means) if len(means) > 1 else float("nan")
        gsd = statistics.stdev(gaps) if len(gaps) > 1 else float("nan")
        row = {
            "seeds": [r["seed"] for r in rs],
            "per_quality": {q: statistics.mean(v) for q, v in per_q.items()},
            "mean": statistics.mean(means), "std": sd,
            "gap_to_exact": statistics.mean(gaps) if gaps else None, "gap_std": gsd,
            "gap_per_quality": {q: statistics.mean(
                r["kodak"][q]["restored_psnr"] - exact[r["seed"]]["kodak"][q]["restored_psnr"]
                for r in rs if r["seed"] in exact) for q in qualities} if gaps else None,
            "train_cpu_seconds": statistics.mean(r["train_cpu_seconds"] for r in rs),
            "parameters": rs[0]["parameters"],
            "final_heldout_psnr": statistics.mean(r["curve"][-1][1] for r in rs),
        }
        summary[method] = row
        gap = "" if not gaps else f"{row['gap_to_exact']:+9.3f} ± {gsd:.3f}"
        print(f"{method:12s} {len(rs):5d}" + "".join(f"{row['per_quality'][q]:9.3f}"
                                                    for q in qualities)
              + f"{row['mean']:10.3f} ± {sd:.3f} {gap:>16s}")
    if "exact" in summary:
        print("\nper-quality gap to exact (dB, mean over seeds):")
        for method, row in summary.items():
            if method != "exact" and row["gap_per_quality"]:
                print(f"  {method:10s} " + " ".join(f"q{q} {v:+.3f}"
                                                   for q, v in row["gap_per_quality"].items()))
    out = {"jpeg_psnr": jpeg_row, "methods": summary,
           "settings": runs[0]["settings"], "curves": {
               f"{r['method']}-s{r['seed']}": r["curve"] for r in runs}}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "all", "report"))
    parser.add_argument("--method", choices=METHODS, default="exact")
    parser.add_argument("--methods", nargs="+", default=["exact", "kornia", "ste-quant"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=48)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--qmin", type=int, default=10)
    parser.add_argument("--qmax", type=int, default=50)
    parser.add_argument("--eval-qualities", type=int, nargs="+", default=[10, 30, 50])
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--limit", type=int, default=0, help="first N training images only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="report: write the summary here")
    args = parser.parse_args()
    if args.command == "run":
        run(args, args.method, args.seed)
    elif args.command == "all":
        for seed in args.seeds:
            for method in args.methods:
                run(args, method, seed)
        report(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
