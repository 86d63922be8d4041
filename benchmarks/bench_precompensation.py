"""Gradient usefulness: "JPEG pre-compensation".

Optimise an image ``x`` so that *real* JPEG(x, q=10) — encoded and decoded by
Pillow (libjpeg-turbo), 4:2:0 — comes as close as possible to the original
``x0``. Each method runs the same number of Adam steps on
``|| JPEG_method(x) - x0 ||^2``; the result is rounded to 8 bits and judged
only by Pillow's real codec. Reported: PSNR gain over plain JPEG of ``x0``.

    python benchmarks/bench_precompensation.py [--steps 100] [--quality 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import kodak_paths, load_rgb, pillow_roundtrip, psnr

import jpegtorch


def crops(size: int, count: int) -> torch.Tensor:
    paths = kodak_paths(required=True)[:count]
    out = []
    for path in paths:
        image = load_rgb(path)
        top = (image.shape[0] - size) // 2
        left = (image.shape[1] - size) // 2
        out.append(image[top : top + size, left : left + size])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def real_psnr(x: torch.Tensor, x0: torch.Tensor, quality: int) -> float:
    """Mean PSNR of Pillow's JPEG round trip of 8-bit ``x`` against ``x0``."""
    values = []
    for a, b in zip(x, x0, strict=True):
        a8 = (a.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        b8 = (b * 255).round().permute(1, 2, 0).numpy()
        values.append(psnr(pillow_roundtrip(a8, quality), b8))
    return float(np.mean(values))


def optimise(method, x0: torch.Tensor, quality: int, steps: int, lr: float) -> torch.Tensor:
    """Adam on ``x``; returns the iterate with the lowest loss *as the method
    itself measures it* (for jpegtorch's exact modes that is the real loss)."""
    x = x0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    q = torch.full((x0.shape[0],), float(quality))
    best_loss, best = float("inf"), x0.clone()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = ((method(x.clamp(0, 1), q) - x0) ** 2).mean()
        loss.backward()
        if loss.item() < best_loss:
            best_loss, best = loss.item(), x.detach().clone()
        optimiser.step()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--quality", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--lr", type=float, default=0.0005)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x0 = crops(args.size, args.images)
    baseline = real_psnr(x0, x0, args.quality)
    methods = {f"jpegtorch {m}": (lambda mode: lambda x, q: jpegtorch.jpeg(x, q, mode=mode))(m)
               for m in ("ste", "soft", "ste-quant")}

    def exact_soft(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """The real JPEG forward with soft mode's backward."""
        soft = jpegtorch.jpeg(x, q, mode="soft")
        return soft + (jpegtorch.jpeg(x.detach(), q, mode="hard") - soft).detach()

    methods["exact fwd + soft bwd"] = exact_soft
    try:
        import kornia

        methods["kornia"] = lambda x, q: kornia.enhance.jpeg_codec_differentiable(x, q)
    except ImportError:
        print("(kornia not installed: pip install -e '.[bench]')")
    print(f"{args.images} Kodak centre crops {args.size}x{args.size}, q={args.quality}, 4:2:0, "
          f"{args.steps} Adam steps (lr {args.lr})")
    print(f"plain JPEG of the original: {baseline:.3f} dB")
    print(f"{'method':22s} {'real PSNR':>10s} {'gain dB':>8s} {'seconds':>8s}")
    for name, method in methods.items():
        start = time.perf_counter()
        x = optimise(method, x0, args.quality, args.steps, args.lr)
        seconds = time.perf_counter() - start
        value = real_psnr(x, x0, args.quality)
        print(f"{name:22s} {value:10.3f} {value - baseline:+8.3f} {seconds:8.1f}")


if __name__ == "__main__":
    main()
