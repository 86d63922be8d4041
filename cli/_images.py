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

# Pillow's default decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS),
# repeated here so that --help does not import Pillow.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

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


def _read_with_pillow(data: bytes, *, name: str, max_pixels: int,
                      warn: Callable[[str], None]) -> tuple[Any, Any]:
    """(uint8 ``[C, H, W]``, the opened Pillow image)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved_limit = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = None  # our own --max-pixels check replaces Pillow's
            try:
                im = Image.open(io.BytesIO(data))
            except UnidentifiedImageError:
                raise CliError("not an image (or a format Pillow cannot read)") from None
            except Image.DecompressionBombError:  # pragma: no cover - limit is off
                raise CliError("image is too large") from None
            width, height = im.size
            check_size(width, height, max_pixels)
            try:
                im.load()
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                first = str(exc).strip().splitlines()
                raise CliError("cannot decode image: "
                               f"{first[0] if first else type(exc).__name__}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    return _pixels(im, name=name, warn=warn), im


def _pixels(im: Any, *, name: str, warn: Callable[[str], None]) -> Any:
    import numpy as np

    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ALPHA_MODES:
        warn(f"{name}: alpha channel dropped")
        im = im.convert(ALPHA_MODES[mode])
        mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im).astype(np.int64)
        arr = (np.clip(arr, 0, 65535) * 255 + 32767) // 65535
        return arr.astype(np.uint8)[None]
    if mode == "F":
        return np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)[None]
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.uint8)[None]
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
