"""Binary quantizers with an implicit codebook of 2**dim sign patterns.

* `BinarySphericalQuantizer` (BSQ; Zhao et al., 2024, "Image and Video Tokenization with Binary Spherical
  Quantization"): codes are the corners of the hypercube projected on the unit sphere, `{±1/sqrt(dim)}^dim`.
* `LookupFreeQuantizer` (LFQ; Yu et al., 2023, "Language Model Beats Diffusion", MAGVIT-v2): codes `{±1}^dim`,
  no normalisation.

Both share the bit <-> index helpers and the entropy regulariser below.
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._common import QuantizerOutput, check_indices, check_input, entropy, fp32_region, sum_losses


def _bit_weights(dim: int, msb_first: bool, device) -> torch.Tensor:
    """Place value of each bit: `2**(dim-1-i)` for MSB-first, `2**i` for LSB-first."""
    exponents = torch.arange(dim, device=device)
    if msb_first:
        exponents = exponents.flip(0)
    return torch.ones((), dtype=torch.long, device=device).bitwise_left_shift(exponents)


def bits_to_indices(bits: torch.Tensor, msb_first: bool = True) -> torch.LongTensor:
    """Boolean `(..., dim)` -> int64 `(...)`: `index = sum_i bit_i * 2**(dim-1-i)` (MSB-first) or `2**i`."""
    return (bits.long() * _bit_weights(bits.shape[-1], msb_first, bits.device)).sum(dim=-1)


def indices_to_bits(indices: torch.Tensor, dim: int, msb_first: bool = True) -> torch.BoolTensor:
    """Exact inverse of `bits_to_indices`: int `(...)` -> boolean `(..., dim)`."""
    weights = _bit_weights(dim, msb_first, indices.device)
    return indices.long().unsqueeze(-1).bitwise_and(weights) != 0


def binary_entropy_terms(bit_logits: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample and codebook entropy (nats) of a factorised soft assignment over sign patterns.

    `bit_logits` `(N, dim)` holds `logit p(bit_i = 1 | sample)`. The bits are split into `dim // group_size`
    groups; within a group the distribution over its `2**group_size` sub-codes is exact (a product of per-bit
    Bernoullis: `log p(code) = bits(code) . logits + const`, hence a softmax), across groups it is assumed
    independent. Per-sample entropy is exact for any grouping; the codebook entropy `H(E_batch[p])` is exact
    for `group_size == dim` and otherwise the sum of per-group entropies (BSQ's factorised approximation,
    an upper bound of the true codebook entropy).
    """
    n, dim = bit_logits.shape
    sub_codes = indices_to_bits(torch.arange(2**group_size, device=bit_logits.device), group_size).float()
    code_logits = bit_logits.reshape(n, dim // group_size, group_size) @ sub_codes.T  # (N, groups, 2**g)
    probs = code_logits.softmax(dim=-1)
    per_sample = entropy(probs).sum(dim=-1).mean()
    codebook = entropy(probs.mean(dim=0)).sum()
    return per_sample, codebook


class _BinaryQuantizer(nn.Module):
    """Sign quantizer with straight-through gradient, commitment loss and the LFQ/BSQ entropy loss.

    Entropy loss (MAGVIT-v2's LFQ entropy penalty; BSQ's soft entropy):
    `gamma0 * E[H(q(c|z))] - gamma * H(E[q(c|z)])`, i.e. make each assignment confident while using the whole
    codebook. The soft assignment is the distance softmax over the
    implicit codebook, `q(c|u) ∝ exp(-inv_temperature * ||u - c||^2)` with `c ∈ {±s}^dim`. Because the squared
    distance is a sum over dimensions, it factorises per bit:
    `p(bit_i = 1 | u) = sigmoid(inv_temperature * ((u_i + s)^2 - (u_i - s)^2))`
    `                 = sigmoid(4 * inv_temperature * s * u_i)`.
    """

    l2_normalize = False  # BSQ projects the input onto the unit sphere first

    def __init__(
        self,
        dim: int,
        entropy_loss_weight: float = 0.1,
        commitment_loss_weight: float = 0.25,
        gamma0: float = 1.0,
        gamma: float = 1.0,
        inv_temperature: float = 1.0,
        group_size: Optional[int] = None,
        msb_first: bool = True,
    ):
        super().__init__()
        name = type(self).__name__
        if not 1 <= dim <= 63:
            raise ValueError(f"{name}: dim must be in [1, 63] so that indices fit in int64, got {dim}")
        group_size = 1 if group_size is None else group_size
        if not 1 <= group_size <= 16 or dim % group_size:
            raise ValueError(f"{name}: group_size must divide dim={dim} and be in [1, 16], got {group_size}")
        self._dim = dim
        self.entropy_loss_weight = entropy_loss_weight
        self.commitment_loss_weight = commitment_loss_weight
        self.gamma0 = gamma0
        self.gamma = gamma
        self.inv_temperature = inv_temperature
        self.group_size = group_size
        self.msb_first = msb_first

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def codebook_size(self) -> int:
        return 2**self._dim

    @property
    def code_scale(self) -> float:
        """Magnitude `s` of every code coordinate."""
        return 1 / math.sqrt(self._dim) if self.l2_normalize else 1.0

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize `z` of shape `(..., dim)` to sign codes (0 maps to +)."""
        check_input(z, self.dim, type(self).__name__)
        with fp32_region(z) as x:
            u = F.normalize(x, dim=-1) if self.l2_normalize else x
            bits = u >= 0
            codes = (bits.float() * 2 - 1) * self.code_scale
            quantized = u + (codes - u).detach()  # straight-through: the sign step is the identity backward
            commitment = entropy_loss = None
            if self.commitment_loss_weight:
                commitment = self.commitment_loss_weight * F.mse_loss(u, codes)
            if self.entropy_loss_weight:
                logits = (4 * self.inv_temperature * self.code_scale) * u.reshape(-1, self.dim)
                per_sample, codebook = binary_entropy_terms(logits, self.group_size)
                entropy_loss = self.entropy_loss_weight * (self.gamma0 * per_sample - self.gamma * codebook)
        return QuantizerOutput(
            quantized=quantized.to(z.dtype),
            indices=bits_to_indices(bits, self.msb_first),
            loss=sum_losses(commitment, entropy_loss, ref=z),
            commitment_loss=commitment,
            entropy_loss=entropy_loss,
        )

    def codes_to_indices(self, codes: torch.Tensor) -> torch.LongTensor:
        """Indices of sign codes `(..., dim)`, shape `(...)` (non-negative coordinates count as +)."""
        check_input(codes, self.dim, f"{type(self).__name__}.codes_to_indices")
        return bits_to_indices(codes >= 0, self.msb_first)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.FloatTensor:
        """Exact inverse: int `(...)` -> float32 codes `(..., dim)` with values `±code_scale`."""
        check_indices(indices, self.codebook_size, f"{type(self).__name__}.indices_to_codes")
        bits = indices_to_bits(indices, self.dim, self.msb_first)
        return (bits.float() * 2 - 1) * self.code_scale

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, entropy_loss_weight={self.entropy_loss_weight}, "
            f"commitment_loss_weight={self.commitment_loss_weight}, gamma0={self.gamma0}, gamma={self.gamma}, "
            f"inv_temperature={self.inv_temperature}, group_size={self.group_size}, msb_first={self.msb_first}"
        )


class BinarySphericalQuantizer(_BinaryQuantizer):
    """BSQ: `u = z / ||z||`, code `sign(u) / sqrt(dim)` (0 -> +), straight-through to `u`.

    Index: bit `i` is 1 when coordinate `i` is non-negative; by default MSB-first (bit 0 most significant, as in
    TaDiCodec), `index = sum_i bit_i * 2**(dim-1-i)`. `loss = entropy_loss_weight * (gamma0 * per_sample_entropy
    - gamma * codebook_entropy) + commitment_loss_weight * mse(u, code)`. With `s = 1/sqrt(dim)` the soft
    assignment of the entropy loss is `p(bit_i = 1 | u) = sigmoid(4 * inv_temperature * u_i / sqrt(dim))`.
    `group_size` (default 1, fully factorised) sets how many bits share an exact soft distribution in the
    codebook-entropy term (`group_size == dim` is exact, feasible for dim <= 16).
    """

    l2_normalize = True


class LookupFreeQuantizer(_BinaryQuantizer):
    """LFQ (MAGVIT-v2): code `sign(z)` in `{±1}^dim` (0 -> +), no normalisation, straight-through to `z`.

    Same losses, index convention (`msb_first`, default True) and `group_size` as `BinarySphericalQuantizer`,
    with `p(bit_i = 1 | z) = sigmoid(4 * inv_temperature * z_i)`.
    """

    l2_normalize = False

