"""Batches (issue 11): no clobbering, output planning, folders, file lists, --jobs,
--json, the summary line, and signals during a write (real subprocesses)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import synthetic
from jpegtorch.cli.main import cli
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HOLD = "JTORCH_TEST_HOLD_WRITE"


def invoke(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def jtorch(*args: str, input: bytes | None = None, env: dict[str, str] | None = None,
           cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "jpegtorch.cli.main", *args], input=input,
                          capture_output=True, cwd=cwd, timeout=300,
                          env={**os.environ, **(env or {})})


def png(path: Path, seed: int = 0, size: tuple[int, int] = (40, 56)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(synthetic(*size, seed=seed)).save(path)
    return path


def pillow_jpeg(path: Path, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith("jtorch: ") and not line.startswith(("jtorch: warning:",
                                                                    "jtorch: summary:"))]


# --- no silent replacement ---------------------------------------------------------------


def test_decode_beside_an_existing_same_stem_file_leaves_it(tmp_path: Path) -> None:
    src = png(tmp_path / "photo.png")
    (tmp_path / "photo.jpg").write_bytes(pillow_jpeg(src))
    before = src.read_bytes()
    result = invoke("decode", str(tmp_path / "photo.jpg"))
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"jtorch: {tmp_path / 'photo.jpg'}: {tmp_path / 'photo.png'} exists "
        "(use -f/--force to replace it)"]
    assert src.read_bytes() == before
    assert tree(tmp_path) == ["photo.jpg", "photo.png"]  # no temporary file either
    # the README's pair: encode then decode, without -o: refused, the original stays
    result = invoke("encode", str(src), "-q", "10", "-f")
    assert result.exit_code == 0
    result = invoke("decode", str(tmp_path / "photo.jpg"))
    assert result.exit_code == 1 and src.read_bytes() == before
    # --force replaces an output, never an input
    result = invoke("decode", str(tmp_path / "photo.jpg"), "--force")
    assert result.exit_code == 0 and src.read_bytes() != before


def test_a_batch_refuses_only_the_existing_outputs(tmp_path: Path) -> None:
    a, b = png(tmp_path / "a.png", 1), png(tmp_path / "b.png", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"keep me")
    result = invoke("encode", str(a), str(b), "-o", str(out))
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"jtorch: {a}: {out / 'a.jpg'} exists (use -f/--force to replace it)"]
    assert (out / "a.jpg").read_bytes() == b"keep me"
    assert (out / "b.jpg").read_bytes() == pillow_jpeg(b)
    # a second run replaces nothing; with --force both are written
    result = invoke("encode", str(a), str(b), "-o", str(out))
    assert result.exit_code == 1 and len(errors(result.stderr)) == 2
    result = invoke("encode", str(a), str(b), "-o", str(out), "--force")
    assert result.exit_code == 0 and (out / "a.jpg").read_bytes() == pillow_jpeg(a)


def test_a_file_that_appears_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    """The rename itself refuses to replace (link + unlink), not only the early check."""
    src = png(tmp_path / "a.png")
    flag = tmp_path / "flag"
    process = subprocess.Popen(
        [sys.executable, "-m", "jpegtorch.cli.main", "encode", str(src)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, HOLD: str(flag)})
    marker = _wait_for_marker(flag, process)
    (tmp_path / "a.jpg").write_bytes(b"arrived meanwhile")
    marker.unlink()  # let the write go on
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert b"a.jpg exists (use -f/--force to replace it)" in stderr
    assert (tmp_path / "a.jpg").read_bytes() == b"arrived meanwhile"
    assert tree(tmp_path) == ["a.jpg", "a.png"]


# --- batch planning --------------------------------------------------------------------


def test_colliding_names_never_lose_an_output(tmp_path: Path) -> None:
    """The issue's case: g1.jpg sub/g1.jpg g1-1.jpg -o out/ gave 2 outputs for 3 inputs."""
    sources = [png(tmp_path / "g1.png", 1), png(tmp_path / "sub" / "g1.png", 2),
               png(tmp_path / "g1-1.png", 3)]
    jpegs = []
    for src in sources:
        target = src.with_suffix(".jpg")
        target.write_bytes(pillow_jpeg(src))
        jpegs.append(target)
    out = tmp_path / "out"
    result = invoke("decode", *map(str, jpegs), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert tree(out) == ["g1-1.png", "g1-2.png", "g1.png"]
    # each output is its own input's decode
    expected = {"g1.png": jpegs[0], "g1-2.png": jpegs[1], "g1-1.png": jpegs[2]}
    for name, source in expected.items():
        assert np.array_equal(np.array(Image.open(out / name)),
                              np.array(Image.open(source))), name
    assert f"{jpegs[1]} -> {out / 'g1-2.png'}" in result.stderr  # the rename is printed
    # deterministic: the same call with --force writes the same names
    again = invoke("decode", *map(str, jpegs), "-o", str(out), "--force")
    assert again.exit_code == 0 and tree(out) == ["g1-1.png", "g1-2.png", "g1.png"]
    # without --force, new names also skip files that exist
    result = invoke("decode", str(jpegs[1]), str(jpegs[0]), "-o", str(tmp_path / "o2"))
    assert result.exit_code == 0
    (tmp_path / "o3").mkdir()
    (tmp_path / "o3" / "g1-1.png").write_bytes(b"x")
    result = invoke("decode", str(jpegs[0]), str(jpegs[1]), "-o", str(tmp_path / "o3"))
    assert result.exit_code == 0 and tree(tmp_path / "o3") == ["g1-1.png", "g1-2.png", "g1.png"]
    assert (tmp_path / "o3" / "g1-1.png").read_bytes() == b"x"


def test_same_stem_inputs_in_one_folder(tmp_path: Path) -> None:
    a = png(tmp_path / "in" / "x.png", 1)
    b = tmp_path / "in" / "x.bmp"
    Image.fromarray(synthetic(24, 16, seed=2)).save(b)
    result = invoke("encode", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert tree(tmp_path / "out") == ["x-1.jpg", "x.jpg"]
    assert (tmp_path / "out" / "x-1.jpg").read_bytes() == pillow_jpeg(a)  # sorted: bmp first
    bmp = (tmp_path / "out" / "x.jpg").read_bytes()  # (a BMP's density: dots/cm, as cjpeg)
    assert bmp[:13] + bmp[18:] == (lambda d: d[:13] + d[18:])(pillow_jpeg(b))


def test_an_output_equal_to_an_input_refuses_the_batch_before_any_work(tmp_path: Path) -> None:
    a = png(tmp_path / "a.png", 1)
    b = tmp_path / "b.jpg"
    b.write_bytes(pillow_jpeg(png(tmp_path / "src" / "b.png", 2)))
    before = b.read_bytes()
    result = invoke("encode", str(a), str(b))  # b.jpg -> b.jpg
    assert result.exit_code == 1
    assert f"refusing to overwrite the input {b} with the output of {b}" in result.stderr
    assert not (tmp_path / "a.jpg").exists()  # no work was done
    assert b.read_bytes() == before
    c = tmp_path / "c.png"
    c.write_bytes(a.read_bytes())
    result = invoke("encode", str(c), str(tmp_path / "c.jpg"), "-f")  # c.png -> c.jpg, an input
    assert result.exit_code == 1 and "refusing to overwrite the input" in result.stderr


# --- folders, file lists, --json, summary -----------------------------------------------


def test_folder_and_recursive_mirror(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    png(photos / "a.png", 1)
    png(photos / "trip" / "b.png", 2)
    png(photos / "trip" / "day2" / "c.png", 3)
    (photos / "notes.txt").write_text("not an image")
    (photos / ".hidden.png").write_bytes(b"skipped")
    (photos / ".a.jpg.1234-abcd.part").write_bytes(b"a stale temporary file (SIGKILL)")
    (photos / "trip" / ".b.jpg.99-x.part").write_bytes(b"stale")
    result = invoke("encode", str(photos), "-o", str(tmp_path / "flat"))
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "flat") == ["a.jpg"]
    assert "summary: 1 file, 1 encoded, 0 failed" in result.stderr
    result = invoke("encode", "-r", str(photos), "-o", str(tmp_path / "mirror"))
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "mirror") == ["a.jpg", "trip/b.jpg", "trip/day2/c.jpg"]
    assert (tmp_path / "mirror" / "trip" / "day2" / "c.jpg").read_bytes() == pillow_jpeg(
        photos / "trip" / "day2" / "c.png")
    # beside each input, recursively; the .part files do not trip the run
    result = invoke("encode", "-r", str(photos))
    assert result.exit_code == 0, result.output
    assert (photos / "trip" / "day2" / "c.jpg").exists()
    # an output folder inside the input tree is not walked into
    result = invoke("decode", "-r", str(photos), "-o", str(photos / "decoded"))
    assert result.exit_code == 0
    result = invoke("decode", "-r", str(photos), "-o", str(photos / "decoded"))
    assert result.exit_code == 1 and len(errors(result.stderr)) == 3  # all exist; no more
    # an empty folder is one error line
    (tmp_path / "empty").mkdir()
    result = invoke("encode", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert errors(result.stderr) == [f"jtorch: {tmp_path / 'empty'}: no image files in this "
                                     "folder (-r takes sub-folders)"]


def test_files_from_stdin_lines_and_nul(tmp_path: Path) -> None:
    names = [png(tmp_path / "a b.png", 1), png(tmp_path / "c.png", 2)]
    odd = png(tmp_path / "new\nline.png", 3)
    listing = "".join(f"{p}\n" for p in names).encode()
    result = invoke("encode", "--files-from", "-", "-o", str(tmp_path / "o1"), input=listing)
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "o1") == ["a b.jpg", "c.jpg"]
    nul = b"".join(os.fsencode(p) + b"\0" for p in [*names, odd])
    result = invoke("encode", "--files-from", "-", "-0", "-o", str(tmp_path / "o2"), input=nul)
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "o2") == ["a b.jpg", "c.jpg", "new\nline.jpg"]
    listfile = tmp_path / "list.txt"
    listfile.write_text(f"{names[0]}\r\n{tmp_path / 'missing.png'}\n\n")
    result = invoke("encode", "--files-from", str(listfile), "-o", str(tmp_path / "o3"))
    assert result.exit_code == 1
    assert errors(result.stderr) == [f"jtorch: {tmp_path / 'missing.png'}: no such file"]
    assert tree(tmp_path / "o3") == ["a b.jpg"]
    assert invoke("encode", "-", "--files-from", "-").exit_code == 2
    assert invoke("encode", "-0", str(names[0])).exit_code == 2


def test_json_records_and_summary(tmp_path: Path) -> None:
    good = png(tmp_path / "good.png", 1, size=(32, 48))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = invoke("encode", str(good), str(tmp_path / "bad.png"), "-o", str(out), "--json")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in records] == ["ok", "error"]
    ok, bad = records
    size = (out / "good.jpg").stat().st_size
    assert ok["input"] == str(good) and ok["output"] == str(out / "good.jpg")
    assert ok["bytes"] == size and ok["bytes_in"] == good.stat().st_size
    assert ok["width"] == 48 and ok["height"] == 32
    assert ok["bpp"] == pytest.approx(8 * size / (48 * 32)) and ok["ms"] > 0
    assert bad["output"] is None and "not an image" in bad["error"] and bad["bytes"] is None
    summary = [line for line in result.stderr.splitlines()
               if line.startswith("jtorch: summary:")]
    assert len(summary) == 1
    assert summary[0].startswith("jtorch: summary: 2 files, 1 encoded, 1 failed, ")
    assert f", {good.stat().st_size + 9} bytes in, {size} bytes out, " in summary[0]
    assert summary[0].endswith(" s")
    quiet = invoke("encode", str(good), "-o", str(tmp_path / "q"), "--json", "-Q", "-r")
    assert quiet.stderr == "" and json.loads(quiet.stdout)["status"] == "ok"
    assert invoke("decode", str(out / "good.jpg"), "-o", "-", "--json").exit_code == 2


# --- --jobs ----------------------------------------------------------------------------


@pytest.mark.slow
def test_jobs_give_the_same_bytes_and_messages(tmp_path: Path) -> None:
    inputs = [png(tmp_path / "in" / f"{i:02d}.png", i, size=(40 + i, 56)) for i in range(7)]
    (tmp_path / "in" / "03.png").write_bytes(b"broken")
    (tmp_path / "in" / "gray.pgm").write_bytes(b"P5\n3 2\n255\n" + bytes(range(6)))
    runs = {}
    for jobs in ("1", "2", "0"):
        out = tmp_path / f"out{jobs}"
        done = jtorch("encode", str(tmp_path / "in"), "-o", str(out), "-j", jobs, "--json",
                      "-q", "60", "--optimize")
        assert done.returncode == 1
        records = [json.loads(line) for line in done.stdout.splitlines()]
        runs[jobs] = (
            {p.name: p.read_bytes() for p in out.iterdir()},
            errors(done.stderr.decode()),
            [(r["input"], r["output"] and Path(r["output"]).name, r["status"], r["bytes"],
              r["error"]) for r in records])
    assert runs["1"] == runs["2"] == runs["0"]
    files, lines, _ = runs["1"]
    assert sorted(files) == ["00.jpg", "01.jpg", "02.jpg", "04.jpg", "05.jpg", "06.jpg",
                             "gray.jpg"]
    assert len(lines) == 1 and "03.png" in lines[0]
    assert files["05.jpg"] == pillow_jpeg_q(inputs[5], 60)
    # decode with workers: the same pixels
    dec = {}
    for jobs in ("1", "2"):
        done = jtorch("decode", str(tmp_path / "out1"), "-o", str(tmp_path / f"dec{jobs}"),
                      "-j", jobs)
        assert done.returncode == 0, done.stderr
        dec[jobs] = {p.name: p.read_bytes() for p in (tmp_path / f"dec{jobs}").iterdir()}
    assert dec["1"] == dec["2"] and len(dec["1"]) == 7


def pillow_jpeg_q(path: Path, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


@pytest.mark.slow
def test_compare_jobs_same_records(tmp_path: Path) -> None:
    for i in range(3):
        png(tmp_path / "in" / f"{i}.png", i)
    reports = []
    for jobs in ("1", "2"):
        done = jtorch("compare", str(tmp_path / "in"), "-q", "30,70", "-F", "json", "-j", jobs,
                      "--save", str(tmp_path / f"save{jobs}"))
        assert done.returncode == 0, done.stderr
        records = json.loads(done.stdout)
        for record in records:
            record.pop("encode_ms"), record.pop("decode_ms")
        reports.append(records)
        assert sorted(p.name for p in (tmp_path / f"save{jobs}").iterdir()) == ["0", "1", "2"]
    assert reports[0] == reports[1] and len(reports[0]) == 12  # 3 images, 2 q, 2 codecs
    again = jtorch("compare", str(tmp_path / "in"), "-q", "50", "--save", str(tmp_path / "save1"))
    assert again.returncode == 1 and len(errors(again.stderr.decode())) == 3


# --- signals ---------------------------------------------------------------------------


def _wait_for_marker(flag: Path, process: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(flag.parent.glob(flag.name + ".*"))
        if found:
            return found[0]
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1].decode())
        time.sleep(0.02)
    process.kill()
    raise AssertionError("the write never started")


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.part")]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                                 (signal.SIGHUP, 129)])
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path: Path, signum: int,
                                                          status: int) -> None:
    src = png(tmp_path / "a.png")
    flag = tmp_path / "flag"
    process = subprocess.Popen(
        [sys.executable, "-m", "jpegtorch.cli.main", "encode", str(src), "-o",
         str(tmp_path / "out" / "a.jpg")], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, HOLD: str(flag)})
    _wait_for_marker(flag, process)
    assert len(_temporaries(tmp_path / "out")) == 1  # the write is in progress
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert _temporaries(tmp_path) == [] and not (tmp_path / "out" / "a.jpg").exists()
    assert stderr.decode().strip().splitlines()[-1] == (
        f"jtorch: interrupted ({signal.Signals(signum).name})")


@pytest.mark.slow
def test_sigterm_with_workers_leaves_no_temporary_file(tmp_path: Path) -> None:
    for i in range(4):
        png(tmp_path / "in" / f"{i}.png", i)
    flag = tmp_path / "flag"
    process = subprocess.Popen(
        [sys.executable, "-m", "jpegtorch.cli.main", "encode", str(tmp_path / "in"), "-o",
         str(tmp_path / "out"), "-j", "2"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, HOLD: str(flag), "JTORCH_TEST_HOLD_MATCH": "2.jpg"})
    marker = _wait_for_marker(flag, process)
    assert int(marker.suffix[1:]) != process.pid  # the write is a worker's
    assert ".2.jpg." in " ".join(_temporaries(tmp_path / "out"))  # (the other may be writing)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert _temporaries(tmp_path) == []
    assert not (tmp_path / "out" / "2.jpg").exists()


@pytest.mark.slow
def test_sigterm_at_any_moment_of_a_batch(tmp_path: Path) -> None:
    """No hook: signals at several moments of a real batch never leave a .part file."""
    for i in range(8):
        png(tmp_path / "in" / f"{i:02d}.png", i, size=(300, 400))
    for delay in (1.0, 2.5):
        out = tmp_path / f"out{delay}"
        process = subprocess.Popen(
            [sys.executable, "-m", "jpegtorch.cli.main", "encode", str(tmp_path / "in"), "-o",
             str(out), "--optimize"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        # 143: our handler ran; 0: done before the signal; -15: the signal came during
        # start-up, before the command's handler was installed (nothing written yet)
        assert process.returncode in (143, 0, -signal.SIGTERM)
        assert _temporaries(tmp_path) == []
        if out.exists():  # what was written is complete
            for path in out.iterdir():
                Image.open(path).load()


def test_sigkill_leftovers_do_not_trip_later_runs(tmp_path: Path) -> None:
    src = png(tmp_path / "a.png")
    flag = tmp_path / "flag"
    process = subprocess.Popen(
        [sys.executable, "-m", "jpegtorch.cli.main", "encode", str(src)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, HOLD: str(flag)})
    _wait_for_marker(flag, process)
    process.kill()  # SIGKILL cannot be caught: the temporary file stays
    process.communicate(timeout=60)
    stale = _temporaries(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".a.jpg.")
    result = invoke("encode", str(tmp_path))  # the folder: the .part file is skipped
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.jpg").read_bytes() == pillow_jpeg(src)
    result = invoke("decode", str(tmp_path), "-o", str(tmp_path / "d"))
    assert result.exit_code == 0 and tree(tmp_path / "d") == ["a.png"]


# --- the compile notice ----------------------------------------------------------------


def test_compile_notice_is_printed_once_when_numba_compiles(capsys) -> None:
    import numba
    from jpegtorch.cli._batch import compile_notice

    @numba.njit
    def twice(x):  # a fresh function: numba really compiles it
        return 2 * x

    old = os.environ.pop("JTORCH_NO_COMPILE_NOTICE", None)
    try:
        with compile_notice(quiet=False):
            assert twice(2) == 4 and twice(2.5) == 5.0  # two compilations, one notice
        with compile_notice(quiet=True):
            twice(np.int8(3))
    finally:
        if old is not None:
            os.environ["JTORCH_NO_COMPILE_NOTICE"] = old
    err = capsys.readouterr().err
    assert err.count("compiling the codec's kernels") == 1


# --- small things ------------------------------------------------------------------------


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from jpegtorch.cli import _files

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "fsync", full)
    src = png(tmp_path / "a.png")
    result = invoke("encode", str(src), "-o", str(tmp_path / "out" / "a.jpg"))
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"jtorch: {src}: cannot write {tmp_path / 'out' / 'a.jpg'}: no space left on the "
        "device"]
    assert tree(tmp_path / "out") == []


@pytest.mark.parametrize("fmt", ["png", "bmp"])
def test_a_full_disk_while_decoding_names_the_output(tmp_path: Path, fmt: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The band-by-band PNG writer (a write fails mid-stream) and Pillow's writer."""
    import errno

    from jpegtorch.formats import png_writer

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(png_writer.PNGWriter, "rows", full)
    src = png(tmp_path / "a.png")
    assert invoke("encode", str(src), "-o", str(tmp_path / "a.jpg")).exit_code == 0
    if fmt == "bmp":
        from jpegtorch.cli import _files

        monkeypatch.setattr(_files.os, "fsync", full)
    target = tmp_path / "out" / f"a.{fmt}"
    result = invoke("decode", str(tmp_path / "a.jpg"), "-o", str(target))
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"jtorch: {tmp_path / 'a.jpg'}: cannot write {target}: no space left on the device"]
    assert tree(tmp_path / "out") == []


def test_completion_of_ref_and_tables() -> None:
    def complete(words: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", "from jpegtorch.cli.main import main; main()"],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
            env={**os.environ, "_JTORCH_COMPLETE": "bash_complete", "COMP_WORDS": words,
                 "COMP_CWORD": str(len(words.split(" ")) - 1)})
        return done.stdout.splitlines()

    assert complete("jtorch compare --ref op") == ["plain,opencv"]
    assert complete("jtorch compare -r li") == ["plain,libjpeg"]
    tables = complete("jtorch encode --tables tuned")
    assert {"plain,tuned-psnr", "plain,tuned-ssim"} <= set(tables)
    assert "file,tuned" in tables  # a file name is completed as well
    assert {"plain,annex-k", "plain,tuned-psnr"} <= set(complete("jtorch compare --tables "))


def test_info_takes_folders_and_file_lists(tmp_path: Path) -> None:
    for name in ("a", "sub/b"):
        path = tmp_path / "jpegs" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pillow_jpeg(png(tmp_path / "src" / f"{name}.png")))
    result = invoke("info", "-r", str(tmp_path / "jpegs"), "--json")
    assert result.exit_code == 0, result.output
    assert [Path(r["file"]).name for r in json.loads(result.stdout)] == ["a.jpg", "b.jpg"]
    listing = f"{tmp_path / 'jpegs' / 'sub' / 'b.jpg'}\n".encode()
    result = invoke("info", "--files-from", "-", "--json", input=listing)
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 1


@pytest.mark.slow
def test_compile_notice_on_a_cold_numba_cache(tmp_path: Path) -> None:
    """A real CLI run with an empty numba cache prints the notice (a 16-bit PNG whose
    rows use an unknown filter: only the small unfilter kernel compiles, then the file
    fails); a warm run and --quiet do not."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    raw = b"".join(b"\x07" + bytes(12) for _ in range(2))  # filter type 7: unknown
    bad = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    (tmp_path / "bad.png").write_bytes(bad)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "JTORCH_NO_COMPILE_NOTICE": ""}
    cold = jtorch("encode", str(tmp_path / "bad.png"), env=env)
    assert cold.returncode == 1
    lines = cold.stderr.decode().splitlines()
    assert lines[0].startswith("jtorch: compiling the codec's kernels") and len(lines) == 2
    assert "unknown filter type" in lines[1]
    warm = jtorch("encode", str(tmp_path / "bad.png"), env=env)
    assert b"compiling" not in warm.stderr and warm.returncode == 1
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache2")
    quiet = jtorch("encode", str(tmp_path / "bad.png"), "-Q", env=env)
    assert b"compiling" not in quiet.stderr and quiet.returncode == 1
