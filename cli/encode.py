"""``jtorch encode``: images -> JPEG files (baseline or progressive), byte-identical to
libjpeg-turbo.

The codec is imported inside the command, so that ``jtorch --help`` stays
instant; the JPEG path runs on numpy and the compiled kernels and never
imports torch (start-up time and memory), only ``--codec learned`` does.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._common import (
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

ALPHA_MODES = {"RGBA": "RGB", "RGBa": "RGB", "LA": "L", "La": "L", "PA": "RGB"}


def open_image(source: bytes | str, *, max_pixels: int) -> Any:
    """Open and decode an image with Pillow (a path is read as Pillow needs it,
    so the file's bytes are never held whole in memory)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except UnidentifiedImageError:
            raise CliError("not an image (or a format Pillow cannot read)") from None
        except Image.DecompressionBombError:
            raise CliError("image is too large") from None
        width, height = im.size
        if max_pixels and width * height > max_pixels:
            raise CliError(
                f"{width}x{height} = {width * height} pixels is above the limit of "
                f"{max_pixels} (raise it with --max-pixels)"
            )
        if width > 65535 or height > 65535:
            raise CliError(f"{width}x{height} is larger than JPEG's 65535x65535")
        try:
            im.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            first = str(exc).strip().splitlines()
            raise CliError(f"cannot decode image: {first[0] if first else type(exc).__name__}"
                           ) from None
    return im


def image_rows(im: Any, *, name: str, quiet: bool) -> tuple[Any, Callable[[int, int], Any], int]:
    """Read a decoded Pillow image a strip of rows at a time, as uint8 numpy.

    Returns ``(image, read_rows, channels)``: ``read_rows(y0, y1)`` gives rows
    ``y0 .. y1 - 1`` as ``[y1 - y0, W, channels]`` uint8 (channels 1 or 3) of
    ``image`` (``im`` or its conversion; keep it open while reading). Gray
    stays gray, alpha is dropped (one warning), palette and other colour modes
    become RGB, 16-bit samples are scaled to 8 bits as cjpeg does
    (``(v * 255 + 32767) // 65535``). Only strips are ever copied, so the
    decoded image is the only whole-image buffer.
    """
    import numpy as np

    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    channels = 1 if mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16") else 3

    def convert(a: Any) -> Any:
        return a

    if mode in ALPHA_MODES:
        warn(f"{name}: alpha channel dropped", quiet=quiet)
        if mode in ("RGBA", "LA"):
            def convert(a: Any) -> Any:
                return a[..., :channels]
        else:
            im = im.convert(ALPHA_MODES[mode])
            mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        def convert(a: Any) -> Any:
            wide = np.clip(a, 0, 65535).astype(np.uint32)
            return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    elif mode == "F":
        def convert(a: Any) -> Any:
            return np.clip(np.rint(a.astype(np.float64)), 0, 255).astype(np.uint8)
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "RGB", "RGBA", "LA"):
        im = im.convert("RGB")
    width = im.size[0]
    source = im

    def read_rows(y0: int, y1: int) -> Any:
        strip = convert(np.asarray(source.crop((0, y0, width, y1))))
        return strip.reshape(y1 - y0, width, channels)

    return im, read_rows, channels


def image_array(im: Any, *, name: str, quiet: bool) -> Any:
    """A decoded Pillow image as uint8 numpy: ``[H, W]`` (gray) or ``[H, W, 3]``
    (RGB), converted as :func:`image_rows` does, a strip at a time."""
    import numpy as np

    im, read_rows, channels = image_rows(im, name=name, quiet=quiet)
    width, height = im.size
    out = np.empty((height, width, channels), dtype=np.uint8)
    step = max(1, (1 << 20) // (4 * width))
    for y0 in range(0, height, step):
        y1 = min(height, y0 + step)
        out[y0:y1] = read_rows(y0, y1)
    return out[:, :, 0] if channels == 1 else out


def load_image(source: bytes | str, *, name: str, max_pixels: int, grayscale: bool,
               quiet: bool) -> Any:
    """Decode an image (bytes or a path) with Pillow into a uint8 tensor ``[C, H, W]``
    (C = 1 or 3), for the learned codec; see :func:`image_array`. With
    ``grayscale``, RGB is reduced to libjpeg's luma (its ``-grayscale``)."""
    import torch

    with open_image(source, max_pixels=max_pixels) as im:
        array = image_array(im, name=name, quiet=quiet)
    image = torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    if grayscale and image.shape[0] == 3:
        from jpegtorch.color import rgb_to_ycbcr

        luma = rgb_to_ycbcr(image[None].to(torch.float64), "hard")[0, :1]
        image = luma.round().clamp(0, 255).to(torch.uint8)
    return image.contiguous()


def _source(src: str) -> bytes | str:
    """What Pillow opens: the path of a file, or the bytes of stdin."""
    if src == "-":
        return read_input(src)
    path = Path(src)
    if path.is_dir():
        raise CliError("is a directory")
    if not path.exists():
        raise CliError("no such file")
    return src


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", metavar="PATH",
              help="Output file (one input; '-' = stdout) or directory (several inputs). "
                   "Default: beside each input, with .jpg.")
@click.option("-q", "--quality", type=click.IntRange(1, 100), default=None,
              help="JPEG quality 1..100 (libjpeg scale; 50 uses --tables as given), default "
                   "75; with --codec learned the level 1..6 (1 = smallest file), default 4.")
@click.option("--codec", type=click.Choice(["jpeg", "learned", "recompress"]), default="jpeg",
              show_default=True,
              help="jpeg: JFIF (.jpg), baseline or progressive; learned: the learned codec's "
                   ".jtc container; recompress: JPEG inputs losslessly into a smaller .jtc "
                   "(jtorch decode -o x.jpg gives the original file back, byte for byte).")
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
@click.option("--tables", metavar="FILE|PRESET",
              help="Base quantization tables: a cjpeg -qtables file or a preset name "
                   "(annex-k, or jpegtorch/presets/NAME.txt); scaled by -q as libjpeg "
                   "does (-q 50 = as given).")
@click.option("--trellis", is_flag=True,
              help="Trellis quantization: each block's values chosen for the least RGB error "
                   "per bit (smaller files at the same PSNR; implies --optimize).")
@click.option("--tune", type=click.Choice(["psnr", "ssim"]), default=None,
              help="Per-image tuning for PSNR or SSIM: tuned tables, chroma fitted to the "
                   "decoder, trellis; -q sets the size/quality trade-off (higher = larger, "
                   "better). Implies --trellis.")
@click.option("--no-clobber", is_flag=True, help="Refuse to replace existing outputs.")
@click.option("--max-pixels", type=click.IntRange(0), default=DEFAULT_MAX_PIXELS,
              show_default=True, help="Refuse larger images (0 = no limit).")
@quiet_debug_options
@handle_errors
def encode(inputs: tuple[str, ...], output: str | None, quality: int | None, codec: str,
           subsampling: str, grayscale: bool, optimize: bool, restart: int,
           restart_rows: int, force_baseline: bool, progressive: bool | None,
           scans_file: str | None, tables: str | None, trellis: bool, tune: str | None,
           no_clobber: bool, max_pixels: int, quiet: bool, debug: bool) -> None:
    """Encode images (PNG, PPM/PGM, TIFF, BMP, WebP, JPEG, ...) to JPEG.

    The files are byte-identical to libjpeg-turbo's (Pillow, cjpeg -baseline,
    cjpeg -progressive, cjpeg -scans) with the same settings (--trellis and
    --tune choose the quantized values themselves: standard files, smaller at
    the same quality). Gray inputs give
    gray JPEGs; alpha is dropped.

    \b
    Examples:
      jtorch encode photo.png -q 90 -o photo.jpg
      jtorch encode *.png -o out/ --optimize
      jtorch encode photo.png --progressive -o photo.jpg
      jtorch encode photo.png --tune psnr -q 75 -o photo.jpg
      cat photo.ppm | jtorch encode - -o - > photo.jpg
      jtorch encode photo.png --codec learned -q 2 -o photo.jtc
      jtorch encode photo.jpg --codec recompress -o photo.jtc
    """
    if inputs.count("-") > 1:
        raise click.UsageError("stdin ('-') can be read only once")
    if restart and restart_rows:
        raise click.UsageError("give --restart (MCUs) or --restart-rows, not both")
    if codec == "recompress":
        options = {"-q/--quality": quality is not None, "--grayscale": grayscale,
                   "--optimize": optimize, "--restart": bool(restart),
                   "--tables": tables is not None, "--trellis": trellis, "--tune": bool(tune),
                   "--subsampling": subsampling != "4:2:0",
                   "--progressive/--sequential": progressive is not None,
                   "--scans": scans_file is not None, "--restart-rows": bool(restart_rows),
                   "--no-force-baseline": not force_baseline}
        used = [name for name, on in options.items() if on]
        if used:
            raise click.UsageError(f"{', '.join(used)} do not apply to --codec recompress "
                                   "(it keeps the JPEG file exactly)")
        _encode_recompress(inputs, output, no_clobber, max_pixels, quiet, debug)
        return
    if codec == "learned":
        if (progressive is not None or scans_file is not None or restart_rows
                or not force_baseline):
            raise click.UsageError("--progressive/--sequential, --scans, --restart-rows and "
                                   "--no-force-baseline apply to --codec jpeg only")
        if trellis or tune:
            raise click.UsageError("--trellis and --tune apply to --codec jpeg only")
        _encode_learned(inputs, output, quality, grayscale, optimize, restart, tables,
                        no_clobber, max_pixels, quiet, debug)
        return
    if (trellis or tune) and (restart_rows or not force_baseline):
        raise click.UsageError("--restart-rows and --no-force-baseline do not combine with "
                               "--trellis or --tune (use --restart)")
    quality = 75 if quality is None else quality
    outputs = plan_outputs(list(inputs), output, ".jpg")

    from jpegtorch.formats.jfif_writer import base_tables, encode_rows

    from jpegtorch.errors import JPEGError

    try:
        tables_array = base_tables(tables) if tables is not None else None
    except JPEGError as exc:
        raise click.BadParameter(str(exc), param_hint="--tables") from None
    scans = None
    if scans_file is not None:
        from jpegtorch.formats.scans import read_scan_script

        try:
            scans = read_scan_script(scans_file)
        except JPEGError as exc:
            raise click.BadParameter(str(exc), param_hint="--scans") from None

    def process(index: int, src: str) -> None:
        name = "<stdin>" if src == "-" else src
        if trellis or tune:  # jpegtorch.optimize works on torch tensors
            from jpegtorch.formats.jfif_writer import encode_jpeg

            image = load_image(_source(src), name=name, max_pixels=max_pixels,
                               grayscale=grayscale, quiet=quiet)
            data = encode_jpeg(image, quality, subsampling=subsampling, optimize=optimize,
                               restart_interval=restart, tables=tables, trellis=trellis,
                               tune=tune, progressive=progressive, scans=scans,
                               restart_rows=restart_rows, force_baseline=force_baseline)
        else:
            with open_image(_source(src), max_pixels=max_pixels) as im:
                image, read_rows, channels = image_rows(im, name=name, quiet=quiet)
                # the encoder reads the decoded image a band at a time: no copy of it
                data = encode_rows(read_rows, (image.size[1], image.size[0]), channels,
                                   quality, subsampling=subsampling, optimize=optimize,
                                   restart_interval=restart, tables=tables_array,
                                   grayscale=grayscale, progressive=bool(progressive),
                                   scans=scans,
                                   restart_rows=restart_rows, force_baseline=force_baseline)
                image.close()
        write_output(outputs[index], data, inputs=list(inputs), no_clobber=no_clobber)

    from PIL import Image

    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own --max-pixels check replaces Pillow's
    try:
        failures = run_batch(list(inputs), process, quiet=quiet, debug=debug, desc="encode")
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    if failures:
        sys.exit(1)


def _encode_learned(inputs: tuple[str, ...], output: str | None, level: int | None,
                    grayscale: bool, optimize: bool, restart: int, tables: str | None,
                    no_clobber: bool, max_pixels: int, quiet: bool, debug: bool) -> None:
    """``jtorch encode --codec learned``: images -> .jtc files of the learned codec."""
    jpeg_only = [name for name, used in (("--optimize", optimize), ("--restart", restart),
                                         ("--tables", tables is not None)) if used]
    if jpeg_only:
        raise click.UsageError(f"{', '.join(jpeg_only)} apply to --codec jpeg only")
    from jpegtorch.formats.container import EXTENSION

    from jpegtorch.learned import DEFAULT_LEVEL, LEVELS

    level = DEFAULT_LEVEL if level is None else level
    if level not in LEVELS:
        raise click.BadParameter(f"the learned codec has levels {min(LEVELS)}..{max(LEVELS)}",
                                 param_hint="--quality")
    outputs = plan_outputs(list(inputs), output, EXTENSION)

    from jpegtorch.learned import encode_image

    def process(index: int, src: str) -> None:
        name = "<stdin>" if src == "-" else src
        image = load_image(_source(src), name=name, max_pixels=max_pixels,
                           grayscale=grayscale, quiet=quiet)
        write_output(outputs[index], encode_image(image, level=level), inputs=list(inputs),
                     no_clobber=no_clobber)

    if run_batch(list(inputs), process, quiet=quiet, debug=debug, desc="encode"):
        sys.exit(1)


def _encode_recompress(inputs: tuple[str, ...], output: str | None, no_clobber: bool,
                       max_pixels: int, quiet: bool, debug: bool) -> None:
    """``jtorch encode --codec recompress``: JPEG files -> lossless .jtc containers.

    Files that cannot be modelled exactly are stored whole (a warning, no
    saving); anything that is not a JPEG fails. No torch import.
    """
    import warnings

    from jpegtorch.formats.container import EXTENSION

    from jpegtorch.recompress import RecompressWarning, recompress_jpeg

    outputs = plan_outputs(list(inputs), output, EXTENSION)

    def process(index: int, src: str) -> None:
        name = "<stdin>" if src == "-" else src
        data = read_input(src)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecompressWarning)
            packed = recompress_jpeg(data, max_pixels=max_pixels or None)
        for item in caught:
            warn(f"{name}: {item.message}", quiet=quiet)
        write_output(outputs[index], packed, inputs=list(inputs), no_clobber=no_clobber)

    if run_batch(list(inputs), process, quiet=quiet, debug=debug, desc="recompress"):
        sys.exit(1)
