"""Quantization tables and the rate proxy, measured on real files (issue #6).

Sub-commands (default: ``all`` = ``proxy`` + ``rd``)::

    python benchmarks/bench_tables.py rd        # BD-rates on Kodak
    python benchmarks/bench_tables.py proxy     # rate-proxy error on Kodak
    python benchmarks/bench_tables.py gradient  # proxy gradient vs finite differences
    python benchmarks/bench_tables.py calibrate # fit the proxy's two constants
    python benchmarks/bench_tables.py all --json out/bench_tables.json

``rd``: every Kodak image (the presets never saw Kodak) is written by our
JFIF writer (byte-identical to libjpeg-turbo) with ``optimize=True`` and
4:2:0 at qualities 30, 35, ..., 90 with each table set, decoded by Pillow,
and scored with PSNR (RGB) and SSIM (RGB, pytorch-msssim, in dB for the
fit). Per image, the Bjøntegaard BD-rate against Annex K (cubic fit of
log-rate against quality, :func:`jpegtorch.metrics.bd_rate`); the table
reports the mean over the 24 images (and the BD-rate of the mean curve).
The table sets: ``annex-k`` (libjpeg's default), ``mozjpeg`` -- the
"ImageMagick"/Robidoux table, index 3 of ``std_luminance_quant_tbl`` in
mozjpeg's ``jcparam.c``, used by mozjpeg for luma and chroma, scaled by
quality exactly like the others -- and the shipped ``tuned-psnr`` and
``tuned-ssim`` presets (plus any ``--tables NAME=FILE``).

``proxy``: :func:`jpegtorch.rate.estimate_bits` against ``len(file) * 8``
over Kodak at qualities 10..95 with Annex K, mozjpeg's, the tuned and random
tables (4:2:0; also 4:4:4 and grey for a subset); and (issue 12) for files
whose values the trellis chose (``trellis=True``, ``tune="psnr"``, q 30/60/90)
and for progressive files (libjpeg's default script) of rounded and
trellis-chosen values.

``calibrate``: writes files for random crops of the training set at random
qualities and tables, measures the byte-stuffing fraction directly and fits
the Huffman overhead per symbol by least squares (the constants stored in
``jpegtorch/rate.py``); then reports the fit's error on those crops.

Needs ``../shared/data/kodak`` (and ``../shared/data/train`` for
``calibrate``); exits with a message when they are absent.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from jpegtorch.formats.jfif_writer import encode_jpeg, write_coefficients
from PIL import Image

import jpegtorch
from jpegtorch import metrics, rate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"

#: mozjpeg's jcparam.c, std_luminance_quant_tbl[3] (= std_chrominance_quant_tbl[3]):
#: the table N. Robidoux proposed on the ImageMagick forum; natural order.
MOZJPEG_ROBIDOUX = (
    16, 16, 16, 18, 25, 37, 56, 85,
    16, 17, 20, 27, 34, 40, 53, 75,
    16, 20, 24, 31, 43, 62, 91, 135,
    18, 27, 31, 40, 53, 74, 106, 156,
    25, 34, 43, 53, 69, 94, 131, 189,
    37, 40, 62, 74, 94, 124, 169, 238,
    56, 53, 91, 106, 131, 169, 226, 311,
    85, 75, 135, 156, 189, 238, 311, 418,
)  # fmt: skip

RD_QUALITIES = tuple(range(30, 91, 5))
PROXY_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def mozjpeg_tables() -> torch.Tensor:
    table = torch.tensor(MOZJPEG_ROBIDOUX, dtype=torch.int64).reshape(8, 8)
    return torch.stack([table, table])


def load_rgb(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def kodak_images(folder: Path) -> list[tuple[str, torch.Tensor]]:
    files = sorted(folder.glob("kodim*.png"))
    if not files:
        sys.exit(f"bench_tables: no Kodak images in {folder} (see ../shared/data/README.md)")
    return [(f.stem, load_rgb(f)) for f in files]


def table_sets(extra: list[str]) -> dict[str, object]:
    sets: dict[str, object] = {"annex-k": None, "mozjpeg": mozjpeg_tables()}
    from jpegtorch.formats.qtables import available_presets

    for name in ("tuned-psnr", "tuned-ssim"):
        if name in available_presets():
            sets[name] = name
    for item in extra:
        name, _, spec = item.partition("=")
        sets[name] = spec or name
    return sets


# --------------------------------------------------------------------------- rd


def rd_points(image: torch.Tensor, tables: object, qualities: tuple[int, ...],
              subsampling: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"bpp": [], "psnr": [], "ssim_db": [], "ssim": []}
    reference = image[None].double() / 255.0
    pixels = image.shape[-2] * image.shape[-1]
    for q in qualities:
        data = encode_jpeg(image, q, subsampling=subsampling, optimize=True, tables=tables)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        restored = torch.from_numpy(decoded.copy()).permute(2, 0, 1)[None].double() / 255.0
        similarity = float(metrics.ssim(restored, reference)[0])
        out["bpp"].append(len(data) * 8 / pixels)
        out["psnr"].append(float(metrics.psnr(restored, reference)[0]))
        out["ssim"].append(similarity)
        out["ssim_db"].append(float(metrics.db(similarity)))
    return out


def run_rd(args: argparse.Namespace) -> dict:
    images = kodak_images(Path(args.kodak))
    if args.limit:
        images = images[: args.limit]
    sets = table_sets(args.tables)
    qualities = tuple(args.qualities)
    curves: dict[str, dict[str, dict[str, list[float]]]] = {name: {} for name in sets}
    started = time.perf_counter()
    for name, image in images:
        for set_name, tables in sets.items():
            curves[set_name][name] = rd_points(image, tables, qualities, args.subsampling)
    elapsed = time.perf_counter() - started

    anchor = curves["annex-k"]
    summary = {}
    for set_name in sets:
        row: dict[str, object] = {}
        for metric in ("psnr", "ssim_db"):
            per_image = [metrics.bd_rate(anchor[i]["bpp"], anchor[i][metric],
                                         curves[set_name][i]["bpp"], curves[set_name][i][metric])
                         for i, _ in images]
            mean_a = _mean_curve(anchor, metric)
            mean_b = _mean_curve(curves[set_name], metric)
            row[f"bd_rate_{metric}"] = float(np.mean(per_image))
            row[f"bd_rate_{metric}_median"] = float(np.median(per_image))
            row[f"bd_rate_{metric}_wins"] = int(sum(v < 0 for v in per_image))
            row[f"bd_rate_{metric}_mean_curve"] = metrics.bd_rate(*mean_a, *mean_b)
        row["bd_psnr_db"] = float(np.mean([
            metrics.bd_quality(anchor[i]["bpp"], anchor[i]["psnr"], curves[set_name][i]["bpp"],
                               curves[set_name][i]["psnr"]) for i, _ in images]))
        row["mean_bpp"] = [float(np.mean([curves[set_name][i]["bpp"][k] for i, _ in images]))
                           for k in range(len(qualities))]
        row["mean_psnr"] = [float(np.mean([curves[set_name][i]["psnr"][k] for i, _ in images]))
                            for k in range(len(qualities))]
        summary[set_name] = row

    print(f"\nRD on Kodak ({len(images)} images), optimize=True, {args.subsampling}, "
          f"qualities {qualities[0]}..{qualities[-1]}; BD-rate vs annex-k "
          f"(mean of per-image; negative = smaller files)  [{elapsed:.0f} s]")
    print(f"{'tables':<14}{'BD-rate PSNR':>14}{'BD-rate SSIM':>14}{'BD-PSNR dB':>12}"
          f"{'wins/24 PSNR':>14}{'mean-curve PSNR':>17}")
    for set_name, row in summary.items():
        print(f"{set_name:<14}{row['bd_rate_psnr']:>13.2f}%{row['bd_rate_ssim_db']:>13.2f}%"
              f"{row['bd_psnr_db']:>12.3f}{row['bd_rate_psnr_wins']:>14d}"
              f"{row['bd_rate_psnr_mean_curve']:>16.2f}%")
    print("\nmean bpp / PSNR per quality:")
    for set_name, row in summary.items():
        cells = "  ".join(f"q{q}:{b:.3f}/{p:.2f}" for q, b, p in
                          zip(qualities, row["mean_bpp"], row["mean_psnr"], strict=True))
        print(f"  {set_name:<12} {cells}")
    return {"qualities": list(qualities), "subsampling": args.subsampling,
            "images": len(images), "summary": summary}


def _mean_curve(curves: dict[str, dict[str, list[float]]], metric: str
                ) -> tuple[list[float], list[float]]:
    names = list(curves)
    bpp = np.mean([curves[n]["bpp"] for n in names], axis=0)
    value = np.mean([curves[n][metric] for n in names], axis=0)
    return bpp.tolist(), value.tolist()


# --------------------------------------------------------------------------- proxy


def random_tables(rng: random.Random) -> torch.Tensor:
    """Random base tables: perturbed Annex K, smooth ramps, flat, or wild."""
    kind = rng.choice(("perturbed", "ramp", "flat", "wild"))
    generator = torch.Generator().manual_seed(rng.randrange(1 << 30))
    uv = torch.arange(8.0)[:, None] + torch.arange(8.0)[None]
    annex = jpegtorch.quantize.annex_k_tables(dtype=torch.float64)
    out = []
    for c in range(2):
        if kind == "perturbed":
            t = annex[c] * torch.exp(0.4 * torch.randn(8, 8, generator=generator,
                                                       dtype=torch.float64))
        elif kind == "ramp":
            t = rng.uniform(3, 30) * (1 + rng.uniform(0, 1.5) * uv ** rng.uniform(0.5, 2))
        elif kind == "flat":
            t = torch.full((8, 8), rng.uniform(3, 60))
        else:
            t = torch.exp(torch.rand(8, 8, generator=generator) * math.log(200))
        out.append(t)
    return torch.stack(out).round().clamp(1, 255).to(torch.int64)


def proxy_error(image: torch.Tensor, quality: int, tables: object, subsampling: str) -> tuple:
    from jpegtorch.formats.jfif_writer import resolve_base_tables

    base = resolve_base_tables(tables)
    coefficients = jpegtorch.encode(image, quality, subsampling=subsampling, tables=base,
                                    mode="hard")
    real = len(write_coefficients(coefficients, optimize=True)) * 8
    estimate = float(rate.estimate_bits(coefficients)[0])
    return estimate, real


def run_proxy(args: argparse.Namespace) -> dict:
    images = kodak_images(Path(args.kodak))
    if args.limit:
        images = images[: args.limit]
    rng = random.Random(2024)
    sets = table_sets(args.tables)
    rows = []
    extra_rows: list[tuple] = []
    started = time.perf_counter()
    for name, image in images:
        choices = [(n, t) for n, t in sets.items()] + [
            (f"random{k}", random_tables(rng)) for k in range(2)]
        for set_name, tables in choices:
            for q in PROXY_QUALITIES:
                estimate, real = proxy_error(image, q, tables, "4:2:0")
                rows.append(("4:2:0", name, set_name, q, estimate, real))
        for sub, img in (("4:4:4", image), ("gray", image.double().mean(0, keepdim=True)
                                             .round().to(torch.uint8))):
            for q in (10, 50, 90):
                estimate, real = proxy_error(img, q, None, "4:4:4")
                rows.append((sub, name, "annex-k", q, estimate, real))
        # issue 12: trellis-chosen values and progressive files
        for q in (30, 60, 90):
            for kind in ("trellis", "tune-psnr"):
                options = {"trellis": True} if kind == "trellis" else {"tune": "psnr"}
                data = encode_jpeg(image, q, **options)
                c = jpegtorch.read_coefficients(data)
                extra_rows.append((kind, name, q, float(rate.estimate_bits(c)[0]),
                                   len(data) * 8))
                progressive = _progressive_file(c, data)
                if progressive is not None:
                    extra_rows.append((f"{kind} progressive", name, q,
                                       float(rate.estimate_bits(c, scans=True)[0]),
                                       len(progressive) * 8))
            base = jpegtorch.encode(image, q, mode="hard")
            progressive = _progressive_file(base, write_coefficients(base, optimize=True))
            if progressive is not None:
                extra_rows.append(("progressive", name, q,
                                   float(rate.estimate_bits(base, scans=True)[0]),
                                   len(progressive) * 8))
    elapsed = time.perf_counter() - started
    errors = np.array([e / r - 1.0 for *_, e, r in rows]) * 100
    main = np.array([e / r - 1.0 for s, *_, e, r in rows if s == "4:2:0"]) * 100
    stats = {
        "files": len(rows),
        "mean_pct": float(errors.mean()), "rms_pct": float(np.sqrt((errors**2).mean())),
        "min_pct": float(errors.min()), "max_pct": float(errors.max()),
        "max_abs_pct": float(np.abs(errors).max()),
        "within_5pct": float((np.abs(errors) <= 5).mean()),
        "max_abs_pct_420": float(np.abs(main).max()),
        "calibration": {"huffman_overhead": rate.HUFFMAN_OVERHEAD,
                        "stuffing": rate.STUFFING},
    }
    by_set: dict[str, list[float]] = {}
    for _s, _n, set_name, _q, e, r in rows:
        key = "random" if set_name.startswith("random") else set_name
        by_set.setdefault(key, []).append((e / r - 1) * 100)
    stats["max_abs_pct_by_tables"] = {k: float(np.abs(v).max()) for k, v in by_set.items()}
    print(f"\nrate proxy vs real files (optimize=True) on Kodak: {len(rows)} files, "
          f"q {PROXY_QUALITIES[0]}..{PROXY_QUALITIES[-1]}  [{elapsed:.0f} s]")
    print(f"  error: mean {stats['mean_pct']:+.2f}%  rms {stats['rms_pct']:.2f}%  "
          f"min {stats['min_pct']:+.2f}%  max {stats['max_pct']:+.2f}%  "
          f"within ±5%: {100 * stats['within_5pct']:.1f}% of files")
    for key, value in stats["max_abs_pct_by_tables"].items():
        print(f"  max |error| {key:<12} {value:.2f}%")
    kinds: dict[str, list[float]] = {}
    for kind, _n, _q, e, r in extra_rows:
        kinds.setdefault(kind, []).append((e / r - 1) * 100)
    stats["issue12"] = {}
    for kind, values in kinds.items():
        v = np.array(values)
        stats["issue12"][kind] = {"files": len(v), "mean_pct": float(v.mean()),
                                  "rms_pct": float(np.sqrt((v**2).mean())),
                                  "max_abs_pct": float(np.abs(v).max())}
        print(f"  {kind:<24} {len(v):4d} files: mean {v.mean():+.2f}%  rms "
              f"{np.sqrt((v**2).mean()):.2f}%  max |error| {np.abs(v).max():.2f}%")
    return stats


# --------------------------------------------------------------------------- gradient


def run_gradient(args: argparse.Namespace) -> dict:
    """Gradients w.r.t. each base-table entry vs central differences of real measurements.

    On six training photos (never Kodak) at qualities 30..80, each of the
    128 Annex K entries is moved by +-20% (at least 1) and the real file size
    (optimized Huffman) and the real distortion (hard mode) are measured.
    Rate: the proxy's gradient against those differences. Distortion: the
    ``ste`` gradient split into the part through coefficients quantized to
    nonzero values (plus dequantization) and the part through zeros; a least
    squares fit of the differences on the two parts gives the gains used by
    :func:`jpegtorch.optimize.tables.calibrated_gradients`.
    """
    import dataclasses

    from jpegtorch.optimize import tables as tune

    files = sorted((Path(args.train) / "wikipedia_photos").glob("*.png"))
    if not files:
        sys.exit(f"bench_tables: no training photos in {args.train}/wikipedia_photos")
    picks = [(files[i % len(files)], q) for i, q in ((3, 50), (10, 30), (17, 80), (25, 60),
                                                     (33, 40), (40, 70))]
    base = jpegtorch.quantize.annex_k_tables(dtype=torch.float64)
    entries = list(np.ndindex(2, 8, 8))
    results: dict[str, dict] = {"rate": {}, "distortion": {}}
    pooled: dict[str, list[list[float]]] = {}
    for path, q in picks:
        image = load_rgb(path)[:, :512, :768].contiguous()
        original = image[None].double() / 255.0
        tables = base.clone().requires_grad_(True)
        c = jpegtorch.encode(original, q, tables=tables, mode="ste")
        rate.estimate_bits(c).sum().backward()
        rate_grad = tables.grad.clone()
        parts = {}
        for part in ("nonzero", "zero"):
            tables = base.clone().requires_grad_(True)
            c = jpegtorch.encode(original, q, tables=tables, mode="ste")
            keep = (lambda b: b.detach() != 0) if part == "nonzero" else (
                lambda b: b.detach() == 0)
            blocks = tuple(torch.where(keep(b), b, b.detach()) for b in c.blocks)
            qt = c.qtables if part == "nonzero" else c.qtables.detach()
            c = dataclasses.replace(c, blocks=blocks, qtables=qt)
            for objective in ("psnr", "ssim"):
                value = tune.distortion_db(objective, jpegtorch.decode(c), original).sum()
                grad, = torch.autograd.grad(value, tables, retain_graph=objective == "psnr")
                parts[(part, objective)] = (grad * base).reshape(-1).numpy()
        bits, dist = [], {"psnr": [], "ssim": []}
        for index in entries:
            step = max(1.0, round(0.2 * float(base[index])))
            sizes, values = [], {"psnr": [], "ssim": []}
            for sign in (1, -1):
                perturbed = base.clone()
                perturbed[index] += sign * step
                c = jpegtorch.encode(image, q, tables=perturbed, mode="hard")
                sizes.append(len(write_coefficients(c, optimize=True)) * 8)
                decoded = jpegtorch.decode(c).double() / 255.0
                for objective in values:
                    values[objective].append(
                        float(tune.distortion_db(objective, decoded, original)[0]))
            bits.append((sizes[0] - sizes[1]) / (2 * step))
            for objective in values:
                diff = (values[objective][0] - values[objective][1]) / (2 * step)
                dist[objective].append(diff * float(base[index]))
        predicted = rate_grad.reshape(-1).numpy()
        name = f"{path.stem}@q{q}"
        results["rate"][name] = {
            "correlation": float(np.corrcoef(predicted, bits)[0, 1]),
            "sum_ratio": float(predicted.sum() / np.sum(bits))}
        print(f"  rate {name}: correlation {results['rate'][name]['correlation']:.3f}, "
              f"sum of gradients / sum of differences {results['rate'][name]['sum_ratio']:.2f}")
        for objective in ("psnr", "ssim"):
            nz, zero = parts[("nonzero", objective)], parts[("zero", objective)]
            actual = np.array(dist[objective])
            pooled.setdefault(objective, []).append([nz, zero, actual])
            plain = nz + zero
            print(f"  {objective} {name}: plain ste correlation "
                  f"{np.corrcoef(plain, actual)[0, 1]:.3f}, sum ratio "
                  f"{plain.sum() / actual.sum():.2f}")
    for objective, rows in pooled.items():
        nz = np.concatenate([r[0] for r in rows])
        zero = np.concatenate([r[1] for r in rows])
        actual = np.concatenate([r[2] for r in rows])
        design = np.stack([nz, zero], 1)
        gains = np.linalg.lstsq(design, actual, rcond=None)[0]
        shipped = tune.NONZERO_GAIN * nz + tune.ZERO_GAIN * zero
        results["distortion"][objective] = {
            "fitted_gains": gains.tolist(),
            "plain_ste_correlation": float(np.corrcoef(nz + zero, actual)[0, 1]),
            "plain_ste_sum_ratio": float((nz + zero).sum() / actual.sum()),
            "calibrated_correlation": float(np.corrcoef(shipped, actual)[0, 1]),
            "calibrated_sum_ratio": float(shipped.sum() / actual.sum()),
        }
        row = results["distortion"][objective]
        print(f"  {objective}: fitted gains nonzero {gains[0]:.2f}, zero {gains[1]:.2f}; "
              f"plain ste corr {row['plain_ste_correlation']:.3f} "
              f"(sum x{row['plain_ste_sum_ratio']:.2f}), shipped gains "
              f"({tune.NONZERO_GAIN}, {tune.ZERO_GAIN}) corr "
              f"{row['calibrated_correlation']:.3f} (sum x{row['calibrated_sum_ratio']:.2f})")
    return results


# --------------------------------------------------------------------------- calibrate


def run_calibrate(args: argparse.Namespace) -> dict:
    from jpegtorch.coefficients import Coefficients  # noqa: F401 (documentation)
    from jpegtorch.optimize.tables import load_images

    train = Path(args.train)
    if not train.is_dir():
        sys.exit(f"bench_tables: no training data in {train}")
    data = load_images(train, min_size=64)
    rng = random.Random(1)
    zero = rate.Calibration(huffman_overhead=0.0, stuffing=0.0, progressive_overhead=0.0)
    unit = rate.Calibration(huffman_overhead=1.0, stuffing=0.0, progressive_overhead=0.0)
    unit_p = rate.Calibration(huffman_overhead=0.0, stuffing=0.0, progressive_overhead=1.0)
    rows = []
    prog_rows = []
    stuffed = coded = 0
    for _ in range(args.samples):
        image = data.images[rng.randrange(len(data))]
        h = rng.randint(64, min(512, image.shape[1]))
        w = rng.randint(64, min(512, image.shape[2]))
        top = rng.randint(0, image.shape[1] - h)
        left = rng.randint(0, image.shape[2] - w)
        crop = image[:, top : top + h, left : left + w].contiguous()
        subsampling = rng.choice(("4:2:0",) * 4 + ("4:4:4", "4:2:2", "gray"))
        if subsampling == "gray":
            crop = crop.double().mean(0, keepdim=True).round().to(torch.uint8)
            subsampling = "4:2:0"
        tables = None if rng.random() < 0.3 else random_tables(rng)
        c = jpegtorch.encode(crop, rng.randint(10, 95), subsampling=subsampling,
                             tables=tables, mode="hard")
        data_bytes = write_coefficients(c, optimize=True)
        sos = data_bytes.rfind(b"\xff\xda")
        scan = data_bytes[sos + 2 + int.from_bytes(data_bytes[sos + 2 : sos + 4], "big") : -2]
        stuffed += scan.count(b"\xff\x00")
        coded += len(scan) - scan.count(b"\xff\x00")
        e0 = rate.estimate_rate(c, calibration=zero)
        symbols = float(rate.estimate_rate(c, calibration=unit).total[0] - e0.total[0])
        rows.append((float(e0.total[0]), float(e0.data[0]), symbols, len(data_bytes) * 8))
        # the progressive model: libjpeg's default progression of the same values
        progressive = _progressive_file(c, data_bytes)
        if progressive is not None:
            p0 = rate.estimate_rate(c, calibration=zero, scans=True)
            p_symbols = float(rate.estimate_rate(c, calibration=unit_p, scans=True).total[0]
                              - p0.total[0])
            prog_rows.append((float(p0.total[0]), float(p0.data[0]), p_symbols,
                              len(progressive) * 8, len(p0.per_scan[0])))
    a = np.array(rows)
    stuffing = stuffed / coded
    target = (a[:, 3] - a[:, 0] - stuffing * (a[:, 1] - rate.PADDING_BITS)) / a[:, 3]
    overhead = float(np.linalg.lstsq(a[:, 2:3] / a[:, 3:4], target, rcond=None)[0][0])
    fitted = a[:, 0] + overhead * a[:, 2] + stuffing * (a[:, 1] - rate.PADDING_BITS)
    error = (fitted / a[:, 3] - 1) * 100
    print(f"\ncalibration on {len(rows)} training crops: stuffing {stuffing:.5f}, "
          f"Huffman overhead {overhead:.4f} bits/symbol")
    print(f"  fit error: rms {np.sqrt((error**2).mean()):.2f}%, "
          f"max |error| {np.abs(error).max():.2f}%")
    print(f"  stored in jpegtorch/rate.py: HUFFMAN_OVERHEAD = {rate.HUFFMAN_OVERHEAD}, "
          f"STUFFING = {rate.STUFFING}")
    out = {"samples": len(rows), "stuffing": stuffing, "huffman_overhead": overhead,
           "rms_pct": float(np.sqrt((error**2).mean())),
           "max_abs_pct": float(np.abs(error).max())}
    if prog_rows:
        p = np.array(prog_rows)
        padding = rate.PADDING_BITS * p[:, 4]
        target = (p[:, 3] - p[:, 0] - stuffing * (p[:, 1] - padding)) / p[:, 3]
        p_overhead = float(np.linalg.lstsq(p[:, 2:3] / p[:, 3:4], target, rcond=None)[0][0])
        fitted = p[:, 0] + p_overhead * p[:, 2] + stuffing * (p[:, 1] - padding)
        p_error = (fitted / p[:, 3] - 1) * 100
        print(f"  progressive (libjpeg's default script, {len(p)} files): Huffman overhead "
              f"{p_overhead:.4f} bits/symbol; fit error rms "
              f"{np.sqrt((p_error**2).mean()):.2f}%, max |error| {np.abs(p_error).max():.2f}%"
              f"  (stored: PROGRESSIVE_OVERHEAD = {rate.PROGRESSIVE_OVERHEAD})")
        out.update(progressive_samples=len(p), progressive_overhead=p_overhead,
                   progressive_rms_pct=float(np.sqrt((p_error**2).mean())),
                   progressive_max_abs_pct=float(np.abs(p_error).max()))
    return out


def _progressive_file(coefficients: object, baseline: bytes) -> bytes | None:
    """The progressive file (libjpeg's default script) of the same coefficients: our
    writer when it has ``progressive=``, else libjpeg-turbo's jpegtran; None if neither."""
    import inspect
    import shutil
    import subprocess

    if "progressive" in inspect.signature(write_coefficients).parameters:
        return write_coefficients(coefficients, progressive=True)  # type: ignore[call-arg]
    jpegtran = shutil.which("jpegtran")
    if jpegtran is None:
        return None
    return subprocess.run([jpegtran, "-progressive", "-copy", "none"], input=baseline,
                          capture_output=True, check=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="all",
                        choices=("all", "rd", "proxy", "gradient", "calibrate"))
    parser.add_argument("--kodak", default=str(DATA / "kodak"))
    parser.add_argument("--train", default=str(DATA / "train"))
    parser.add_argument("--tables", action="append", default=[],
                        help="extra table set NAME=FILE (or a preset name)")
    parser.add_argument("--qualities", type=lambda s: [int(v) for v in s.split(",")],
                        default=list(RD_QUALITIES))
    parser.add_argument("--subsampling", default="4:2:0")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images")
    parser.add_argument("--samples", type=int, default=400, help="calibrate: crops")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    if args.command in ("calibrate",):
        results["calibrate"] = run_calibrate(args)
    if args.command in ("all", "proxy"):
        results["proxy"] = run_proxy(args)
    if args.command in ("all", "rd"):
        results["rd"] = run_rd(args)
    if args.command in ("gradient",):
        results["gradient"] = run_gradient(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
