"""``jtorch decode``: outputs equal to Pillow's pixels, batch / stdin / stdout
conventions, atomic outputs, strict and lenient corrupt files, the container hook."""

from __future__ import annotations

import io
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from jpegtorch.cli.main import cli
from PIL import Image

DATA = Path(__file__).resolve().parent / "data" / "jpeg"
GOOD = DATA / "generated/gen_420_q75.jpg"
GRAY = DATA / "generated/gen_gray.jpg"
TRUNCATED = DATA / "generated/bad_truncated_50pct.jpg"


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["decode", *args], input=input, catch_exceptions=False)


def pillow_array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_decode_to_png_equals_pillow(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = run(str(GOOD), "-o", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert np.array_equal(np.asarray(im), pillow_array(GOOD))


def test_default_output_beside_input_and_gray(tmp_path: Path) -> None:
    src = tmp_path / "g.jpg"
    src.write_bytes(GRAY.read_bytes())
    assert run(str(src)).exit_code == 0
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "L" and np.array_equal(np.asarray(im), pillow_array(GRAY))


@pytest.mark.parametrize("name, fmt", [("x.bmp", "BMP"), ("x.tif", "TIFF"), ("x.ppm", "PPM"),
                                       ("x.webp", "WEBP")])
def test_format_from_extension(tmp_path: Path, name: str, fmt: str) -> None:
    out = tmp_path / name
    assert run(str(GOOD), "-o", str(out)).exit_code == 0
    with Image.open(out) as im:
        assert im.format == fmt


def test_format_option_and_unknown_extension(tmp_path: Path) -> None:
    out = tmp_path / "raw.out"
    result = run(str(GOOD), "-o", str(out))
    assert result.exit_code == 2 and "cannot write .out" in result.output
    assert run(str(GOOD), "-o", str(out), "--format", "bmp").exit_code == 0
    assert out.read_bytes()[:2] == b"BM"


def test_stdin_to_stdout() -> None:
    result = CliRunner().invoke(cli, ["decode", "-", "-o", "-"], input=GOOD.read_bytes())
    assert result.exit_code == 0
    png = result.stdout_bytes
    assert png.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pillow_array(GOOD))


def test_batch_goes_on_past_bad_files(tmp_path: Path) -> None:
    srcs = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        srcs.append(tmp_path / name)
    srcs[0].write_bytes(GOOD.read_bytes())
    srcs[1].write_bytes(b"GIF89a not a jpeg")
    srcs[2].write_bytes(GRAY.read_bytes())
    out = tmp_path / "out"
    result = run(*map(str, srcs), "-o", str(out))
    assert result.exit_code == 1
    assert f"jtorch: {srcs[1]}: not a JPEG file" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]


def test_corrupt_strict_fails_without_output_lenient_warns(tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    result = run(str(TRUNCATED), "-o", str(out))
    assert result.exit_code == 1
    assert "corrupt JPEG data" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    result = run(str(TRUNCATED), "-o", str(out), "--lenient")
    assert result.exit_code == 0
    assert "jtorch: warning:" in result.output and "premature end" in result.output
    assert out.exists()
    quiet = run(str(TRUNCATED), "-o", str(tmp_path / "q.png"), "--lenient", "-Q")
    assert quiet.exit_code == 0 and "warning" not in quiet.output


def test_max_pixels_and_unsupported(tmp_path: Path) -> None:
    result = run(str(GOOD), "-o", str(tmp_path / "x.png"), "--max-pixels", "1000")
    assert result.exit_code == 1 and "exceeds the limit of 1000 pixels" in result.output
    assert "raise it with --max-pixels" in result.output  # the option, not the library's name
    for args in (["-F", "bmp"], ["--auto-orient"]):  # the other decode paths say it too
        result = run(str(GOOD), "-o", str(tmp_path / "x.bmp"), "--max-pixels", "1000", *args)
        assert result.exit_code == 1 and "raise it with --max-pixels" in result.output
    packed = tmp_path / "x.jtc"  # a recompressed JPEG: restoring it checks the limit too
    result = CliRunner().invoke(cli, ["encode", str(GOOD), "--codec", "recompress", "-o",
                                      str(packed)])
    assert result.exit_code == 0, result.output
    for target in ("x.jpg", "x.png"):
        result = run(str(packed), "-o", str(tmp_path / target), "--max-pixels", "1000")
        assert result.exit_code == 1 and "raise it with --max-pixels" in result.output
    packed.unlink()
    result = run(str(DATA / "generated/thor_hierarchical_y2.jpg"), "-o", str(tmp_path / "y.png"))
    assert result.exit_code == 1 and "hierarchical JPEG" in result.output
    assert not any(tmp_path.iterdir())


def test_refuses_to_overwrite_input_and_existing_files(tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(GOOD.read_bytes())
    result = run(str(src), "-o", str(src))
    assert result.exit_code == 1 and "refusing to overwrite the input" in result.output
    result = run(str(src), "-o", str(src), "--force")  # --force never replaces an input
    assert result.exit_code == 1 and src.read_bytes() == GOOD.read_bytes()
    (tmp_path / "b.png").write_bytes(b"old")
    for extra in ([], ["--no-clobber"]):  # refusing is the default; the old flag is a no-op
        result = run(str(src), "-o", str(tmp_path / "b.png"), *extra)
        assert result.exit_code == 1 and (tmp_path / "b.png").read_bytes() == b"old"
        assert "b.png exists (use -f/--force to replace it)" in result.stderr
    result = run(str(src), "-o", str(tmp_path / "b.png"), "-f")
    assert result.exit_code == 0 and (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    # beside the input: a same-stem file that exists is left alone
    (tmp_path / "a.png").write_bytes(b"precious")
    result = run(str(src))
    assert result.exit_code == 1 and (tmp_path / "a.png").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png", "b.png"]


def test_missing_file_and_empty_stdin() -> None:
    result = run("/nonexistent/x.jpg", "-o", "-")
    assert result.exit_code == 1 and "no such file" in result.output
    result = CliRunner().invoke(cli, ["decode", "-", "-o", "-"], input=b"")
    assert result.exit_code == 1 and "not a JPEG file" in result.output


def test_container_hook_dispatches_on_magic(tmp_path: Path, monkeypatch) -> None:
    fake = types.ModuleType("jpegtorch.formats.container")
    fake.MAGIC = b"JTC\x00"  # type: ignore[attr-defined]
    fake.decode = lambda data, **limits: torch.full((3, 4, 5), 7, dtype=torch.uint8)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jpegtorch.formats.container", fake)
    src = tmp_path / "x.jpg"  # the extension does not matter
    src.write_bytes(b"JTC\x00payload")
    assert run(str(src), "-o", str(tmp_path / "x.png")).exit_code == 0
    assert np.asarray(Image.open(tmp_path / "x.png")).shape == (4, 5, 3)
    src.write_bytes(b"XYZ\x00payload")
    result = run(str(src), "-o", str(tmp_path / "y.png"))
    assert result.exit_code == 1 and "not a JPEG file" in result.output


def test_help_does_not_import_torch() -> None:
    code = ("import sys; from click.testing import CliRunner; from jpegtorch.cli.main import cli;"
            "r = CliRunner().invoke(cli, ['decode', '--help']); assert r.exit_code == 0;"
            "r = CliRunner().invoke(cli, ['info', '--help']); assert r.exit_code == 0;"
            "print('torch' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_jtc_files_go_to_the_learned_decoder(tmp_path: Path, monkeypatch) -> None:
    container = pytest.importorskip("jpegtorch.formats.container")
    codec = pytest.importorskip("jpegtorch.learned.codec")
    calls = []

    def fake_decode(data: bytes, *, model=None, device=None, max_pixels=None, **limits):
        calls.append((model, max_pixels))
        if data.endswith(b"bad"):
            from jpegtorch import JPEGError

            raise JPEGError("corrupt .jtc header (CRC32 mismatch)")
        return torch.full((1, 6, 7), 99, dtype=torch.uint8)

    monkeypatch.setattr(codec, "decode_image", fake_decode)
    src = tmp_path / "image.bin"
    src.write_bytes(container.MAGIC + b"\x01payload")
    assert run(str(src), "-o", str(tmp_path / "a.png"), "--model", "w.pt").exit_code == 0
    assert np.asarray(Image.open(tmp_path / "a.png")).shape == (6, 7)
    assert calls == [("w.pt", 89478485)]  # the pixel limit reaches the .jtc decoder
    src.write_bytes(container.MAGIC + b"\x01bad")
    result = run(str(src), "-o", str(tmp_path / "b.png"))
    assert result.exit_code == 1 and "corrupt .jtc header" in result.output
    assert run(str(GOOD), "-o", str(tmp_path / "c.png"), "--model", "w.pt").exit_code == 0
