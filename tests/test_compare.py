"""``jtorch compare`` and :mod:`jpegtorch.compare`: numbers checked against independent
computations (OpenCV's own files, scikit-image's PSNR and SSIM), formats, plots,
--save, --tables, the learned codec, and errors."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import SAMPLES, load_sample, synthetic
from jpegtorch.cli.main import cli
from PIL import Image

from jpegtorch import compare as lib

torch.set_num_threads(1)  # the metrics' convolutions oversubscribe a busy 2-core machine

cv2 = pytest.importorskip("cv2")
skimage_metrics = pytest.importorskip("skimage.metrics")
HAS_MPL = importlib.util.find_spec("matplotlib") is not None
HAS_LIBJPEG = bool(shutil.which("cjpeg") and shutil.which("djpeg"))
OPENCV_SAMPLING = {"4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
                   "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
                   "4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420}


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["compare", "--threads", "1", *args], input=input)


def opencv_jpeg(rgb: np.ndarray, quality: int, subsampling: str = "4:2:0") -> bytes:
    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [
        cv2.IMWRITE_JPEG_QUALITY, quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, OPENCV_SAMPLING[subsampling]])
    assert ok
    return buffer.tobytes()


def opencv_decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two sample photos: one too small for MS-SSIM (151 rows), one large enough."""
    path = tmp_path_factory.mktemp("images")
    for name in ("kodim01_233x151.png", "kodim05_384x256.png"):
        shutil.copy(SAMPLES / name, path / name)
    return path


@pytest.fixture(scope="module")
def json_run(folder: Path) -> list[dict]:
    result = run(str(folder), "--ref", "opencv,pillow", "-q", "15,85", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --- numbers against independent computations ------------------------------------------


def test_json_records_match_opencv_and_scikit_image(folder: Path, json_run: list[dict]) -> None:
    assert len(json_run) == 2 * 2 * 3  # images x qualities x codecs
    for record in json_run:
        assert set(lib.COLUMNS) <= set(record)
        assert {"image", "codec", "quality", "bytes", "bpp", "psnr", "psnr_y", "ssim",
                "encode_ms", "decode_ms"} <= set(record)
    for name in ("kodim01_233x151.png", "kodim05_384x256.png"):
        rgb = load_sample(name)
        height, width = rgb.shape[:2]
        for quality in (15, 85):
            data = opencv_jpeg(rgb, quality)
            decoded = opencv_decode(data)
            rows = {r["codec"]: r for r in json_run
                    if Path(r["image"]).name == name and r["quality"] == quality}
            assert set(rows) == {"jpegtorch", "opencv", "pillow"}
            expected_psnr = skimage_metrics.peak_signal_noise_ratio(rgb, decoded,
                                                                    data_range=255)
            expected_ssim = skimage_metrics.structural_similarity(
                rgb, decoded, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                data_range=255, channel_axis=2)
            y_ref = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]
            y_dec = decoded.astype(np.float64) @ [0.299, 0.587, 0.114]
            expected_psnr_y = 10 * math.log10(255**2 / np.mean((y_ref - y_dec) ** 2))
            for codec, row in rows.items():
                assert row["bytes"] == len(data), codec  # OpenCV's own file size
                assert row["bpp"] == pytest.approx(8 * len(data) / (height * width), abs=1e-4)
                assert row["psnr"] == pytest.approx(expected_psnr, abs=1e-3)
                assert row["psnr_y"] == pytest.approx(expected_psnr_y, abs=1e-3)
                assert abs(row["ssim"] - expected_ssim) < 0.005
                assert (row["ms_ssim"] is None) == (height <= 160)
                assert row["encode_ms"] > 0 and row["decode_ms"] > 0
                if codec == "jpegtorch":
                    assert row["bytes_identical"] is None
                else:
                    assert row["bytes_identical"] is True and row["pixels_identical"] is True
                    assert row["psnr_vs_jpegtorch"] is None
                    assert row["decoder_identical"] is True


def test_library_ms_ssim_and_bytes_against_opencv() -> None:
    rgb = load_sample("kodim05_384x256.png")
    with lib.Comparison(["opencv"], qualities=[40], settings=lib.JPEGSettings("4:4:4")) as c:
        ours, ref = c.compare_image(torch.from_numpy(rgb).permute(2, 0, 1), "photo")
    data = opencv_jpeg(rgb, 40, "4:4:4")
    assert ours.bytes == ref.bytes == len(data) and ref.bytes_identical
    from pytorch_msssim import ms_ssim

    decoded = torch.from_numpy(opencv_decode(data).copy()).permute(2, 0, 1)[None].double()
    expected = ms_ssim(torch.from_numpy(rgb).permute(2, 0, 1)[None].double(), decoded,
                       data_range=255)
    assert ours.ms_ssim == pytest.approx(float(expected), abs=1e-6)


def test_gray_image_and_libjpeg_reference(tmp_path: Path) -> None:
    if not HAS_LIBJPEG:
        pytest.skip("cjpeg/djpeg not installed")
    gray = tmp_path / "gray.png"
    shutil.copy(SAMPLES / "kodim15_gray_256x256.png", gray)
    result = run(str(gray), "--ref", "libjpeg", "--ref", "opencv", "-q", "30",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = {r["codec"]: r for r in json.loads(result.stdout)}
    pixels = np.array(Image.open(gray).convert("L"))
    _, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 30])
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    for row in rows.values():
        assert row["bytes"] == data.size
        assert row["psnr"] == pytest.approx(row["psnr_y"])
        assert row["psnr"] == pytest.approx(
            skimage_metrics.peak_signal_noise_ratio(pixels, decoded, data_range=255), abs=1e-3)
    assert rows["libjpeg"]["bytes_identical"] and rows["opencv"]["bytes_identical"]


def test_differences_are_reported() -> None:
    """A reference that differs: identity flags false, PSNR between the decodes."""
    rgb = synthetic(40, 56)
    with lib.Comparison(["pillow"], qualities=[50],
                        settings=lib.JPEGSettings(tables=((1,) * 64, (255,) * 64))) as c:
        # make Pillow write something else: its own (default) tables
        c.references[0].settings = lib.JPEGSettings()
        ours, ref = c.compare_image(rgb, "synthetic")
    assert ref.bytes_identical is False and ref.pixels_identical is False
    assert ref.psnr_vs_jpegtorch is not None and 10 < ref.psnr_vs_jpegtorch < 60
    assert ref.decoder_identical is True  # our decoder still reads Pillow's file exactly
    assert "differs (" in lib.format_table([ours, ref])


# --- the table, BD-rate, CSV -----------------------------------------------------------


def test_table_has_means_and_bd_rate_with_four_qualities(folder: Path) -> None:
    result = run(str(folder / "kodim01_233x151.png"), "--ref", "opencv", "-q", "20:80:20")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "Means per codec over 1 image" in text and "BD-rate PSNR vs opencv" in text
    summary = text.split("Means per codec")[1].splitlines()
    ours = next(line for line in summary if line.startswith("jpegtorch"))
    assert "+0.00%" in ours  # identical files: no BD-rate difference
    assert next(line for line in summary if line.startswith("opencv")).split()[-3] == "4/4"
    assert result.stderr == ""
    # fewer than four qualities: no BD-rate column
    result = run(str(folder / "kodim01_233x151.png"), "--ref", "opencv", "-q", "20,80")
    assert "BD-rate" not in result.stdout


def test_bd_rate_of_a_codec_with_smaller_files() -> None:
    records = []
    for q, (bpp, value) in enumerate([(0.5, 30), (1, 33), (1.5, 35), (2, 36.5)]):
        for codec, scale in (("opencv", 1.0), ("jpegtorch", 0.9)):
            records.append(lib.Record("a", codec, q, 8, 8, 1, bpp * scale, value, value, 0.9,
                                      None, 1.0, 1.0))
    assert lib.bd_rates(records, "jpegtorch", "opencv") == pytest.approx(-10.0, abs=1e-6)
    rows = {s["codec"]: s for s in lib.summarize(records, "opencv")}
    assert rows["jpegtorch"]["bd_rate"] == pytest.approx(-10.0, abs=1e-6)
    assert rows["opencv"]["bd_rate"] is None


def test_csv_has_the_json_columns(folder: Path, json_run: list[dict]) -> None:
    result = run(str(folder), "--ref", "opencv,pillow", "-q", "15,85", "--format", "csv",
                 "--quiet")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(lib.COLUMNS)
    assert [(r["image"], r["codec"], r["quality"], r["bytes"]) for r in rows] == [
        (r["image"], r["codec"], str(r["quality"]), str(r["bytes"])) for r in json_run]
    assert {r["bytes_identical"] for r in rows} == {"", "true"}


def test_identical_decode_psnr_is_null_in_json() -> None:
    flat = np.full((16, 16, 3), 128, np.uint8)  # coded exactly at quality 100
    with lib.Comparison(["pillow"], qualities=[100]) as c:
        records = c.compare_image(flat, "flat")
    assert math.isinf(records[0].psnr)
    assert json.loads(lib.to_json(records))[0]["psnr"] is None
    assert "inf" in lib.format_table(records)


# --- plot, --save, --tables, learned ---------------------------------------------------


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib (the 'plot' extra) not installed")
def test_plot_png_and_svg(folder: Path, tmp_path: Path) -> None:
    png, svg = tmp_path / "rd.png", tmp_path / "rd.svg"
    src = str(folder / "kodim01_233x151.png")
    result = run(src, "--ref", "opencv", "-q", "10,50,90", "--plot", str(png), "--quiet")
    assert result.exit_code == 0, result.stderr
    with Image.open(png) as im:
        im.verify()
        assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 200
    report = tmp_path / "report.json"
    result = run(src, "-q", "10,50", "--plot", str(svg), "-F", "json", "-o", str(report))
    assert result.exit_code == 0 and result.stdout == ""
    assert len(json.loads(report.read_text())) == 4
    import xml.etree.ElementTree as ET

    assert ET.parse(svg).getroot().tag.endswith("svg")
    # an existing report is not replaced without --force (checked before any work)
    before = report.read_bytes()
    result = run(src, "-q", "50", "--plot", "-", "-o", str(report))
    assert result.exit_code == 1 and "report.json exists (use -f/--force" in result.stderr
    assert result.stdout_bytes == b"" and report.read_bytes() == before
    # '-' writes the PNG to stdout (the report then needs -o)
    result = run(src, "-q", "50", "--plot", "-", "-o", str(report), "--force")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.startswith(b"\x89PNG\r\n\x1a\n")
    assert run(src, "--plot", "-").exit_code == 2
    assert run(src, "--plot", str(tmp_path / "rd.gif")).exit_code == 2


def test_plot_without_matplotlib_names_the_extra(folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = run(str(folder / "kodim01_233x151.png"), "--plot", str(tmp_path / "rd.png"))
    assert result.exit_code == 1
    assert "jpegtorch[plot]" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and not (tmp_path / "rd.png").exists()


def test_missing_references_name_what_to_install(folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cv2" else real(name, *a))
    result = run(str(folder), "--ref", "opencv")
    assert result.exit_code == 1 and result.stdout == ""
    assert "jpegtorch[opencv]" in result.stderr and "Traceback" not in result.stderr
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = run(str(folder), "--ref", "libjpeg")
    assert result.exit_code == 1 and "libjpeg-turbo-progs" in result.stderr


def test_save_keeps_files_decodes_and_crops(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "saved"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = run(str(folder / "kodim05_384x256.png"), str(bad), "--ref", "opencv", "-q",
                 "30", "--save", str(out), "--quiet")
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["kodim05_384x256"]  # nothing for bad.png
    saved = out / "kodim05_384x256"
    assert sorted(p.name for p in saved.iterdir()) == [
        "jpegtorch_q030.jpg", "jpegtorch_q030.png", "jpegtorch_q030_crop.png",
        "opencv_q030.jpg", "opencv_q030.png", "opencv_q030_crop.png"]
    rgb = load_sample("kodim05_384x256.png")
    assert (saved / "jpegtorch_q030.jpg").read_bytes() == opencv_jpeg(rgb, 30)
    assert np.array_equal(np.array(Image.open(saved / "opencv_q030.png")),
                          opencv_decode(opencv_jpeg(rgb, 30)))
    crop = np.array(Image.open(saved / "jpegtorch_q030_crop.png"))
    assert crop.shape == (2 * lib.CROP, 3 * 2 * lib.CROP + 8, 3)


def test_side_by_side_difference_is_amplified() -> None:
    a = np.full((10, 12, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110
    panel = lib.side_by_side(a, b, size=8, zoom=1, gain=4)
    assert panel.shape == (8, 3 * 8 + 8, 3)
    diff = panel[:, 16 + 8 :]
    assert diff[0, 0, 0] == 128 + 40 and diff[1, 1, 1] == 128


def test_tables_go_to_pillow_and_libjpeg_not_opencv(folder: Path, tmp_path: Path) -> None:
    from jpegtorch.formats.qtables import ANNEX_K_CHROMA, ANNEX_K_LUMA, write_qtables

    tables = tmp_path / "tables.txt"
    write_qtables(tables, [[min(255, 2 * v) for v in ANNEX_K_LUMA], list(ANNEX_K_CHROMA)])
    refs = "pillow,opencv" + (",libjpeg" if HAS_LIBJPEG else "")
    result = run(str(folder / "kodim01_233x151.png"), "--tables", str(tables), "--ref", refs,
                 "-q", "60", "-F", "json")
    assert result.exit_code == 0, result.stderr
    assert "opencv cannot take custom quantization tables" in result.stderr
    rows = {r["codec"]: r for r in json.loads(result.stdout)}
    assert rows["pillow"]["bytes_identical"] is True
    assert rows["opencv"]["bytes_identical"] is False
    assert rows["opencv"]["decoder_identical"] is True
    assert rows["opencv"]["bytes"] == len(opencv_jpeg(load_sample("kodim01_233x151.png"), 60))
    if HAS_LIBJPEG:
        assert rows["libjpeg"]["bytes_identical"] is True
    # --quiet silences the warning
    result = run(str(folder / "kodim01_233x151.png"), "--tables", str(tables), "--ref",
                 "opencv", "-q", "60", "--quiet")
    assert result.exit_code == 0 and result.stderr == ""
    assert run(str(folder), "--tables", "no-such-preset").exit_code == 2


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from jpegtorch.learned import export
    from jpegtorch.learned.model import FactorizedCodec

    torch.manual_seed(0)
    net = FactorizedCodec(n=8, m=8, levels=2)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    export.export_model(net, (0.01, 0.05), path, meta={"name": "tiny-test"})
    return path


def test_learned_codec_records(tmp_path: Path, tiny_model: Path) -> None:
    image = tmp_path / "small.png"
    Image.fromarray(synthetic(32, 48)).save(image)
    result = run(str(image), "--codec", "jpeg", "--codec", "learned", "--model",
                 str(tiny_model), "-q", "50", "-F", "json", "--save", str(tmp_path / "s"))
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["codec"], r["quality"]) for r in rows] == [
        ("jpegtorch", 50), ("pillow", 50), ("jpegtorch-learned", 1), ("jpegtorch-learned", 2)]
    learned = rows[2]
    from jpegtorch.learned import codec

    data = (tmp_path / "s" / "small" / "jpegtorch-learned_l1.jtc").read_bytes()
    assert learned["bytes"] == len(data)
    decoded = codec.decode_image(data, model=tiny_model).permute(1, 2, 0).numpy()
    original = np.array(Image.open(image))
    assert learned["psnr"] == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(original, decoded, data_range=255), abs=1e-3)
    assert learned["bytes_identical"] is None
    result = run(str(image), "--codec", "learned", "--model", str(tiny_model), "--levels", "2",
                 "-F", "json")
    assert [(r["codec"], r["quality"]) for r in json.loads(result.stdout)] == [
        ("pillow", 10), ("pillow", 30), ("pillow", 50), ("pillow", 70), ("pillow", 90),
        ("jpegtorch-learned", 2)]
    assert run(str(image), "--codec", "learned", "--model", str(tiny_model),
               "--levels", "3").exit_code == 2


def test_learned_codec_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    result = run(str(SAMPLES / "kodim01_233x151.png"), "--codec", "learned", "--model",
                 str(tmp_path / "missing.pt"))
    assert result.exit_code == 1 and result.stdout == ""
    assert "learned codec" in result.stderr and "jtorch train codec" in result.stderr
    assert "Traceback" not in result.stderr


# --- inputs, errors, options -----------------------------------------------------------


def test_batch_goes_on_past_missing_and_corrupt_files(folder: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes((SAMPLES / "kodim01_233x151.png").read_bytes()[:300])
    good = str(folder / "kodim01_233x151.png")
    result = run(str(tmp_path / "missing.png"), good, str(corrupt), "-q", "50", "-F", "json")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("jtorch: summary: 3 files, 1 compared, 2 failed")
    lines = lines[:-1]
    assert len(lines) == 2 and "missing.png" in lines[0] and "corrupt.png" in lines[1]
    assert "Traceback" not in result.stderr
    assert [r["image"] for r in json.loads(result.stdout)] == [good, good]
    result = run(str(tmp_path / "missing.png"), "-F", "json", "--debug")
    assert result.exit_code == 1 and json.loads(result.stdout) == []


def test_stdin_input(folder: Path) -> None:
    data = (folder / "kodim01_233x151.png").read_bytes()
    result = run("-", "-q", "50", "-F", "json", input=data)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["image"] == "<stdin>" and rows[0]["width"] == 233


@pytest.mark.parametrize("args", [["-q", "0"], ["-q", "50:10"], ["-q", "a"], ["--ref", "gimp"],
                                  ["--format", "xml"], ["--levels", "1"], ["--repeat", "0"]])
def test_usage_errors_exit_2(folder: Path, args: list[str]) -> None:
    result = run(str(folder), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_parse_qualities() -> None:
    assert lib.parse_qualities("5:95:5") == list(range(5, 96, 5))
    assert lib.parse_qualities("90, 10,50,10") == [10, 50, 90]
    assert lib.parse_qualities("1:3,7") == [1, 2, 3, 7]
    for bad in ("", "0", "101", "5:1", "1:9:0", "x", "1:2:3:4"):
        with pytest.raises(ValueError):
            lib.parse_qualities(bad)


def test_progress_callback_counts_every_run() -> None:
    calls = []
    with lib.Comparison(["pillow", "opencv"], qualities=[20, 40, 60]) as c:
        records = c.compare_image(synthetic(24, 24), "x", progress=calls.append)
        assert len(calls) == c.steps_per_image == len(records) == 9


def test_parse_pnm() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = b"P6\n# comment\n3 2\n255\n" + pixels.tobytes()
    assert np.array_equal(lib.parse_pnm(data), pixels)
    assert lib.parse_pnm(b"P5 3 2 255\n" + bytes(6)).shape == (2, 3, 1)


def test_progress_bar_only_on_a_terminal_and_not_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    from jpegtorch.cli import _batch as command  # every command's batch progress bar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(command.sys, "stderr", Terminal())
    bar = command.progress_bar(10, "compared", quiet=False)
    assert bar is not None
    bar.update(3)
    bar.close()
    assert "compared" in command.sys.stderr.getvalue()
    assert command.progress_bar(10, "compared", quiet=True) is None
    assert command.progress_bar(1, "compared", quiet=False) is None
    monkeypatch.setattr(command.sys, "stderr", io.StringIO())
    assert command.progress_bar(10, "compared", quiet=False) is None
