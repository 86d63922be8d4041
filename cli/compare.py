"""``jtorch compare``: jpegtorch against the JPEG libraries people already use.

A thin layer over :mod:`jpegtorch.compare`; torch, the codecs and the
references are imported inside the command, so that ``jtorch --help`` stays
instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import (
    STDIO,
    CliError,
    describe_exception,
    display_name,
    error_line,
    handle_errors,
    quiet_debug_options,
    read_input,
    warn,
    write_output,
)

# Repeated from jpegtorch.compare so that --help imports nothing heavy.
REFERENCES = ("opencv", "pillow", "libjpeg", "mozjpeg")
DEFAULT_QUALITIES = "10,30,50,70,90"
IMAGE_SUFFIXES = {".png", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".webp", ".jpg",
                  ".jpeg", ".gif"}
# Pillow's default decompression-bomb limit, as in ``jtorch encode``.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


def _references(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
                ) -> list[str]:
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in REFERENCES:
                raise click.BadParameter(f"{name!r} is not one of {', '.join(REFERENCES)}")
            if name not in names:
                names.append(name)
    return names or ["pillow"]


def _qualities(text: str, param: str, low: int, high: int) -> list[int]:
    from jpegtorch.compare import parse_qualities

    try:
        return parse_qualities(text, low, high)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param) from None


def expand_inputs(inputs: tuple[str, ...]) -> list[str]:
    """Inputs with each folder replaced by the images in it (sorted, not recursive)."""
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if item != STDIO and path.is_dir():
            images = sorted(str(p) for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            out.extend(images or [item])  # an empty folder fails as an input
        else:
            out.append(item)
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-r", "--ref", "refs", multiple=True, callback=_references, metavar="NAME",
              help="Reference: opencv (cv2.imencode/imdecode), pillow, libjpeg "
                   "(cjpeg/djpeg), or mozjpeg (its cjpeg, with its defaults). Repeat or "
                   "comma-separate for several; the first is the BD-rate baseline.  "
                   "[default: pillow]")
@click.option("-q", "--quality", "quality_text", default=DEFAULT_QUALITIES, show_default=True,
              metavar="LIST",
              help="JPEG qualities: a list (10,50,90) or a range start:stop:step (5:95:5, "
                   "stop included).")
@click.option("--subsampling", type=click.Choice(["4:4:4", "4:2:2", "4:2:0"]),
              default="4:2:0", show_default=True, help="Chroma subsampling (all codecs).")
@click.option("--optimize", is_flag=True, help="Optimal Huffman tables (all codecs).")
@click.option("--progressive", is_flag=True,
              help="Progressive files (libjpeg's default progression) from jpegtorch, pillow, "
                   "opencv and libjpeg; mozjpeg is progressive anyway.")
@click.option("--trellis", is_flag=True,
              help="jpegtorch with trellis quantization (jtorch encode --trellis); the "
                   "references keep their own coding.")
@click.option("--tune", type=click.Choice(["psnr", "ssim"]), default=None,
              help="jpegtorch tuned per image for PSNR or SSIM (jtorch encode --tune); "
                   "compare with '--ref mozjpeg --mozjpeg-args -tune-psnr'.")
@click.option("--mozjpeg", "mozjpeg_path", metavar="PATH",
              help="mozjpeg's cjpeg (or its folder) for --ref mozjpeg.  [default: a mozjpeg "
                   "cjpeg on the PATH]")
@click.option("--mozjpeg-args", metavar="ARGS", default="",
              help="Extra cjpeg switches for mozjpeg, e.g. '-tune-psnr' or '-baseline'.")
@click.option("--tables", metavar="FILE|PRESET",
              help="Base quantization tables (a cjpeg -qtables file or a preset), scaled by "
                   "quality. pillow and libjpeg use them too; opencv cannot and keeps the "
                   "standard tables, so '--ref opencv' measures what the tables gain.")
@click.option("--codec", "codecs", multiple=True, type=click.Choice(["jpeg", "learned"]),
              default=("jpeg",), show_default=True,
              help="jpegtorch codec(s) to compare: the JPEG codec and/or the learned codec "
                   "(records 'jpegtorch-learned', whose quality is the level).")
@click.option("--levels", "level_text", metavar="LIST",
              help="Learned-codec levels, as --quality.  [default: all of the model's]")
@click.option("--model", metavar="FILE",
              help="Learned-codec weights.  [default: the shipped model]")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv"]),
              default="table", show_default=True,
              help="Report format: an aligned table with per-codec means (and BD-rates with "
                   "4+ qualities), or a JSON array / CSV rows, one per (image, codec, "
                   "quality).")
@click.option("-o", "--output", metavar="FILE", default=STDIO,
              help="Write the report to FILE.  [default: '-', stdout]")
@click.option("--plot", metavar="FILE",
              help="Write a rate-distortion chart (PSNR and SSIM against bpp): .png or .svg; "
                   "'-' writes PNG to stdout (then give -o FILE). Needs matplotlib.")
@click.option("--save", metavar="DIR",
              help="Keep, per image, the encoded files, the decoded images and side-by-side "
                   "crops with an amplified difference, in DIR/IMAGE/.")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Time each encode and decode as the best of N runs.")
@click.option("--threads", type=click.IntRange(1), default=None, metavar="N",
              help="torch threads, as 'jtorch --threads N compare'.  [default: 1]")
@click.option("--max-pixels", type=click.IntRange(0), default=DEFAULT_MAX_PIXELS,
              show_default=True, metavar="N", help="Refuse larger images (0 = no limit).")
@quiet_debug_options
@handle_errors
def compare(inputs: tuple[str, ...], refs: list[str], quality_text: str, subsampling: str,
            optimize: bool, progressive: bool, trellis: bool, tune: str | None,
            mozjpeg_path: str | None, mozjpeg_args: str,
            tables: str | None, codecs: tuple[str, ...],
            level_text: str | None, model: str | None, fmt: str, output: str,
            plot: str | None, save: str | None, repeat: int, threads: int | None,
            max_pixels: int, quiet: bool, debug: bool) -> None:
    """Compare jpegtorch with OpenCV, Pillow, libjpeg and mozjpeg on images.

    For each image, quality and codec: file size (bytes, bpp), PSNR (RGB),
    PSNR-Y, SSIM, MS-SSIM (images over 160 pixels a side), encode and decode
    milliseconds, and whether each reference's file is byte-identical to
    jpegtorch's and its decoded pixels identical (else the PSNR between the
    two decodes). INPUT may be image files, folders of images, or '-'
    (stdin). The report goes to stdout; progress and messages to stderr.

    \b
    Examples:
      jtorch compare samples/ --ref opencv
      jtorch compare photo.png --ref opencv,pillow,libjpeg -q 5:95:5 --plot rd.png
      jtorch compare *.png -q 10,50,90 --format json | jq '.[] | select(.codec=="opencv")'
      jtorch compare photo.png --tables tuned.txt --ref opencv --save out/cmp
      jtorch compare photos/ --ref mozjpeg --mozjpeg ~/mozjpeg/cjpeg -q 30:90:10
      jtorch compare photos/ --ref mozjpeg --mozjpeg-args -tune-psnr --tune psnr
    """
    if inputs.count(STDIO) > 1:
        raise click.UsageError("stdin ('-') can be read only once")
    qualities = _qualities(quality_text, "--quality", 1, 100)
    levels = _qualities(level_text, "--levels", 1, 255) if level_text else None
    if level_text and "learned" not in codecs:
        raise click.UsageError("--levels applies to --codec learned")
    plot_format = None
    if plot is not None:
        plot_format = "png" if plot == STDIO else Path(plot).suffix.lower().lstrip(".")
        if plot_format not in ("png", "svg"):
            raise click.BadParameter("give a .png or .svg file name", param_hint="--plot")
        if plot == STDIO and output == STDIO:
            raise click.UsageError("--plot - and the report cannot both go to stdout: "
                                   "give -o FILE for the report")
    if save is not None and Path(save).exists() and not Path(save).is_dir():
        raise click.BadParameter(f"{save} is not a directory", param_hint="--save")
    base_tables = None
    if tables is not None:
        from jpegtorch.formats.qtables import resolve_tables

        from jpegtorch.errors import JPEGError

        try:
            base_tables = resolve_tables(tables)
        except JPEGError as exc:
            raise click.BadParameter(str(exc), param_hint="--tables") from None

    from jpegtorch import compare as lib

    if plot is not None:
        try:
            lib.check_plotting()
        except lib.MissingDependency as exc:
            raise CliError(str(exc)) from None

    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    import shlex

    try:
        extra = tuple(shlex.split(mozjpeg_args))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mozjpeg-args") from None
    if (mozjpeg_path or extra) and "mozjpeg" not in refs:
        raise click.UsageError("--mozjpeg and --mozjpeg-args apply to --ref mozjpeg")
    if (trellis or tune) and "jpeg" not in codecs:
        raise click.UsageError("--trellis and --tune apply to --codec jpeg")
    settings = lib.JPEGSettings(subsampling=subsampling, optimize=optimize, tables=base_tables,
                                progressive=progressive, trellis=trellis, tune=tune,
                                mozjpeg=mozjpeg_path,
                                mozjpeg_args=extra)
    try:
        comparison = lib.Comparison(refs, codecs=codecs, qualities=qualities, levels=levels,
                                    settings=settings, model=model, repeat=repeat,
                                    warn=lambda message: warn(message, quiet=quiet))
    except lib.MissingDependency as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    items = expand_inputs(inputs)
    folders = lib.unique_names(items)
    records: list[Any] = []
    failures = 0
    with comparison:
        bar = _progress_bar(len(items) * comparison.steps_per_image, quiet=quiet)
        try:
            for index, src in enumerate(items):
                name = display_name(src)
                try:
                    image = _load(src, name, max_pixels=max_pixels, quiet=quiet)
                    target = None if save is None else Path(save) / folders[index]
                    records += comparison.compare_image(
                        image, name, save=target,
                        progress=None if bar is None else bar.update)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    failures += 1
                    if debug:
                        import traceback

                        traceback.print_exc()
                    if bar is not None:
                        bar.clear()
                    error_line(name, str(exc) if isinstance(exc, lib.CodecFailure)
                               else describe_exception(exc))
        finally:
            if bar is not None:
                bar.close()
        baseline = comparison.baseline

    if records or fmt != "table":  # an empty JSON array / CSV header keeps pipes parseable
        report = lib.format_report(records, fmt, baseline)
        write_output(output, (report + "\n").encode(), inputs=items)
    if plot is not None and records:
        data = lib.plot_rd(records, plot_format or "png")
        write_output(plot, data, inputs=items)
    if failures:
        sys.exit(1)


def _load(src: str, name: str, *, max_pixels: int, quiet: bool) -> Any:
    """An input image as uint8 ``[C, H, W]`` (the same reading as ``jtorch encode``)."""
    if src != STDIO and Path(src).is_dir():
        raise CliError("no images in this folder")
    from .encode import load_image

    return load_image(read_input(src), name=name, max_pixels=max_pixels, grayscale=False,
                      quiet=quiet)


def _progress_bar(total: int, *, quiet: bool) -> Any:
    """A tqdm bar on stderr (terminals only, not with --quiet), or None."""
    if quiet or total <= 1 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="compare", unit="run", file=sys.stderr, leave=False)
