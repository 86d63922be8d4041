"""Decoding band by band into a writer: ``decode_jpeg_rows`` and the streaming
PNG writer that ``jtorch decode`` uses for JPEG -> PNG.

- the PNG writer's files read back (Pillow, an independent decoder) as
  exactly the rows written, grey and RGB, any size, every filter type used;
- ``decode_jpeg_rows`` hands over consecutive bands whose concatenation is
  ``decode_jpeg_array``'s image (Pillow's pixels), single-scan and progressive;
- the CLI's PNG output equals Pillow's decode and a strict failure half-way
  leaves no file behind.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import pillow_decode, pillow_jpeg, synthetic
from jpegtorch.cli.main import cli
from jpegtorch.formats.jfif_reader import decode_jpeg_array, decode_jpeg_rows
from jpegtorch.formats.jfif_reader import scans as reader_scans
from jpegtorch.formats.png_writer import PNGWriter, write_png
from PIL import Image


def _filter_types(png: bytes) -> set[int]:
    """The filter-type byte of every scanline of a PNG written by us."""
    pos, idat, width, channels = 8, b"", 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _, _, color = struct.unpack(">IIBB", data[:10])
            channels = 3 if color == 2 else 1
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    return {raw[i] for i in range(0, len(raw), stride)}


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (5, 1), (13, 29), (64, 65)])
@pytest.mark.parametrize("channels", [1, 3])
def test_png_writer_round_trips(size: tuple[int, int], channels: int) -> None:
    rng = np.random.default_rng(size[0] * 100 + size[1])
    image = rng.integers(0, 256, (*size, channels), dtype=np.uint8)
    if channels == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    write_png(buffer, image)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        assert im.mode == ("L" if channels == 1 else "RGB")
        np.testing.assert_array_equal(np.asarray(im), image)


@pytest.mark.parametrize("filter_type", [-1, 0, 1, 2, 3, 4])
def test_png_writer_every_filter_type_round_trips(filter_type: int) -> None:
    image = synthetic(45, 31, seed=3)
    buffer = io.BytesIO()
    writer = PNGWriter(buffer, image.shape[0], 31, 3, filter_type=filter_type)
    for y in range(0, image.shape[0], 7):  # bands of any height
        writer.rows(image[y : y + 7])
    writer.close()
    np.testing.assert_array_equal(pillow_decode(buffer.getvalue()), image)
    used = _filter_types(buffer.getvalue())
    assert used == {filter_type} if filter_type >= 0 else len(used) >= 3


def test_png_writer_checks_its_rows() -> None:
    short = PNGWriter(io.BytesIO(), 4, 4, 1)
    short.rows(np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="3 of 4 rows"):
        short.close()
    with pytest.raises(ValueError, match="rows of 4 bytes"):
        short.rows(np.zeros((1, 5), np.uint8))


class Collect:
    def __init__(self) -> None:
        self.shape: tuple[int, int, int] | None = None
        self.bands: list[np.ndarray] = []

    def begin(self, height: int, width: int, channels: int) -> None:
        assert self.shape is None
        self.shape = (height, width, channels)

    def write(self, rows: np.ndarray) -> None:
        assert self.shape is not None and rows.shape[1:] == self.shape[1:]
        self.bands.append(rows.copy())  # valid only during the call


@pytest.mark.parametrize("kind", ["420", "444", "gray", "progressive", "restart"])
def test_decode_jpeg_rows_equals_the_whole_image(monkeypatch, kind: str) -> None:
    monkeypatch.setattr(reader_scans, "BAND_BLOCKS", 40)  # a few iMCU rows per band
    image = synthetic(157, 93, seed=5)
    if kind == "gray":
        data = pillow_jpeg(image[..., 0], 80)
    elif kind == "progressive":
        data = pillow_jpeg(image, 60, progressive=True)
    elif kind == "restart":
        data = pillow_jpeg(image, 70, restart_marker_rows=1)
    else:
        data = pillow_jpeg(image, 75, "4:4:4" if kind == "444" else "4:2:0")
    sink = Collect()
    decode_jpeg_rows(data, sink)
    whole = np.concatenate(sink.bands)
    assert sink.shape == whole.shape and len(sink.bands) > 1
    np.testing.assert_array_equal(whole, decode_jpeg_array(data))
    np.testing.assert_array_equal(whole.squeeze(-1) if kind == "gray" else whole,
                                  pillow_decode(data))


def test_cli_png_is_streamed_and_equals_pillow(tmp_path: Path) -> None:
    image = synthetic(203, 141, seed=8)
    for name, data in (("a.jpg", pillow_jpeg(image, 75)),
                       ("p.jpg", pillow_jpeg(image, 75, progressive=True)),
                       ("g.jpg", pillow_jpeg(image[..., 1], 90))):
        (tmp_path / name).write_bytes(data)
        result = CliRunner().invoke(cli, ["decode", str(tmp_path / name), "-o",
                                          str(tmp_path / (name + ".png"))])
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / (name + ".png"))),
                                      pillow_decode(data))


def test_cli_strict_failure_after_some_rows_leaves_nothing(tmp_path: Path) -> None:
    data = bytearray(pillow_jpeg(synthetic(480, 64, seed=2), 90))
    data[-300:-2] = bytes(range(256)) + bytes(42)  # garbage near the end of the scan
    src = tmp_path / "bad.jpg"
    src.write_bytes(bytes(data))
    result = CliRunner().invoke(cli, ["decode", str(src), "-o", str(tmp_path / "bad.png")])
    assert result.exit_code == 1
    assert "corrupt" in result.output.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]


@pytest.mark.parametrize("suffix", [".bmp", ".ppm", ".tif"])
def test_cli_other_formats_get_the_same_pixels(monkeypatch, tmp_path: Path, suffix: str) -> None:
    """Formats Pillow writes: bands pasted into Pillow's image (several bands here)."""
    monkeypatch.setattr(reader_scans, "BAND_BLOCKS", 40)
    image = synthetic(157, 93, seed=6)
    for name, data in (("c.jpg", pillow_jpeg(image, 75)),
                       ("g.jpg", pillow_jpeg(image[..., 2], 75)),
                       ("p.jpg", pillow_jpeg(image, 75, progressive=True))):
        (tmp_path / name).write_bytes(data)
        out = tmp_path / (name + suffix)
        result = CliRunner().invoke(cli, ["decode", str(tmp_path / name), "-o", str(out)])
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(np.asarray(Image.open(out)), pillow_decode(data))
