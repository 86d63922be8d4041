"""The learned codec: integer tables, bit-exact entropy coding, .jtc round trips,
damage handling, determinism, and the trainer (loss goes down, resume, CLI)."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from jpegtorch.formats import container as jtc

from jpegtorch import JPEGError
from jpegtorch.learned import codec, entropy, export
from jpegtorch.learned.model import FactorizedCodec, FactorizedDensity
from jpegtorch.learned.train import TrainConfig, rd_loss, train

torch.set_num_threads(1)


def _image(h: int, w: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    """A smooth-ish uint8 test image ``[c, h, w]``."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(c, h // 4 + 2, w // 4 + 2, generator=g)
    up = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear",
                                         align_corners=False)[0]
    noise = 0.05 * torch.rand(c, h, w, generator=g)
    return ((up + noise).clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A tiny random (untrained) 2-level model, exported like the real one."""
    torch.manual_seed(0)
    net = FactorizedCodec(n=8, m=8, levels=2)
    with torch.no_grad():  # make the densities distinct per channel
        for prior in net.priors:
            for b in prior.biases:
                b.add_(torch.randn_like(b))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    export.export_model(net, (0.01, 0.05), path, meta={"name": "tiny-test"})
    return path


# --- integer tables and entropy coding --------------------------------------------------


def test_quantize_pmf_exact_total_and_floor():
    pmf = np.array([0.5, 0.3, 0.2 - 1e-12, 0.0, 1e-15])
    freqs = export.quantize_pmf(pmf, 1e-9)
    assert freqs.dtype == np.int32 and freqs.sum() == 1 << export.PRECISION
    assert freqs.min() >= 1 and freqs.size == pmf.size + 1
    assert np.array_equal(freqs, export.quantize_pmf(pmf, 1e-9))


def test_tables_from_density_are_valid(model_file):
    blob = export.load_blob(model_file)
    lengths = blob["cdf_lengths"].numpy()
    freqs = blob["cdf_freqs"].numpy()
    assert freqs.dtype == np.int32 and lengths.sum() == freqs.size
    start = 0
    for n in lengths.ravel():
        assert freqs[start:start + n].sum() == 1 << export.PRECISION
        start += n
    # the medians solve CDF = 1/2
    net = FactorizedCodec(8, 8, 2)
    assert blob["medians"].shape == (2, 8)
    assert net is not None


def test_medians_and_tails_by_bisection():
    torch.manual_seed(1)
    density = FactorizedDensity(4).double()
    med = export._solve(density, 0.0)
    logits = density.cdf_logits(med.view(4, 1, 1))
    assert torch.allclose(logits, torch.zeros_like(logits), atol=1e-9)


def _random_tables(rng: np.random.Generator, m: int) -> entropy.Tables:
    offsets, freqs = [], []
    for _ in range(m):
        k = int(rng.integers(2, 30))
        x = np.arange(k) - k // 2
        p = np.exp(-np.abs(x) / rng.uniform(0.3, 4))
        freqs.append(export.quantize_pmf(p / p.sum(), 1e-4))
        offsets.append(-(k // 2))
    return entropy.Tables(np.array(offsets, np.int32),
                          np.array([f.size for f in freqs], np.int32), np.concatenate(freqs))


def test_entropy_streams_decode_bit_exactly():
    rng = np.random.default_rng(0)
    tables = _random_tables(rng, 16)
    q = np.round(rng.laplace(0, 3, (16, 9, 13))).astype(np.int32)
    q[0, 0, 0], q[1, 2, 3], q[15, 8, 12] = 70000, -12345, 4000  # escapes
    latents, escapes = entropy.encode_symbols(q, tables)
    assert len(escapes) > 0
    back = entropy.decode_symbols(latents, escapes, q.shape, tables)
    assert back.dtype == np.int32 and np.array_equal(back, q)
    # deterministic bytes, and fresh model objects give the same stream
    again = entropy.Tables(tables.offsets, tables.lengths, tables.freqs)
    assert entropy.encode_symbols(q, again) == (latents, escapes)


def test_entropy_stream_damage_is_a_jpeg_error():
    rng = np.random.default_rng(1)
    tables = _random_tables(rng, 4)
    q = np.zeros((4, 3, 3), np.int32)
    latents, escapes = entropy.encode_symbols(q, tables)
    with pytest.raises(JPEGError):
        entropy.decode_symbols(latents[:-1], escapes, q.shape, tables)


# --- the codec --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(16, 16), (37, 53), (5, 70)])
def test_round_trip_any_size(model_file, size):
    image = _image(*size)
    data = codec.encode_image(image, 1, model=model_file)
    assert jtc.is_container(data)
    back = codec.decode_image(data, model=model_file)
    assert back.dtype == torch.uint8 and back.shape == image.shape
    info = jtc.describe(data)
    assert (info["height"], info["width"]) == size
    assert info["tensors"][0]["shape"] == [8, math.ceil(size[0] / 16), math.ceil(size[1] / 16)]


def test_grayscale_round_trip(model_file):
    gray = _image(24, 40, c=1)
    data = codec.encode_image(gray, 2, model=model_file)
    back = codec.decode_image(data, model=model_file)
    assert back.shape == (1, 24, 40)
    assert jtc.unpack(data).channels == 1
    assert codec.decode_image(codec.encode_image(gray[0], 2, model=model_file),
                              model=model_file).shape == (1, 24, 40)


def test_deterministic_bytes_and_levels_differ(model_file):
    image = _image(48, 64, seed=3)
    a = codec.encode_image(image, 1, model=model_file)
    assert a == codec.encode_image(image.clone(), 1, model=model_file)
    b = codec.encode_image(image, 2, model=model_file)
    assert jtc.unpack(b).level == 2 and a != b


def test_decode_matches_the_symbols_that_were_coded(model_file):
    """The decoder reconstructs exactly synthesis(round(y - μ) + μ)."""
    image = _image(32, 48, seed=5)
    loaded = codec.load_model(model_file)
    x = image.float()[None] / 255
    y = loaded.net.analysis(x, 0)[0]
    med = torch.from_numpy(loaded.medians[0]).view(-1, 1, 1)
    q = torch.round(y - med)
    expected = loaded.net.synthesis((q + med)[None], 0)[0].clamp(0, 1)
    expected = torch.round(expected * 255).to(torch.uint8)
    back = codec.decode_image(codec.encode_image(image, 1, model=model_file), model=model_file)
    assert torch.equal(back, expected)


def test_bad_arguments(model_file):
    image = _image(16, 16)
    with pytest.raises(ValueError, match=r"level"):
        codec.encode_image(image, 3, model=model_file)
    with pytest.raises(ValueError, match=r"uint8"):
        codec.encode_image(image.float(), 1, model=model_file)
    with pytest.raises(ValueError):
        codec.encode_image(image[:2], 1, model=model_file)


def test_decode_rejects_damage(model_file):
    data = codec.encode_image(_image(32, 32), 1, model=model_file)
    box = jtc.unpack(data)
    cases = {
        "truncated": data[:-3],
        "bad magic": b"X" + data[1:],
        "version": data[:8] + b"\x07" + data[9:],
        "CRC32": data[:-1] + bytes([data[-1] ^ 1]),
        "unknown .jtc model": jtc.pack(jtc.Container(**{**box.__dict__,
                                                          "model_hash": b"\0" * 8})),
        "unknown .jtc codec": jtc.pack(jtc.Container(**{**box.__dict__, "codec": "other"})),
        "latent shapes": jtc.pack(jtc.Container(**{**box.__dict__, "width": 64})),
        "level": jtc.pack(jtc.Container(**{**box.__dict__, "level": 9})),
    }
    for what, bad in cases.items():
        with pytest.raises(JPEGError, match=what):
            codec.decode_image(bad, model=model_file)


def test_model_file_errors(tmp_path, model_file):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(JPEGError, match=r"not a learned-codec model"):
        codec.load_model(junk)
    with pytest.raises(JPEGError, match=r"not found"):
        codec.load_model(tmp_path / "missing.pt")
    loaded = codec.load_model(model_file)
    assert loaded.name == "tiny-test" and len(loaded.hash8) == 8 and loaded.levels == 2


def test_shipped_weights_match_levels():
    from jpegtorch import learned

    if not codec.DEFAULT_WEIGHTS.exists():
        pytest.skip("no shipped weights in this checkout")
    loaded = codec.load_model()
    assert loaded.levels == len(learned.LEVELS) and learned.DEFAULT_LEVEL in learned.LEVELS
    assert codec.DEFAULT_WEIGHTS.stat().st_size < 25e6
    from conftest import load_sample, to_chw

    image = to_chw(load_sample("kodim23_256x192.png"))[:, :100, :150].contiguous()
    data = learned.encode_image(image)
    assert jtc.unpack(data).level == learned.DEFAULT_LEVEL
    back = learned.decode_image(data)
    assert back.shape == image.shape
    psnr = 10 * math.log10(255**2 / float(((back.double() - image.double()) ** 2).mean()))
    assert psnr > 25


# --- training ---------------------------------------------------------------------------


class _Sampler:
    def __init__(self, n: int = 4) -> None:
        self.images = [_image(64, 64, seed=s).permute(1, 2, 0).numpy() for s in range(n)]

    def sample(self, rng: np.random.Generator, batch: int, crop: int) -> torch.Tensor:
        from jpegtorch.learned.data import CropSampler

        return CropSampler(self.images).sample(rng, batch, crop)


def test_training_lowers_the_loss_and_resumes(tmp_path):
    sampler = _Sampler()
    fixed = sampler.sample(np.random.default_rng(123), 4, 32)

    def loss_of(path: Path) -> float:
        state = torch.load(path, weights_only=False)
        net = FactorizedCodec(8, 8, 1)
        net.load_state_dict(state["model"])
        torch.manual_seed(0)
        with torch.no_grad():
            return float(rd_loss(net, fixed, 0, 0.05)[0])

    config = TrainConfig(lambdas=(0.05,), steps=1, crop=32, batch=4, n=8, m=8, lr=3e-3,
                         warmup=1, log_every=1000)
    ckpt = tmp_path / "m.ckpt"
    train(config, sampler, tmp_path / "m.pt", checkpoint=ckpt, progress=False)
    before = loss_of(ckpt)
    config.steps = 40
    lines: list[str] = []
    train(config, sampler, tmp_path / "m.pt", checkpoint=ckpt, resume=ckpt, progress=False,
          log=lines.append)
    assert torch.load(ckpt, weights_only=False)["step"] == 40
    after = loss_of(ckpt)
    assert after < 0.9 * before
    assert codec.load_model(tmp_path / "m.pt").levels == 1


class _InterruptingSampler(_Sampler):
    """Sends this process ``signum`` while sampling the batch of call ``at``."""

    def __init__(self, at: int, signum: int) -> None:
        super().__init__()
        self.calls, self.at, self.signum = 0, at, signum

    def sample(self, rng: np.random.Generator, batch: int, crop: int) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return super().sample(rng, batch, crop)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_checkpoint_and_resume_is_exact(tmp_path, signum):
    """Ctrl-C/SIGTERM finish the current step, save it, and a resume continues exactly."""
    from jpegtorch.learned.train import TrainingInterrupted

    def config() -> TrainConfig:
        return TrainConfig(lambdas=(0.02, 0.05), steps=6, crop=32, batch=2, n=8, m=8,
                           warmup=1, log_every=1000)

    handler = signal.getsignal(signum)
    ckpt = tmp_path / "a.ckpt"
    with pytest.raises(TrainingInterrupted) as stopped:
        train(config(), _InterruptingSampler(3, signum), tmp_path / "a.pt", checkpoint=ckpt,
              progress=False)
    assert signal.getsignal(signum) is handler  # restored
    assert stopped.value.step == 3 and torch.load(ckpt, weights_only=False)["step"] == 3
    assert not (tmp_path / "a.pt").exists()  # no half-trained export
    train(config(), _Sampler(), tmp_path / "a.pt", checkpoint=ckpt, resume=ckpt, progress=False)
    train(config(), _Sampler(), tmp_path / "b.pt", checkpoint=tmp_path / "b.ckpt", progress=False)
    resumed = torch.load(ckpt, weights_only=False)["model"]
    straight = torch.load(tmp_path / "b.ckpt", weights_only=False)["model"]
    assert resumed.keys() == straight.keys()
    for key in resumed:
        assert torch.equal(resumed[key], straight[key]), key


def test_cli_train_codec_tiny(tmp_path):
    from click.testing import CliRunner
    from jpegtorch.cli.train_codec import codec as command
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    for s in range(3):
        Image.fromarray(_image(40, 48, seed=s).permute(1, 2, 0).numpy()).save(data / f"{s}.png")
    out = tmp_path / "model.pt"
    args = ["--data", str(data), "--lambda", "0.01,0.05", "--steps", "3", "--crop", "32",
            "--batch", "2", "--channels", "8", "--latent", "8", "--threads", "1", "-o",
            str(out)]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "model.pt.ckpt").exists()
    assert codec.load_model(out).levels == 2
    before = out.read_bytes()
    again = CliRunner().invoke(command, args)  # refused before training: nothing replaced
    assert again.exit_code == 1 and "model.pt exists (use -f/--force" in again.output
    assert out.read_bytes() == before
    bad = CliRunner().invoke(command, [*args[:2], "--lambda", "-1", "-o", str(out)])
    assert bad.exit_code == 2
    bad = CliRunner().invoke(command, [*args, "--crop", "40"])
    assert bad.exit_code == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_encode_cpu_decode(model_file):
    """Cross-device: a file encoded on the GPU decodes on the CPU (integer tables)."""
    image = _image(64, 80, seed=9)
    on_gpu = codec.encode_image(image, 2, model=model_file, device="cuda")
    on_cpu = codec.encode_image(image, 2, model=model_file)
    back_gpu = codec.decode_image(on_gpu, model=model_file)
    back_cpu = codec.decode_image(on_cpu, model=model_file)
    assert back_gpu.shape == image.shape
    # the symbols may differ where y - μ sits on a rounding edge; the images barely
    assert float((back_gpu.float() - back_cpu.float()).abs().mean()) < 1.0
    # decoding on the GPU reads the same symbols: same image up to float rounding
    back_on_gpu = codec.decode_image(on_gpu, model=model_file, device="cuda")
    assert int((back_on_gpu.int() - back_gpu.int()).abs().max()) <= 1


# --- model files without torch (what a .jtc decoder checks before importing torch) --------


def test_model_file_read_without_torch_matches_torch(model_file):
    from jpegtorch.learned import modelfile

    blob = export.load_blob(model_file)
    arrays = modelfile.read_blob(model_file)
    assert modelfile.content_hash(arrays) == modelfile.content_hash(blob)
    for key in ("medians", "cdf_offsets", "cdf_lengths", "cdf_freqs"):
        assert np.array_equal(arrays[key], blob[key].numpy()), key
    for key, value in blob["state"].items():
        assert arrays["state"][key].dtype == value.numpy().dtype
        assert np.array_equal(arrays["state"][key], value.numpy()), key
    info = modelfile.model_info(model_file)
    loaded = codec.load_model(model_file)
    assert (info.hash8, info.name, info.levels, info.m, info.n) == \
        (loaded.hash8, "tiny-test", 2, 8, 8)
    if codec.DEFAULT_WEIGHTS.exists():  # the shipped weights' identity, torch-free
        assert modelfile.model_info().hash8 == codec.load_model().hash8


def test_model_file_reader_refuses_foreign_pickles(tmp_path):
    """The torch-free reader only knows a model file's globals (no code runs)."""
    import pickle
    import zipfile

    from jpegtorch.learned import modelfile

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"format": Evil()}, protocol=2))
    with pytest.raises(JPEGError, match=r"not a learned-codec model file \(UnpicklingError\)"):
        modelfile.read_blob(path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(JPEGError, match=r"not a learned-codec model file"):
        modelfile.read_blob(junk)


def test_jtc_refusal_does_not_import_torch(tmp_path, model_file):
    import subprocess
    import sys

    data = codec.encode_image(_image(32, 32), 1, model=model_file)
    bad = tmp_path / "bad.jtc"
    bad.write_bytes(jtc.pack(jtc.Container(**{**jtc.unpack(data).__dict__, "streams": (
        jtc.Stream("latents", b""), jtc.Stream("escapes", b""))})))
    script = ("import sys\nfrom jpegtorch import JPEGError\nfrom jpegtorch.learned import "
              "decode_image\ntry:\n    decode_image(open(sys.argv[1], 'rb').read(), "
              "model=sys.argv[2])\nexcept JPEGError as e:\n    print(e)\n"
              "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script, str(bad), str(model_file)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "stream 'latents' (empty" in out[0] and out[1] == "False"
