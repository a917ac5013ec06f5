"""Image metrics against independent computations (scikit-image, pytorch-msssim, numpy/scipy closed forms)."""

import math

import numpy as np
import pytest
import torch

from unitok.evaluation.metrics.image import (
    STLPIPS, EffNetLite0Features, InceptionFeatures, frechet_distance, ms_ssim, psnr, ssim,
)


def pair(size=64, noise=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, size // 8, size // 8, generator=generator),
                                             size=(size, size), mode="bicubic", align_corners=False)
    reference = (smooth * 2 - 1).clamp(-1, 1)
    estimate = (reference + noise * torch.randn(reference.shape, generator=generator)).clamp(-1, 1)
    return reference, estimate


def to_numpy01(x):
    return ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).double().numpy()


def test_psnr_matches_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    reference, estimate = pair()
    values = psnr(reference, estimate)
    expected = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(to_numpy01(reference), to_numpy01(estimate))]
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-4)
    assert math.isinf(psnr(reference, reference)[0].item())


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    reference, estimate = pair()
    values = ssim(reference, estimate)
    expected = [structural_similarity(a, b, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False) for a, b in zip(to_numpy01(reference),
                                                                                   to_numpy01(estimate))]
    np.testing.assert_allclose(values.numpy(), expected, atol=1e-4)
    torch.testing.assert_close(ssim(reference, reference), torch.ones(2))


def reference_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang, Simoncelli & Bovik (2003) written out with scipy: per scale a valid 11×11 Gaussian (σ 1.5) SSIM,
    contrast-structure at scales 1–4 and full SSIM at scale 5, 2×2 average pooling between scales, standard
    weights; channels averaged per scale. x, y: HWC in [0, 1]."""
    from scipy.signal import convolve2d

    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    window = np.outer(g / g.sum(), g / g.sum())
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    c1, c2 = 0.01**2, 0.03**2

    def filt(a):
        return convolve2d(a, window, mode="valid")

    values = []
    for scale in range(5):
        cs_c, ssim_c = [], []
        for c in range(3):
            a, b = x[..., c], y[..., c]
            mu_a, mu_b = filt(a), filt(b)
            var_a, var_b = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2
            cov = filt(a * b) - mu_a * mu_b
            cs = (2 * cov + c2) / (var_a + var_b + c2)
            cs_c.append(cs.mean())
            ssim_c.append((((2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)) * cs).mean())
        values.append(max(np.mean(cs_c), 0.0) if scale < 4 else max(np.mean(ssim_c), 0.0))
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        y = y[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return float(np.prod(np.array(values) ** weights))


def test_ms_ssim_matches_the_definition_and_needs_161_px():
    reference, estimate = pair(size=192)
    values = ms_ssim(reference, estimate)
    expected = [reference_ms_ssim(a, b) for a, b in zip(to_numpy01(reference), to_numpy01(estimate))]
    np.testing.assert_allclose(values.numpy(), expected, atol=2e-3)
    with pytest.raises(ValueError, match="161"):
        ms_ssim(*pair(size=64))


def test_metric_inputs_are_checked():
    reference, estimate = pair()
    with pytest.raises(ValueError):
        psnr(reference, estimate[:, :1])
    with pytest.raises(ValueError):
        ssim(reference[0], estimate[0])


def test_st_lpips_orders_distortions():
    metric = STLPIPS()
    reference, small = pair(noise=0.05)
    _, large = pair(noise=0.3)
    zero = metric(reference, reference)
    assert torch.all(zero.abs() < 1e-6)
    assert torch.all(metric(reference, small) < metric(reference, large))


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    """For diagonal covariances FD = ‖μa − μb‖² + Σ (σa + σb − 2 √(σa σb)); estimated from samples it converges."""
    rng = np.random.default_rng(0)
    mu_a, mu_b = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 2.0, 0.5]), np.array([0.5, 2.0, 1.5])
    a = rng.normal(mu_a, np.sqrt(var_a), size=(200_000, 3))
    b = rng.normal(mu_b, np.sqrt(var_b), size=(200_000, 3))
    expected = ((mu_a - mu_b) ** 2).sum() + (var_a + var_b - 2 * np.sqrt(var_a * var_b)).sum()
    assert abs(frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) - expected) < 0.02
    assert abs(frechet_distance(torch.from_numpy(a), torch.from_numpy(a))) < 1e-6
    with pytest.raises(ValueError):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))


def test_frechet_distance_matches_torchmetrics_with_a_tiny_feature_extractor():
    """The FD path with a pluggable (tiny) extractor equals torchmetrics' FID given the same extractor."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    class TinyFeatures(torch.nn.Module):
        num_features = 6

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)

        def forward(self, x):
            return self.conv(x.float() / 255).mean(dim=(2, 3))

    torch.manual_seed(0)
    extractor = TinyFeatures()
    real, fake = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 200, (64, 3, 32, 32),
                                                                                          dtype=torch.uint8)
    metric = FrechetInceptionDistance(feature=extractor)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.no_grad():
        ours = frechet_distance(extractor(real), extractor(fake))
    assert abs(ours - metric.compute().item()) < 1e-3 * max(1.0, ours)


def test_effnet_features_are_a_real_imagenet_classifier():
    from unitok.data.images import bundled_images

    features = EffNetLite0Features()
    cat = next(item for item in bundled_images() if item.name == "chelsea")
    x = cat.image[None].float() / 127.5 - 1
    logits = features.net(torch.nn.functional.interpolate((x + 1) / 2, size=(224, 224), mode="bilinear",
                                                          antialias=True) * 2 - 1)
    assert 281 <= logits.argmax().item() <= 287  # ImageNet's domestic-cat classes
    assert features(x).shape == (1, 1280)


def test_inception_path_loads_a_user_weights_file(tmp_path):
    """Standard FID runs from a user-supplied weights file (random weights here: this tests the path, not the
    numbers, since the real file cannot be downloaded)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with pytest.raises(ValueError, match="not found"):
        InceptionFeatures(str(tmp_path / "missing.pth"))

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):  # keep the random init
            return None

    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    random_weights = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)).state_dict()
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(random_weights, path)
    features = InceptionFeatures(str(path))
    out = features(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert out.shape == (3, 2048) and torch.isfinite(out).all()
    assert frechet_distance(out, out) < 1e-3
