"""Metrics of a latent-motion tokenizer (Moto): how well it predicts frame t+Δ from frame t and its motion tokens.

Moto reports no tokenizer-level number, so the zoo scores the predicted target frame with PSNR and SSIM
(`unitok.evaluation.metrics.image`: PSNR on [0, 1]; SSIM with Gaussian window 11, σ 1.5) and scores the
"copy the first frame" baseline the same way: a motion tokenizer is only useful where it beats that baseline.

Frames are `(3, H, W)` or `(batch, 3, H, W)`, either uint8 in [0, 255] or float in [-1, 1] (the model-input space);
uint8 is mapped to [-1, 1] as x / 127.5 − 1. SSIM needs pytorch-msssim (extra `eval-image`).
"""

import torch

from ...data.items import FramePairItem
from .image import psnr, ssim


def to_model_range(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1]; float input is taken to be in [-1, 1] already. Adds a batch axis to 3-D input."""
    frames = frames.unsqueeze(0) if frames.ndim == 3 else frames
    return frames.float() / 127.5 - 1 if frames.dtype == torch.uint8 else frames.float()


def motion_metrics(first: torch.Tensor, target: torch.Tensor, predicted: torch.Tensor) -> dict:
    """Per-image tensors `(batch,)`: "psnr", "ssim" of predicted vs target; "copy_psnr", "copy_ssim" of first vs
    target (identical frames give PSNR +inf)."""
    first, target, predicted = (to_model_range(x) for x in (first, target, predicted))
    return {"psnr": psnr(target, predicted), "ssim": ssim(target, predicted),
            "copy_psnr": psnr(target, first), "copy_ssim": ssim(target, first)}


class MotionMetrics:
    """Metrics of one `FramePairItem` and the tokenizer's predicted target frame, as floats, plus
    "beats_copy_psnr" / "beats_copy_ssim" (1.0 where the prediction beats copying the first frame)."""

    def __call__(self, item: FramePairItem, predicted: torch.Tensor) -> dict:
        out = {name: value.mean().item() for name, value in motion_metrics(item.first, item.target, predicted).items()}
        out["beats_copy_psnr"] = float(out["psnr"] > out["copy_psnr"])
        out["beats_copy_ssim"] = float(out["ssim"] > out["copy_ssim"])
        return out


__all__ = ["MotionMetrics", "motion_metrics", "to_model_range"]
