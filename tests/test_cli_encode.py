"""``jtorch encode``: inputs, outputs, batches, errors; files identical to Pillow/cjpeg."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_sample, synthetic
from jpegtorch.cli.main import cli
from PIL import Image

CJPEG = shutil.which("cjpeg")


def pillow_bytes(image: Image.Image, quality: int = 75, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **kwargs)
    return buffer.getvalue()


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["encode", *args], input=input, catch_exceptions=False)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(load_sample("kodim01_233x151.png")).save(path)
    return path


def test_one_input_beside_and_to_file(photo: Path, tmp_path: Path) -> None:
    expected = pillow_bytes(Image.open(photo))
    result = run(str(photo))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "photo.jpg").read_bytes() == expected
    result = run(str(photo), "-o", str(tmp_path / "named.jpeg"), "-q", "90", "--optimize",
                 "--subsampling", "4:4:4", "--restart", "4")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "named.jpeg").read_bytes() == pillow_bytes(
        Image.open(photo), 90, optimize=True, subsampling=0, restart_marker_blocks=4)
    assert result.stderr == ""


def test_stdin_to_stdout(photo: Path) -> None:
    result = run("-", "-o", "-", "-q", "40", input=photo.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == pillow_bytes(Image.open(photo), 40)


def test_batch_into_directory_goes_on_past_bad_files(photo: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.bmp"
    Image.fromarray(synthetic(20, 30)).save(second)
    (tmp_path / "bad.png").write_bytes(b"this is not an image")
    out = tmp_path / "out" / "nested"
    result = run(str(photo), str(tmp_path / "missing.png"), str(tmp_path / "bad.png"),
                 str(second), "-o", str(out))
    assert result.exit_code == 1
    assert sorted(os.listdir(out)) == ["photo.jpg", "second.jpg"]
    assert (out / "second.jpg").read_bytes() == pillow_bytes(Image.open(second))
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("jtorch: summary: 4 files encoded, 2 failed, ")
    lines = lines[:-1]
    assert len(lines) == 2
    assert "missing.png" in lines[0] and "no such file" in lines[0]
    assert "bad.png" in lines[1] and "not an image" in lines[1]
    assert "Traceback" not in result.output


def test_input_modes(tmp_path: Path) -> None:
    rgb = synthetic(24, 40, seed=4)
    gray = rgb[..., 0].copy()
    cases = {
        "gray.png": (Image.fromarray(gray), Image.fromarray(gray), False),
        "gray.pgm": (Image.fromarray(gray), Image.fromarray(gray), False),
        "rgba.png": (Image.fromarray(np.dstack([rgb, gray])), Image.fromarray(rgb), True),
        "la.png": (Image.fromarray(np.dstack([gray, gray])).convert("LA"),
                   Image.fromarray(gray), True),
        "palette.png": (Image.fromarray(rgb).quantize(16),
                        Image.fromarray(rgb).quantize(16).convert("RGB"), False),
        "tiff.tif": (Image.fromarray(rgb), Image.fromarray(rgb), False),
        "webp.webp": (Image.fromarray(rgb), None, False),
        "bilevel.png": (Image.fromarray(gray).convert("1"),
                        Image.fromarray(gray).convert("1").convert("L"), False),
    }
    for name, (image, expected, warns) in cases.items():
        source = tmp_path / name
        image.save(source, **({"lossless": True} if name.endswith(".webp") else {}))
        result = run(str(source), "-o", str(tmp_path / "out.jpg"), "-f")
        assert result.exit_code == 0, (name, result.output)
        assert ("alpha channel dropped" in result.stderr) == warns, name
        data = (tmp_path / "out.jpg").read_bytes()
        if expected is None:
            expected = Image.open(source).convert("RGB")
        assert data == pillow_bytes(expected), name
        assert Image.open(io.BytesIO(data)).mode == ("L" if expected.mode == "L" else "RGB")
    quiet = run(str(tmp_path / "rgba.png"), "-o", str(tmp_path / "q.jpg"), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_sixteen_bit_inputs_are_scaled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 65536, (19, 23), dtype=np.uint16)
    eight = ((wide.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    png = tmp_path / "wide.png"
    Image.fromarray(wide).save(png)  # 16-bit gray PNG ("I;16")
    pgm = tmp_path / "wide.pgm"
    pgm.write_bytes(b"P5\n23 19\n65535\n" + wide.astype(">u2").tobytes())  # opens as "I"
    for source in (png, pgm):
        result = run(str(source), "-o", str(tmp_path / "out.jpg"), "--force")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "out.jpg").read_bytes() == pillow_bytes(Image.fromarray(eight))


@pytest.mark.skipif(CJPEG is None, reason="cjpeg not installed")
def test_grayscale_and_tables_match_cjpeg(photo: Path, tmp_path: Path) -> None:
    ppm = tmp_path / "photo.ppm"
    Image.open(photo).save(ppm)

    def cjpeg(*args: str) -> bytes:
        return subprocess.run([CJPEG, *args, str(ppm)], capture_output=True, check=True).stdout

    result = run(str(photo), "-o", str(tmp_path / "g.jpg"), "--grayscale", "-q", "85")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.jpg").read_bytes() == cjpeg("-baseline", "-grayscale", "-quality", "85")

    tables = tmp_path / "tables.txt"
    tables.write_text("# flat-ish tables\n" + " ".join(str(3 + i % 40) for i in range(128)))
    result = run(str(photo), "-o", str(tmp_path / "t.jpg"), "--tables", str(tables), "-q", "65")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.jpg").read_bytes() == cjpeg(
        "-baseline", "-qtables", str(tables), "-quality", "65")


def test_tables_preset_and_bad_tables(photo: Path, tmp_path: Path) -> None:
    result = run(str(photo), "-o", str(tmp_path / "a.jpg"), "--tables", "annex-k")
    assert result.exit_code == 0
    assert (tmp_path / "a.jpg").read_bytes() == pillow_bytes(Image.open(photo))
    for spec in ("no-such-preset", str(tmp_path / "missing.txt")):
        result = run(str(photo), "-o", str(tmp_path / "b.jpg"), "--tables", spec)
        assert result.exit_code == 2 and "--tables" in result.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3")
    result = run(str(photo), "-o", str(tmp_path / "b.jpg"), "--tables", str(bad))
    assert result.exit_code == 2 and "64" in result.stderr
    assert not (tmp_path / "b.jpg").exists()


@pytest.mark.parametrize("args", [["-q", "0"], ["-q", "101"], ["--subsampling", "4:1:1"],
                                  ["--restart", "-1"], ["--bogus"], []])
def test_usage_errors_exit_2(args: list[str], photo: Path) -> None:
    result = run(*([str(photo)] if args else []), *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "Error" in result.stderr


def test_never_overwrites_its_input_nor_existing_files(tmp_path: Path) -> None:
    source = tmp_path / "pic.jpg"
    source.write_bytes(pillow_bytes(Image.fromarray(synthetic(16, 16))))
    before = source.read_bytes()
    result = run(str(source))  # the output beside the input is the input itself
    assert result.exit_code == 1 and "refusing to overwrite" in result.stderr
    assert source.read_bytes() == before
    result = run(str(source), "-o", str(source))
    assert result.exit_code == 1 and source.read_bytes() == before

    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")
    for extra in ([], ["--no-clobber"]):  # refusing is the default; the old flag is a no-op
        result = run(str(source), "-o", str(target), *extra)
        assert result.exit_code == 1 and "out.jpg exists (use -f/--force" in result.stderr
        assert target.read_bytes() == b"old"
    result = run(str(source), "-o", str(target), "-f")  # replaced when told to
    assert result.exit_code == 0 and target.read_bytes()[:2] == b"\xff\xd8"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_pixel_limit(photo: Path, tmp_path: Path) -> None:
    result = run(str(photo), "-o", str(tmp_path / "x.jpg"), "--max-pixels", "1000")
    assert result.exit_code == 1
    assert "above the limit of 1000" in result.stderr and "--max-pixels" in result.stderr
    assert not (tmp_path / "x.jpg").exists()
    result = run(str(photo), "-o", str(tmp_path / "x.jpg"), "--max-pixels", "0")
    assert result.exit_code == 0


def test_help_does_not_import_torch_and_errors_have_no_traceback(tmp_path: Path) -> None:
    code = ("import sys; from jpegtorch.cli.main import main; sys.argv = ['jtorch', 'encode', "
            "'--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'numba' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--subsampling" in result.stdout
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = subprocess.run([sys.executable, "-m", "jpegtorch.cli.main", "encode",
                             str(tmp_path / "x.png")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
