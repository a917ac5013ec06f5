"""Motion metrics: PSNR/SSIM of the predicted target frame and of the copy-the-first-frame baseline."""

import math

import pytest
import torch

from unitok.data.items import FramePairItem
from unitok.evaluation.metrics.motion import MotionMetrics, motion_metrics, to_model_range

pytest.importorskip("torchmetrics")


def frames(seed, shape=(3, 32, 32)):
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def reference_psnr(a, b):
    mse = ((a.double() - b.double()) / 255).pow(2).mean().item()
    return 10 * math.log10(1 / mse)


def test_to_model_range():
    x = torch.tensor([[[0, 255], [51, 204]]] * 3, dtype=torch.uint8)
    y = to_model_range(x)
    assert y.shape == (1, 3, 2, 2) and y.dtype == torch.float32
    assert y[0, 0].flatten().tolist() == pytest.approx([-1.0, 1.0, -0.6, 0.6])
    assert torch.equal(to_model_range(y), y)


def test_motion_metrics_values_and_input_spaces():
    first, target = frames(0), frames(1)
    predicted = (target.int() + torch.randint(-8, 9, target.shape, generator=torch.Generator().manual_seed(2)))
    predicted = predicted.clamp(0, 255).to(torch.uint8)
    out = motion_metrics(first, target, predicted)
    assert out["psnr"].item() == pytest.approx(reference_psnr(target, predicted), abs=1e-3)
    assert out["copy_psnr"].item() == pytest.approx(reference_psnr(target, first), abs=1e-3)
    assert out["ssim"].item() > out["copy_ssim"].item()
    as_float = motion_metrics(*(to_model_range(x) for x in (first, target, predicted)))  # [-1, 1] floats agree
    for name in out:
        assert as_float[name].item() == pytest.approx(out[name].item(), abs=1e-4)
    batch = motion_metrics(torch.stack([first, first]), torch.stack([target, target]), torch.stack([target, first]))
    assert batch["psnr"].shape == (2,) and math.isinf(batch["psnr"][0]) and batch["ssim"][0] == pytest.approx(1.0)
    assert batch["psnr"][1] == pytest.approx(batch["copy_psnr"][1])


def test_motion_metrics_report_the_copy_baseline():
    first = torch.zeros(3, 32, 32, dtype=torch.uint8)
    first[:, 8:16, 8:16] = 255
    target = torch.roll(first, 6, dims=2)  # the square moved 6 px right
    item = FramePairItem("square", first, target, delta=3)
    metrics = MotionMetrics()
    good = metrics(item, target.clone())
    assert good["psnr"] == math.inf and good["beats_copy_psnr"] == 1.0 and good["beats_copy_ssim"] == 1.0
    lazy = metrics(item, first.clone())
    assert lazy["psnr"] == pytest.approx(lazy["copy_psnr"]) and lazy["beats_copy_psnr"] == 0.0
    assert lazy["copy_psnr"] == pytest.approx(reference_psnr(target, first), abs=1e-3)
