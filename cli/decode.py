"""``jtorch decode``: JPEG (or .jtc) files -> PNG or any format Pillow writes.

The pixels are exactly libjpeg-turbo's (Pillow's). torch and the codec are
imported inside the command, so that ``jtorch --help`` stays instant.
"""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import Any

import click

from ._batch import (
    JPEG_EXTENSIONS,
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
    handle_errors,
    metadata_options,
    quiet_debug_options,
    read_input,
)
from ._files import OutputFiles

# Pillow's default decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS),
# repeated here so that --help does not import Pillow.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

JPEG_MAGIC = b"\xff\xd8"
CONTAINER_MODULE = "jpegtorch.formats.container"
LEARNED_DECODER = ("jpegtorch.learned.codec", "decode_image")


def container_decoder(data: bytes) -> Callable[..., Any] | None:
    """The learned-codec (.jtc) decoder if ``data`` starts with the container's magic.

    The hook for the .jtc container: ``jpegtorch.formats.container`` exposes
    ``MAGIC`` (bytes); the pixel decoder is its ``decode`` (or
    ``decode_container``) if it has one, else
    ``jpegtorch.learned.codec.decode_image``. Either takes the file's bytes,
    the limits as keywords (``max_pixels=``) and ``model=`` for other
    weights, and returns uint8 ``[C, H, W]``.
    """
    try:
        module = importlib.import_module(CONTAINER_MODULE)
    except ImportError:
        return None
    magic = getattr(module, "MAGIC", None)
    if not magic or not data.startswith(magic):
        return None
    decoder = getattr(module, "decode", None) or getattr(module, "decode_container", None)
    if decoder is None:
        try:
            decoder = getattr(importlib.import_module(LEARNED_DECODER[0]), LEARNED_DECODER[1])
        except (ImportError, AttributeError):
            raise CliError("a .jtc file, but this build has no learned-codec decoder") from None
    return decoder


def recompressed(data: bytes) -> bool:
    """Whether ``data`` is a .jtc container of a losslessly recompressed JPEG."""
    try:
        module = importlib.import_module(CONTAINER_MODULE)
    except ImportError:
        return False
    codec_of = getattr(module, "container_codec", None)
    codec = getattr(module, "RECOMPRESS_CODEC", None)
    return codec_of is not None and codec is not None and codec_of(data) == codec


def decode_bytes(data: bytes, *, lenient: bool, max_pixels: int | None,
                 model: str | None = None) -> Any:
    """Decode file bytes by their magic number: uint8 ``[C, H, W]`` array or tensor."""
    from jpegtorch.errors import JPEGError

    try:
        return _decode_bytes(data, lenient=lenient, max_pixels=max_pixels, model=model)
    except JPEGError as exc:
        message = str(exc)
        if "raise max_pixels" in message:  # the library's words -> the option's name
            raise CliError(message.replace("raise max_pixels to allow it",
                                           "raise it with --max-pixels")) from None
        raise


def _decode_bytes(data: bytes, *, lenient: bool, max_pixels: int | None,
                  model: str | None) -> Any:
    if recompressed(data):
        from jpegtorch.recompress import restore_jpeg

        data = restore_jpeg(data, max_pixels=max_pixels)
    if data.startswith(JPEG_MAGIC):
        from jpegtorch.formats.jfif_reader import decode_jpeg

        return decode_jpeg(data, lenient=lenient, max_pixels=max_pixels)
    decoder = container_decoder(data)
    if decoder is not None:
        options: dict[str, Any] = {"max_pixels": max_pixels}
        if model:
            options["model"] = model
        return decoder(data, **options)
    if not data:
        raise CliError("empty file (not a JPEG file)")
    raise CliError("not a JPEG file (no SOI marker)")


def output_format(path: str, fmt: str | None) -> str:
    """The Pillow format to write ``path`` in (``--format``, else by extension, else PNG)."""
    from PIL import Image

    if fmt:
        name = fmt.upper()
        if name == "JPG":
            name = "JPEG"
        Image.init()
        if name not in Image.SAVE:
            raise click.BadParameter(f"Pillow cannot write {fmt!r}", param_hint="--format")
        return name
    if path == STDIO:
        return "PNG"
    ext = Path(path).suffix.lower()
    if not ext:
        return "PNG"
    Image.init()
    name = Image.registered_extensions().get(ext)
    if name is None or name not in Image.SAVE:
        raise CliError(f"cannot write {ext} files (use a Pillow format such as .png, .bmp, "
                       ".tif, .ppm or .webp, or --format)")
    return name


def to_hwc(image: Any) -> Any:
    """A decoded image (tensor or array, ``[C, H, W]``) as numpy ``[H, W(, 3)]`` uint8."""
    import numpy as np

    array = image.numpy() if hasattr(image, "numpy") and not isinstance(image, np.ndarray) \
        else np.asarray(image)
    array = array.transpose(1, 2, 0)
    return np.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array)


@dataclass
class DecodeTask(Task):
    """One JPEG (or .jtc) file -> one image file (picklable: sent to ``--jobs`` workers)."""

    fmt: str | None
    lenient: bool
    max_pixels: int
    model: str | None
    strip: bool = False
    auto_orient: bool = False
    label: str = "decoded"

    def prepare(self) -> None:
        import jpegtorch.formats.jfif_reader  # noqa: F401  (numba kernels, pipeline)

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        import warnings

        from PIL import Image

        assert item.output is not None
        fmt = output_format(item.output, self.fmt)
        data = read_input(item.source)
        outcome.bytes_in = len(data)
        if recompressed(data):
            from jpegtorch.recompress import restore_jpeg

            data = restore_jpeg(data, max_pixels=self.max_pixels or None)
            if fmt == "JPEG":  # the original file, byte for byte
                files.write(item.output, data)
                outcome.bytes_out = len(data)
                return
            # else: its pixels, and its metadata, as for any JPEG
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = decode_bytes(data, lenient=self.lenient,
                                 max_pixels=self.max_pixels or None, model=self.model)
        for warning in caught:
            outcome.warnings.append(f"{item.name}: {warning.message}")
        from jpegtorch.formats.metadata import (
            Metadata,
            orient,
            pillow_save_options,
            read_jpeg_metadata,
        )

        meta = read_jpeg_metadata(data) if data.startswith(JPEG_MAGIC) else Metadata()
        if self.auto_orient and meta.orientation not in (None, 1):
            image = orient(image.numpy() if hasattr(image, "numpy") else image,
                           meta.orientation)
            meta = meta.with_orientation(1)
        array = to_hwc(image)
        outcome.height, outcome.width = array.shape[:2]
        options: dict[str, Any] = {}
        if not self.strip and meta:
            options, dropped = pillow_save_options(meta, fmt)
            if dropped:
                outcome.warnings.append(f"{item.name}: {fmt} cannot hold the "
                                        f"{', '.join(dropped)}: dropped (--strip drops "
                                        "metadata without a word)")
        buffer = io.BytesIO()
        try:
            try:
                Image.fromarray(array).save(buffer, fmt, **options)
            except (OSError, ValueError, KeyError, TypeError, struct_error) as exc:
                if not options:
                    raise
                outcome.warnings.append(f"{item.name}: metadata not writable as {fmt} "
                                        f"({exc}): dropped")
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, fmt)
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(f"cannot write {fmt}: {exc}") from None
        files.write(item.output, buffer.getvalue())
        outcome.bytes_out = buffer.tell()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="INPUT...")
@click.option("-o", "--output", metavar="PATH",
              help="Output file (one input; '-' = stdout) or folder (several inputs, "
                   "folders). Default: beside each input, with .png.")
@click.option("-F", "--format", "fmt", metavar="FMT",
              help="Output format (png, bmp, tiff, ppm, webp, ...). Default: from the output "
                   "extension, else PNG.")
@click.option("--lenient", is_flag=True,
              help="Decode corrupt or truncated files as libjpeg does (missing data becomes "
                   "grey), with a warning, instead of failing.")
@click.option("--model", metavar="FILE",
              help="Learned-codec weights for .jtc files (default: the shipped model); "
                   "ignored for JPEG files.")
@click.option("--max-pixels", type=click.IntRange(0), default=DEFAULT_MAX_PIXELS,
              show_default=True, help="Refuse larger images before decoding (0 = no limit).")
@metadata_options
@batch_options()
@quiet_debug_options
@handle_errors
def decode(inputs: tuple[str, ...], output: str | None, fmt: str | None, lenient: bool,
           model: str | None, max_pixels: int, strip: bool, auto_orient: bool,
           force: bool, no_clobber: bool,
           recursive: bool, files_from: str | None, null: bool, jobs: int,
           json_records: bool, quiet: bool, debug: bool) -> None:
    """Decode JPEG (and .jtc) files to PNG (or any format Pillow writes).

    The pixels are exactly libjpeg-turbo's (Pillow's, default settings).
    Baseline, extended and progressive JPEGs (Huffman or arithmetic coded),
    gray or colour, any sampling. Files are recognised by their content, not
    their extension: .jtc files of the learned codec are decoded too.
    A corrupt file fails (exit status 1, no output) unless --lenient.
    The ICC profile, EXIF (orientation as it is), XMP, comments and density
    go into the output where its format has a place for them (PNG iCCP,
    eXIf, iTXt, pHYs; TIFF tags; WebP chunks); --auto-orient turns the
    pixels upright, --strip drops it all.
    A .jtc of a recompressed JPEG (jtorch encode --codec recompress) gives
    the original JPEG file back, byte for byte, when the output is a JPEG
    (-o photo.jpg, or --format jpg), and its pixels otherwise.
    INPUT may be files, folders (their .jpg/.jpeg/.jtc files; -r for
    sub-folders) or '-' (stdin). An existing file is never replaced without
    -f/--force.

    \b
    Examples:
      jtorch decode photo.jpg -o photo-decoded.png
      jtorch decode jpegs/ -o pngs/ -j 0
      jtorch decode *.jpg -o out/ --format bmp
      cat photo.jpg | jtorch decode - -o - > photo.png
      jtorch decode photo.jtc -o photo-restored.jpg
    """
    if json_records and output == STDIO:
        raise click.UsageError("--json prints records on stdout: give -o FILE or a folder")
    found = collect_inputs(inputs, files_from=files_from, null=null, recursive=recursive,
                           extensions=JPEG_EXTENSIONS, output=output)
    files = OutputFiles(force=force, inputs=[s.path for s in found.sources])
    suffix = "." + (fmt or "png").lower()
    items = plan_outputs(found.sources, output, suffix, files=files, recursive=recursive,
                         quiet=quiet)
    for out in dict.fromkeys(item.output for item in items):
        try:
            output_format(out or STDIO, fmt)
        except CliError as exc:
            raise click.UsageError(f"-o {out}: {exc}") from None
    task = DecodeTask(fmt=fmt, lenient=lenient, max_pixels=max_pixels, model=model,
                      strip=strip, auto_orient=auto_orient)
    failures = run_items(items, task, jobs=jobs, files=files, quiet=quiet, debug=debug,
                         json_records=json_records, problems=found.problems,
                         summary=found.from_batch or len(items) > 1)
    if failures:
        sys.exit(1)
