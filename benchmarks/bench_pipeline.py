"""Speed and accuracy of the differentiable pipeline against kornia.

Issue target: ste forward+backward of a 4×3×512×768 batch at q=50 on the CPU
with 2 threads in at most 0.25× the time of
``kornia.enhance.jpeg_codec_differentiable`` measured in the same run.

    python benchmarks/bench_pipeline.py [--repeats 7] [--threads 2]

Needs the bench extra (kornia). Uses Kodak photos from ../shared/data/kodak when
present (random pixels otherwise) and a GPU when one is available.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import interleaved, kodak_paths, load_rgb, pillow_roundtrip, psnr

import jpegtorch


def batch(n: int = 4) -> torch.Tensor:
    paths = kodak_paths()
    if not paths:
        print("(Kodak not found: timing on random pixels)")
        return torch.rand(n, 3, 512, 768, generator=torch.Generator().manual_seed(0))
    arrays = [load_rgb(p) for p in paths[:n]]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def speed(x: torch.Tensor, repeats: int, device: str) -> None:
    import kornia

    x = x.to(device)
    q = torch.full((x.shape[0],), 50.0, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else None

    def fwd_bwd(fn):
        def run():
            xi = x.clone().requires_grad_(True)
            qi = q.clone().requires_grad_(True)
            fn(xi, qi).sum().backward()
        return run

    fns = {
        "kornia ste fwd+bwd": fwd_bwd(lambda a, b: kornia.enhance.jpeg_codec_differentiable(a, b)),
        "jpegtorch ste fwd+bwd": fwd_bwd(lambda a, b: jpegtorch.jpeg(a, b, mode="ste")),
        "jpegtorch soft fwd+bwd": fwd_bwd(lambda a, b: jpegtorch.jpeg(a, b, mode="soft")),
        "jpegtorch hard fwd": lambda: jpegtorch.jpeg(x, 50, mode="hard"),
        "kornia fwd (no grad)": lambda: kornia.enhance.jpeg_codec_differentiable(x, q),
    }
    result = interleaved(fns, repeats, sync)
    base = result["kornia ste fwd+bwd"]
    print(f"\n[{device}] batch {tuple(x.shape)}, q=50, threads={torch.get_num_threads()}, "
          f"medians of {repeats} interleaved runs")
    print(f"{'':26s} {'wall s':>8s} {'cpu s':>8s} {'wall/kornia':>12s} {'cpu/kornia':>11s}")
    for name, r in result.items():
        print(f"{name:26s} {r['wall']:8.3f} {r['cpu']:8.3f} {r['wall'] / base['wall']:12.3f} "
              f"{r['cpu'] / base['cpu']:11.3f}")
    ratio = result["jpegtorch ste fwd+bwd"]["wall"] / base["wall"]
    print(f"ste fwd+bwd / kornia: {ratio:.3f}x (target <= 0.25x) -> "
          f"{'MET' if ratio <= 0.25 else 'NOT MET'}")


def accuracy(quality_list: tuple[int, ...] = (10, 50, 90)) -> None:
    """PSNR of each differentiable JPEG against real libjpeg-turbo (Pillow) output."""
    import kornia

    paths = kodak_paths()
    if not paths:
        print("(Kodak not found: skipping the accuracy table)")
        return
    print("\nPSNR (dB) against Pillow's decode of Pillow's encode (4:2:0), mean over Kodak:")
    print(f"{'quality':>8s} {'hard/ste':>10s} {'soft':>8s} {'ste-quant':>10s} {'kornia':>8s}")
    for q in quality_list:
        rows = {"hard": [], "soft": [], "ste-quant": [], "kornia": []}
        for path in paths:
            image = load_rgb(path)
            reference = pillow_roundtrip(image, q)
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
            for mode in ("hard", "soft", "ste-quant"):
                out = jpegtorch.jpeg(x, q, mode=mode)[0].permute(1, 2, 0).numpy() * 255
                if mode == "hard":  # multiples of 1/255: compare the 8-bit values
                    out = out.round()
                rows[mode].append(psnr(out, reference))
            out = kornia.enhance.jpeg_codec_differentiable(x, torch.tensor([float(q)]))
            rows["kornia"].append(psnr(out[0].permute(1, 2, 0).numpy() * 255, reference))
        cells = []
        for values in rows.values():
            finite = [v for v in values if np.isfinite(v)]
            cells.append("inf" if len(finite) == 0 else f"{np.mean(finite):.2f}")
        print(f"{q:8d} {cells[0]:>10s} {cells[1]:>8s} {cells[2]:>10s} {cells[3]:>8s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = batch()
    speed(x, args.repeats, "cpu")
    if torch.cuda.is_available():
        speed(x, args.repeats, "cuda")
    else:
        print("\n(no CUDA device: GPU numbers skipped)")
    if not args.skip_accuracy:
        accuracy()


if __name__ == "__main__":
    main()
