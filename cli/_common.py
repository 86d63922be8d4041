"""Shared command-line plumbing: options, messages, errors, exit statuses.

Every command follows the same conventions:
- ``-`` means stdin/stdout wherever a file goes;
- outputs are written atomically (temporary file + rename), never over an input
  nor, without ``-f/--force``, over any existing file (:mod:`._files`);
- batches (inputs, folders, file lists, output names, ``--jobs``) are planned
  and run in one place, :mod:`._batch`;
- a batch goes on past a bad file, names it on stderr in one line, and exits 1;
- SIGINT/SIGTERM/SIGHUP remove the call's temporary files and exit 130/143/129;
- no traceback unless ``--debug``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from ._files import STDIO, CliError, Interrupted, OutputFiles, signals_raise

__all__ = [
    "STDIO", "CliError", "Interrupted", "OutputFiles", "complete_tables", "describe_exception",
    "display_name", "error_line", "force_option", "handle_errors", "metadata_options",
    "option_names", "quiet_debug_options",
    "read_input", "run_batch", "warn", "write_output",
]


def force_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``-f/--force`` (replace existing output files) to a command."""
    return click.option("-f", "--force", is_flag=True,
                        help="Replace existing output files.")(func)


def metadata_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--strip`` and ``--auto-orient`` (what happens to EXIF, ICC, XMP...)."""
    func = click.option(
        "--auto-orient", is_flag=True,
        help="Rotate/flip the pixels as the EXIF orientation says and set it to 1 "
             "(default: pixels and tag kept as they are).")(func)
    func = click.option(
        "--strip", is_flag=True,
        help="Drop all metadata (EXIF, ICC profile, XMP, comments, density, other APPn "
             "segments). Default: kept, like jpegtran -copy all.")(func)
    return func


def quiet_debug_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--quiet`` and ``--debug`` to a command."""
    func = click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")(func)
    func = click.option(
        "-Q", "--quiet", is_flag=True, help="Silence progress bars and warnings."
    )(func)
    return func


def complete_tables(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of --tables: the presets, else file names."""
    from click.shell_completion import CompletionItem
    from jpegtorch.formats.qtables import available_presets

    names = [n for n in available_presets() if n.startswith(incomplete)]
    return [CompletionItem(n) for n in names] + [CompletionItem(incomplete, type="file")]


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


@contextlib.contextmanager
def option_names() -> Iterator[None]:
    """The library's limit messages in the CLI's words: "raise max_pixels to allow
    it" becomes "raise it with --max-pixels"."""
    from jpegtorch.errors import JPEGError

    try:
        yield
    except JPEGError as exc:
        message = str(exc)
        if "raise max_pixels" in message:  # (still a JPEGError: callers may catch it)
            raise type(exc)(message.replace("raise max_pixels to allow it",
                                            "raise it with --max-pixels")) from None
        raise


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


def write_output(path: str, data: bytes, *, files: OutputFiles | None = None,
                 inputs: Sequence[str] = (), force: bool = False) -> None:
    """Write ``data`` atomically to ``path`` (``-`` = stdout), never over an input
    and, unless ``force`` (or ``files`` says so), never over an existing file."""
    if files is None:
        files = OutputFiles(force=force, inputs=inputs)
    files.write(path, data)


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
    printed as well. While the command runs, SIGINT/SIGTERM/SIGHUP raise
    :class:`Interrupted` (temporary files go as it unwinds); the exit status is
    then 128 + the signal number.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            with signals_raise():
                return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click exits 2 for usage errors and quietly for a closed stdout
        except Interrupted as exc:
            click.echo(f"jtorch: interrupted ({exc.name})", err=True)
            sys.exit(exc.exit_status)
        except KeyboardInterrupt:
            click.echo("jtorch: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"jtorch: error: {describe_exception(exc)}", err=True)
            sys.exit(1)

    return wrapper
