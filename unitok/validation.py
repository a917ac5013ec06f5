"""Input checks shared by every tokenizer: bad input raises a `ValueError` naming what was expected.

The point is to fail at the public API with a sentence a user can act on, never deep inside torch.
"""

import torch


def check_tensor(
    value,
    name: str,
    *,
    ndim: int | None = None,
    floating: bool | None = None,
    integer: bool | None = None,
    size: dict[int, int] | None = None,
    shape_doc: str | None = None,
    finite: bool = True,
    nonempty: bool = True,
) -> torch.Tensor:
    """Validate a tensor argument and return it.

    Args:
        value: the argument.
        name: its name in the public API (used in the error message).
        ndim: required number of dimensions.
        floating / integer: required dtype family.
        size: `{dim: expected_size}` for dimensions with a fixed size (e.g. `{1: 3}` for RGB channels).
        shape_doc: human-readable expected shape, e.g. `"(batch, 3, height, width)"`.
        finite: reject NaN/inf (floating tensors only).
        nonempty: reject a zero-sized batch (dim 0) or any zero-sized dimension.
    """
    expected = f" with shape {shape_doc}" if shape_doc else ""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor{expected}, got {type(value).__name__}.")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimensions{expected}, got shape {tuple(value.shape)}.")
    if floating and not value.is_floating_point():
        raise ValueError(f"`{name}` must be a floating-point tensor, got dtype {value.dtype}.")
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise ValueError(f"`{name}` must be an integer tensor (torch.long), got dtype {value.dtype}.")
    for dim, expected_size in (size or {}).items():
        if value.shape[dim] != expected_size:
            raise ValueError(
                f"`{name}` must have size {expected_size} at dimension {dim}{expected}, got shape {tuple(value.shape)}."
            )
    if nonempty and value.numel() == 0:
        raise ValueError(f"`{name}` is empty (shape {tuple(value.shape)}); expected at least one item{expected}.")
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return value


def check_range(value: torch.Tensor, name: str, low: float, high: float, tolerance: float = 1e-3) -> torch.Tensor:
    """Reject values outside `[low, high]` (with a small tolerance for resampling overshoot)."""
    lo, hi = value.min().item(), value.max().item()
    if lo < low - tolerance or hi > high + tolerance:
        raise ValueError(
            f"`{name}` must lie in [{low}, {high}] (use the model's processor to normalise inputs), "
            f"got values in [{lo:.3g}, {hi:.3g}]."
        )
    return value


def check_codes(codes, name: str, codebook_size: int, *, ndim: int, shape_doc: str,
                max_length: int | None = None) -> torch.Tensor:
    """Validate token ids: integer dtype, shape, `0 <= code < codebook_size`, and at most `max_length` tokens."""
    check_tensor(codes, name, ndim=ndim, integer=True, shape_doc=shape_doc)
    if max_length is not None and codes.shape[-1] > max_length:
        raise ValueError(f"`{name}` has {codes.shape[-1]} tokens per item; this model decodes at most {max_length}.")
    if codes.min() < 0 or codes.max() >= codebook_size:
        raise ValueError(
            f"`{name}` holds ids outside the codebook: expected 0 <= id < {codebook_size}, "
            f"got min {codes.min().item()} and max {codes.max().item()}."
        )
    return codes


__all__ = ["check_tensor", "check_range", "check_codes"]
