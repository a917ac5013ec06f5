"""Pieces every modality's evaluation shares: options, timing and memory, code statistics, bit rates."""

import math
import resource
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

from ..layers.quantizers._common import code_usage


@dataclass
class EvalOptions:
    """Settings of one evaluation run (saved into metrics.json)."""

    batch_size: int = 8
    num_inference_steps: int | None = None  # model default when None
    seed: int = 0
    token_budgets: list[int] | None = None  # prefix lengths for 1D nested tokenizers; None → model default
    max_items: int | None = None
    device: str = "cpu"
    fd_inception_weights: str | None = None  # standard FID when given, FD-EffNetLite0 otherwise
    compute_fd: bool = True
    grid_items: int = 8
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class Stopwatch:
    """Accumulates wall time and item counts of repeated calls (synchronising CUDA around them)."""

    def __init__(self):
        self.seconds, self.items = 0.0, 0

    @contextmanager
    def time(self, items: int, device: str = "cpu"):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        yield
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        self.items += items

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds else float("nan")


def peak_memory_mb(device: str) -> dict:
    """Peak memory so far: CUDA allocator peak on GPU, the process's peak resident set size on CPU."""
    if device.startswith("cuda"):
        return {"peak_cuda_allocated_MB": torch.cuda.max_memory_allocated() / 2**20}
    return {"peak_process_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def codebook_statistics(codes: torch.Tensor, codebook_size: int) -> dict:
    """Usage over the evaluated set: fraction of codes used, perplexity exp(H), entropy in bits, and the
    histogram (kept out of metrics.json, used for the figure)."""
    stats = code_usage(codes.reshape(-1).cpu(), codebook_size)
    perplexity = float(stats["perplexity"])
    return {"codebook_size": codebook_size, "used_codes": int((stats["histogram"] > 0).sum()),
            "usage": float(stats["usage"]), "perplexity": perplexity, "entropy_bits": math.log2(perplexity),
            "max_entropy_bits": math.log2(codebook_size), "num_tokens": int(codes.numel()),
            "histogram": stats["histogram"]}


def keep_valid(items: list, validate) -> list:
    """Items for which `validate(item)` returns no reason; the others are skipped with a warning naming them."""
    kept = []
    for item in items:
        reason = validate(item)
        if reason:
            warnings.warn(f"skipping {item.name}: {reason}", stacklevel=3)
        else:
            kept.append(item)
    return kept


def bits_per_token(codebook_size: int) -> float:
    return math.log2(codebook_size)


def mean_std(values: list[float]) -> dict:
    tensor = torch.tensor([v for v in values if math.isfinite(v)], dtype=torch.float64)
    if len(tensor) == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(tensor.std()) if len(tensor) > 1 else 0.0
    return {"mean": float(tensor.mean()), "std": std, "n": len(tensor)}


__all__ = ["EvalOptions", "Stopwatch", "peak_memory_mb", "codebook_statistics", "bits_per_token", "mean_std",
           "keep_valid"]
