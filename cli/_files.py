"""The files one ``jtorch`` call writes: atomic outputs, no clobbering, signals.

Rules (the same for every command):

- An output is written to a temporary file in its target folder,
  ``.NAME.PID-XXXXXXXX.part``, flushed and fsynced, then renamed over
  ``NAME``: a reader never sees a partial file, and a failure leaves nothing.
- An existing file is never replaced unless the call was given ``--force``
  (``-f``); the one exception is a file this same call wrote. Without
  ``--force`` the rename itself refuses to replace (``link`` + ``unlink``,
  which fails if the name exists), so a file that appears while we work is
  not lost either. An input is never replaced, not even with ``--force``.
- Every temporary file is registered in the call's :class:`OutputFiles`;
  SIGINT, SIGTERM and SIGHUP are turned into :class:`Interrupted` (a
  ``KeyboardInterrupt``) while a command runs (:func:`signals_raise`), so the
  temporary file of the write in progress is removed as the exception
  unwinds, and the call exits with 128 + the signal number (130, 143, 129).
  A temporary file left by SIGKILL (which cannot be caught) never trips a
  later run: names are unique per process and folder inputs skip hidden files.

There is no global mutable state: each call makes its own :class:`OutputFiles`.

Test-only hook: when the environment variable ``JTORCH_TEST_HOLD_WRITE`` is
set to a path, a write whose target name contains ``JTORCH_TEST_HOLD_MATCH``
(default: every write) stops after its temporary file is complete and before
the rename, creates ``<path>.<pid>`` and waits there until that file is
removed (at most 60 s), so that the tests can send a signal, or create the
target, while a write is in progress. Users never set it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

STDIO = "-"
TEMP_SUFFIX = ".part"
HOLD_ENV = "JTORCH_TEST_HOLD_WRITE"
HOLD_MATCH_ENV = "JTORCH_TEST_HOLD_MATCH"


class CliError(Exception):
    """A per-file failure with a one-line, user-facing message."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived; ``exit_status`` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def handled_signals() -> tuple[int, ...]:
    """The signals that remove the call's temporary files: SIGINT, SIGTERM, SIGHUP."""
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    return tuple(getattr(signal, n) for n in names if hasattr(signal, n))


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted`.

    The previous handlers come back afterwards. Outside the main thread (where
    Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in handled_signals():
            previous[signum] = signal.signal(signum, _raise_interrupted)
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """While the block runs (a clean-up), SIGINT/SIGTERM/SIGHUP are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in handled_signals():
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)


def temp_prefix(target: Path, pid: int | None = None) -> str:
    """The start of the temporary file names of ``target`` written by process ``pid``."""
    return f".{target.name}.{os.getpid() if pid is None else pid}-"


def is_temporary_name(name: str) -> bool:
    """True for a name this module gives temporary files (``.NAME.PID-XXXX.part``)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_temporaries_of(targets: Iterable[str], pid: int) -> int:
    """Remove the temporary files process ``pid`` left for ``targets``; return how many.

    Used by the parent of ``--jobs`` workers when a worker dies without
    cleaning up (killed by SIGKILL or the OOM killer).
    """
    removed = 0
    for path in targets:
        if path == STDIO:
            continue
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        prefix = temp_prefix(target, pid)
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
    return removed


def _key(path: str | Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def same_file(a: str | Path, b: str | Path) -> bool:
    """``a`` and ``b`` name the same file (the same path, or links to one file)."""
    if _key(a) == _key(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _test_hold(target: Path) -> None:
    """The test-only pause before a rename (see the module docstring)."""
    flag = os.environ.get(HOLD_ENV)
    if not flag or os.environ.get(HOLD_MATCH_ENV, "") not in target.name:
        return
    marker = Path(f"{flag}.{os.getpid()}")
    marker.write_text(str(target))
    deadline = time.monotonic() + 60
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class OutputFiles:
    """The outputs of one call: atomic writes, the no-clobber rule, temporary files.

    Args:
        force: replace existing files (``--force``); inputs are protected anyway.
        inputs: the call's input paths, which are never written.
    """

    def __init__(self, *, force: bool = False, inputs: Iterable[str] = ()) -> None:
        self.force = force
        self.inputs = [p for p in inputs if p != STDIO]
        self._input_keys = {_key(p) for p in self.inputs}
        self.created: set[str] = set()
        self.temporaries: set[str] = set()
        self._mode = 0o666 & ~_umask()

    # -- checks -----------------------------------------------------------------------

    def is_input(self, path: str | Path) -> bool:
        if _key(path) in self._input_keys:
            return True
        return Path(path).exists() and any(same_file(path, src) for src in self.inputs)

    def may_replace(self, path: str | Path) -> bool:
        """Whether an existing ``path`` may be replaced (``--force`` or written by this call)."""
        return self.force or _key(path) in self.created

    def check(self, path: str, *, folder: bool = False) -> None:
        """Raise :class:`CliError` if ``path`` may not be written (an input, an existing
        file without ``--force``, a directory -- or with ``folder``, a file)."""
        if path == STDIO:
            return
        if self.is_input(path):
            raise CliError(f"refusing to overwrite the input file {path}")
        target = Path(path)
        if target.is_dir() != folder and target.exists():
            raise CliError(f"output {path} is {'not ' if folder else ''}a folder")
        if target.exists() and not self.may_replace(path):
            raise CliError(f"{path} exists (use -f/--force to replace it)")

    # -- writing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[BinaryIO]:
        """Open ``path`` for writing atomically; ``-`` writes to stdout.

        The data goes to a temporary file in the target folder, renamed to
        ``path`` when the block finishes without error; on any error or signal
        the temporary file is removed. The target folder is created if needed.
        """
        if path == STDIO:
            buffer = sys.stdout.buffer
            yield buffer
            buffer.flush()
            return
        self.check(path)
        target = Path(path)
        parent = target.parent if str(target.parent) else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create the folder {parent}: "
                           f"{exc.strerror or exc}") from None
        tmp = None
        try:
            try:
                fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=TEMP_SUFFIX,
                                           dir=parent)
            except OSError as exc:
                raise CliError(f"cannot write {path}: {_reason(exc)}") from None
            self.temporaries.add(tmp)
            with os.fdopen(fd, "wb") as handle:
                yield handle
                try:
                    handle.flush()
                    os.fsync(handle.fileno())
                except OSError as exc:
                    raise CliError(f"cannot write {path}: {_reason(exc)}") from None
            os.chmod(tmp, self._mode)  # mkstemp's 0600 -> what open() would give
            _test_hold(target)
            self._commit(tmp, target)
            self.created.add(_key(path))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO):
                raise CliError(f"cannot write {path}: {_reason(exc)}") from None
            raise
        finally:
            if tmp is not None:
                self.temporaries.discard(tmp)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _commit(self, tmp: str, target: Path) -> None:
        """Rename ``tmp`` to ``target``; without permission to replace, never replace."""
        if self.may_replace(target):
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)  # fails if target exists: an atomic no-clobber rename
        except FileExistsError:
            raise CliError(f"{target} exists (use -f/--force to replace it)") from None
        except OSError:  # no hard links here (FAT, some network file systems)
            if target.exists():
                raise CliError(f"{target} exists (use -f/--force to replace it)") from None
            os.replace(tmp, target)

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` atomically to ``path`` (``-`` = stdout)."""
        with self.open(path) as handle:
            try:
                handle.write(data)
            except OSError as exc:
                if path == STDIO:
                    raise
                raise CliError(f"cannot write {path}: {_reason(exc)}") from None

    def cleanup(self) -> None:
        """Remove the temporary files still registered (after an error or a signal)."""
        for tmp in list(self.temporaries):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self.temporaries.discard(tmp)


def refuse_existing(paths: Iterable[str | Path], *, force: bool,
                    allowed: Iterable[str | Path | None] = ()) -> None:
    """Before long work: raise :class:`CliError` naming the first of ``paths`` that
    exists, unless ``force`` or it is one of ``allowed`` (e.g. the checkpoint a
    run resumes from and keeps updating)."""
    if force:
        return
    keep = {_key(p) for p in allowed if p is not None}
    for path in paths:
        if Path(path).exists() and _key(path) not in keep:
            raise CliError(f"{path} exists (use -f/--force to replace it)")


def _umask() -> int:
    # Read without changing: os.umask has no getter, so set and restore at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return (exc.strerror or str(exc)).lower()
