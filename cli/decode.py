"""``jtorch decode``: JPEG (or .jtc) files -> PNG or any format Pillow writes.

The pixels are exactly libjpeg-turbo's (Pillow's). torch and the codec are
imported inside the command, so that ``jtorch --help`` stays instant.
"""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._common import (
    STDIO,
    CliError,
    handle_errors,
    plan_outputs,
    quiet_debug_options,
    read_input,
    run_batch,
    warn,
    write_output,
)

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
    """Decode file bytes by their magic number: uint8 ``[C, H, W]`` tensor."""
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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", metavar="PATH",
              help="Output file (one input; '-' = stdout) or directory (several inputs). "
                   "Default: beside each input, with .png.")
@click.option("-f", "--format", "fmt", metavar="FMT",
              help="Output format (png, bmp, tiff, ppm, webp, ...). Default: from the output "
                   "extension, else PNG.")
@click.option("--lenient", is_flag=True,
              help="Decode corrupt or truncated files as libjpeg does (missing data becomes "
                   "grey), with a warning, instead of failing.")
@click.option("--model", metavar="FILE",
              help="Learned-codec weights for .jtc files (default: the shipped model); "
                   "ignored for JPEG files.")
@click.option("--no-clobber", is_flag=True, help="Refuse to replace existing outputs.")
@click.option("--max-pixels", type=click.IntRange(0), default=DEFAULT_MAX_PIXELS,
              show_default=True, help="Refuse larger images before decoding (0 = no limit).")
@quiet_debug_options
@handle_errors
def decode(inputs: tuple[str, ...], output: str | None, fmt: str | None, lenient: bool,
           model: str | None, no_clobber: bool, max_pixels: int, quiet: bool,
           debug: bool) -> None:
    """Decode JPEG (and .jtc) files to PNG (or any format Pillow writes).

    The pixels are exactly libjpeg-turbo's (Pillow's, default settings).
    Baseline, extended and progressive JPEGs (Huffman or arithmetic coded),
    gray or colour, any sampling. Files are recognised by their content, not
    their extension: .jtc files of the learned codec are decoded too.
    A corrupt file fails (exit status 1, no output) unless --lenient.
    A .jtc of a recompressed JPEG (jtorch encode --codec recompress) gives
    the original JPEG file back, byte for byte, when the output is a JPEG
    (-o photo.jpg, or --format jpg), and its pixels otherwise.

    \b
    Examples:
      jtorch decode photo.jpg -o photo.png
      jtorch decode *.jpg -o out/ --format bmp
      cat photo.jpg | jtorch decode - -o - > photo.png
      jtorch decode photo.jtc -o photo.jpg
    """
    if inputs.count(STDIO) > 1:
        raise click.UsageError("stdin ('-') can be read only once")
    outputs = plan_outputs(list(inputs), output, "." + (fmt or "png").lower())
    formats = {}
    for out in dict.fromkeys(outputs):
        try:
            formats[out] = output_format(out, fmt)
        except CliError as exc:
            raise click.UsageError(f"-o {out}: {exc}") from None

    import warnings



    def process(index: int, src: str) -> None:
        name = "<stdin>" if src == STDIO else src
        data = read_input(src)
        if formats[outputs[index]] == "JPEG" and recompressed(data):
            from jpegtorch.recompress import restore_jpeg

            original = restore_jpeg(data, max_pixels=max_pixels or None)
            write_output(outputs[index], original, inputs=list(inputs), no_clobber=no_clobber)
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = decode_bytes(data, lenient=lenient, max_pixels=max_pixels or None,
                                 model=model)
        for item in caught:
            warn(f"{name}: {item.message}", quiet=quiet)
        array = image.permute(1, 2, 0).contiguous().numpy()
        if array.shape[2] == 1:
            array = array[:, :, 0]
        from PIL import Image

        buffer = io.BytesIO()
        try:
            Image.fromarray(array).save(buffer, formats[outputs[index]])
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(f"cannot write {formats[outputs[index]]}: {exc}") from None
        write_output(outputs[index], buffer.getvalue(), inputs=list(inputs),
                     no_clobber=no_clobber)

    failures = run_batch(list(inputs), process, quiet=quiet, debug=debug, desc="decode")
    if failures:
        sys.exit(1)
