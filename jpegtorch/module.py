"""``JPEG``: the pipeline as an ``nn.Module`` with optionally learnable quality,
quantization tables and colour-conversion matrices."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._arith import check_mode
from .color import default_forward_matrix, default_inverse_matrix
from .pipeline import decode, encode
from .quantize import annex_k_tables, check_quality
from .sampling import parse_subsampling


class JPEG(nn.Module):
    """Differentiable, libjpeg-turbo-exact JPEG compression + decompression.

    ``JPEG(quality=50)(x)`` equals ``jpegtorch.jpeg(x, 50)``. The module holds
    no parameters unless asked to:

    Args:
        quality: default quality 1..100 (a number). With ``learn_quality`` it
            becomes a scalar parameter (clamped to 1..100 in the forward pass).
        subsampling: "4:4:4", "4:2:2" or "4:2:0".
        tables: base tables ``[2, 8, 8]`` (None = Annex K).
        mode: "hard", "ste", "soft" or "ste-quant".
        learn_quality: make the quality a parameter.
        learn_tables: make the base tables a parameter, stored as their
            logarithm (``tables = exp(log_tables)``, always positive; entries are
            clamped to 1..255 after quality scaling).
        learn_color: make the RGB->YCbCr matrix ``[3, 3]`` and the chroma->RGB
            matrix ``[3, 2]`` parameters (initialised to JFIF's).

    Forward:
        ``image``: ``[N, C, H, W]`` or ``[C, H, W]`` float in [0, 1] (or uint8);
        ``quality`` (optional): overrides the module's quality, a number or a
        per-sample tensor ``[N]``. Returns the decoded image, same shape and dtype.
    """

    def __init__(self, quality: float = 75, *, subsampling: str = "4:2:0",
                 tables: Tensor | None = None, mode: str = "ste",
                 learn_quality: bool = False, learn_tables: bool = False,
                 learn_color: bool = False) -> None:
        super().__init__()
        check_quality(quality)
        parse_subsampling(subsampling)
        self.mode = check_mode(mode)
        self.subsampling = subsampling
        self.quality: Tensor | float
        if learn_quality:
            self.quality = nn.Parameter(torch.tensor(float(quality)))
        else:
            self.quality = float(quality)
        base = annex_k_tables(dtype=torch.float32) if tables is None else (
            tables.detach().to(torch.float32))
        self.log_tables: nn.Parameter | None = (
            nn.Parameter(base.clamp(min=1).log()) if learn_tables else None)
        self.fixed_tables: Tensor | None
        self.register_buffer("fixed_tables", None if (tables is None or learn_tables) else base)
        if learn_color:
            self.color_matrix: nn.Parameter | None = nn.Parameter(default_forward_matrix())
            self.inverse_color_matrix: nn.Parameter | None = nn.Parameter(
                default_inverse_matrix())
        else:
            self.color_matrix = None
            self.inverse_color_matrix = None

    @property
    def tables(self) -> Tensor | None:
        """The current base tables ``[2, 8, 8]`` (None = Annex K)."""
        if self.log_tables is not None:
            return self.log_tables.exp()
        return self.fixed_tables

    def forward(self, image: Tensor, quality: float | Tensor | None = None) -> Tensor:
        q = self.quality if quality is None else quality
        if isinstance(q, Tensor) and q.requires_grad:
            q = q.clamp(1.0, 100.0)
        tables = self.tables
        if tables is not None:
            tables = tables.to(image.device)
        coefficients = encode(image, q, subsampling=self.subsampling, tables=tables,
                              mode=self.mode, color_matrix=self.color_matrix)
        out = decode(coefficients, color_matrix=self.inverse_color_matrix)
        return out if image.dim() == 4 else out[0]

    def extra_repr(self) -> str:
        return (f"quality={float(self.quality):g}, subsampling={self.subsampling!r}, "
                f"mode={self.mode!r}")
