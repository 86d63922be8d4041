"""The comparison driver: :class:`Comparison` runs every codec on an image.

It encodes, decodes and measures each (image, codec, quality), checks each
reference's file and decode against jpegtorch's, and keeps ``--save`` outputs.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .codecs import Codec, JpegtorchCodec, LearnedCodec, make_reference
from .records import (
    CODECS,
    DEFAULT_QUALITIES,
    LEARNED,
    OURS,
    CodecFailure,
    JPEGSettings,
    Record,
    _as_hwc,
    image_metrics,
    psnr,
)
from .visual import save_outputs


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
