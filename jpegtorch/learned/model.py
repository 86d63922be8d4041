"""The learned codec's network: a Ballé-style autoencoder with GDN, gain units and
one factorized prior per quality level.

Shapes: images are float ``[B, 3, H, W]`` in ``[0, 1]`` with ``H`` and ``W``
multiples of :data:`STRIDE` (16); latents are ``[B, M, H/16, W/16]``.

Variable rate: one analysis/synthesis transform pair is shared by all levels.
Level ``k`` scales the latent channel-wise by a learned gain vector before
quantization (``y * gain_enc[k]``) and back after it (``ŷ * gain_dec[k]``), the
"gain units" of Cui et al. (2021), and owns its factorized density model. All
levels are trained together, each batch drawing one level and its λ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STRIDE = 16


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows when it pushes ``x`` upwards."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through.to(grad.dtype), None


def lower_bound(x: Tensor, bound: float) -> Tensor:
    """Differentiable lower bound (see :class:`_LowerBound`)."""
    return _LowerBound.apply(x, bound)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al. 2016), or its inverse.

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (``inverse``: multiply).
    ``beta`` and ``gamma`` are kept non-negative by the usual
    reparametrization (square of a lower-bounded parameter minus a pedestal).
    Input/output: ``[B, C, H, W]``, any float dtype/device.
    """

    _pedestal = 2.0**-36

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self._beta_bound = math.sqrt(beta_min + self._pedestal)
        self._gamma_bound = math.sqrt(self._pedestal)
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self._pedestal))
        gamma = gamma_init * torch.eye(channels)
        self.gamma = nn.Parameter(torch.sqrt(gamma + self._pedestal))

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        beta = lower_bound(self.beta, self._beta_bound) ** 2 - self._pedestal
        gamma = lower_bound(self.gamma, self._gamma_bound) ** 2 - self._pedestal
        norm = F.conv2d(x * x, gamma.view(channels, channels, 1, 1), beta)
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class FactorizedDensity(nn.Module):
    """Ballé et al. (2018, appendix 6.1) univariate density, one per channel.

    ``cdf_logits(v)`` for values ``v`` of shape ``[C, 1, K]`` gives the logits of
    the cumulative distribution of each channel at each value. ``quantiles``
    (``[C, 1, 3]``: lower tail, median, upper tail) are trained by
    :meth:`aux_loss` and fix the integer range coded by the tables.
    """

    def __init__(self, channels: int, filters: Sequence[int] = (3, 3, 3),
                 init_scale: float = 10.0, tail_mass: float = 1e-9) -> None:
        super().__init__()
        self.channels = channels
        self.tail_mass = tail_mass
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        target = math.log(2 / tail_mass - 1)
        self.quantiles = nn.Parameter(
            torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        self.register_buffer("_target", torch.tensor([-target, 0.0, target]), persistent=False)

    def cdf_logits(self, v: Tensor, stop_gradient: bool = False) -> Tensor:
        """Cumulative logits; ``v``: ``[C, 1, K]`` -> ``[C, 1, K]``."""
        logits = v
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def likelihood(self, y: Tensor) -> Tensor:
        """Probability mass of the unit interval around each value.

        ``y``: ``[B, C, H, W]`` (noisy or rounded latents) -> same shape, in
        [1e-9, 1] (bounded below so that the rate stays finite).
        """
        b, c, h, w = y.shape
        v = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.cdf_logits(v - 0.5)
        upper = self.cdf_logits(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        p = lower_bound(p, 1e-9)
        return p.reshape(c, b, h, w).permute(1, 0, 2, 3)

    def aux_loss(self) -> Tensor:
        """Loss that moves ``quantiles`` to the tails and the median (scalar)."""
        logits = self.cdf_logits(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self._target.to(logits.dtype)).sum()

    def medians(self) -> Tensor:
        """``[C]`` medians of the densities."""
        return self.quantiles[:, 0, 1]


class FactorizedCodec(nn.Module):
    """Analysis ``g_a``/synthesis ``g_s`` transforms, gain units and priors.

    Args:
        n: hidden channels; m: latent channels; levels: number of quality levels;
        in_channels: 3 (RGB) or 1 (gray models, e.g. MNIST).
    """

    def __init__(self, n: int = 96, m: int = 128, levels: int = 6, in_channels: int = 3,
                 gain_spread: float = 2.0) -> None:
        super().__init__()
        self.config = {"n": n, "m": m, "levels": levels, "in_channels": in_channels}
        self.g_a = nn.Sequential(
            _conv(in_channels, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))
        self.g_s = nn.Sequential(
            _deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
            _deconv(n, n), GDN(n, inverse=True), _deconv(n, in_channels))
        # log-gains: level 0 (lowest rate) is the coarsest quantizer
        start = torch.linspace(-gain_spread / 2, gain_spread / 2, levels) if levels > 1 \
            else torch.zeros(1)
        self.log_gain_enc = nn.Parameter(start[:, None].repeat(1, m).clone())
        self.log_gain_dec = nn.Parameter(-start[:, None].repeat(1, m).clone())
        self.priors = nn.ModuleList(FactorizedDensity(m) for _ in range(levels))

    @property
    def levels(self) -> int:
        return len(self.priors)

    def analysis(self, x: Tensor, level: int) -> Tensor:
        """``x`` ``[B, C, H, W]`` in [0, 1] -> scaled latents ``[B, M, H/16, W/16]``."""
        y = self.g_a(x - 0.5)
        return y * torch.exp(self.log_gain_enc[level]).view(1, -1, 1, 1)

    def synthesis(self, y_hat: Tensor, level: int) -> Tensor:
        """Quantized scaled latents -> image ``[B, C, H, W]`` (not clamped)."""
        y = y_hat * torch.exp(self.log_gain_dec[level]).view(1, -1, 1, 1)
        return self.g_s(y) + 0.5

    def forward(self, x: Tensor, level: int) -> tuple[Tensor, Tensor]:
        """Training pass: returns (reconstruction, likelihoods of the latents).

        The rate uses additive uniform noise; the synthesis gets the rounded
        latents (``round(y - median) + median``) through a straight-through
        estimator ("mixed" quantization).
        """
        y = self.analysis(x, level)
        prior = self.priors[level]
        medians = prior.medians().detach().view(1, -1, 1, 1)
        noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        likelihood = prior.likelihood(noisy)
        rounded = torch.round(y - medians) + medians
        y_hat = y + (rounded - y).detach()
        return self.synthesis(y_hat, level), likelihood

    def aux_loss(self) -> Tensor:
        return sum(p.aux_loss() for p in self.priors)  # type: ignore[return-value]
