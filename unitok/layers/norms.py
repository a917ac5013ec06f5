"""Normalisation layers computed in float32 (so bf16 training keeps stable statistics)."""

import torch
import torch.nn.functional as F
from torch import nn


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm whose statistics are computed in float32, output cast back to the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class Fp32RMSNorm(nn.RMSNorm):
    """RMSNorm computed in float32, output cast back to the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        return F.rms_norm(x.float(), self.normalized_shape, weight, self.eps).to(x.dtype)


class AdaptiveRMSNorm(nn.Module):
    """Parameter-free RMSNorm whose per-channel gain is predicted from a condition (scale-only adaLN; TaDiCodec's
    LLaMA-NAR blocks): `rms_norm(x) * to_weight(cond)`. The owning model's `_init_weights` initialises `to_weight`
    (weight 0 / bias 1 would start as a plain RMSNorm; TaDiCodec's released init is N(0, 0.02) / 0).

    Args:
        dim: normalised width. cond_dim: width of the condition, `(batch, cond_dim)` or `(batch, length, cond_dim)`.
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.to_weight = nn.Linear(cond_dim, dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        weight = self.to_weight(cond)
        if weight.ndim == 2:
            weight = weight.unsqueeze(1)
        return (weight.float() * normed).to(x.dtype)


def make_norm(kind: str | None, dim: int, *, affine: bool = True, eps: float = 1e-6) -> nn.Module:
    """`"layernorm"`, `"rmsnorm"` or None (identity)."""
    if kind is None:
        return nn.Identity()
    if kind == "layernorm":
        return Fp32LayerNorm(dim, eps=eps, elementwise_affine=affine, bias=affine)
    if kind == "rmsnorm":
        return Fp32RMSNorm(dim, eps=eps, elementwise_affine=affine)
    raise ValueError(f"Unknown norm {kind!r}; expected 'layernorm', 'rmsnorm' or None.")


__all__ = ["Fp32LayerNorm", "Fp32RMSNorm", "AdaptiveRMSNorm", "make_norm"]
