"""The baseline JFIF writer: byte-identical to libjpeg-turbo (Pillow's bytes).

Also the pieces it is built from: zigzag order, Huffman tables (Annex K and
libjpeg's optimal tables), quantization-table files, and its error handling.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from conftest import load_sample, synthetic, to_chw
from jpegtorch.formats import huffman, qtables, zigzag
from jpegtorch.formats.jfif_writer import encode_jpeg, write_coefficients
from PIL import Image, ImageFile

import jpegtorch
from jpegtorch import JPEGError
from jpegtorch.coefficients import Coefficients

PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
SUBSAMPLINGS = list(PIL_SUBSAMPLING)


def pillow_bytes(array: np.ndarray, quality: int = 75, subsampling: str = "4:2:0", *,
                 optimize: bool = False, restart: int = 0) -> bytes:
    """libjpeg-turbo's file, written by Pillow (the oracle)."""
    options: dict = dict(quality=quality, optimize=optimize)
    if restart:
        options["restart_marker_blocks"] = restart
    if array.ndim == 3:
        # Pillow writes its gray component with the requested (meaningless)
        # sampling factors; gray JPEGs are compared at Pillow's default (1x1).
        options["subsampling"] = PIL_SUBSAMPLING[subsampling]
    buffer = io.BytesIO()
    saved = ImageFile.MAXBLOCK
    ImageFile.MAXBLOCK = 1 << 24  # Pillow's optimize buffer is too small for noise at q=100
    try:
        Image.fromarray(array).save(buffer, "JPEG", **options)
    finally:
        ImageFile.MAXBLOCK = saved
    return buffer.getvalue()


def ours(array: np.ndarray, quality: int = 75, subsampling: str = "4:2:0", **kwargs) -> bytes:
    return encode_jpeg(to_chw(array), quality, subsampling=subsampling, **kwargs)


def assert_same_bytes(a: bytes, b: bytes) -> None:
    if a != b:
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        pytest.fail(f"files differ: {len(a)} vs {len(b)} bytes, first difference at {first}")


def checkerboard(height: int, width: int) -> np.ndarray:
    """Alternating black and white 8×8 blocks: the largest DC differences (category 11)."""
    yy, xx = np.mgrid[:height, :width]
    return (((yy // 8 + xx // 8) % 2) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- zigzag


def test_zigzag_order_and_inverse() -> None:
    assert zigzag.ZIGZAG[:10] == (0, 1, 8, 16, 9, 2, 3, 10, 17, 24)
    assert zigzag.ZIGZAG[-6:] == (61, 54, 47, 55, 62, 63)
    assert sorted(zigzag.ZIGZAG) == list(range(64))
    for k, n in enumerate(zigzag.ZIGZAG):
        assert zigzag.NATURAL_TO_ZIGZAG[n] == k
    # Every zigzag step moves to a neighbouring cell (including diagonals).
    for a, b in zip(zigzag.ZIGZAG, zigzag.ZIGZAG[1:], strict=False):
        assert max(abs(a // 8 - b // 8), abs(a % 8 - b % 8)) == 1
    block = np.arange(64 * 3).reshape(3, 8, 8)
    zz = zigzag.to_zigzag(block)
    assert zz.shape == (3, 64) and zz[0, 2] == 8
    np.testing.assert_array_equal(zigzag.from_zigzag(zz), block)


# --------------------------------------------------------------------------- Huffman


def test_standard_tables_give_annex_k_codes() -> None:
    # Table K.3 (DC luminance): category -> code.
    expected = ["00", "010", "011", "100", "101", "110", "1110", "11110", "111110",
                "1111110", "11111110", "111111110"]
    codes, sizes = huffman.code_table(huffman.STD_DC_LUMA, is_dc=True)
    assert [format(int(codes[s]), f"0{sizes[s]}b") for s in range(12)] == expected
    codes, sizes = huffman.code_table(huffman.STD_AC_LUMA, is_dc=False)
    assert (format(int(codes[0x00]), f"0{sizes[0x00]}b")) == "1010"  # EOB
    assert (format(int(codes[0xF0]), f"0{sizes[0xF0]}b")) == "11111111001"  # ZRL
    assert (format(int(codes[0x01]), f"0{sizes[0x01]}b")) == "00"
    for table in (huffman.STD_AC_LUMA, huffman.STD_AC_CHROMA):
        assert sum(table[0]) == len(table[1]) == 162
    for table, is_dc in ((huffman.STD_DC_CHROMA, True), (huffman.STD_AC_CHROMA, False)):
        huffman.validate_table(table, is_dc=is_dc)


@pytest.mark.parametrize("table", [
    ((2,) + (0,) * 15, (0, 1)),             # two 1-bit codes: one is all ones
    ((0,) * 16, ()),                        # no symbols
    ((1,) + (0,) * 15, (16,)),              # DC symbol out of range
    ((0, 2) + (0,) * 14, (3, 3)),           # duplicated symbol
    ((0, 2) + (0,) * 13, (3, 4)),           # 15 counts
])
def test_invalid_huffman_tables_are_refused(table) -> None:
    with pytest.raises(JPEGError):
        huffman.validate_table(table, is_dc=True)


def libjpeg_gen_optimal_table(freq: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A literal transcription of libjpeg's jpeg_gen_optimal_table (the oracle)."""
    freq = [*list(freq[:256]), 1]
    bits = [0] * 33
    codesize = [0] * 257
    others = [-1] * 257
    while True:
        c1, v = -1, 1_000_000_000
        for i in range(257):
            if freq[i] and freq[i] <= v:
                v, c1 = freq[i], i
        c2, v = -1, 1_000_000_000
        for i in range(257):
            if freq[i] and freq[i] <= v and i != c1:
                v, c2 = freq[i], i
        if c2 < 0:
            break
        freq[c1] += freq[c2]
        freq[c2] = 0
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            codesize[c2] += 1
    for i in range(257):
        if codesize[i]:
            bits[codesize[i]] += 1
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    huffval = [j for i in range(1, 33) for j in range(256) if codesize[j] == i]
    return tuple(bits[1:17]), tuple(huffval)


def test_optimal_table_matches_libjpeg_algorithm() -> None:
    rng = random.Random(3)
    cases = [
        [0] * 256,                                      # only the pseudo-symbol
        [5] + [0] * 255,                                # one symbol
        [1] * 256,                                      # all ties
        [int(1.6 ** k) if k < 40 else 0 for k in range(256)],  # needs length limiting
    ]
    for _ in range(40):
        n = rng.choice([3, 12, 60, 162, 256])
        counts = [0] * 256
        for s in rng.sample(range(256), n):
            counts[s] = rng.choice([1, 1, 2, 3, rng.randint(1, 50), rng.randint(1, 100000)])
        cases.append(counts)
    for counts in cases:
        table = huffman.optimal_table(counts)
        if sum(counts):
            assert table == libjpeg_gen_optimal_table(counts)
            huffman.validate_table(table, is_dc=False)
        assert max((i + 1 for i, b in enumerate(table[0]) if b), default=0) <= 16


def test_optimal_table_limits_code_lengths_to_16() -> None:
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    counts = fib + [0] * (256 - len(fib))
    bits, huffval = huffman.optimal_table(counts)
    assert len(huffval) == 30 and sum(bits) == 30 and bits[15] > 0
    _codes, sizes = huffman.code_table((bits, huffval), is_dc=False)
    # The most frequent symbol gets the shortest code.
    assert sizes[29] == min(sizes[s] for s in range(30))


# --------------------------------------------------------------------------- byte identity


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
@pytest.mark.parametrize("quality", [1, 3, 10, 25, 49, 50, 51, 75, 90, 95, 99, 100])
def test_photo_bytes_match_pillow(quality: int, subsampling: str) -> None:
    image = load_sample("kodim23_256x192.png")
    assert_same_bytes(ours(image, quality, subsampling), pillow_bytes(image, quality, subsampling))


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (13, 17), (16, 17), (17, 13), (217, 333),
                                  (33, 1), (1, 40)])
@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_odd_sizes_match_pillow(size: tuple[int, int], subsampling: str) -> None:
    h, w = size
    image = synthetic(h, w, seed=h * 1000 + w)
    for quality in (30, 75, 97):
        assert_same_bytes(ours(image, quality, subsampling),
                          pillow_bytes(image, quality, subsampling))
    gray = image[..., 1].copy()
    assert_same_bytes(ours(gray, 75), pillow_bytes(gray, 75))


@pytest.mark.parametrize("quality", [1, 20, 50, 75, 90, 100])
def test_grayscale_matches_pillow(quality: int) -> None:
    gray = load_sample("kodim15_gray_256x256.png", mode="L")
    data = ours(gray, quality)
    assert_same_bytes(data, pillow_bytes(gray, quality))
    assert Image.open(io.BytesIO(data)).mode == "L"


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_extreme_coefficients_match_pillow(subsampling: str) -> None:
    """Noise at q=100 (large AC values, many 0xFF bytes) and 8×8 checkerboards
    (DC differences of category 11)."""
    noise = synthetic(40, 56, seed=5, kind="noise")
    board = np.repeat(checkerboard(48, 64)[..., None], 3, axis=-1)
    for image in (noise, board, board[..., 0].copy()):
        for optimize in (False, True):
            assert_same_bytes(ours(image, 100, subsampling, optimize=optimize),
                              pillow_bytes(image, 100, subsampling, optimize=optimize))


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
@pytest.mark.parametrize("quality", [5, 50, 75, 95, 100])
def test_optimize_matches_pillow(quality: int, subsampling: str) -> None:
    image = load_sample("kodim23_256x192.png")
    data = ours(image, quality, subsampling, optimize=True)
    assert_same_bytes(data, pillow_bytes(image, quality, subsampling, optimize=True))
    assert len(data) < len(ours(image, quality, subsampling))


def test_optimize_odd_sizes_and_gray_match_pillow() -> None:
    for h, w in [(1, 1), (17, 13), (217, 333)]:
        image = synthetic(h, w, seed=w)
        for subsampling in SUBSAMPLINGS:
            assert_same_bytes(ours(image, 80, subsampling, optimize=True),
                              pillow_bytes(image, 80, subsampling, optimize=True))
        gray = image[..., 0].copy()
        assert_same_bytes(ours(gray, 80, optimize=True), pillow_bytes(gray, 80, optimize=True))


@pytest.mark.parametrize("restart", [1, 2, 3, 7, 8, 9, 50, 65535])
def test_restart_intervals_match_pillow(restart: int) -> None:
    image = load_sample("kodim01_233x151.png")
    gray = image[..., 0].copy()
    for subsampling in SUBSAMPLINGS:
        for optimize in (False, True):
            data = ours(image, 75, subsampling, optimize=optimize, restart_interval=restart)
            assert_same_bytes(data, pillow_bytes(image, 75, subsampling, optimize=optimize,
                                                 restart=restart))
    assert_same_bytes(ours(gray, 60, restart_interval=restart),
                      pillow_bytes(gray, 60, restart=restart))
    data = ours(image, 75, restart_interval=restart)
    assert (b"\xff\xdd\x00\x04" + restart.to_bytes(2, "big")) in data
    assert (b"\xff\xd0" in data) == (restart < 150)  # 150 MCUs at 4:2:0


def test_file_layout() -> None:
    """SOI, APP0 JFIF 1.01, DQT 0, DQT 1, SOF0, DHT DC0 AC0 DC1 AC1, SOS, ..., EOI."""
    data = ours(synthetic(20, 30), 75)
    markers = []
    i = 2
    while data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        markers.append((data[i + 1], data[i + 4 : i + 2 + length]))
        i += 2 + length
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert [m for m, _ in markers] == [0xE0, 0xDB, 0xDB, 0xC0, 0xC4, 0xC4, 0xC4, 0xC4]
    assert markers[0][1] == b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    assert [p[0] for m, p in markers if m == 0xC4] == [0x00, 0x10, 0x01, 0x11]
    assert markers[3][1] == bytes([8, 0, 20, 0, 30, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])


# --------------------------------------------------------------------------- API


def test_write_coefficients_matches_encode_jpeg_and_accepts_float_blocks() -> None:
    image = load_sample("kodim01_233x151.png")
    x = to_chw(image)
    coefficients = jpegtorch.encode(x, 60, subsampling="4:2:2")
    data = write_coefficients(coefficients, optimize=True, restart_interval=4)
    assert data == encode_jpeg(x, 60, subsampling="4:2:2", optimize=True, restart_interval=4)
    as_float = Coefficients(
        blocks=tuple(b.to(torch.float32) for b in coefficients.blocks),
        qtables=coefficients.qtables.to(torch.float32), sampling=coefficients.sampling,
        size=coefficients.size, color=coefficients.color,
    )
    assert write_coefficients(as_float, optimize=True, restart_interval=4) == data


def test_float_pipeline_coefficients_write_the_same_file() -> None:
    image = load_sample("kodim01_233x151.png")
    coefficients = jpegtorch.encode(to_chw(image).float() / 255, 75, mode="hard")
    assert write_coefficients(coefficients) == pillow_bytes(image, 75)


def test_sixteen_bit_quantization_tables_write_sof1() -> None:
    gray = load_sample("kodim15_gray_256x256.png", mode="L")
    coefficients = jpegtorch.encode(to_chw(gray), 50)
    qtables = coefficients.qtables.clone()
    qtables[..., 0, 0] = 300  # DQT precision 1
    blocks = coefficients.blocks[0].clone()
    blocks[..., 0, 0] = torch.div(blocks[..., 0, 0] * 16, 300, rounding_mode="trunc")
    wide = Coefficients(blocks=(blocks,), qtables=qtables, sampling=((1, 1),),
                        size=coefficients.size, color="gray")
    data = write_coefficients(wide)
    assert b"\xff\xc1" in data and b"\xff\xc0" not in data
    assert b"\xff\xdb\x00\x83\x10\x01\x2c" in data  # 16-bit DQT, first entry 300
    decoded = np.array(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(decoded, jpegtorch.decode(wide)[0, 0].numpy())


def test_base_tables_as_tensor_file_and_preset(tmp_path) -> None:
    image = load_sample("kodim23_256x192.png")
    x = to_chw(image)
    reference = encode_jpeg(x, 75)
    annex = torch.tensor([qtables.ANNEX_K_LUMA, qtables.ANNEX_K_CHROMA]).reshape(2, 8, 8)
    assert encode_jpeg(x, 75, tables=annex) == reference
    assert encode_jpeg(x, 75, tables="annex-k") == reference
    path = tmp_path / "annex.txt"
    qtables.write_qtables(path, [qtables.ANNEX_K_LUMA, qtables.ANNEX_K_CHROMA])
    assert encode_jpeg(x, 75, tables=path) == reference
    assert encode_jpeg(x, 75, tables=str(path)) == reference
    flat = torch.full((2, 8, 8), 10)
    data = encode_jpeg(x, 50, tables=flat)  # quality 50: the tables as given
    assert b"\xff\xdb\x00\x43\x00" + bytes([10] * 64) in data
    assert b"\xff\xdb\x00\x43\x01" + bytes([10] * 64) in data


def test_annex_k_tables_agree_with_the_pipeline() -> None:
    from jpegtorch.quantize import ANNEX_K_CHROMA, ANNEX_K_LUMA

    assert tuple(ANNEX_K_LUMA.reshape(64).tolist()) == qtables.ANNEX_K_LUMA
    assert tuple(ANNEX_K_CHROMA.reshape(64).tolist()) == qtables.ANNEX_K_CHROMA


def test_public_names_are_exported() -> None:
    assert jpegtorch.encode_jpeg is encode_jpeg
    assert jpegtorch.write_coefficients is write_coefficients


@pytest.mark.parametrize("kwargs", [
    dict(image=torch.zeros(3, 8, 8)),                           # float image
    dict(image=torch.zeros(4, 8, 8, dtype=torch.uint8)),        # 4 channels
    dict(image=torch.zeros(1, 3, 8, 8, dtype=torch.uint8)),     # batch
    dict(image=torch.zeros(3, 0, 8, dtype=torch.uint8)),        # empty
    dict(image=np.zeros((8, 8, 3), np.uint8)),                  # not a tensor
    dict(quality=0), dict(quality=101), dict(quality=75.5), dict(quality=True),
    dict(subsampling="4:2:1"), dict(restart_interval=-1), dict(restart_interval=65536),
    dict(tables=torch.zeros(8, 8)), dict(tables=torch.full((2, 8, 8), 0.5)),
    dict(tables="no-such-preset"), dict(tables=3),
])
def test_encode_jpeg_argument_errors(kwargs) -> None:
    arguments = dict(image=torch.zeros(3, 8, 8, dtype=torch.uint8))
    arguments.update(kwargs)
    image = arguments.pop("image")
    with pytest.raises(JPEGError) as info:
        encode_jpeg(image, **arguments)
    assert "\n" not in str(info.value)


def test_write_coefficients_errors() -> None:
    x = to_chw(synthetic(16, 16))
    coefficients = jpegtorch.encode(torch.stack([x, x]), 75)
    with pytest.raises(JPEGError, match="batch"):
        write_coefficients(coefficients)
    one = coefficients.select(0)
    big = one.blocks[0].clone()
    big[0, 0, 0, 0, 5] = 1024  # |AC| > 1023
    with pytest.raises(JPEGError, match="AC coefficient"):
        write_coefficients(Coefficients(blocks=(big, *one.blocks[1:]), qtables=one.qtables,
                                        sampling=one.sampling, size=one.size))
    dc = one.blocks[0].clone()
    dc[0, 0, 0, 0, 0] = 2048  # DC difference 2048 from the predictor 0
    with pytest.raises(JPEGError, match="DC difference"):
        write_coefficients(Coefficients(blocks=(dc, *one.blocks[1:]), qtables=one.qtables,
                                        sampling=one.sampling, size=one.size))
    nan = one.blocks[0].to(torch.float32)
    nan[0, 0, 0, 1, 1] = float("nan")
    with pytest.raises(JPEGError, match="finite"):
        write_coefficients(Coefficients(blocks=(nan, *one.blocks[1:]), qtables=one.qtables,
                                        sampling=one.sampling, size=one.size))
    with pytest.raises(JPEGError, match="restart"):
        write_coefficients(one, restart_interval=-2)
    zero_table = one.qtables.clone()
    zero_table[0, 0, 0, 0] = 0
    with pytest.raises(JPEGError, match="quantization"):
        write_coefficients(Coefficients(blocks=one.blocks, qtables=zero_table,
                                        sampling=one.sampling, size=one.size))
    with pytest.raises(JPEGError, match="blocks"):
        write_coefficients(Coefficients(blocks=(one.blocks[0][:, :1], *one.blocks[1:]),
                                        qtables=one.qtables, sampling=one.sampling,
                                        size=one.size))


# --------------------------------------------------------------------------- qtables files


WIZARD_EXAMPLE = """
# Quantization tables given in Annex K (Clause K.1) of
# Recommendation ITU-T T.81 (1992) | ISO/IEC 10918-1:1994.

# This is table 0 (the luminance table):
  16  11  10  16  24  40  51  61
  12  12  14  19  26  58  60  55
  14  13  16  24  40  57  69  56
  14  17  22  29  51  87  80  62
  18  22  37  56  68 109 103  77
  24  35  55  64  81 104 113  92
  49  64  78  87 103 121 120 101
  72  92  95  98 112 100 103  99

# This is table 1 (the chrominance table):
  17  18  24  47  99  99  99  99
  18  21  26  66  99  99  99  99
  24  26  56  99  99  99  99  99
  47  66  99  99  99  99  99  99
  99  99  99  99  99  99  99  99
  99  99  99  99  99  99  99  99
  99  99  99  99  99  99  99  99
  99  99  99  99  99  99  99  99
"""


def test_qtables_parse_format_roundtrip(tmp_path) -> None:
    tables = qtables.parse_qtables(WIZARD_EXAMPLE)
    assert tables == [qtables.ANNEX_K_LUMA, qtables.ANNEX_K_CHROMA]
    text = qtables.format_qtables(tables, comment="two tables\nsecond line")
    assert text.startswith("# two tables\n# second line\n")
    assert qtables.parse_qtables(text) == tables
    three = [*tables, tuple(range(1, 65))]
    path = tmp_path / "q.txt"
    qtables.write_qtables(path, three)
    assert qtables.read_qtables(path) == three
    assert qtables.parse_qtables("1 2 3 4#comment 5\n" + " 7" * 60) == [
        (1, 2, 3, 4, *([7] * 60))]


@pytest.mark.parametrize("text", ["", "# only a comment", "1 2 3", "1 2 x 4" + " 1" * 61,
                                  " 1" * (64 * 5), " 70000" * 64, "-1" + " 1" * 63])
def test_qtables_parse_errors(text: str) -> None:
    with pytest.raises(JPEGError):
        qtables.parse_qtables(text)


def test_qtables_resolution(tmp_path, monkeypatch) -> None:
    single = tmp_path / "one.txt"
    single.write_text(" 3" * 64)
    assert qtables.resolve_tables(single) == ((3,) * 64, qtables.ANNEX_K_CHROMA)
    four = tmp_path / "four.txt"
    four.write_text(" ".join(str(t) for t in range(1, 5) for _ in range(64)))
    assert qtables.resolve_tables(four) == ((1,) * 64, (2,) * 64)
    assert qtables.resolve_tables("annex-k") == (qtables.ANNEX_K_LUMA, qtables.ANNEX_K_CHROMA)
    monkeypatch.setattr(qtables, "presets_dir", lambda: tmp_path)
    assert qtables.resolve_tables("four") == ((1,) * 64, (2,) * 64)
    assert {"annex-k", "four", "one"} <= set(qtables.available_presets())
    for bad in ("nonexistent", "../four", str(tmp_path / "missing.txt")):
        with pytest.raises(JPEGError):
            qtables.resolve_tables(bad)


# --------------------------------------------------------------------------- with the reader


@pytest.mark.parametrize("options", [
    dict(), dict(optimize=True), dict(restart_marker_blocks=3), dict(subsampling=1),
    dict(subsampling=0, optimize=True, restart_marker_blocks=1),
])
def test_reading_and_rewriting_a_file_gives_the_same_bytes(options: dict) -> None:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(pillow_bytes(load_sample("kodim23_256x192.png"), 100))).save(
        buffer, "JPEG", quality=80, **options)
    original = buffer.getvalue()
    coefficients = jpegtorch.read_coefficients(original)
    data = write_coefficients(coefficients, optimize=options.get("optimize", False),
                              restart_interval=options.get("restart_marker_blocks", 0))
    assert_same_bytes(data, original)
    gray = pillow_bytes(load_sample("kodim15_gray_256x256.png", mode="L"), 70, optimize=True)
    assert_same_bytes(write_coefficients(jpegtorch.read_coefficients(gray), optimize=True), gray)
