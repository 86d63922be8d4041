"""The reader's public functions: ``decode_jpeg`` (torch), ``decode_jpeg_array``
(numpy, what the command line uses) and ``read_coefficients``.

No byte layout of its own (see :mod:`.markers` and :mod:`.scans`). Nothing
here imports torch unless a torch result is asked for.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from jpegtorch.errors import JPEGError
from jpegtorch.limits import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS

from .scans import Reader

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from jpegtorch.coefficients import Coefficients


def _as_bytes(data: Any, name: str | None) -> tuple[bytes, str | None]:
    if isinstance(data, bytes):
        return data, name
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data), name
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        try:
            with open(path, "rb") as handle:
                return handle.read(), name or path
        except OSError as exc:
            raise JPEGError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise JPEGError("expected a 1-D uint8 array of JPEG bytes")
        return data.tobytes(), name
    torch = sys.modules.get("torch")  # a tensor implies torch is imported already
    if torch is not None and isinstance(data, torch.Tensor):
        if data.dtype != torch.uint8 or data.dim() != 1:
            raise JPEGError(f"expected a 1-D uint8 tensor of JPEG bytes, got "
                            f"{data.dtype} {tuple(data.shape)}")
        return data.detach().cpu().contiguous().numpy().tobytes(), name
    raise JPEGError(f"expected JPEG data as bytes, a 1-D uint8 tensor or a path, got "
                    f"{type(data).__name__}")


def _read(data: Any, *, lenient: bool, max_pixels: int | None, name: str | None,
          max_memory: int | None = DEFAULT_MAX_MEMORY, want: str = "coefficients",
          planar: bool = False, sink: Any = None) -> Reader:
    """Parse and decode ``data`` (the reader after its run: ``coefs``, ``comps`` with
    ``offset`` in coefficients, ``scans``, ...), for tools built on the reader."""
    raw, name = _as_bytes(data, name)
    reader = Reader(raw, name=name, lenient=lenient, max_pixels=max_pixels, decode=True,
                    max_memory=max_memory, want=want, planar=planar, sink=sink)
    try:
        reader.run()
    except MemoryError:
        raise reader.error("out of memory (the image is too large for this machine; "
                           "lower max_memory to refuse such files early)") from None
    return reader


def read_coefficients(data: Any, *, lenient: bool = False,
                      max_pixels: int | None = DEFAULT_MAX_PIXELS,
                      max_memory: int | None = DEFAULT_MAX_MEMORY,
                      name: str | None = None) -> Coefficients:
    """The quantized DCT coefficients of a JPEG file.

    Args:
        data: the file's bytes (``bytes``, ``bytearray``, ``memoryview``, a 1-D
            uint8 numpy array or tensor) or a path.
        lenient: decode corrupt or truncated data as libjpeg does (missing data
            reads as zeros) with a :class:`JPEGWarning`, instead of raising.
        max_pixels: refuse images with more pixels than this before allocating
            anything (``None``: no limit).
        max_memory: refuse files whose coefficients would take more bytes than
            this, checked from the headers before allocating (``None``: no
            limit; default 1 GiB). Like libjpeg's ``max_memory_to_use``.
        name: a file name for messages.

    Returns:
        :class:`jpegtorch.Coefficients` with a batch of 1: ``blocks[c]``
        **int16** (libjpeg's ``JCOEF``: 2 bytes per coefficient, the values
        libjpeg stores, wrapped to 16 bits) ``[1, by, bx, 8, 8]`` covering the
        full MCU grid (uncoded blocks zero); ``qtables`` int32 ``[1, C, 8, 8]``
        (the table each component's first scan used, natural order,
        1..65535); sampling, size, colour ("gray", "ycbcr" or "rgb"),
        component ids and table slots as in the file. Mind int16 overflow in
        your own arithmetic (``blocks[c].int()`` widens).

    Raises:
        jpegtorch.JPEGError: not a JPEG, unsupported, corrupt (strict), too big.
    """
    reader = _read(data, lenient=lenient, max_pixels=max_pixels, max_memory=max_memory,
                   name=name, want="coefficients")
    coefficients = reader.coefficients()
    reader.emit_warnings()
    return coefficients


def decode_jpeg_array(data: Any, *, lenient: bool = False,
                      max_pixels: int | None = DEFAULT_MAX_PIXELS,
                      max_memory: int | None = DEFAULT_MAX_MEMORY,
                      name: str | None = None, planar: bool = False) -> np.ndarray:
    """Decode a JPEG file to a numpy array, exactly as libjpeg-turbo (Pillow) does.

    The torch-free path (the command line's): entropy decoding, then the
    compiled stage kernels (:mod:`jpegtorch.kernels`) band by band.

    Args:
        data, lenient, max_pixels, max_memory, name: as :func:`decode_jpeg`.
        planar: ``[C, H, W]`` instead of ``[H, W, C]``.

    Returns:
        uint8 ``[H, W, C]`` (or ``[C, H, W]``), values 0..255; C = 1 (grey) or 3
        (RGB), C-contiguous.

    Raises:
        jpegtorch.JPEGError: not a JPEG, unsupported, corrupt (strict), too big.
    """
    reader = _read(data, lenient=lenient, max_pixels=max_pixels, max_memory=max_memory,
                   name=name, want="pixels", planar=planar)
    try:
        pixels = reader.pixels()
    except MemoryError:
        raise reader.error("out of memory (the image is too large for this machine)") from None
    reader.emit_warnings()
    assert pixels is not None
    return pixels


def decode_jpeg_rows(data: Any, sink: Any, *, lenient: bool = False,
                     max_pixels: int | None = DEFAULT_MAX_PIXELS,
                     max_memory: int | None = DEFAULT_MAX_MEMORY,
                     name: str | None = None) -> None:
    """Decode a JPEG file band by band into ``sink``, never holding the whole image.

    Memory is a few MCU rows for single-scan files, the coefficient array for
    progressive ones: what a streaming writer (``jtorch decode`` to PNG)
    needs. The pixels are :func:`decode_jpeg_array`'s.

    Args:
        data, lenient, max_pixels, max_memory, name: as :func:`decode_jpeg`.
        sink: an object with ``begin(height, width, channels)`` (called once,
            before any rows) and ``write(rows)``: uint8 ``[n, W, C]`` (C = 1
            or 3), the next ``n`` image rows top to bottom, valid only during
            the call. In strict mode a corrupt file may raise after some rows
            were written (discard the output then).

    Raises:
        jpegtorch.JPEGError: not a JPEG, unsupported, corrupt (strict), too big.
    """
    reader = _read(data, lenient=lenient, max_pixels=max_pixels, max_memory=max_memory,
                   name=name, want="pixels", sink=sink)
    try:
        reader.pixels()
    except MemoryError:
        raise reader.error("out of memory (the image is too large for this machine)") from None
    reader.emit_warnings()


def decode_jpeg(data: Any, *, lenient: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                max_memory: int | None = DEFAULT_MAX_MEMORY, name: str | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Decode a JPEG file to pixels, exactly as libjpeg-turbo (Pillow) does.

    On the CPU (the default) this is :func:`decode_jpeg_array` wrapped
    without a copy; for another ``device`` the coefficients go there and the
    torch pipeline (:func:`jpegtorch.decode`) makes the pixels.

    Args:
        data: the file's bytes (``bytes`` or a 1-D uint8 tensor, as
            ``torchvision.io.decode_jpeg``; also bytearray, numpy, a path), or
            a list of them (then a list of tensors is returned).
        lenient: decode corrupt/truncated data as libjpeg does, with a
            :class:`JPEGWarning`, instead of raising.
        max_pixels: pixel limit checked before allocating (``None``: none).
        max_memory: limit on the bytes the decode allocates (coefficients of
            progressive / multi-scan files, the output pixels, working
            buffers), checked from the headers before allocating (``None``:
            none; default 1 GiB). Like libjpeg's ``max_memory_to_use``.
        name: a file name for messages.
        device: where to run the inverse DCT / colour stages (default CPU).

    Returns:
        uint8 ``[C, H, W]`` tensor (contiguous), values 0..255; C = 1 (grey)
        or 3 (RGB).

    Raises:
        jpegtorch.JPEGError: not a JPEG, unsupported, corrupt (strict), too big.
    """
    if isinstance(data, (list, tuple)):
        return [decode_jpeg(d, lenient=lenient, max_pixels=max_pixels, max_memory=max_memory,
                            name=name, device=device)
                for d in data]  # type: ignore[return-value]
    import torch

    if device is None or torch.device(device).type == "cpu":
        return torch.from_numpy(decode_jpeg_array(data, lenient=lenient, max_pixels=max_pixels,
                                                  max_memory=max_memory, name=name,
                                                  planar=True))
    reader = _read(data, lenient=lenient, max_pixels=max_pixels, max_memory=max_memory,
                   name=name, want="coefficients")
    reader.check_pixels_supported()
    reader.smooth()
    coefficients = reader.coefficients()
    reader.emit_warnings()
    from jpegtorch.pipeline import decode

    return decode(coefficients.to(device))[0]
