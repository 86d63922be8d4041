"""Compiled (numba) kernels of the pipeline's exact integer stages.

The pipeline's stages (``jpegtorch/color.py``, ``sampling.py``, ``dct.py``,
``quantize.py``, ``blocks.py``) are written in torch: an exact integer
formulation plus a real-valued surrogate for autograd, on any device. This
package holds the same integer arithmetic compiled with numba for the CPU,
one module per stage (``color.py``, ``sampling.py``, ``dct.py``,
``quantize.py``) plus the band drivers that chain them MCU row by MCU row
(``encode.py``, ``decode.py``).

Rules:

- It is the pipeline's hard CPU path: ``jpegtorch.encode/decode/jpeg(...,
  mode="hard")`` on CPU tensors, the JFIF writer and the decoder all run these
  kernels; the torch formulation stays for autograd and GPUs. Tests prove the
  two identical (every sampling, odd sizes, gray, quality 1..100, custom
  tables). There is no second codec beside the pipeline.
- Nothing here imports torch: arrays are numpy (``uint8`` pixels, ``int16``
  coefficients as libjpeg's ``JCOEF``), so the command line's codec paths run
  without loading torch (start-up time and memory).
- The integer constants of libjpeg-turbo live here once; the torch stages
  import them from here.
"""
