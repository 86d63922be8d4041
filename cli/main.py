"""``jtorch``: the command-line entry point (a lazy click group)."""

from __future__ import annotations

import importlib
import importlib.util
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


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="jtorch")
def cli() -> None:
    """jtorch: a libjpeg-turbo-exact JPEG engine in PyTorch.

    \b
    Examples:
      jtorch encode photo.png -q 50 -o photo.jpg
      jtorch decode photo.jpg -o photo.png
      jtorch info photo.jpg --json
      jtorch demo samples -o out/demo

    Shell completion (bash): eval "$(_JTORCH_COMPLETE=bash_source jtorch)"
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="jtorch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
