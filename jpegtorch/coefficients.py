"""`Coefficients`: the quantized DCT representation shared by the pipeline,
the JFIF writer and the JPEG reader."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

COLOR_SPACES = ("gray", "ycbcr", "rgb")


@dataclass(frozen=True)
class Coefficients:
    """Quantized DCT coefficients of a batch of images (or of one file).

    Attributes:
        blocks: one tensor per component, shape ``[N, by, bx, 8, 8]``: the
            quantized coefficients of every block of the component's full MCU
            grid (``by = mcu_rows * v``, ``bx = mcu_cols * h``), including the
            dummy blocks libjpeg adds at the right and bottom edges. Each block
            is in natural (row-major) order: ``[..., u, v]`` with ``u`` the
            vertical and ``v`` the horizontal frequency; ``[..., 0, 0]`` is DC.
            dtype: ``int32`` when produced from uint8 images or read from a
            file; the image's float dtype (integer-valued, possibly carrying
            gradients) from float images; non-integer floats in soft modes.
        qtables: ``[N, C, 8, 8]`` quantization table of each component, in
            natural order, as written in the file's DQT (already scaled by
            quality), values 1..255 for baseline (up to 65535 when read).
            Integer dtype or float (possibly requiring grad).
        sampling: ``(h, v)`` sampling factors per component, each 1..4.
        size: ``(height, width)`` of the image in pixels.
        color: ``"gray"`` (1 component), ``"ycbcr"`` (3, JFIF) or ``"rgb"``
            (3, Adobe transform 0: components stored without colour
            conversion).
        component_ids: the component identifiers written in SOF/SOS.
        qtable_slots: which DQT slot (0..3) each component's table lives in.
        mode: the arithmetic mode that produced the coefficients; `decode`
            uses it unless told otherwise.
    """

    blocks: tuple[Tensor, ...]
    qtables: Tensor
    sampling: tuple[tuple[int, int], ...]
    size: tuple[int, int]
    color: str = "ycbcr"
    component_ids: tuple[int, ...] = field(default=())
    qtable_slots: tuple[int, ...] = field(default=())
    mode: str = "hard"

    def __post_init__(self) -> None:
        n = len(self.blocks)
        if n not in (1, 3, 4):
            raise ValueError(f"expected 1, 3 or 4 components, got {n}")
        if len(self.sampling) != n:
            raise ValueError("one (h, v) sampling pair per component is required")
        if self.color not in COLOR_SPACES:
            raise ValueError(f"color must be one of {COLOR_SPACES}, got {self.color!r}")
        if not self.component_ids:
            object.__setattr__(self, "component_ids", tuple(range(1, n + 1)))
        if not self.qtable_slots:
            object.__setattr__(self, "qtable_slots", tuple(0 if i == 0 else 1 for i in range(n)))
        if self.qtables.shape[-3:] != (n, 8, 8):
            raise ValueError(f"qtables must be [N, {n}, 8, 8], got {tuple(self.qtables.shape)}")

    @property
    def num_components(self) -> int:
        return len(self.blocks)

    @property
    def batch_size(self) -> int:
        return int(self.blocks[0].shape[0])

    @property
    def max_sampling(self) -> tuple[int, int]:
        return (max(h for h, _ in self.sampling), max(v for _, v in self.sampling))

    @property
    def mcu_grid(self) -> tuple[int, int]:
        """(mcu_rows, mcu_cols) of an interleaved scan."""
        hmax, vmax = self.max_sampling
        height, width = self.size
        return (-(-height // (8 * vmax)), -(-width // (8 * hmax)))

    def component_size(self, c: int) -> tuple[int, int]:
        """(height, width) in samples of component ``c`` (libjpeg's downsampled size)."""
        hmax, vmax = self.max_sampling
        h, v = self.sampling[c]
        height, width = self.size
        return (-(-height * v // vmax), -(-width * h // hmax))

    def component_blocks(self, c: int) -> tuple[int, int]:
        """(height_in_blocks, width_in_blocks) of component ``c`` without MCU padding."""
        ch, cw = self.component_size(c)
        return (-(-ch // 8), -(-cw // 8))

    def select(self, index: int) -> Coefficients:
        """The coefficients of one image of the batch, keeping a batch axis of 1."""
        return replace(
            self,
            blocks=tuple(b[index : index + 1] for b in self.blocks),
            qtables=self.qtables[index : index + 1],
        )

    def to(self, device: torch.device | str) -> Coefficients:
        return replace(
            self,
            blocks=tuple(b.to(device) for b in self.blocks),
            qtables=self.qtables.to(device),
        )
