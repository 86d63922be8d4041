"""``jtorch``: the command-line entry point (a lazy click group)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from jpegtorch._version import __version__

# command name -> "module:function". Modules are imported only when needed,
# and none of them imports torch at module level.
COMMANDS: dict[str, str] = {
    "encode": "jpegtorch.cli.encode:encode",
    "decode": "jpegtorch.cli.decode:decode",
    "info": "jpegtorch.cli.info:info",
    "compare": "jpegtorch.cli.compare:compare",
    "train": "jpegtorch.cli.train:train",
    "demo": "jpegtorch.cli.demo:demo",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands live in separate, lazily imported modules."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(
            name
            for name, target in COMMANDS.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        )

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attr)


# Commands whose work is one image at a time: one torch thread by default. On a
# busy machine torch's default (one thread per core) stalls in its barriers and
# runs several times slower; batch parallelism is better done with -j (processes).
SINGLE_THREAD_DEFAULT = frozenset({"encode", "decode", "info", "compare", "demo"})


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="jtorch")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="torch threads (default: 1 for encode/decode/info/compare/demo, "
                   "all cores for train; OMP_NUM_THREADS is respected).")
@click.pass_context
def cli(ctx: click.Context, threads: int | None) -> None:
    """jtorch: a libjpeg-turbo-exact JPEG engine in PyTorch.

    \b
    Examples:
      jtorch encode photo.png -q 50 -o photo-q50.jpg
      jtorch decode photo-q50.jpg -o photo-q50.png
      jtorch encode photos/ -o jpegs/ -j 0      # a folder, all cores
      jtorch info photo-q50.jpg --json
      jtorch demo samples -o out/demo

    Shell completion (bash): eval "$(_JTORCH_COMPLETE=bash_source jtorch)"
    """
    # torch reads OMP_NUM_THREADS when it is first imported, which happens
    # inside the sub-command, after this callback.
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    elif ctx.invoked_subcommand in SINGLE_THREAD_DEFAULT:
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="jtorch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
