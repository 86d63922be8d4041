"""The conventions every ``jtorch`` command follows (issue #5):

instant ``--help``/``--version`` (no torch import), ``--help`` with an example,
``-`` for stdin/stdout, batches that go on past bad files (one stderr line each,
exit status 1, no output left for them), usage errors with status 2, no
traceback without ``--debug``, ``--quiet`` and ``--debug`` everywhere,
machine-readable output on stdout and messages on stderr, shell completion.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES, load_sample
from jpegtorch.cli.main import COMMANDS, cli
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "numba", "cv2", "matplotlib", "scipy", "skimage", "PIL")

# Run the CLI in a fresh interpreter and report which heavy modules it imported.
PROBE = f"""
import sys
from jpegtorch.cli.main import cli
code = 0
try:
    cli(sys.argv[1:], prog_name="jtorch")
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


def probe(*args: str) -> tuple[int, str, list[str]]:
    """(exit status, stdout, heavy modules imported) of ``jtorch ARGS`` in a subprocess."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    marker = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    assert marker, done.stderr
    heavy = [m for m in marker[-1][len("HEAVY="):].split(",") if m]
    return done.returncode, done.stdout, heavy


def jtorch(*args: str, input: bytes | None = None, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[bytes]:
    """The real console entry point in a subprocess (real pipes, real exit codes)."""
    return subprocess.run([sys.executable, "-c", "from jpegtorch.cli.main import main; main()",
                           *args], input=input, capture_output=True, cwd=ROOT, timeout=300,
                          env={**os.environ, **(env or {})})


def invoke(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def _command_paths() -> list[tuple[str, ...]]:
    """Every command, and every sub-command of groups (``train tables``, ...)."""
    ctx = click.Context(cli)
    paths: list[tuple[str, ...]] = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=ctx)
            paths += [(name, sub) for sub in command.list_commands(sub_ctx)]
    return paths


COMMAND_PATHS = _command_paths()
LEAVES = [p for p in COMMAND_PATHS if not (len(p) == 1 and p[0] == "train")]


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    ctx = click.Context(cli)
    for part in path:
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, part)  # type: ignore[assignment]
        ctx = click.Context(command, parent=ctx)
    return command


# Known violations, to be fixed by each command's owner (see the report of issue #5).


# --- instant help ----------------------------------------------------------------------


def test_main_commands_exist() -> None:
    assert {"encode", "decode", "info", "compare", "train"} <= {p[0] for p in COMMAND_PATHS}
    assert set(COMMANDS) >= {"encode", "decode", "info", "compare", "train"}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-h"], ["-V"]])
def test_help_and_version_do_not_import_torch(args: list[str]) -> None:
    code, out, heavy = probe(*args)
    assert code == 0
    assert "torch" not in heavy and heavy == [], heavy
    assert ("Usage: jtorch" in out) if args[0].startswith(("-h", "--h")) else "jtorch" in out


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_command_help_does_not_import_torch(path: tuple[str, ...]) -> None:
    code, out, heavy = probe(*path, "--help")
    assert code == 0 and "Usage:" in out
    assert "torch" not in heavy and "numba" not in heavy, heavy


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        result = invoke(*path, flag)
        assert result.exit_code == 0, result.output
        assert "Example" in result.output, f"jtorch {' '.join(path)} --help has no example"
        assert "jtorch " + path[0] in result.output.split("Example", 1)[1]


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_has_quiet_and_debug(path: tuple[str, ...]) -> None:
    options = {opt for param in _command(path).params for opt in param.opts}
    assert "--debug" in options
    assert "--quiet" in options and "-Q" in options


# --- stdin / stdout --------------------------------------------------------------------


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _pillow_jpeg(array: np.ndarray, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_stdin_to_stdout_encode_and_decode_through_real_pipes() -> None:
    rgb = load_sample("kodim01_233x151.png")
    done = jtorch("encode", "-", "-o", "-", "-q", "60", input=_png_bytes(rgb))
    assert done.returncode == 0, done.stderr
    assert done.stdout == _pillow_jpeg(rgb, 60) and done.stderr == b""
    done = jtorch("decode", "-", "-o", "-", input=done.stdout)
    assert done.returncode == 0, done.stderr
    expected = np.array(Image.open(io.BytesIO(_pillow_jpeg(rgb, 60))))
    assert np.array_equal(np.array(Image.open(io.BytesIO(done.stdout))), expected)


def test_stdin_for_info_and_compare() -> None:
    jpeg = _pillow_jpeg(load_sample("kodim01_233x151.png"))
    result = invoke("info", "-", "--json", input=jpeg)
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["file"] == "<stdin>"
    result = invoke("compare", "-", "-q", "50", "-F", "json", "-o", "-", input=jpeg)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["image"] == "<stdin>"


# --- batches: bad files, exit codes, nothing left behind -------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A good PNG and JPEG, a corrupt PNG and JPEG, a non-image, and missing paths."""
    src = tmp_path / "src"
    src.mkdir()
    rgb = load_sample("kodim01_233x151.png")
    paths = {
        "good.png": src / "good.png", "good.jpg": src / "good.jpg",
        "corrupt.png": src / "corrupt.png", "corrupt.jpg": src / "corrupt.jpg",
        "junk.jpg": src / "junk.jpg", "missing.png": src / "missing.png",
        "missing.jpg": src / "missing.jpg",
    }
    png, jpeg = _png_bytes(rgb), _pillow_jpeg(rgb)
    paths["good.png"].write_bytes(png)
    paths["good.jpg"].write_bytes(jpeg)
    paths["corrupt.png"].write_bytes(png[: len(png) // 3])
    paths["corrupt.jpg"].write_bytes(jpeg[: len(jpeg) // 2])
    paths["junk.jpg"].write_bytes(b"GIF89a: not what it says")
    return paths


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()
            and not line.startswith(("jtorch: warning:", "jtorch: summary:"))]


def _check_batch(result, bad: list[Path]) -> None:
    assert result.exit_code == 1, result.output
    lines = _error_lines(result.stderr)
    assert len(lines) == len(bad), result.stderr  # one line per bad file
    for line, path in zip(lines, bad, strict=True):
        assert str(path) in line and line.startswith("jtorch: ")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_batch_with_missing_and_corrupt_file(command: str, files: dict[str, Path],
                                             tmp_path: Path) -> None:
    ext, out_ext = (".png", ".jpg") if command == "encode" else (".jpg", ".png")
    inputs = [files["missing" + ext], files["good" + ext], files["corrupt" + ext]]
    out = tmp_path / "out"
    result = invoke(command, *map(str, inputs), "-o", str(out))
    _check_batch(result, [inputs[0], inputs[2]])
    assert sorted(p.name for p in out.iterdir()) == ["good" + out_ext]  # no temporaries
    # one bad input with -o FILE: no file at all
    target = tmp_path / ("single" + out_ext)
    result = invoke(command, str(files["corrupt" + ext]), "-o", str(target))
    assert result.exit_code == 1 and not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    # outputs beside the inputs: nothing for the bad ones
    beside = tmp_path / "beside"
    beside.mkdir()
    copies = [beside / p.name for p in inputs]
    for src, copy in zip(inputs[1:], copies[1:], strict=True):
        copy.write_bytes(src.read_bytes())
    result = invoke(command, *map(str, copies))
    _check_batch(result, [copies[0], copies[2]])
    assert sorted(p.name for p in beside.iterdir()) == sorted(
        [copies[1].name, copies[2].name, "good" + out_ext])


def test_info_batch_json_on_stdout_errors_on_stderr(files: dict[str, Path]) -> None:
    inputs = [files["good.jpg"], files["missing.jpg"], files["junk.jpg"]]
    result = invoke("info", *map(str, inputs), "--json")
    _check_batch(result, inputs[1:])
    records = json.loads(result.stdout)  # stdout is pure JSON
    assert [r["file"] for r in records] == list(map(str, inputs))


def test_compare_batch_json_on_stdout_errors_on_stderr(files: dict[str, Path],
                                                       tmp_path: Path) -> None:
    inputs = [files["missing.png"], files["good.png"], files["corrupt.png"]]
    save = tmp_path / "save"
    result = invoke("compare", *map(str, inputs), "-q", "50", "-F", "json", "--threads", "1",
                    "--save", str(save))
    _check_batch(result, [inputs[0], inputs[2]])
    assert {r["image"] for r in json.loads(result.stdout)} == {str(inputs[1])}
    assert sorted(p.name for p in save.iterdir()) == ["good"]


@pytest.mark.parametrize("command", ["encode", "decode", "info", "compare"])
def test_debug_shows_the_traceback(command: str, files: dict[str, Path], tmp_path: Path) -> None:
    src = files["corrupt.png" if command in ("encode", "compare") else "junk.jpg"]
    extra = ["-o", str(tmp_path / "x.out")] if command in ("encode", "decode") else []
    if command == "decode":
        extra += ["--format", "png"]
    plain = invoke(command, str(src), *extra)
    assert plain.exit_code == 1 and "Traceback" not in plain.output
    debug = invoke(command, str(src), *extra, "--debug")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr
    assert "Traceback" not in debug.stdout


@pytest.mark.parametrize("args", [
    ["encode"], ["encode", "x.png", "--bogus"], ["encode", "x.png", "-q", "0"],
    ["encode", "a.png", "b.png", "-o", "-"],
    ["decode"], ["decode", "x.jpg", "--bogus"], ["decode", "a.jpg", "b.jpg", "-o", "-"],
    ["info"], ["info", "x.jpg", "--bogus"],
    ["compare"], ["compare", "x.png", "--bogus"], ["compare", "x.png", "-q", "101"],
    ["compare", "-", "-", "-q", "50"],
    ["train", "--bogus"], ["nosuchcommand"], ["--threads", "0", "encode", "x.png"],
], ids=" ".join)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == "" and ("Usage:" in result.stderr or "Error" in result.stderr)


def test_success_exits_0_with_nothing_on_stderr(files: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("encode", str(files["good.png"]), "-o", str(tmp_path / "a.jpg"))
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == ""
    result = invoke("decode", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "a.png"))
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == ""
    result = invoke("info", str(tmp_path / "a.jpg"), "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout)[0]["width"] == 233


# --- --quiet ---------------------------------------------------------------------------


def test_quiet_silences_warnings(tmp_path: Path, files: dict[str, Path]) -> None:
    rgba = np.dstack([load_sample("kodim01_233x151.png"), np.full((151, 233), 200, np.uint8)])
    src = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(src)
    loud = invoke("encode", str(src), "-o", str(tmp_path / "a.jpg"))
    assert loud.exit_code == 0 and "warning" in loud.stderr and loud.stdout == ""
    quiet = invoke("encode", str(src), "-o", str(tmp_path / "b.jpg"), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    loud = invoke("decode", str(files["corrupt.jpg"]), "--lenient", "-o",
                  str(tmp_path / "c.png"))
    assert loud.exit_code == 0 and "warning" in loud.stderr
    quiet = invoke("decode", str(files["corrupt.jpg"]), "--lenient", "-Q", "-o",
                   str(tmp_path / "d.png"))
    assert quiet.exit_code == 0 and quiet.stderr == ""
    loud = invoke("compare", str(src), "-q", "50", "-F", "json", "--threads", "1")
    assert loud.exit_code == 0 and "alpha channel dropped" in loud.stderr
    quiet = invoke("compare", str(src), "-q", "50", "-F", "json", "--threads", "1", "-Q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    json.loads(quiet.stdout)


def test_info_accepts_quiet(files: dict[str, Path]) -> None:
    result = invoke("info", str(files["good.jpg"]), "--quiet")
    assert result.exit_code == 0, result.output


# --- shell completion ------------------------------------------------------------------


def test_shell_completion() -> None:
    done = jtorch(env={"_JTORCH_COMPLETE": "bash_source"})
    assert done.returncode == 0 and b"_jtorch_completion" in done.stdout
    done = jtorch(env={"_JTORCH_COMPLETE": "bash_complete", "COMP_WORDS": "jtorch comp",
                       "COMP_CWORD": "1"})
    assert done.returncode == 0 and done.stdout.decode().splitlines() == ["plain,compare"]
    done = jtorch(env={"_JTORCH_COMPLETE": "bash_complete",
                       "COMP_WORDS": "jtorch compare --for", "COMP_CWORD": "2"})
    assert "plain,--format" in done.stdout.decode().splitlines()
    done = jtorch(env={"_JTORCH_COMPLETE": "zsh_source"})
    assert done.returncode == 0 and b"compdef" in done.stdout


def test_samples_exist() -> None:
    assert (SAMPLES / "kodim01_233x151.png").exists()


# --- output directories and closed pipes (cli/_common.py) ------------------------------


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_output_with_trailing_slash_is_a_directory(command: str, files: dict[str, Path],
                                                   tmp_path: Path) -> None:
    src = files["good.png" if command == "encode" else "good.jpg"]
    target = tmp_path / "newdir"
    result = invoke(command, str(src), "-o", str(target) + os.sep)
    assert result.exit_code == 0, result.output
    assert target.is_dir()
    assert [p.suffix for p in target.iterdir()] == [".jpg" if command == "encode" else ".png"]


@pytest.mark.parametrize("command", ["info", "decode"])
def test_closed_stdout_is_quiet(command: str, files: dict[str, Path], tmp_path: Path) -> None:
    """``jtorch info MANY | head -c 1``, ``jtorch decode big.jpg -o - | head -c 1``:
    stop quietly, no error message, no traceback."""
    if command == "info":
        args = ["info", *[str(files["good.jpg"])] * 400]  # far more than a pipe buffer holds
    else:
        noise = np.random.default_rng(0).integers(0, 256, (512, 768, 3), dtype=np.uint8)
        big = tmp_path / "big.jpg"
        big.write_bytes(_pillow_jpeg(noise, 95))
        args = ["decode", str(big), "-o", "-"]
    process = subprocess.Popen(
        [sys.executable, "-c", "from jpegtorch.cli.main import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(1)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    status = process.wait(timeout=120)
    assert "Error" not in stderr and "Traceback" not in stderr and "Broken" not in stderr, stderr
    assert status in (0, 1, 141, -13), status  # click exits 1 on EPIPE; cat: SIGPIPE
