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


def make_norm(kind: str | None, dim: int, *, affine: bool = True, eps: float = 1e-6) -> nn.Module:
    """`"layernorm"`, `"rmsnorm"` or None (identity)."""
    if kind is None:
        return nn.Identity()
    if kind == "layernorm":
        return Fp32LayerNorm(dim, eps=eps, elementwise_affine=affine, bias=affine)
    if kind == "rmsnorm":
        return Fp32RMSNorm(dim, eps=eps, elementwise_affine=affine)
    raise ValueError(f"Unknown norm {kind!r}; expected 'layernorm', 'rmsnorm' or None.")


__all__ = ["Fp32LayerNorm", "Fp32RMSNorm", "make_norm"]
