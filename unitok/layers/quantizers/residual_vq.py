"""Residual vector quantization (Zeghidour et al., 2021, SoundStream, Algorithm 1) with DAC-style quantizer
dropout (Kumar et al., 2023, "High-Fidelity Audio Compression with Improved RVQGAN")."""

from typing import Optional

import torch
from torch import nn

from ._common import QuantizerOutput, check_indices, check_input, fp32_region, sum_losses
from .vq import VectorQuantizer


class ResidualVectorQuantizer(nn.Module):
    """A stack of `VectorQuantizer`s (`self.layers`), each quantizing what the previous ones left over.

    `quantized = sum_i q_i` with `q_i = VQ_i(z - sum_{j<i} q_j)`, straight-through to `z`. Each layer receives
    its own residual with an identity gradient to `z`, so every layer's commitment loss reaches the encoder;
    `commitment_loss` / `codebook_loss` are summed over layers.

    Quantizer dropout (DAC convention), training mode only: a random subset of `int(batch * quantizer_dropout)`
    batch items (dim 0 of the input) uses only the first `n ~ Uniform{1..N}` quantizers; for those items the
    later layers' codes and losses are masked out (losses are still averaged over all items), and they do not
    contribute to EMA statistics. Their `indices` for the dropped layers are still the nearest codes.

    Args:
        num_quantizers: number of layers `N`.
        codebook_size, dim: per-layer codebook shape.
        quantizer_dropout: fraction of batch items that use a random prefix of the layers during training.
        **vq_kwargs: forwarded to every `VectorQuantizer` (distance, commitment_weight, use_ema, ...).
    """

    def __init__(
        self, num_quantizers: int, codebook_size: int, dim: int, quantizer_dropout: float = 0.0, **vq_kwargs
    ):
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"ResidualVectorQuantizer: num_quantizers must be >= 1, got {num_quantizers}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"ResidualVectorQuantizer: quantizer_dropout must be in [0, 1], got {quantizer_dropout}")
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.dim = dim
        self.quantizer_dropout = quantizer_dropout
        self.layers = nn.ModuleList(VectorQuantizer(codebook_size, dim, **vq_kwargs) for _ in range(num_quantizers))

    def _check_num_quantizers(self, n: Optional[int]) -> int:
        n = self.num_quantizers if n is None else n
        if not isinstance(n, int) or not 1 <= n <= self.num_quantizers:
            raise ValueError(f"{type(self).__name__}: num_quantizers must be in [1, {self.num_quantizers}], got {n}")
        return n

    def _layers_per_row(self, z: torch.Tensor, n_q: int) -> Optional[torch.Tensor]:
        """Number of layers each flattened row uses under quantizer dropout, or None when nothing is dropped."""
        if not (self.training and self.quantizer_dropout > 0 and n_q > 1):
            return None
        batch = z.shape[0] if z.ndim > 1 else 1
        n_layers = torch.full((batch,), n_q, device=z.device)
        dropped = torch.randperm(batch, device=z.device)[: int(batch * self.quantizer_dropout)]
        n_layers[dropped] = torch.randint(1, n_q + 1, (dropped.numel(),), device=z.device)
        rows_per_item = z[..., 0].numel() // batch
        return n_layers.repeat_interleave(rows_per_item)

    def forward(self, z: torch.Tensor, num_quantizers: Optional[int] = None) -> QuantizerOutput:
        """Quantize `z` `(..., dim)` with the first `num_quantizers` layers (all by default).

        Returns `indices` of shape `(..., num_quantizers_used)`.
        """
        check_input(z, self.dim, type(self).__name__)
        n_q = self._check_num_quantizers(num_quantizers)
        with fp32_region(z) as x:
            x = x.reshape(-1, self.dim)
            n_layers = self._layers_per_row(z, n_q)
            residual, total = x, torch.zeros_like(x)
            indices, commitments, codebooks = [], [], []
            for i, layer in enumerate(self.layers[:n_q]):
                mask = None if n_layers is None else (n_layers > i).float()
                layer_in, q, idx = layer._lookup(residual)
                commitment, codebook = layer._losses(layer_in, q, mask)
                if layer.use_ema and layer.training:
                    layer._ema_update(layer_in, idx, mask)
                total = total + (q if mask is None else q * mask[:, None]).detach()
                # Detached codes: the next residual keeps an identity gradient to z (it is z minus constants).
                residual = residual - q.detach()
                indices.append(idx)
                commitments.append(commitment)
                codebooks.append(codebook)
            quantized = x + (total - x).detach()  # straight-through estimator
        commitment = sum_losses(*commitments, ref=z) if commitments[0] is not None else None
        codebook = sum_losses(*codebooks, ref=z) if codebooks[0] is not None else None
        return QuantizerOutput(
            quantized=quantized.reshape(z.shape).to(z.dtype),
            indices=torch.stack(indices, dim=-1).reshape(*z.shape[:-1], n_q),
            loss=sum_losses(commitment, codebook, ref=z),
            commitment_loss=commitment,
            codebook_loss=codebook,
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.FloatTensor:
        """Int `(..., n)` with `1 <= n <= num_quantizers` -> float32 `(..., dim)`, the sum of the first n layers."""
        name = f"{type(self).__name__}.indices_to_codes"
        check_indices(indices, self.codebook_size, name)
        if indices.ndim == 0:
            raise ValueError(f"{name}: expected indices of shape (..., n), got a scalar")
        self._check_num_quantizers(indices.shape[-1])
        codes = self.layers[0].indices_to_codes(indices[..., 0])
        for i in range(1, indices.shape[-1]):  # same summation order as forward
            codes = codes + self.layers[i].indices_to_codes(indices[..., i])
        return codes

    def extra_repr(self) -> str:
        return f"num_quantizers={self.num_quantizers}, quantizer_dropout={self.quantizer_dropout}"
