"""``jtorch decode``: JPEG (or .jtc) files -> PNG or any format Pillow writes.

The pixels are exactly libjpeg-turbo's (Pillow's). JPEG files never import
torch (the reader and the compiled stage kernels work on numpy); .jtc files
of the learned codec need it. JPEG -> PNG goes band by band (the whole image
is never in memory), other formats through Pillow's own image.
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

from jpegtorch.limits import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS

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
    option_names,
    quiet_debug_options,
    read_input,
)
from ._files import OutputFiles

DEFAULT_MAX_MEMORY_TEXT = f"{DEFAULT_MAX_MEMORY >> 30}G"  # the reader's default, as --help shows it
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

    JPEG files take the torch-free path (``decode_jpeg_array``); .jtc files of
    recompressed JPEGs are restored first; other .jtc files go to the learned
    codec (torch). ``max_pixels`` and ``max_memory`` (bytes; ``None``: the
    decoder's own default, 1 GiB) reach every decoder.
    """
    with option_names():
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
    """Rows from ``decode_jpeg_rows`` into the streaming PNG writer."""

    def __init__(self, handle: Any, level: int, chunks: list[tuple[bytes, bytes]]) -> None:
        self.handle = handle
        self.level = level
        self.chunks = chunks
        self.writer: Any = None
        self.size = (0, 0)

    def begin(self, height: int, width: int, channels: int) -> None:
        from jpegtorch.formats.png_writer import PNGWriter

        self.size = (height, width)
        self.writer = PNGWriter(self.handle, height, width, channels, self.level,
                                chunks=self.chunks)

    def write(self, rows: Any) -> None:
        self.writer.rows(rows)


class _PillowSink:
    """Rows from ``decode_jpeg_rows`` pasted into a Pillow image, band by band."""

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
    with option_names():
        decode_jpeg_rows(data, sink, lenient=lenient, max_pixels=max_pixels,
                         max_memory=max_memory)
    return sink.image


def png_chunks(mode: str, options: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The ancillary chunks (type, data) Pillow writes for ``Image.save(..., "PNG",
    **options)`` before the image data (iCCP, iTXt, pHYs, eXIf): taken from a
    1x1 image of ``mode`` saved so, for the streaming writer to copy."""
    import struct

    from PIL import Image

    if not options:
        return []
    buffer = io.BytesIO()
    Image.new(mode, (1, 1)).save(buffer, "PNG", **options)
    data = buffer.getvalue()
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            break
        if kind != b"IHDR":
            chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


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


@dataclass
class DecodeTask(Task):
    """One JPEG (or .jtc) file -> one image file (picklable: sent to ``--jobs`` workers)."""

    fmt: str | None
    lenient: bool
    max_pixels: int
    model: str | None
    strip: bool = False
    auto_orient: bool = False
    max_memory: int = 0
    png_level: int = 1
    label: str = "decoded"

    def prepare(self) -> None:
        import jpegtorch.formats.jfif_reader

        import jpegtorch.kernels.decode  # noqa: F401  (numba kernels)

    def run(self, item: Item, files: OutputFiles, outcome: Outcome) -> None:
        import warnings

        from jpegtorch.formats.metadata import Metadata, read_jpeg_metadata

        assert item.output is not None
        fmt = output_format(item.output, self.fmt)
        data = read_input(item.source)
        outcome.bytes_in = len(data)
        if recompressed(data):
            from jpegtorch.recompress import restore_jpeg

            with option_names():
                data = restore_jpeg(data, max_pixels=self.max_pixels or None)
            if fmt == "JPEG":  # the original file, byte for byte
                files.write(item.output, data)
                outcome.bytes_out = len(data)
                return
            # else: its pixels, and its metadata, as for any JPEG
        jpeg = data.startswith(JPEG_MAGIC)
        meta = Metadata()
        if jpeg and (not self.strip or self.auto_orient):
            meta = read_jpeg_metadata(data)
        orientation = meta.orientation if self.auto_orient else None
        turn = orientation not in (None, 1)
        if turn:
            meta = meta.with_orientation(1)
        options: dict[str, Any] = {}
        if not self.strip and meta:
            from jpegtorch.formats.metadata import pillow_save_options

            options, dropped = pillow_save_options(meta, fmt)
            if dropped:
                outcome.warnings.append(f"{item.name}: {fmt} cannot hold the "
                                        f"{', '.join(dropped)}: dropped (--strip drops "
                                        "metadata without a word)")
        limits = {"lenient": self.lenient, "max_pixels": self.max_pixels or None,
                  "max_memory": self.max_memory or None}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if jpeg and not turn and fmt == "PNG":
                # JPEG -> PNG band by band: the whole image is never in memory
                self._stream_png(data, item, files, outcome, options, limits)
                image = None
            elif jpeg and not turn:
                # other formats: bands pasted into Pillow's own image (one copy in all)
                image = decode_to_pillow(data, **limits)
            else:
                array = decode_bytes(data, model=self.model, **limits)
                if turn:
                    from jpegtorch.formats.metadata import orient

                    array = orient(array.transpose(2, 0, 1), orientation).transpose(1, 2, 0)
                image = to_pillow(array)
                del array
        del data
        for warning in caught:
            outcome.warnings.append(f"{item.name}: {warning.message}")
        if image is not None:
            outcome.width, outcome.height = image.size
            self._save(image, fmt, item, files, outcome, options)

    def _stream_png(self, data: bytes, item: Item, files: OutputFiles, outcome: Outcome,
                    options: dict[str, Any], limits: dict[str, Any]) -> None:
        from jpegtorch.formats.jfif_reader import decode_jpeg_rows

        assert item.output is not None
        try:
            chunks = png_chunks("RGB", options)
        except (OSError, ValueError, KeyError, TypeError, struct_error) as exc:
            outcome.warnings.append(f"{item.name}: metadata not writable as PNG ({exc}): "
                                    "dropped")
            chunks = []
        with files.open(item.output) as handle:
            # to stdout only once the decode succeeded (strict errors come late)
            out = io.BytesIO() if item.output == STDIO else handle
            sink = _PNGSink(out, self.png_level, chunks)
            with option_names():
                decode_jpeg_rows(data, sink, **limits)
            sink.writer.close()
            outcome.height, outcome.width = sink.size
            outcome.bytes_out = out.tell()
            if out is not handle:
                handle.write(out.getvalue())

    def _save(self, image: Any, fmt: str, item: Item, files: OutputFiles, outcome: Outcome,
              options: dict[str, Any]) -> None:
        """Save a Pillow image into the atomic output file (``-`` = stdout; formats
        such as TIFF need to seek, so stdout gets a buffer)."""
        assert item.output is not None
        level = {"compress_level": self.png_level} if fmt == "PNG" else {}
        try:
            with files.open(item.output) as handle:
                sink = io.BytesIO() if item.output == STDIO else handle
                try:
                    try:
                        image.save(sink, fmt, **options, **level)
                    except (OSError, ValueError, KeyError, TypeError, struct_error) as exc:
                        if not options or (isinstance(exc, OSError) and exc.errno):
                            raise
                        outcome.warnings.append(f"{item.name}: metadata not writable as "
                                                f"{fmt} ({exc}): dropped")
                        sink.seek(0)
                        sink.truncate()
                        image.save(sink, fmt, **level)
                except (ValueError, KeyError, TypeError, struct_error) as exc:
                    raise CliError(f"cannot write {fmt}: {exc}") from None
                except OSError as exc:
                    if exc.errno:  # the file system's (full disk, ...): named by files.open
                        raise
                    raise CliError(f"cannot write {fmt}: {exc}") from None
                outcome.bytes_out = sink.tell()
                if sink is not handle:
                    handle.write(sink.getvalue())
        finally:
            image.close()


def to_pillow(array: Any) -> Any:
    """uint8 ``[H, W, C]`` (C = 1 or 3) as a Pillow image (Pillow copies the pixels)."""
    from PIL import Image

    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


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
@click.option("--max-memory", type=ByteSize(), default=DEFAULT_MAX_MEMORY_TEXT, show_default=True,
              help="Refuse JPEGs whose decoding would allocate more (coefficients of "
                   "progressive files + pixels), checked before allocating, like djpeg "
                   "-maxmemory; e.g. 500M, 4G (0 = no limit).")
@click.option("--png-level", type=click.IntRange(0, 9), default=1, show_default=True,
              help="zlib level of PNG outputs: 1 is fast (OpenCV's default), 6 Pillow's, "
                   "9 the smallest files.")
@metadata_options
@batch_options()
@quiet_debug_options
@handle_errors
def decode(inputs: tuple[str, ...], output: str | None, fmt: str | None, lenient: bool,
           model: str | None, max_pixels: int, max_memory: int, png_level: int,
           strip: bool, auto_orient: bool,
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
                      strip=strip, auto_orient=auto_orient, max_memory=max_memory,
                      png_level=png_level)
    failures = run_items(items, task, jobs=jobs, files=files, quiet=quiet, debug=debug,
                         json_records=json_records, problems=found.problems,
                         summary=found.from_batch or len(items) > 1)
    if failures:
        sys.exit(1)
