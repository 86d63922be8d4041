"""jpegtorch.tune and ``jtorch train tables``: training lowers the loss, runs are
reproducible and resumable, tables files round-trip through cjpeg's format and
decode everywhere (djpeg -strict, Pillow, jpeginfo, our reader), bad data gives
clear errors, and the shipped presets are sound."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import load_sample, synthetic, to_chw
from jpegtorch.cli.main import cli
from jpegtorch.formats import qtables
from jpegtorch.formats.jfif_writer import encode_jpeg, resolve_base_tables
from PIL import Image

import jpegtorch
from jpegtorch import metrics, tune
from jpegtorch.errors import JPEGError

CJPEG = shutil.which("cjpeg")
DJPEG = shutil.which("djpeg")
JPEGINFO = shutil.which("jpeginfo")
SAMPLES = ("kodim05_384x256.png", "kodim23_256x192.png", "kodim15_256x256.png",
           "kodim01_233x151.png")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sample_set() -> tune.ImageSet:
    images = [to_chw(load_sample(name)) for name in SAMPLES]
    return tune.ImageSet(images=images, names=list(SAMPLES), source="samples")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    for name in SAMPLES[:2]:
        Image.fromarray(load_sample(name)).save(folder / name)
    Image.fromarray(load_sample(SAMPLES[2])).save(folder / "sub" / "photo.jpg", quality=95)
    (folder / "README.txt").write_text("not an image\n")
    return folder


def real_loss(images: list[torch.Tensor], tables: torch.Tensor, quality: int,
              lam: float) -> float:
    """The training objective on real files: mean of -PSNR + lam * log2(bpp)."""
    values = []
    for image in images:
        data = encode_jpeg(image, quality, optimize=True, tables=tables)
        decoded = torch.from_numpy(np.array(Image.open(io.BytesIO(data)))).permute(2, 0, 1)
        psnr = float(metrics.psnr(decoded[None], image[None])[0])
        bpp = len(data) * 8 / (image.shape[-1] * image.shape[-2])
        values.append(-psnr + lam * np.log2(bpp))
    return float(np.mean(values))


# --------------------------------------------------------------------------- training


def test_a_few_steps_lower_the_loss() -> None:
    data = sample_set()
    config = tune.TrainConfig(objective="psnr", lam=6.0, quality_range=(50, 50), steps=12,
                              crop=96, batch=4, lr=0.05, seed=3)
    trainer = tune.TableTrainer(data, config)
    crops = tune.evaluation_crops(data, count=8, crop=128, seed=7)
    before = real_loss(crops, trainer.tables(), 50, config.lam)
    tables = trainer.train()
    after = real_loss(crops, tables, 50, config.lam)
    assert after < before - 0.05, (before, after)
    assert tables.shape == (2, 8, 8)
    assert torch.equal(tables, tables.round()) and tables.min() >= 1 and tables.max() <= 255
    assert not torch.equal(tables, jpegtorch.quantize.annex_k_tables())
    assert len(trainer.history) == 12 and all(np.isfinite(h.loss) for h in trainer.history)


def test_rate_matching_keeps_the_quality_scale() -> None:
    data = sample_set()
    config = tune.TrainConfig(steps=10, crop=96, batch=4, lr=0.05, quality_range=(40, 80))
    trainer = tune.TableTrainer(data, config)
    trainer.train()
    assert config.lambda_mode == "match-annex-k"
    last = trainer.history[-3:]
    ratio = np.mean([np.log2(h.bpp / h.reference_bpp) for h in last])
    assert abs(ratio) < 0.25  # within ~20% of Annex K's size at the same qualities
    assert 0.05 <= trainer.lam <= 200


def test_reproducible_and_resumable(tmp_path: Path) -> None:
    data = sample_set()
    config = tune.TrainConfig(objective="ssim", steps=6, crop=64, batch=2, seed=11,
                              quality_range=(30, 90))
    straight = tune.TableTrainer(data, config)
    expected = straight.train()
    again = tune.TableTrainer(data, config).train()
    assert torch.equal(expected, again)

    checkpoint = tmp_path / "run.ckpt"
    first = tune.TableTrainer(data, config)
    for _ in range(3):
        first.train_step()
    tune.save_checkpoint(checkpoint, first)
    resumed = tune.TableTrainer(data, config)
    resumed.load_state_dict(tune.load_checkpoint(checkpoint))
    assert resumed.step == 3
    assert torch.equal(resumed.train(), expected)
    assert [h.loss for h in resumed.history] == [h.loss for h in straight.history]

    other = tune.TableTrainer(data, tune.TrainConfig(objective="psnr", steps=6, crop=64,
                                                     batch=2, seed=11, quality_range=(30, 90)))
    with pytest.raises(JPEGError, match="objective"):
        other.load_state_dict(tune.load_checkpoint(checkpoint))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(JPEGError, match="checkpoint"):
        tune.load_checkpoint(tmp_path / "junk.ckpt")


def test_ms_ssim_and_target_bpp_modes() -> None:
    images = [to_chw(load_sample(name)) for name in SAMPLES[:3]]
    data = tune.ImageSet(images=images, names=list(SAMPLES[:3]))
    trainer = tune.TableTrainer(data, tune.TrainConfig(objective="ms-ssim", crop=176, batch=1,
                                                       steps=2, target_bpp=1.0))
    trainer.train()
    assert trainer.config.lambda_mode == "target-bpp"
    assert all(np.isfinite(h.loss) and h.distortion_db < 0 for h in trainer.history)
    with pytest.raises(JPEGError, match="smaller than"):
        tune.TableTrainer(sample_set(), tune.TrainConfig(crop=200))


def test_load_images_skips_and_errors(data_dir: Path, tmp_path: Path) -> None:
    warnings: list[str] = []
    data = tune.load_images(data_dir, min_size=200, warn=warnings.append)
    assert len(data) == 2  # kodim23 is 192 high: too small for 200
    assert sum("not an image" in w for w in warnings) == 1
    assert sum("smaller than the 200x200 crop" in w for w in warnings) == 1
    assert all(i.dtype == torch.uint8 and i.shape[0] == 3 for i in data.images)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(JPEGError, match="empty"):
        tune.load_images(empty)
    with pytest.raises(JPEGError, match="use a smaller --crop"):
        tune.load_images(data_dir, min_size=1000)
    with pytest.raises(JPEGError, match="no such"):
        tune.load_images(tmp_path / "missing")
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "a.png").write_text("this is not a PNG")
    with pytest.raises(JPEGError, match="no readable images"):
        tune.load_images(only_text)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="not both"):
        tune.TrainConfig(lam=1.0, target_bpp=1.0)
    with pytest.raises(ValueError, match="quality range"):
        tune.TrainConfig(quality_range=(90, 30))
    with pytest.raises(ValueError, match="161"):
        tune.TrainConfig(objective="ms-ssim", crop=128)
    with pytest.raises(ValueError, match="objective"):
        tune.TrainConfig(objective="lpips")


# --------------------------------------------------------------------------- CLI


def train_cli(*args: str):
    return CliRunner().invoke(cli, ["train", "tables", *args], catch_exceptions=False)


def test_cli_trains_writes_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "tuned.txt"
    out.parent.mkdir()
    common = ["--data", str(data_dir), "--crop", "64", "--batch", "2", "--quality-range",
              "40:80", "--eval-crops", "2", "--threads", "1"]
    result = train_cli(*common, "--steps", "3", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.count("jtorch: warning:") == 1 and "README.txt" in result.stderr
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert out.with_suffix(".ckpt").is_file()
    for key in ("objective", "lambda", "data", "steps", "quality_range", "train_eval",
                "luma", "chroma", "command"):
        assert key in sidecar
    assert sidecar["steps"] == 3 and sidecar["objective"] == "psnr"
    assert sidecar["train_eval"]["qualities"] == [40, 50, 60, 70, 80]
    luma, chroma = qtables.read_qtables(out)
    assert list(luma) == sidecar["luma"] and list(chroma) == sidecar["chroma"]

    # an interrupted run (checkpoint at step 3 of 5) resumed by the CLI == a straight run
    images = tune.load_images(data_dir, min_size=64)
    config = tune.TrainConfig(steps=5, crop=64, batch=2, quality_range=(40, 80))
    partial = tune.TableTrainer(images, config)
    for _ in range(3):
        partial.train_step()
    checkpoint = tmp_path / "partial.ckpt"
    tune.save_checkpoint(checkpoint, partial)
    result = train_cli(*common[:2], "--steps", "5", "--eval-crops", "0", "--resume",
                       str(checkpoint), "-o", str(out))
    assert result.exit_code == 1 and "tuned.txt exists (use -f/--force" in result.stderr
    result = train_cli(*common[:2], "--steps", "5", "--eval-crops", "0", "--resume",
                       str(checkpoint), "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    straight = tmp_path / "straight.txt"
    result = train_cli(*common[:-4], "--eval-crops", "0", "--steps", "5", "-o", str(straight))
    assert result.exit_code == 0, result.output
    assert qtables.read_qtables(out) == qtables.read_qtables(straight)
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == 5

    quiet = train_cli(*common[:-4], "--steps", "1", "--eval-crops", "0", "-Q", "-o",
                      str(tmp_path / "quiet.txt"))
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""

    result = train_cli(*common[:2], "--objective", "ssim", "--resume",
                       str(out.with_suffix(".ckpt")), "-o", str(out), "-f")
    assert result.exit_code == 2 and "checkpoint was trained with" in result.stderr


def test_cli_errors(data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "t.txt")
    result = train_cli("--data", str(empty), "-o", out)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"jtorch: error: {empty}: the folder is empty"]
    result = train_cli("--data", str(data_dir), "--crop", "999", "-o", out)
    assert result.exit_code == 1 and "use a smaller --crop" in result.stderr
    assert "Traceback" not in result.stderr
    for bad in (["--lambda", "1", "--target-bpp", "1"], ["--quality-range", "90:30"],
                ["--quality-range", "abc"], ["--objective", "ms-ssim", "--crop", "64"],
                ["--steps", "-1"]):
        result = train_cli("--data", str(data_dir), *bad, "-o", out)
        assert result.exit_code == 2, (bad, result.output)
    assert not Path(out).exists()


def test_help_does_not_import_torch() -> None:
    code = ("import sys\nfrom jpegtorch.cli.main import cli\n"
            "try:\n    cli(['train', 'tables', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "jtorch train tables --data" in result.stdout  # the examples


# --------------------------------------------------------------------------- tables files


def odd_tables() -> list[list[int]]:
    rng = np.random.default_rng(5)
    luma = [int(v) for v in rng.integers(1, 256, 64)]
    luma[:2] = [1, 255]
    chroma = [int(v) for v in rng.integers(1, 256, 64)]
    return [luma, chroma]


def test_tables_round_trip_through_cjpeg_text(tmp_path: Path) -> None:
    tables = odd_tables()
    text = qtables.format_qtables(tables, comment="trained\nby a test")
    assert [list(t) for t in qtables.parse_qtables(text)] == tables
    path = tmp_path / "t.txt"
    path.write_text(text)
    base = resolve_base_tables(str(path))
    assert base.reshape(2, 64).tolist() == tables


@pytest.mark.skipif(CJPEG is None, reason="cjpeg not installed")
@pytest.mark.parametrize("quality", [30, 75, 95])
def test_cjpeg_accepts_the_tables_file(quality: int, tmp_path: Path) -> None:
    """``cjpeg -qtables OUT -quality Q`` reads our file and writes our bytes."""
    path = tmp_path / "t.txt"
    path.write_text(qtables.format_qtables(odd_tables(), comment="jpegtorch"))
    image = load_sample("kodim01_233x151.png")
    source = tmp_path / "in.ppm"
    Image.fromarray(image).save(source)
    theirs = subprocess.run([CJPEG, "-baseline", "-qtables", str(path), "-quality",
                             str(quality), str(source)], capture_output=True, check=True)
    assert theirs.stderr == b""
    assert encode_jpeg(to_chw(image), quality, tables=path) == theirs.stdout
    # and through the CLI
    out = tmp_path / "cli.jpg"
    result = CliRunner().invoke(cli, ["encode", str(source), "--tables", str(path), "-q",
                                      str(quality), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == theirs.stdout


def tables_files(tmp_path: Path) -> list[str | Path]:
    path = tmp_path / "odd.txt"
    path.write_text(qtables.format_qtables(odd_tables()))
    presets = [name for name in ("tuned-psnr", "tuned-ssim")
               if name in qtables.available_presets()]
    return [path, *presets]


@pytest.mark.skipif(DJPEG is None, reason="djpeg not installed")
def test_tables_files_decode_everywhere(tmp_path: Path) -> None:
    image = to_chw(synthetic(100, 140))
    gray = to_chw(load_sample("kodim15_gray_256x256.png", mode="L"))
    for tables in tables_files(tmp_path):
        for source in (image, gray):
            for quality, optimize, subsampling in ((10, False, "4:2:0"), (50, True, "4:4:4"),
                                                   (90, True, "4:2:2")):
                data = encode_jpeg(source, quality, optimize=optimize, tables=tables,
                                   subsampling=subsampling)
                path = tmp_path / "f.jpg"
                path.write_bytes(data)
                result = subprocess.run([DJPEG, "-strict", str(path)], capture_output=True)
                assert result.returncode == 0 and result.stderr == b"", (tables, result.stderr)
                if JPEGINFO:
                    info = subprocess.run([JPEGINFO, "-c", str(path)], capture_output=True,
                                          text=True)
                    assert info.returncode == 0 and info.stdout.rstrip().endswith("OK"), info.stdout
                pil = np.array(Image.open(io.BytesIO(data)))
                ours = jpegtorch.decode_jpeg(data)
                assert np.array_equal(ours.permute(1, 2, 0).numpy().squeeze(), pil)


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name,objective", [("tuned-psnr", "psnr"), ("tuned-ssim", "ssim")])
def test_shipped_presets(name: str, objective: str) -> None:
    assert name in qtables.available_presets()
    luma, chroma = qtables.preset_tables(name)
    assert all(1 <= v <= 255 for v in (*luma, *chroma))
    sidecar = json.loads((qtables.presets_dir() / f"{name}.json").read_text())
    assert sidecar["objective"] == objective
    assert sidecar["luma"] == list(luma) and sidecar["chroma"] == list(chroma)
    assert "kodak" not in sidecar["data"].lower()  # evaluated on Kodak, never trained on it
    assert sidecar["command"].startswith("jtorch train tables")
    # usable by name; smaller than Annex K at equal quality setting is not promised,
    # but the file must differ from Annex K's
    image = to_chw(load_sample("kodim23_256x192.png"))
    assert encode_jpeg(image, 75, tables=name) != encode_jpeg(image, 75)


def test_tune_module_re_exports_the_optimize_package() -> None:
    """``jpegtorch.tune`` is a thin alias of ``jpegtorch.optimize.tables`` (issue 12, item 6)."""
    from jpegtorch.optimize import tables

    for name in tune.__all__:
        assert getattr(tune, name) is getattr(tables, name), name
    public = {n for n in vars(tables) if not n.startswith("_") and (
        callable(getattr(tables, n)) or n.isupper()) and getattr(
        getattr(tables, n), "__module__", tables.__name__) == tables.__name__}
    assert public <= set(tune.__all__), sorted(public - set(tune.__all__))
    code = ("import sys\nimport jpegtorch.optimize as o\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'tables' in dir(o)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
