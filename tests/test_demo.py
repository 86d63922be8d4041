"""``jtorch demo`` (the main job) runs and reports agreement with libjpeg-turbo."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from conftest import SAMPLES
from jpegtorch.cli.main import cli


def test_demo_on_one_sample(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "kodim01_233x151.png", folder)
    result = CliRunner().invoke(cli, ["demo", str(folder), "-o", str(tmp_path / "out"),
                                      "-q", "20,80"])
    assert result.exit_code == 0, result.output
    assert "byte-identical to libjpeg-turbo" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "kodim01_233x151_q20.jpg", "kodim01_233x151_q20.png",
        "kodim01_233x151_q80.jpg", "kodim01_233x151_q80.png"]
    # a second run replaces its outputs only when told to (make demo passes --force)
    again = CliRunner().invoke(cli, ["demo", str(folder), "-o", str(tmp_path / "out"),
                                     "-q", "20"])
    assert again.exit_code == 1 and "exists (use -f/--force" in again.output
    again = CliRunner().invoke(cli, ["demo", str(folder), "-o", str(tmp_path / "out"),
                                     "-q", "20", "--force"])
    assert again.exit_code == 0, again.output


def test_demo_rejects_bad_quality_and_empty_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", str(SAMPLES), "-q", "0"]).exit_code == 2
    result = runner.invoke(cli, ["demo", str(tmp_path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "no images" in result.output
