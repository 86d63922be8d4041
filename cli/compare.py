"""``jtorch compare``: jpegtorch against the JPEG libraries people already use.

A thin layer over :mod:`jpegtorch.compare`; torch, the codecs and the
references are imported inside the command, so that ``jtorch --help`` stays
instant.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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
    quiet_debug_options,
    read_input,
    warn,
)
from ._files import OutputFiles
from ._images import read_image

# Repeated from jpegtorch.compare so that --help imports nothing heavy.
REFERENCES = ("opencv", "pillow", "libjpeg", "mozjpeg")
DEFAULT_QUALITIES = "10,30,50,70,90"
IMAGE_SUFFIXES = {".png", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".webp", ".jpg",
                  ".jpeg", ".gif"}


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


@dataclass
class CompareTask(Task):
    """One image: every codec at every quality (picklable: sent to ``--jobs`` workers).

    ``prepare`` builds the :class:`jpegtorch.compare.Comparison` (references
    checked, warnings printed once); each worker process has its own.
    """

    refs: list[str]
    codecs: tuple[str, ...]
    qualities: list[int]
    levels: list[int] | None
    settings: Any
    model: str | None
    repeat: int
    threads: int | None
    max_pixels: int
    quiet: bool
    label: str = "compared"
    comparison: Any = field(default=None, repr=False)
    silent: bool = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["comparison"] = None  # each spawned worker builds its own, quietly
        state["silent"] = True
        return state

    def prepare(self) -> None:
        if self.comparison is not None:
            return
        import torch

        from jpegtorch import compare as lib

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self.comparison = lib.Comparison(
            self.refs, codecs=self.codecs, qualities=self.qualities, levels=self.levels,
            settings=self.settings, model=self.model, repeat=self.repeat,
            warn=lambda message: None if self.silent else warn(message, quiet=self.quiet))

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        from jpegtorch import compare as lib

        data = read_input(item.source)
        outcome.bytes_in = len(data)
        image = read_image(data, name=item.name, max_pixels=self.max_pixels,
                           warn=outcome.warnings.append)
        outcome.height, outcome.width = image.shape[1:]
        try:
            outcome.data = self.comparison.compare_image(
                image.transpose(1, 2, 0), item.name,
                save=None if item.output is None else Path(item.output))
        except lib.CodecFailure as exc:
            raise CliError(str(exc)) from None

    def close(self) -> None:
        if self.comparison is not None:
            self.comparison.close()
            self.comparison = None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="INPUT...")
@click.option("-r", "--ref", "refs", multiple=True, callback=_references, metavar="NAME",
              shell_complete=lambda ctx, param, incomplete: [
                  r for r in REFERENCES if r.startswith(incomplete)],
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
@click.option("--tables", metavar="FILE|PRESET", shell_complete=complete_tables,
              help="Base quantization tables (a cjpeg -qtables file or a preset: annex-k, "
                   "tuned-psnr, tuned-ssim), scaled by quality. pillow and libjpeg use them "
                   "too; opencv cannot and keeps the standard tables, so '--ref opencv' "
                   "measures what the tables gain.")
@click.option("--codec", "codecs", multiple=True, type=click.Choice(["jpeg", "learned"]),
              default=("jpeg",), show_default=True,
              help="jpegtorch codec(s) to compare: the JPEG codec and/or the learned codec "
                   "(records 'jpegtorch-learned', whose quality is the level).")
@click.option("--levels", "level_text", metavar="LIST",
              help="Learned-codec levels, as --quality.  [default: all of the model's]")
@click.option("--model", metavar="FILE",
              help="Learned-codec weights.  [default: the shipped model]")
@click.option("-F", "--format", "fmt", type=click.Choice(["table", "json", "csv"]),
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
@batch_options(json_records=False, recursive_short="-R")
@quiet_debug_options
@handle_errors
def compare(inputs: tuple[str, ...], refs: list[str], quality_text: str, subsampling: str,
            optimize: bool, progressive: bool, trellis: bool, tune: str | None,
            mozjpeg_path: str | None, mozjpeg_args: str,
            tables: str | None, codecs: tuple[str, ...],
            level_text: str | None, model: str | None, fmt: str, output: str,
            plot: str | None, save: str | None, repeat: int, threads: int | None,
            max_pixels: int, force: bool, no_clobber: bool, recursive: bool,
            files_from: str | None, null: bool, jobs: int, quiet: bool, debug: bool) -> None:
    """Compare jpegtorch with OpenCV, Pillow, libjpeg and mozjpeg on images.

    For each image, quality and codec: file size (bytes, bpp), PSNR (RGB),
    PSNR-Y, SSIM, MS-SSIM (images over 160 pixels a side), encode and decode
    milliseconds, and whether each reference's file is byte-identical to
    jpegtorch's and its decoded pixels identical (else the PSNR between the
    two decodes). INPUT may be image files, folders of images (-R for
    sub-folders), or '-' (stdin). The report goes to stdout; progress and
    messages to stderr. Existing report, plot and --save files are not
    replaced without -f/--force.

    \b
    Examples:
      jtorch compare samples/ --ref opencv
      jtorch compare photo.png --ref opencv,pillow,libjpeg -q 5:95:5 --plot rd.png
      jtorch compare photos/ -q 10,50,90 -F json -j 0 | jq '.[] | select(.codec=="opencv")'
      jtorch compare photo.png --tables tuned-psnr --ref opencv --save out/cmp
      jtorch compare photos/ --ref mozjpeg --mozjpeg ~/mozjpeg/cjpeg -q 30:90:10
      jtorch compare photos/ --ref mozjpeg --mozjpeg-args -tune-psnr --tune psnr
    """
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
        raise click.BadParameter(f"{save} is not a folder", param_hint="--save")
    base_tables = None
    if tables is not None:
        from jpegtorch.formats.qtables import resolve_tables

        from jpegtorch.errors import JPEGError

        try:
            base_tables = resolve_tables(tables)
        except JPEGError as exc:
            raise click.BadParameter(str(exc), param_hint="--tables") from None

    found = collect_inputs(inputs, files_from=files_from, null=null, recursive=recursive,
                           extensions=IMAGE_EXTENSIONS, output=save)
    files = OutputFiles(force=force, inputs=[s.path for s in found.sources])
    for path in (output, plot):  # checked now, written at the end
        if path is not None:
            files.check(path)

    from jpegtorch import compare as lib

    if plot is not None:
        try:
            lib.check_plotting()
        except lib.MissingDependency as exc:
            raise CliError(str(exc)) from None

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
    task = CompareTask(refs=refs, codecs=codecs, qualities=qualities, levels=levels,
                       settings=settings, model=model, repeat=repeat, threads=threads,
                       max_pixels=max_pixels, quiet=quiet)
    try:
        task.prepare()
    except lib.MissingDependency as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    baseline = task.comparison.baseline

    if save is None:
        items = [Item(i, s.path) for i, s in enumerate(found.sources)]
    else:
        items = plan_outputs(found.sources, save, "", files=files, recursive=recursive,
                             single_file_ok=False, quiet=quiet, folders=True)
    results: dict[int, Any] = {}

    failures = run_items(items, task, jobs=jobs, files=files, quiet=quiet, debug=debug,
                         problems=found.problems, results=results,
                         summary=found.from_batch or len(items) > 1)
    records = [record for index in sorted(results) for record in (results[index] or [])]

    if records or fmt != "table":  # an empty JSON array / CSV header keeps pipes parseable
        report = lib.format_report(records, fmt, baseline)
        files.write(output, (report + "\n").encode())
    if plot is not None and records:
        files.write(plot, lib.plot_rd(records, plot_format or "png"))
    if failures:
        sys.exit(1)
