"""Pre-norm transformer blocks with SwiGLU MLPs, optionally adaLN-zero conditioned (DiT).

One block class serves plain encoders and timestep-conditioned flow decoders. adaLN can modulate different token
groups with different parameters (FlexTok modulates noisy patches and register tokens separately): the modulation
Linear outputs `groups × 6 × dim` values and `group_ids` says which set each position uses.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import Attention
from .norms import make_norm


def swiglu_hidden_dim(dim: int, mlp_ratio: float = 4.0, multiple_of: int = 1) -> int:
    """LLaMA's SwiGLU width: 2/3 of `mlp_ratio · dim`, rounded up to a multiple of `multiple_of`."""
    hidden = int(2 * mlp_ratio * dim / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class SwiGLU(nn.Module):
    """`fc2(silu(fc1 x) * fc3 x)` without biases (names as in FlexTok)."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.fc3 = nn.Linear(dim, hidden_dim, bias=bias)
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)) * self.fc3(x))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class TransformerBlock(GradientCheckpointingLayer):
    """Pre-norm block: `x + attn(norm1 x)`, `x + mlp(norm2 x)`, with optional adaLN-zero modulation.

    Args:
        dim, num_heads: width and heads. mlp_hidden_dim: SwiGLU width.
        norm: "layernorm" / "rmsnorm"; norm_affine: learnable norm weights (False with adaLN or FlexTok).
        qk_norm, qk_norm_affine, attn_scale: see `Attention`.
        adaln_cond_dim: if set, the block is conditioned: `adaLN_modulation = SiLU → Linear(cond, groups·6·dim)`
            giving gate/shift/scale for attention and MLP (FlexTok's order, see `modulation`), zero-initialised
            by the model.
        adaln_groups: number of independently modulated token groups.
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden_dim: int, *, norm: str = "layernorm",
                 norm_affine: bool = False, norm_eps: float = 1e-6, qk_norm: str | None = None,
                 qk_norm_affine: bool = False, attn_scale: float | None = None, adaln_cond_dim: int | None = None,
                 adaln_groups: int = 1):
        super().__init__()
        self.dim, self.adaln_groups = dim, adaln_groups
        self.norm1 = make_norm(norm, dim, affine=norm_affine, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, qk_norm_affine=qk_norm_affine, scale=attn_scale,
                              norm_eps=norm_eps)
        self.norm2 = make_norm(norm, dim, affine=norm_affine, eps=norm_eps)
        self.mlp = SwiGLU(dim, mlp_hidden_dim)
        self.adaLN_modulation = None
        if adaln_cond_dim is not None:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(adaln_cond_dim, adaln_groups * 6 * dim))

    def modulation(self, cond: torch.Tensor, group_ids: torch.Tensor | None, length: int) -> list[torch.Tensor]:
        """Per-position `[gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp]`, each (B, L, dim).

        This is FlexTok's chunk order (DiT's is shift, scale, gate): converted checkpoints load unchanged."""
        params = self.adaLN_modulation(cond).view(cond.shape[0], self.adaln_groups, 6, self.dim)
        if group_ids is None:
            group_ids = torch.zeros(length, dtype=torch.long, device=cond.device)
        per_position = params[:, group_ids]  # (B, L, 6, dim)
        return list(per_position.unbind(dim=2))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, cond: torch.Tensor | None = None,
                group_ids: torch.Tensor | None = None, rotary=None) -> torch.Tensor:
        if self.adaLN_modulation is None:
            x = x + self.attn(self.norm1(x), attn_mask, rotary)
            return x + self.mlp(self.norm2(x))
        gate1, gate2, shift1, scale1, shift2, scale2 = self.modulation(cond, group_ids, x.shape[1])
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), attn_mask, rotary)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


__all__ = ["TransformerBlock", "SwiGLU", "swiglu_hidden_dim", "modulate"]
