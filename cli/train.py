"""``jtorch train``: a group for the trainers (quantization tables, learned codec)."""

from __future__ import annotations

import click

from .main import LazyGroup

TRAIN_COMMANDS: dict[str, str] = {
    "tables": "jpegtorch.cli.train_tables:tables",
    "codec": "jpegtorch.cli.train_codec:codec",
}


class _TrainGroup(LazyGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        import importlib.util

        return sorted(
            name for name, target in TRAIN_COMMANDS.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        )

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import importlib
        import importlib.util

        target = TRAIN_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=_TrainGroup)
def train() -> None:
    """Train quantization tables or the learned codec.

    \b
    Examples:
      jtorch train tables --data ../shared/data/train -o tuned.txt
      jtorch train codec --data ../shared/data/train --lambda 0.01 -o model.pt
    """
