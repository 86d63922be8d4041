"""The .jtc container: round trips and a clear error for every kind of damage."""

from __future__ import annotations

import struct
import zlib

import pytest
from jpegtorch.formats import container as jtc

from jpegtorch import JPEGError


def _sample() -> jtc.Container:
    return jtc.Container(
        codec="factorized-gain", model="test-model", model_hash=bytes(range(8)), level=3,
        width=777, height=513, channels=3, tensors=(("y", (128, 33, 49)),),
        streams=(jtc.Stream("latents", bytes(range(256)) * 3), jtc.Stream("escapes", b"")))


def test_round_trip_and_determinism():
    box = _sample()
    data = jtc.pack(box)
    assert data.startswith(jtc.MAGIC) and jtc.is_container(data)
    assert jtc.unpack(data) == box
    assert jtc.pack(jtc.unpack(data)) == data


def test_is_container():
    assert not jtc.is_container(b"\xff\xd8\xff\xe0")
    assert not jtc.is_container(b"")
    assert not jtc.is_container(b"\x89PNG\r\n\x1a\n")


def test_describe():
    data = jtc.pack(_sample())
    info = jtc.describe(data)
    assert info["format"] == "jtc" and info["version"] == jtc.VERSION
    assert (info["width"], info["height"], info["channels"], info["level"]) == (777, 513, 3, 3)
    assert info["model_hash"] == bytes(range(8)).hex()
    assert info["tensors"] == [{"name": "y", "shape": [128, 33, 49]}]
    assert [s["name"] for s in info["streams"]] == ["latents", "escapes"]
    assert [s["bits"] for s in info["streams"]] == [768 * 8, 0]
    assert info["file_bytes"] == len(data)
    assert info["header_bytes"] + 768 == len(data)


def _header_end(data: bytes) -> int:
    (size,) = struct.unpack_from("<I", data, 9)
    return 13 + size + 4


def test_wrong_magic():
    data = bytearray(jtc.pack(_sample()))
    data[1] ^= 0x20
    with pytest.raises(JPEGError, match=r"bad magic"):
        jtc.unpack(bytes(data))
    with pytest.raises(JPEGError, match=r"bad magic"):
        jtc.unpack(b"\xff\xd8\xff\xe0" + bytes(40))


def test_unknown_version():
    data = bytearray(jtc.pack(_sample()))
    data[8] = 2
    with pytest.raises(JPEGError, match=r"unsupported .jtc version 2"):
        jtc.unpack(bytes(data))


def test_header_crc():
    data = bytearray(jtc.pack(_sample()))
    data[20] ^= 0x01  # inside the header body (the codec name)
    with pytest.raises(JPEGError, match=r"header .CRC32 mismatch"):
        jtc.unpack(bytes(data))
    data = bytearray(jtc.pack(_sample()))
    data[_header_end(data) - 1] ^= 0x80  # the CRC itself
    with pytest.raises(JPEGError, match=r"header .CRC32 mismatch"):
        jtc.unpack(bytes(data))


@pytest.mark.parametrize("which", ["latents", "escapes"])
def test_stream_crc(which):
    box = _sample()
    box = jtc.Container(**{**box.__dict__, "streams": (
        jtc.Stream("latents", b"\x01\x02\x03\x04" * 10), jtc.Stream("escapes", b"\x05" * 8))})
    data = bytearray(jtc.pack(box))
    start = _header_end(data) + (0 if which == "latents" else 40)
    data[start + 3] ^= 0x10
    with pytest.raises(JPEGError, match=rf"stream '{which}' .CRC32 mismatch"):
        jtc.unpack(bytes(data))


def test_truncation_everywhere():
    data = jtc.pack(_sample())
    for cut in [*range(40), len(data) // 2, len(data) - 1]:
        with pytest.raises(JPEGError, match=r"truncated|bad magic"):
            jtc.unpack(data[:cut])
    # every cut after the magic is reported as truncation, never as something else
    for cut in range(len(jtc.MAGIC), len(data), 7):
        with pytest.raises(JPEGError, match=r"truncated"):
            jtc.unpack(data[:cut])


def test_trailing_data():
    data = jtc.pack(_sample())
    with pytest.raises(JPEGError, match=r"trailing data"):
        jtc.unpack(data + b"\x00")


def test_inconsistent_header_with_valid_crc():
    data = jtc.pack(_sample())
    end = _header_end(data) - 4
    body = bytearray(data[13:end]) + b"\x00"  # one byte too many
    head = jtc.MAGIC + struct.pack("<BI", 1, len(body)) + bytes(body)
    forged = head + struct.pack("<I", zlib.crc32(head)) + data[end + 4:]
    with pytest.raises(JPEGError, match=r"corrupt .jtc header"):
        jtc.unpack(forged)


def test_errors_are_one_line_value_errors():
    data = jtc.pack(_sample())
    for bad in (b"", data[:-1], data[:20], b"nope" * 10):
        with pytest.raises(ValueError) as info:
            jtc.unpack(bad)
        assert "\n" not in str(info.value)


def test_pack_rejects_bad_fields():
    box = _sample()
    with pytest.raises(ValueError):
        jtc.pack(jtc.Container(**{**box.__dict__, "model_hash": b"short"}))
    with pytest.raises(ValueError):
        jtc.pack(jtc.Container(**{**box.__dict__, "channels": 2}))
