"""Shared command-line plumbing: batches, atomic writes, output naming, errors.

Every command follows the same conventions:
- ``-`` means stdin/stdout wherever a file goes;
- outputs are written atomically (temporary file + rename), never over an input;
- a batch goes on past a bad file, names it on stderr in one line, and exits 1;
- no traceback unless ``--debug``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import click

STDIO = "-"


class CliError(Exception):
    """A per-file failure with a one-line, user-facing message."""


def quiet_debug_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--quiet`` and ``--debug`` to a command."""
    func = click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")(func)
    func = click.option(
        "-Q", "--quiet", is_flag=True, help="Silence progress bars and warnings."
    )(func)
    return func


def warn(message: str, *, quiet: bool = False) -> None:
    """One warning line on stderr (unless quiet)."""
    if not quiet:
        click.echo(f"jtorch: warning: {message}", err=True)


def error_line(name: str, message: str) -> None:
    click.echo(f"jtorch: {name}: {message}", err=True)


def describe_exception(exc: BaseException) -> str:
    """A one-line description of an exception for users."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    kind = type(exc).__name__
    if kind in ("JPEGError", "ValueError", "OSError", "CliError", "UnidentifiedImageError"):
        return first or kind
    return f"{kind}: {first}" if first else kind


def read_input(path: str) -> bytes:
    """The bytes of a file, or of stdin for ``-``."""
    if path == STDIO:
        return sys.stdin.buffer.read()
    p = Path(path)
    if p.is_dir():
        raise CliError("is a directory")
    if not p.exists():
        raise CliError("no such file")
    return p.read_bytes()


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIO else path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(path: str, *, inputs: Sequence[str] = (), no_clobber: bool = False,
                  ) -> Iterator[BinaryIO]:
    """Open ``path`` for writing atomically; ``-`` writes to stdout.

    The data goes to a temporary file in the target directory, renamed over
    ``path`` only when the block finishes without error; on error nothing is
    left behind. Refuses to write over any of ``inputs``, and over an existing
    file when ``no_clobber``.
    """
    if path == STDIO:
        buffer = sys.stdout.buffer
        yield buffer
        buffer.flush()
        return
    target = Path(path)
    for src in inputs:
        if src != STDIO and (Path(src).absolute() == target.absolute()
                             or _same_file(Path(src), target)):
            raise CliError(f"refusing to overwrite the input file {src}")
    if no_clobber and target.exists():
        raise CliError(f"{path} exists (--no-clobber)")
    if target.is_dir():
        raise CliError(f"output {path} is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"output directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_output(path: str, data: bytes, *, inputs: Sequence[str] = (),
                 no_clobber: bool = False) -> None:
    """Write ``data`` atomically to ``path`` (``-`` = stdout)."""
    with atomic_output(path, inputs=inputs, no_clobber=no_clobber) as handle:
        handle.write(data)


def plan_outputs(inputs: Sequence[str], output: str | None, suffix: str) -> list[str]:
    """Output path for each input.

    - one input: ``-o`` names the file (``-`` = stdout), or a directory when it
      is one or ends with ``/``; without ``-o`` the output goes beside the
      input with ``suffix`` (stdin input -> stdout);
    - several inputs: ``-o`` names a directory (created if missing) and each
      output keeps its input's stem; without ``-o``, beside each input.
    """
    if len(inputs) == 1 and output is not None:
        if output != STDIO and (Path(output).is_dir() or output.endswith(("/", os.sep))):
            Path(output).mkdir(parents=True, exist_ok=True)
            return [str(Path(output) / _stem_name(inputs[0], suffix))]
        return [output]
    if output is not None:
        if output == STDIO:
            raise click.UsageError("-o - (stdout) takes exactly one input")
        out_dir = Path(output)
        if out_dir.exists() and not out_dir.is_dir():
            raise click.UsageError(f"-o {output}: with several inputs -o must be a directory")
        out_dir.mkdir(parents=True, exist_ok=True)
        names = [_stem_name(src, suffix) for src in inputs]
        return [str(out_dir / name) for name in _dedupe(names)]
    outs = []
    for src in inputs:
        if src == STDIO:
            if len(inputs) > 1:
                raise click.UsageError("stdin ('-') as one of several inputs needs no -o")
            outs.append(STDIO)
        else:
            outs.append(str(Path(src).with_suffix(suffix)))
    return outs


def _stem_name(src: str, suffix: str) -> str:
    return ("stdin" if src == STDIO else Path(src).stem) + suffix


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        if count:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{count}.{ext}" if dot else f"{name}-{count}"
        result.append(name)
    return result


def run_batch(items: Sequence[str], process: Callable[[int, str], None], *,
              quiet: bool = False, debug: bool = False, desc: str = "") -> int:
    """Run ``process(index, item)`` for every item; return the number of failures.

    A failure prints one line naming the item and the batch goes on. A tqdm
    progress bar is shown on stderr when it is a terminal, there is more than
    one item and not ``quiet``.
    """
    failures = 0
    show_bar = len(items) > 1 and not quiet and sys.stderr.isatty()
    bar = None
    if show_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc or None, unit="file", file=sys.stderr,
                   leave=False)
    try:
        for index, item in enumerate(items):
            try:
                process(index, item)
            except (KeyboardInterrupt, BrokenPipeError):
                raise
            except Exception as exc:
                failures += 1
                if debug:
                    traceback.print_exc()
                message = describe_exception(exc)
                if bar is not None:
                    bar.clear()
                error_line(display_name(item), message)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return failures


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn unexpected errors in a command into one line and exit status 1.

    Usage errors (click) keep exit status 2. With ``--debug`` the traceback is
    printed as well.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click exits 2 for usage errors and quietly for a closed stdout
        except KeyboardInterrupt:
            click.echo("jtorch: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"jtorch: error: {describe_exception(exc)}", err=True)
            sys.exit(1)

    return wrapper
