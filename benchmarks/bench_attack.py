"""Gradient usefulness: adversarial attacks through a JPEG defence.

A small CNN is trained on MNIST (the first 8000 images of ../shared/data/mnist's
t10k split) and defended by *real* JPEG: its input is libjpeg-turbo's round
trip of the (8-bit) image at quality 25, 50 or 75. I-FGSM (20 steps, step
2.5 eps / 20, L-inf ball eps) attacks the last ``--n`` images through each
differentiable JPEG; every adversarial image is judged only by the real
defence (jpegtorch ``hard`` = Pillow's pixels). Lower accuracy = a more
useful gradient.

Attack surrogates: ``no JPEG`` (attack the bare CNN), ``BPDA identity``
(real JPEG forward, identity backward; Athalye et al. 2018), jpegtorch
``ste`` / ``soft`` / ``ste-quant``, ``exact fwd + soft bwd`` (real JPEG
forward with ``soft``'s backward), ``soft (alpha=2)`` (smoother rounding), and
kornia's ``jpeg_codec_differentiable`` when installed.

    python benchmarks/bench_attack.py [--n 500] [--eps 0.05 0.1 0.2 0.3] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable

import numpy as np
import torch
from _common import ROOT
from torch import nn

import jpegtorch
from jpegtorch import _arith

MNIST = ROOT.parent / "shared" / "data" / "mnist"


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """t10k images ``[10000, 1, 28, 28]`` uint8 and labels ``[10000]``."""
    images = MNIST / "t10k-images-idx3-ubyte.gz"
    labels = MNIST / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        raise SystemExit(f"MNIST not found in {MNIST} (../shared/data/mnist)")
    with gzip.open(images) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(labels) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xf = x.float() / 255
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            loss = nn.functional.cross_entropy(model(xf[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def real_jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """The defence: libjpeg-turbo's round trip of the 8-bit image (float in, float out)."""
    return jpegtorch.jpeg(x.detach(), quality, mode="hard")


class _Straight(torch.autograd.Function):
    """Real JPEG forward, identity backward (BPDA)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, quality: int) -> torch.Tensor:  # type: ignore[override]
        return real_jpeg(x, quality)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad, None


def soft_alpha(x: torch.Tensor, quality: int, alpha: float) -> torch.Tensor:
    saved = _arith.SOFT_ROUND_ALPHA
    try:
        _arith.SOFT_ROUND_ALPHA = alpha
        _arith.soft_round.__defaults__ = (alpha,)
        return jpegtorch.jpeg(x, quality, mode="soft")
    finally:
        _arith.SOFT_ROUND_ALPHA = saved
        _arith.soft_round.__defaults__ = (saved,)


def surrogates() -> dict[str, Callable[[torch.Tensor, int], torch.Tensor]]:
    fns: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
        "no JPEG": lambda x, q: x,
        "BPDA identity": lambda x, q: _Straight.apply(x, q),
        "ste": lambda x, q: jpegtorch.jpeg(x, q, mode="ste"),
        "soft": lambda x, q: jpegtorch.jpeg(x, q, mode="soft"),
        "ste-quant": lambda x, q: jpegtorch.jpeg(x, q, mode="ste-quant"),
        "exact fwd + soft bwd": lambda x, q: (lambda s: s + (real_jpeg(x, q) - s).detach())(
            jpegtorch.jpeg(x, q, mode="soft")),
        "soft (alpha=2)": lambda x, q: soft_alpha(x, q, 2.0),
    }
    try:
        import kornia

        def kornia_jpeg(x: torch.Tensor, q: int) -> torch.Tensor:
            # kornia needs sides divisible by 16 and RGB: pad 28 -> 32, gray -> 3 channels
            padded = nn.functional.pad(x, (0, 4, 0, 4), mode="replicate").expand(-1, 3, -1, -1)
            out = kornia.enhance.jpeg_codec_differentiable(
                padded, torch.full((x.shape[0],), float(q)))
            return out[:, :, :28, :28].mean(1, keepdim=True)

        fns["kornia"] = kornia_jpeg
    except ImportError:
        print("(kornia not installed: pip install -e '.[bench]' for its row)")
    return fns


def ifgsm(model: nn.Module, surrogate, x: torch.Tensor, y: torch.Tensor, quality: int,
          eps: float, steps: int) -> torch.Tensor:
    step = 2.5 * eps / steps
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(surrogate(adv, quality)), y)
        grad, = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + step * grad.sign()
            adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, quality: int) -> float:
    with torch.no_grad():
        x8 = (x * 255).round() / 255  # images are 8-bit files
        return float((model(real_jpeg(x8, quality)).argmax(1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="attacked test images")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--qualities", type=int, nargs="+", default=[25, 50, 75])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", help="subset of the surrogates")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, labels = load_mnist()
    model = train(images[:8000], labels[:8000], args.epochs, args.seed)
    for p in model.parameters():
        p.requires_grad_(False)
    x = images[-args.n:].float() / 255
    y = labels[-args.n:]
    fns = surrogates()
    if args.methods:
        fns = {k: v for k, v in fns.items() if k in args.methods}
    results: dict = {"settings": vars(args), "clean": {}, "attacks": {}}
    print(f"CNN trained on MNIST t10k[:8000] ({args.epochs} epochs); attacked: the last "
          f"{args.n}; I-FGSM {args.steps} steps; judged through real JPEG")
    for q in args.qualities:
        clean = accuracy(model, x, y, q)
        results["clean"][q] = clean
        print(f"\nq={q}: accuracy on real JPEG, no attack: {clean:.3f}")
        print(f"{'surrogate':22s}" + "".join(f"{'eps ' + format(e, 'g'):>10s}" for e in args.eps)
              + f"{'s':>7s}")
        for name, fn in fns.items():
            start = time.process_time()
            row = []
            for eps in args.eps:
                adv = ifgsm(model, fn, x, y, q, eps, args.steps)
                row.append(accuracy(model, adv, y, q))
            results["attacks"].setdefault(str(q), {})[name] = dict(
                zip(map(str, args.eps), row, strict=True))
            print(f"{name:22s}" + "".join(f"{a:10.3f}" for a in row)
                  + f"{time.process_time() - start:7.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
