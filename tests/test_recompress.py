"""Lossless JPEG recompression: exact round trips, savings, verbatim fallback, damage.

Every case checks ``restore_jpeg(recompress_jpeg(x)) == x`` byte for byte
against files written by libjpeg-turbo (Pillow, cjpeg) or altered by hand
(padding bits, trailing data, metadata), and that modelled files really are
modelled (a container smaller than the file) while others are kept verbatim
with a warning.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import load_sample, pillow_jpeg, synthetic
from jpegtorch.formats import container as jtc
from jpegtorch.formats import jpeg_layout as jl
from PIL import Image

from jpegtorch import JPEGError
from jpegtorch.recompress import (
    RecompressWarning,
    recompress_info,
    recompress_jpeg,
    restore_jpeg,
)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "jpeg_corpus"
CJPEG = shutil.which("cjpeg")


def roundtrip(data: bytes, *, modelled: bool = True) -> bytes:
    """Recompress, check the restored bytes and whether the file was modelled."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        packed = recompress_jpeg(data)
    assert restore_jpeg(packed) == data
    info = recompress_info(packed)
    assert info.original_bytes == len(data)
    verbatim_warned = any(issubclass(w.category, RecompressWarning) for w in caught)
    if modelled:  # modelled exactly (stored whole without a warning only if that is smaller)
        assert not verbatim_warned, [str(w.message) for w in caught]
        assert not info.verbatim or len(packed) < len(data) + 200
    else:
        assert info.verbatim and verbatim_warned
    return packed


def cjpeg(array: np.ndarray, *args: str) -> bytes:
    if CJPEG is None:
        pytest.skip("cjpeg not installed")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PPM")
    result = subprocess.run([CJPEG, *args], input=buffer.getvalue(), capture_output=True,
                            check=True)
    return result.stdout


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_sample()


# ---------------------------------------------------------------- modelled files


@pytest.mark.parametrize(("quality", "subsampling"), [
    (30, "4:2:0"), (75, "4:4:4"), (75, "4:2:2"), (75, "4:2:0"), (95, "4:2:0")])
def test_pillow_samplings_and_qualities(photo: np.ndarray, subsampling: str,
                                        quality: int) -> None:
    data = pillow_jpeg(photo, quality, subsampling)
    packed = roundtrip(data)
    assert len(packed) < len(data)


@pytest.mark.parametrize("sample", ["1x2", "4x1", "4x2", "1x1,2x1,1x2", "2x2,1x1,2x1"])
def test_cjpeg_other_samplings(photo: np.ndarray, sample: str) -> None:
    parts = sample.split(",")
    if len(parts) == 1:
        sample = f"{sample},1x1,1x1"
    roundtrip(cjpeg(photo, "-quality", "80", "-sample", sample))


def test_gray_and_gray_with_2x2_sampling(photo: np.ndarray) -> None:
    gray = load_sample(mode="L")
    roundtrip(pillow_jpeg(gray, 75))
    roundtrip(cjpeg(np.stack([gray] * 3, -1), "-grayscale", "-sample", "2x2"))


@pytest.mark.parametrize("restart", [1, 3, 17])
def test_restart_markers(photo: np.ndarray, restart: int) -> None:
    roundtrip(pillow_jpeg(photo, 80, "4:2:0", restart_marker_blocks=restart))


@pytest.mark.parametrize("size", [(1, 1), (9, 7), (13, 17), (1, 129), (33, 31), (130, 2)])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_odd_sizes(size: tuple[int, int], subsampling: str) -> None:
    image = synthetic(*size, seed=sum(size))
    roundtrip(pillow_jpeg(image, 85, subsampling))


def test_optimized_and_custom_tables(photo: np.ndarray) -> None:
    roundtrip(pillow_jpeg(photo, 90, "4:2:0", optimize=True))
    # 16-bit quantization tables (SOF1) from cjpeg at low quality without -baseline
    data = cjpeg(photo, "-quality", "3")
    assert jl.parse_layout(data).sof == 0xC1
    roundtrip(data)


def test_metadata_segments_and_trailing_data(photo: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x010F] = "jpegtorch test camera"
    exif[0x0131] = "x" * 3000
    icc = bytes(range(256)) * 40
    data = pillow_jpeg(photo, 75, "4:2:0", exif=exif.tobytes(), icc_profile=icc,
                       comment=b"a comment")
    packed = roundtrip(data)
    assert len(packed) < len(data)
    roundtrip(data + b"trailing bytes after EOI \x00\xff\xd9" * 5)
    roundtrip(data[:-2])  # no EOI at all: the scan ends the file


def _rewrite_scans(data: bytes, pads: int) -> bytes:
    """The same file with every entropy-coded segment padded with ``pads``."""
    layout = jl.parse_layout(data)
    from jpegtorch.recompress.api import _read_coefficients

    store = _read_coefficients(data, layout, None)
    planes = (store.z, store.off, store.cols)
    pieces = layout.piece_bytes(data)
    out = [pieces[0]]
    for i, scan in enumerate(layout.scans):
        n = jl.segment_count(layout, scan)
        scan_data, _, _ = jl.encode_sequential_scan(
            layout, scan, planes, np.full(n, pads, dtype=np.uint16))
        out += [scan_data, pieces[i + 1]]
    return b"".join(out)


@pytest.mark.parametrize("pads", [0x00, 0x55, 0x1FF, 0x100])
def test_padding_bits_other_than_ones(photo: np.ndarray, pads: int) -> None:
    data = pillow_jpeg(photo, 75, "4:2:0", restart_marker_blocks=2)
    altered = _rewrite_scans(data, pads)
    assert altered != data
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(altered))),
                          np.asarray(Image.open(io.BytesIO(data))))
    packed = roundtrip(altered)
    assert len(packed) < len(altered)


def test_deterministic(photo: np.ndarray) -> None:
    data = pillow_jpeg(photo, 75)
    assert recompress_jpeg(data) == recompress_jpeg(data)


def test_saving_on_a_photo(photo: np.ndarray) -> None:
    """A real photo at q75 4:2:0 (libjpeg-turbo's defaults) shrinks substantially."""
    data = pillow_jpeg(photo, 75, "4:2:0")
    saving = 1 - len(recompress_jpeg(data)) / len(data)
    assert saving > 0.12


# ---------------------------------------------------------------- verbatim files


def test_progressive_and_arithmetic_are_kept_verbatim(photo: np.ndarray) -> None:
    roundtrip(pillow_jpeg(photo, 75, progressive=True), modelled=False)
    roundtrip(cjpeg(photo, "-arithmetic"), modelled=False)


def test_corrupt_files_are_kept_verbatim(photo: np.ndarray) -> None:
    data = pillow_jpeg(photo, 75)
    layout = jl.parse_layout(data)
    scan = layout.scans[0]
    middle = (scan.start + scan.end) // 2
    roundtrip(data[:middle], modelled=False)  # truncated inside the scan
    flipped = bytearray(data)
    flipped[middle] ^= 0x5A
    flipped = bytes(flipped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert restore_jpeg(recompress_jpeg(flipped)) == flipped
    roundtrip(b"\xff\xd8\xff\xe0 not really a JPEG", modelled=False)


@pytest.mark.parametrize("data", [b"", b"\xff", b"\x89PNG\r\n\x1a\nabc", b"GIF89a...",
                                  b"\xff\xd8", b"\x00" * 100])
def test_non_jpeg_is_refused(data: bytes) -> None:
    with pytest.raises(JPEGError, match="not a JPEG"):
        recompress_jpeg(data)


def test_png_is_refused(photo: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "PNG")
    with pytest.raises(JPEGError, match="not a JPEG"):
        recompress_jpeg(buffer.getvalue())


# ---------------------------------------------------------------- damaged containers


@pytest.fixture(scope="module")
def packed(photo: np.ndarray) -> bytes:
    return recompress_jpeg(pillow_jpeg(photo, 75, restart_marker_blocks=5))


def test_every_flipped_byte_is_caught(packed: bytes) -> None:
    rng = np.random.default_rng(0)
    for pos in sorted(set(rng.integers(0, len(packed), 60).tolist()) | {0, 8, 9, 20}):
        damaged = bytearray(packed)
        damaged[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(JPEGError):
            restore_jpeg(bytes(damaged))


@pytest.mark.parametrize("cut", [0, 5, 12, 40, -1, -100])
def test_truncation_is_caught(packed: bytes, cut: int) -> None:
    with pytest.raises(JPEGError):
        restore_jpeg(packed[:cut])


def test_version_and_codec_are_checked(packed: bytes) -> None:
    damaged = bytearray(packed)
    damaged[8] = 2
    with pytest.raises(JPEGError, match="version"):
        restore_jpeg(bytes(damaged))
    box = jtc.unpack(packed)
    other = jtc.pack(jtc.Container(**{**box.__dict__, "codec": "factorized-gain"}))
    with pytest.raises(JPEGError, match="not a recompressed JPEG"):
        restore_jpeg(other)
    layout = dict((s.name, s.data) for s in box.streams)["layout"]
    newer = jtc.pack(jtc.Container(**{**box.__dict__, "streams": tuple(
        jtc.Stream(s.name, bytes([9]) + s.data[1:] if s.name == "layout" else s.data)
        for s in box.streams)}))
    assert layout[0] == 2
    with pytest.raises(JPEGError, match="layout version"):
        restore_jpeg(newer)


def test_layout_version_1_still_restores(packed: bytes) -> None:
    """Containers written before the preset dictionary (layout version 1, plain zlib) decode."""
    import zlib

    from jpegtorch.recompress import headers

    box = jtc.unpack(packed)
    layout = dict((s.name, s.data) for s in box.streams)["layout"]
    assert layout[:2] == bytes((2, 3))  # version 2, zlib with the preset dictionary
    unpacker = zlib.decompressobj(-15, zdict=headers.dictionary())
    raw = unpacker.decompress(layout[2:]) + unpacker.flush()
    old = jtc.pack(jtc.Container(**{**box.__dict__, "streams": tuple(
        jtc.Stream(s.name, bytes((1, 1)) + zlib.compress(raw) if s.name == "layout" else s.data)
        for s in box.streams)}))
    assert restore_jpeg(old) == restore_jpeg(packed)
    # the dictionary method is unknown to version 1
    bad = jtc.pack(jtc.Container(**{**box.__dict__, "streams": tuple(
        jtc.Stream(s.name, bytes((1,)) + s.data[1:] if s.name == "layout" else s.data)
        for s in box.streams)}))
    with pytest.raises(JPEGError, match="compression 3"):
        restore_jpeg(bad)


def test_damage_that_passes_the_crcs_is_caught(packed: bytes) -> None:
    """A coefficient stream altered with valid CRCs still fails the final check."""
    box = jtc.unpack(packed)
    streams = []
    for s in box.streams:
        data = bytearray(s.data)
        if s.name == "coefficients":
            data[len(data) // 2] ^= 0x10
        streams.append(jtc.Stream(s.name, bytes(data)))
    forged = jtc.pack(jtc.Container(**{**box.__dict__, "streams": tuple(streams)}))
    with pytest.raises(JPEGError):
        restore_jpeg(forged)


def test_pixel_limit_on_restore(photo: np.ndarray) -> None:
    packed = recompress_jpeg(pillow_jpeg(photo, 75))
    with pytest.raises(JPEGError, match="limit"):
        restore_jpeg(packed, max_pixels=1000)
    assert restore_jpeg(packed, max_pixels=None)


def test_crc_of_original_is_stored(packed: bytes) -> None:
    original = restore_jpeg(packed)
    layout = dict((s.name, s.data) for s in jtc.unpack(packed).streams)["layout"]
    assert layout[0] == 2 and len(original) > 0
    assert zlib.crc32(original) == zlib.crc32(restore_jpeg(packed))
    assert struct.unpack("<I", packed[9:13])[0] > 0


# ---------------------------------------------------------------- corpus


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file()
                  and p.suffix.lower() not in (".tsv", ".md", ".txt", ".py"))


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/data/jpeg_corpus")
def test_corpus_round_trips() -> None:
    """Every corpus file: exact round trip (or a JPEGError for non-JPEGs); the
    sequential files the decoder reads strictly are all modelled."""
    from jpegtorch.formats import jfif_reader

    modelled = strict_sequential = 0
    for path in _corpus_files():
        data = path.read_bytes()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                packed = recompress_jpeg(data)
        except JPEGError:
            assert not data.startswith(b"\xff\xd8\xff"), path
            continue
        assert restore_jpeg(packed) == data, path
        failed = any(issubclass(w.category, RecompressWarning) for w in caught)
        modelled += not failed
        try:
            reader = jfif_reader._read(data, lenient=False, max_pixels=None, name=None)
        except JPEGError:
            continue
        if reader.sof in (0xC0, 0xC1):
            strict_sequential += 1
            assert not failed, (path, [str(w.message) for w in caught])
    assert strict_sequential >= 200 and modelled >= strict_sequential


# ---------------------------------------------------------------- CLI


def _jtorch(*args: str, cwd: Path):
    import os

    from click.testing import CliRunner
    from jpegtorch.cli.main import cli

    here = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(here)


def test_cli_round_trip_and_info(photo: np.ndarray, tmp_path: Path) -> None:
    data = pillow_jpeg(photo, 75)
    (tmp_path / "a.jpg").write_bytes(data)
    (tmp_path / "b.jpg").write_bytes(pillow_jpeg(photo, 90, "4:4:4"))
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    result = _jtorch("encode", "a.jpg", "--codec", "recompress", "-o", "a.jtc", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    result = _jtorch("decode", "a.jtc", "-o", "back.jpg", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back.jpg").read_bytes() == data
    result = _jtorch("decode", "a.jtc", "-o", "back.png", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")),
                          np.asarray(Image.open(io.BytesIO(data))))
    result = _jtorch("info", "a.jtc", cwd=tmp_path)
    assert result.exit_code == 0 and "recompressed JPEG" in result.output
    assert "saving" in result.output and "modelled" in result.output
    # a batch into a folder: the PNG fails with one line, the JPEGs go on
    result = _jtorch("encode", "a.jpg", "b.jpg", "c.png", "--codec", "recompress", "-o",
                     "out/", cwd=tmp_path)
    assert result.exit_code == 1
    assert "c.png: not a JPEG file" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jtc", "b.jtc"]
    result = _jtorch("decode", "out/a.jtc", "out/b.jtc", "-o", "restored/", "--format", "jpg",
                     cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "restored" / "b.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()
    result = _jtorch("encode", "a.jpg", "--codec", "recompress", "-q", "50", cwd=tmp_path)
    assert result.exit_code == 2 and "do not apply" in result.output


def test_cli_recompress_does_not_import_torch(photo: np.ndarray, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(pillow_jpeg(photo, 75))
    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from jpegtorch.cli.main import cli\n"
            "for args in (['encode', 'a.jpg', '--codec', 'recompress', '-o', 'a.jtc'],\n"
            "             ['decode', 'a.jtc', '-o', 'r.jpg'], ['info', 'a.jtc']):\n"
            "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.stdout.strip() == "NO TORCH", (result.stdout, result.stderr)
    assert (tmp_path / "r.jpg").read_bytes() == (tmp_path / "a.jpg").read_bytes()
