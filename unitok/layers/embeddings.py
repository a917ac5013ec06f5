"""Position and timestep embeddings (fixed tables are recomputed by `reset_buffers`, see modeling_base)."""

import math

import torch
from torch import nn


def sincos_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed sin-cos embedding of 1D positions: `[sin(p·ω_k), cos(p·ω_k)]`, ω_k = temperature^(-k/(dim/2))."""
    if dim % 2:
        raise ValueError(f"sin-cos embeddings need an even dim, got {dim}.")
    omega = 1.0 / temperature ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.to(torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """MAE-style 2D sin-cos table `(height*width, dim)`, row-major; first half encodes y (rows), second half x."""
    if dim % 4:
        raise ValueError(f"2D sin-cos embeddings need dim divisible by 4, got {dim}.")
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.cat([sincos_1d(ys.flatten(), dim // 2, temperature), sincos_1d(xs.flatten(), dim // 2, temperature)], 1)


class SinCos2DPositionEmbedding(nn.Module):
    """Adds a fixed 2D sin-cos table to a `(batch, height*width, dim)` grid of tokens."""

    def __init__(self, height: int, width: int, dim: int):
        super().__init__()
        self.height, self.width, self.dim = height, width, dim
        self.register_buffer("table", sincos_2d(height, width, dim), persistent=False)

    def reset_buffers(self) -> None:
        self.table.copy_(sincos_2d(self.height, self.width, self.dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.table.to(tokens.dtype)


def timestep_frequencies(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """DiT/ADM sinusoidal timestep features `[cos(t·f), sin(t·f)]`, f_k = max_period^(-k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepEmbedder(nn.Module):
    """Timestep -> sinusoidal features -> MLP (Linear, SiLU, Linear), as in DiT.

    `time_scale` maps the caller's time (e.g. t in [0, 1]) to the scale the frequencies were designed for (1000).
    """

    def __init__(self, dim: int, frequency_dim: int = 256, max_period: float = 10000.0, time_scale: float = 1000.0):
        super().__init__()
        self.frequency_dim, self.max_period, self.time_scale = frequency_dim, max_period, time_scale
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        features = timestep_frequencies(t * self.time_scale, self.frequency_dim, self.max_period)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


def rope_frequencies(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotary angles `(len(positions), head_dim // 2)` for the standard (LLaMA) RoPE."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    return (positions.to(torch.float64)[:, None] * inv_freq[None]).float()


class RotaryEmbedding(nn.Module):
    """Precomputed cos/sin tables for rotary position embeddings (LLaMA's half-split rotation)."""

    def __init__(self, head_dim: int, max_positions: int, theta: float = 10000.0):
        super().__init__()
        self.head_dim, self.max_positions, self.theta = head_dim, max_positions, theta
        cos, sin = self._tables()
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        angles = rope_frequencies(torch.arange(self.max_positions), self.head_dim, self.theta)
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()

    def reset_buffers(self) -> None:
        cos, sin = self._tables()
        self.cos.copy_(cos)
        self.sin.copy_(sin)

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        if length > self.max_positions:
            raise ValueError(f"Sequence of {length} positions exceeds the RoPE table ({self.max_positions}).")
        return self.cos[:length], self.sin[:length]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `(batch, heads, length, head_dim)` by the tables `(length, head_dim)` (half-split convention)."""
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


__all__ = [
    "sincos_1d", "sincos_2d", "SinCos2DPositionEmbedding", "timestep_frequencies", "TimestepEmbedder",
    "rope_frequencies", "RotaryEmbedding", "apply_rotary",
]
