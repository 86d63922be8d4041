"""Benchmark the learned codec on Kodak: bpp/PSNR per level from real .jtc files,
BD-rate against libjpeg-turbo (Pillow, 4:2:0), encode/decode times, RD plot.

    .venv/bin/python benchmarks/bench_learned.py                  # shipped weights
    .venv/bin/python benchmarks/bench_learned.py --checkpoint out/learned/model.ckpt
    .venv/bin/python benchmarks/bench_learned.py --images 4 --no-plot   # quick look
    .venv/bin/python benchmarks/bench_learned.py --tiling-check --no-plot --json /tmp/rd.json

Writes docs/learned_rd.png (ours, JPEG, CompressAI's published Kodak points)
and docs/learned_rd.json. Needs ../shared/data/kodak; matplotlib for the plot.
``--tiling-check`` also codes every image and level with the transforms run
on the whole image at once (``tiled.TILE = None``, the codec before tiling)
and reports how many files, coded symbols and decoded values differ.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, kodak_paths

from jpegtorch.metrics import bd_rate as bjontegaard

# CompressAI's published Kodak results (results/image/kodak/compressai-*_mse_cuda.json,
# github.com/InterDigitalInc/CompressAI), PSNR over RGB; for context only.
COMPRESSAI = {
    "CompressAI bmshj2018-factorized": {
        "bpp": [0.1226, 0.1885, 0.2878, 0.4404, 0.6481, 0.9670, 1.3512, 1.8333],
        "psnr": [26.909, 28.218, 29.617, 31.277, 32.956, 35.381, 37.397, 39.621],
    },
    "CompressAI bmshj2018-hyperprior": {
        "bpp": [0.1313, 0.2089, 0.3199, 0.4784, 0.6687, 0.9388, 1.2592, 1.6602],
        "psnr": [27.582, 29.197, 30.972, 32.838, 34.526, 36.743, 38.584, 40.557],
    },
}
JPEG_QUALITIES = (3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def bd_rate(rate_a, psnr_a, rate_b, psnr_b) -> float:
    """BD-rate of B against A in percent (negative: B needs fewer bits).

    PCHIP (monotone piecewise cubic through the points): the JPEG anchor has
    17 points over 21-41 dB, where one least-squares cubic misfits by up to
    ~3 % in rate; the classic cubic value is stored beside it in the JSON.
    """
    return bjontegaard(rate_a, psnr_a, rate_b, psnr_b, method="pchip")


def jpeg_curve(images: list[np.ndarray]) -> dict[str, list[float]]:
    bpps, psnrs = [], []
    for q in JPEG_QUALITIES:
        b, p = [], []
        for im in images:
            buffer = io.BytesIO()
            Image.fromarray(im).save(buffer, "JPEG", quality=q, subsampling=2)
            back = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
            b.append(8 * buffer.tell() / (im.shape[0] * im.shape[1]))
            p.append(psnr(im, back))
        bpps.append(statistics.mean(b))
        psnrs.append(statistics.mean(p))
    return {"quality": list(JPEG_QUALITIES), "bpp": bpps, "psnr": psnrs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model file [shipped]")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="export this training checkpoint first and benchmark it")
    parser.add_argument("--images", type=int, default=24, help="first N Kodak images")
    parser.add_argument("--levels", type=str, default=None, help="e.g. 1,3,5 [all]")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--save-dir", type=Path, default=None, help="keep the .jtc files here")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "learned_rd.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "learned_rd.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--tiling-check", action="store_true",
                        help="compare with whole-image (untiled) coding, file by file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from jpegtorch.learned import codec

    model_path = args.model
    if args.checkpoint is not None:
        from jpegtorch.learned.export import export_model
        from jpegtorch.learned.model import FactorizedCodec

        state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        cfg = state["config"]
        net = FactorizedCodec(cfg["n"], cfg["m"], len(cfg["lambdas"]), cfg["in_channels"])
        net.load_state_dict(state["model"])
        model_path = Path(tempfile.mkdtemp()) / "model.pt"
        export_model(net, cfg["lambdas"], model_path, meta={"steps": state["step"]})
        print(f"checkpoint {args.checkpoint}: step {state['step']}")
    loaded = codec.load_model(model_path)
    paths = kodak_paths(required=True)[: args.images]
    images = [np.array(Image.open(p).convert("RGB")) for p in paths]
    levels = ([int(v) for v in args.levels.split(",")] if args.levels
              else list(range(1, loaded.levels + 1)))

    from jpegtorch.formats import container

    from jpegtorch.learned import entropy, tiled

    tiling = {"files": 0, "files_identical": 0, "symbols": 0, "symbols_differing": 0,
              "decoded_values": 0, "decoded_values_differing": 0, "untiled_bpp": [],
              "untiled_psnr": []}
    ours: dict[str, list[float]] = {"level": [], "bpp": [], "psnr": [], "lambda": []}
    for level in levels:
        b, p, ub, up = [], [], [], []
        for path, im in zip(paths, images, strict=True):
            chw = torch.from_numpy(im).permute(2, 0, 1).contiguous()
            data = codec.encode_image(chw, level, model=model_path)
            back = codec.decode_image(data, model=model_path).permute(1, 2, 0).numpy()
            if args.tiling_check:
                tile, tiled.TILE = tiled.TILE, None
                try:
                    whole = codec.encode_image(chw, level, model=model_path)
                    whole_back = codec.decode_image(whole, model=model_path)
                    same_file = codec.decode_image(data, model=model_path)
                finally:
                    tiled.TILE = tile
                shape = container.unpack(data).tensors[0][1]
                symbols = [entropy.decode_symbols(*(s.data for s in container.unpack(d).streams),
                                                  shape, loaded.tables[level - 1])
                           for d in (data, whole)]
                same = same_file.permute(1, 2, 0).numpy()
                tiling["files"] += 1
                tiling["files_identical"] += int(data == whole)
                tiling["symbols"] += symbols[0].size
                tiling["symbols_differing"] += int((symbols[0] != symbols[1]).sum())
                tiling["decoded_values"] += same.size
                tiling["decoded_values_differing"] += int((same != back).sum())
                ub.append(8 * len(whole) / (im.shape[0] * im.shape[1]))
                up.append(psnr(im, whole_back.permute(1, 2, 0).numpy()))
            if args.save_dir is not None:
                args.save_dir.mkdir(parents=True, exist_ok=True)
                (args.save_dir / f"{path.stem}_L{level}.jtc").write_bytes(data)
            b.append(8 * len(data) / (im.shape[0] * im.shape[1]))
            p.append(psnr(im, back))
        ours["level"].append(level)
        ours["lambda"].append(loaded.lambdas[level - 1])
        ours["bpp"].append(statistics.mean(b))
        ours["psnr"].append(statistics.mean(p))
        print(f"level {level}: {ours['bpp'][-1]:.4f} bpp  {ours['psnr'][-1]:.3f} dB", flush=True)
        if args.tiling_check:
            tiling["untiled_bpp"].append(statistics.mean(ub))
            tiling["untiled_psnr"].append(statistics.mean(up))
            print(f"  untiled: {tiling['untiled_bpp'][-1]:.4f} bpp  "
                  f"{tiling['untiled_psnr'][-1]:.3f} dB", flush=True)

    jpeg = jpeg_curve(images)
    bd = bd_rate(jpeg["bpp"], jpeg["psnr"], ours["bpp"], ours["psnr"])
    bd_cubic = bjontegaard(jpeg["bpp"], jpeg["psnr"], ours["bpp"], ours["psnr"])

    # speed: one 768x512 image, CPU, median of 3 (after a warm-up)
    im = next((x for x in images if x.shape[:2] == (512, 768)), images[0])
    chw = torch.from_numpy(im).permute(2, 0, 1).contiguous()
    level = levels[len(levels) // 2]
    data = codec.encode_image(chw, level, model=model_path)
    codec.decode_image(data, model=model_path)
    enc, dec = [], []
    for _ in range(3):
        t = time.perf_counter()
        data = codec.encode_image(chw, level, model=model_path)
        enc.append(time.perf_counter() - t)
        t = time.perf_counter()
        codec.decode_image(data, model=model_path)
        dec.append(time.perf_counter() - t)
    speed = {"image": f"{im.shape[1]}x{im.shape[0]}", "level": level,
             "threads": torch.get_num_threads(), "encode_s": statistics.median(enc),
             "decode_s": statistics.median(dec)}

    shown = Path(model_path or codec.DEFAULT_WEIGHTS).resolve()
    if shown.is_relative_to(ROOT.resolve()):  # repo-relative: no machine paths in docs/
        shown = shown.relative_to(ROOT.resolve())
    result = {"images": len(images), "model": str(shown),
              "model_name": loaded.name, "model_hash": loaded.hash8.hex(),
              "model_meta": loaded.meta, "ours": ours, "jpeg_pillow_420": jpeg,
              "bd_rate_vs_jpeg_percent": bd, "bd_method": "pchip",
              "bd_rate_vs_jpeg_percent_cubic_fit": bd_cubic, "speed": speed,
              "compressai": COMPRESSAI}
    if args.tiling_check:
        result["tiling_check"] = tiling
        print(f"tiled vs whole image: {tiling['files_identical']} of {tiling['files']} files "
              f"identical, {tiling['symbols_differing']} of {tiling['symbols']} symbols and "
              f"{tiling['decoded_values_differing']} of {tiling['decoded_values']} decoded "
              "values (same file) differ")
    for name, ref in COMPRESSAI.items():
        result[f"bd_rate_{name.split()[-1]}_vs_jpeg_percent"] = bd_rate(
            jpeg["bpp"], jpeg["psnr"], ref["bpp"], ref["psnr"])
    print()
    print("| level | λ | bpp | PSNR (dB) |")
    print("|---|---|---|---|")
    for i, lvl in enumerate(ours["level"]):
        print(f"| {lvl} | {ours['lambda'][i]:g} | {ours['bpp'][i]:.3f} | {ours['psnr'][i]:.2f} |")
    print(f"\nBD-rate vs JPEG (Pillow/libjpeg-turbo, 4:2:0), {len(images)} Kodak images: "
          f"{bd:+.1f}% (PCHIP; classic cubic fit: {bd_cubic:+.1f}%)")
    for name in COMPRESSAI:
        key = f"bd_rate_{name.split()[-1]}_vs_jpeg_percent"
        print(f"  (for reference, {name}: {result[key]:+.1f}%)")
    print(f"speed ({speed['image']}, level {level}, {speed['threads']} threads): "
          f"encode {speed['encode_s']:.2f} s, decode {speed['decode_s']:.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
        ax.plot(jpeg["bpp"], jpeg["psnr"], "s-", color="gray", ms=4,
                label="JPEG (libjpeg-turbo via Pillow, 4:2:0)")
        for (name, ref), style in zip(COMPRESSAI.items(), ("^--", "v--"), strict=True):
            ax.plot(ref["bpp"], ref["psnr"], style, ms=4, alpha=0.7, label=f"{name} (published)")
        ax.plot(ours["bpp"], ours["psnr"], "o-", color="C3", lw=2,
                label=f"jpegtorch learned ({bd:+.1f}% BD-rate vs JPEG)")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("PSNR RGB (dB)")
        ax.set_xlim(0, 2.0)
        ax.set_title(f"Kodak ({len(images)} images)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
