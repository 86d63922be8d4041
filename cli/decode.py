"""``jtorch decode``: JPEG (or .jtc) files -> PNG or any format Pillow writes.

The pixels are exactly libjpeg-turbo's (Pillow's). JPEG files never import
torch (the reader and the compiled stage kernels work on numpy); .jtc files
need it (the learned codec).
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
    atomic_output,
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
# the reader's default max_memory (jpegtorch.formats.jfif_reader.DEFAULT_MAX_MEMORY)
DEFAULT_MAX_MEMORY = "1G"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class ByteSize(click.ParamType):
    """A byte count: ``123456``, ``512M``, ``1.5G`` (binary units, an optional B)."""

    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        try:
            number = float(text[: len(text) - len(unit)])
        except ValueError:
            self.fail(f"{value!r} is not a size such as 800M or 2G", param, ctx)
        if number < 0:
            self.fail(f"{value!r} is negative", param, ctx)
        return int(number * _UNITS[unit])

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
                 model: str | None = None, max_memory: int | None = None) -> Any:
    """Decode file bytes by their magic number: uint8 ``[H, W, C]`` numpy array.

    JPEG files take the torch-free path (:func:`decode_jpeg_array`); .jtc
    files of recompressed JPEGs are restored first; other .jtc files go to the
    learned codec (torch). ``max_pixels`` and ``max_memory`` (bytes; ``None``:
    the decoder's own default, 1 GiB) reach every decoder.
    """
    if recompressed(data):
        from jpegtorch.recompress import restore_jpeg

        data = restore_jpeg(data, max_pixels=max_pixels)
    if data.startswith(JPEG_MAGIC):
        from jpegtorch.formats.jfif_reader import decode_jpeg_array

        return decode_jpeg_array(data, lenient=lenient, max_pixels=max_pixels,
                                 max_memory=max_memory)
    decoder = container_decoder(data)
    if decoder is not None:
        options: dict[str, Any] = {"max_pixels": max_pixels}
        if max_memory is not None:
            options["max_memory"] = max_memory
        if model:
            options["model"] = model
        image = decoder(data, **options)
        return image.permute(1, 2, 0).contiguous().numpy()
    if not data:
        raise CliError("empty file (not a JPEG file)")
    raise CliError("not a JPEG file (no SOI marker)")


class _PNGSink:
    """Rows from :func:`decode_jpeg_rows` into the streaming PNG writer."""

    def __init__(self, handle: Any, level: int) -> None:
        self.handle = handle
        self.level = level
        self.writer: Any = None

    def begin(self, height: int, width: int, channels: int) -> None:
        from jpegtorch.formats.png_writer import PNGWriter

        self.writer = PNGWriter(self.handle, height, width, channels, self.level)

    def write(self, rows: Any) -> None:
        self.writer.rows(rows)


def stream_png(data: bytes, target: str, *, lenient: bool, max_pixels: int | None,
               max_memory: int | None, inputs: list[str], no_clobber: bool,
               level: int = 1) -> None:
    """Decode JPEG bytes straight into a PNG file (atomically; ``-`` = stdout)."""
    from jpegtorch.formats.jfif_reader import decode_jpeg_rows

    with atomic_output(target, inputs=inputs, no_clobber=no_clobber) as handle:
        # to stdout only once the decode succeeded (strict errors come late)
        out = io.BytesIO() if target == STDIO else handle
        sink = _PNGSink(out, level)
        decode_jpeg_rows(data, sink, lenient=lenient, max_pixels=max_pixels,
                         max_memory=max_memory)
        sink.writer.close()
        if out is not handle:
            handle.write(out.getvalue())


class _PillowSink:
    """Rows from :func:`decode_jpeg_rows` pasted into a Pillow image, band by band."""

    def __init__(self) -> None:
        self.image: Any = None
        self.y = 0

    def begin(self, height: int, width: int, channels: int) -> None:
        from PIL import Image

        self.mode = "L" if channels == 1 else "RGB"
        self.image = Image.new(self.mode, (width, height))

    def write(self, rows: Any) -> None:
        from PIL import Image

        n, width = rows.shape[:2]
        strip = Image.frombuffer(self.mode, (width, n), rows.tobytes(), "raw", self.mode, 0, 1)
        self.image.paste(strip, (0, self.y))
        self.y += n


def decode_to_pillow(data: bytes, *, lenient: bool, max_pixels: int | None,
                     max_memory: int | None) -> Any:
    """A JPEG decoded into a Pillow image without a whole-image array of our own."""
    from jpegtorch.formats.jfif_reader import decode_jpeg_rows

    sink = _PillowSink()
    decode_jpeg_rows(data, sink, lenient=lenient, max_pixels=max_pixels, max_memory=max_memory)
    return sink.image


def write_image(array: Any, target: str, fmt: str, *, inputs: list[str],
                no_clobber: bool, png_level: int = 1) -> None:
    """Write uint8 ``[H, W, C]`` pixels with Pillow (atomically; ``-`` = stdout)."""
    from PIL import Image

    if array.shape[2] == 1:
        array = array[:, :, 0]
    # Pillow copies the pixels once (its own image memory)
    image = Image.fromarray(array)
    del array
    save_image(image, target, fmt, inputs=inputs, no_clobber=no_clobber, png_level=png_level)


def save_image(image: Any, target: str, fmt: str, *, inputs: list[str], no_clobber: bool,
               png_level: int = 1) -> None:
    """Save a Pillow image straight into the atomic output file (``-`` = stdout)."""
    try:
        with atomic_output(target, inputs=inputs, no_clobber=no_clobber) as handle:
            # stdout may be a pipe: formats such as TIFF need to seek
            sink = io.BytesIO() if target == STDIO else handle
            try:
                image.save(sink, fmt, **({"compress_level": png_level} if fmt == "PNG" else {}))
            except (OSError, ValueError, KeyError) as exc:
                raise CliError(f"cannot write {fmt}: {exc}") from None
            if sink is not handle:
                handle.write(sink.getvalue())
    finally:
        image.close()


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
@click.option("--max-memory", type=ByteSize(), default=DEFAULT_MAX_MEMORY, show_default=True,
              help="Refuse JPEGs whose decoding would allocate more (coefficients of "
                   "progressive files + pixels), checked before allocating, like djpeg "
                   "-maxmemory; e.g. 500M, 4G (0 = no limit).")
@click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True,
              help="zlib level of PNG outputs: 1 is fast (OpenCV's default), 6 Pillow's, "
                   "9 the smallest files.")
@quiet_debug_options
@handle_errors
def decode(inputs: tuple[str, ...], output: str | None, fmt: str | None, lenient: bool,
           model: str | None, no_clobber: bool, max_pixels: int, max_memory: int,
           png_level: int, quiet: bool, debug: bool) -> None:
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
        target = outputs[index]
        if recompressed(data):
            from jpegtorch.recompress import restore_jpeg

            data = restore_jpeg(data, max_pixels=max_pixels or None)
            if formats[target] == "JPEG":  # the original file, byte for byte
                write_output(target, data, inputs=list(inputs), no_clobber=no_clobber)
                return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            array = None
            if formats[target] == "PNG" and data.startswith(JPEG_MAGIC):
                # JPEG -> PNG band by band: the whole image is never in memory
                stream_png(data, target, lenient=lenient, max_pixels=max_pixels or None,
                           max_memory=max_memory or None, inputs=list(inputs),
                           no_clobber=no_clobber, level=png_level)
            elif data.startswith(JPEG_MAGIC):
                # other formats: bands pasted into Pillow's own image (one copy in all)
                image = decode_to_pillow(data, lenient=lenient,
                                         max_pixels=max_pixels or None,
                                         max_memory=max_memory or None)
                save_image(image, target, formats[target], inputs=list(inputs),
                           no_clobber=no_clobber, png_level=png_level)
            else:
                array = decode_bytes(data, lenient=lenient, max_pixels=max_pixels or None,
                                     model=model, max_memory=max_memory or None)
        del data
        for item in caught:
            warn(f"{name}: {item.message}", quiet=quiet)
        if array is not None:
            write_image(array, target, formats[target], inputs=list(inputs),
                        no_clobber=no_clobber, png_level=png_level)

    failures = run_batch(list(inputs), process, quiet=quiet, debug=debug, desc="decode")
    if failures:
        sys.exit(1)
