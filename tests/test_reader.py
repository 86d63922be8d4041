"""The JPEG reader: pixels identical to libjpeg-turbo (Pillow), coefficients
identical to libjpeg's (its encoder, jpegtran), libjpeg's behaviour on
corrupt data, and clean refusals of what is not supported.

Independent references: Pillow's decoder (libjpeg-turbo 3), files written by
``cjpeg`` / ``jpegtran`` (skipped when the tools are missing) and the fixture
files in ``tests/data/jpeg`` (third-party files; see its README).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic, to_chw
from jpegtorch.formats import jfif_reader
from jpegtorch.formats.jfif_reader import JPEGWarning, decode_jpeg, read_coefficients
from PIL import Image, ImageFile

import jpegtorch
from jpegtorch import JPEGError

DATA = Path(__file__).resolve().parent / "data" / "jpeg"
MANIFEST = list(csv.DictReader((DATA / "MANIFEST.tsv").open(), delimiter="\t"))
HAVE_CJPEG = shutil.which("cjpeg") is not None
HAVE_JPEGTRAN = shutil.which("jpegtran") is not None
needs_cjpeg = pytest.mark.skipif(not HAVE_CJPEG, reason="needs cjpeg (libjpeg-turbo-progs)")
needs_jpegtran = pytest.mark.skipif(not HAVE_JPEGTRAN,
                                    reason="needs jpegtran (libjpeg-turbo-progs)")


def pillow_pixels(data: bytes, *, truncated: bool = False) -> np.ndarray:
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def as_hwc(t: torch.Tensor) -> np.ndarray:
    a = t.numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def assert_same_pixels(ours: torch.Tensor, data: bytes, *, truncated: bool = False) -> None:
    ref = pillow_pixels(data, truncated=truncated)
    got = as_hwc(ours)
    assert got.shape == ref.shape
    diff = np.argwhere(got != ref)
    assert len(diff) == 0, f"{len(diff)} samples differ, first at {diff[0].tolist()}"


def ppm_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PPM")
    return buffer.getvalue()


def cjpeg(array: np.ndarray, *options: str) -> bytes:
    result = subprocess.run(["cjpeg", *options], input=ppm_bytes(array), capture_output=True,
                            check=True)
    return result.stdout


def jpegtran(data: bytes, *options: str) -> bytes:
    result = subprocess.run(["jpegtran", *options], input=data, capture_output=True, check=True)
    return result.stdout


def blocks_equal(a: jpegtorch.Coefficients, b: jpegtorch.Coefficients) -> None:
    assert a.size == b.size and a.sampling == b.sampling and a.color == b.color
    assert torch.equal(a.qtables.to(torch.int64), b.qtables.to(torch.int64))
    for c, (x, y) in enumerate(zip(a.blocks, b.blocks, strict=True)):
        hb, wb = a.component_blocks(c)
        assert torch.equal(x[..., :hb, :wb, :, :].to(torch.int64),
                           y[..., :hb, :wb, :, :].to(torch.int64)), f"component {c}"


# --------------------------------------------------------------------------
# files made by cjpeg with mixed options: pixels identical to Pillow's
# --------------------------------------------------------------------------

CJPEG_CASES = [
    ("-sample", "1x1"),
    ("-sample", "2x1"),
    ("-sample", "2x2"),
    ("-sample", "1x2"),
    ("-sample", "4x1"),
    ("-sample", "4x2"),
    ("-sample", "1x4"),
    ("-sample", "2x1,1x2,1x1"),
    ("-sample", "3x1"),
    ("-sample", "2x2", "-progressive"),
    ("-sample", "1x1", "-progressive"),
    ("-sample", "4x1", "-progressive", "-restart", "1"),
    ("-sample", "1x2", "-progressive", "-restart", "2B"),
    ("-sample", "2x1", "-optimize"),
    ("-sample", "2x2", "-optimize", "-restart", "3B"),
    ("-restart", "1"),
    ("-restart", "1B"),
    ("-sample", "1x1", "-restart", "5B"),
    ("-grayscale",),
    ("-grayscale", "-progressive"),
    ("-grayscale", "-restart", "2B", "-optimize"),
    ("-quality", "1"),
    ("-quality", "1", "-baseline"),
    ("-quality", "5", "-progressive"),
    ("-quality", "25"),
    ("-quality", "50", "-sample", "2x1"),
    ("-quality", "90", "-sample", "1x1"),
    ("-quality", "100"),
    ("-quality", "100", "-progressive", "-sample", "1x1"),
    ("-dct", "float"),
    ("-dct", "fast", "-quality", "95"),
    ("-rgb",),
    ("-rgb", "-progressive"),
    ("-smooth", "30"),
]


@needs_cjpeg
@pytest.mark.parametrize("options", CJPEG_CASES, ids=lambda o: " ".join(o))
def test_cjpeg_files_decode_like_pillow(options: tuple[str, ...]) -> None:
    image = synthetic(45, 61, seed=len(options))  # odd size: partial MCUs everywhere
    data = cjpeg(image, *options)
    assert_same_pixels(decode_jpeg(data), data)


@needs_cjpeg
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (13, 17), (1, 129), (33, 2), (64, 48)])
@pytest.mark.parametrize("options", [("-sample", "2x2"), ("-sample", "4x1", "-progressive"),
                                     ("-sample", "1x2", "-restart", "1B")],
                         ids=lambda o: " ".join(o))
def test_cjpeg_odd_sizes(size: tuple[int, int], options: tuple[str, ...]) -> None:
    image = synthetic(*size, seed=3)
    data = cjpeg(image, *options)
    assert_same_pixels(decode_jpeg(data), data)


@needs_cjpeg
@pytest.mark.parametrize("options", [("-arithmetic",), ("-arithmetic", "-progressive"),
                                     ("-arithmetic", "-restart", "2B", "-sample", "2x1"),
                                     ("-arithmetic", "-progressive", "-restart", "1",
                                      "-sample", "1x1"),
                                     ("-arithmetic", "-grayscale", "-quality", "95")],
                         ids=lambda o: " ".join(o))
def test_cjpeg_arithmetic_files_decode_like_pillow(options: tuple[str, ...]) -> None:
    data = cjpeg(synthetic(45, 61, seed=7), *options)
    assert_same_pixels(decode_jpeg(data), data)


# --------------------------------------------------------------------------
# the fixture files (third-party): identical to Pillow, or refused cleanly
# --------------------------------------------------------------------------


def _clean(row: dict[str, str]) -> bool:
    header = row["header"].split()
    return (bool(header) and header[0] in ("baseline", "ext-seq-huff", "progressive-huff",
                                           "ext-seq-arith", "progressive-arith")
            and "P=8" in header and not (len(header) > 2 and header[2].count(",") == 3)
            and row["djpeg_turbo215"].strip() == "ok")


CLEAN = [row["file"] for row in MANIFEST if _clean(row)]
OTHERS = [row["file"] for row in MANIFEST if not _clean(row)]


def test_fixture_manifest_is_consistent() -> None:
    files = {str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.suffix in (".jpg", ".jpeg")}
    assert files == {row["file"] for row in MANIFEST}
    assert len(CLEAN) >= 50


@pytest.mark.parametrize("name", CLEAN)
def test_clean_fixtures_decode_like_pillow(name: str) -> None:
    data = (DATA / name).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", JPEGWarning)  # a clean file gives no warning
        pixels = decode_jpeg(data)
    assert pixels.dtype == torch.uint8 and pixels.dim() == 3
    assert_same_pixels(pixels, data)


@pytest.mark.parametrize("name", OTHERS)
def test_other_fixtures_decode_like_pillow_or_raise_jpegerror(name: str) -> None:
    """Corrupt, unsupported and odd files: our error type, or Pillow's pixels.

    Strict mode decodes only what libjpeg decodes without a warning; lenient
    mode decodes what libjpeg decodes, and then (away from the IDCT overflow
    of garbage coefficients, see below) gives Pillow's pixels.
    """
    data = (DATA / name).read_bytes()
    for lenient in (False, True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", JPEGWarning)
                pixels = decode_jpeg(data, lenient=lenient)
        except JPEGError as exc:
            assert "\n" not in str(exc) and str(exc)
            continue
        assert pixels.dtype == torch.uint8 and pixels.shape[0] in (1, 3)
        if name in LENIENT_LIKE_PILLOW:
            assert_same_pixels(pixels, data)


# Files libjpeg decodes with warnings where our lenient pixels equal Pillow's.
# (bad_bitflips_entropy and dc-predictor-overflow decode to libjpeg's
# coefficients too, but their garbage coefficients overflow the IDCT, where
# Pillow's SIMD IDCT saturates 16-bit intermediates.)
LENIENT_LIKE_PILLOW = {
    "generated/bad_rst_wrong_order.jpg",
    "generated/bad_trailing_garbage.jpg",
    "jpeg-decoder/reftest/images/partial_progressive.jpg",
    "jpeg-decoder/reftest/images/progressive-missing-dc.jpg",
    "jpeg-decoder/reftest/images/extraneous-data.jpg",
}


@pytest.mark.parametrize("name, pattern", [
    ("generated/thor_hierarchical_y2.jpg", "hierarchical"),
    ("jpeg-decoder/reftest/images/mozilla/jpg-cmyk-1.jpg", "4-component"),
    ("jpegsuite/baseline/32x32x8_dnl.jpg", "DNL"),
    ("jpeg-decoder/crashtest/images/max_size.jpg", "too large"),
    ("jpeg-decoder/crashtest/images/null_height.jpg", "height 0|empty"),
    ("generated/bad_not_jpeg.jpg", "not a JPEG file"),
    ("generated/bad_empty.jpg", "not a JPEG file"),
    ("generated/bad_no_dqt.jpg", "quantization table 0x00 was not defined"),
    ("generated/bad_truncated_in_header.jpg", "truncated"),
    ("generated/bad_zero_width_sof.jpg", "empty image"),
    ("jpeg-decoder/crashtest/images/missing-sos.jpg", "no SOS"),
    ("generated/bad_truncated_50pct.jpg", "premature end|truncated"),
    ("generated/bad_no_eoi.jpg", "premature end|truncated"),
    ("generated/bad_rst_wrong_order.jpg", "RST"),
    ("generated/bad_bitflips_entropy.jpg", "extraneous bytes"),
    ("jpeg-decoder/reftest/images/progressive-missing-dc.jpg", "progression"),
])
def test_refusals_name_what_is_wrong(name: str, pattern: str) -> None:
    with pytest.raises(JPEGError, match=pattern) as info:
        decode_jpeg((DATA / name).read_bytes(), name=name)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{name}: ")


def patched(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def sof_offset(data: bytes) -> int:
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        i = data.find(marker)
        if i >= 0:
            return i
    raise AssertionError("no SOF")


@pytest.mark.parametrize("change, pattern", [
    (lambda d, i: patched(d, i + 1, b"\xc3"), "lossless"),
    (lambda d, i: patched(d, i + 1, b"\xcb"), "lossless"),
    (lambda d, i: patched(d, i + 1, b"\xcd"), "hierarchical"),
    (lambda d, i: patched(d, i + 1, b"\xc5"), "hierarchical"),
    (lambda d, i: patched(d, i + 1, b"\xf7"), "JPEG-LS"),
    (lambda d, i: patched(d, i + 4, b"\x0c"), "12-bit"),
    (lambda d, i: patched(d, i + 4, b"\x10"), "16-bit"),
    (lambda d, i: d[:i] + b"\xff\xde\x00\x02" + d[i:], "hierarchical"),
    (lambda d, i: patched(d, i + 11, b"\x55"), "sampling factors"),
])
def test_unsupported_features_are_named(change, pattern: str) -> None:
    data = (DATA / "generated/gen_gray.jpg").read_bytes()
    with pytest.raises(JPEGError, match=pattern):
        decode_jpeg(change(data, sof_offset(data)))


def test_pixel_limit_is_checked_before_allocating() -> None:
    data = (DATA / "generated/gen_gray.jpg").read_bytes()
    i = sof_offset(data)
    big = patched(data, i + 5, (20000).to_bytes(2, "big") + (20000).to_bytes(2, "big"))
    with pytest.raises(JPEGError, match="exceeds the limit of 89478485 pixels"):
        read_coefficients(big)
    with pytest.raises(JPEGError, match="exceeds the limit of 1000 pixels"):
        decode_jpeg(data, max_pixels=1000)
    assert decode_jpeg(data, max_pixels=203 * 137).shape == (1, 137, 203)
    assert decode_jpeg(data, max_pixels=None).shape == (1, 137, 203)


# --------------------------------------------------------------------------
# lenient decoding: libjpeg's behaviour on corrupt and truncated data
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["generated/bad_truncated_50pct.jpg",
                                  "generated/bad_no_eoi.jpg",
                                  "generated/bad_progressive_truncated_60pct.jpg",
                                  "generated/bad_truncated_after_sos_header.jpg",
                                  "go/video-001.progressive.truncated.jpeg"])
def test_truncated_files_lenient_like_pillow_truncated_mode(name: str) -> None:
    data = (DATA / name).read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels = decode_jpeg(data, lenient=True)
    assert_same_pixels(pixels, data, truncated=True)
    if name.startswith("generated/"):
        assert any(issubclass(w.category, JPEGWarning) for w in caught)


def test_cut_files_strict_error_lenient_grey_rest() -> None:
    data = (DATA / "generated/gen_420_q75.jpg").read_bytes()
    for cut in (len(data) // 3, len(data) - 40, len(data) - 2):
        with pytest.raises(JPEGError):
            decode_jpeg(data[:cut])
        with pytest.warns(JPEGWarning):
            pixels = decode_jpeg(data[:cut], lenient=True)
        assert_same_pixels(pixels, data[:cut], truncated=True)


def test_lenient_coefficients_equal_libjpeg_transcoding() -> None:
    """libjpeg's own coefficients of a corrupt file (as jpegtran re-writes them)."""
    if not HAVE_JPEGTRAN:
        pytest.skip("needs jpegtran")
    for name in ("generated/bad_bitflips_entropy.jpg", "generated/bad_rst_wrong_order.jpg",
                 "generated/bad_truncated_50pct.jpg"):
        data = (DATA / name).read_bytes()
        result = subprocess.run(["jpegtran", "-copy", "none"], input=data, capture_output=True)
        assert result.returncode in (0, 2)  # 2: decoded with warnings
        with pytest.warns(JPEGWarning):
            ours = read_coefficients(data, lenient=True)
        blocks_equal(ours, read_coefficients(result.stdout))


# --------------------------------------------------------------------------
# coefficients: against libjpeg's encoder and transcoder
# --------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0", "gray"])
@pytest.mark.parametrize("quality", [10, 75, 97])
def test_coefficients_equal_the_exact_encoder(subsampling: str, quality: int) -> None:
    image = synthetic(37, 53, seed=quality)
    if subsampling == "gray":
        image = image[..., 0]
    buffer = io.BytesIO()
    options = {} if subsampling == "gray" else {"subsampling": {"4:4:4": 0, "4:2:2": 1,
                                                                "4:2:0": 2}[subsampling]}
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, **options)
    read = read_coefficients(buffer.getvalue())
    made = jpegtorch.encode(to_chw(image), quality,
                            subsampling="4:2:0" if subsampling == "gray" else subsampling,
                            mode="hard")
    # int16 blocks: libjpeg's JCOEF, 2 bytes per coefficient (a decision of issue 13)
    assert read.blocks[0].dtype == torch.int16 and read.qtables.dtype == torch.int32
    assert read.component_ids == ((1,) if subsampling == "gray" else (1, 2, 3))
    assert read.qtable_slots == ((0,) if subsampling == "gray" else (0, 1, 1))
    for a, b in zip(read.blocks, made.blocks, strict=True):
        assert a.shape == b.shape
        assert torch.equal(a.to(torch.int64), b.to(torch.int64))
    assert torch.equal(read.qtables.to(torch.int64), made.qtables.to(torch.int64))


@needs_jpegtran
@pytest.mark.parametrize("options", [("-progressive",), ("-optimize",), ("-restart", "1"),
                                     ("-restart", "2B", "-progressive")],
                         ids=lambda o: " ".join(o))
@pytest.mark.parametrize("name", ["generated/gen_420_q75.jpg", "generated/gen_411.jpg",
                                  "generated/gen_gray.jpg",
                                  "generated/gen_chroma_upsampled_1x2_2x2_2x2.jpg"])
def test_transcoded_files_have_the_same_coefficients(name: str, options: tuple[str, ...]) -> None:
    data = (DATA / name).read_bytes()
    blocks_equal(read_coefficients(data), read_coefficients(jpegtran(data, *options)))


@needs_jpegtran
@pytest.mark.parametrize("script", [
    "0,1,2: 0-0, 0, 0;",  # DC only: DC and AC estimated from neighbouring DCs
    "0,1,2: 0-0, 0, 1; 0: 1-5, 0, 2; 1: 1-63, 0, 1;",  # partial spectral + unrefined
    "0: 0-0, 0, 0; 1: 0-0, 0, 0; 2: 0-0, 0, 0; 0: 1-2, 0, 0; 0: 3-63, 0, 0;",  # chroma AC missing
    "0,1,2: 0-0, 0, 2; 0,1,2: 0-0, 2, 1; 0: 1-9, 0, 1; 0: 1-9, 1, 0;",
])
def test_incomplete_progressive_block_smoothing_like_pillow(tmp_path: Path, script: str) -> None:
    data = (DATA / "generated/gen_420_q75.jpg").read_bytes()
    scans = tmp_path / "scans.txt"
    scans.write_text(script)
    prog = jpegtran(data, "-scans", str(scans))
    assert_same_pixels(decode_jpeg(prog), prog)


@pytest.mark.parametrize("quality, optimize, restart", [(75, False, 0), (30, True, 0),
                                                        (90, False, 3), (100, True, 0)])
def test_round_trip_through_the_writer_reproduces_libjpeg_bytes(
        quality: int, optimize: bool, restart: int) -> None:
    writer = pytest.importorskip("jpegtorch.formats.jfif_writer")
    image = synthetic(40, 56, seed=quality)
    buffer = io.BytesIO()
    options = {"restart_marker_blocks": restart} if restart else {}
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, optimize=optimize, **options)
    data = buffer.getvalue()
    again = writer.write_coefficients(read_coefficients(data), optimize=optimize,
                                      restart_interval=restart)
    assert again == data


# --------------------------------------------------------------------------
# the API
# --------------------------------------------------------------------------


def test_input_types_and_batch() -> None:
    path = DATA / "generated/gen_422.jpg"
    data = path.read_bytes()
    ref = decode_jpeg(data)
    assert ref.shape == (3, 137, 203) and ref.dtype == torch.uint8
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    coefs = read_coefficients(data)
    for source in (bytearray(data), memoryview(data), tensor, np.frombuffer(data, np.uint8),
                   str(path), path):
        blocks_equal(read_coefficients(source), coefs)
    assert torch.equal(decode_jpeg(tensor), ref)
    out = decode_jpeg([data, (DATA / "generated/gen_gray.jpg").read_bytes()])
    assert isinstance(out, list) and torch.equal(out[0], ref) and out[1].shape == (1, 137, 203)
    assert jpegtorch.decode_jpeg is decode_jpeg
    assert jpegtorch.read_coefficients is read_coefficients


@pytest.mark.parametrize("bad", [torch.zeros(2, 3, dtype=torch.uint8),
                                 torch.zeros(10, dtype=torch.int32), 42, None,
                                 "/nonexistent/file.jpg"])
def test_bad_arguments_raise_jpegerror(bad) -> None:
    with pytest.raises(JPEGError):
        decode_jpeg(bad)


def test_errors_name_the_file() -> None:
    with pytest.raises(JPEGError, match=r"^photo\.jpg: not a JPEG file"):
        decode_jpeg(b"\x89PNG\r\n\x1a\n", name="photo.jpg")
    path = DATA / "generated/bad_no_dqt.jpg"
    with pytest.raises(JPEGError, match=f"^{path}: quantization table"):
        decode_jpeg(path)


def test_coefficients_of_a_progressive_file_and_color_spaces() -> None:
    prog = read_coefficients(DATA / "generated/gen_progressive.jpg")
    base = read_coefficients(DATA / "generated/gen_420_q75.jpg")
    assert prog.sampling == ((2, 2), (1, 1), (1, 1)) and prog.size == (137, 203)
    assert [tuple(b.shape) for b in prog.blocks] == [(1, 18, 26, 8, 8), (1, 9, 13, 8, 8),
                                                      (1, 9, 13, 8, 8)]
    blocks_equal(prog, base)
    assert read_coefficients(DATA / "go/video-001.rgb.jpeg").color == "rgb"
    assert read_coefficients(DATA / "jpegsuite/baseline/32x32x8_rgb.jpg").color == "rgb"
    assert read_coefficients(DATA / "generated/gen_gray.jpg").color == "gray"
    assert base.color == "ycbcr"


def test_motion_jpeg_without_huffman_tables_uses_the_standard_ones() -> None:
    data = (DATA / "generated/bad_no_dht.jpg").read_bytes()
    assert_same_pixels(decode_jpeg(data), data)


def test_non_interleaved_blocks_outside_the_component_are_zero() -> None:
    coefs = read_coefficients(DATA / "jpegsuite/baseline/32x32x8_ycbcr_2x2_2x1_1x2.jpg")
    for c in range(3):
        hb, wb = coefs.component_blocks(c)
        block = coefs.blocks[c][0]
        assert not block[hb:].any() and not block[:, wb:].any()


def test_info_module_does_not_need_numba_or_torch() -> None:
    code = ("import sys; from jpegtorch.formats.jfif_reader import _Reader;"
            "r = _Reader(open(sys.argv[1], 'rb').read(), name=None, lenient=True,"
            " max_pixels=None, decode=False); r.run();"
            "print(len(r.scans), 'numba' in sys.modules, 'torch' in sys.modules)")
    import sys

    out = subprocess.run([sys.executable, "-c", code, str(DATA / "generated/gen_progressive.jpg")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["10", "False", "False"]


def test_module_exports() -> None:
    assert set(jfif_reader.__all__) >= {"decode_jpeg", "read_coefficients", "read_info"}


def test_too_many_scans_are_refused_quickly() -> None:
    """A small file of thousands of scans must not keep the decoder busy."""
    data = (DATA / "generated/gen_progressive_gray.jpg").read_bytes()
    sos = data.find(b"\xff\xda")
    length = int.from_bytes(data[sos + 2: sos + 4], "big")
    # a DC refinement scan with no data, repeated
    refine = b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x10"
    body = data[:sos + 2 + length] + b"\x00" * 8 + refine * 2000 + b"\xff\xd9"
    with pytest.raises(JPEGError, match="too many scans"):
        read_coefficients(body, lenient=True)
