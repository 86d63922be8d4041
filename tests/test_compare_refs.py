"""``jtorch compare --ref mozjpeg`` and ``--progressive``: mozjpeg's files are what its
cjpeg writes, our decoder decodes them exactly, and progressive files from jpegtorch are
libjpeg-turbo's (Pillow, cjpeg, OpenCV) byte for byte. mozjpeg is mozjpeg's cjpeg on the
PATH or ../shared/tools/mozjpeg-4.0.3 (skipped when neither is there)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT, load_sample, synthetic
from jpegtorch.cli.main import cli
from PIL import Image

from jpegtorch import compare as lib

torch.set_num_threads(1)


def _find_mozjpeg() -> str | None:
    shared = ROOT.parent / "shared" / "tools" / "mozjpeg-4.0.3" / "cjpeg"
    if shared.is_file() and os.access(shared, os.X_OK):
        return str(shared)
    try:
        return lib.find_mozjpeg()[0]
    except lib.MissingDependency:
        return None


MOZJPEG = _find_mozjpeg()
needs_mozjpeg = pytest.mark.skipif(MOZJPEG is None, reason="mozjpeg's cjpeg not found")
HAS_LIBJPEG = bool(shutil.which("cjpeg") and shutil.which("djpeg"))


def run(*args: str):
    return CliRunner().invoke(cli, ["compare", "--threads", "1", *args])


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(load_sample("kodim01_233x151.png")).save(path)
    return path


def mozjpeg_bytes(image: np.ndarray, *args: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PPM")
    return subprocess.run([MOZJPEG, *args], input=buffer.getvalue(), capture_output=True,
                          check=True).stdout


@needs_mozjpeg
def test_mozjpeg_reference_runs_its_cjpeg(photo: Path) -> None:
    image = np.array(Image.open(photo))
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", MOZJPEG, "-q", "30,50,70,90",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    moz = [r for r in records if r["codec"] == "mozjpeg"]
    ours = {r["quality"]: r for r in records if r["codec"] == "jpegtorch"}
    assert [r["quality"] for r in moz] == [30, 50, 70, 90]
    for r in moz:
        expected = mozjpeg_bytes(image, "-quality", str(r["quality"]), "-sample", "2x2")
        assert r["bytes"] == len(expected)
        assert r["bytes_identical"] is False and r["pixels_identical"] is False
        # our decoder gives mozjpeg's djpeg pixels on mozjpeg's (progressive) files
        assert r["decoder_identical"] is True
        assert r["bytes"] < ours[r["quality"]]["bytes"]  # trellis + progressive: smaller
    # its files are progressive, as mozjpeg writes by default
    data = mozjpeg_bytes(image, "-quality", "75")
    assert b"\xff\xc2" in data and torch.equal(
        torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1),
        __import__("jpegtorch").decode_jpeg(data))
    # the table: BD-rates of jpegtorch against mozjpeg (the first reference)
    table = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", str(Path(MOZJPEG).parent),
                "-q", "30,50,70,90")
    assert table.exit_code == 0, table.output
    assert "BD-rate PSNR vs mozjpeg" in table.stdout


@needs_mozjpeg
def test_mozjpeg_args_and_settings_reach_its_cjpeg(photo: Path, tmp_path: Path) -> None:
    image = np.array(Image.open(photo))
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", MOZJPEG, "--mozjpeg-args",
                 "-tune-psnr -notrellis-dc", "-q", "60", "--subsampling", "4:4:4",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    moz = next(r for r in json.loads(result.stdout) if r["codec"] == "mozjpeg")
    expected = mozjpeg_bytes(image, "-quality", "60", "-sample", "1x1", "-tune-psnr",
                             "-notrellis-dc")
    assert moz["bytes"] == len(expected)
    from jpegtorch.formats import qtables

    path = tmp_path / "t.txt"
    qtables.write_qtables(path, [tuple(range(1, 65)), tuple(range(64, 0, -1))])
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", MOZJPEG, "-q", "50",
                 "--tables", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    moz = next(r for r in json.loads(result.stdout) if r["codec"] == "mozjpeg")
    assert moz["bytes"] == len(mozjpeg_bytes(image, "-quality", "50", "-sample", "2x2",
                                             "-qtables", str(path), "-qslots", "0,1,1"))
    gray = tmp_path / "gray.png"
    Image.fromarray(image[..., 0]).save(gray)
    result = run(str(gray), "--ref", "mozjpeg", "--mozjpeg", MOZJPEG, "-q", "80",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    moz = next(r for r in json.loads(result.stdout) if r["codec"] == "mozjpeg")
    assert moz["bytes"] == len(mozjpeg_bytes(image[..., 0], "-quality", "80", "-grayscale"))
    assert moz["decoder_identical"] is True


def test_missing_or_wrong_mozjpeg_is_one_clear_line(photo: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mozjpeg on this PATH
    lib.cjpeg_version.cache_clear()
    result = run(str(photo), "--ref", "mozjpeg")
    assert result.exit_code == 1 and result.stdout == ""
    assert "--mozjpeg PATH" in result.stderr and "Traceback" not in result.stderr
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "no cjpeg program there" in result.stderr
    fake = tmp_path / "cjpeg"  # a cjpeg that is not mozjpeg's
    fake.write_text("#!/bin/sh\necho 'libjpeg-turbo version 2.1.5 (build 1)' >&2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", str(fake))
    assert result.exit_code == 1 and "is not mozjpeg's cjpeg" in result.stderr
    assert "libjpeg-turbo version 2.1.5" in result.stderr
    result = run(str(photo), "--mozjpeg-args", "-tune-psnr")
    assert result.exit_code == 2 and "apply to --ref mozjpeg" in result.output
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", str(fake), "--mozjpeg-args",
                 "'unclosed")
    assert result.exit_code == 2 and "--mozjpeg-args" in result.output


def test_libjpeg_reference_refuses_a_mozjpeg_cjpeg(photo: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in (("cjpeg", "mozjpeg version 4.0.3 (build 1)"),
                       ("djpeg", "libjpeg-turbo version 2.1.5")):
        tool = tmp_path / name
        tool.write_text(f"#!/bin/sh\necho '{text}' >&2\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    lib.cjpeg_version.cache_clear()
    result = run(str(photo), "--ref", "libjpeg")
    assert result.exit_code == 1 and "is mozjpeg's" in result.stderr


def test_progressive_files_are_libjpeg_turbos(photo: Path) -> None:
    refs = ["pillow", "opencv"] + (["libjpeg"] if HAS_LIBJPEG else [])
    pytest.importorskip("cv2")
    result = run(str(photo), "--ref", ",".join(refs), "--progressive", "-q", "20,75,95",
                 "--subsampling", "4:2:2", "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 3 * (1 + len(refs))
    for r in records:
        if r["codec"] != "jpegtorch":
            assert r["bytes_identical"] is True, r
            assert r["pixels_identical"] is True and r["decoder_identical"] is True
    plain = json.loads(run(str(photo), "-q", "75", "--subsampling", "4:2:2", "--optimize",
                           "--format", "json").stdout)
    progressive = next(r for r in records if r["codec"] == "jpegtorch" and r["quality"] == 75)
    # the same coefficients: the same pixels, in a different (here smaller) file
    assert progressive["psnr"] == plain[0]["psnr"]
    assert progressive["bytes"] != plain[0]["bytes"]


def test_comparison_api_takes_the_new_settings() -> None:
    settings = lib.JPEGSettings(progressive=True)
    with lib.Comparison(["pillow"], qualities=(50,), settings=settings) as comparison:
        records = comparison.compare_image(synthetic(24, 40), "x")
    assert all(r.bytes_identical for r in records if r.codec == "pillow")
    assert "mozjpeg" in lib.REFERENCES


def test_trellis_and_tune_reach_jpegtorch_only(photo: Path) -> None:
    """--trellis / --tune: jpegtorch's files are encode_jpeg's with them (no longer
    libjpeg-turbo's bytes), the references keep theirs, and our decoder still gives
    Pillow's pixels on every file."""
    import jpegtorch

    image = np.array(Image.open(photo))
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    for flags, options in ((("--trellis",), {"trellis": True}),
                           (("--tune", "psnr"), {"tune": "psnr"}),
                           (("--trellis", "--progressive"), {"trellis": True,
                                                             "progressive": True}),
                           (("--tune", "ssim", "--progressive"), {"tune": "ssim",
                                                                  "progressive": True})):
        result = run(str(photo), "--ref", "pillow", "-q", "60", *flags, "--format", "json")
        assert result.exit_code == 0, result.output
        records = json.loads(result.stdout)
        ours = next(r for r in records if r["codec"] == "jpegtorch")
        pillow = next(r for r in records if r["codec"] == "pillow")
        expected = jpegtorch.encode_jpeg(tensor, 60, **options)
        assert ours["bytes"] == len(expected), flags
        assert pillow["bytes_identical"] is False and pillow["decoder_identical"] is True
        plain = jpegtorch.encode_jpeg(tensor, 60, optimize=True)
        assert pillow["bytes"] == len(jpegtorch.encode_jpeg(
            tensor, 60, progressive="--progressive" in flags))  # its own settings
        if "--trellis" in flags:  # trellis: fewer bytes than libjpeg's rounding (optimized)
            assert ours["bytes"] < len(plain)
        with Image.open(io.BytesIO(expected)) as im:  # SOF2 when asked for
            assert bool(im.info.get("progressive")) == ("--progressive" in flags)
            decoded = np.array(im.convert("RGB"))
        assert np.array_equal(_as_hwc(jpegtorch.decode_jpeg(expected)), decoded)
    result = run(str(photo), "--codec", "learned", "--trellis")
    assert result.exit_code == 2 and "apply to --codec jpeg" in result.output
    with pytest.raises(ValueError, match="tune"):
        lib.JPEGSettings(tune="fast")


def _as_hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy() if image.shape[0] == 3 else image[0].numpy()


@needs_mozjpeg
def test_tune_against_mozjpeg_tune_psnr(photo: Path) -> None:
    """The measurement issue 12 asks for, through the CLI: jpegtorch --tune psnr
    against mozjpeg -tune-psnr, the BD-rate in the table's summary."""
    result = run(str(photo), "--ref", "mozjpeg", "--mozjpeg", MOZJPEG, "--mozjpeg-args",
                 "-tune-psnr", "--tune", "psnr", "-q", "40,60,75,90")
    assert result.exit_code == 0, result.output
    assert "BD-rate" in result.stdout and "mozjpeg" in result.stdout
