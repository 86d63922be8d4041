"""The encoder's band driver: pixels -> quantized coefficients, MCU row by MCU row.

For each MCU row (``8 * vmax`` image rows) of each image it runs the stage
kernels in libjpeg's order on buffers that stay in cache:

1. colour conversion (:mod:`.color`, jccolor.c) of the row group, with the
   image's last column and row repeated (expand_right_edge, expand_bottom_edge);
2. down-sampling of each component (:mod:`.sampling`, jcsample.c);
3. islow FDCT of each block (:mod:`.dct`, jfdctint.c) and quantization
   (:mod:`.quantize`, jcdctmgr.c);
4. libjpeg's dummy blocks (jccoefct.c) where an MCU reaches past a
   component's blocks: all-zero AC, the DC of the block to the left (right
   edge) or of the MCU's last block in the row above (bottom edge).

The output is, per component, the quantized blocks of the full MCU grid in
natural order: ``[N, by, bx, 8, 8]`` with ``by = mcu_rows * v`` and
``bx = mcu_cols * h`` (``Coefficients.blocks[c]``'s layout), for all MCU rows
(:func:`encode_coefficients`) or for a band of them (:func:`forward_band`, used
by the writer to entropy-code each band as soon as it is made).

No torch here: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .color import rgb_to_ycbcr_rows
from .dct import fdct_rows
from .quantize import quantize_rows, reciprocals
from .sampling import bias_row, downsample_rows


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    """The block geometry of an image as libjpeg lays it out (jdinput.c's
    ``per_scan_setup`` / jcmaster.c's ``initial_setup``)."""

    height: int
    width: int
    sampling: tuple[tuple[int, int], ...]

    @property
    def hmax(self) -> int:
        return max(h for h, _ in self.sampling)

    @property
    def vmax(self) -> int:
        return max(v for _, v in self.sampling)

    @property
    def mcu_rows(self) -> int:
        return ceil_div(self.height, 8 * self.vmax) if len(self.sampling) > 1 \
            else ceil_div(self.height, 8)

    @property
    def mcu_cols(self) -> int:
        return ceil_div(self.width, 8 * self.hmax) if len(self.sampling) > 1 \
            else ceil_div(self.width, 8)

    def grid(self, c: int) -> tuple[int, int]:
        """(by, bx): blocks of component ``c`` in the full MCU grid."""
        h, v = self.sampling[c]
        if len(self.sampling) == 1:
            return self.mcu_rows, self.mcu_cols
        return self.mcu_rows * v, self.mcu_cols * h


@njit(cache=True, nogil=True)
def forward_rows(interleaved, planar, row0, height, width, mcu_row0, mcu_row1, ncomp, hs, vs,
                 half, mult, biases, out0, out1, out2, masks, moff,
                 mask_lut):  # pragma: no cover - compiled
    """Quantized coefficients of MCU rows ``mcu_row0 .. mcu_row1 - 1`` of every image.

    Args:
        interleaved: ``[N, R, W * K]`` uint8 (HWC rows), or ``planar``: ``[N, K,
            R, W]`` (CHW); the other one empty; both C-contiguous. K = 3 (RGB)
            or 1 (gray). Image rows ``row0 .. row0 + R - 1`` of images
            ``height`` rows high, at least those the MCU rows cover
            (``mcu_row0 * 8 * vmax`` up to ``min(height, mcu_row1 * 8 * vmax)``).
        ncomp: 3 (YCbCr) or 1 (Y: gray input, or RGB reduced to luma).
        hs, vs: ``[ncomp]`` int64 sampling factors (``[1], [1]`` when ncomp = 1).
        half, mult: ``[N, ncomp, 64]`` int64 quantizer constants
            (:func:`jpegtorch.kernels.quantize.reciprocals` of ``8 q``).
        biases: ``[ncomp, >= max width in blocks * 8]`` int64 down-sampling biases.
        out0, out1, out2: flat int16 or int32 arrays, component ``c``'s blocks as
            ``[N, (mcu_row1 - mcu_row0) * v, bx, 64]`` (unused ones may be empty).
        masks: flat int64, empty or one mask per output block, its nonzero
            values' bits moved by ``mask_lut`` (see
            :func:`jpegtorch.kernels.quantize.quantize_rows`); component ``c``'s
            from ``moff[c]`` on, in the blocks' order.
    """
    use_planar = planar.shape[0] > 0
    nimg = planar.shape[0] if use_planar else interleaved.shape[0]
    hmax = 1
    vmax = 1
    for c in range(ncomp):
        hmax = max(hmax, hs[c])
        vmax = max(vmax, vs[c])
    mcu_cols = (width + 8 * hmax - 1) // (8 * hmax)
    wib = np.empty(ncomp, dtype=np.int64)
    hib = np.empty(ncomp, dtype=np.int64)
    avail = np.empty(ncomp, dtype=np.int64)
    wpad = 0
    wds = 0
    for c in range(ncomp):
        hexp = hmax // hs[c]
        wib[c] = ((width * hs[c] + hmax - 1) // hmax + 7) // 8
        hib[c] = ((height * vs[c] + vmax - 1) // vmax + 7) // 8
        avail[c] = (height + vmax - 1) // vmax * vs[c]
        wpad = max(wpad, wib[c] * 8 * hexp)
        wds = max(wds, wib[c] * 8)
    group = 8 * vmax
    cbuf = np.empty((ncomp, group, wpad), dtype=np.uint8)
    dbuf = np.empty((ncomp, group, wds), dtype=np.uint8)
    coef = np.empty(wds * 8, dtype=np.int32)
    with_masks = masks.shape[0] > 0
    band_rows = mcu_row1 - mcu_row0
    no_rows = np.empty((0, 0), dtype=np.uint8)
    no_planes = np.empty((0, 0, 0), dtype=np.uint8)
    for n in range(nimg):
        for mr in range(mcu_row0, mcu_row1):
            y0 = mr * group
            if use_planar:
                rgb_to_ycbcr_rows(no_rows, planar[n], row0, y0, group, height, width, ncomp,
                                  cbuf)
            else:
                rgb_to_ycbcr_rows(interleaved[n], no_planes, row0, y0, group, height, width,
                                  ncomp, cbuf)
            for c in range(ncomp):
                h = hs[c]
                v = vs[c]
                hexp = hmax // h
                vexp = vmax // v
                if c == 0:
                    out = out0
                elif c == 1:
                    out = out1
                else:
                    out = out2
                if hexp == 1 and vexp == 1:
                    src = cbuf[c]
                else:
                    src = dbuf[c]
                    downsample_rows(cbuf[c], y0, hexp, vexp, 8 * v, avail[c], biases[c], src)
                bx = mcu_cols * h
                for vi in range(v):
                    row = mr * v + vi  # block row in the component
                    local = (n * band_rows + (mr - mcu_row0)) * v + vi
                    first = local * bx  # index of the row's first block in `out`
                    real = wib[c] if row < hib[c] else 0
                    if real:
                        fdct_rows(src, vi * 8, real, coef)
                        quantize_rows(coef, real, half[n, c], mult[n, c], out, first * 64,
                                      masks, moff[c] + first, mask_lut)
                    for bj in range(real, bx):  # libjpeg's dummy blocks (jccoefct.c)
                        base = (first + bj) * 64
                        for k in range(1, 64):
                            out[base + k] = 0
                        if row < hib[c]:  # right edge: the DC of the block to the left
                            out[base] = out[base - 64]
                        else:  # bottom: the DC of the MCU's last block in the row above
                            out[base] = out[(first - bx + (bj // h) * h + h - 1) * 64]
                        if with_masks:
                            masks[moff[c] + first + bj] = 0


def prepare(sampling: tuple[tuple[int, int], ...], width: int,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hs, vs, biases)`` kernel arguments for a sampling and image width."""
    hmax = max(h for h, _ in sampling)
    hs = np.array([h for h, _ in sampling], dtype=np.int64)
    vs = np.array([v for _, v in sampling], dtype=np.int64)
    vmax = max(v for _, v in sampling)
    widths = [ceil_div(ceil_div(width * h, hmax), 8) * 8 for h, _ in sampling]
    biases = np.zeros((len(sampling), max(widths)), dtype=np.int64)
    for c, (h, v) in enumerate(sampling):
        biases[c] = bias_row(hmax // h, vmax // v, max(widths))
    return hs, vs, biases


def _divisors(tables: np.ndarray, n: int, ncomp: int) -> np.ndarray:
    qdiv = np.asarray(tables, dtype=np.int64).reshape(-1, ncomp, 64) * 8
    if qdiv.shape[0] not in (1, n):
        raise ValueError(f"tables for {qdiv.shape[0]} images, {n} images given")
    return np.ascontiguousarray(np.broadcast_to(qdiv, (n, ncomp, 64)))


_NO_ROWS = np.empty((0, 0, 0), dtype=np.uint8)
_NO_PLANES = np.empty((0, 0, 0, 0), dtype=np.uint8)


def pixel_layout(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(interleaved, planar)`` arguments of :func:`forward_rows` for ``[N, R, W,
    K]`` uint8 images: HWC rows or CHW planes without a copy when the memory is
    laid out so (numpy/Pillow images, contiguous torch tensors), else a
    contiguous copy."""
    n, rows, width, channels = images.shape
    if images.flags.c_contiguous:
        return images.reshape(n, rows, width * channels), _NO_PLANES
    planes = images.transpose(0, 3, 1, 2)
    if planes.flags.c_contiguous:
        return _NO_ROWS, planes
    return np.ascontiguousarray(images).reshape(n, rows, width * channels), _NO_PLANES


def _check_images(images: np.ndarray, ncomp: int) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f"images must be uint8 [N, H, W, 1|3], got {images.dtype} "
                         f"{images.shape}")
    if images.shape[3] == 1 and ncomp != 1:
        raise ValueError("gray images have one component")
    if min(images.shape[:3]) < 1:
        raise ValueError(f"empty images {images.shape}")


def encode_coefficients(images: np.ndarray, sampling: tuple[tuple[int, int], ...],
                        tables: np.ndarray, dtype: type = np.int16) -> list[np.ndarray]:
    """Quantized coefficients of a batch of images, as libjpeg computes them.

    Args:
        images: ``[N, H, W, K]`` uint8, K = 3 (RGB) or 1 (gray); HWC or CHW
            memory (a CHW tensor's numpy view transposed to HWC) is read in
            place, other strides are copied first.
        sampling: ``(h, v)`` per output component: three for YCbCr, one (``((1,
            1),)``) for gray output (RGB input is then reduced to libjpeg's luma).
        tables: ``[ncomp, 64]`` or ``[N, ncomp, 64]`` quantization tables of each
            component (natural order, 1..255 for baseline; up to 65535 works).
        dtype: ``np.int16`` (libjpeg's JCOEF) or ``np.int32``.

    Returns:
        Per component ``[N, by, bx, 8, 8]`` blocks of the full MCU grid.
    """
    ncomp = len(sampling)
    _check_images(images, ncomp)
    n, height, width = images.shape[:3]
    geometry = Geometry(height, width, tuple(sampling))
    hs, vs, biases = prepare(geometry.sampling, width)
    half, mult = reciprocals(_divisors(tables, n, ncomp))
    outs = [np.empty((n, *geometry.grid(c), 8, 8), dtype=dtype) for c in range(ncomp)]
    flats = [o.reshape(-1) for o in outs]
    empty = np.empty(0, dtype=dtype)
    while len(flats) < 3:
        flats.append(empty)
    no_masks = np.empty(0, dtype=np.int64)
    forward_rows(*pixel_layout(images), 0, height, width, 0, geometry.mcu_rows, ncomp, hs, vs,
                 half, mult, biases, *flats, no_masks, np.zeros(3, dtype=np.int64),
                 np.zeros((8, 256), dtype=np.int64))
    return outs


def forward_band(pixels: np.ndarray, row0: int, geometry: Geometry, mcu_row0: int,
                 mcu_row1: int, half: np.ndarray, mult: np.ndarray, hs: np.ndarray,
                 vs: np.ndarray, biases: np.ndarray, blocks: list[np.ndarray],
                 masks: np.ndarray, moff: np.ndarray, mask_lut: np.ndarray) -> None:
    """Fill ``blocks`` (per component ``[(mcu_row1 - mcu_row0) * v, bx, 64]``,
    C-contiguous) with the coefficients of MCU rows ``mcu_row0 .. mcu_row1 - 1``
    and ``masks`` (one per block, component ``c``'s from ``moff[c]``) with
    their nonzero masks moved by ``mask_lut`` (see :func:`forward_rows`).

    ``pixels``: ``[R, W, K]`` uint8, image rows ``row0 .. row0 + R - 1`` (at
    least those the MCU rows cover; see :func:`forward_rows`); ``half``,
    ``mult``: ``[1, ncomp, 64]``.
    """
    outs = [b.reshape(-1) for b in blocks]
    outs += [outs[0][:0]] * (3 - len(outs))
    forward_rows(*pixel_layout(pixels[None]), row0, geometry.height, geometry.width, mcu_row0,
                 mcu_row1, len(geometry.sampling), hs, vs, half, mult, biases, *outs, masks,
                 moff, mask_lut)
