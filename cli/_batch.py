"""Batches: which files a call works on, where each output goes, and running them.

One place for every command (encode, decode, compare, info) and codec:

1. :func:`collect_inputs`: the inputs: file arguments, folders (their images;
   ``-r`` walks sub-folders), ``--files-from FILE`` (``-`` = stdin; one path
   per line, or NUL-separated with ``-0``), ``-`` for stdin.
2. :func:`plan_outputs`: every output path, computed before any work. An
   output that would replace an input refuses the whole call (exit 1, both
   paths named); two inputs that map to one output get unique names
   (``NAME-1.jpg``, ``NAME-2.jpg``..., never an input's, another output's or,
   without ``--force``, an existing file's name), each printed on stderr; an
   existing output without ``--force`` is refused for that file (one line).
3. :func:`run_items`: runs a picklable :class:`Task` on every item, in this
   process or in ``--jobs N`` worker processes (forked after the codec is
   imported and has run once, so workers pay no start-up); reports in input
   order (the same lines and bytes whatever ``N``), one line per bad file,
   ``--json`` records on stdout, a summary line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from ._common import describe_exception, display_name, error_line, warn
from ._files import (
    STDIO,
    CliError,
    Interrupted,
    OutputFiles,
    _key,
    _raise_interrupted,
    handled_signals,
    is_temporary_name,
    remove_temporaries_of,
    same_file,
    signals_ignored,
)

# What a folder input contributes (case-insensitive extensions). Files named
# explicitly are always taken, whatever their extension.
IMAGE_EXTENSIONS = frozenset({
    ".png", ".apng", ".ppm", ".pgm", ".pbm", ".pnm", ".pam", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".tga", ".qoi",
})
JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".jtc"})
NO_NOTICE_ENV = "JTORCH_NO_COMPILE_NOTICE"


# --------------------------------------------------------------------------- options


def batch_options(*, jobs: bool = True, json_records: bool = True, force: bool = True,
                  recursive_short: str = "-r"
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the batch options: ``-f/--force``, ``-r/--recursive``, ``--files-from``,
    ``-0``, ``-j/--jobs``, ``--json`` (``recursive_short`` where ``-r`` is taken)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if json_records:
            func = click.option(
                "--json", "json_records", is_flag=True,
                help="Print one JSON record per file on stdout (input, output, status, "
                     "bytes, bpp, ms, ...).")(func)
        if jobs:
            func = click.option(
                "-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
                metavar="N",
                help="Worker processes (0 = one per core). The files are the same "
                     "whatever N.")(func)
        func = click.option(
            "-0", "--null", is_flag=True,
            help="--files-from names are separated by NUL bytes (find -print0).")(func)
        func = click.option(
            "--files-from", metavar="FILE",
            help="Read input paths from FILE, one per line ('-' = stdin).")(func)
        func = click.option(
            recursive_short, "--recursive", is_flag=True,
            help="Folder inputs: take sub-folders too (with -o DIR the tree is "
                 "mirrored).")(func)
        if force:
            func = click.option(
                "-f", "--force", is_flag=True,
                help="Replace existing output files (never an input).")(func)
            func = click.option(
                "--no-clobber", "no_clobber", is_flag=True, hidden=True,
                help="Accepted for compatibility: never replacing files is the "
                     "default.")(func)
        return func

    return decorate


def resolve_jobs(jobs: int | None) -> int:
    """``--jobs``: 0 means one per usable core."""
    if not jobs:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    return jobs


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Source:
    """One input: ``path`` (``-`` = stdin), and for files found in a folder
    argument, that folder (``root``) so that ``-r -o DIR`` can mirror the tree."""

    path: str
    root: str | None = None

    @property
    def name(self) -> str:
        return display_name(self.path)


@dataclass
class Inputs:
    sources: list[Source]
    problems: list[tuple[str, str]]  # (name, message): folders without images, ...
    from_batch: bool  # a folder or a file list was given: always a batch


def read_file_list(path: str, *, null: bool) -> list[str]:
    """The paths listed in ``path`` (``-`` = stdin): one per line, or NUL-separated."""
    try:
        data = sys.stdin.buffer.read() if path == STDIO else Path(path).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}",
                                 param_hint="--files-from") from None
    text = os.fsdecode(data)
    if null:
        names = text.split("\0")
    else:
        names = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    return [name for name in names if name]


def _walk(folder: Path, *, recursive: bool, extensions: frozenset[str],
          skip: Sequence[Path]) -> list[str]:
    """Image files in ``folder`` (sorted; hidden names and our temporary files skipped)."""
    found: list[str] = []
    skip_keys = {_key(p) for p in skip}
    for current, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and _key(os.path.join(current, d)) not in skip_keys) if recursive else []
        for name in sorted(files):
            if name.startswith(".") or is_temporary_name(name):
                continue
            if os.path.splitext(name)[1].lower() in extensions:
                found.append(os.path.join(current, name))
    return found


def collect_inputs(inputs: Sequence[str], *, files_from: str | None = None,
                   null: bool = False, recursive: bool = False,
                   extensions: frozenset[str] = IMAGE_EXTENSIONS,
                   output: str | None = None) -> Inputs:
    """Expand the input arguments (and ``--files-from``) into a list of sources.

    Raises:
        click.UsageError: no input at all, or stdin asked for twice.
    """
    names = list(inputs)
    if files_from is not None:
        if STDIO in names and files_from == STDIO:
            raise click.UsageError("stdin ('-') cannot be both an input and --files-from")
        names += read_file_list(files_from, null=null)
    elif null:
        raise click.UsageError("-0/--null applies to --files-from")
    if not names:
        if files_from is not None:
            return Inputs([], [], True)
        raise click.UsageError("Missing argument 'INPUT...'.")
    if names.count(STDIO) > 1:
        raise click.UsageError("stdin ('-') can be read only once")
    sources: list[Source] = []
    problems: list[tuple[str, str]] = []
    from_batch = files_from is not None
    skip = [Path(output)] if output and output != STDIO else []
    for name in names:
        if name != STDIO and os.path.isdir(name):
            from_batch = True
            found = _walk(Path(name), recursive=recursive, extensions=extensions, skip=skip)
            if not found:
                problems.append((name, "no image files in this folder" +
                                 ("" if recursive else " (-r takes sub-folders)")))
            sources += [Source(path, root=name) for path in found]
        else:
            sources.append(Source(name))
    return Inputs(sources, problems, from_batch)


# --------------------------------------------------------------------------- outputs


class PlanError(CliError):
    """The batch cannot run (an output would replace an input)."""


@dataclass
class Item:
    """One unit of work: a source and where its output goes (None: no output file)."""

    index: int
    source: str
    output: str | None = None
    error: str | None = None  # refused before any work (e.g. the output exists)

    @property
    def name(self) -> str:
        return display_name(self.source)


def _natural_output(source: Source, output: str | None, suffix: str, *,
                    recursive: bool) -> str:
    if output is None:
        if source.path == STDIO:
            return STDIO
        path = Path(source.path)
        return str(path.with_name(path.stem + suffix) if path.stem else path) + (
            "" if path.stem else suffix)
    stem = "stdin" if source.path == STDIO else Path(source.path).stem
    folder = Path(output)
    if recursive and source.root is not None:
        relative = Path(os.path.relpath(Path(source.path).parent, source.root))
        if str(relative) != ".":
            folder = folder / relative
    return str(folder / (stem + suffix))


def plan_outputs(sources: Sequence[Source], output: str | None, suffix: str, *,
                 files: OutputFiles, recursive: bool = False, single_file_ok: bool = True,
                 quiet: bool = False, folders: bool = False) -> list[Item]:
    """Every item's output path, decided before any work.

    - One source named as a file, and ``-o`` a file name (not an existing
      folder, no trailing ``/``): that file (``-`` = stdout).
    - Otherwise ``-o`` is a folder (made when the first file is written): each
      output keeps its input's stem (and, with ``-r``, its path below the
      folder argument); without ``-o`` each output goes beside its input
      (stdin -> stdout).

    With ``folders`` the outputs are folders (``compare --save``): an
    existing one is refused without ``--force`` in the same way.

    Raises:
        PlanError: an output would replace an input.
        click.UsageError: ``-o -`` or ``-o FILE`` with several inputs.
    """
    explicit_file = (
        single_file_ok and len(sources) == 1 and sources[0].root is None and output is not None
        and (output == STDIO or not (os.path.isdir(output) or output.endswith(("/", os.sep))))
    )
    if explicit_file:
        targets = [output]
    else:
        if output == STDIO:
            raise click.UsageError("-o - (stdout) takes exactly one input")
        if output is not None and os.path.exists(output) and not os.path.isdir(output):
            raise click.UsageError(f"-o {output}: with several inputs -o must be a folder")
        targets = [_natural_output(s, output, suffix, recursive=recursive) for s in sources]
    # An output may never be an input.
    for source, target in zip(sources, targets, strict=True):
        if target == STDIO:
            continue
        for other in sources:
            if other.path != STDIO and (same_file(target, other.path)):
                raise PlanError(f"refusing to overwrite the input {other.path} with the "
                                f"output of {source.name} (choose another name or folder "
                                "with -o)")
    targets = _unique(sources, targets, files=files, quiet=quiet)
    items = []
    for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
        item = Item(index, source.path, target)
        if target is not None and target != STDIO:
            try:
                files.check(target, folder=folders)
            except CliError as exc:
                item.error = str(exc)
        items.append(item)
    return items


def _unique(sources: Sequence[Source], targets: list[str], *, files: OutputFiles,
            quiet: bool) -> list[str]:
    """Rename the outputs that collide (the first keeps its name).

    Names compare case-insensitively, so the result is the same on every file
    system. A new name ``STEM-N.EXT`` takes the smallest N whose name is no
    other output's, no input's and, without ``--force``, no existing file's.
    """
    def key(path: str) -> str:
        return os.path.normcase(os.path.abspath(path)).casefold()

    taken = {key(t) for t in targets if t != STDIO}
    seen: set[str] = set()
    result = []
    for source, target in zip(sources, targets, strict=True):
        if target == STDIO:
            result.append(target)
            continue
        k = key(target)
        if k not in seen:
            seen.add(k)
            result.append(target)
            continue
        path = Path(target)
        n = 1
        while True:
            candidate = str(path.with_name(f"{path.stem}-{n}{path.suffix}"))
            ck = key(candidate)
            if (ck not in taken and ck not in seen and not files.is_input(candidate)
                    and (files.force or not os.path.lexists(candidate))):
                break
            n += 1
        seen.add(ck)
        taken.add(ck)
        result.append(candidate)
        warn(f"{source.name} -> {candidate} ({target} is another input's output)", quiet=quiet)
    return result


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What one item gave: status, messages and sizes (picklable, sent by workers)."""

    ok: bool = True
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0
    width: int = 0
    height: int = 0
    ms: float = 0.0
    traceback: str | None = None
    data: Any = None  # task-specific results (compare's records)


class Task:
    """The work of a command on one item. Subclasses are picklable dataclasses.

    ``prepare`` imports what the work needs (in the parent before workers are
    forked, so that they inherit it), ``run`` does one item and fills an
    :class:`Outcome` (raising on failure), ``close`` releases resources.
    """

    label = "processed"
    uses_numba = True  # the compile notice listens to numba (imported for it)

    def prepare(self) -> None:
        """Import the modules the work needs."""

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``prepare`` acquired."""


def _execute(task: Task, item: Item, files: OutputFiles, debug: bool) -> Outcome:
    outcome = Outcome()
    start = time.perf_counter()
    try:
        if item.error is not None:
            raise CliError(item.error)
        task.run(item, files, outcome)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        outcome.ok = False
        outcome.error = describe_exception(exc)
        if debug:
            outcome.traceback = traceback.format_exc()
    outcome.ms = (time.perf_counter() - start) * 1000.0
    return outcome


@contextlib.contextmanager
def compile_notice(quiet: bool, enabled: bool = True) -> Any:
    """Print one line when numba starts compiling (a cache miss: the first run).

    Not with ``quiet``, nor when the environment sets ``JTORCH_NO_COMPILE_NOTICE``
    (test suites, whose expected output must not depend on numba's cache).
    """
    if quiet or not enabled or os.environ.get(NO_NOTICE_ENV):
        yield
        return
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover
        yield
        return
    shown: list[bool] = []

    class Listener(event.Listener):
        def on_start(self, ev: Any) -> None:
            if not shown:
                shown.append(True)
                click.echo("jtorch: compiling the codec's kernels (first run after "
                           "installing; takes a few seconds, once)...", err=True)

        def on_end(self, ev: Any) -> None:
            pass

    with event.install_listener("numba:compile", Listener()):
        yield


class Reporter:
    """Prints outcomes in input order: warnings, one error line per bad file,
    ``--json`` records; keeps the totals for the summary line."""

    def __init__(self, items: Sequence[Item], *, quiet: bool, json_records: bool,
                 debug: bool, results: dict[int, Any] | None = None) -> None:
        self.items = items
        self.results = results
        self.quiet = quiet
        self.json_records = json_records
        self.debug = debug
        self.pending: dict[int, Outcome] = {}
        self.next = 0
        self.failures = 0
        self.done = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.bar: Any = None

    def add(self, index: int, outcome: Outcome) -> None:
        self.pending[index] = outcome
        while self.next in self.pending:
            self._report(self.items[self.next], self.pending.pop(self.next))
            self.next += 1

    def _report(self, item: Item, outcome: Outcome) -> None:
        if self.bar is not None:
            self.bar.clear()
        for message in outcome.warnings:
            warn(f"{item.name}: {message}" if not message.startswith(item.name) else message,
                 quiet=self.quiet)
        if not outcome.ok:
            self.failures += 1
            if outcome.traceback:
                click.echo(outcome.traceback.rstrip("\n"), err=True)
            error_line(item.name, outcome.error or "failed")
        elif self.results is not None:
            self.results[item.index] = outcome.data
        self.done += 1
        self.bytes_in += outcome.bytes_in
        self.bytes_out += outcome.bytes_out
        if self.json_records:
            pixels = outcome.width * outcome.height
            record = {
                "input": item.name,
                "output": item.output if outcome.ok else None,
                "status": "ok" if outcome.ok else "error",
                "error": outcome.error,
                "bytes_in": outcome.bytes_in,
                "bytes": outcome.bytes_out if outcome.ok else None,
                "width": outcome.width or None,
                "height": outcome.height or None,
                "bpp": round(8 * outcome.bytes_out / pixels, 6) if outcome.ok and pixels
                and outcome.bytes_out else None,
                "ms": round(outcome.ms, 3),
                "warnings": outcome.warnings,
            }
            click.echo(json.dumps(record))
        if self.bar is not None:
            self.bar.update(1)


def _format_bytes(n: int) -> str:
    """Exact bytes, with a readable size in parentheses from 10 kB on."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= 10 * size or (unit != "kB" and n >= size):
            return f"{n} bytes ({n / size:.1f} {unit})"
    return f"{n} bytes"


def run_items(items: Sequence[Item], task: Task, *, jobs: int = 1, files: OutputFiles,
              quiet: bool = False, debug: bool = False, json_records: bool = False,
              summary: bool = False, problems: Iterable[tuple[str, str]] = (),
              results: dict[int, Any] | None = None) -> int:
    """Run ``task`` on every item; return the number of failed items (and problems).

    ``jobs`` > 1 runs the items in worker processes (see :class:`_Pool`); the
    messages, records and files are the same as with ``jobs`` = 1. A summary
    line (files, failures, bytes in and out, seconds) goes to stderr when
    ``summary`` and not ``quiet``. ``results``, if given, receives each
    successful item's ``Outcome.data`` by index.
    """
    start = time.perf_counter()
    problem_count = 0
    for name, message in problems:
        error_line(name, message)
        problem_count += 1
    reporter = Reporter(items, quiet=quiet, json_records=json_records, debug=debug,
                        results=results)
    if not items:
        return problem_count
    workers = min(resolve_jobs(jobs), len(items))
    try:
        with compile_notice(quiet, enabled=task.uses_numba):
            task.prepare()  # (kernels compiled at import time get the notice too)
            if workers <= 1:
                reporter.bar = progress_bar(len(items), task.label, quiet=quiet)
                for item in items:
                    reporter.add(item.index, _execute(task, item, files, debug))
            else:
                # The first item here: numba compiles or loads its kernels once, and
                # the forked workers inherit them.
                first = next((it for it in items if it.error is None), items[0])
                reporter.add(first.index, _execute(task, first, files, debug))
                rest = [it for it in items if it is not first]
                with _Pool(task, workers, files=files, debug=debug) as pool:
                    reporter.bar = progress_bar(len(items), task.label, quiet=quiet, done=1)
                    for index, outcome in pool.map(rest):
                        reporter.add(index, outcome)
    finally:
        if reporter.bar is not None:
            reporter.bar.close()
        task.close()
        files.cleanup()
    failures = reporter.failures + problem_count
    if summary and not quiet:
        seconds = time.perf_counter() - start
        count = len(items) + problem_count
        click.echo(
            f"jtorch: summary: {count} file{'s' if count != 1 else ''}, "
            f"{count - failures} {task.label}, {failures} failed, "
            f"{_format_bytes(reporter.bytes_in)} in, "
            f"{_format_bytes(reporter.bytes_out)} out, {seconds:.2f} s"
            + (f" ({workers} jobs)" if workers > 1 else ""), err=True)
    return failures


def progress_bar(total: int, label: str, *, quiet: bool, done: int = 0) -> Any:
    """A tqdm bar on stderr for ``total`` files, or None (not a terminal, one file,
    ``quiet``)."""
    if quiet or total <= 1 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="file", file=sys.stderr, leave=False)
    if done:
        bar.update(done)
    return bar


# --------------------------------------------------------------------------- workers


def _start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn"


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies (and so remove our temporary files)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(conn: Any, task: Task, force: bool, inputs: list[str], debug: bool,
                 prepared: bool) -> None:
    """A worker process: run the items the parent sends until it sends None."""
    status = 0
    files = OutputFiles(force=force, inputs=inputs)
    try:
        for signum in handled_signals():
            signal.signal(signum, _raise_interrupted)
        _die_with_parent()
        if not prepared:
            task.prepare()
        while True:
            message = conn.recv()
            if message is None:
                break
            outcome = _execute(task, message, files, debug)
            conn.send((message.index, outcome))
    except Interrupted as exc:
        status = exc.exit_status
    except (KeyboardInterrupt, EOFError, BrokenPipeError, OSError):
        status = 1
    finally:
        files.cleanup()
        with contextlib.suppress(Exception):
            task.close()
        os._exit(status)  # no atexit handlers, no flushing of the parent's buffers


class _Pool:
    """``n`` worker processes, one item in flight each, results as they come.

    Workers are forked (Linux) after :meth:`Task.prepare` and the first item
    ran here, so they start with the codec imported and compiled; elsewhere
    they are spawned and prepare themselves. On SIGINT/SIGTERM/SIGHUP here,
    the workers get SIGTERM and remove their temporary files; a worker that
    dies without doing so (SIGKILL) has its temporary files removed here.
    """

    def __init__(self, task: Task, n: int, *, files: OutputFiles, debug: bool) -> None:
        self.task = task
        self.n = n
        self.files = files
        self.debug = debug
        self.method = _start_method()
        self.context = multiprocessing.get_context(self.method)
        self.workers: list[dict[str, Any]] = []

    def _spawn(self) -> dict[str, Any]:
        parent_conn, child_conn = self.context.Pipe()
        process = self.context.Process(
            target=_worker_main,
            args=(child_conn, self.task, self.files.force, self.files.inputs, self.debug,
                  self.method == "fork"),
            daemon=True)
        sys.stdout.flush()
        sys.stderr.flush()
        process.start()
        child_conn.close()
        worker = {"process": process, "conn": parent_conn, "item": None}
        self.workers.append(worker)
        return worker

    def __enter__(self) -> _Pool:
        for _ in range(self.n):
            self._spawn()
        return self

    def map(self, items: Sequence[Item]) -> Iterable[tuple[int, Outcome]]:
        queue = list(reversed(items))

        def feed(worker: dict[str, Any]) -> None:
            if queue:
                worker["item"] = queue.pop()
                worker["conn"].send(worker["item"])
            else:
                worker["item"] = None

        for worker in list(self.workers):
            feed(worker)
        while any(w["item"] is not None for w in self.workers):
            busy = {w["conn"]: w for w in self.workers if w["item"] is not None}
            for conn in multiprocessing.connection.wait(list(busy)):
                worker = busy[conn]
                try:
                    index, outcome = conn.recv()
                except (EOFError, OSError):
                    item = worker["item"]
                    yield item.index, self._died(worker)
                    if queue:
                        feed(self._spawn())
                    continue
                yield index, outcome
                feed(worker)

    def _died(self, worker: dict[str, Any]) -> Outcome:
        """A worker vanished mid-item: clean up after it and report the item."""
        process = worker["process"]
        process.join(5)
        item = worker["item"]
        worker["item"] = None
        self.workers.remove(worker)
        if item is not None and item.output:
            remove_temporaries_of([item.output], process.pid)
        code = process.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit status {code}")
        return Outcome(ok=False, error=f"the worker process died ({how})")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        interrupted = exc_type is not None
        with signals_ignored():  # a second Ctrl-C must not stop the clean-up half-way
            for worker in self.workers:
                with contextlib.suppress(Exception):
                    if interrupted:
                        os.kill(worker["process"].pid, signal.SIGTERM)
                    else:
                        worker["conn"].send(None)
            deadline = time.monotonic() + 10
            for worker in self.workers:
                process = worker["process"]
                with contextlib.suppress(Exception):
                    process.join(max(0.0, deadline - time.monotonic()))
                    if process.is_alive():
                        process.kill()
                        process.join(5)
                item = worker["item"]
                if item is not None and item.output:
                    remove_temporaries_of([item.output], process.pid)
                with contextlib.suppress(Exception):
                    worker["conn"].close()


def record_dict(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a plain dict (for tests and tools)."""
    return asdict(outcome)
