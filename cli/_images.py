"""Reading input images for ``jtorch encode`` and ``jtorch compare`` (no torch).

Pixels come out as numpy uint8 ``[C, H, W]`` (C = 1 gray, 3 RGB), as cjpeg
would read them: gray stays gray, alpha is dropped (one warning), palettes
and other modes become RGB, samples deeper than 8 bits are scaled with
cjpeg's rounding, ``(v * 255 + maxval // 2) // maxval`` (16-bit PNG through
:mod:`jpegtorch.formats.png16`, PNM with any maxval through
:mod:`jpegtorch.formats.pnm`, where Pillow would truncate or round
differently).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from ._files import CliError

ALPHA_MODES = {"RGBA": "RGB", "RGBa": "RGB", "LA": "L", "La": "L", "PA": "RGB"}

# libjpeg's RGB -> Y (jccolor.c): FIX(0.299), FIX(0.587), FIX(0.114), 16 bits.
_Y_WEIGHTS = (19595, 38470, 7471)


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Refuse images above ``max_pixels`` (0 = no limit) or JPEG's 65535 a side."""
    if max_pixels and width * height > max_pixels:
        raise CliError(
            f"{width}x{height} = {width * height} pixels is above the limit of "
            f"{max_pixels} (raise it with --max-pixels)")
    if width > 65535 or height > 65535:
        raise CliError(f"{width}x{height} is larger than JPEG's 65535x65535")


def rgb_to_luma(rgb: Any) -> Any:
    """libjpeg's RGB -> Y of uint8 ``[3, H, W]``: uint8 ``[1, H, W]`` (cjpeg -grayscale)."""
    import numpy as np

    r, g, b = (rgb[i].astype(np.int32) for i in range(3))
    y = (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b + 32768) >> 16
    return y.astype(np.uint8)[None]


def read_image(data: bytes, *, name: str, max_pixels: int, grayscale: bool = False,
               warn: Callable[[str], None] = lambda message: None) -> Any:
    """Decode image file bytes into uint8 ``[C, H, W]`` (numpy), C = 1 or 3.

    ``warn`` receives one-line warnings (alpha dropped). With ``grayscale``,
    RGB becomes libjpeg's luma. Raises :class:`CliError` for files that are no
    image, too large or damaged.
    """
    return read_image_and_metadata(data, name=name, max_pixels=max_pixels,
                                   grayscale=grayscale, warn=warn, metadata=False)[0]


def read_image_and_metadata(data: bytes, *, name: str, max_pixels: int,
                            grayscale: bool = False,
                            warn: Callable[[str], None] = lambda message: None,
                            metadata: bool = True) -> tuple[Any, Any]:
    """:func:`read_image` and the file's metadata
    (:class:`jpegtorch.formats.metadata.Metadata`: a JPEG's segments byte for
    byte, or what Pillow reads from PNG/TIFF/WebP/GIF; empty with
    ``metadata=False``)."""
    import numpy as np
    from jpegtorch.formats.metadata import Metadata, read_jpeg_metadata

    meta = Metadata()
    deep = _read_deep(data, max_pixels)
    if deep is not None:
        array, alpha = deep
        if alpha:
            warn(f"{name}: alpha channel dropped")
        if metadata and data.startswith(b"\x89PNG"):
            meta = _pillow_metadata(data)
    else:
        array, image = _read_with_pillow(data, name=name, max_pixels=max_pixels, warn=warn)
        if metadata:
            if data.startswith(b"\xff\xd8"):
                meta = read_jpeg_metadata(data)
            else:
                from jpegtorch.formats.metadata import from_pillow

                meta = from_pillow(image)
    if grayscale and array.shape[0] == 3:
        array = rgb_to_luma(array)
    return np.require(array, np.uint8, ["C", "W"]), meta


def _pillow_metadata(data: bytes) -> Any:
    """The metadata Pillow reads from a file it need not decode for us."""
    from jpegtorch.formats.metadata import Metadata, from_pillow
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # chunks after the image data (a late eXIf) too
            return from_pillow(image)
    except Exception:  # the pixels came from our own reader; metadata is best effort
        return Metadata()


def _read_deep(data: bytes, max_pixels: int) -> Any:
    """16-bit PNG and PNM with maxval != 255, read and scaled as cjpeg does; else None."""
    from jpegtorch.formats import png16, pnm

    from jpegtorch.errors import JPEGError

    try:
        if png16.is_deep_png(data):
            return png16.read_scaled(data, max_pixels=max_pixels or None)
        if pnm.is_deep_pnm(data):
            return pnm.read_scaled(data, max_pixels=max_pixels or None)
    except JPEGError as exc:
        raise CliError(str(exc)) from None
    return None


def open_image(source: bytes | str, *, max_pixels: int) -> Any:
    """Open and decode an image with Pillow: bytes, or a path (read as Pillow
    needs it, so the file is never held whole in memory besides the pixels).

    The size is checked against ``max_pixels`` (0 = no limit) and JPEG's
    65535 a side before the pixels are decoded. Returns the loaded Pillow
    image (close it, or use it as a context manager). Raises :class:`CliError`
    for files that are no image, too large or damaged.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved_limit = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = None  # our own --max-pixels check replaces Pillow's
            try:
                im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            except UnidentifiedImageError:
                raise CliError("not an image (or a format Pillow cannot read)") from None
            except Image.DecompressionBombError:  # pragma: no cover - limit is off
                raise CliError("image is too large") from None
            try:
                width, height = im.size
                check_size(width, height, max_pixels)
                im.load()
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                im.close()
                first = str(exc).strip().splitlines()
                raise CliError("cannot decode image: "
                               f"{first[0] if first else type(exc).__name__}") from None
            except BaseException:
                im.close()
                raise
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    return im


def image_rows(im: Any, *, name: str, warn: Callable[[str], None] = lambda message: None
               ) -> tuple[Any, Callable[[int, int], Any], int]:
    """Read a decoded Pillow image a strip of rows at a time, as uint8 numpy.

    Returns ``(image, read_rows, channels)``: ``read_rows(y0, y1)`` gives rows
    ``y0 .. y1 - 1`` as ``[y1 - y0, W, channels]`` uint8 (channels 1 or 3) of
    ``image`` (``im`` or its conversion; keep it open while reading). Gray
    stays gray, alpha is dropped (one warning through ``warn``), palette and
    other colour modes become RGB, 16-bit samples are scaled to 8 bits as
    cjpeg does (``(v * 255 + 32767) // 65535``). Only strips are ever copied,
    so the decoded image is the only whole-image buffer.
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
        warn(f"{name}: alpha channel dropped")
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


def image_array(im: Any, *, name: str, warn: Callable[[str], None] = lambda message: None
                ) -> Any:
    """A decoded Pillow image as uint8 numpy ``[C, H, W]`` (C = 1 or 3), converted
    as :func:`image_rows` does, a strip at a time."""
    import numpy as np

    im, read_rows, channels = image_rows(im, name=name, warn=warn)
    width, height = im.size
    out = np.empty((channels, height, width), dtype=np.uint8)
    step = max(1, (1 << 20) // (4 * width))
    for y0 in range(0, height, step):
        y1 = min(height, y0 + step)
        out[:, y0:y1] = read_rows(y0, y1).transpose(2, 0, 1)
    return out


def _read_with_pillow(data: bytes, *, name: str, max_pixels: int,
                      warn: Callable[[str], None]) -> tuple[Any, Any]:
    """(uint8 ``[C, H, W]``, the opened Pillow image)."""
    im = open_image(data, max_pixels=max_pixels)
    return image_array(im, name=name, warn=warn), im
