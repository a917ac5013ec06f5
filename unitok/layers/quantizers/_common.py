"""Pieces shared by every quantizer: the output container, fp32 guard, input checks and code-usage statistics."""

import contextlib
from dataclasses import dataclass
from typing import Optional

import torch
from transformers.utils import ModelOutput


@dataclass
class QuantizerOutput(ModelOutput):
    """Output of every quantizer in `unitok.layers.quantizers`.

    Inputs are channels-last, `z` of shape `(..., dim)`.

    Args:
        quantized (`torch.FloatTensor` of shape `(..., dim)`):
            The quantized vectors, in the dtype of the input. Their forward value is the code; their gradient with
            respect to the input is the straight-through estimator (the rounding / nearest-neighbour step acts as
            the identity in the backward pass).
        indices (`torch.LongTensor` of shape `(...)`, or `(..., num_quantizers)` for residual VQ):
            The code index of each vector.
        loss (`torch.FloatTensor` of shape `()`):
            Total auxiliary loss, already weighted; equals the sum of the non-`None` terms below. A float32 zero
            tensor when the quantizer has no auxiliary loss (FSQ).
        commitment_loss (`torch.FloatTensor` of shape `()`, *optional*):
            Weighted commitment term, pulls the encoder output toward its (detached) code.
        codebook_loss (`torch.FloatTensor` of shape `()`, *optional*):
            Weighted codebook term, pulls the codes toward the (detached) encoder output (VQ without EMA only).
        entropy_loss (`torch.FloatTensor` of shape `()`, *optional*):
            Weighted entropy term (BSQ / LFQ).
    """

    quantized: Optional[torch.FloatTensor] = None
    indices: Optional[torch.LongTensor] = None
    loss: Optional[torch.FloatTensor] = None
    commitment_loss: Optional[torch.FloatTensor] = None
    codebook_loss: Optional[torch.FloatTensor] = None
    entropy_loss: Optional[torch.FloatTensor] = None


@contextlib.contextmanager
def fp32_region(x: torch.Tensor):
    """Yield `x` as float32 with autocast disabled, so quantizer math never runs in bf16/fp16.

    Rounding and argmin over distances are very sensitive to precision (bf16 has 8 mantissa bits), so codes
    would differ between a mixed-precision and a full-precision run. Callers cast their result back with
    `.to(x.dtype)`.
    """
    device_type = x.device.type
    guard = (
        torch.autocast(device_type=device_type, enabled=False)
        if torch.amp.is_autocast_available(device_type)
        else contextlib.nullcontext()
    )
    with guard:
        yield x.float()


def check_input(z: torch.Tensor, dim: int, name: str) -> None:
    """Raise `ValueError` unless `z` is a finite floating tensor of shape `(..., dim)`."""
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(z).__name__}")
    if not z.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point input, got dtype {z.dtype}")
    if z.ndim == 0 or z.shape[-1] != dim:
        raise ValueError(f"{name}: expected last dimension {dim}, got input of shape {tuple(z.shape)}")
    if z.device.type != "meta" and not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name}: input contains NaN or inf")


def check_indices(indices: torch.Tensor, codebook_size: int, name: str) -> None:
    """Raise `ValueError` unless `indices` is an integer tensor with values in `[0, codebook_size)`."""
    if not isinstance(indices, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of indices, got {type(indices).__name__}")
    dtype = indices.dtype
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise ValueError(f"{name}: indices must have an integer dtype, got {dtype}")
    if indices.numel() > 0 and indices.device.type != "meta":
        # Python ints: codebook_size may be 2**63, which does not fit in an int64 tensor.
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= codebook_size:
            raise ValueError(
                f"{name}: indices must lie in the valid range [0, {codebook_size}), got values in [{lo}, {hi}]"
            )


def entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy in nats along `dim`, with 0 * log 0 = 0."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim)


def code_usage(indices: torch.Tensor, codebook_size: int) -> dict:
    """Statistics of how a batch of indices uses a codebook.

    Args:
        indices: integer tensor of any shape, values in `[0, codebook_size)` (for residual VQ pass one layer,
            `indices[..., i]`, otherwise all layers are pooled).
        codebook_size: number of codes.

    Returns:
        dict with `histogram` (float32 counts, shape `(codebook_size,)`), `perplexity` (exp of the entropy of the
        empirical code distribution: `codebook_size` when uniform, 1 when a single code is used) and `usage`
        (fraction of codes used at least once). Both scalars are float32 tensors.
    """
    check_indices(indices, codebook_size, "code_usage")
    if codebook_size > 2**24:
        raise ValueError(f"code_usage: codebook_size {codebook_size} is too large to histogram (max 2**24)")
    histogram = torch.bincount(indices.reshape(-1).long(), minlength=codebook_size).float()
    probs = histogram / histogram.sum().clamp_min(1.0)
    return dict(
        perplexity=entropy(probs).exp(),
        usage=(histogram > 0).float().mean(),
        histogram=histogram,
    )


def zero_loss(ref: torch.Tensor) -> torch.Tensor:
    """A float32 scalar zero on the device of `ref`."""
    return torch.zeros((), dtype=torch.float32, device=ref.device)


def sum_losses(*terms: Optional[torch.Tensor], ref: torch.Tensor) -> torch.Tensor:
    """Sum of the non-`None` loss terms (zero when all are `None`)."""
    present = [t for t in terms if t is not None]
    return sum(present[1:], present[0]) if present else zero_loss(ref)

