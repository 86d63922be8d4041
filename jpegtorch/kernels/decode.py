"""The decoder's band driver: quantized coefficients -> uint8 pixels, one iMCU
row at a time (libjpeg's jdapistd.c / jdmainct.c / jdsample.c / jdcolor.c
chain), compiled.

For each iMCU row ``k`` (``8 * vmax`` image rows) every component's blocks are
dequantized and inverse transformed (:func:`jpegtorch.kernels.dct.idct_block_row`)
into a small sample buffer; the rows of iMCU row ``k - 1`` are then
up-sampled (:mod:`jpegtorch.kernels.sampling`), colour converted
(:mod:`jpegtorch.kernels.color`) and written to the output. The one-row lag
gives the fancy up-samplers their context: the last sample row of the
previous iMCU row above, the first of the next one below (at the image edges
the row itself, as libjpeg replicates). Blocks outside a component's own
``downsampled_width × downsampled_height`` (libjpeg's dummy blocks) are never
transformed: no output sample depends on them.

Memory: the sample buffer holds two iMCU rows plus one context row per
component; nothing else is allocated per pixel but the output. The
coefficients can be the whole image (progressive / multi-scan files, and
:func:`jpegtorch.decode`) or a band of iMCU rows that the entropy decoder has
just produced (single-scan files: :class:`BandDecoder` keeps the state between
calls), so the pixels are identical either way.

Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .color import GRAY, RGB, YCBCR, YCBCR_TO_RGB_FIXED, ycc_rgb_row
from .dct import idct_block_row
from .sampling import FULLSIZE, H1V2_FANCY, H2V2_FANCY, upsample_method, upsample_row

__all__ = ["BandDecoder", "Geometry", "decode_coefficients", "geometry"]

COLORS = {"gray": GRAY, "ycbcr": YCBCR, "rgb": RGB}


@dataclass(frozen=True)
class Geometry:
    """Everything the band driver needs to know about a frame (int64 arrays, one
    entry per component)."""

    height: int
    width: int
    hmax: int
    vmax: int
    imcu_rows: int
    h: np.ndarray
    v: np.ndarray
    bx: np.ndarray
    """Blocks per row of the coefficient arrays (the full MCU grid)."""
    wib: np.ndarray
    """Blocks per row holding the component's samples."""
    hib: np.ndarray
    cw: np.ndarray
    """The component's width in samples (``downsampled_width``)."""
    ch: np.ndarray
    hexp: np.ndarray
    vexp: np.ndarray
    method: np.ndarray

    @property
    def components(self) -> int:
        return int(self.h.shape[0])


def geometry(sampling: tuple[tuple[int, int], ...] | list[tuple[int, int]],
             size: tuple[int, int]) -> Geometry:
    """The band geometry of a frame.

    Args:
        sampling: ``(h, v)`` per component (1 or 3 components), each 1..4,
            integral ratios to the largest.
        size: ``(height, width)`` in pixels.

    Raises:
        ValueError: fractional sampling ratios (libjpeg-turbo refuses them too).
    """
    height, width = size
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    for h, v in sampling:
        if hmax % h or vmax % v:
            raise ValueError(f"fractional sampling factors are not supported: {tuple(sampling)}")
    mcu_rows = -(-height // (8 * vmax))
    mcu_cols = -(-width // (8 * hmax))
    i64 = np.int64
    hs = np.array([h for h, _ in sampling], dtype=i64)
    vs = np.array([v for _, v in sampling], dtype=i64)
    cw = -(-width * hs // hmax)
    ch = -(-height * vs // vmax)
    hexp = hmax // hs
    vexp = vmax // vs
    method = np.array([upsample_method(int(a), int(b), int(w))
                       for a, b, w in zip(hexp, vexp, cw, strict=True)], dtype=i64)
    return Geometry(height=height, width=width, hmax=hmax, vmax=vmax, imcu_rows=mcu_rows,
                    h=hs, v=vs, bx=mcu_cols * hs, wib=-(-cw // 8), hib=-(-ch // 8), cw=cw, ch=ch,
                    hexp=hexp, vexp=vexp, method=method)


@njit(cache=True, nogil=True)
def _decode_rows(coefs, coef_row0, k0, k1, nrows, vs, bx, wib, hib, cw, ch, method, hexp,
                 vexp, qt, height, width, vmax, color, fixed, samp, ws, rowbuf, colsum, out,
                 out_row0, planar, tmp):  # pragma: no cover - compiled
    """IDCT iMCU rows ``k0 <= k < k1`` and emit the rows of iMCU rows ``k - 1``
    (and of the last one when ``k1 == nrows``).

    ``coefs`` is a tuple of one flat int16/int32 array per component holding
    the blocks of iMCU rows ``coef_row0, ...`` (``bx[c]`` blocks per row).
    ``samp`` is ``[C, 2 R + 1, Wpad]`` uint8 (``R = 8 vmax``): row 0 the
    context row above, then two slots of ``R`` rows; it carries the state
    between calls. Image row ``y`` goes to ``out`` row ``y - out_row0``.
    """
    nc = vs.shape[0]
    slot_rows = 8 * vmax
    for k in range(k0, k1 + 1):
        if k < k1:
            # ---- IDCT of iMCU row k into slot k % 2 --------------------------
            base_row = 1 + (k % 2) * slot_rows
            stride = samp.shape[2]
            for c in range(nc):
                plane = samp[c].reshape(samp.shape[1] * stride)
                cc = coefs[c]
                q = qt[c]
                for yy in range(vs[c]):
                    b = k * vs[c] + yy
                    if b >= hib[c]:
                        break
                    off = (b - coef_row0 * vs[c]) * bx[c] * 64
                    idct_block_row(cc, off, wib[c], q, ws, plane, (base_row + yy * 8) * stride,
                                   stride)
        # ---- emit iMCU row j = k - 1 (or the last one) -----------------------
        if k < k1:
            j = k - 1
            if j < 0:
                continue
        else:
            if k1 != nrows:
                break
            j = nrows - 1
        cur_base = 1 + (j % 2) * slot_rows
        next_base = 1 + ((j + 1) % 2) * slot_rows
        y0 = j * slot_rows
        y1 = min(y0 + slot_rows, height)
        for y in range(y0, y1):
            t = y - y0
            # the row of each component at full size: its own samples (1x1) or
            # up-sampled into rowbuf; numba copies through slices slowly, so
            # sources are passed around instead of copied
            src0 = rowbuf[0]
            src1 = rowbuf[1]
            src2 = rowbuf[2]
            for c in range(nc):
                rc = vs[c] * 8
                i = t // vexp[c]
                g = j * rc + i
                m = method[c]
                cur = samp[c, cur_base + i]
                src = cur
                if m != FULLSIZE:
                    phase = t % vexp[c]
                    near = cur
                    if m == H1V2_FANCY or m == H2V2_FANCY:
                        if phase == 0:
                            if g > 0:
                                near = samp[c, 0] if i == 0 else samp[c, cur_base + i - 1]
                        elif g + 1 < ch[c]:
                            near = (samp[c, next_base] if i + 1 == rc
                                    else samp[c, cur_base + i + 1])
                    src = rowbuf[c]
                    upsample_row(m, hexp[c], vexp[c], phase, cur, near, width, cw[c], src,
                                 colsum)
                if c == 0:
                    src0 = src
                elif c == 1:
                    src1 = src
                else:
                    src2 = src
            oy = y - out_row0
            if color == YCBCR:
                ycc_rgb_row(src0, src1, src2, width, fixed, out, oy, planar, tmp)
            elif planar:
                for c in range(nc):
                    src = src0 if c == 0 else (src1 if c == 1 else src2)
                    dst = out[c, oy]
                    for x in range(width):
                        dst[x] = src[x]
            else:
                pix = out[oy].reshape(width * nc)
                for c in range(nc):
                    src = src0 if c == 0 else (src1 if c == 1 else src2)
                    for x in range(width):
                        pix[x * nc + c] = src[x]
        if j + 1 < nrows:  # the context row above the next iMCU row
            for c in range(nc):
                dst = samp[c, 0]
                src = samp[c, cur_base + vs[c] * 8 - 1]
                for x in range(dst.shape[0]):
                    dst[x] = src[x]


class BandDecoder:
    """Coefficients -> pixels, iMCU row by iMCU row, for one image.

    Feed it the coefficients of consecutive iMCU rows (:meth:`rows`); each
    call returns the image rows it completed (with a lag of one iMCU row: the
    up-sampler's context), all of them once the last iMCU row has been fed.

    Args:
        geo: the frame's :func:`geometry`.
        qtables: ``[C, 64]`` natural-order quantization tables (1..65535).
        color: "gray", "ycbcr" or "rgb" (the components' colour space; YCbCr
            is converted to RGB).
        out: uint8 output for the whole image, ``[H, W, C]`` (``planar=False``)
            or ``[C, H, W]``; allocated when None.
        fixed: ``[3, 2]`` int64 fixed-point YCbCr -> RGB constants (default JFIF's).
        band: instead of a whole-image output, a band buffer for the rows of
            at most ``band`` iMCU rows fed per call (``[H', W, C]``, planar not
            allowed): the rows of each call are ``out[:y1 - y0]``, valid until
            the next call. Memory is then independent of the image height.
    """

    def __init__(self, geo: Geometry, qtables: np.ndarray, color: str, *,
                 out: np.ndarray | None = None, planar: bool = False,
                 fixed: np.ndarray | None = None, band: int = 0) -> None:
        nc = geo.components
        if color not in COLORS or (color == "gray") != (nc == 1):
            raise ValueError(f"cannot decode {nc} component(s) as {color!r}")
        self.geo = geo
        self.planar = planar
        self.color = COLORS[color]
        self.qt = np.ascontiguousarray(np.asarray(qtables).reshape(nc, 64), dtype=np.int32)
        self.fixed = YCBCR_TO_RGB_FIXED if fixed is None else np.asarray(fixed, dtype=np.int64)
        self.band = band
        if band:
            if planar or out is not None:
                raise ValueError("a band decoder writes [rows, W, C] bands of its own")
            rows = min(geo.height, (band + 1) * 8 * geo.vmax)
            out = np.empty((rows, geo.width, nc), dtype=np.uint8)
        shape = (nc, geo.height, geo.width) if planar else (geo.height, geo.width, nc)
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        elif not band and (out.shape != shape or out.dtype != np.uint8
                           or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
        self.out = out
        wpad = int((geo.wib * 8).max())
        self.samp = np.empty((nc, 16 * geo.vmax + 1, wpad), dtype=np.uint8)
        self.ws = np.empty(64, dtype=np.int64)
        self.rowbuf = np.empty((3, max(geo.width, wpad)), dtype=np.uint8)
        self.colsum = np.empty(wpad + 2, dtype=np.int32)
        self.tmp = np.empty((3, geo.width), dtype=np.uint8)
        self.next_row = 0

    @staticmethod
    def working_bytes(geo: Geometry, band: int = 0) -> int:
        """Bytes of the driver's own buffers (everything but coefficients and a
        whole-image output; a ``band`` decoder's band buffer included)."""
        wpad = int((geo.wib * 8).max())
        nc = geo.components
        rows = min(geo.height, (band + 1) * 8 * geo.vmax) if band else 0
        return (nc * (16 * geo.vmax + 1) * wpad + 3 * max(geo.width, wpad) + 4 * wpad
                + rows * geo.width * nc + 3 * geo.width + 1024)

    def rows(self, coefs: tuple[np.ndarray, ...], first: int, count: int) -> tuple[int, int]:
        """Decode iMCU rows ``first .. first + count - 1``.

        Args:
            coefs: one flat int16 (or int32) array per component with the
                blocks of iMCU rows ``first ...`` (``bx[c]`` blocks per row,
                64 natural-order coefficients per block).
            first: must be the next row not yet fed.

        Returns:
            ``(y0, y1)``: the image rows completed by this call (in ``out[y0:y1]``,
            or ``out[:y1 - y0]`` for a band decoder).
        """
        geo = self.geo
        if first != self.next_row or count < 0 or first + count > geo.imcu_rows:
            raise ValueError(f"iMCU rows must be fed in order: expected {self.next_row}, "
                             f"got {first}..{first + count - 1} of {geo.imcu_rows}")
        if self.band and count > self.band:
            raise ValueError(f"at most {self.band} iMCU rows per call")
        if len(coefs) != geo.components:
            raise ValueError("one coefficient array per component is required")
        dtypes = {a.dtype for a in coefs}
        if len(dtypes) != 1 or not all(a.ndim == 1 and a.flags.c_contiguous for a in coefs):
            raise ValueError("coefficients must be flat, contiguous and of one dtype")
        rows_per = 8 * geo.vmax
        last = first + count == geo.imcu_rows
        y0 = min(max(first - 1, 0) * rows_per, geo.height)
        y1 = geo.height if last else min(max(first + count - 1, 0) * rows_per, geo.height)
        padded = tuple(coefs) + (coefs[0],) * (3 - len(coefs))
        _decode_rows(padded, np.int64(first), np.int64(first), np.int64(first + count),
                     np.int64(geo.imcu_rows), geo.v, geo.bx, geo.wib, geo.hib, geo.cw, geo.ch,
                     geo.method, geo.hexp, geo.vexp, self.qt, np.int64(geo.height),
                     np.int64(geo.width), np.int64(geo.vmax), np.int64(self.color), self.fixed,
                     self.samp, self.ws, self.rowbuf, self.colsum, self.out,
                     np.int64(y0 if self.band else 0), self.planar, self.tmp)
        self.next_row = first + count
        return y0, y1

    @property
    def done(self) -> bool:
        return self.next_row == self.geo.imcu_rows


def decode_coefficients(blocks: tuple[np.ndarray, ...] | list[np.ndarray], qtables: np.ndarray,
                        sampling: tuple[tuple[int, int], ...], size: tuple[int, int],
                        color: str, *, planar: bool = False, out: np.ndarray | None = None,
                        fixed: np.ndarray | None = None) -> np.ndarray:
    """Pixels of one image from its whole coefficient arrays.

    Args:
        blocks: per component ``[by, bx, 8, 8]`` or ``[by, bx, 64]`` int16
            (libjpeg's JCOEF) or int32 quantized coefficients, natural order,
            covering the full MCU grid.
        qtables: ``[C, 64]`` or ``[C, 8, 8]`` natural-order tables.
        sampling: ``(h, v)`` per component. size: ``(height, width)``.
        color: "gray", "ycbcr" or "rgb".
        planar: ``[C, H, W]`` output instead of ``[H, W, C]``.

    Returns:
        uint8 pixels, ``[H, W, C]`` (or ``[C, H, W]``), C = 1 or 3 (RGB).
    """
    geo = geometry(sampling, size)
    decoder = BandDecoder(geo, qtables, color, out=out, planar=planar, fixed=fixed)
    dtype = np.int16 if all(b.dtype == np.int16 for b in blocks) else np.int32
    flat = []
    for c, b in enumerate(blocks):
        if b.shape[0] < geo.imcu_rows * geo.v[c] or b.shape[1] != geo.bx[c]:
            raise ValueError(f"component {c}: expected [{geo.imcu_rows * geo.v[c]}, "
                             f"{geo.bx[c]}, 8, 8] blocks, got {tuple(b.shape)}")
        flat.append(np.ascontiguousarray(b, dtype=dtype).reshape(-1))
    decoder.rows(tuple(flat), 0, geo.imcu_rows)
    return decoder.out
