"""The exact pipeline's planes and FDCT output, for the coefficient optimizers.

Trellis quantization and per-image tuning choose quantized values from the
*unquantized* transform: libjpeg-turbo's integer FDCT output (``jfdctint.c``,
scaled by 8, what its quantizer divides by ``8 q``). :func:`analyze` runs the
pipeline's own stages in hard mode -- colour conversion (``color.py``),
edge padding and box down-sampling (``blocks.py``, ``sampling.py``), the islow
FDCT (``dct.py``) -- and stops before quantization, so that rounding these
values with libjpeg's quantizer gives exactly :func:`jpegtorch.encode`'s
coefficients (tested).

:func:`replace_planes` substitutes the sample planes of some components: the
down-sampled chroma planes with ones fitted to the decoder's up-sampling, or
the luma plane with one that compensates the chroma's coding errors;
everything else stays libjpeg's. :func:`inverse_plane` is the decoder's side
in floating point (for estimating decoded planes).

Arrays are numpy: ``raw[c]`` is ``[hib, wib, 64]`` int32 (natural order) for
component ``c``'s real blocks; the full MCU grid (dummy blocks included) is
``grid(c)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")


@dataclass(frozen=True)
class Analysis:
    """One image's transform, before quantization.

    Attributes:
        size: ``(height, width)`` in pixels.
        sampling: ``(h, v)`` per component.
        color: ``"ycbcr"`` or ``"gray"``.
        planes: per component, the samples that were transformed, ``[hib * 8,
            wib * 8]`` float64 (0..255, integers), padded as libjpeg pads.
        full: per component, the full-resolution colour plane ``[H, W]``
            float64 before down-sampling (what the decoder's up-sampled output
            is compared with).
        raw: per component, the FDCT output ``[hib, wib, 64]`` int32, natural
            order, scaled by 8 (libjpeg's ``DCTELEM`` workspace); float64 when
            not ``exact``.
        exact: libjpeg's integer stages (:func:`analyze`), or the real-valued
            transform of the real-valued colour planes (:func:`analyze_float`).
    """

    size: tuple[int, int]
    sampling: tuple[tuple[int, int], ...]
    color: str
    planes: tuple[np.ndarray, ...]
    full: tuple[np.ndarray, ...]
    raw: tuple[np.ndarray, ...]
    exact: bool = True

    @property
    def num_components(self) -> int:
        return len(self.raw)

    @property
    def max_sampling(self) -> tuple[int, int]:
        return (max(h for h, _ in self.sampling), max(v for _, v in self.sampling))

    @property
    def mcu_grid(self) -> tuple[int, int]:
        """``(mcu_rows, mcu_cols)`` of the interleaved scan."""
        hmax, vmax = self.max_sampling
        height, width = self.size
        return (-(-height // (8 * vmax)), -(-width // (8 * hmax)))

    def grid(self, c: int) -> tuple[int, int]:
        """``(by, bx)``: component ``c``'s blocks in the full MCU grid."""
        if self.num_components == 1:
            return self.raw[0].shape[:2]
        mcu_rows, mcu_cols = self.mcu_grid
        h, v = self.sampling[c]
        return mcu_rows * v, mcu_cols * h


def analyze(image: object, subsampling: str = "4:2:0") -> Analysis:
    """The pipeline's planes and FDCT output for one image (see the module docstring).

    Args:
        image: uint8 ``[C, H, W]`` (C = 1 gray, 3 RGB), a torch tensor or a
            numpy array.
        subsampling: "4:4:4", "4:2:2" or "4:2:0" (ignored for gray).

    Returns:
        An :class:`Analysis`.
    """
    import torch

    from ..blocks import ceil_div, replicate_pad
    from ..color import rgb_to_ycbcr
    from ..sampling import downsample, parse_subsampling

    x = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image
    if x.dtype != torch.uint8 or x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"image must be uint8 [C, H, W] with C = 1 or 3, got "
                         f"{x.dtype} {tuple(x.shape)}")
    channels, height, width = x.shape
    pixels = x[None].cpu().to(torch.float64)
    if channels == 3:
        sampling = parse_subsampling(subsampling)
        ycc = rgb_to_ycbcr(pixels, "hard")
        color = "ycbcr"
    else:
        sampling = ((1, 1),)
        ycc = pixels
        color = "gray"
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    out_planes, full, raw = [], [], []
    for c, (h, v) in enumerate(sampling):
        hexp, vexp = hmax // h, vmax // v
        wib = ceil_div(ceil_div(width * h, hmax), 8)
        hib = ceil_div(ceil_div(height * v, vmax), 8)
        plane = ycc[:, c]
        full.append(plane[0].numpy().copy())
        plane = replicate_pad(plane, ceil_div(height, vmax) * vmax, wib * 8 * hexp)
        if vexp > 1 and plane.shape[-2] % vexp:
            plane = replicate_pad(plane, ceil_div(plane.shape[-2], vexp) * vexp, plane.shape[-1])
        plane = downsample(plane, hexp, vexp, "hard")
        plane = replicate_pad(plane, hib * 8, wib * 8)[0].numpy().copy()
        out_planes.append(plane)
        raw.append(forward_dct(plane))
    return Analysis(size=(int(height), int(width)), sampling=tuple(sampling), color=color,
                    planes=tuple(out_planes), full=tuple(full), raw=tuple(raw))


def component_size(analysis: Analysis, c: int) -> tuple[int, int]:
    """``(height, width)`` in samples of component ``c`` (libjpeg's down-sampled size)."""
    hmax, vmax = analysis.max_sampling
    h, v = analysis.sampling[c]
    height, width = analysis.size
    return (-(-height * v // vmax), -(-width * h // hmax))


def replace_planes(analysis: Analysis, planes: dict[int, np.ndarray]) -> Analysis:
    """The same analysis with some components' sample planes replaced.

    Args:
        analysis: from :func:`analyze`.
        planes: component index -> plane of the component's own size
            (:func:`component_size`), values 0..255 (rounded to integers and
            clamped here; edge-replicated to whole blocks as libjpeg pads).

    Returns:
        A new :class:`Analysis` (``full`` unchanged).
    """
    out_planes = list(analysis.planes)
    raw = list(analysis.raw)
    for c, given in planes.items():
        own = component_size(analysis, c)
        plane = np.asarray(given, dtype=np.float64)
        if plane.shape != own:
            raise ValueError(f"plane {c} must be {own}, got {plane.shape}")
        hib, wib = analysis.raw[c].shape[:2]
        rows = np.minimum(np.arange(hib * 8), own[0] - 1)
        cols = np.minimum(np.arange(wib * 8), own[1] - 1)
        if analysis.exact:
            padded = np.clip(np.round(plane), 0, 255)[rows][:, cols]
            raw[c] = forward_dct(padded)
        else:
            padded = np.clip(plane, 0, 255)[rows][:, cols]
            raw[c] = forward_dct_float(padded)
        out_planes[c] = padded
    return Analysis(size=analysis.size, sampling=analysis.sampling, color=analysis.color,
                    planes=tuple(out_planes), full=analysis.full, raw=tuple(raw),
                    exact=analysis.exact)


#: JFIF's YCbCr -> RGB as libjpeg-turbo's decoder applies it (jdcolor.c), on
#: ``(Y, Cb - 128, Cr - 128)``.
DECODER_MATRIX = np.array([[1.0, 0.0, 1.40200], [1.0, -0.34414, -0.71414], [1.0, 1.77200, 0.0]])


def analyze_float(image: object, subsampling: str = "4:2:0") -> Analysis:
    """Like :func:`analyze`, in real numbers: the colour planes that the decoder's
    colour conversion maps exactly onto the image (no rounding), box-filtered
    chroma (means), and the orthonormal DCT (times 8, libjpeg's scale).

    For encoders that choose the coefficients themselves, these are the targets:
    libjpeg's rounded planes add a rounding error of their own (variance 1/12
    per sample) before any quantization.
    """
    from ..sampling import parse_subsampling

    array = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"image must be uint8 [C, H, W] with C = 1 or 3, got "
                         f"{array.dtype} {array.shape}")
    channels, height, width = array.shape
    pixels = array.astype(np.float64)
    if channels == 3:
        sampling = parse_subsampling(subsampling)
        ycc = np.einsum("ok,khw->ohw", np.linalg.inv(DECODER_MATRIX), pixels)
        ycc[1:] += 128.0
        color = "ycbcr"
    else:
        sampling = ((1, 1),)
        ycc = pixels
        color = "gray"
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    planes, raw = [], []
    for c, (h, v) in enumerate(sampling):
        hexp, vexp = hmax // h, vmax // v
        own = (-(-height * v // vmax), -(-width * h // hmax))
        hib, wib = -(-own[0] // 8), -(-own[1] // 8)
        rows = np.minimum(np.arange(own[0] * vexp), height - 1)
        cols = np.minimum(np.arange(own[1] * hexp), width - 1)
        plane = ycc[c][rows][:, cols].reshape(own[0], vexp, own[1], hexp).mean(axis=(1, 3))
        padded = plane[np.minimum(np.arange(hib * 8), own[0] - 1)][
            :, np.minimum(np.arange(wib * 8), own[1] - 1)]
        planes.append(padded)
        raw.append(forward_dct_float(padded))
    return Analysis(size=(int(height), int(width)), sampling=tuple(sampling), color=color,
                    planes=tuple(planes), full=tuple(np.clip(p, 0.0, 255.0) for p in ycc),
                    raw=tuple(raw), exact=False)


def forward_dct_float(plane: np.ndarray) -> np.ndarray:
    """The orthonormal 8×8 DCT of a plane of whole blocks, times 8 (libjpeg's scale):
    ``[8 hib, 8 wib]`` samples -> ``[hib, wib, 64]`` float64 (natural order)."""
    hib, wib = plane.shape[0] // 8, plane.shape[1] // 8
    blocks = (plane - 128.0).reshape(hib, 8, wib, 8).transpose(0, 2, 1, 3)
    coef = np.matmul(np.matmul(_DCT, blocks), _DCT.T) * 8.0
    return np.ascontiguousarray(coef.reshape(hib, wib, 64))


def forward_dct(plane: np.ndarray) -> np.ndarray:
    """libjpeg's islow FDCT of a plane of whole blocks: ``[8 hib, 8 wib]`` samples 0..255
    -> ``[hib, wib, 64]`` int32 (natural order, scaled by 8)."""
    import torch

    from ..blocks import blockify
    from ..dct import fdct

    samples = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float64))[None]
    coef = fdct(blockify(samples) - 128.0, "hard")[0]
    hib, wib = coef.shape[:2]
    return np.ascontiguousarray(coef.reshape(hib, wib, 64).numpy().astype(np.int32))


def _dct_matrix() -> np.ndarray:
    n = np.arange(8)
    m = np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16) * 0.5
    m[0] *= 1.0 / np.sqrt(2.0)
    return m  # orthonormal: rows are the basis functions


_DCT = _dct_matrix()


def inverse_plane(blocks: np.ndarray, quant: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Decoded samples of one component, in floating point (no rounding).

    Args:
        blocks: ``[by, bx, 64]`` quantized values (natural order).
        quant: ``[64]`` quantization steps.
        shape: ``(height, width)`` to crop to (the component's own size).

    Returns:
        ``[height, width]`` float64: the orthonormal IDCT of ``blocks * quant``
        plus 128, clamped to 0..255 (libjpeg's islow IDCT differs by rounding).
    """
    by, bx = blocks.shape[:2]
    coef = (blocks.astype(np.float64) * np.asarray(quant, dtype=np.float64)).reshape(by, bx, 8, 8)
    samples = np.matmul(np.matmul(_DCT.T, coef), _DCT) + 128.0
    plane = samples.transpose(0, 2, 1, 3).reshape(by * 8, bx * 8)
    return np.clip(plane[: shape[0], : shape[1]], 0.0, 255.0)
