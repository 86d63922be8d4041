"""Compare jpegtorch with the JPEG libraries people already use (``jtorch compare``).

For each image, quality and codec -- jpegtorch's JPEG writer and decoder (or
the learned codec), plus each reference library -- a :class:`Comparison`
encodes, decodes and measures:

* ``bytes`` and ``bpp`` (bits per pixel of the whole file);
* ``psnr``: PSNR over the R, G and B samples (peak 255; one channel for gray);
* ``psnr_y``: PSNR of the luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (the JFIF /
  BT.601 full-range formula JPEG uses), computed in floating point from the
  original and decoded RGB, without rounding;
* ``ssim``: SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, the mean over the channels) and ``ms_ssim``
  (five scales; ``None`` when the shorter side is under 161 pixels), both
  from :mod:`jpegtorch.metrics` (pytorch-msssim), in float64;
* ``encode_ms`` / ``decode_ms``: wall time of one encode / decode (the best of
  ``repeat`` runs, after a warm-up), the library call only: inputs are
  prepared beforehand. For ``libjpeg`` (``cjpeg`` / ``djpeg``) the time
  includes starting the process;
* for each reference: ``bytes_identical`` (its file is jpegtorch's, byte for
  byte), ``pixels_identical`` (its decode of its file equals jpegtorch's
  decode of jpegtorch's file), ``psnr_vs_jpegtorch`` (the PSNR between those
  two decodes, when they differ) and ``decoder_identical`` (jpegtorch's
  decoder gives the reference decoder's pixels on the reference's file).

References: ``opencv`` (``cv2.imencode`` / ``cv2.imdecode``), ``pillow``
(``Image.save`` / ``Image.open``) and ``libjpeg`` (the ``cjpeg -baseline`` /
``djpeg`` programs of libjpeg-turbo). All three use libjpeg-turbo's defaults
(islow DCT, fancy upsampling) and, with the same settings, write the same
files as jpegtorch. A missing one raises :class:`MissingDependency`, whose
message names what to install.

torch, numpy-heavy libraries and the references are imported on use.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

REFERENCES: tuple[str, ...] = ("opencv", "pillow", "libjpeg")
"""The reference libraries, in their ``--ref`` spelling."""
CODECS: tuple[str, ...] = ("jpeg", "learned")
"""jpegtorch's codecs: ``jpeg`` (JPEG writer + decoder) and ``learned`` (.jtc)."""
OURS = "jpegtorch"
LEARNED = "jpegtorch-learned"
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
DEFAULT_QUALITIES: tuple[int, ...] = (10, 30, 50, 70, 90)
SSIM_MIN_SIZE = 11
"""SSIM needs images at least this many pixels wide and high (its window)."""
MIN_BD_POINTS = 4
"""BD-rate needs at least this many rate-distortion points per curve."""

INSTALL_HINTS: dict[str, str] = {
    "opencv": "the opencv reference needs OpenCV: pip install 'jpegtorch[opencv]' "
              "(or opencv-python-headless)",
    "pillow": "the pillow reference needs Pillow: pip install pillow",
    "libjpeg": "the libjpeg reference needs libjpeg-turbo's cjpeg and djpeg on the PATH: "
               "apt install libjpeg-turbo-progs (Debian/Ubuntu), brew install jpeg-turbo "
               "(macOS)",
    "matplotlib": "--plot needs matplotlib: pip install 'jpegtorch[plot]'",
    "learned": "the learned codec needs its model weights",
}

_OPENCV_SAMPLING = {"4:4:4": 0x111111, "4:2:2": 0x211111, "4:2:0": 0x221111}
_PILLOW_SAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
_CJPEG_SAMPLING = {"4:4:4": "1x1", "4:2:2": "2x1", "4:2:0": "2x2"}
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


class MissingDependency(RuntimeError):
    """A reference library, program or extra is not installed (the message says which)."""


class CodecFailure(RuntimeError):
    """A codec failed on an image (the message names the codec)."""


# --------------------------------------------------------------------------------------
# settings, records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JPEGSettings:
    """JPEG settings shared by jpegtorch and the references.

    ``tables`` are base quantization tables ``(luma, chroma)``, 64 values each
    in natural order, scaled by quality as libjpeg scales them (quality 50 =
    as given). jpegtorch, Pillow and cjpeg take them; OpenCV cannot and keeps
    the standard (Annex K) tables.
    """

    subsampling: str = "4:2:0"
    optimize: bool = False
    tables: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {', '.join(SUBSAMPLINGS)}")
        if self.tables is not None and (len(self.tables) != 2
                                        or any(len(t) != 64 for t in self.tables)):
            raise ValueError("tables must be two tables of 64 values (luma, chroma)")


@dataclass
class Record:
    """The measurements of one (image, codec, quality)."""

    image: str
    codec: str
    quality: int
    width: int
    height: int
    bytes: int
    bpp: float
    psnr: float
    psnr_y: float
    ssim: float | None
    ms_ssim: float | None
    encode_ms: float
    decode_ms: float
    bytes_identical: bool | None = None
    pixels_identical: bool | None = None
    psnr_vs_jpegtorch: float | None = None
    decoder_identical: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: floats rounded sensibly, infinities as ``None``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                if not math.isfinite(value):
                    value = None
                elif f.name.endswith("_ms"):
                    value = round(value, 3)
                elif f.name in ("ssim", "ms_ssim"):
                    value = round(value, 6)
                else:
                    value = round(value, 4)
            out[f.name] = value
        return out


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Record))
"""The keys of every JSON record, and the CSV columns, in order."""


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def _as_hwc(image: Any) -> np.ndarray:
    """uint8 ``[H, W, C]`` (C = 1 or 3) from a tensor ``[C, H, W]`` or an array
    ``[H, W]`` / ``[H, W, C]``."""
    if hasattr(image, "detach"):  # a torch tensor [C, H, W] (or [H, W])
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected a gray or RGB image, got shape {tuple(array.shape)}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    return np.ascontiguousarray(array)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two ``[H, W, C]`` images of the same shape (``inf`` when equal)."""
    from jpegtorch import metrics

    return float(metrics.psnr(_chw(a).double(), _chw(b).double(), data_range=peak)[0])


def luma(image: np.ndarray) -> np.ndarray:
    """JFIF luma ``0.299 R + 0.587 G + 0.114 B`` as float64 ``[H, W, 1]`` (gray: itself)."""
    array = np.asarray(image, dtype=np.float64)
    if array.shape[2] == 1:
        return array
    return (array @ np.asarray(_LUMA_WEIGHTS))[:, :, None]


def _chw(array: np.ndarray) -> Any:
    import torch

    chw = np.ascontiguousarray(np.asarray(array).transpose(2, 0, 1))
    return torch.from_numpy(chw if chw.flags.writeable else chw.copy())


def image_metrics(original: Any, decoded: Any) -> dict[str, float | None]:
    """``psnr``, ``psnr_y``, ``ssim`` and ``ms_ssim`` of a decoded image.

    ``original`` / ``decoded``: uint8 tensors ``[C, H, W]`` or arrays
    ``[H, W(, C)]``. The metrics are :mod:`jpegtorch.metrics`' (pytorch-msssim
    for SSIM and MS-SSIM), computed in float64. ``ssim`` is ``None`` for
    images under 11 pixels a side, ``ms_ssim`` when the shorter side is under
    161 pixels (too small for five scales).
    """
    from jpegtorch import metrics

    a, b = _as_hwc(original), _as_hwc(decoded)
    if a.shape != b.shape:
        raise ValueError(f"decoded shape {b.shape} differs from the original's {a.shape}")
    x, y = _chw(a).double(), _chw(b).double()
    side = min(a.shape[:2])
    return {
        "psnr": float(metrics.psnr(x, y, data_range=255.0)[0]),
        "psnr_y": float(metrics.psnr(_chw(luma(a)), _chw(luma(b)), data_range=255.0)[0]),
        "ssim": float(metrics.ssim(x, y, data_range=255.0)[0]) if side >= SSIM_MIN_SIZE
        else None,
        "ms_ssim": float(metrics.ms_ssim(x, y, data_range=255.0)[0])
        if side >= metrics.MS_SSIM_MIN_SIZE else None,
    }


# --------------------------------------------------------------------------------------
# codecs
# --------------------------------------------------------------------------------------


class Codec:
    """One encoder/decoder pair. ``prepare`` converts an ``[H, W, C]`` image into
    the codec's input (outside the timed region); ``encode`` and ``decode`` are
    timed; ``decode`` returns uint8 ``[H, W, C]``."""

    name: str = ""
    extension: str = ".jpg"

    def prepare(self, image: np.ndarray) -> Any:
        return image

    def encode(self, prepared: Any, quality: int) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (temporary files)."""


class JpegtorchCodec(Codec):
    """jpegtorch's JPEG writer (:func:`jpegtorch.encode_jpeg`) and decoder."""

    name = OURS

    def __init__(self, settings: JPEGSettings) -> None:
        import torch

        import jpegtorch

        self._jpegtorch = jpegtorch
        self.settings = settings
        self._tables = (None if settings.tables is None
                        else torch.tensor(settings.tables, dtype=torch.int64).reshape(2, 8, 8))

    def prepare(self, image: np.ndarray) -> Any:
        return _chw(image).contiguous()

    def encode(self, prepared: Any, quality: int) -> bytes:
        s = self.settings
        return self._jpegtorch.encode_jpeg(prepared, quality, subsampling=s.subsampling,
                                           optimize=s.optimize, tables=self._tables)

    def decode(self, data: bytes) -> np.ndarray:
        return _as_hwc(self._jpegtorch.decode_jpeg(data))


class LearnedCodec(Codec):
    """jpegtorch's learned codec (``.jtc`` files); quality means level."""

    name = LEARNED
    extension = ".jtc"

    def __init__(self, model: str | os.PathLike[str] | None = None) -> None:
        try:
            from jpegtorch import learned
            from jpegtorch.learned import codec
        except ImportError as exc:  # pragma: no cover - the package ships it
            raise MissingDependency(f"the learned codec is not available: {exc}") from None
        try:
            loaded = codec.load_model(model)
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise MissingDependency(
                f"the learned codec cannot load its model: {text[0] if text else exc} "
                "(train one with `jtorch train codec`, or give --model FILE)") from None
        self._learned = learned
        self.model = model
        self.levels: tuple[int, ...] = tuple(range(1, loaded.levels + 1))
        self.channels = loaded.in_channels

    def prepare(self, image: np.ndarray) -> Any:
        if self.channels == 1 and image.shape[2] == 3:
            raise CodecFailure(f"{LEARNED}: the model codes gray images only")
        return _chw(image).contiguous()

    def encode(self, prepared: Any, quality: int) -> bytes:
        return self._learned.encode_image(prepared, quality, model=self.model)

    def decode(self, data: bytes) -> np.ndarray:
        return _as_hwc(self._learned.decode_image(data, model=self.model))


class PillowCodec(Codec):
    """Pillow's JPEG plug-in (libjpeg-turbo)."""

    name = "pillow"

    def __init__(self, settings: JPEGSettings) -> None:
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            raise MissingDependency(INSTALL_HINTS["pillow"]) from None
        self._image = Image
        self.settings = settings

    def prepare(self, image: np.ndarray) -> Any:
        return self._image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)

    def encode(self, prepared: Any, quality: int) -> bytes:
        s = self.settings
        options: dict[str, Any] = {"quality": quality, "optimize": s.optimize}
        if prepared.mode == "RGB":
            options["subsampling"] = _PILLOW_SAMPLING[s.subsampling]
        if s.tables is not None:
            options["qtables"] = [list(t) for t in s.tables]
        buffer = io.BytesIO()
        prepared.save(buffer, "JPEG", **options)
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with self._image.open(io.BytesIO(data)) as im:
            return _as_hwc(np.asarray(im))


class OpenCVCodec(Codec):
    """OpenCV's ``cv2.imencode`` / ``cv2.imdecode`` (libjpeg-turbo inside)."""

    name = "opencv"

    def __init__(self, settings: JPEGSettings) -> None:
        try:
            import cv2
        except ImportError:
            raise MissingDependency(INSTALL_HINTS["opencv"]) from None
        self._cv2 = cv2
        self.settings = settings

    def prepare(self, image: np.ndarray) -> Any:
        if image.shape[2] == 1:
            return np.ascontiguousarray(image[:, :, 0])
        return np.ascontiguousarray(image[:, :, ::-1])  # RGB -> BGR

    def encode(self, prepared: Any, quality: int) -> bytes:
        cv2 = self._cv2
        params = [cv2.IMWRITE_JPEG_QUALITY, quality,
                  cv2.IMWRITE_JPEG_OPTIMIZE, int(self.settings.optimize)]
        if prepared.ndim == 3:
            params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                       _OPENCV_SAMPLING[self.settings.subsampling]]
        ok, buffer = cv2.imencode(".jpg", prepared, params)
        if not ok:
            raise CodecFailure("opencv: cv2.imencode failed")
        return buffer.tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        array = self._cv2.imdecode(np.frombuffer(data, np.uint8), self._cv2.IMREAD_UNCHANGED)
        if array is None:
            raise CodecFailure("opencv: cv2.imdecode failed")
        if array.ndim == 3:
            array = array[:, :, ::-1]
        return _as_hwc(array)


class LibjpegCodec(Codec):
    """libjpeg-turbo's ``cjpeg -baseline`` and ``djpeg`` programs (PNM through pipes)."""

    name = "libjpeg"

    def __init__(self, settings: JPEGSettings) -> None:
        self.cjpeg = shutil.which("cjpeg")
        self.djpeg = shutil.which("djpeg")
        if not self.cjpeg or not self.djpeg:
            raise MissingDependency(INSTALL_HINTS["libjpeg"])
        self.settings = settings
        self._tables_file: str | None = None
        if settings.tables is not None:
            from jpegtorch.formats.qtables import format_qtables

            fd, self._tables_file = tempfile.mkstemp(prefix="jtorch-qtables-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(format_qtables(settings.tables))

    def prepare(self, image: np.ndarray) -> Any:
        height, width, channels = image.shape
        magic = b"P5" if channels == 1 else b"P6"
        return magic + f"\n{width} {height}\n255\n".encode() + image.tobytes()

    def encode(self, prepared: Any, quality: int) -> bytes:
        s = self.settings
        args = [self.cjpeg, "-quality", str(quality), "-baseline"]
        if prepared.startswith(b"P6"):  # -sample on gray input would set 2x2 on luma
            args += ["-sample", _CJPEG_SAMPLING[s.subsampling]]
        if s.optimize:
            args.append("-optimize")
        if self._tables_file:
            args += ["-qtables", self._tables_file, "-qslots", "0,1,1"]
        return self._run(args, prepared)

    def decode(self, data: bytes) -> np.ndarray:
        return parse_pnm(self._run([self.djpeg, "-pnm"], data))

    def _run(self, args: list[str], data: bytes) -> bytes:
        done = subprocess.run(args, input=data, capture_output=True, check=False)
        if done.returncode != 0 or not done.stdout:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            raise CodecFailure(f"libjpeg: {Path(args[0]).name} failed"
                               + (f": {message[-1]}" if message else ""))
        return done.stdout

    def close(self) -> None:
        if self._tables_file:
            with contextlib.suppress(OSError):
                os.unlink(self._tables_file)
            self._tables_file = None


def parse_pnm(data: bytes) -> np.ndarray:
    """uint8 ``[H, W, C]`` from binary PGM (P5) / PPM (P6) bytes with maxval 255."""
    tokens: list[bytes] = []
    pos = 0
    while len(tokens) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError("truncated PNM header")
        tokens.append(data[start:pos])
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic not in (b"P5", b"P6") or maxval != 255:
        raise ValueError(f"unsupported PNM ({magic!r}, maxval {maxval})")
    channels = 1 if magic == b"P5" else 3
    pixels = np.frombuffer(data, np.uint8, width * height * channels, pos + 1)
    return pixels.reshape(height, width, channels).copy()


def check_reference(name: str) -> None:
    """Raise :class:`MissingDependency` (naming what to install) if a reference
    is not available; ``ValueError`` for an unknown name."""
    if name == "opencv":
        import importlib.util

        if importlib.util.find_spec("cv2") is None:
            raise MissingDependency(INSTALL_HINTS["opencv"])
    elif name == "pillow":
        import importlib.util

        if importlib.util.find_spec("PIL") is None:  # pragma: no cover
            raise MissingDependency(INSTALL_HINTS["pillow"])
    elif name == "libjpeg":
        if not shutil.which("cjpeg") or not shutil.which("djpeg"):
            raise MissingDependency(INSTALL_HINTS["libjpeg"])
    else:
        raise ValueError(f"unknown reference {name!r} (choose from {', '.join(REFERENCES)})")


def make_reference(name: str, settings: JPEGSettings) -> Codec:
    """The reference codec called ``name`` (``opencv``, ``pillow`` or ``libjpeg``)."""
    check_reference(name)
    return {"opencv": OpenCVCodec, "pillow": PillowCodec, "libjpeg": LibjpegCodec}[name](
        settings)


# --------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """(result, best wall milliseconds over ``repeat`` calls)."""
    best = math.inf
    result = None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best * 1000.0


class Comparison:
    """Encode, decode and measure images with jpegtorch and reference libraries.

    Args:
        references: reference names (see :data:`REFERENCES`); the first one is
            the baseline of the BD-rate.
        codecs: jpegtorch codecs to run, ``"jpeg"`` and/or ``"learned"``.
        qualities: JPEG qualities (1..100) for jpegtorch and the references.
        levels: learned-codec levels (default: all of the model's levels).
        settings: JPEG settings (subsampling, optimize, tables).
        model: learned-codec model file (default: the shipped weights).
        repeat: time each encode/decode as the best of this many runs.
        warn: called with a message for things the user should know (e.g. a
            reference that cannot take custom tables).

    Use as a context manager (or call :meth:`close`) to remove temporary files.

    Raises:
        MissingDependency: a reference or the learned model is not available.
        ValueError: bad arguments.
    """

    def __init__(self, references: Sequence[str] = ("pillow",), *,
                 codecs: Sequence[str] = ("jpeg",),
                 qualities: Sequence[int] = DEFAULT_QUALITIES,
                 levels: Sequence[int] | None = None,
                 settings: JPEGSettings | None = None,
                 model: str | os.PathLike[str] | None = None,
                 repeat: int = 1,
                 warn: Callable[[str], None] | None = None) -> None:
        self.settings = settings or JPEGSettings()
        self.repeat = max(1, int(repeat))
        self.qualities = tuple(dict.fromkeys(int(q) for q in qualities))
        if any(not 1 <= q <= 100 for q in self.qualities):
            raise ValueError("qualities must be in 1..100")
        unknown = [c for c in codecs if c not in CODECS]
        if unknown or not codecs:
            raise ValueError(f"codecs must be among {', '.join(CODECS)}")
        if len(set(references)) != len(references):
            raise ValueError("a reference is named twice")
        self.codecs: list[Codec] = []
        self.references: list[Codec] = []
        try:
            # the JPEG codec is always built: it also checks the references' files
            self.ours = JpegtorchCodec(self.settings)
            self.learned = LearnedCodec(model) if "learned" in codecs else None
            self.run_jpeg = "jpeg" in codecs
            if self.learned is not None:
                chosen = tuple(self.learned.levels if levels is None else levels)
                bad = [v for v in chosen if v not in self.learned.levels]
                if bad or not chosen:
                    raise ValueError(f"levels must be in 1..{len(self.learned.levels)} "
                                     f"(the model's levels)")
                self.levels = tuple(dict.fromkeys(int(v) for v in chosen))
            else:
                self.levels = ()
            for name in references:
                self.references.append(make_reference(name, self.settings))
            if self.settings.tables is not None and warn is not None:
                if any(r.name == "opencv" for r in self.references):
                    warn("opencv cannot take custom quantization tables: its files use the "
                         "standard tables (so it measures what --tables gains)")
            if self.references and not self.qualities:
                raise ValueError("no qualities")
        except BaseException:
            self.close()
            raise
        self._warmed = False

    # -- housekeeping ------------------------------------------------------------------

    def __enter__(self) -> Comparison:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove temporary files."""
        for codec in self.references:
            codec.close()

    @property
    def names(self) -> list[str]:
        """Codec names in record order: jpegtorch's, then the references'."""
        names = [OURS] if self.run_jpeg else []
        if self.learned is not None:
            names.append(LEARNED)
        return names + [r.name for r in self.references]

    @property
    def baseline(self) -> str | None:
        """The first reference (the BD-rate baseline), if any."""
        return self.references[0].name if self.references else None

    @property
    def steps_per_image(self) -> int:
        """Encode+decode runs per image (for progress bars)."""
        per_quality = int(self.run_jpeg) + len(self.references)
        return per_quality * len(self.qualities) + len(self.levels)

    def warm_up(self) -> None:
        """Run every codec once on a small image (JIT compilation, model loading),
        so that timings measure steady state."""
        if self._warmed:
            return
        rng = np.random.default_rng(0)
        tiny = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
        codecs: list[tuple[Codec, int]] = [(self.ours, 75)]
        codecs += [(r, 75) for r in self.references]
        if self.learned is not None:
            codecs.append((self.learned, self.levels[0]))
        for codec, quality in codecs:
            for image in (tiny, tiny[:, :, :1]):
                with contextlib.suppress(Exception):
                    codec.decode(codec.encode(codec.prepare(image), quality))
        self._warmed = True

    # -- the work ----------------------------------------------------------------------

    def compare_image(self, image: Any, name: str, *, save: str | os.PathLike[str] | None = None,
                      progress: Callable[[int], None] | None = None) -> list[Record]:
        """Measure every codec at every quality on one image.

        Args:
            image: uint8 tensor ``[C, H, W]`` or array ``[H, W(, C)]``, gray or RGB.
            name: the image's name in the records.
            save: a folder to keep this image's encoded files, decodes and
                side-by-side crops in; it is written under a temporary name
                beside it and renamed when everything succeeded (replacing an
                older one), so nothing is left behind on failure.
            progress: called with 1 after each encode+decode.

        Returns:
            Records ordered by quality, then codec (jpegtorch first).

        Raises:
            CodecFailure: a codec failed (the message names it).
        """
        self.warm_up()
        original = _as_hwc(image)
        stage = None
        if save is not None:
            target = Path(save)
            target.parent.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part",
                                          dir=target.parent))
        records: list[Record] = []
        try:
            if self.run_jpeg or self.references:
                prepared = {c.name: c.prepare(original)
                            for c in [self.ours, *self.references]}
            for quality in self.qualities:
                ours_data = ours_pixels = None
                if self.run_jpeg:
                    ours_data, ours_pixels, record = self._measure(
                        self.ours, prepared[OURS], original, name, quality, stage)
                    records.append(record)
                    if progress:
                        progress(1)
                for ref in self.references:
                    data, pixels, record = self._measure(
                        ref, prepared[ref.name], original, name, quality, stage)
                    self._check_against_ours(record, data, pixels, ours_data, ours_pixels)
                    records.append(record)
                    if progress:
                        progress(1)
            if self.learned is not None:
                prepared_learned = self.learned.prepare(original)
                for level in self.levels:
                    records.append(self._measure(self.learned, prepared_learned, original,
                                                 name, level, stage)[2])
                    if progress:
                        progress(1)
            if stage is not None:
                target = Path(save)  # type: ignore[arg-type]
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(stage, target)
                stage = None
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
        return records

    def _measure(self, codec: Codec, prepared: Any, original: np.ndarray, name: str,
                 quality: int, stage: Path | None) -> tuple[bytes, np.ndarray, Record]:
        try:
            data, encode_ms = _timed(lambda: codec.encode(prepared, quality), self.repeat)
            pixels, decode_ms = _timed(lambda: codec.decode(data), self.repeat)
        except CodecFailure:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise CodecFailure(f"{codec.name} at quality {quality}: "
                               f"{text[0] if text else type(exc).__name__}") from exc
        if pixels.shape != original.shape:
            raise CodecFailure(f"{codec.name} decoded a {pixels.shape} image from a "
                               f"{original.shape} one")
        height, width = original.shape[:2]
        values = image_metrics(original, pixels)
        record = Record(
            image=name, codec=codec.name, quality=quality, width=width, height=height,
            bytes=len(data), bpp=8.0 * len(data) / (width * height),
            psnr=values["psnr"], psnr_y=values["psnr_y"], ssim=values["ssim"],
            ms_ssim=values["ms_ssim"], encode_ms=encode_ms, decode_ms=decode_ms)
        if stage is not None:
            save_outputs(stage, original, codec.name, quality, codec.extension, data, pixels)
        return data, pixels, record

    def _check_against_ours(self, record: Record, data: bytes, pixels: np.ndarray,
                            ours_data: bytes | None, ours_pixels: np.ndarray | None) -> None:
        if ours_data is not None and ours_pixels is not None:
            record.bytes_identical = data == ours_data
            record.pixels_identical = bool(np.array_equal(pixels, ours_pixels))
            if not record.pixels_identical:
                record.psnr_vs_jpegtorch = psnr(pixels, ours_pixels)
            if record.bytes_identical:
                record.decoder_identical = record.pixels_identical
                return
        try:
            mine = self.ours.decode(data)
        except Exception:
            record.decoder_identical = False
            return
        record.decoder_identical = bool(np.array_equal(mine, pixels))


def _safe_stem(name: str) -> str:
    stem = "stdin" if name in ("-", "<stdin>") else Path(name).stem
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in stem) or "image"


def unique_names(names: Sequence[str]) -> list[str]:
    """``--save`` folder names for images: stems, made unique with ``-1``, ``-2`` ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        stem = _safe_stem(name)
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        out.append(f"{stem}-{count}" if count else stem)
    return out


# --------------------------------------------------------------------------------------
# --save: files, decodes, crops
# --------------------------------------------------------------------------------------

CROP = 128
ZOOM = 2
DIFF_GAIN = 4


def _busiest_tile(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size``-square tile (on a half-tile grid) with the
    most detail: there the artefacts show."""
    height, width = image.shape[:2]
    if height <= size and width <= size:
        return 0, 0
    gray = luma(image)[:, :, 0]
    step = max(8, size // 2)
    best, corner = -1.0, (0, 0)
    for top in range(0, max(1, height - size + 1), step):
        for left in range(0, max(1, width - size + 1), step):
            tile = gray[top : top + size, left : left + size]
            detail = float(np.abs(np.diff(tile, axis=0)).mean()
                           + np.abs(np.diff(tile, axis=1)).mean())
            if detail > best:
                best, corner = detail, (top, left)
    return corner


def side_by_side(original: np.ndarray, decoded: np.ndarray, *, size: int = CROP,
                 zoom: int = ZOOM, gain: int = DIFF_GAIN) -> np.ndarray:
    """``[original | decoded | difference]`` crops, uint8 ``[H, W, C]``.

    The crop is the most detailed ``size``-square tile, enlarged ``zoom`` times
    (nearest neighbour); the difference is ``128 + gain * (decoded - original)``
    per channel, so mid-grey means no error.
    """
    top, left = _busiest_tile(original, size)
    a = original[top : top + size, left : left + size].astype(np.int16)
    b = decoded[top : top + size, left : left + size].astype(np.int16)
    diff = np.clip(128 + gain * (b - a), 0, 255)
    panels = [np.repeat(np.repeat(p.astype(np.uint8), zoom, 0), zoom, 1) for p in (a, b, diff)]
    gap = np.full((panels[0].shape[0], 4, a.shape[2]), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def save_outputs(folder: Path, original: np.ndarray, codec: str, quality: int, extension: str,
                 data: bytes, decoded: np.ndarray) -> None:
    """Write ``CODEC_qNNN.jpg`` (or ``.jtc``; ``_lN`` for learned levels), the
    decoded ``CODEC_qNNN.png`` and ``CODEC_qNNN_crop.png`` into ``folder``."""
    from PIL import Image

    stem = f"{codec}_l{quality}" if codec == LEARNED else f"{codec}_q{quality:03d}"
    (folder / f"{stem}{extension}").write_bytes(data)

    def png(array: np.ndarray, path: Path) -> None:
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)

    png(decoded, folder / f"{stem}.png")
    png(side_by_side(original, decoded), folder / f"{stem}_crop.png")


# --------------------------------------------------------------------------------------
# summaries, BD-rate, reports
# --------------------------------------------------------------------------------------


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def bd_rates(records: Sequence[Record], codec: str, baseline: str,
             metric: str = "psnr") -> float | None:
    """Mean BD-rate (percent; negative = smaller files) of ``codec`` against
    ``baseline`` over the images where both curves have at least
    :data:`MIN_BD_POINTS` distinct points.

    Per image, :func:`jpegtorch.metrics.bd_rate` (Bjøntegaard: a cubic fit of
    log-rate against quality, averaged over the common quality range) of bpp
    against ``metric``: ``"psnr"`` (dB) or ``"ssim"`` (converted to dB with
    :func:`jpegtorch.metrics.db`, as is usual for SSIM BD-rates).
    """
    from jpegtorch import metrics

    def value_of(r: Record) -> float | None:
        value = getattr(r, metric)
        if value is None:
            return None
        if metric in ("ssim", "ms_ssim"):
            value = float(metrics.db(value)) if value < 1 else math.inf
        return value if math.isfinite(value) else None

    results = []
    for image in dict.fromkeys(r.image for r in records):
        curves = []
        for name in (baseline, codec):
            points = {(r.bpp, value_of(r)) for r in records
                      if r.image == image and r.codec == name and value_of(r) is not None}
            curves.append(sorted(points))
        if any(len({p[1] for p in c}) < MIN_BD_POINTS or len({p[0] for p in c}) < MIN_BD_POINTS
               for c in curves):
            continue
        try:
            value = metrics.bd_rate([p[0] for p in curves[0]], [p[1] for p in curves[0]],
                                    [p[0] for p in curves[1]], [p[1] for p in curves[1]])
        except ValueError:  # curves that do not overlap
            continue
        if math.isfinite(value):
            results.append(float(value))
    return sum(results) / len(results) if results else None


def summarize(records: Sequence[Record], baseline: str | None = None) -> list[dict[str, Any]]:
    """Per-codec means (in order of appearance), identity counts and BD-rates
    (PSNR and SSIM) against ``baseline``."""
    rows = []
    for codec in dict.fromkeys(r.codec for r in records):
        mine = [r for r in records if r.codec == codec]
        checked = [r for r in mine if r.bytes_identical is not None]
        row: dict[str, Any] = {
            "codec": codec,
            "records": len(mine),
            "images": len({r.image for r in mine}),
            "bytes": _mean(r.bytes for r in mine),
            "bpp": _mean(r.bpp for r in mine),
            "psnr": _mean(r.psnr for r in mine),
            "psnr_y": _mean(r.psnr_y for r in mine),
            "ssim": _mean(r.ssim for r in mine),
            "ms_ssim": _mean(r.ms_ssim for r in mine),
            "encode_ms": _mean(r.encode_ms for r in mine),
            "decode_ms": _mean(r.decode_ms for r in mine),
            "checked": len(checked),
            "bytes_identical": sum(bool(r.bytes_identical) for r in checked),
            "pixels_identical": sum(bool(r.pixels_identical) for r in checked),
            "decoder_identical": sum(bool(r.decoder_identical) for r in mine
                                     if r.decoder_identical is not None),
            "decoder_checked": sum(r.decoder_identical is not None for r in mine),
            "bd_rate": None,
            "bd_rate_ssim": None,
        }
        if baseline is not None and codec != baseline:
            row["bd_rate"] = bd_rates(records, codec, baseline, "psnr")
            row["bd_rate_ssim"] = bd_rates(records, codec, baseline, "ssim")
        rows.append(row)
    return rows


def _fmt(value: float | None, spec: str, *, inf: str = "inf") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return inf
    return format(value, spec)


def _vs_ours(r: Record) -> str:
    if r.bytes_identical is None:
        return ""
    if r.bytes_identical:
        return "same bytes"
    if r.pixels_identical:
        return "same pixels"
    return f"differs ({_fmt(r.psnr_vs_jpegtorch, '.2f')} dB)"


def _align(rows: list[list[str]], left: int) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_table(records: Sequence[Record], baseline: str | None = None) -> str:
    """The aligned text report: one row per record, then the per-codec means
    (with BD-rates against ``baseline`` when there are enough qualities)."""
    if not records:
        return "no results"
    compared = any(r.bytes_identical is not None for r in records)
    decoder_checked = any(r.decoder_identical is not None for r in records)
    header = ["image", "codec", "q", "bytes", "bpp", "PSNR", "PSNR-Y", "SSIM", "MS-SSIM",
              "enc ms", "dec ms"] + (["vs jpegtorch"] if compared else [])
    rows = [header]
    for r in records:
        row = [Path(r.image).name, r.codec, str(r.quality), str(r.bytes), f"{r.bpp:.3f}",
               _fmt(r.psnr, ".2f"), _fmt(r.psnr_y, ".2f"), _fmt(r.ssim, ".4f"),
               _fmt(r.ms_ssim, ".4f"), f"{r.encode_ms:.2f}", f"{r.decode_ms:.2f}"]
        if compared:
            row.append(_vs_ours(r))
        rows.append(row)
    lines = _align(rows, left=2)
    summary = summarize(records, baseline)
    images = len({r.image for r in records})
    lines += ["", f"Means per codec over {images} image{'s' if images != 1 else ''}:"]
    with_bd = baseline is not None and any(s["bd_rate"] is not None for s in summary)
    head = ["codec", "n", "bytes", "bpp", "PSNR", "PSNR-Y", "SSIM", "MS-SSIM", "enc ms",
            "dec ms"]
    if compared:
        head += ["same bytes", "same pixels"]
    if decoder_checked:
        head.append("our decoder")
    if with_bd:
        head += [f"BD-rate PSNR vs {baseline}", "BD-rate SSIM"]
    rows = [head]
    for s in summary:
        row = [s["codec"], str(s["records"]), _fmt(s["bytes"], ".0f"), _fmt(s["bpp"], ".3f"),
               _fmt(s["psnr"], ".2f"), _fmt(s["psnr_y"], ".2f"), _fmt(s["ssim"], ".4f"),
               _fmt(s["ms_ssim"], ".4f"), _fmt(s["encode_ms"], ".2f"),
               _fmt(s["decode_ms"], ".2f")]
        if compared:
            if s["checked"]:
                row += [f"{s['bytes_identical']}/{s['checked']}",
                        f"{s['pixels_identical']}/{s['checked']}"]
            else:
                row += ["", ""]
        if decoder_checked:
            row.append(f"{s['decoder_identical']}/{s['decoder_checked']}"
                       if s["decoder_checked"] else "")
        if with_bd:
            row += [_fmt(s["bd_rate"], "+.2f") + ("%" if s["bd_rate"] is not None else ""),
                    _fmt(s["bd_rate_ssim"], "+.2f")
                    + ("%" if s["bd_rate_ssim"] is not None else "")]
        rows.append(row)
    lines += _align(rows, left=1)
    return "\n".join(lines)


def to_json(records: Sequence[Record]) -> str:
    """One JSON array, a record per (image, codec, quality); non-finite numbers
    (the PSNR of an identical decode) are ``null``."""
    return json.dumps([r.to_dict() for r in records], indent=2, allow_nan=False)


def to_csv(records: Sequence[Record]) -> str:
    """CSV with the JSON keys as columns (empty cells for ``null``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = r.to_dict()
        writer.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def format_report(records: Sequence[Record], fmt: str = "table",
                  baseline: str | None = None) -> str:
    """The report in ``table``, ``json`` or ``csv`` format."""
    if fmt == "json":
        return to_json(records)
    if fmt == "csv":
        return to_csv(records)
    if fmt == "table":
        return format_table(records, baseline)
    raise ValueError(f"unknown format {fmt!r}")


# --------------------------------------------------------------------------------------
# rate-distortion plot
# --------------------------------------------------------------------------------------

PLOT_FORMATS = ("png", "svg")


def check_plotting() -> None:
    """Raise :class:`MissingDependency` when matplotlib is not installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependency(INSTALL_HINTS["matplotlib"])


def rd_curves(records: Sequence[Record]) -> dict[str, list[tuple[float, float, float]]]:
    """Per codec, the mean (bpp, PSNR, SSIM) over images at each quality, by bpp."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for codec in dict.fromkeys(r.codec for r in records):
        points = []
        for quality in sorted({r.quality for r in records if r.codec == codec}):
            group = [r for r in records if r.codec == codec and r.quality == quality]
            bpp, value, sim = (_mean(r.bpp for r in group), _mean(r.psnr for r in group),
                               _mean(r.ssim for r in group))
            if bpp is not None and value is not None:
                points.append((bpp, value, math.nan if sim is None else sim))
        curves[codec] = sorted(points)
    return curves


def plot_rd(records: Sequence[Record], fmt: str = "png", *, title: str | None = None) -> bytes:
    """A rate-distortion chart (PSNR and SSIM against bpp, one curve per codec,
    means over the images at each quality) as PNG or SVG bytes.

    Raises:
        MissingDependency: matplotlib is not installed.
    """
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(PLOT_FORMATS)}")
    check_plotting()
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    curves = rd_curves(records)
    images = len({r.image for r in records})
    figure = Figure(figsize=(10, 4.2), dpi=110, layout="constrained")
    axes = figure.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "x", "s", "^", "v", "D"]
    for index, (codec, points) in enumerate(curves.items()):
        if not points:
            continue
        bpp = [p[0] for p in points]
        style = {"linestyle": styles[index % len(styles)], "marker": markers[index % len(markers)],
                 "markersize": 5 if index else 6, "linewidth": 1.6, "label": codec,
                 "markerfacecolor": "none" if index else None}
        axes[0].plot(bpp, [p[1] for p in points], **style)
        axes[1].plot(bpp, [p[2] for p in points], **style)
    for ax, label in zip(axes, ("PSNR (dB, RGB)", "SSIM"), strict=True):
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
    figure.suptitle(title or f"Rate-distortion, mean over {images} image"
                    f"{'s' if images != 1 else ''}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=_plot_metadata(fmt))
    return buffer.getvalue()


def _plot_metadata(fmt: str) -> dict[str, Any]:
    # no creation dates: the same records give the same file
    return {"Software": None} if fmt == "png" else {"Date": None}


# --------------------------------------------------------------------------------------
# qualities
# --------------------------------------------------------------------------------------


def parse_qualities(text: str, low: int = 1, high: int = 100) -> list[int]:
    """``"10,50,90"``, ``"5:95:5"`` (start:stop:step, stop included) or a mix,
    as a sorted list without repeats; raises ``ValueError`` with a message."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                pieces = [int(p) for p in part.split(":")]
                if len(pieces) not in (2, 3):
                    raise ValueError
                start, stop = pieces[0], pieces[1]
                step = pieces[2] if len(pieces) == 3 else 1
                if step <= 0 or stop < start:
                    raise ValueError
                values.extend(range(start, stop + 1, step))
            else:
                values.append(int(part))
        except ValueError:
            raise ValueError(f"{part!r}: give a list (10,50,90) or a range "
                             "(start:stop:step, e.g. 5:95:5)") from None
    if not values:
        raise ValueError("no values given")
    bad = [v for v in values if not low <= v <= high]
    if bad:
        raise ValueError(f"{bad[0]} is outside {low}..{high}")
    return sorted(set(values))
