"""Speed of ``jpegtorch.RandomJPEG`` against a Pillow encode+decode loop.

Issue target: on the CPU, a 64×3×224×224 uint8 batch within 2× (goal 1×) the
time of a Pillow (libjpeg-turbo) encode+decode loop over the same images at
the same per-sample qualities, tensor in and tensor out. Medians of
interleaved runs, ratios against the Pillow loop of the same run.

Rows: RandomJPEG on uint8 and on float32 images (no grad: the exact hard
path), float32 with grad (``ste`` forward, and forward+backward), and the
Pillow loop; with ``--threads`` 1 and 2. On CUDA (when present) the same
transform on device tensors and, where torchvision is installed, its
nvJPEG-based ``encode_jpeg``/``decode_jpeg`` on the device; otherwise those
rows are skipped with a note. ``--memory`` adds the peak resident memory of
each row in a fresh process (peak RSS during the call minus RSS before it,
after a warm-up call on a tiny batch that loads the compiled kernels).

    python benchmarks/bench_random_jpeg.py [--batch 64] [--size 224] [--repeats 7]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys

import numpy as np
import torch
from _common import interleaved, kodak_paths, load_rgb
from PIL import Image

import jpegtorch


def crops(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``[n, 3, size, size]`` uint8 random crops of Kodak (noise if Kodak is absent)."""
    rng = np.random.default_rng(seed)
    paths = kodak_paths()
    if not paths:
        print("(Kodak not found: timing on random pixels)")
        return torch.from_numpy(rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8))
    images = [load_rgb(p) for p in paths]
    out = []
    for i in range(n):
        image = images[i % len(images)]
        top = rng.integers(0, image.shape[0] - size + 1)
        left = rng.integers(0, image.shape[1] - size + 1)
        out.append(image[top:top + size, left:left + size])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def pillow_loop(x: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """Pillow encode+decode of every image, ``[N,3,H,W]`` uint8 in and out."""
    out = torch.empty_like(x)
    arrays = x.permute(0, 2, 3, 1).numpy()
    for i, q in enumerate(qualities):
        buffer = io.BytesIO()
        Image.fromarray(arrays[i]).save(buffer, "JPEG", quality=q, subsampling=2)
        decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())))
        out[i] = torch.from_numpy(decoded).permute(2, 0, 1)
    return out


def rows(x: torch.Tensor, transform: jpegtorch.RandomJPEG, params: dict) -> dict:
    qualities = params["quality"].tolist()
    xf = x.float() / 255

    def ste_forward() -> None:
        transform(xf.requires_grad_(True), params)
        xf.requires_grad_(False)

    def ste_backward() -> None:
        xg = xf.clone().requires_grad_(True)
        transform(xg, params).sum().backward()

    return {
        "Pillow loop (encode+decode)": lambda: pillow_loop(x, qualities),
        "RandomJPEG uint8": lambda: transform(x, params),
        "RandomJPEG float32, no grad": lambda: transform(xf, params),
        "RandomJPEG float32 ste fwd": ste_forward,
        "RandomJPEG float32 ste fwd+bwd": ste_backward,
    }


def run_cpu(args: argparse.Namespace, results: dict) -> None:
    x = crops(args.batch, args.size)
    transform = jpegtorch.RandomJPEG(tuple(args.quality), generator=torch.Generator()
                                     .manual_seed(0))
    params = transform.forward_parameters(args.batch)
    out = transform(x, params)
    reference = pillow_loop(x, params["quality"].tolist())
    print(f"exact: RandomJPEG == Pillow on all {args.batch} images: "
          f"{bool(torch.equal(out, reference))}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        result = interleaved(rows(x, transform, params), args.repeats)
        base = result["Pillow loop (encode+decode)"]["wall"]
        low, high = args.quality
        print(f"\n[cpu] batch {tuple(x.shape)} uint8, qualities {low}..{high},"
              f" 4:2:0, torch threads={threads}, medians of {args.repeats} interleaved runs")
        print(f"{'':32s} {'wall s':>8s} {'cpu s':>8s} {'ms/image':>9s} {'x Pillow':>9s}")
        for name, r in result.items():
            print(f"{name:32s} {r['wall']:8.3f} {r['cpu']:8.3f} "
                  f"{1000 * r['wall'] / args.batch:9.2f} {r['wall'] / base:9.2f}")
        ratio = result["RandomJPEG uint8"]["wall"] / base
        print(f"RandomJPEG uint8 / Pillow loop: {ratio:.2f}x (target <= 2x, goal 1x) -> "
              f"{'MET' if ratio <= 2 else 'NOT MET'}")
        results[f"cpu_threads{threads}"] = {k: v for k, v in result.items()}


def run_cuda(args: argparse.Namespace, results: dict) -> None:
    if not torch.cuda.is_available():
        print("\n(no CUDA device: GPU rows skipped)")
        return
    x = crops(args.batch, args.size)
    transform = jpegtorch.RandomJPEG(tuple(args.quality), generator=torch.Generator()
                                     .manual_seed(0))
    params = transform.forward_parameters(args.batch)
    xc = x.cuda()
    out = transform(xc, params)
    reference = pillow_loop(x, params["quality"].tolist())
    print(f"\n[cuda] exact on the device: {bool(torch.equal(out.cpu(), reference))}")
    fns = {"Pillow loop on CPU (+copies)": lambda: pillow_loop(xc.cpu(), params["quality"]
                                                               .tolist()).cuda()}
    fns.update({f"cuda {k}": v for k, v in rows(xc, transform, params).items()
                if not k.startswith("Pillow")})
    try:
        from torchvision.io import decode_jpeg, encode_jpeg

        qualities = params["quality"].tolist()

        def nvjpeg() -> None:
            data = [encode_jpeg(xc[i], quality=q) for i, q in enumerate(qualities)]
            decode_jpeg(data, device="cuda")

        fns["torchvision nvJPEG encode+decode"] = nvjpeg
    except Exception as error:  # torchvision absent or built without nvJPEG
        print(f"(torchvision nvJPEG row skipped: {type(error).__name__}: {error})")
    result = interleaved(fns, args.repeats, torch.cuda.synchronize)
    base = result["Pillow loop on CPU (+copies)"]["wall"]
    print(f"[cuda] {torch.cuda.get_device_name()}, batch {tuple(x.shape)}")
    for name, r in result.items():
        print(f"{name:36s} {r['wall']:8.4f} s {r['wall'] / base:8.3f}x Pillow loop")
    results["cuda"] = result


def memory_row(name: str, batch: int, size: int) -> None:
    """(child process) peak RSS growth of one call of the named row, in MB."""
    x = crops(batch, size)
    transform = jpegtorch.RandomJPEG((30, 90), generator=torch.Generator().manual_seed(0))
    params = transform.forward_parameters(batch)
    fn = rows(x, transform, params)[name]
    tiny = x[:1, :, :16, :16].contiguous()
    rows(tiny, transform, transform.forward_parameters(1))[name]()  # kernels loaded, not counted
    # the imports' own peak hides the call's in ru_maxrss: reset the high-water
    # mark (Linux: "5" > /proc/self/clear_refs) and measure from the current RSS
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
        fn()
        after = _status_kb("VmHWM")
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": (after - before) / 1024}))


def _status_kb(key: str) -> int:
    """A ``kB`` field of /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"{key} not in /proc/self/status")


def run_memory(args: argparse.Namespace, results: dict) -> None:
    print("\npeak memory per call (fresh process, peak RSS during the call - RSS before):")
    x_mb = args.batch * 3 * args.size * args.size / 2**20
    names = list(rows(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), jpegtorch.RandomJPEG(),
                      {"quality": torch.tensor([50]), "batch_prob": torch.tensor([True])}))
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--_memory-row", name, "--batch",
                              str(args.batch), "--size", str(args.size)],
                             capture_output=True, text=True, check=True)
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
        print(f"  {name:32s} {peak:8.1f} MB ({peak / x_mb:.1f}x the uint8 batch)")
        results.setdefault("memory_mb", {})[name] = peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--quality", type=int, nargs=2, default=(30, 90))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--_memory-row", dest="memory_row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_row:
        torch.set_num_threads(1)
        memory_row(args.memory_row, args.batch, args.size)
        return
    results: dict = {"settings": vars(args)}
    run_cpu(args, results)
    run_cuda(args, results)
    if args.memory:
        run_memory(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
