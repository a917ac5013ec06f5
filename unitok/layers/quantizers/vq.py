"""Vector quantization with a learned codebook (van den Oord et al., 2017, "Neural Discrete Representation
Learning", VQ-VAE), with optional cosine lookup (Yu et al., 2022, ViT-VQGAN; used by LlamaGen) and optional
exponential-moving-average codebook updates (VQ-VAE Appendix A.1; Razavi et al., 2019, VQ-VAE-2)."""

from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ._common import QuantizerOutput, check_indices, check_input, fp32_region, sum_losses


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantizer over `codebook` `[codebook_size, dim]` with a straight-through estimator.

    `loss = commitment_weight * mse(z, sg(q)) + codebook_weight * mse(q, sg(z))` (VQ-VAE Eq. 3). With
    `use_ema=True` the codebook is not trained by gradient: the codebook term is dropped (`codebook_loss=None`)
    and, in training mode, every forward updates the EMA cluster sizes `ema_cluster_size` and sums
    `ema_embed_sum` (persistent buffers, all-reduced across processes) and sets
    `codebook = ema_embed_sum / laplace_smoothed(ema_cluster_size)`.

    With `distance="cosine"` both the input and the codebook are l2-normalised before the lookup, and the losses
    and the returned `quantized` live on the unit sphere.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        distance: str = "euclidean",
        commitment_weight: float = 0.25,
        codebook_weight: float = 1.0,
        use_ema: bool = False,
        ema_decay: float = 0.99,
        ema_eps: float = 1e-5,
    ):
        super().__init__()
        if distance not in ("euclidean", "cosine"):
            raise ValueError(f"VectorQuantizer: distance must be 'euclidean' or 'cosine', got {distance!r}")
        if codebook_size < 1 or dim < 1:
            raise ValueError(f"VectorQuantizer: codebook_size and dim must be >= 1, got {codebook_size}, {dim}")
        self.codebook_size = codebook_size
        self.dim = dim
        self.distance = distance
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.use_ema = use_ema
        self.ema_decay = ema_decay
        self.ema_eps = ema_eps
        self.codebook = nn.Parameter(torch.empty(codebook_size, dim), requires_grad=not use_ema)
        if use_ema:
            self.register_buffer("ema_cluster_size", torch.empty(codebook_size))
            self.register_buffer("ema_embed_sum", torch.empty(codebook_size, dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Codebook ~ N(0, 1); EMA statistics consistent with it (one pseudo-count per code)."""
        nn.init.normal_(self.codebook)
        if self.use_ema:
            self.ema_cluster_size.fill_(1.0)
            self.ema_embed_sum.copy_(self.codebook)

    def _codebook_fp32(self) -> torch.Tensor:
        codebook = self.codebook.float()
        return F.normalize(codebook, dim=-1) if self.distance == "cosine" else codebook

    def _lookup(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """fp32 `x` `(N, dim)` -> (lookup input `x` or normalised `x`, code vectors `q`, indices)."""
        codebook = self._codebook_fp32()
        if self.distance == "cosine":
            x = F.normalize(x, dim=-1)
            indices = (x @ codebook.T).argmax(dim=-1)
        else:
            # ||x - c||^2 without the ||x||^2 term, which does not change the argmin
            indices = (codebook.pow(2).sum(dim=-1) - 2 * x @ codebook.T).argmin(dim=-1)
        return x, codebook[indices], indices

    def _losses(
        self, x: torch.Tensor, q: torch.Tensor, weight: Optional[torch.Tensor] = None
    ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Weighted (commitment, codebook) losses; `weight` `(N,)` masks rows (mean still over all rows)."""

        def mse(a, b):
            per_row = (a - b).pow(2).mean(dim=-1)
            return (per_row if weight is None else per_row * weight).mean()

        commitment = self.commitment_weight * mse(x, q.detach()) if self.commitment_weight else None
        codebook = None
        if not self.use_ema and self.codebook_weight:
            codebook = self.codebook_weight * mse(q, x.detach())
        return commitment, codebook

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, indices: torch.Tensor, weight: Optional[torch.Tensor] = None) -> None:
        """One EMA step of the cluster statistics from fp32 rows `x` `(N, dim)` assigned to `indices`."""
        weight = torch.ones_like(indices, dtype=torch.float32) if weight is None else weight.float()
        counts = x.new_zeros(self.codebook_size).index_add_(0, indices, weight)
        sums = x.new_zeros(self.codebook_size, self.dim).index_add_(0, indices, x * weight[:, None])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        decay = self.ema_decay
        cluster_size = self.ema_cluster_size.float().mul_(decay).add_(counts, alpha=1 - decay)
        embed_sum = self.ema_embed_sum.float().mul_(decay).add_(sums, alpha=1 - decay)
        # Laplace smoothing keeps unused codes from dividing by zero while preserving the total count.
        total = cluster_size.sum()
        smoothed = (cluster_size + self.ema_eps) / (total + self.codebook_size * self.ema_eps) * total
        self.ema_cluster_size.copy_(cluster_size)
        self.ema_embed_sum.copy_(embed_sum)
        self.codebook.copy_(embed_sum / smoothed[:, None])

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize `z` of shape `(..., dim)`; in training mode with `use_ema` also updates the codebook."""
        check_input(z, self.dim, type(self).__name__)
        with fp32_region(z) as x:
            x, q, indices = self._lookup(x.reshape(-1, self.dim))
            commitment, codebook = self._losses(x, q)
            if self.use_ema and self.training:
                self._ema_update(x, indices)
            quantized = x + (q - x).detach()  # straight-through estimator
        return QuantizerOutput(
            quantized=quantized.reshape(z.shape).to(z.dtype),
            indices=indices.reshape(z.shape[:-1]),
            loss=sum_losses(commitment, codebook, ref=z),
            commitment_loss=commitment,
            codebook_loss=codebook,
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.FloatTensor:
        """Int `(...)` -> float32 code vectors `(..., dim)` (l2-normalised in cosine mode)."""
        check_indices(indices, self.codebook_size, f"{type(self).__name__}.indices_to_codes")
        return self._codebook_fp32()[indices.long()]

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, dim={self.dim}, distance={self.distance!r}, "
            f"commitment_weight={self.commitment_weight}, codebook_weight={self.codebook_weight}, "
            f"use_ema={self.use_ema}, ema_decay={self.ema_decay}"
        )
