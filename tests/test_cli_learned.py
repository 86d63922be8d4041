"""The learned codec through the CLI: encode --codec learned, decode and info of .jtc."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import SAMPLES
from jpegtorch.cli.main import cli
from PIL import Image

from jpegtorch.learned import decode_image, encode_image


def test_encode_decode_info_jtc(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    shutil.copy(SAMPLES / "kodim23_256x192.png", src)
    runner = CliRunner()
    result = runner.invoke(cli, ["encode", str(src), "--codec", "learned", "-q", "2"])
    assert result.exit_code == 0, result.output
    jtc = tmp_path / "photo.jtc"  # the container's extension by default
    data = jtc.read_bytes()
    # the CLI writes exactly what the library encodes for that level
    image = np.array(Image.open(src).convert("RGB"))
    import torch

    assert data == encode_image(torch.from_numpy(image).permute(2, 0, 1).contiguous(), level=2)

    out = tmp_path / "back.png"
    result = runner.invoke(cli, ["decode", str(jtc), "-o", str(out)])
    assert result.exit_code == 0, result.output
    decoded = np.array(Image.open(out))
    assert decoded.shape == image.shape
    assert np.array_equal(decoded, decode_image(data).permute(1, 2, 0).numpy())

    text = runner.invoke(cli, ["info", str(jtc)])
    assert text.exit_code == 0 and "learned container" in text.output and "level 2" in text.output
    record = json.loads(runner.invoke(cli, ["info", str(jtc), "--json"]).stdout)[0]
    assert record["width"] == 256 and record["height"] == 192 and record["level"] == 2
    assert record["file_bytes"] == len(data)


def test_learned_usage_errors(tmp_path: Path) -> None:
    src = SAMPLES / "kodim23_256x192.png"
    runner = CliRunner()
    for extra in (["-q", "7"], ["--optimize"], ["--tables", "annex-k"], ["--restart", "2"]):
        result = runner.invoke(cli, ["encode", str(src), "--codec", "learned",
                                     "-o", str(tmp_path / "x.jtc"), *extra])
        assert result.exit_code == 2, (extra, result.output)
    assert not (tmp_path / "x.jtc").exists()
    one = runner.invoke(cli, ["encode", str(src), "--codec", "learned", "--optimize"])
    assert "--optimize applies to --codec jpeg only" in one.stderr  # (not "apply")
    two = runner.invoke(cli, ["encode", str(src), "--codec", "learned", "--optimize",
                              "--restart", "2"])
    assert "--optimize, --restart apply to --codec jpeg only" in two.stderr
