"""Multi-head attention on `torch.nn.functional.scaled_dot_product_attention`, and the masks tokenizers need.

Masks are boolean, `True` = may attend, shaped `(length_q, length_k)` or `(batch, 1, length_q, length_k)`; they are
materialised (no flex-attention) so the same code runs on CPU and GPU.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import apply_rotary
from .norms import make_norm


def causal_mask(length: int, device=None) -> torch.Tensor:
    """Each position attends to itself and earlier positions."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def prefix_mask(prefix_length: int, length: int, device=None) -> torch.Tensor:
    """A bidirectional prefix (e.g. text or a prompt) followed by causal positions that also see the whole prefix."""
    mask = causal_mask(length, device)
    mask[:, :prefix_length] = True
    mask[:prefix_length, prefix_length:] = False
    return mask


def block_causal_mask(block_sizes: list[int], device=None) -> torch.Tensor:
    """Blocks in sequence: full attention inside a block and to every earlier block, none to later blocks."""
    block_ids = torch.repeat_interleave(torch.arange(len(block_sizes), device=device),
                                        torch.tensor(block_sizes, device=device))
    return block_ids[:, None] >= block_ids[None, :]


def causal_last_mask(num_first: int, num_last: int, device=None) -> torch.Tensor:
    """FlexTok's encoder mask over `[patches | registers]`.

    Patches attend to all patches (and no register); registers attend to all patches and causally among
    themselves, so register i depends only on registers <= i, which is what makes any prefix of tokens meaningful.
    """
    length = num_first + num_last
    mask = torch.zeros(length, length, dtype=torch.bool, device=device)
    mask[:, :num_first] = True
    mask[num_first:, num_first:] = causal_mask(num_last, device)
    return mask


def key_padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """`(batch, 1, 1, length)` mask that hides padded keys beyond each item's length."""
    positions = torch.arange(length, device=lengths.device)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]


class Attention(nn.Module):
    """Multi-head self-attention with optional QK-norm and RoPE.

    Parameter names follow FlexTok's (`wq`, `wk`, `wv`, `proj`) so converted checkpoints load with a near-identity
    mapping; other models' converters rename to these.

    Args:
        dim: model width. num_heads: heads; head_dim = dim // num_heads.
        qk_norm: None, "layernorm" or "rmsnorm", applied per head on queries and keys.
        qk_norm_affine: whether the QK norms carry learnable weights.
        scale: softmax scale (default 1/sqrt(head_dim)).
        bias: bias on the q/k/v projections; proj_bias: on the output projection.
    """

    def __init__(self, dim: int, num_heads: int, *, qk_norm: str | None = None, qk_norm_affine: bool = False,
                 scale: float | None = None, bias: bool = False, proj_bias: bool = False, norm_eps: float = 1e-6):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads}).")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = scale
        self.wq = nn.Linear(dim, dim, bias=bias)
        self.wk = nn.Linear(dim, dim, bias=bias)
        self.wv = nn.Linear(dim, dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.q_norm = make_norm(qk_norm, self.head_dim, affine=qk_norm_affine, eps=norm_eps)
        self.k_norm = make_norm(qk_norm, self.head_dim, affine=qk_norm_affine, eps=norm_eps)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (w(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
                   for w in (self.wq, self.wk, self.wv))
        q, k = self.q_norm(q), self.k_norm(k)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


__all__ = ["Attention", "causal_mask", "prefix_mask", "block_causal_mask", "causal_last_mask", "key_padding_mask"]
