"""``jtorch info``: sampling, coding, quality estimate, tables and segments of
known files (fixtures, files Pillow writes at a known quality, cjpeg files)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import synthetic
from jpegtorch.cli.main import cli
from jpegtorch.formats.jfif_reader import read_info
from PIL import Image

DATA = Path(__file__).resolve().parent / "data" / "jpeg"


def info_json(*paths: Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["info", "--json", *map(str, paths)])
    return json.loads(result.stdout)


@pytest.mark.parametrize("name, label, factors", [
    ("generated/gen_420_q75.jpg", "4:2:0", "2x2,1x1,1x1"),
    ("generated/gen_422.jpg", "4:2:2", "2x1,1x1,1x1"),
    ("generated/gen_440.jpg", "4:4:0", "1x2,1x1,1x1"),
    ("generated/gen_444.jpg", "4:4:4", "1x1,1x1,1x1"),
    ("generated/gen_411.jpg", "4:1:1", "4x1,1x1,1x1"),
    ("generated/gen_410.jpg", "4:1:0", "4x2,1x1,1x1"),
    ("generated/gen_gray.jpg", "gray", "1x1"),
    ("generated/gen_mixed_2x2_1x1_2x1.jpg", "custom", "2x2,1x1,2x1"),
    ("generated/gen_chroma_upsampled_1x2_2x2_2x2.jpg", "custom", "1x2,2x2,2x2"),
])
def test_sampling(name: str, label: str, factors: str) -> None:
    [record] = info_json(DATA / name)
    assert record["subsampling"] == label and record["sampling_factors"] == factors
    text = CliRunner().invoke(cli, ["info", str(DATA / name)]).output
    assert f"sampling:      {label} ({factors};" in text


@pytest.mark.parametrize("quality", [1, 12, 37, 50, 75, 90, 100])
def test_quality_of_pillow_files(tmp_path: Path, quality: int) -> None:
    path = tmp_path / "q.jpg"
    Image.fromarray(synthetic(24, 24)).save(path, quality=quality)
    [record] = info_json(path)
    assert record["quality"] == {"luma": quality, "chroma": quality, "quality": quality,
                                 "exact": True}
    text = CliRunner().invoke(cli, ["info", str(path)]).output
    assert f"quality:       {quality} (IJG tables, exact match" in text


@pytest.mark.skipif(shutil.which("cjpeg") is None, reason="needs cjpeg")
@pytest.mark.parametrize("options, luma, chroma", [(("-quality", "10"), 10, 10),
                                                   (("-quality", "90,40"), 90, 40),
                                                   (("-quality", "3", "-grayscale"), 3, None)])
def test_quality_of_cjpeg_files(options: tuple[str, ...], luma: int, chroma: int | None) -> None:
    buffer = io.BytesIO()
    Image.fromarray(synthetic(16, 16)).save(buffer, "PPM")
    data = subprocess.run(["cjpeg", *options], input=buffer.getvalue(), capture_output=True,
                          check=True).stdout
    info = read_info(data)
    assert info.quality["luma"] == luma and info.quality.get("chroma") == chroma
    assert info.quality["exact"]
    if luma < 25 and "-baseline" not in options:
        assert {t.precision for t in info.quant_tables} == {1}  # 16-bit tables (SOF1)
        assert info.process == "extended sequential"


def test_custom_tables_are_an_estimate() -> None:
    info = read_info(DATA / "generated/gen_qtables_custom.jpg")
    assert not info.quality["exact"] and 1 <= info.quality["quality"] <= 100
    text = CliRunner().invoke(cli, ["info", str(DATA / "generated/gen_qtables_custom.jpg")]).output
    assert f"quality:       ~{info.quality['quality']} (estimate" in text


def test_coding_scans_restart_huffman_segments() -> None:
    prog, restart, optimized, plain, app13 = info_json(
        DATA / "generated/gen_progressive_restart.jpg", DATA / "generated/gen_restart_3B.jpg",
        DATA / "generated/gen_optimize.jpg", DATA / "generated/gen_420_q75.jpg",
        DATA / "pillow/app13.jpg")
    assert prog["process"] == "progressive" and len(prog["scans"]) == 10
    assert prog["restart_intervals"] == [2]
    assert restart["process"] == "baseline" and restart["restart_intervals"] == [3]
    assert len(restart["scans"]) == 1
    assert not any(t["standard"] for t in optimized["huffman_tables"])
    assert all(t["standard"] for t in plain["huffman_tables"])
    assert len(plain["huffman_tables"]) == 4
    assert [s["marker"] for s in plain["segments"]] == ["APP0"]
    assert plain["segments"][0]["label"] == "JFIF 1.01"
    assert "APP13" in [s["marker"] for s in app13["segments"]]
    assert plain["file_size"] == 7142 and plain["width"] == 203 and plain["height"] == 137
    assert plain["bits_per_pixel"] == pytest.approx(7142 * 8 / (203 * 137), abs=1e-3)
    assert plain["color"] == "ycbcr" and plain["supported"] and plain["has_eoi"]
    assert [c["id"] for c in plain["components"]] == [1, 2, 3]
    q0 = next(t for t in plain["quant_tables"] if t["slot"] == 0)
    assert len(q0["values"]) == 64 and q0["values"][0] == 8  # IJG q75 luma DC


def test_text_output() -> None:
    out = CliRunner().invoke(cli, ["info", "-v", str(DATA / "generated/gen_progressive.jpg")])
    assert out.exit_code == 0
    text = out.output
    assert "JPEG 203x137, 3 components (YCbCr), 8-bit" in text
    assert "coding:        progressive (SOF2), 10 scans" in text
    assert "huffman:       optimized" in text and "segments:      APP0 JFIF 1.01" in text
    assert "scan 1: components 1,2,3 Ss=0 Se=0 Ah=0 Al=1" in text
    assert "bpp" in text and "table 0:" in text


def test_unsupported_files_are_described() -> None:
    arith, hier, cmyk, rgb = info_json(
        DATA / "generated/gen_arith.jpg", DATA / "generated/thor_hierarchical_y2.jpg",
        DATA / "jpeg-decoder/reftest/images/mozilla/jpg-cmyk-1.jpg", DATA / "go/video-001.rgb.jpeg")
    assert arith["supported"] and arith["process"] == "extended sequential, arithmetic-coded"
    assert arith["huffman_tables"] == []
    assert "hierarchical JPEG" in hier["error"]  # DHP marker: not walked further
    assert not cmyk["supported"] and cmyk["color"] in ("cmyk", "ycck")
    assert rgb["supported"] and rgb["color"] == "rgb"


def test_errors_exit_1_and_json_records_them(tmp_path: Path) -> None:
    bad = DATA / "generated/bad_not_jpeg.jpg"
    result = CliRunner().invoke(cli, ["info", "--json", str(bad),
                                      str(DATA / "generated/gen_gray.jpg")])
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert records[0] == {"file": str(bad), "error": "not a JPEG file (no SOI marker)"}
    assert records[1]["subsampling"] == "gray"
    text = CliRunner().invoke(cli, ["info", str(bad)])
    assert text.exit_code == 1 and f"jtorch: {bad}: not a JPEG file" in text.output
    assert "Traceback" not in text.output


def test_truncated_and_trailing_data() -> None:
    trunc, trailing = info_json(DATA / "generated/bad_truncated_50pct.jpg",
                                DATA / "generated/bad_trailing_garbage.jpg")
    assert not trunc["has_eoi"]
    assert trailing["has_eoi"] and trailing["trailing_bytes"] == 70


def test_info_matches_decoded_geometry() -> None:
    import jpegtorch

    for name in ("generated/gen_410.jpg", "jpegsuite/baseline/32x32x8_ycbcr_2x2_2x1_1x2.jpg"):
        info = read_info(DATA / name)
        coefs = jpegtorch.read_coefficients(DATA / name)
        assert (info.height, info.width) == coefs.size
        assert tuple((c.h, c.v) for c in info.components) == coefs.sampling
        assert np.array_equal(
            np.array([t.values for t in info.quant_tables if t.slot == coefs.qtable_slots[0]][-1]),
            coefs.qtables[0, 0].flatten().numpy())
