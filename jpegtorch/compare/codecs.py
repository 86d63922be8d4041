"""Codec adapters of a comparison: jpegtorch's codecs and the reference libraries.

Each adapter turns an ``[H, W, C]`` uint8 image into its input (``prepare``,
untimed), encodes it (``encode``) and decodes the file (``decode``, uint8
``[H, W, C]``). References: ``opencv`` (``cv2.imencode`` / ``cv2.imdecode``),
``pillow`` (``Image.save`` / ``Image.open``), ``libjpeg`` (the ``cjpeg
-baseline`` / ``djpeg`` programs of libjpeg-turbo) and ``mozjpeg`` (mozjpeg's
``cjpeg`` with its defaults; decoded by the ``djpeg`` beside it, else by
Pillow). A missing one raises
:class:`~jpegtorch.compare.records.MissingDependency` naming what to install.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .records import (
    INSTALL_HINTS,
    LEARNED,
    OURS,
    REFERENCES,
    CodecFailure,
    JPEGSettings,
    MissingDependency,
    _as_hwc,
    _chw,
)

_OPENCV_SAMPLING = {"4:4:4": 0x111111, "4:2:2": 0x211111, "4:2:0": 0x221111}
_PILLOW_SAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
_CJPEG_SAMPLING = {"4:4:4": "1x1", "4:2:2": "2x1", "4:2:0": "2x2"}


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
    """jpegtorch's JPEG writer (:func:`jpegtorch.encode_jpeg`, with the settings'
    ``trellis`` / ``tune``) and decoder."""

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
                                           optimize=s.optimize, tables=self._tables,
                                           trellis=s.trellis, tune=s.tune,
                                           # None: tune may still pick a progressive file
                                           progressive=True if s.progressive else None)

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
        options: dict[str, Any] = {"quality": quality, "optimize": s.optimize,
                                   "progressive": s.progressive}
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
                  cv2.IMWRITE_JPEG_OPTIMIZE, int(self.settings.optimize),
                  cv2.IMWRITE_JPEG_PROGRESSIVE, int(self.settings.progressive)]
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
        cjpeg, djpeg = shutil.which("cjpeg"), shutil.which("djpeg")
        if not cjpeg or not djpeg:
            raise MissingDependency(INSTALL_HINTS["libjpeg"])
        self._start(settings, cjpeg, djpeg)

    def _start(self, settings: JPEGSettings, cjpeg: str, djpeg: str | None) -> None:
        """Keep the programs and write custom tables to a cjpeg ``-qtables`` file."""
        self.cjpeg, self.djpeg = cjpeg, djpeg
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
        if s.progressive:
            args.append("-progressive")
        if self._tables_file:
            args += ["-qtables", self._tables_file, "-qslots", "0,1,1"]
        return self._run(args, prepared)

    def decode(self, data: bytes) -> np.ndarray:
        return parse_pnm(self._run([self.djpeg, "-pnm"], data))

    def _run(self, args: list[str], data: bytes) -> bytes:
        done = subprocess.run(args, input=data, capture_output=True, check=False)
        if done.returncode != 0 or not done.stdout:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            raise CodecFailure(f"{self.name}: {Path(args[0]).name} failed"
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


MOZJPEG_NAMES = ("cjpeg", "mozcjpeg", "mozjpeg")
"""Program names under which mozjpeg's cjpeg is looked for on the PATH."""


@functools.lru_cache(maxsize=32)
def cjpeg_version(program: str) -> str:
    """The first line ``program -version`` prints ("" when it cannot run):
    ``mozjpeg version 4.0.3 ...`` or ``libjpeg-turbo version 2.1.5 ...``."""
    try:
        done = subprocess.run([program, "-version"], capture_output=True, timeout=20,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (done.stderr + done.stdout).decode(errors="replace").strip().splitlines()
    return text[0].strip() if text else ""


def find_mozjpeg(path: str | os.PathLike[str] | None = None) -> tuple[str, str | None]:
    """mozjpeg's ``(cjpeg, djpeg or None)``.

    ``path``: its cjpeg program or the folder holding it; None looks on the
    PATH for a cjpeg, mozcjpeg or mozjpeg program that says it is mozjpeg.
    The djpeg beside that cjpeg (if any) decodes its files.

    Raises:
        MissingDependency: no mozjpeg there (the message says why and how to
            get it).
    """
    if path is not None:
        given = Path(path).expanduser()
        program = given / "cjpeg" if given.is_dir() else given
        if not program.is_file() or not os.access(program, os.X_OK):
            raise MissingDependency(f"--mozjpeg {path}: no cjpeg program there; "
                                    + INSTALL_HINTS["mozjpeg"])
        version = cjpeg_version(str(program))
        if "mozjpeg" not in version.lower():
            raise MissingDependency(f"--mozjpeg {path}: {program} is not mozjpeg's cjpeg "
                                    f"({version or 'it does not run'})")
        candidates = [str(program)]
    else:
        found = (shutil.which(name) for name in MOZJPEG_NAMES)
        candidates = [p for p in found if p and "mozjpeg" in cjpeg_version(p).lower()]
        if not candidates:
            raise MissingDependency(INSTALL_HINTS["mozjpeg"])
    cjpeg = candidates[0]
    djpeg = Path(cjpeg).with_name("djpeg")
    return cjpeg, (str(djpeg) if djpeg.is_file() and os.access(djpeg, os.X_OK) else None)


class MozjpegCodec(LibjpegCodec):
    """mozjpeg's ``cjpeg`` with its defaults (trellis quantization, progressive
    with searched scans, its quantization table), PNM through a pipe; decoded by
    the ``djpeg`` beside it, or by Pillow (both libjpeg-turbo's decoder)."""

    name = "mozjpeg"

    def __init__(self, settings: JPEGSettings) -> None:
        self._start(settings, *find_mozjpeg(settings.mozjpeg))

    def encode(self, prepared: Any, quality: int) -> bytes:
        s = self.settings
        args = [self.cjpeg, "-quality", str(quality)]
        if prepared.startswith(b"P6"):
            args += ["-sample", _CJPEG_SAMPLING[s.subsampling]]
        else:  # mozjpeg's cjpeg writes gray PGM input as YCbCr unless told
            args.append("-grayscale")
        if self._tables_file:
            args += ["-qtables", self._tables_file, "-qslots", "0,1,1"]
        args += list(s.mozjpeg_args)
        return self._run(args, prepared)

    def decode(self, data: bytes) -> np.ndarray:
        if self.djpeg is not None:
            return super().decode(data)
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return _as_hwc(np.asarray(im))


def check_reference(name: str, settings: JPEGSettings | None = None) -> None:
    """Raise :class:`MissingDependency` (naming what to install) if a reference
    is not available; ``ValueError`` for an unknown name. ``settings`` says
    where mozjpeg is (:attr:`JPEGSettings.mozjpeg`)."""
    if name == "opencv":
        import importlib.util

        if importlib.util.find_spec("cv2") is None:
            raise MissingDependency(INSTALL_HINTS["opencv"])
    elif name == "pillow":
        import importlib.util

        if importlib.util.find_spec("PIL") is None:  # pragma: no cover
            raise MissingDependency(INSTALL_HINTS["pillow"])
    elif name == "libjpeg":
        cjpeg = shutil.which("cjpeg")
        if not cjpeg or not shutil.which("djpeg"):
            raise MissingDependency(INSTALL_HINTS["libjpeg"])
        if "mozjpeg" in cjpeg_version(cjpeg).lower():
            raise MissingDependency(f"the libjpeg reference needs libjpeg-turbo's cjpeg, but "
                                    f"{cjpeg} is mozjpeg's (use --ref mozjpeg for it)")
    elif name == "mozjpeg":
        find_mozjpeg(None if settings is None else settings.mozjpeg)
    else:
        raise ValueError(f"unknown reference {name!r} (choose from {', '.join(REFERENCES)})")


def make_reference(name: str, settings: JPEGSettings) -> Codec:
    """The reference codec called ``name`` (``opencv``, ``pillow``, ``libjpeg``
    or ``mozjpeg``)."""
    check_reference(name, settings)
    return {"opencv": OpenCVCodec, "pillow": PillowCodec, "libjpeg": LibjpegCodec,
            "mozjpeg": MozjpegCodec}[name](settings)

