"""Trellis quantization and per-image tuning (issue 12): exactness of the analysis,
the trellis against libjpeg's rounding, rate-distortion gains, standard files that
every decoder reads alike, monotone quality, the chroma fit, the CLI."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import load_sample, synthetic, to_chw
from jpegtorch.cli.main import cli
from jpegtorch.formats.jfif_writer import encode_jpeg, resolve_base_tables
from PIL import Image

import jpegtorch
from jpegtorch import metrics
from jpegtorch.errors import JPEGError
from jpegtorch.optimize import analysis, chroma, trellis, tuning

DJPEG = shutil.which("djpeg")


def rgb_psnr(data: bytes, image: torch.Tensor) -> float:
    decoded = torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1)
    return float(metrics.psnr(decoded[None], image[None])[0])


def quant_for(quality: int, tables: str | None, ncomp: int) -> np.ndarray:
    scaled = tuning._scaled_tables(quality, resolve_base_tables(tables))
    return np.stack([scaled[0]] + [scaled[1]] * (ncomp - 1))


def layout_of(an: analysis.Analysis) -> trellis.Layout:
    return trellis.Layout(sampling=an.sampling, mcu_grid=an.mcu_grid,
                          real=tuple(r.shape[:2] for r in an.raw))


# --------------------------------------------------------------------------- analysis


@pytest.mark.parametrize(("shape", "subsampling", "gray"), [
    ((37, 53), "4:2:0", False), ((40, 29), "4:2:2", False), ((17, 9), "4:4:4", False),
    ((23, 41), "4:2:0", True)])
def test_analysis_rounds_to_the_pipeline_coefficients(shape: tuple[int, int], subsampling: str,
                                                      gray: bool) -> None:
    """libjpeg's quantizer applied to ``analyze``'s FDCT output gives exactly
    ``jpegtorch.encode``'s coefficients (every real block, every component)."""
    image = to_chw(synthetic(*shape, seed=3))
    if gray:
        image = image[:1].contiguous()
    an = analysis.analyze(image, subsampling)
    quant = quant_for(60, "tuned-psnr", an.num_components)
    ref = jpegtorch.encode(image, 60, subsampling=subsampling,
                           tables=resolve_base_tables("tuned-psnr"), mode="hard")
    for c in range(an.num_components):
        raw = an.raw[c].astype(np.int64)
        q8 = 8 * quant[c]
        rounded = np.sign(raw) * ((np.abs(raw) + q8 // 2) // q8)
        hib, wib = raw.shape[:2]
        expected = ref.blocks[c][0, :hib, :wib].reshape(hib, wib, 64).numpy()
        np.testing.assert_array_equal(rounded, expected)


# --------------------------------------------------------------------------- trellis


def test_tiny_lambda_gives_libjpeg_rounding() -> None:
    """As lambda -> 0 the trellis minimises distortion alone: every value is the
    nearest multiple (libjpeg's rounding), except at exact half steps."""
    image = to_chw(load_sample("kodim23_256x192.png"))
    an = analysis.analyze(image, "4:2:0")
    quant = quant_for(50, None, 3)
    weights = np.stack([trellis.color_weights((2, 2) if c else (1, 1), c) for c in range(3)])
    result = trellis.trellis_quantize(list(an.raw), quant, weights, 1e-9, layout_of(an),
                                      (0, 1, 1))
    ref = jpegtorch.encode(image, 50, mode="hard")
    for c in range(3):
        raw = an.raw[c].astype(np.int64)
        hib, wib = raw.shape[:2]
        chosen = result.blocks[c][:hib, :wib]
        expected = ref.blocks[c][0, :hib, :wib].reshape(hib, wib, 64).numpy()
        tie = (np.abs(raw) % (8 * quant[c])) == 4 * quant[c]
        assert np.array_equal(chosen[~tie], expected[~tie])
        assert (chosen != expected).sum() <= tie.sum()


def test_trellis_beats_rounding_on_its_own_cost() -> None:
    """The chosen values cost less (D + lambda R, under optimal Huffman codes) than
    libjpeg's rounding, and the passes alternate with the Huffman tables."""
    image = to_chw(load_sample("kodim05_384x256.png"))
    an = analysis.analyze(image, "4:2:0")
    quant = quant_for(75, "tuned-psnr", 3)
    weights = np.stack([trellis.color_weights((2, 2) if c else (1, 1), c) for c in range(3)])
    lam = trellis.trellis_lambda(quant[0])
    result = trellis.trellis_quantize(list(an.raw), quant, weights, lam, layout_of(an),
                                      (0, 1, 1))
    rounding = trellis.trellis_quantize(list(an.raw), quant, weights, 1e-9, layout_of(an),
                                        (0, 1, 1))
    assert result.cost < rounding.distortion + lam * rounding.bits
    assert result.bits < 0.9 * rounding.bits
    assert 1 <= result.passes <= 4


def _ssim_db(data: bytes, image: torch.Tensor) -> float:
    decoded = torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1)
    return float(metrics.db(metrics.ssim(decoded[None].double() / 255,
                                         image[None].double() / 255)[0]))


def test_trellis_rd_gain_on_real_files() -> None:
    """Real files decoded by Pillow, BD-rate over q 40..90 on two samples: with
    Annex K tables the trellis saves bits at equal PSNR *and* at equal SSIM (each
    coefficient's trade-off follows its step); with the flat tuned-psnr tables
    (one lambda) the saving at equal PSNR is large."""
    qualities = (40, 55, 70, 90)
    psnr_gain, ssim_gain, flat_gain = [], [], []
    for name in ("kodim05_384x256.png", "kodim15_256x256.png"):
        image = to_chw(load_sample(name))
        plain = [encode_jpeg(image, q, optimize=True) for q in qualities]
        trell = [encode_jpeg(image, q, trellis=True) for q in qualities]
        rates = ([len(d) for d in plain], [len(d) for d in trell])
        psnr_gain.append(metrics.bd_rate(rates[0], [rgb_psnr(d, image) for d in plain],
                                         rates[1], [rgb_psnr(d, image) for d in trell]))
        ssim_gain.append(metrics.bd_rate(rates[0], [_ssim_db(d, image) for d in plain],
                                         rates[1], [_ssim_db(d, image) for d in trell]))
        tuned = [encode_jpeg(image, q, optimize=True, tables="tuned-psnr") for q in qualities]
        both = [encode_jpeg(image, q, trellis=True, tables="tuned-psnr") for q in qualities]
        flat_gain.append(metrics.bd_rate([len(d) for d in tuned],
                                         [rgb_psnr(d, image) for d in tuned],
                                         [len(d) for d in both],
                                         [rgb_psnr(d, image) for d in both]))
    assert max(psnr_gain) < -1.5 and np.mean(psnr_gain) < -2.5, psnr_gain
    assert max(ssim_gain) < -1.5 and np.mean(ssim_gain) < -2.5, ssim_gain
    assert max(flat_gain) < -5.0, flat_gain


def test_tune_psnr_beats_trellis_alone() -> None:
    """The per-image choices (chroma fitted to the decoder, compensating luma) add
    to the trellis with the same tables."""
    image = to_chw(load_sample("kodim23_256x192.png"))
    qualities = (40, 60, 80, 90)
    alone = [encode_jpeg(image, q, trellis=True, tables="tuned-psnr") for q in qualities]
    tuned = [encode_jpeg(image, q, tune="psnr") for q in qualities]
    gain = metrics.bd_rate([len(d) for d in alone], [rgb_psnr(d, image) for d in alone],
                           [len(d) for d in tuned], [rgb_psnr(d, image) for d in tuned])
    assert gain < -2.0, gain


# --------------------------------------------------------------------------- standard files


def frame_marker(data: bytes) -> int:
    """The SOFn marker's second byte (0xC0 baseline, 0xC2 progressive)."""
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2, 0xC9, 0xCA):
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return data[pos + 1]


#: a script with successive approximation of the DC and one band per component
DC_REFINE_SCRIPT = [((0, 1, 2), 0, 0, 0, 1), ((0,), 1, 63, 0, 0), ((1,), 1, 63, 0, 0),
                    ((2,), 1, 63, 0, 0), ((0, 1, 2), 0, 0, 1, 0)]


def _decoders(data: bytes, tmp_path: Path) -> list[np.ndarray]:
    import cv2

    out = [np.array(Image.open(io.BytesIO(data)))]
    flag = cv2.IMREAD_UNCHANGED
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    out.append(decoded[..., ::-1] if decoded.ndim == 3 else decoded)
    out.append(jpegtorch.decode_jpeg(data).permute(1, 2, 0).squeeze(-1).numpy())
    if DJPEG:
        path = tmp_path / "f.jpg"
        path.write_bytes(data)
        run = subprocess.run([DJPEG, "-strict", str(path)], capture_output=True, check=True)
        assert run.stderr == b"", run.stderr  # no libjpeg-turbo warning
        out.append(np.array(Image.open(io.BytesIO(run.stdout))))
    return out


@pytest.mark.parametrize(("options", "subsampling", "gray", "shape"), [
    ({"tune": "psnr"}, "4:2:0", False, None),
    ({"tune": "ssim"}, "4:2:2", False, (61, 45)),
    ({"trellis": True, "restart_interval": 3}, "4:2:0", False, (75, 83)),
    ({"trellis": True}, "4:4:4", False, (33, 70)),
    ({"tune": "psnr"}, "4:2:0", True, (50, 31)),
    ({"tune": "psnr", "restart_interval": 2}, "4:2:0", False, (53, 77)),
    ({"tune": "ssim"}, "4:2:0", False, (9, 250)),
    ({"tune": "psnr", "progressive": True}, "4:2:0", False, (75, 83)),
    ({"tune": "ssim", "progressive": True, "restart_interval": 2}, "4:2:0", True, (50, 31)),
    ({"tune": "psnr", "progressive": False}, "4:4:4", False, (40, 66)),
    ({"trellis": True, "progressive": True}, "4:2:2", False, (61, 45)),
    ({"trellis": True, "progressive": True, "restart_interval": 5}, "4:2:0", False, None),
    ({"trellis": True, "scans": DC_REFINE_SCRIPT}, "4:2:0", False, (47, 90)),
    ({"tune": "psnr", "scans": DC_REFINE_SCRIPT}, "4:2:0", False, (47, 90)),
])
def test_files_decode_identically_everywhere(options: dict, subsampling: str, gray: bool,
                                             shape: tuple[int, int] | None,
                                             tmp_path: Path) -> None:
    """Trellis and tuned files are standard JPEGs (baseline, or progressive when
    asked or chosen): Pillow, OpenCV, djpeg (-strict, no warning) and our decoder
    give the same pixels."""
    array = load_sample("kodim05_384x256.png")
    if shape is not None:
        array = array[: shape[0], : shape[1]]
    image = to_chw(array)
    if gray:
        image = image[:1].contiguous()
    data = encode_jpeg(image, 70, subsampling=subsampling, **options)
    assert data[:2] == b"\xff\xd8"
    progressive = options.get("progressive")
    if "scans" in options:
        progressive = True
    expected = {True: {0xC2}, False: {0xC0}, None: {0xC0, 0xC2}}[progressive]
    if "tune" not in options and progressive is None:
        expected = {0xC0}
    assert frame_marker(data) in expected
    first, *others = _decoders(data, tmp_path)
    for other in others:
        np.testing.assert_array_equal(first, other)


def test_trellis_progressive_keeps_the_trellis_values() -> None:
    """trellis + progressive: the trellis file's values in libjpeg's default
    progression (the same bytes libjpeg-turbo's progressive writer makes of them)."""
    from jpegtorch.formats.jfif_writer import write_coefficients

    image = to_chw(load_sample("kodim23_256x192.png"))
    sequential = encode_jpeg(image, 60, trellis=True)
    progressive = encode_jpeg(image, 60, trellis=True, progressive=True)
    assert frame_marker(sequential) == 0xC0 and frame_marker(progressive) == 0xC2
    a, b = jpegtorch.read_coefficients(sequential), jpegtorch.read_coefficients(progressive)
    for x, y in zip(a.blocks, b.blocks, strict=True):
        assert torch.equal(x, y)
    assert progressive == write_coefficients(a, progressive=True)


def test_tune_chooses_the_least_cost_file() -> None:
    """tune (progressive=None) keeps the least D + lambda R of the baseline file,
    libjpeg's progression and the searched bands; forced progressive keeps one of
    the progressive two; over the quality range the choice is not worse than
    baseline at equal PSNR."""
    image = to_chw(load_sample("kodim05_384x256.png"))
    chosen, sizes = {}, {"auto": [], "baseline": []}
    quality = {"auto": [], "baseline": []}
    for q in (30, 50, 70, 90):
        report: list[tuning.EncodeReport] = []
        data = tuning.encode_optimized(image, q, tune="psnr", report=report)
        extra = report[0].extra
        assert set(extra["sizes"]) == {"baseline", "progressive", "bands"}
        assert len(data) == extra["sizes"][extra["chosen"]]
        chosen[q] = extra["chosen"]
        base = tuning.encode_optimized(image, q, tune="psnr", progressive=False)
        assert len(base) == extra["sizes"]["baseline"] and frame_marker(base) == 0xC0
        assert frame_marker(data) == (0xC0 if extra["chosen"] == "baseline" else 0xC2)
        report = []
        forced = tuning.encode_optimized(image, q, tune="psnr", progressive=True, report=report)
        assert frame_marker(forced) == 0xC2 and report[0].extra["chosen"] != "baseline"
        for name, d in (("auto", data), ("baseline", base)):
            sizes[name].append(len(d))
            quality[name].append(rgb_psnr(d, image))
    gain = metrics.bd_rate(sizes["baseline"], quality["baseline"], sizes["auto"],
                           quality["auto"])
    assert gain <= 0.05, (gain, chosen)


# --------------------------------------------------------------------------- quality scale


@pytest.mark.parametrize("options", [{"tune": "psnr"}, {"tune": "ssim"}, {"trellis": True}])
def test_quality_is_monotone(options: dict) -> None:
    """Higher quality: a larger file and a better PSNR, across the whole range."""
    image = to_chw(load_sample("kodim15_256x256.png"))
    sizes, quality = [], []
    for q in (5, 20, 35, 50, 65, 80, 90, 97):
        data = encode_jpeg(image, q, **options)
        sizes.append(len(data))
        quality.append(rgb_psnr(data, image))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    assert quality == sorted(quality), quality


# --------------------------------------------------------------------------- chroma


def test_upsampling_model_and_its_adjoint() -> None:
    from jpegtorch.sampling import upsample as exact_upsample

    rng = np.random.default_rng(0)
    for shape, (hexp, vexp) in (((7, 9), (2, 2)), ((6, 2), (2, 2)), ((5, 8), (2, 1)),
                                ((6, 5), (1, 2))):
        x = rng.integers(0, 256, shape).astype(np.float64)
        full = (shape[0] * vexp - 1, shape[1] * hexp - 1)
        g = rng.random(full)
        up = chroma.upsample(x, hexp, vexp, full)
        back = chroma.upsample_adjoint(g, hexp, vexp, shape, shape[1])
        assert abs(np.sum(up * g) - np.sum(x * back)) < 1e-9
        exact = exact_upsample(torch.from_numpy(x)[None], hexp, vexp, "hard")[0].numpy()
        assert np.abs(exact[: full[0], : full[1]] - up).max() <= 0.5  # libjpeg's rounding


def test_fitted_chroma_is_closer_after_upsampling() -> None:
    image = to_chw(load_sample("kodim23_256x192.png"))
    an = analysis.analyze(image, "4:2:0")
    for c in (1, 2):
        own = analysis.component_size(an, c)
        box = an.planes[c][: own[0], : own[1]]
        fitted = np.round(chroma.fit_downsampled(an.full[c], box, 2, 2))
        errors = [np.mean((chroma.upsample(p, 2, 2, an.size) - an.full[c]) ** 2)
                  for p in (box, fitted)]
        assert errors[1] < 0.85 * errors[0], errors


# --------------------------------------------------------------------------- API and CLI


def test_errors() -> None:
    image = to_chw(load_sample("kodim23_256x192.png"))
    with pytest.raises(JPEGError, match="tune"):
        encode_jpeg(image, 75, tune="lpips")
    with pytest.raises(JPEGError, match="quality"):
        tuning.encode_optimized(image, 0, tune="psnr")
    with pytest.raises(JPEGError, match="uint8"):
        tuning.encode_optimized(image.float(), 50)
    with pytest.raises(ValueError, match="lambda"):
        an = analysis.analyze(image, "4:2:0")
        trellis.trellis_quantize(list(an.raw), quant_for(50, None, 3), np.ones((3, 64)), 0.0,
                                 layout_of(an), (0, 1, 1))


def test_cli_trellis_and_tune(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(load_sample("kodim23_256x192.png")).save(source)
    runner = CliRunner()
    sizes = {}
    for flags in ((), ("--optimize",), ("--trellis",), ("--tune", "psnr"), ("--tune", "ssim")):
        out = tmp_path / f"out{len(sizes)}.jpg"
        result = runner.invoke(cli, ["encode", str(source), "-q", "60", *flags, "-o", str(out)])
        assert result.exit_code == 0, result.output
        sizes[flags] = out.stat().st_size
        assert Image.open(out).size == (256, 192)
    assert sizes[("--trellis",)] < sizes[("--optimize",)] < sizes[()]
    for flags, marker in ((("--tune", "psnr", "--progressive"), 0xC2),
                          (("--tune", "psnr", "--sequential"), 0xC0),
                          (("--trellis", "--progressive"), 0xC2)):
        out = tmp_path / f"{'_'.join(flags)}.jpg"
        result = runner.invoke(cli, ["encode", str(source), "-q", "60", *flags, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert frame_marker(out.read_bytes()) == marker, flags
    result = runner.invoke(cli, ["encode", str(source), "--tune", "psnr", "--restart-rows", "1",
                                 "-o", str(tmp_path / "x.jpg")])
    assert result.exit_code != 0 and "--restart-rows" in result.output
    result = runner.invoke(cli, ["encode", str(source), "--codec", "learned", "--tune", "psnr",
                                 "-o", str(tmp_path / "x.jtc")])
    assert result.exit_code != 0 and "--codec jpeg only" in result.output


# --------------------------------------------------------------------------- scan search


def _scan_bytes(data: bytes) -> list[int]:
    """Bytes per scan of a JPEG file: the DHT segments before its SOS, the SOS
    and its entropy-coded data."""
    sizes, pos, pending = [], 2, 0
    while pos + 4 <= len(data) and data[pos + 1] != 0xD9:
        marker = data[pos + 1]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xC4:
            pending += end - pos
        if marker != 0xDA:
            pos = end
            continue
        start, pos = pos, end
        while not (data[pos] == 0xFF and data[pos + 1] != 0 and not 0xD0 <= data[pos + 1] <= 0xD7):
            pos += 1
        sizes.append(pending + pos - start)
        pending = 0
    return sizes


JPEGTRAN = shutil.which("jpegtran")


@pytest.mark.skipif(JPEGTRAN is None, reason="needs libjpeg-turbo's jpegtran")
def test_band_costs_are_libjpegs_scan_sizes(tmp_path: Path) -> None:
    """The predicted size of each spectral band (symbols with EOBRUNs, the scan's
    optimal table, DHT, SOS) is the size libjpeg-turbo's progressive coder gives
    that scan (jpegtran -scans), to a few bytes of padding and byte stuffing."""
    from jpegtorch.optimize import scans

    image = to_chw(load_sample("kodim05_384x256.png"))
    data = tuning.encode_optimized(image, 60, tune="psnr", progressive=False)
    c = jpegtorch.read_coefficients(data)
    own = [np.ascontiguousarray(b[0, : r, : w].reshape(-1, 64).numpy()) for b, (r, w) in
           zip(c.blocks, (c.component_blocks(i) for i in range(3)), strict=True)]
    bands = [((1, 2), (3, 9), (10, 63)), ((1, 63),), ((1, 5), (6, 63))]
    script = scans.band_script(bands)
    text = "".join(f"{' '.join(map(str, comps))}: {ss} {se} {ah} {al};\n"
                   for comps, ss, se, ah, al in script)
    (tmp_path / "s.txt").write_text(text)
    progressive = subprocess.run([JPEGTRAN, "-scans", str(tmp_path / "s.txt")], input=data,
                                 capture_output=True, check=True).stdout
    measured = _scan_bytes(progressive)[1:]  # the AC bands (the DC scan is not a band)
    predicted = [scans.band_cost(own[comp], ss, se).bits / 8 for comp, component_bands in
                 enumerate(bands) for ss, se in component_bands]
    assert len(measured) == len(predicted) == 6
    for m, p in zip(measured, predicted, strict=True):
        assert abs(m - p) <= 2 + 0.006 * m, (measured, predicted)
    choice = scans.choose_bands(own, (0, 1, 1))
    assert choice.progressive_bits <= sum(predicted) * 8 + 1
    assert all(bands[0][0] == 1 and bands[-1][1] == 63 for bands in choice.bands)
