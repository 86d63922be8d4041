""".jtc files an attacker controls: every header field and stream, with valid CRCs.

Each crafted file must be refused with one clear ``JPEGError`` line, before
anything large is allocated and before torch is imported: by the library
(``decode_image``) and through the CLI (``jtorch decode``: one line per file,
exit status 1, no output, bounded time and memory). Also the pixel limit and
the memory budget.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import load_sample, to_chw
from jpegtorch.formats import container as jtc
from jpegtorch.formats.jfif_reader import DEFAULT_MAX_PIXELS

from jpegtorch import JPEGError
from jpegtorch.learned import codec

pytestmark = pytest.mark.skipif(not codec.DEFAULT_WEIGHTS.exists(),
                                reason="no shipped weights in this checkout")


@pytest.fixture(scope="module")
def valid() -> bytes:
    """A real .jtc file of a 100x150 photo crop (shipped weights, level 1)."""
    image = to_chw(load_sample("kodim23_256x192.png"))[:, :100, :150].contiguous()
    return codec.encode_image(image, 1)


def forge(data: bytes, **changes) -> bytes:
    """``data`` with header fields or streams replaced; CRCs recomputed (valid)."""
    box = jtc.unpack(data)
    fields = {**box.__dict__}
    streams = {s.name: s.data for s in box.streams}
    for name in ("latents", "escapes"):
        if name in changes:
            streams[name] = changes.pop(name)
    fields["streams"] = tuple(jtc.Stream(k, v) for k, v in streams.items())
    fields.update(changes)
    return jtc.pack(jtc.Container(**fields))


def empty(data: bytes, size: int) -> bytes:
    """The issue's 127-byte file: a ``size``² image with empty entropy streams."""
    rows = -(-size // 16)
    return forge(data, width=size, height=size, tensors=(("y", (128, rows, rows)),),
                 latents=b"", escapes=b"")


def crafted(data: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, expected message pattern). Every one has valid CRCs."""
    box = jtc.unpack(data)
    latents = box.streams[0].data
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, len(latents), dtype=np.uint8).tobytes()
    return {
        "empty-4096": (empty(data, 4096), r"'latents' \(empty; a 128x256x256 latent needs"),
        "empty-9459": (empty(data, 9459), r"'latents' \(empty; a 128x592x592 latent needs"),
        "empty-same-size": (forge(data, latents=b"", escapes=b""), r"'latents' \(empty"),
        "truncated-1-word": (forge(data, latents=latents[:-4]), r"truncated .jtc stream"),
        "truncated-half": (forge(data, latents=latents[:len(latents) // 8 * 4]),
                           r"'latents' \(\d+ bytes; a 128x7x10 latent needs|truncated"),
        "leftover-words": (forge(data, latents=latents + b"\0\0\0\0"),
                           r"4 bytes left over after its symbols"),
        "leftover-escapes": (forge(data, escapes=b"\1\2\3\4"),
                             r"'escapes' \(4 bytes left over"),
        "garbage-stream": (forge(data, latents=garbage), r"corrupt .jtc stream|truncated"),
        "oversized-stream": (forge(data, latents=latents + garbage * 50),
                             r"left over after its symbols"),
        "odd-length": (forge(data, latents=latents[:-1]), r"not a multiple of 4"),
        "other-level": (forge(data, level=6), r"stream 'latents'"),
        "over-pixel-limit": (forge(empty(data, 9460), latents=latents),
                             r"exceeds the limit of 89478485 pixels"),
        "huge-65535": (forge(data, width=65535, height=65535,
                             tensors=(("y", (128, 4096, 4096)),)), r"exceeds the limit"),
        "huge-u32": (forge(data, width=2**32 - 1, height=2**32 - 1,
                           tensors=(("y", (128, 2**28, 2**28)),)), r"exceeds the limit"),
        "wide-strip": (forge(data, width=2**32 - 1, height=1,
                             tensors=(("y", (128, 1, 2**28)),)), r"exceeds the limit"),
        "shape-mismatch": (forge(data, tensors=(("y", (128, 8, 10)),)), r"latent shapes"),
        "shape-channels": (forge(data, tensors=(("y", (64, 7, 10)),)), r"latent shapes"),
        "shape-ndim": (forge(data, tensors=(("y", (128, 70)),)), r"latent shapes"),
        "two-tensors": (forge(data, tensors=(("y", (128, 7, 10)), ("z", (1,)))),
                        r"latent shapes"),
        "no-tensor": (forge(data, tensors=()), r"latent shapes"),
        "duplicate-tensor": (forge(data, tensors=(("y", (128, 7, 10)),) * 2), r"latent shapes"),
        "missing-stream": (jtc.pack(jtc.Container(**{**box.__dict__,
                                                     "streams": box.streams[:1]})),
                           r"streams"),
        "extra-stream": (jtc.pack(jtc.Container(**{**box.__dict__, "streams": (
            *box.streams, jtc.Stream("more", b""))})), r"streams"),
        "duplicate-stream": (jtc.pack(jtc.Container(**{**box.__dict__, "streams": (
            box.streams[0], box.streams[0], box.streams[1])})), r"streams"),
        "level-0": (forge(data, level=0), r"level 0 not in 1..6"),
        "level-255": (forge(data, level=255), r"level 255 not in 1..6"),
        "model-hash": (forge(data, model_hash=b"\xff" * 8), r"unknown .jtc model"),
        "codec": (forge(data, codec="hyperprior"), r"unknown .jtc codec"),
    }


def test_the_valid_file_decodes(valid):
    back = codec.decode_image(valid)
    assert back.shape == (3, 100, 150) and back.dtype == torch.uint8
    # gray output of an RGB model is allowed (a gray source), not an attack
    gray = codec.decode_image(forge(valid, channels=1))
    assert gray.shape == (1, 100, 150)


def test_crafted_files_are_refused_quickly(valid):
    codec.load_model()  # time the decoder, not the first load of the weights
    for name, (data, pattern) in crafted(valid).items():
        start = time.perf_counter()
        with pytest.raises(JPEGError, match=pattern) as info:
            codec.decode_image(data)
        assert "\n" not in str(info.value), name
        assert time.perf_counter() - start < 2.0, name  # header checks; nothing decoded


def test_the_127_byte_file_of_the_issue(valid):
    data = empty(valid, 4096)
    assert len(data) == 127 and jtc.unpack(data).width == 4096
    with pytest.raises(JPEGError, match=r"needs at least 218\d\d\d bytes"):
        codec.decode_image(data)


def test_no_pixel_limit_still_bounded(valid):
    """With max_pixels=None the stream bound refuses what the data cannot hold."""
    for size in (9460, 65535):
        with pytest.raises(JPEGError, match=r"latent needs at least"):
            codec.decode_image(empty(valid, size), max_pixels=None, max_memory=None)
    with pytest.raises(JPEGError, match=r"latent needs at least"):
        codec.decode_image(crafted(valid)["huge-u32"][0], max_pixels=None, max_memory=None)
    # the default memory budget (1 GiB, the JPEG decoder's) refuses what the pixel limit lets by
    with pytest.raises(JPEGError, match=r"needs about 21\d\d\d MB .* budget of 1074 MB"):
        codec.decode_image(empty(valid, 65535), max_pixels=None)


def test_streams_must_be_consumed_exactly(valid):
    """Every cut, and every extra word, of a valid stream is refused."""
    latents = jtc.unpack(valid).streams[0].data
    for cut in range(4, len(latents), 4):
        with pytest.raises(JPEGError, match=r"stream 'latents'"):
            codec.decode_image(forge(valid, latents=latents[:-cut]))
    for extra in (b"\0" * 4, b"\xff" * 4, latents[:8]):
        with pytest.raises(JPEGError, match=r"left over"):
            codec.decode_image(forge(valid, latents=latents + extra))


def test_escape_stream_checks():
    """Escaped values: a truncated or padded escape stream is refused."""
    from jpegtorch.learned import entropy

    loaded = codec.load_model()
    tables = loaded.tables[0]
    q = np.zeros((128, 2, 3), np.int32)
    q[5, 1, 2], q[100, 0, 0] = 100000, -7000  # far outside the tables
    latents, escapes = entropy.encode_symbols(q, tables)
    assert len(escapes) >= 4
    assert np.array_equal(entropy.decode_symbols(latents, escapes, q.shape, tables), q)
    with pytest.raises(JPEGError, match=r"'escapes'"):
        entropy.decode_symbols(latents, escapes[:-4], q.shape, tables)
    with pytest.raises(JPEGError, match=r"'escapes' \(4 bytes left over"):
        entropy.decode_symbols(latents, escapes + b"\0" * 4, q.shape, tables)
    with pytest.raises(JPEGError, match=r"truncated .jtc stream 'escapes'"):
        entropy.decode_symbols(latents, b"", q.shape, tables)


def test_min_stream_bits_is_a_true_lower_bound():
    """Real streams are never shorter than the bound (else valid files would be refused)."""
    from jpegtorch.learned import entropy

    loaded = codec.load_model()
    rng = np.random.default_rng(3)
    for level, tables in enumerate(loaded.tables):
        starts = np.concatenate([[0], np.cumsum(tables.lengths)[:-1]])
        mode = np.array([int(np.argmax(tables.freqs[s:s + n])) for s, n in
                         zip(starts, tables.lengths, strict=True)]) + tables.offsets
        for h, w in ((1, 1), (3, 5), (40, 60)):
            flat = np.broadcast_to(mode[:, None, None], (128, h, w)).astype(np.int32)
            noisy = flat + rng.integers(-1, 2, flat.shape).astype(np.int32)
            for q in (flat, noisy):
                latents, _ = entropy.encode_symbols(np.ascontiguousarray(q), tables)
                assert entropy.min_stream_bits(q.shape, tables) <= 8 * len(latents), level


# --- the pixel limit and the memory budget ----------------------------------------------


def test_max_pixels_default_is_the_jpeg_decoders():
    default = inspect.signature(codec.decode_image).parameters["max_pixels"].default
    assert default == DEFAULT_MAX_PIXELS == 89_478_485


def test_max_pixels(valid):
    assert codec.decode_image(valid, max_pixels=15000).shape == (3, 100, 150)
    with pytest.raises(JPEGError, match=r"150x100 \(15000 pixels\) exceeds the limit of "
                                        r"14999 pixels"):
        codec.decode_image(valid, max_pixels=14999)
    assert codec.decode_image(valid, max_pixels=None).shape == (3, 100, 150)
    # at the real default: one pixel over it is refused before the model is even loaded,
    # one at it passes the pixel check (and is refused by the stream check)
    limit = DEFAULT_MAX_PIXELS
    over = forge(valid, width=limit + 1, height=1,
                 tensors=(("y", (128, 1, -(-(limit + 1) // 16))),))
    with pytest.raises(JPEGError, match=rf"{limit + 1}x1 \({limit + 1} pixels\) exceeds the "
                                        rf"limit of {limit} pixels"):
        codec.decode_image(over, model="/nonexistent/weights.pt")
    at = forge(valid, width=limit, height=1, tensors=(("y", (128, 1, -(-limit // 16))),))
    with pytest.raises(JPEGError, match=r"latent needs at least"):
        codec.decode_image(at, max_memory=None)
    # (a strip one pixel high still needs a 16-pixel row of latents: 2.9 GB of them here)
    with pytest.raises(JPEGError, match=r"89478485x1 needs about 3\d\d\d MB"):
        codec.decode_image(at)


def test_max_memory(valid):
    box = jtc.unpack(valid)
    need = codec.decode_memory(box, 128, 80)
    # the image, the int32 latents and one tile's feature maps
    assert need >= 3 * 100 * 150 + 4 * 128 * 7 * 10 + 6 * 4 * 80 * 56 * 80
    assert codec.decode_image(valid, max_memory=need).shape == (3, 100, 150)
    with pytest.raises(JPEGError, match=r"needs about .* more than the budget"):
        codec.decode_image(valid, max_memory=need - 1)
    # the working set is one tile's: the estimate grows like the image, not faster
    sizes = {mp: jtc.Container(**{**box.__dict__, "width": 500 * mp, "height": 2000})
             for mp in (6, 12, 24)}
    need = {mp: codec.decode_memory(b, 128, 80) for mp, b in sizes.items()}
    assert (need[24] - need[12]) / 12 == pytest.approx((need[12] - need[6]) / 6, rel=1e-2)
    assert 3 * 24e6 < need[24] < 300e6  # image (3 B/px) + latents (2 B/px) + one tile


# --- through the CLI ----------------------------------------------------------------------

# Runs ``jtorch`` and prints the process's own peak RSS (VmHWM, kB) on stderr. Not
# getrusage(RUSAGE_CHILDREN) in the test: Linux carries ru_maxrss over from before exec,
# so a child forked from a large pytest worker would report the worker's size.
_RUN_CLI = """
import sys
from jpegtorch.cli.main import cli
sys.argv = ["jtorch", *sys.argv[1:]]
try:
    cli()
except SystemExit as exc:
    code = exc.code or 0
with open("/proc/self/status") as status:
    hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")][0]
print(f"VMHWM {hwm}", file=sys.stderr)
sys.exit(code)
"""


def test_cli_refuses_each_crafted_file_in_one_line(tmp_path, valid):
    files = []
    for name, (data, _) in crafted(valid).items():
        path = tmp_path / f"{name}.jtc"
        path.write_bytes(data)
        files.append(path)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", _RUN_CLI,
                             "decode", *map(str, files), "-o", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    elapsed = time.perf_counter() - start
    peak_kb = int([x for x in result.stderr.splitlines() if x.startswith("VMHWM ")][-1].split()[1])
    assert result.returncode == 1
    imports = [x for x in result.stderr.splitlines() if x.startswith("import time:")]
    assert imports and not [x for x in imports if x.rstrip().endswith("| torch")]
    lines = [x for x in result.stderr.strip().splitlines()
             if not x.startswith(("import time:", "jtorch: summary:", "VMHWM "))]
    assert len(lines) == len(files), result.stderr
    patterns = crafted(valid)
    by_file = {}
    for line in lines:
        assert line.startswith("jtorch: "), line
        name, _, message = line[len("jtorch: "):].partition(": ")
        by_file[name] = message
    assert set(by_file) == {str(f) for f in files}
    for path in files:
        assert re.search(patterns[path.stem][1], by_file[str(path)]), by_file[str(path)]
    assert "Traceback" not in result.stderr and not list(out.iterdir())
    # every check is torch-free: all 28 files in ~1 s and ~50 MB here (limits: 10 s and
    # 1.5 GB per file; 2 s and 500 MB for small outputs)
    assert elapsed < 2 * len(files)
    assert peak_kb < 500_000, peak_kb


def test_cli_max_pixels_reaches_the_jtc_decoder(tmp_path, valid):
    from click.testing import CliRunner
    from jpegtorch.cli.main import cli

    path = tmp_path / "a.jtc"
    path.write_bytes(valid)
    runner = CliRunner()
    result = runner.invoke(cli, ["decode", str(path), "-o", str(tmp_path / "a.png"),
                                 "--max-pixels", "14999"])
    assert result.exit_code == 1 and "exceeds the limit of 14999 pixels" in result.output
    assert not (tmp_path / "a.png").exists()
    big = tmp_path / "big.jtc"
    big.write_bytes(empty(valid, 9460))
    result = runner.invoke(cli, ["decode", str(big), "-o", str(tmp_path / "b.png")])
    assert result.exit_code == 1 and "exceeds the limit of 89478485 pixels" in result.output
    result = runner.invoke(cli, ["decode", str(big), "-o", str(tmp_path / "b.png"),
                                 "--max-pixels", "0"])
    assert result.exit_code == 1 and "latent needs at least" in result.output


def test_cli_decode_bytes_passes_both_limits(valid):
    from jpegtorch.cli.decode import decode_bytes

    assert decode_bytes(valid, lenient=False, max_pixels=None).shape == (100, 150, 3)
    with pytest.raises(JPEGError, match=r"more than the budget of 1000 bytes"):
        decode_bytes(valid, lenient=False, max_pixels=None, max_memory=1000)
    with pytest.raises(JPEGError, match=r"exceeds the limit of 100 pixels"):
        decode_bytes(valid, lenient=False, max_pixels=100)
