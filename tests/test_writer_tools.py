"""The writer against libjpeg-turbo's command-line tools (Debian libjpeg-turbo-progs,
jpeginfo): cjpeg's bytes for custom tables, RGB and options; every file we
write passes ``djpeg -strict`` and ``jpeginfo -c``. Skipped when a tool is missing."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_sample, synthetic, to_chw
from jpegtorch.formats import qtables
from jpegtorch.formats.jfif_writer import encode_jpeg, write_coefficients
from PIL import Image

import jpegtorch
from jpegtorch.coefficients import Coefficients

CJPEG = shutil.which("cjpeg")
DJPEG = shutil.which("djpeg")
JPEGINFO = shutil.which("jpeginfo")
JPEGTRAN = shutil.which("jpegtran")
needs_cjpeg = pytest.mark.skipif(CJPEG is None, reason="cjpeg (libjpeg-turbo-progs) not installed")
needs_djpeg = pytest.mark.skipif(DJPEG is None, reason="djpeg (libjpeg-turbo-progs) not installed")
needs_jpeginfo = pytest.mark.skipif(JPEGINFO is None, reason="jpeginfo not installed")
CJPEG_SAMPLE = {"4:4:4": "1x1", "4:2:2": "2x1", "4:2:0": "2x2"}


def cjpeg(image: np.ndarray, tmp_path: Path, *args: str) -> bytes:
    """cjpeg's output for an ``[H, W, 3]``/``[H, W]`` uint8 image (given as PPM/PGM)."""
    source = tmp_path / ("in.ppm" if image.ndim == 3 else "in.pgm")
    Image.fromarray(image).save(source)
    result = subprocess.run([CJPEG, *args, str(source)], capture_output=True, check=True)
    return result.stdout


def random_tables(seed: int, high: int = 255) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(1, high + 1, 64)) for _ in range(2)]


@needs_cjpeg
@pytest.mark.parametrize("quality", [5, 30, 50, 75, 95, 100])
def test_qtables_file_matches_cjpeg(quality: int, tmp_path: Path) -> None:
    image = load_sample("kodim23_256x192.png")
    path = tmp_path / "tables.txt"
    qtables.write_qtables(path, random_tables(quality), comment="random tables")
    for subsampling in ("4:4:4", "4:2:0"):
        expected = cjpeg(image, tmp_path, "-baseline", "-qtables", str(path), "-quality",
                         str(quality), "-sample", CJPEG_SAMPLE[subsampling])
        ours = encode_jpeg(to_chw(image), quality, subsampling=subsampling, tables=path)
        assert ours == expected


@needs_cjpeg
def test_qtables_edge_cases_match_cjpeg(tmp_path: Path) -> None:
    image = load_sample("kodim01_233x151.png")
    # One table only (chroma keeps Annex K); values above 255 (clamped by
    # -baseline); zeros (raised to 1); three tables (the third unused).
    cases = [
        [random_tables(1)[0]],
        random_tables(2, high=2000),
        [(0,) * 64, tuple(range(64))],
        [*random_tables(3), tuple(range(1, 65))],
    ]
    for n, tables in enumerate(cases):
        path = tmp_path / f"t{n}.txt"
        qtables.write_qtables(path, tables)
        for quality in (20, 50, 90):
            expected = cjpeg(image, tmp_path, "-baseline", "-qtables", str(path), "-quality",
                             str(quality))
            assert encode_jpeg(to_chw(image), quality, tables=str(path)) == expected
        gray = image[..., 2].copy()
        expected = cjpeg(gray, tmp_path, "-baseline", "-qtables", str(path), "-quality", "60")
        assert encode_jpeg(to_chw(gray), 60, tables=path) == expected


@needs_cjpeg
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_cjpeg_options_match(subsampling: str, tmp_path: Path) -> None:
    image = synthetic(67, 93, seed=11)
    sample = CJPEG_SAMPLE[subsampling]
    x = to_chw(image)
    for quality, extra, kwargs in [
        (85, ["-optimize"], dict(optimize=True)),
        (60, ["-restart", "5B"], dict(restart_interval=5)),
        (40, ["-optimize", "-restart", "1B"], dict(optimize=True, restart_interval=1)),
    ]:
        expected = cjpeg(image, tmp_path, "-baseline", "-quality", str(quality), "-sample",
                         sample, *extra)
        assert encode_jpeg(x, quality, subsampling=subsampling, **kwargs) == expected


@needs_cjpeg
@pytest.mark.parametrize("quality", [10, 75, 100])
def test_rgb_coefficients_match_cjpeg_rgb(quality: int, tmp_path: Path) -> None:
    """Colour "rgb" (no colour transform): Adobe APP14, components 'R', 'G', 'B'."""
    image = load_sample("kodim23_256x192.png")
    planes = [jpegtorch.encode(to_chw(image[..., c].copy()), quality) for c in range(3)]
    rgb = Coefficients(
        blocks=tuple(p.blocks[0] for p in planes),
        qtables=torch.cat([p.qtables for p in planes], dim=1),
        sampling=((1, 1),) * 3, size=planes[0].size, color="rgb",
        component_ids=(ord("R"), ord("G"), ord("B")), qtable_slots=(0, 0, 0),
    )
    for optimize in (False, True):
        args = ["-rgb", "-baseline", "-quality", str(quality)] + (["-optimize"] * optimize)
        assert write_coefficients(rgb, optimize=optimize) == cjpeg(image, tmp_path, *args)


@pytest.mark.skipif(JPEGTRAN is None, reason="jpegtran (libjpeg-turbo-progs) not installed")
@pytest.mark.parametrize("subsampling", [0, 2])
def test_progressive_to_baseline_matches_jpegtran(subsampling: int) -> None:
    """Coefficients read from a progressive file, written as baseline: jpegtran's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(load_sample("kodim01_233x151.png")).save(
        buffer, "JPEG", quality=85, progressive=True, subsampling=subsampling)
    progressive = buffer.getvalue()
    coefficients = jpegtorch.read_coefficients(progressive)
    for args, kwargs in [([], {}), (["-optimize"], dict(optimize=True)),
                         (["-restart", "2B"], dict(restart_interval=2))]:
        expected = subprocess.run([JPEGTRAN, "-copy", "none", *args], input=progressive,
                                  capture_output=True, check=True).stdout
        assert write_coefficients(coefficients, **kwargs) == expected


def our_files() -> list[tuple[str, bytes]]:
    """A spread of files we write: sizes, samplings, gray, qualities, options."""
    files = []
    photo = load_sample("kodim01_233x151.png")
    noise = synthetic(31, 45, seed=9, kind="noise")
    for name, image in [("photo", photo), ("noise", noise), ("tiny", synthetic(1, 1)),
                        ("odd", synthetic(17, 13, seed=2))]:
        for subsampling in ("4:4:4", "4:2:2", "4:2:0"):
            for quality, optimize, restart in [(1, False, 0), (75, True, 3), (100, False, 1),
                                               (90, True, 0)]:
                data = encode_jpeg(to_chw(image), quality, subsampling=subsampling,
                                   optimize=optimize, restart_interval=restart)
                files.append((f"{name}-{subsampling}-q{quality}-o{int(optimize)}-r{restart}",
                              data))
        gray = image[..., 0].copy()
        for quality, optimize, restart in [(50, False, 0), (95, True, 2)]:
            files.append((f"{name}-gray-q{quality}", encode_jpeg(
                to_chw(gray), quality, optimize=optimize, restart_interval=restart)))
    return files


@needs_djpeg
def test_every_file_passes_djpeg_strict(tmp_path: Path) -> None:
    for name, data in our_files():
        result = subprocess.run([DJPEG, "-strict", "-outfile", str(tmp_path / "out.pnm")],
                                input=data, capture_output=True)
        assert result.returncode == 0 and not result.stderr, (name, result.stderr)
        # and decodes to what Pillow decodes
        djpeg_pixels = np.array(Image.open(tmp_path / "out.pnm"))
        np.testing.assert_array_equal(djpeg_pixels, np.array(Image.open(io.BytesIO(data))))


@needs_jpeginfo
def test_every_file_passes_jpeginfo(tmp_path: Path) -> None:
    paths = []
    for n, (_, data) in enumerate(our_files()):
        path = tmp_path / f"{n:03d}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    result = subprocess.run([JPEGINFO, "-c", *paths], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(paths)
    assert all(line.rstrip().endswith("OK") for line in lines), result.stdout
