"""Packaging (issue 11): a LICENSE, the license as an SPDX string, and a wheel that
builds without setuptools warnings and ships only ``jpegtorch`` with its data."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_license_file_and_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is not in Python 3.10)
    assert re.search(r'^license = "MIT"$', pyproject, re.M)  # an SPDX string, not a table
    assert re.search(r'^license-files = \["LICENSE"\]$', pyproject, re.M)


def _setuptools_version() -> tuple[int, ...]:
    try:
        import setuptools
    except ImportError:
        return (0,)
    return tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())


@pytest.mark.slow
@pytest.mark.skipif(_setuptools_version() < (77,), reason="needs setuptools >= 77 here")
def test_wheel_builds_without_warnings(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
         "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600,
        cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    warnings = [line for line in log.splitlines()
                if "Warning" in line and "byte-compiling is disabled" not in line]
    assert warnings == [], warnings
    (wheel,) = tmp_path.glob("jpegtorch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"jpegtorch", wheel.name.split("-py3")[0]
                                                + ".dist-info"}
    for needed in ("jpegtorch/presets/tuned-psnr.txt", "jpegtorch/weights/learned_factorized.pt",
                   "jpegtorch/formats/metadata.py", "jpegtorch/cli/_batch.py",
                   "jpegtorch/py.typed"):
        assert needed in names, needed
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
