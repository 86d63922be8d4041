"""Progressive and multi-scan output (formats/progressive.py, formats/scans.py) against
libjpeg-turbo: Pillow's ``progressive=True`` (libjpeg-turbo 3.x), ``cjpeg -progressive``,
``cjpeg -scans`` and ``jpegtran`` (Debian's libjpeg-turbo 2.1); every file decodes
without a warning in ``djpeg -strict``, ``jpeginfo -c``, Pillow, OpenCV and our reader.
The cjpeg/jpegtran/djpeg/jpeginfo tests skip when the tool is missing."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_sample, synthetic, to_chw
from jpegtorch.formats import scans as scanlib
from jpegtorch.formats.jfif_writer import encode_jpeg, write_coefficients
from jpegtorch.formats.progressive import encode_scans
from jpegtorch.formats.scans import Scan
from PIL import Image, ImageFile

import jpegtorch
from jpegtorch import JPEGError
from jpegtorch.coefficients import Coefficients

CJPEG = shutil.which("cjpeg")
DJPEG = shutil.which("djpeg")
JPEGTRAN = shutil.which("jpegtran")
JPEGINFO = shutil.which("jpeginfo")
needs_cjpeg = pytest.mark.skipif(CJPEG is None, reason="cjpeg (libjpeg-turbo-progs) not installed")
needs_jpegtran = pytest.mark.skipif(JPEGTRAN is None, reason="jpegtran not installed")
PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
CJPEG_SAMPLE = {"4:4:4": "1x1", "4:2:2": "2x1", "4:2:0": "2x2"}
SUBSAMPLINGS = list(PIL_SUBSAMPLING)

# Scripts that exercise every rule: spectral selection only, deep successive
# approximation, per-component DC scans, partial interleaving, single-coefficient
# bands, DC only (libjpeg requires only some DC of each component), comments and
# cjpeg's free punctuation.
SCRIPTS = {
    "spectral": "0 1 2: 0 0 0 0; 0: 1 8 0 0; 0: 9 63 0 0; 1: 1 63 0 0; 2: 1 63 0 0;",
    "deep-sa": """
        # DC in four bits, luma AC in five
        0,1,2: 0-0, 0, 3;
        0: 1-63, 0, 4;   1: 1-63, 0, 2;   2: 1-63, 0, 2;
        0: 1-63, 4, 3;   0: 1-63, 3, 2;   0: 1-63, 2, 1;   0: 1-63, 1, 0;
        1: 1-63, 2, 1;   1: 1-63, 1, 0;   2: 1-63, 2, 1;   2: 1-63, 1, 0;
        0,1,2: 0-0, 3, 2;   0,1,2: 0-0, 2, 1;   0,1,2: 0-0, 1, 0
    """,
    "dc-per-component": "0: 0 0 0 0; 1: 0 0 0 0; 2: 0 0 0 0; 2: 1 63 0 0; 0: 1 63 0 0;"
                        " 1: 1 63 0 0;",
    "chroma-interleaved": "0: 0 0 0 1; 1 2: 0 0 0 1; 0: 1 63 0 1; 1: 1 63 0 0; 2: 1 63 0 0;"
                          " 0: 1 63 1 0; 0: 0 0 1 0; 1 2: 0 0 1 0;",
    "single-coefficients": "0 1 2: 0 0 0 0; 0: 1 1 0 0; 0: 2 2 0 1; 0: 3 63 0 0; 1: 1 63 0 0;"
                           " 2: 1 63 0 0; 0: 2 2 1 0;",
    "dc-only": "0 1 2: 0 0 0 0;",
    "sequential-split": "0; 1; 2;",
    "sequential-pairs": "2; 0 1;",
    "sequential-one": "0 1 2;",
}


def pillow_progressive(array: np.ndarray, quality: int = 75, subsampling: str = "4:2:0",
                       **options) -> bytes:
    """libjpeg-turbo's progressive file, written by Pillow (the oracle)."""
    options = {"quality": quality, "progressive": True, **options}
    if array.ndim == 3:
        options["subsampling"] = PIL_SUBSAMPLING[subsampling]
    buffer = io.BytesIO()
    saved = ImageFile.MAXBLOCK
    ImageFile.MAXBLOCK = 1 << 24
    try:
        Image.fromarray(array).save(buffer, "JPEG", **options)
    finally:
        ImageFile.MAXBLOCK = saved
    return buffer.getvalue()


def ours(array: np.ndarray, quality: int = 75, subsampling: str = "4:2:0", **kwargs) -> bytes:
    kwargs.setdefault("progressive", True)
    return encode_jpeg(to_chw(array), quality, subsampling=subsampling, **kwargs)


def assert_same_bytes(a: bytes, b: bytes, what: str = "") -> None:
    if a != b:
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        pytest.fail(f"{what}: files differ: {len(a)} vs {len(b)} bytes, first difference at "
                    f"{first}")


def cjpeg(image: np.ndarray, tmp_path: Path, *args: str) -> bytes:
    source = tmp_path / ("in.ppm" if image.ndim == 3 else "in.pgm")
    Image.fromarray(image).save(source)
    return subprocess.run([CJPEG, *args, str(source)], capture_output=True, check=True).stdout


def jpegtran(data: bytes, *args: str) -> bytes:
    return subprocess.run([JPEGTRAN, "-copy", "none", *args], input=data, capture_output=True,
                          check=True).stdout


def segments(data: bytes) -> list[tuple[int, bytes]]:
    """``(marker, payload)`` of a file's segments, in order (entropy-coded data skipped)."""
    out, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF
        code = data[pos + 1]
        if code == 0xD9:
            out.append((code, b""))
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((code, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if code == 0xDA:  # skip the entropy-coded segment up to the next marker
            while not (data[pos] == 0xFF and data[pos + 1] not in (0x00, *range(0xD0, 0xD8))):
                pos += 1
    return out


def markers(data: bytes) -> list[int]:
    return [code for code, _ in segments(data)]


# --------------------------------------------------------------------------- Pillow


@pytest.mark.parametrize("subsampling", [*SUBSAMPLINGS, "gray"])
def test_every_quality_matches_pillow(subsampling: str) -> None:
    image = synthetic(40, 57, seed=3)
    if subsampling == "gray":
        image, subsampling = image[..., 1].copy(), "4:2:0"
    for quality in range(1, 101):
        assert_same_bytes(ours(image, quality, subsampling),
                          pillow_progressive(image, quality, subsampling), f"q{quality}")


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_photo_matches_pillow_with_and_without_optimize(subsampling: str) -> None:
    image = load_sample("kodim23_256x192.png")
    for quality in (10, 50, 75, 90, 100):
        expected = pillow_progressive(image, quality, subsampling)
        assert_same_bytes(ours(image, quality, subsampling), expected, f"q{quality}")
        # libjpeg forces optimal tables in progressive mode: optimize changes nothing
        assert_same_bytes(ours(image, quality, subsampling, optimize=True), expected)
        assert pillow_progressive(image, quality, subsampling, optimize=True) == expected
    gray = image[..., 0].copy()
    assert_same_bytes(ours(gray, 85), pillow_progressive(gray, 85), "gray")


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (8, 8), (15, 17), (16, 16),
                                  (23, 41), (217, 333)])
def test_odd_sizes_match_pillow(size: tuple[int, int]) -> None:
    image = synthetic(*size, seed=sum(size))
    for subsampling in SUBSAMPLINGS:
        for quality in (75, 95):
            assert_same_bytes(ours(image, quality, subsampling),
                              pillow_progressive(image, quality, subsampling),
                              f"{size} {subsampling} q{quality}")
    gray = image[..., 2].copy()
    assert_same_bytes(ours(gray, 90), pillow_progressive(gray, 90), f"{size} gray")


@pytest.mark.parametrize("restart", [1, 2, 3, 7, 8, 9, 50, 65535])
def test_restart_intervals_match_pillow(restart: int) -> None:
    image = load_sample("kodim01_233x151.png")
    for subsampling in SUBSAMPLINGS:
        data = ours(image, 75, subsampling, restart_interval=restart)
        assert_same_bytes(data, pillow_progressive(image, 75, subsampling,
                                                   restart_marker_blocks=restart),
                          subsampling)
        # one DRI, before the first scan; RSTn when a scan has more MCUs than the interval
        assert data.count(b"\xff\xdd\x00\x04") == 1
        assert (b"\xff\xd0" in data) == (restart < 30 * 19)
    gray = image[..., 0].copy()
    assert_same_bytes(ours(gray, 60, restart_interval=restart),
                      pillow_progressive(gray, 60, restart_marker_blocks=restart), "gray")


@pytest.mark.parametrize("rows", [1, 2, 5, 300])
def test_restart_rows_match_pillow(rows: int) -> None:
    """Pillow's restart_marker_rows (libjpeg's restart_in_rows): the interval is recomputed
    per scan (MCUs per row differ between interleaved and single-component scans), so a
    progressive file carries a DRI before each scan where it changes."""
    image = load_sample("kodim01_233x151.png")
    for progressive in (False, True):
        for subsampling in SUBSAMPLINGS:
            data = ours(image, 75, subsampling, progressive=progressive, restart_rows=rows)
            expected = pillow_progressive(image, 75, subsampling, progressive=progressive,
                                          restart_marker_rows=rows)
            assert_same_bytes(data, expected, f"{subsampling} progressive={progressive}")
            dri = markers(data).count(0xDD)
            assert dri == (6 if progressive and subsampling != "4:4:4" else 1)
        gray = image[..., 0].copy()
        assert_same_bytes(ours(gray, 60, progressive=progressive, restart_rows=rows),
                          pillow_progressive(gray, 60, progressive=progressive,
                                             restart_marker_rows=rows), "gray")
    with pytest.raises(JPEGError, match="not both"):
        ours(image, 75, restart_rows=rows, restart_interval=3)


def test_eobrun_longer_than_0x7fff_matches_pillow() -> None:
    """A flat image: every AC band is empty, so EOBRUN reaches 0x7FFF and is forced out."""
    flat = np.full((1456, 1456), 97, dtype=np.uint8)  # 182 x 182 = 33124 blocks
    flat[700:760, 700:760] = 180
    assert_same_bytes(ours(flat, 50), pillow_progressive(flat, 50), "flat gray")


def test_extreme_coefficients_match_pillow() -> None:
    """Black/white 8x8 checkerboard at q100 (DC differences of category 11) and noise."""
    yy, xx = np.mgrid[:48, :64]
    board = (((yy // 8 + xx // 8) % 2) * 255).astype(np.uint8)
    assert_same_bytes(ours(board, 100), pillow_progressive(board, 100), "checkerboard")
    noise = synthetic(45, 61, seed=5, kind="noise")
    for subsampling in SUBSAMPLINGS:
        assert_same_bytes(ours(noise, 100, subsampling),
                          pillow_progressive(noise, 100, subsampling), f"noise {subsampling}")


def test_file_layout_is_libjpegs() -> None:
    """SOF2 and, before each scan, the DHTs of the tables it uses (DC refinement: none)."""
    data = ours(synthetic(20, 30), 75)
    assert data[:2] == b"\xff\xd8"
    seq = markers(data)
    assert seq[:4] == [0xE0, 0xDB, 0xDB, 0xC2] and seq[-1] == 0xD9
    scans = []  # the DHT classes/slots sent before each SOS
    pending: list[int] = []
    for code, payload in segments(data):
        if code == 0xC4:
            pending.append(payload[0])
        if code == 0xDA:
            scans.append(pending)
            pending = []
    assert scans == [[0x00, 0x01], [0x10], [0x11], [0x11], [0x10], [0x10], [], [0x11], [0x11],
                     [0x10]]


# --------------------------------------------------------------------------- cjpeg, jpegtran


@needs_cjpeg
@pytest.mark.parametrize("subsampling", [*SUBSAMPLINGS, "gray"])
def test_cjpeg_progressive_matches(subsampling: str, tmp_path: Path) -> None:
    image = load_sample("kodim01_233x151.png")
    args = ["-sample", CJPEG_SAMPLE.get(subsampling, "")]
    if subsampling == "gray":
        image, subsampling, args = image[..., 1].copy(), "4:2:0", []
    x = to_chw(image)
    for quality, extra, kwargs in [
        (5, ["-baseline"], {}),  # cjpeg clamps the tables to 8 bits only with -baseline
        (30, [], {}),
        (75, ["-optimize"], dict(optimize=True)),
        (90, ["-restart", "3B"], dict(restart_interval=3)),
        (60, ["-restart", "2"], dict(restart_rows=2)),
        (100, [], {}),
    ]:
        expected = cjpeg(image, tmp_path, "-progressive", "-quality", str(quality), *args,
                         *extra)
        assert_same_bytes(encode_jpeg(x, quality, subsampling=subsampling, progressive=True,
                                      **kwargs), expected, f"q{quality} {extra}")


@needs_cjpeg
def test_plain_cjpeg_16_bit_tables_match_without_force_baseline(tmp_path: Path) -> None:
    """Plain cjpeg (no -baseline) keeps quality-scaled entries above 255 (16-bit DQT;
    SOF1 when sequential): force_baseline=False / --no-force-baseline gives its bytes."""
    image = load_sample("kodim01_233x151.png")
    x = to_chw(image)
    for quality in (1, 5, 10, 23, 24, 60):
        for progressive, args in ((False, []), (True, ["-progressive"])):
            expected = cjpeg(image, tmp_path, "-quality", str(quality), *args)
            data = encode_jpeg(x, quality, progressive=progressive, force_baseline=False)
            assert_same_bytes(data, expected, f"q{quality} {args}")
            sixteen = b"\xff\xdb\x00\x83\x10" in data
            assert sixteen == (quality < 24)
            assert (0xC2 if progressive else 0xC1 if sixteen else 0xC0) in markers(data)
    gray = image[..., 0].copy()
    assert_same_bytes(encode_jpeg(to_chw(gray), 3, progressive=True, force_baseline=False),
                      cjpeg(gray, tmp_path, "-quality", "3", "-progressive"), "gray")
    tables = jpegtorch.quality_to_tables(1, force_baseline=False)
    assert int(tables.max()) == (121 * 5000 + 50) // 100
    assert int(jpegtorch.quality_to_tables(1).max()) == 255


@needs_cjpeg
def test_cjpeg_progressive_custom_tables_match(tmp_path: Path) -> None:
    from jpegtorch.formats import qtables

    image = load_sample("kodim23_256x192.png")
    rng = np.random.default_rng(7)
    path = tmp_path / "tables.txt"
    qtables.write_qtables(path, [tuple(int(v) for v in rng.integers(1, 120, 64))
                                 for _ in range(2)])
    for quality in (25, 50, 80):
        expected = cjpeg(image, tmp_path, "-progressive", "-baseline", "-qtables", str(path),
                         "-quality", str(quality))
        assert_same_bytes(encode_jpeg(to_chw(image), quality, tables=path, progressive=True),
                          expected, f"q{quality}")


@needs_cjpeg
def test_cjpeg_rgb_progressive_matches(tmp_path: Path) -> None:
    """Colour "rgb" (3 components, not YCbCr): libjpeg's all-purpose script (14 scans)."""
    image = load_sample("kodim23_256x192.png")
    planes = [jpegtorch.encode(to_chw(image[..., c].copy()), 70) for c in range(3)]
    rgb = Coefficients(
        blocks=tuple(p.blocks[0] for p in planes),
        qtables=torch.cat([p.qtables for p in planes], dim=1),
        sampling=((1, 1),) * 3, size=planes[0].size, color="rgb",
        component_ids=(ord("R"), ord("G"), ord("B")), qtable_slots=(0, 0, 0),
    )
    expected = cjpeg(image, tmp_path, "-rgb", "-progressive", "-quality", "70")
    assert_same_bytes(write_coefficients(rgb, progressive=True), expected, "rgb")
    assert len(scanlib.simple_progression(3, "rgb")) == 14


@needs_cjpeg
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_cjpeg_scans_scripts_match(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.txt"
    path.write_text(SCRIPTS[name])
    image = load_sample("kodim01_233x151.png")
    for subsampling, quality, extra, kwargs in [
        ("4:2:0", 75, [], {}),
        ("4:4:4", 95, ["-optimize"], dict(optimize=True)),
        ("4:2:2", 40, ["-restart", "2B"], dict(restart_interval=2)),
    ]:
        expected = cjpeg(image, tmp_path, "-scans", str(path), "-quality", str(quality),
                         "-sample", CJPEG_SAMPLE[subsampling], *extra)
        data = encode_jpeg(to_chw(image), quality, subsampling=subsampling, scans=path,
                           **kwargs)
        assert_same_bytes(data, expected, f"{name} {subsampling} {extra}")
        # the same script given as Scan objects
        script = scanlib.read_scan_script(path)
        assert encode_jpeg(to_chw(image), quality, subsampling=subsampling, scans=script,
                           **kwargs) == data
    assert (0xC0 if name.startswith("sequential") else 0xC2) in markers(data)


@needs_cjpeg
def test_gray_scripts_match_cjpeg(tmp_path: Path) -> None:
    gray = load_sample("kodim05_384x256.png")[..., 0].copy()
    for text in ("0: 0 0 0 2; 0: 1 63 0 3; 0: 0 0 2 1; 0: 1 63 3 2; 0: 1 63 2 1; 0: 0 0 1 0;"
                 " 0: 1 63 1 0;", "0;", "0: 0 0 0 0; 0: 1 63 0 0;"):
        path = tmp_path / "gray.txt"
        path.write_text(text)
        expected = cjpeg(gray, tmp_path, "-scans", str(path), "-quality", "88")
        assert_same_bytes(encode_jpeg(to_chw(gray), 88, scans=path), expected, text)


@needs_jpegtran
@pytest.mark.parametrize("subsampling", [0, 2])
def test_rewriting_a_baseline_file_matches_jpegtran(subsampling: int, tmp_path: Path) -> None:
    """Coefficients read from a file, written progressive / with a script: jpegtran's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(load_sample("kodim05_384x256.png")).save(buffer, "JPEG", quality=85,
                                                              subsampling=subsampling)
    baseline = buffer.getvalue()
    coefficients = jpegtorch.read_coefficients(baseline)
    assert_same_bytes(write_coefficients(coefficients, progressive=True),
                      jpegtran(baseline, "-progressive"), "-progressive")
    assert_same_bytes(write_coefficients(coefficients, progressive=True, restart_interval=5),
                      jpegtran(baseline, "-progressive", "-restart", "5B"), "-restart 5B")
    path = tmp_path / "s.txt"
    path.write_text(SCRIPTS["deep-sa"])
    assert_same_bytes(write_coefficients(coefficients, scans=path),
                      jpegtran(baseline, "-scans", str(path)), "-scans")


@needs_jpegtran
@pytest.mark.skipif(CJPEG is None, reason="cjpeg not installed")
@pytest.mark.parametrize("sample", ["1x2", "4x1", "2x2,1x2,1x1", "4x2", "1x4", "2x1,1x1,2x1"])
def test_unusual_sampling_matches_jpegtran(sample: str, tmp_path: Path) -> None:
    """Any sampling the writer takes (4:4:0, 4:1:1, mixed chroma factors): a file read
    back and rewritten progressive is jpegtran's, with restarts in MCUs or in rows."""
    baseline = cjpeg(load_sample("kodim01_233x151.png"), tmp_path, "-sample", sample,
                     "-quality", "80")
    coefficients = jpegtorch.read_coefficients(baseline)
    for args, kwargs in [(["-progressive"], dict(progressive=True)),
                         (["-progressive", "-restart", "1"], dict(progressive=True,
                                                                  restart_rows=1)),
                         (["-progressive", "-restart", "4B"], dict(progressive=True,
                                                                   restart_interval=4))]:
        assert_same_bytes(write_coefficients(coefficients, **kwargs),
                          jpegtran(baseline, *args), f"{sample} {args}")


@needs_jpegtran
def test_correction_bit_buffer_overflow_matches_jpegtran(tmp_path: Path) -> None:
    """Blocks whose AC coefficients are all +-2 or +-3: in the 1 -> 0 refinement every
    coefficient sends a correction bit and no block has a newly nonzero one, so the
    buffered bits pass 937 and libjpeg sends the EOBRUN early; also long ZRLs."""
    rng = np.random.default_rng(1)
    by, bx = 6, 10
    blocks = rng.choice(np.array([-3, -2, 2, 3]), size=(1, by, bx, 8, 8)).astype(np.int32)
    blocks[0, :3, :, 4:, :] = 0  # some bands end in long zero runs
    blocks[0, 2, 3, 7, 7] = 1  # a newly nonzero coefficient after a run > 15
    blocks[..., 0, 0] = rng.integers(-300, 300, (1, by, bx))
    coefficients = Coefficients(blocks=(torch.from_numpy(blocks),),
                                qtables=torch.ones(1, 1, 8, 8, dtype=torch.int64),
                                sampling=((1, 1),), size=(by * 8, bx * 8), color="gray")
    baseline = write_coefficients(coefficients)
    for text in ("0: 0 0 0 1; 0: 1 63 0 1; 0: 1 63 1 0; 0: 0 0 1 0;",
                 "0: 0 0 0 0; 0: 1 63 0 1; 0: 1 63 1 0;",
                 "0: 0 0 0 0; 0: 1 5 0 0; 0: 6 63 0 2; 0: 6 63 2 1; 0: 6 63 1 0;"):
        path = tmp_path / "s.txt"
        path.write_text(text)
        for extra, kwargs in [([], {}), (["-restart", "7B"], dict(restart_interval=7))]:
            assert_same_bytes(write_coefficients(coefficients, scans=path, **kwargs),
                              jpegtran(baseline, "-scans", str(path), *extra), text)


@needs_cjpeg
def test_sixteen_bit_tables_round_trip_cjpegs_bytes(tmp_path: Path) -> None:
    """cjpeg -progressive without -baseline at low quality: 16-bit DQT in an SOF2 file.
    Read back and rewritten progressive, the file is cjpeg's, byte for byte."""
    image = load_sample("kodim01_233x151.png")
    for quality in (3, 12):
        original = cjpeg(image, tmp_path, "-progressive", "-quality", str(quality))
        assert b"\xff\xdb\x00\x83\x10" in original  # a 16-bit table
        coefficients = jpegtorch.read_coefficients(original)
        assert int(coefficients.qtables.max()) > 255
        assert_same_bytes(write_coefficients(coefficients, progressive=True), original,
                          f"q{quality}")
        # and as a sequential file it is SOF1, as libjpeg writes it
        assert b"\xff\xc1" in write_coefficients(coefficients)


# --------------------------------------------------------------------------- scan scripts


def test_simple_progression_is_libjpegs() -> None:
    ycc = scanlib.simple_progression(3, "ycbcr")
    assert [str(s) for s in ycc] == [
        "0,1,2: 0-0, 0, 1;", "0: 1-5, 0, 2;", "2: 1-63, 0, 1;", "1: 1-63, 0, 1;",
        "0: 6-63, 0, 2;", "0: 1-63, 2, 1;", "0,1,2: 0-0, 1, 0;", "2: 1-63, 1, 0;",
        "1: 1-63, 1, 0;", "0: 1-63, 1, 0;"]
    gray = scanlib.simple_progression(1, "gray")
    assert [str(s) for s in gray] == ["0: 0-0, 0, 1;", "0: 1-5, 0, 2;", "0: 6-63, 0, 2;",
                                      "0: 1-63, 2, 1;", "0: 0-0, 1, 0;", "0: 1-63, 1, 0;"]
    five = scanlib.simple_progression(5, "other")  # over 4 components: DC scans per component
    assert len(five) == 30 and five[0] == Scan((0,), 0, 0, 0, 1)
    for n in (1, 3, 4, 5):
        assert scanlib.validate_scans(scanlib.simple_progression(n, "x"), n) is True


# One script in cjpeg's free syntax: any one punctuation character (after spaces)
# separates numbers, '#' comments run to the end of the line, the last ';' is optional.
SAME_SCRIPTS = ["0 1 2: 0 0 0 1; 0: 1 63 0 0", "0,1,2:0-0,0,1;0:1-63,0,0;",
                "  0 1\n2 :0 0 0 1 # comment ; 5\n;\t0 : 1 - 63 x 0 ,0 ;\n# trailing",
                "0 1 2: 0 0 0 1; 0: 1 63 0 0;\n\n"]


def test_script_text_round_trips_and_parses_like_cjpeg() -> None:
    script = scanlib.parse_scan_script(SCRIPTS["deep-sa"])
    assert script[0] == Scan((0, 1, 2), 0, 0, 0, 3) and len(script) == 15
    assert scanlib.parse_scan_script(scanlib.format_scan_script(script, "x\ny")) == script
    for text in SAME_SCRIPTS:
        assert scanlib.parse_scan_script(text) == (Scan((0, 1, 2), 0, 0, 0, 1),
                                                   Scan((0,), 1, 63, 0, 0)), text
    assert scanlib.parse_scan_script("0; 1 2") == (Scan((0,)), Scan((1, 2)))
    assert scanlib.resolve_scans([((0, 1, 2), 0, 0, 0, 1), (0, 1, 63, 0, 0), Scan(1)]) == (
        Scan((0, 1, 2), 0, 0, 0, 1), Scan((0,), 1, 63), Scan((1,)))


BAD_SYNTAX = ["0 1 2: 0 0 0 1; 0: 1,-63,0,0;", "0 1 2 3 4: 0 0 0 0;", "0: 1 63 0;",
              "0: 1 63 0 0 0;", "x;", "0;;", "0: 1 63; 0;", "0,,1;",
              "0 1 2: 0 0 0 1; foo", ";", "0:;"]


@pytest.mark.parametrize("text", BAD_SYNTAX)
def test_malformed_scripts_are_refused_with_the_line(text: str) -> None:
    with pytest.raises(JPEGError, match=r"line \d+|non-numeric|no scans"):
        scanlib.parse_scan_script(text)


@needs_cjpeg
def test_cjpeg_agrees_on_script_syntax(tmp_path: Path) -> None:
    image = synthetic(16, 16)
    source = tmp_path / "in.ppm"
    Image.fromarray(image).save(source)
    path = tmp_path / "script.txt"
    for text in BAD_SYNTAX:
        path.write_text(text)
        done = subprocess.run([CJPEG, "-scans", str(path), str(source)], capture_output=True)
        assert done.returncode != 0, text
    for text in SAME_SCRIPTS:
        path.write_text(text)
        done = subprocess.run([CJPEG, "-scans", str(path), str(source)], capture_output=True)
        assert done.returncode == 0, text
        assert done.stdout == encode_jpeg(to_chw(image), 75, scans=path), text


BAD_SCRIPTS = [
    ("0 1 2: 0 0 0 0; 0 1: 1 63 0 0;", "one component"),
    ("0: 1 63 0 0; 0 1 2: 0 0 0 0;", "before its first DC"),
    ("0 1 2: 0 0 1 0;", "Ah must be 0"),
    ("0 1 2: 0 0 0 2; 0 1 2: 0 0 2 0;", "Ah=2, Al=1"),
    ("0 1 2: 0 0 0 1; 0 1 2: 0 0 0 1;", "Ah=1, Al=0"),
    ("0 1 2: 0 0 0 11;", "Ah, Al in 0..10"),
    ("0 1 2: 0 5 0 0;", "DC and AC together"),
    ("0 1 2: 0 0 0 0; 0: 5 3 0 0;", "Ss <= Se"),
    ("0 1 2: 0 0 0 0; 0: 1 64 0 0;", "Se <= 63"),
    ("0 3: 0 0 0 0;", "no component 3"),
    ("1 0: 0 0 0 0;", "increasing"),
    ("0 0 1 2: 0 0 0 0;", "increasing"),
    ("0 1: 0 0 0 0;", "component 2 has no DC"),
    ("0 1 2; 0;", "already sent"),
    ("0 1;", "component 2 is never sent"),
    ("0 1 2; 0: 1 63 0 0;", "sequential script"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SCRIPTS)
def test_invalid_scripts_are_refused_like_libjpeg(text: str, message: str,
                                                  tmp_path: Path) -> None:
    script = scanlib.parse_scan_script(text)
    with pytest.raises(JPEGError, match=message):
        scanlib.validate_scans(script, 3)
    with pytest.raises(JPEGError, match=message):
        encode_jpeg(to_chw(synthetic(16, 16)), 75, scans=script)
    if CJPEG is not None:
        path = tmp_path / "bad.txt"
        path.write_text(text)
        source = tmp_path / "in.ppm"
        Image.fromarray(synthetic(16, 16)).save(source)
        done = subprocess.run([CJPEG, "-scans", str(path), str(source)], capture_output=True)
        assert done.returncode != 0 and done.stdout == b"", text


def test_scan_script_file_errors(tmp_path: Path) -> None:
    with pytest.raises(JPEGError, match="cannot read scan script"):
        scanlib.read_scan_script(tmp_path / "missing.txt")
    big = tmp_path / "big.txt"
    big.write_text("0 1 2: 0 0 0 0;\n" * 101)
    with pytest.raises(JPEGError, match="more than 100 scans"):
        scanlib.read_scan_script(big)
    digits = tmp_path / "digits.txt"  # hostile: 64 KiB of digits parse in linear time
    digits.write_text("1" * 65000 + ";")
    assert scanlib.read_scan_script(digits)[0].components[0] >= 10**9
    digits.write_text("1" * 70000 + ";")
    with pytest.raises(JPEGError, match="not a scan script"):
        scanlib.read_scan_script(digits)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"0;\x00\x01")
    with pytest.raises(JPEGError, match="binary"):
        scanlib.read_scan_script(binary)
    with pytest.raises(JPEGError, match="scans must be"):
        scanlib.resolve_scans(3.5)  # type: ignore[arg-type]
    with pytest.raises(JPEGError, match="integers"):
        Scan((0,), 1.0, 63)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- decoders


def progressive_files() -> list[tuple[str, bytes]]:
    files = []
    photo = load_sample("kodim01_233x151.png")
    noise = synthetic(31, 45, seed=9, kind="noise")
    for name, image in [("photo", photo), ("noise", noise), ("tiny", synthetic(1, 1)),
                        ("odd", synthetic(17, 13, seed=2))]:
        for subsampling in SUBSAMPLINGS:
            for quality, restart in [(1, 0), (75, 3), (100, 1)]:
                files.append((f"{name}-{subsampling}-q{quality}-r{restart}",
                              ours(image, quality, subsampling, restart_interval=restart)))
        files.append((f"{name}-gray", ours(image[..., 0].copy(), 90, restart_interval=2)))
        files.append((f"{name}-deep-sa", ours(image, 97, "4:4:4", scans=scanlib.
                                              parse_scan_script(SCRIPTS["deep-sa"]))))
    return files


@pytest.mark.skipif(DJPEG is None or JPEGINFO is None, reason="djpeg/jpeginfo not installed")
def test_files_pass_djpeg_strict_and_jpeginfo(tmp_path: Path) -> None:
    paths = []
    for n, (name, data) in enumerate(progressive_files()):
        result = subprocess.run([DJPEG, "-strict", "-outfile", str(tmp_path / "out.pnm")],
                                input=data, capture_output=True)
        assert result.returncode == 0 and not result.stderr, (name, result.stderr)
        np.testing.assert_array_equal(np.array(Image.open(tmp_path / "out.pnm")),
                                      np.array(Image.open(io.BytesIO(data))))
        path = tmp_path / f"{n:03d}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    result = subprocess.run([JPEGINFO, "-c", *paths], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(paths)
    assert all(" P " in line and line.rstrip().endswith("OK") for line in lines)


def test_files_decode_alike_in_pillow_opencv_and_ours() -> None:
    cv2 = pytest.importorskip("cv2")
    for name, data in progressive_files():
        pil = np.array(Image.open(io.BytesIO(data)))
        mine = jpegtorch.decode_jpeg(data).numpy()
        mine = mine[0] if mine.shape[0] == 1 else mine.transpose(1, 2, 0)
        np.testing.assert_array_equal(mine, pil, err_msg=name)
        cv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if cv.ndim == 3:
            cv = cv[:, :, ::-1]
        np.testing.assert_array_equal(cv, pil, err_msg=name)


def test_coefficients_round_trip_through_our_reader() -> None:
    image = load_sample("kodim01_233x151.png")
    for subsampling in SUBSAMPLINGS:
        coefficients = jpegtorch.encode(to_chw(image), 83, subsampling=subsampling)
        data = write_coefficients(coefficients, progressive=True)
        back = jpegtorch.read_coefficients(data)
        for c, (a, b) in enumerate(zip(coefficients.blocks, back.blocks, strict=True)):
            rows, cols = coefficients.component_blocks(c)
            assert torch.equal(a[0, :rows, :cols].to(torch.int32), b[0, :rows, :cols]), c
        # and rewriting what we read gives the same file
        assert write_coefficients(back, progressive=True) == data


# --------------------------------------------------------------------------- API


def test_int16_int32_float_and_numpy_blocks_write_the_same_file() -> None:
    image = load_sample("kodim23_256x192.png")
    coefficients = jpegtorch.encode(to_chw(image), 60)
    expected = write_coefficients(coefficients, progressive=True)
    for dtype in (torch.int16, torch.int64, torch.float32):
        other = Coefficients(blocks=tuple(b.to(dtype) for b in coefficients.blocks),
                             qtables=coefficients.qtables, sampling=coefficients.sampling,
                             size=coefficients.size, color=coefficients.color)
        assert write_coefficients(other, progressive=True) == expected, dtype
    slots = (0, 1, 1)
    script = scanlib.simple_progression(3)
    body16 = encode_scans([b[0].numpy().astype(np.int16) for b in coefficients.blocks],
                          coefficients.sampling, coefficients.size, (1, 2, 3), slots, script)
    body32 = encode_scans([b[0].numpy() for b in coefficients.blocks], coefficients.sampling,
                          coefficients.size, (1, 2, 3), slots, script)
    assert body16 == body32 and expected.endswith(body16 + b"\xff\xd9")


def test_progressive_kernels_do_not_import_torch() -> None:
    code = ("import sys, numpy as np\n"
            "from jpegtorch.formats.progressive import encode_scans\n"
            "from jpegtorch.formats.scans import simple_progression\n"
            "b = np.zeros((2, 2, 8, 8), np.int16)\n"
            "out = encode_scans([b], [(1, 1)], (16, 16), [1], [0], simple_progression(1))\n"
            "assert out.startswith(b'\\xff\\xc4') and 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_out_of_range_coefficients_name_the_scan() -> None:
    blocks = torch.zeros(1, 2, 2, 8, 8, dtype=torch.int32)
    coefficients = Coefficients(blocks=(blocks,), qtables=torch.ones(1, 1, 8, 8),
                                sampling=((1, 1),), size=(16, 16), color="gray")

    def write(script: str, block: torch.Tensor) -> bytes:
        return write_coefficients(Coefficients(
            blocks=(block,), qtables=coefficients.qtables, sampling=((1, 1),), size=(16, 16),
            color="gray"), scans=scanlib.parse_scan_script(script))

    big = blocks.clone()
    big[0, 1, 1, 0, 1] = 1024
    with pytest.raises(JPEGError, match=r"AC coefficient out of range .* scan 2 .* MCU 3"):
        write("0: 0 0 0 0; 0: 1 63 0 0;", big)
    assert write("0: 0 0 0 0; 0: 1 63 0 1;", big)  # 1024 >> 1 fits
    dc = blocks.clone()
    dc[0, 0, 1, 0, 0] = 2048
    with pytest.raises(JPEGError, match=r"DC difference out of range .* scan 1"):
        write("0: 0 0 0 0; 0: 1 63 0 0;", dc)
    assert write("0: 0 0 0 1; 0: 1 63 0 0; 0: 0 0 1 0;", dc)
    huge = blocks.clone()
    huge[0, 0, 0, 3, 3] = 40000
    with pytest.raises(JPEGError, match="16-bit JCOEF"):
        write("0: 0 0 0 0; 0: 1 63 0 10;", huge)
    with pytest.raises(JPEGError, match="cannot read scan script"):
        write_coefficients(coefficients, scans="/nonexistent/scans.txt")


# --------------------------------------------------------------------------- command line


def jtorch(*args: str):
    from click.testing import CliRunner
    from jpegtorch.cli.main import cli

    return CliRunner().invoke(cli, list(args))


def test_cli_progressive_and_scans(tmp_path: Path) -> None:
    image = load_sample("kodim01_233x151.png")
    source = tmp_path / "in.png"
    Image.fromarray(image).save(source)
    out = tmp_path / "p.jpg"
    result = jtorch("encode", str(source), "-q", "85", "--progressive", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == pillow_progressive(image, 85)
    # jtorch info prints the scan script; fed back with --scans it gives the same file
    info = jtorch("info", str(out))
    assert info.exit_code == 0 and "progressive (SOF2), 10 scans" in info.output
    line = next(x for x in info.output.splitlines() if x.strip().startswith("scan script:"))
    script = tmp_path / "script.txt"
    script.write_text(line.split(":", 1)[1])
    again = tmp_path / "again.jpg"
    result = jtorch("encode", str(source), "-q", "85", "--scans", str(script), "-o", str(again))
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == out.read_bytes()
    script.write_text(SCRIPTS["deep-sa"])
    result = jtorch("encode", str(source), "--scans", str(script), "--restart", "4", "-f",
                    "-o", str(again))
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == ours(image, 75, scans=script, restart_interval=4)
    if CJPEG is not None:
        assert again.read_bytes() == cjpeg(image, tmp_path, "-scans", str(script), "-restart",
                                           "4B")


def test_cli_scan_script_errors_are_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(synthetic(16, 24)).save(source)
    gray = tmp_path / "gray.png"
    Image.fromarray(synthetic(16, 24)[..., 0]).save(gray)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 2: 0 0 0 1;\n0: 1 63 0;\n")
    result = jtorch("encode", str(source), "--scans", str(bad), "-o", str(tmp_path / "x.jpg"))
    assert result.exit_code == 2 and "line 2" in result.output
    assert "Traceback" not in result.output
    result = jtorch("encode", str(source), "--scans", str(tmp_path / "none.txt"), "-o",
                    str(tmp_path / "x.jpg"))
    assert result.exit_code == 2 and "cannot read scan script" in result.output
    # a valid script for colour images, given a gray image: one line for that image
    good = tmp_path / "good.txt"
    good.write_text(SCRIPTS["spectral"])
    result = jtorch("encode", str(gray), str(source), "--scans", str(good), "-o",
                    str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "there is no component 1" in result.output and "Traceback" not in result.output
    assert (tmp_path / "out" / "in.jpg").exists() and not (tmp_path / "out" / "gray.jpg").exists()
    for flag in ("--progressive", "--sequential"):
        result = jtorch("encode", str(source), "--codec", "learned", flag)
        assert result.exit_code == 2 and "--codec jpeg only" in result.output
        result = jtorch("encode", str(source), "--codec", "recompress", flag)
        assert result.exit_code == 2 and "do not apply to --codec recompress" in result.output
    result = jtorch("encode", str(source), "--restart", "2", "--restart-rows", "1")
    assert result.exit_code == 2 and "not both" in result.output


@needs_cjpeg
def test_cli_no_force_baseline_is_plain_cjpeg(tmp_path: Path) -> None:
    image = load_sample("kodim23_256x192.png")
    source = tmp_path / "in.png"
    Image.fromarray(image).save(source)
    out = tmp_path / "q.jpg"
    for extra in ([], ["--progressive"]):
        result = jtorch("encode", str(source), "-q", "8", "--no-force-baseline", *extra,
                        "-f", "-o", str(out))
        assert result.exit_code == 0, result.output
        flags = [e[1:] for e in extra]  # cjpeg's single-dash spelling
        assert out.read_bytes() == cjpeg(image, tmp_path, "-quality", "8", *flags)
        result = jtorch("encode", str(source), "-q", "8", *extra, "-f", "-o", str(out))
        assert out.read_bytes() == cjpeg(image, tmp_path, "-quality", "8", "-baseline", *flags)


def test_cli_restart_rows(tmp_path: Path) -> None:
    image = load_sample("kodim23_256x192.png")
    source = tmp_path / "in.png"
    Image.fromarray(image).save(source)
    out = tmp_path / "r.jpg"
    for extra in ([], ["--progressive"]):
        result = jtorch("encode", str(source), "--restart-rows", "3", *extra, "-f", "-o",
                        str(out))
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == pillow_progressive(image, 75, progressive=bool(extra),
                                                      restart_marker_rows=3)


def test_a_progressive_file_is_the_concatenation_of_its_scans() -> None:
    """ScanEncoder.scan codes one scan with its own tables: the building block of a
    scan search. A progressive file's body is its scans' bytes, end to end."""
    from jpegtorch.formats.progressive import ScanEncoder

    image = load_sample("kodim23_256x192.png")
    coefficients = jpegtorch.encode(to_chw(image), 80)
    encoder = ScanEncoder([b.numpy() for b in coefficients.blocks], coefficients.sampling,
                          coefficients.size, (1, 2, 3), (0, 1, 1))
    for script in (scanlib.simple_progression(3),
                   scanlib.parse_scan_script(SCRIPTS["deep-sa"])):
        body = encoder.encode(script)
        assert body == b"".join(encoder.scan(s) for s in script)
        assert write_coefficients(coefficients, scans=script).endswith(body + b"\xff\xd9")
    # a candidate scan alone: bigger bands cost more than their parts' data, etc.
    sizes = {str(s): len(encoder.scan(s)) for s in (Scan((0,), 1, 63), Scan((0,), 1, 8),
                                                    Scan((0,), 9, 63))}
    assert all(v > 0 for v in sizes.values())
    for bad in (Scan((0,), 0, 5), Scan((0, 1), 1, 63), Scan((3,), 0, 0), Scan((1, 0), 0, 0),
                Scan((0,), 1, 64), Scan((0,), 1, 63, 0, 11)):
        with pytest.raises(JPEGError, match="scan"):
            encoder.scan(bad)
    with pytest.raises(JPEGError, match="one entry per component"):
        ScanEncoder([coefficients.blocks[0].numpy()], coefficients.sampling, coefficients.size,
                    (1, 2, 3), (0, 1, 1))
