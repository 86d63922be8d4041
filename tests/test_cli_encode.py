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
    ours = (out / "second.jpg").read_bytes()
    # a BMP's resolution becomes the JFIF density in dots/cm, as cjpeg (rdbmp.c) does
    assert ours[13:18] == b"\x02\x00\x25\x00\x25"  # 3780 px/m = 37 dots/cm
    assert ours[:13] + ours[18:] == (lambda b: b[:13] + b[18:])(pillow_bytes(Image.open(second)))
    if CJPEG is not None:
        assert ours == subprocess.run([CJPEG, str(second)], capture_output=True).stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("jtorch: summary: 4 files, 2 encoded, 2 failed, ")
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
        dpi = Image.open(source).info.get("dpi")  # TIFF's resolution is kept (metadata)
        assert data == pillow_bytes(expected, **({"dpi": dpi} if dpi else {})), name
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


@pytest.mark.parametrize("args", [["-q", "0"], ["-q", "101"], ["--subsampling", "4:2:1"],
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


# --- deep samples: 16-bit PNG, PGM/PPM with any maxval, scaled as cjpeg does --------------


def _png16(samples: np.ndarray, *, interlace: bool) -> bytes:
    """A 16-bit PNG written here (not by the reader under test): rows use the five
    filter types in turn; Adam7 when ``interlace``."""
    import struct
    import zlib

    height, width, channels = samples.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    passes = ([(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
               (1, 0, 2, 2), (0, 1, 1, 2)] if interlace else [(0, 0, 1, 1)])
    raw = bytearray()
    row_index = 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        prev = np.zeros(sub.shape[1] * bpp, np.int32)
        for row in sub:
            cur = np.frombuffer(row.astype(">u2").tobytes(), np.uint8).astype(np.int32)
            kind = row_index % 5
            row_index += 1
            left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
            upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
            if kind == 0:
                pred = np.zeros_like(cur)
            elif kind == 1:
                pred = left
            elif kind == 2:
                pred = prev
            elif kind == 3:
                pred = (left + prev) // 2
            else:
                p = left + prev - upleft
                pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
                pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            raw += bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes()
            prev = cur

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"gAMA", b"\0\0\xb1\x8f")
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png16_reader_matches_the_samples_and_opencv(interlace: bool, channels: int) -> None:
    from jpegtorch.formats import png16

    rng = np.random.default_rng(channels)
    samples = rng.integers(0, 65536, (13, 22, channels), dtype=np.uint16)
    samples[:, :4] = 65535  # runs of 0xFF bytes
    data = _png16(samples, interlace=interlace)
    assert png16.is_deep_png(data)
    assert np.array_equal(png16.read_samples(data), samples)
    cv2 = pytest.importorskip("cv2")
    if channels in (3, 4):
        theirs = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        order = [2, 1, 0] if channels == 3 else [2, 1, 0, 3]
        assert np.array_equal(theirs[:, :, order], samples)
    scaled, alpha = png16.read_scaled(data)
    assert alpha == (channels in (2, 4))
    color = samples[:, :, :3] if channels >= 3 else samples[:, :, :1]
    expected = (color.astype(np.int64) * 255 + 32767) // 65535
    assert np.array_equal(scaled, expected.transpose(2, 0, 1))


def test_png16_damaged_files_are_one_line_errors(tmp_path: Path) -> None:
    data = _png16(np.zeros((8, 8, 3), np.uint16), interlace=False)
    cases = {"truncated.png": data[: len(data) - 30],
             "crc.png": data[:60] + bytes([data[60] ^ 1]) + data[61:]}  # in IDAT
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        result = run(str(tmp_path / name), "-o", str(tmp_path / "x.jpg"))
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, name
        assert "Traceback" not in result.output and not (tmp_path / "x.jpg").exists()
    (tmp_path / "good.png").write_bytes(data)
    result = run(str(tmp_path / "good.png"), "-o", str(tmp_path / "x.jpg"), "--max-pixels", "10")
    assert result.exit_code == 1 and "--max-pixels" in result.stderr


@pytest.mark.skipif(CJPEG is None, reason="cjpeg not installed")
def test_deep_inputs_encode_as_cjpeg_does(tmp_path: Path) -> None:
    """16-bit RGB PNG (plain and interlaced) == cjpeg on the same samples as a 16-bit
    PPM; PGM/PPM with maxval 1023, 1000, 300 and 15 (binary and plain) == cjpeg."""
    rng = np.random.default_rng(5)
    samples = rng.integers(0, 65536, (29, 37, 3), dtype=np.uint16)
    ppm = tmp_path / "deep.ppm"
    ppm.write_bytes(b"P6\n37 29\n65535\n" + samples.astype(">u2").tobytes())

    def cjpeg(path: Path) -> bytes:
        return subprocess.run([CJPEG, "-baseline", "-quality", "85", str(path)],
                              capture_output=True, check=True).stdout

    for interlace in (False, True):
        source = tmp_path / f"deep{int(interlace)}.png"
        source.write_bytes(_png16(samples, interlace=interlace))
        result = run(str(source), "-o", str(tmp_path / "out.jpg"), "-q", "85", "-f")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "out.jpg").read_bytes() == cjpeg(ppm)
    cases = {
        "a.ppm": b"P6\n# comment\n37 29\n1000\n" + (samples % 1001).astype(">u2").tobytes(),
        "b.pgm": b"P5 37 29 1023\n" + (samples[:, :, 0] % 1024).astype(">u2").tobytes(),
        "c.ppm": b"P6\n37 29\n300\n" + (samples % 301).astype(">u2").tobytes(),
        "d.ppm": b"P6\n37 29\n15\n" + (samples % 16).astype(np.uint8).tobytes(),
        "e.ppm": b"P3\n37 29\n1000\n" + " ".join(str(v) for v in (samples % 1001).ravel()
                                                 ).encode() + b"\n",
    }
    for name, data in cases.items():
        source = tmp_path / name
        source.write_bytes(data)
        result = run(str(source), "-o", str(tmp_path / "out.jpg"), "-q", "85", "-f")
        assert result.exit_code == 0, (name, result.output)
        assert (tmp_path / "out.jpg").read_bytes() == cjpeg(source), name
    bad = tmp_path / "bad.pgm"
    bad.write_bytes(b"P5\n2 1\n100\n" + bytes([5, 200]))  # 200 > maxval
    result = run(str(bad), "-o", str(tmp_path / "bad.jpg"))
    assert result.exit_code == 1 and "above maxval" in result.stderr
