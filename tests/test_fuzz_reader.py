"""Fuzzing the reader: mutated valid files (bit flips, truncations, length-field
changes, inserted/deleted bytes, marker surgery) must either decode or raise
:class:`jpegtorch.JPEGError` -- never another exception, never a hang.

Seeded and bounded (a fixed number of mutants, a time limit per decode), so it
runs in a few seconds and fails reproducibly. The main fuzz lowers the pixel
limit to 2**20 so that mutated dimensions stay cheap; its pair below runs at
the real default limits (``max_pixels`` 89,478,485, ``max_memory`` 1 GiB),
with dimension fields mutated to large values on purpose: the path of tiny
files with huge headers.
"""

from __future__ import annotations

import random
import signal
import warnings
from pathlib import Path

import pytest
import torch
from jpegtorch.formats.jfif_reader import (
    DEFAULT_MAX_PIXELS,
    decode_jpeg,
    read_coefficients,
    read_info,
)

from jpegtorch import JPEGError

DATA = Path(__file__).resolve().parent / "data" / "jpeg"
SEEDS = [
    "generated/gen_size_17x13_420.jpg",
    "generated/gen_size_7x9_444_prog.jpg",
    "generated/gen_size_17x13_411_restart.jpg",
    "generated/gen_progressive_gray.jpg",
    "jpeg-decoder/reftest/images/non-interleaved-mcu.jpg",
    "jpeg-decoder/reftest/images/progressive-missing-ac.jpg",
    "jpegsuite/baseline/32x32x8_ycbcr_2x2_2x1_1x2.jpg",
    "jpegsuite/baseline/32x32x8_restarts.jpg",
    "jpegsuite/extended_arithmetic/32x32x8_restarts.jpg",
    "jpegsuite/progressive_arithmetic/32x32x8_ycbcr_2x2_2x1_1x2.jpg",
]
MUTANTS_PER_SEED = 60
PER_DECODE_LIMIT_S = 10.0
MAX_PIXELS = 1 << 20  # mutated dimensions must not turn the test into a benchmark


class Hang(Exception):
    pass


def _on_alarm(signum, frame):  # pragma: no cover - only on a hang
    raise Hang()


def segments(data: bytes) -> list[int]:
    """Offsets of marker segments' length fields (header part of the file)."""
    out = []
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD8, 0xD9) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        out.append(i + 2)
        length = (data[i + 2] << 8) | data[i + 3]
        if marker == 0xDA:
            break
        i += 2 + length
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    if len(buf) < 8:  # already cut to almost nothing: grow it a little
        return bytes(buf) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    kind = rng.randrange(7)
    if kind == 0:  # bit flips anywhere
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del buf[rng.randrange(2, len(buf)):]
    elif kind == 2:  # a length field changed
        fields = segments(data)
        if fields:
            i = rng.choice(fields)
            value = rng.choice([0, 1, 2, 3, rng.randrange(65536), (buf[i] << 8 | buf[i + 1]) + 1,
                                (buf[i] << 8 | buf[i + 1]) - 1])
            buf[i: i + 2] = (value & 0xFFFF).to_bytes(2, "big")
    elif kind == 3:  # header bytes (tables, SOF, SOS parameters) randomised
        fields = segments(data)
        if fields:
            i = rng.choice(fields) + rng.randrange(2, 20)
            if i < len(buf):
                buf[i] = rng.randrange(256)
    elif kind == 4:  # bytes inserted or deleted
        i = rng.randrange(2, len(buf))
        if rng.random() < 0.5:
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del buf[i: i + rng.randint(1, 8)]
    elif kind == 5:  # a marker planted in the data
        i = rng.randrange(2, len(buf) - 1)
        buf[i: i + 2] = bytes([0xFF, rng.choice([0xD0, 0xD3, 0xD9, 0xDA, 0xC4, 0xDB, 0xC0,
                                                 0xC2, 0xDD, 0x00, 0xFF, 0x01])])
    else:  # a segment duplicated or spliced elsewhere
        a, b = sorted(rng.randrange(2, len(buf)) for _ in range(2))
        piece = buf[a: min(b, a + 64)]
        j = rng.randrange(2, len(buf))
        buf[j:j] = piece
    return bytes(buf)


def check(data: bytes, *, pixels: bool, max_pixels: int | None = MAX_PIXELS) -> None:
    for lenient in (False, True):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, PER_DECODE_LIMIT_S)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if pixels and lenient:
                    out = decode_jpeg(data, lenient=True, max_pixels=max_pixels)
                    assert out.dtype == torch.uint8 and out.dim() == 3
                else:
                    coefs = read_coefficients(data, lenient=lenient, max_pixels=max_pixels)
                    assert coefs.blocks[0].dtype == torch.int16
        except JPEGError as exc:
            message = str(exc)
            assert message and "\n" not in message
        except Hang:
            pytest.fail(f"decode hung (> {PER_DECODE_LIMIT_S} s) on a mutant: {data.hex()}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        read_info(data)
    except JPEGError:
        pass


@pytest.fixture(scope="module", autouse=True)
def _compiled_kernels() -> None:
    """Compile (or load from numba's cache) every entropy-decoding kernel before
    the hang guard starts timing: a cold compile in a fresh clone on a busy
    machine can take longer than the per-decode limit."""
    for name in SEEDS:
        data = (DATA / name).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                decode_jpeg(data, lenient=True, max_pixels=MAX_PIXELS)
            except JPEGError:
                pass


@pytest.mark.parametrize("seed_file", SEEDS)
def test_mutants_raise_only_jpegerror(seed_file: str) -> None:
    data = (DATA / seed_file).read_bytes()
    rng = random.Random(f"jpegtorch-fuzz-{seed_file}")
    for n in range(MUTANTS_PER_SEED):
        mutant = mutate(data, rng)
        try:
            check(mutant, pixels=n % 6 == 0)
        except AssertionError:
            raise
        except Exception as exc:  # anything but JPEGError is a bug: show the input
            pytest.fail(f"{type(exc).__name__}: {exc} on mutant {n} of {seed_file}: "
                        f"{mutant.hex()}")


@pytest.mark.parametrize("name", sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*.jp*g")
                                        if p.stat().st_size < 20000))
def test_every_fixture_truncated_everywhere_is_handled(name: str) -> None:
    """Truncations at many offsets: JPEGError (strict) / decode (lenient), no crash."""
    data = (DATA / name).read_bytes()
    step = max(1, len(data) // 6)
    for cut in range(0, len(data), step):
        check(data[:cut], pixels=False)


def mutate_dimensions(data: bytes, rng: random.Random) -> bytes:
    """Set the SOF's height and/or width to large values (up to the JPEG maximum)."""
    buf = bytearray(data)
    for i in range(2, len(buf) - 9):
        if buf[i] == 0xFF and buf[i + 1] in (0xC0, 0xC1, 0xC2, 0xC9, 0xCA):
            which = rng.randrange(3)
            big = [rng.choice([9459, 12000, 20000, 65500, rng.randrange(1, 65536)])
                   for _ in range(2)]
            if which in (0, 2):
                buf[i + 5 : i + 7] = big[0].to_bytes(2, "big")
            if which in (1, 2):
                buf[i + 7 : i + 9] = big[1].to_bytes(2, "big")
            break
    return bytes(buf)


DEFAULT_LIMIT_MUTANTS = 6


@pytest.mark.slow
@pytest.mark.parametrize("seed_file", SEEDS)
def test_mutants_at_the_default_pixel_limit(seed_file: str) -> None:
    """The pair of the fuzz above at the real defaults: huge headers included."""
    data = (DATA / seed_file).read_bytes()
    rng = random.Random(f"jpegtorch-fuzz-default-{seed_file}")
    for n in range(DEFAULT_LIMIT_MUTANTS):
        mutant = mutate_dimensions(data, rng)
        if n % 2:
            mutant = mutate(mutant, rng)
        try:
            check(mutant, pixels=n % 3 == 0, max_pixels=DEFAULT_MAX_PIXELS)
        except AssertionError:
            raise
        except Exception as exc:  # anything but JPEGError is a bug: show the input
            pytest.fail(f"{type(exc).__name__}: {exc} on mutant {n} of {seed_file} "
                        f"(default limits): {mutant.hex()}")
