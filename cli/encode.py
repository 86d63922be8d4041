"""``jtorch encode``: images -> baseline JPEG files, byte-identical to libjpeg-turbo.

The codec is imported inside the command, so that ``jtorch --help`` stays
instant; the JPEG path runs on numpy and the compiled kernels and never
imports torch (start-up time and memory), only ``--codec learned``,
``--trellis`` and ``--tune`` do. Inputs, outputs, ``--jobs`` and reporting are
the batch machinery's (:mod:`._batch`); this module only says what one file's
work is.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from jpegtorch.limits import DEFAULT_MAX_PIXELS

from ._batch import (
    IMAGE_EXTENSIONS,
    Item,
    Outcome,
    Task,
    batch_options,
    collect_inputs,
    plan_outputs,
    run_items,
)
from ._common import (
    STDIO,
    CliError,
    complete_tables,
    handle_errors,
    metadata_options,
    option_names,
    quiet_debug_options,
    read_input,
    warn,
)
from ._files import OutputFiles
from ._images import (
    image_array,
    image_rows,
    open_image,
    read_image,
    read_image_and_metadata,
    rgb_to_luma,
)

__all__ = ["DEFAULT_MAX_PIXELS", "encode", "load_image"]

JPEG_MAGIC = b"\xff\xd8"


def load_image(data: bytes, *, name: str, max_pixels: int, grayscale: bool,
               quiet: bool) -> Any:
    """Decode image bytes with Pillow into a uint8 tensor ``[C, H, W]`` (C = 1 or 3).

    Gray stays gray, alpha is dropped (one warning), palette and other colour
    modes become RGB, deeper samples are scaled to 8 bits as cjpeg does
    (``(v * 255 + maxval // 2) // maxval``). With ``grayscale``, RGB is reduced
    to libjpeg's luma (its ``-grayscale`` conversion). The torch face of
    :func:`._images.read_image`.
    """
    import torch

    array = read_image(data, name=name, max_pixels=max_pixels, grayscale=grayscale,
                       warn=lambda message: warn(message, quiet=quiet))
    return torch.from_numpy(array)


@dataclass
class EncodeTask(Task):
    """One image -> one baseline JPEG file (picklable: sent to ``--jobs`` workers)."""

    quality: int
    subsampling: str
    grayscale: bool
    optimize: bool
    restart: int
    tables: Any  # base tables: numpy [2, 64] int64 (luma, chroma) or None
    max_pixels: int
    trellis: bool = False
    tune: str | None = None
    strip: bool = False
    auto_orient: bool = False
    progressive: bool | None = False  # None: the encoder's choice (sequential; --tune picks)
    scans: Any = None  # a scan script (tuple of formats.scans.Scan) or None
    restart_rows: int = 0
    force_baseline: bool = True
    label: str = "encoded"

    def layout_options(self) -> dict[str, Any]:
        """The writer's file-layout keywords (progression, restarts, tables' precision)."""
        return {"progressive": bool(self.progressive), "scans": self.scans,
                "restart_rows": self.restart_rows, "force_baseline": self.force_baseline}

    def prepare(self) -> None:
        import jpegtorch.formats.jfif_writer  # noqa: F401  (numba kernels; no torch)

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        source, head, size = open_source(item.source)
        outcome.bytes_in = size
        if self.trellis or self.tune is not None or is_deep(head):
            self._run_whole(item, files, outcome, source)
            return
        from jpegtorch.formats.jfif_writer import encode_array, encode_rows
        from jpegtorch.formats.metadata import Metadata, from_pillow, read_jpeg_metadata

        warn = outcome.warnings.append
        if head.startswith(JPEG_MAGIC) and isinstance(source, str):
            source = read_input(source)  # (compressed: small; its segments are the metadata)
        with open_image(source, max_pixels=self.max_pixels) as im:
            outcome.width, outcome.height = im.size
            meta = Metadata()
            if not self.strip or self.auto_orient:
                meta = (read_jpeg_metadata(source) if head.startswith(JPEG_MAGIC)
                        and isinstance(source, bytes) else from_pillow(im))
            if self.auto_orient and meta.orientation not in (None, 1):
                # the whole image is needed to turn it
                array = image_array(im, name=item.name, warn=warn)
                if self.grayscale and array.shape[0] == 3:
                    array = rgb_to_luma(array)
                array, meta = carry_metadata(array, meta, name=item.name, strip=self.strip,
                                             auto_orient=True, warn=warn)
                outcome.height, outcome.width = array.shape[1:]
                jpeg = encode_array(array, self.quality, layout="CHW",
                                    subsampling=self.subsampling, optimize=self.optimize,
                                    restart_interval=self.restart, tables=self.tables,
                                    metadata=meta, **self.layout_options())
            else:
                image, read_rows, channels = image_rows(im, name=item.name, warn=warn)
                meta = fit_metadata(meta, name=item.name, strip=self.strip,
                                    gray=channels == 1 or self.grayscale, warn=warn)
                # the encoder reads the decoded image a band at a time: no copy of it
                jpeg = encode_rows(read_rows, (image.size[1], image.size[0]), channels,
                                   self.quality, subsampling=self.subsampling,
                                   optimize=self.optimize, restart_interval=self.restart,
                                   tables=self.tables, grayscale=self.grayscale,
                                   metadata=meta, **self.layout_options())
                image.close()
        assert item.output is not None
        files.write(item.output, jpeg)
        outcome.bytes_out = len(jpeg)

    def _run_whole(self, item: Item, files: OutputFiles, outcome: Outcome,
                   source: bytes | str) -> None:
        """Trellis/tune (torch), and 16-bit PNG / deep PNM (cjpeg's scaling): the
        whole image in memory."""
        data = source if isinstance(source, bytes) else read_input(source)
        array, meta = read_image_and_metadata(
            data, name=item.name, max_pixels=self.max_pixels, grayscale=self.grayscale,
            warn=outcome.warnings.append, metadata=not self.strip or self.auto_orient)
        array, meta = carry_metadata(array, meta, name=item.name, strip=self.strip,
                                     auto_orient=self.auto_orient,
                                     warn=outcome.warnings.append)
        outcome.height, outcome.width = array.shape[1:]
        if self.trellis or self.tune is not None:
            import torch
            from jpegtorch.formats.jfif_writer import encode_jpeg

            tables = (None if self.tables is None
                      else torch.from_numpy(self.tables).reshape(2, 8, 8))
            jpeg = encode_jpeg(torch.from_numpy(array), self.quality,
                               subsampling=self.subsampling, optimize=self.optimize,
                               restart_interval=self.restart, tables=tables,
                               trellis=self.trellis, tune=self.tune, metadata=meta,
                               progressive=self.progressive, scans=self.scans)
        else:
            from jpegtorch.formats.jfif_writer import encode_array

            jpeg = encode_array(array, self.quality, layout="CHW",
                                subsampling=self.subsampling, optimize=self.optimize,
                                restart_interval=self.restart, tables=self.tables,
                                metadata=meta, **self.layout_options())
        assert item.output is not None
        files.write(item.output, jpeg)
        outcome.bytes_out = len(jpeg)


def open_source(path: str) -> tuple[bytes | str, bytes, int]:
    """``(source, head, size)``: what Pillow opens (the path of a file, or the
    bytes of stdin), the file's first bytes (to tell its kind) and its size."""
    if path == STDIO:
        data = read_input(path)
        return data, data[:4096], len(data)
    p = Path(path)
    if p.is_dir():
        raise CliError("is a directory")
    try:
        with p.open("rb") as f:
            head = f.read(4096)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise CliError("no such file") from None
    return path, head, size


def is_deep(head: bytes) -> bool:
    """A 16-bit PNG or a PNM with maxval != 255 (read and scaled as cjpeg does)."""
    from jpegtorch.formats import png16, pnm

    return png16.is_deep_png(head) or pnm.is_deep_pnm(head)


def fit_metadata(meta: Any, *, name: str, strip: bool, gray: bool, warn: Any) -> Any:
    """The metadata to write into a JPEG: None (``strip`` or none), or ``meta``
    less what a JPEG cannot hold (a warning names it), e.g. a colour ICC
    profile in a gray JPEG."""
    from jpegtorch.formats.metadata import icc_summary

    if strip or not meta:
        return None
    meta, dropped = meta.fit_jpeg()
    if meta.icc_profile and gray:
        space = icc_summary(meta.icc_profile).get("color_space")
        if space and space != "GRAY":
            dropped.append(f"{space} ICC profile (a gray JPEG cannot use it)")
            from dataclasses import replace

            meta = replace(meta, icc_profile=None)
    if dropped:
        warn(f"{name}: metadata dropped: {', '.join(dropped)}")
    return meta or None


def carry_metadata(array: Any, meta: Any, *, name: str, strip: bool, auto_orient: bool,
                   warn: Any) -> tuple[Any, Any]:
    """Pixels ``[C, H, W]`` and the metadata to write into a JPEG: turned upright
    (``auto_orient``: pixels rotated/flipped, orientation set to 1), dropped
    (``strip``), or kept, less what a JPEG cannot hold (:func:`fit_metadata`)."""
    from jpegtorch.formats.metadata import orient

    if auto_orient and meta.orientation not in (None, 1):
        array = orient(array, meta.orientation)
        meta = meta.with_orientation(1)
    return array, fit_metadata(meta, name=name, strip=strip, gray=array.shape[0] == 1,
                               warn=warn)


@dataclass
class LearnedEncodeTask(Task):
    """One image -> one .jtc file of the learned codec."""

    level: int
    grayscale: bool
    max_pixels: int
    auto_orient: bool = False
    label: str = "encoded"
    uses_numba = False

    def prepare(self) -> None:
        import jpegtorch.learned  # noqa: F401

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        import torch

        from jpegtorch.learned import encode_image

        data = read_input(item.source)
        outcome.bytes_in = len(data)
        array, meta = read_image_and_metadata(
            data, name=item.name, max_pixels=self.max_pixels, grayscale=self.grayscale,
            warn=outcome.warnings.append, metadata=self.auto_orient)
        if self.auto_orient:  # (the .jtc container holds no metadata)
            from jpegtorch.formats.metadata import orient

            array = orient(array, meta.orientation)
        outcome.height, outcome.width = array.shape[1:]
        blob = encode_image(torch.from_numpy(array), level=self.level)
        assert item.output is not None
        files.write(item.output, blob)
        outcome.bytes_out = len(blob)


@dataclass
class RecompressTask(Task):
    """One JPEG file -> a lossless .jtc container (``--codec recompress``; no torch).

    Files that cannot be modelled exactly are stored whole (a warning, no
    saving); anything that is not a JPEG fails.
    """

    max_pixels: int
    label: str = "recompressed"

    def prepare(self) -> None:
        import jpegtorch.recompress  # noqa: F401

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        import warnings

        from jpegtorch.recompress import RecompressWarning, recompress_jpeg

        data = read_input(item.source)
        outcome.bytes_in = len(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecompressWarning)
            with option_names():
                packed = recompress_jpeg(data, max_pixels=self.max_pixels or None)
        outcome.warnings += [f"{item.name}: {w.message}" for w in caught]
        assert item.output is not None
        files.write(item.output, packed)
        outcome.bytes_out = len(packed)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="INPUT...")
@click.option("-o", "--output", metavar="PATH",
              help="Output file (one input; '-' = stdout) or folder (several inputs, "
                   "folders). Default: beside each input, with .jpg.")
@click.option("-q", "--quality", type=click.IntRange(1, 100), default=None,
              help="JPEG quality 1..100 (libjpeg scale; 50 uses --tables as given), default "
                   "75; with --codec learned the level 1..6 (1 = smallest file), default 4.")
@click.option("--codec", type=click.Choice(["jpeg", "learned", "recompress"]), default="jpeg",
              show_default=True,
              help="jpeg: baseline JFIF (.jpg); learned: the learned codec's .jtc container; "
                   "recompress: JPEG inputs losslessly into a smaller .jtc (jtorch decode "
                   "-o x.jpg gives the original file back, byte for byte).")
@click.option("--subsampling", type=click.Choice(["4:4:4", "4:2:2", "4:2:0", "4:4:0", "4:1:1"]),
              default="4:2:0", show_default=True,
              help="Chroma subsampling (4:4:0 = cjpeg -sample 1x2, 4:1:1 = -sample 4x1).")
@click.option("--grayscale", is_flag=True, help="Write a grayscale JPEG (libjpeg's luma).")
@click.option("--optimize", is_flag=True, help="Optimal Huffman tables (smaller files).")
@click.option("--restart", type=click.IntRange(0, 65535), default=0, metavar="N",
              help="Restart marker every N MCUs (0 = none; cjpeg -restart NB).")
@click.option("--restart-rows", type=click.IntRange(0, 65535), default=0, metavar="N",
              help="Restart marker every N MCU rows (cjpeg -restart N, Pillow "
                   "restart_marker_rows).")
@click.option("--force-baseline/--no-force-baseline", default=True, show_default=True,
              help="Clamp quality-scaled tables to 8 bits (Pillow, cjpeg -baseline); "
                   "--no-force-baseline keeps entries up to 32767 at low quality (16-bit "
                   "tables, as plain cjpeg).")
@click.option("--progressive/--sequential", default=None,
              help="Progressive JPEG: libjpeg's default progression with optimal Huffman "
                   "tables per scan (cjpeg -progressive, Pillow progressive=True). Default: "
                   "sequential, except with --tune, which picks the smallest of sequential, "
                   "the default progression and spectral bands searched for the image "
                   "(--progressive: one of the progressive two).")
@click.option("--scans", "scans_file", metavar="FILE",
              help="Scan script in cjpeg's -scans format ('0,1,2: 0-0, 0, 1;' ...); as in "
                   "cjpeg it makes the file progressive unless its first scan is 0-63.")
@click.option("--tables", metavar="FILE|PRESET", shell_complete=complete_tables,
              help="Base quantization tables: a cjpeg -qtables file or a preset: annex-k "
                   "(the standard tables), tuned-psnr, tuned-ssim (trained by jtorch; "
                   "smaller files at equal PSNR/SSIM), or jpegtorch/presets/NAME.txt; "
                   "scaled by -q as libjpeg does (-q 50 = as given).")
@click.option("--trellis", is_flag=True,
              help="Trellis quantization: each block's values chosen for the least RGB error "
                   "per bit (smaller files at the same PSNR; implies --optimize).")
@click.option("--tune", type=click.Choice(["psnr", "ssim"]), default=None,
              help="Per-image tuning for PSNR or SSIM: tuned tables, chroma fitted to the "
                   "decoder, trellis; -q sets the size/quality trade-off (higher = larger, "
                   "better). Implies --trellis.")
@click.option("--max-pixels", type=click.IntRange(0), default=DEFAULT_MAX_PIXELS,
              show_default=True, help="Refuse larger images (0 = no limit).")
@metadata_options
@batch_options()
@quiet_debug_options
@handle_errors
def encode(inputs: tuple[str, ...], output: str | None, quality: int | None, codec: str,
           subsampling: str, grayscale: bool, optimize: bool, restart: int,
           restart_rows: int, force_baseline: bool, progressive: bool | None,
           scans_file: str | None, tables: str | None, trellis: bool, tune: str | None,
           max_pixels: int,
           strip: bool, auto_orient: bool, force: bool, no_clobber: bool,
           recursive: bool, files_from: str | None, null: bool, jobs: int,
           json_records: bool, quiet: bool, debug: bool) -> None:
    """Encode images (PNG, PPM/PGM, TIFF, BMP, WebP, JPEG, ...) to JPEG.

    The files are byte-identical to libjpeg-turbo's (Pillow, cjpeg -baseline,
    cjpeg -progressive, cjpeg -scans) with the same settings (--trellis and
    --tune choose the quantized values themselves: standard files, smaller at
    the same quality). Gray inputs give
    gray JPEGs; alpha is dropped. Metadata is kept, like jpegtran -copy all:
    the EXIF (orientation as it is), ICC profile, XMP, comments and density
    of JPEG, PNG, TIFF and WebP inputs (--auto-orient turns the pixels
    upright and sets the orientation to 1; --strip drops it all).
    INPUT may be files, folders (their images; -r for sub-folders) or '-'
    (stdin). An existing file is never replaced without -f/--force, and never
    an input.

    \b
    Examples:
      jtorch encode photo.png -q 90                  # writes photo.jpg
      jtorch encode IMG_1234.jpg -o small.jpg -q 60 --auto-orient
      jtorch encode photos/ -o jpegs/ -j 0           # a folder, all cores
      jtorch encode -r photos/ -o jpegs/ --optimize  # the tree, mirrored
      jtorch encode photo.png --progressive -o photo-progressive.jpg
      jtorch encode photo.png --tune psnr -q 75 -o photo-tuned.jpg
      find . -name '*.png' -print0 | jtorch encode --files-from - -0 -o out/
      cat photo.ppm | jtorch encode - -o - > photo.jpg
      jtorch encode photo.png --codec learned -q 2 -o photo.jtc
      jtorch encode photo.jpg --codec recompress -o photo.jtc
    """
    if json_records and output == "-":
        raise click.UsageError("--json prints records on stdout: give -o FILE or a folder")
    if restart and restart_rows:
        raise click.UsageError("give --restart (MCUs) or --restart-rows, not both")
    layout = {"--progressive/--sequential": progressive is not None,
              "--scans": scans_file is not None,
              "--restart-rows": bool(restart_rows), "--no-force-baseline": not force_baseline}
    if codec == "recompress":
        options = {"-q/--quality": quality is not None, "--grayscale": grayscale,
                   "--optimize": optimize, "--restart": bool(restart),
                   "--tables": tables is not None, "--trellis": trellis, "--tune": bool(tune),
                   "--subsampling": subsampling != "4:2:0", "--strip": strip,
                   "--auto-orient": auto_orient, **layout}
        used = [name for name, on in options.items() if on]
        if used:
            raise click.UsageError(f"{', '.join(used)} do not apply to --codec recompress "
                                   "(it keeps the JPEG file exactly)")
        from jpegtorch.formats.container import EXTENSION

        task: Task = RecompressTask(max_pixels=max_pixels)
        suffix = EXTENSION
    elif codec == "learned":
        jpeg_only = [name for name, used in (("--optimize", optimize), ("--restart", restart),
                                             ("--tables", tables is not None),
                                             ("--trellis", trellis),
                                             ("--tune", tune is not None),
                                             *layout.items()) if used]
        if jpeg_only:
            verb = "applies" if len(jpeg_only) == 1 else "apply"
            raise click.UsageError(f"{', '.join(jpeg_only)} {verb} to --codec jpeg only")
        from jpegtorch.formats.container import EXTENSION

        from jpegtorch.learned import DEFAULT_LEVEL, LEVELS

        level = DEFAULT_LEVEL if quality is None else quality
        if level not in LEVELS:
            raise click.BadParameter(
                f"the learned codec has levels {min(LEVELS)}..{max(LEVELS)}",
                param_hint="--quality")
        task = LearnedEncodeTask(level=level, grayscale=grayscale, max_pixels=max_pixels,
                                 auto_orient=auto_orient)
        suffix = EXTENSION
    else:
        from jpegtorch.formats.jfif_writer import base_tables as read_tables

        from jpegtorch.errors import JPEGError

        if (trellis or tune) and (restart_rows or not force_baseline):
            raise click.UsageError("--restart-rows and --no-force-baseline do not combine with "
                                   "--trellis or --tune (use --restart)")
        try:
            base_tables = read_tables(tables) if tables is not None else None
        except JPEGError as exc:
            raise click.BadParameter(str(exc), param_hint="--tables") from None
        scans = None
        if scans_file is not None:
            from jpegtorch.formats.scans import read_scan_script

            try:
                scans = read_scan_script(scans_file)
            except JPEGError as exc:
                raise click.BadParameter(str(exc), param_hint="--scans") from None
        task = EncodeTask(quality=75 if quality is None else quality, subsampling=subsampling,
                          grayscale=grayscale, optimize=optimize, restart=restart,
                          tables=base_tables, max_pixels=max_pixels, trellis=trellis,
                          tune=tune, strip=strip, auto_orient=auto_orient,
                          progressive=progressive, scans=scans, restart_rows=restart_rows,
                          force_baseline=force_baseline)
        suffix = ".jpg"

    found = collect_inputs(inputs, files_from=files_from, null=null, recursive=recursive,
                           extensions=IMAGE_EXTENSIONS, output=output)
    files = OutputFiles(force=force, inputs=[s.path for s in found.sources])
    items = plan_outputs(found.sources, output, suffix, files=files, recursive=recursive,
                         quiet=quiet)
    failures = run_items(items, task, jobs=jobs, files=files, quiet=quiet, debug=debug,
                         json_records=json_records, problems=found.problems,
                         summary=found.from_batch or len(items) > 1)
    if failures:
        sys.exit(1)

