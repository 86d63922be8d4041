"""Compare jpegtorch with the JPEG libraries people already use (``jtorch compare``).

For each image, quality and codec -- jpegtorch's JPEG writer and decoder (or
the learned codec), plus each reference library -- a :class:`Comparison`
encodes, decodes and measures:

* ``bytes`` and ``bpp`` (bits per pixel of the whole file);
* ``psnr``: PSNR over the R, G and B samples (peak 255; one channel for gray);
* ``psnr_y``: PSNR of the luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (the JFIF /
  BT.601 full-range formula JPEG uses), computed in floating point from the
  original and decoded RGB, without rounding;
* ``ssim``: SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, the mean over the channels) and ``ms_ssim``
  (five scales; ``None`` when the shorter side is under 161 pixels), both
  from :mod:`jpegtorch.metrics` (pytorch-msssim), in float64;
* ``encode_ms`` / ``decode_ms``: wall time of one encode / decode (the best of
  ``repeat`` runs, after a warm-up), the library call only: inputs are
  prepared beforehand. For ``libjpeg`` (``cjpeg`` / ``djpeg``) the time
  includes starting the process;
* for each reference: ``bytes_identical`` (its file is jpegtorch's, byte for
  byte), ``pixels_identical`` (its decode of its file equals jpegtorch's
  decode of jpegtorch's file), ``psnr_vs_jpegtorch`` (the PSNR between those
  two decodes, when they differ) and ``decoder_identical`` (jpegtorch's
  decoder gives the reference decoder's pixels on the reference's file).

References: ``opencv`` (``cv2.imencode`` / ``cv2.imdecode``), ``pillow``
(``Image.save`` / ``Image.open``) and ``libjpeg`` (the ``cjpeg -baseline`` /
``djpeg`` programs of libjpeg-turbo) use libjpeg-turbo's defaults (islow DCT,
fancy upsampling) and, with the same settings, write the same files as
jpegtorch. ``mozjpeg`` (mozjpeg's ``cjpeg`` with its own defaults: trellis
quantization, progressive scans searched per image) is the reference for file
size at equal quality. A missing one raises :class:`MissingDependency`, whose
message names what to install.

The package, by concern:

* :mod:`~jpegtorch.compare.records`: settings, records, metrics, quality lists;
* :mod:`~jpegtorch.compare.codecs`: the codec adapters (jpegtorch and the references);
* :mod:`~jpegtorch.compare.driver`: :class:`Comparison`, which runs them;
* :mod:`~jpegtorch.compare.report`: summaries, BD-rates, table / JSON / CSV;
* :mod:`~jpegtorch.compare.visual`: the rate-distortion chart and ``--save`` outputs.

torch, numpy-heavy libraries and the references are imported on use.
"""

from __future__ import annotations

from .codecs import (
    Codec,
    JpegtorchCodec,
    LearnedCodec,
    LibjpegCodec,
    MozjpegCodec,
    OpenCVCodec,
    PillowCodec,
    check_reference,
    cjpeg_version,
    find_mozjpeg,
    make_reference,
    parse_pnm,
)
from .driver import Comparison, unique_names
from .records import (
    CODECS,
    COLUMNS,
    DEFAULT_QUALITIES,
    INSTALL_HINTS,
    LEARNED,
    MIN_BD_POINTS,
    OURS,
    REFERENCES,
    SSIM_MIN_SIZE,
    SUBSAMPLINGS,
    CodecFailure,
    JPEGSettings,
    MissingDependency,
    Record,
    image_metrics,
    luma,
    parse_qualities,
    psnr,
)
from .report import bd_rates, format_report, format_table, summarize, to_csv, to_json
from .visual import (
    CROP,
    DIFF_GAIN,
    PLOT_FORMATS,
    ZOOM,
    check_plotting,
    plot_rd,
    rd_curves,
    save_outputs,
    side_by_side,
)

__all__ = [
    "CODECS", "COLUMNS", "CROP", "DEFAULT_QUALITIES", "DIFF_GAIN", "INSTALL_HINTS", "LEARNED",
    "MIN_BD_POINTS", "OURS", "PLOT_FORMATS", "REFERENCES", "SSIM_MIN_SIZE", "SUBSAMPLINGS", "ZOOM",
    "Codec", "CodecFailure", "Comparison", "JPEGSettings", "JpegtorchCodec", "LearnedCodec",
    "LibjpegCodec", "MissingDependency", "MozjpegCodec", "OpenCVCodec", "PillowCodec", "Record",
    "bd_rates", "check_plotting", "check_reference", "cjpeg_version", "find_mozjpeg",
    "format_report", "format_table", "image_metrics", "luma", "make_reference", "parse_pnm",
    "parse_qualities", "plot_rd", "psnr", "rd_curves", "save_outputs", "side_by_side", "summarize",
    "to_csv", "to_json", "unique_names",
]
