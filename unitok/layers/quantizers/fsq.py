"""Finite Scalar Quantization (Mentzer et al., 2023, "Finite Scalar Quantization: VQ-VAE Made Simple")."""

import math

import torch
from torch import nn

from ._common import QuantizerOutput, check_indices, check_input, fp32_region, zero_loss


class FiniteScalarQuantizer(nn.Module):
    """FSQ: bound each channel, round it to one of `levels[i]` values, no codebook and no auxiliary loss.

    Channel `i` is squashed with `tanh` into `levels[i]` integer bins (Sec. 3 of the paper; for an even number
    of levels the grid is shifted by half a bin so that the rounding is still uniform), rounded with a
    straight-through estimator, and divided by `levels[i] // 2` so the codes lie in `[-1, 1]`.

    Index convention: mixed radix with the FIRST channel least significant,
    `index = sum_i (code_int[i] + levels[i] // 2) * basis[i]` with `basis = cumprod([1] + levels[:-1])`,
    where `code_int[i]` is the rounded integer of channel `i` (in `[-(L//2), (L-1)//2]`).

    Args:
        levels: number of quantization levels per channel (each >= 2); `dim == len(levels)`.
    """

    eps = 1e-3  # shrinks the tanh range a little so that the top bin is reachable without saturating tanh

    def __init__(self, levels: list[int]):
        super().__init__()
        if len(levels) == 0 or any(int(level) != level or level < 2 for level in levels):
            raise ValueError(f"FiniteScalarQuantizer: levels must be a non-empty list of ints >= 2, got {levels}")
        self.levels = tuple(int(level) for level in levels)
        if math.prod(self.levels) > 2**62:
            raise ValueError(f"FiniteScalarQuantizer: codebook size prod({self.levels}) does not fit in int64")
        # Derived from `levels`: non-persistent, so checkpoints never carry them; `reset_buffers` rebuilds them
        # after meta-device loading (transformers 5) leaves garbage in non-persistent buffers.
        self.register_buffer("_levels", torch.empty(len(self.levels), dtype=torch.long), persistent=False)
        self.register_buffer("_basis", torch.empty(len(self.levels), dtype=torch.long), persistent=False)
        self.reset_buffers()

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """Recompute `_levels` and `_basis` in place from `self.levels`."""
        levels = torch.tensor(self.levels, dtype=torch.long)
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1], dtype=torch.long), dim=0)
        self._levels.copy_(levels)
        self._basis.copy_(basis)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def _half_width(self) -> torch.Tensor:
        return (self._levels // 2).float()

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash fp32 `z` so that rounding yields exactly the L integers `-(L//2) .. (L-1)//2` per channel."""
        levels = self._levels.float()
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = (self._levels % 2 == 0).float() * 0.5
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize `z` of shape `(..., dim)`; `loss` is a zero tensor (FSQ needs no auxiliary loss)."""
        check_input(z, self.dim, type(self).__name__)
        with fp32_region(z) as x:
            bounded = self.bound(x)
            rounded = bounded + (bounded.round() - bounded).detach()  # straight-through rounding
            codes = rounded / self._half_width()
            indices = self._ints_to_indices(rounded.detach())
        return QuantizerOutput(quantized=codes.to(z.dtype), indices=indices, loss=zero_loss(z))

    def _ints_to_indices(self, code_int: torch.Tensor) -> torch.Tensor:
        digits = code_int.round().long() + self._levels // 2  # in [0, L)
        return (digits * self._basis).sum(dim=-1)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.LongTensor:
        """Indices of normalised codes `(..., dim)` (values on the grid `k / (L//2)`), shape `(...)`."""
        check_input(codes, self.dim, f"{type(self).__name__}.codes_to_indices")
        with fp32_region(codes) as x:
            return self._ints_to_indices(x * self._half_width())

    def indices_to_codes(self, indices: torch.Tensor) -> torch.FloatTensor:
        """Exact inverse of the index map: `(...)` integer indices -> float32 codes `(..., dim)` in `[-1, 1]`."""
        check_indices(indices, self.codebook_size, f"{type(self).__name__}.indices_to_codes")
        digits = (indices.long().unsqueeze(-1) // self._basis) % self._levels
        return (digits - self._levels // 2).float() / self._half_width()

    def extra_repr(self) -> str:
        return f"levels={list(self.levels)}, codebook_size={self.codebook_size}"
