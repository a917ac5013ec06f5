"""Nested dropout for ordered 1D tokens (Rippel et al. 2014; FlexTok, One-D-Piece).

Training keeps only the first k tokens of each item (k random per item) and replaces the rest with a learned mask
token, so the first tokens must carry the coarse content and any prefix decodes. At inference the caller passes k.
"""

import torch
from torch import nn


def sample_keep_counts(batch_size: int, max_tokens: int, mode: str = "uniform", *, device=None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """How many leading tokens each item keeps, `(batch,)` in [1, max_tokens].

    Modes: `"uniform"` k ~ U{1..N}; `"pow2"` k ~ U{1, 2, 4, .., N}; `"uniform_pow2"` k ~ U{1..N} rounded up to a
    power of two (N must be a power of two for the last two).
    """
    if mode == "uniform":
        return torch.randint(1, max_tokens + 1, (batch_size,), device=device, generator=generator)
    if mode in ("pow2", "uniform_pow2"):
        if max_tokens & (max_tokens - 1):
            raise ValueError(f"nested dropout mode {mode!r} needs a power-of-two token count, got {max_tokens}.")
        if mode == "pow2":
            exponents = torch.randint(0, max_tokens.bit_length(), (batch_size,), device=device, generator=generator)
            return 2 ** exponents
        k = torch.randint(1, max_tokens + 1, (batch_size,), device=device, generator=generator)
        return 2 ** torch.ceil(torch.log2(k.float())).long()
    raise ValueError(f"Unknown nested dropout mode {mode!r}; expected 'uniform', 'pow2' or 'uniform_pow2'.")


class NestedDropout(nn.Module):
    """Replaces tokens at positions >= keep_count with a learned `mask_token` `(dim,)`."""

    def __init__(self, dim: int):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(dim))

    def forward(self, tokens: torch.Tensor, keep_counts: torch.Tensor | None) -> torch.Tensor:
        """tokens `(batch, num_tokens, dim)`; keep_counts `(batch,)` or None (keep everything)."""
        if keep_counts is None:
            return tokens
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        dropped = positions[None, :] >= keep_counts.to(tokens.device)[:, None]
        return torch.where(dropped[..., None], self.mask_token.to(tokens.dtype), tokens)


__all__ = ["sample_keep_counts", "NestedDropout"]
