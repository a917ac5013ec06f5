"""Training losses: adversarial losses, PatchGAN, adaptive weight, GANLoss, LeCam, R1, perceptual loss, REPA."""

import math
import sys

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from unitok.evaluation.extras import MissingExtraError
from unitok.training.losses import (
    GANLoss,
    LeCamEMA,
    PatchGANDiscriminator,
    PatchGANDiscriminator1d,
    PerceptualLoss,
    REPAAlignment,
    adaptive_generator_weight,
    frozen,
    hinge_d_loss,
    hinge_g_loss,
    lecam_regularizer,
    r1_penalty,
    vanilla_d_loss,
    vanilla_g_loss,
)


def smooth_images(batch: int, size: int) -> torch.Tensor:
    """Low-frequency sinusoid images in [-1, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    freqs = torch.rand(batch, 3, 2, 1, 1) * 2 + 0.5
    phase = torch.rand(batch, 3, 1, 1) * 2 * math.pi
    return torch.sin(2 * math.pi * (freqs[:, :, 0] * x + freqs[:, :, 1] * y) + phase)


# ---------------------------------------------------------------------------------------------- adversarial losses
def test_hinge_losses_match_hand_computed_values():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 1.5])
    # relu(1 - real) = [0, .5, 2] -> mean 2.5/3; relu(1 + fake) = [0, 1, 2.5] -> mean 3.5/3; ½ (sum) = 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(0.5 / 3)
    # a confident discriminator pays nothing
    assert hinge_d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0)).item() == 0.0


def test_vanilla_losses_match_hand_computed_values_and_bce():
    real = torch.tensor([0.0, math.log(3.0)])
    fake = torch.tensor([0.0, -math.log(3.0)])
    # softplus(0) = log 2, softplus(-log 3) = log(4/3): both means are (log 2 + log 4/3) / 2
    expected_d = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert vanilla_d_loss(real, fake).item() == pytest.approx(expected_d)
    bce = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones(2))
                 + F.binary_cross_entropy_with_logits(fake, torch.zeros(2)))
    assert vanilla_d_loss(real, fake).item() == pytest.approx(bce.item())
    # softplus(0) = log 2, softplus(log 3) = log 4
    assert vanilla_g_loss(fake).item() == pytest.approx((math.log(2.0) + math.log(4.0)) / 2)


# ---------------------------------------------------------------------------------------------- PatchGAN
@pytest.mark.parametrize("size, side", [(64, 6), (256, 30)])
def test_patchgan_output_shape_and_patch_count(size, side):
    disc = PatchGANDiscriminator()
    assert disc.receptive_field == 70
    assert disc.output_size(size) == side
    with torch.no_grad():
        logits = disc(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 1, side, side)
    assert logits[0].numel() == side * side  # patches judged per image


def test_patchgan_empirical_receptive_field_and_init():
    disc = PatchGANDiscriminator(base_channels=8, norm="batch").eval()  # eval BN: no coupling between positions
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    logits = disc(x)
    centre = logits.shape[-1] // 2
    logits[0, 0, centre, centre].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == disc.receptive_field == 70
    assert cols.max() - cols.min() + 1 == 70

    big = PatchGANDiscriminator()
    convs = [m.weight for m in big.modules() if isinstance(m, nn.Conv2d)]
    norms = [m.weight for m in big.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == 5 and len(norms) == 3
    conv_w = torch.cat([w.flatten() for w in convs])
    norm_w = torch.cat([w.flatten() for w in norms])
    assert conv_w.mean().abs() < 1e-3 and conv_w.std().item() == pytest.approx(0.02, rel=0.05)
    assert norm_w.mean().item() == pytest.approx(1.0, abs=0.01) and norm_w.std().item() == pytest.approx(0.02, rel=0.2)


@pytest.mark.parametrize("norm", ["group", "none"])
def test_patchgan_norm_variants_and_1d(norm):
    disc = PatchGANDiscriminator(base_channels=16, num_layers=2, norm=norm)
    assert disc(torch.randn(2, 3, 32, 32)).shape == (2, 1, disc.output_size(32), disc.output_size(32))
    audio = PatchGANDiscriminator1d(in_channels=1, base_channels=8, norm=norm)
    assert audio(torch.randn(2, 1, 1024)).shape == (2, 1, audio.output_size(1024)) == (2, 1, 126)
    with pytest.raises(ValueError, match="norm"):
        PatchGANDiscriminator(norm="instance")


# ---------------------------------------------------------------------------------------------- adaptive weight
def test_adaptive_weight_equals_hand_computed_gradient_norm_ratio():
    weight = torch.randn(3, 2, requires_grad=True)  # tiny linear "generator": x̂ = W z (W is its last layer)
    z, x, c = torch.randn(2), torch.randn(3), torch.randn(3)
    out = weight @ z
    rec = ((out - x) ** 2).sum()
    gan = (c * out).sum()
    # d rec / dW = 2 (W z - x) zᵀ ; d gan / dW = c zᵀ
    with torch.no_grad():
        expected = torch.outer(2 * (weight @ z - x), z).norm() / (torch.outer(c, z).norm() + 1e-4)
    lam = adaptive_generator_weight(rec, gan, weight)
    assert lam.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not lam.requires_grad and weight.grad is None
    (rec + lam * gan).backward()  # the graph was retained
    assert weight.grad is not None
    # clamped
    out = weight @ z
    assert adaptive_generator_weight(((out - x) ** 2).sum(), 1e-9 * out.sum(), weight, max_weight=5.0).item() == 5.0


# ---------------------------------------------------------------------------------------------- GANLoss
def _tiny_setup(**kwargs):
    disc = PatchGANDiscriminator(base_channels=16, num_layers=2)
    generator = nn.Conv2d(3, 3, 3, padding=1)
    return GANLoss(disc, **kwargs), generator


def test_ganloss_generator_term_is_zero_before_disc_start():
    gan, generator = _tiny_setup(disc_start=100)
    calls = []
    gan.discriminator.register_forward_hook(lambda *args: calls.append(1))
    real = smooth_images(4, 32)
    recon = generator(real)
    rec = (recon - real).abs().mean()
    loss, logs = gan.generator_loss(recon, rec, generator.weight, step=99)
    assert loss.item() == 0.0 and logs["gan/active"].item() == 0.0 and not calls
    d_loss, _ = gan.discriminator_loss(real, recon, step=99)
    assert d_loss.item() == 0.0 and d_loss.requires_grad  # graph kept so backward / DDP behave the same
    loss, _ = gan.generator_loss(recon, rec, generator.weight, step=100)
    assert loss.item() != 0.0 and calls


def test_ganloss_discriminator_step_lowers_loss_and_never_reaches_generator():
    gan, generator = _tiny_setup(loss_type="hinge")
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.9))
    real = smooth_images(8, 32)
    fake_input = torch.rand(8, 3, 32, 32) * 2 - 1
    fake = generator(fake_input)  # attached to the generator's graph

    before, logs = gan.discriminator_loss(real, fake, step=0)
    before.backward()
    assert generator.weight.grad is None  # the reconstruction was detached
    assert all(p.grad is not None for p in gan.discriminator.parameters())
    opt_d.step()
    opt_d.zero_grad()
    after, _ = gan.discriminator_loss(real, fake, step=0)
    assert after.item() < before.item()
    assert set(logs) >= {"gan/d_loss", "gan/logits_real", "gan/logits_fake"}


@pytest.mark.parametrize("loss_type", ["hinge", "vanilla"])
def test_ganloss_generator_step_leaves_discriminator_grads_none(loss_type):
    gan, generator = _tiny_setup(loss_type=loss_type, disc_weight=0.5)
    real = smooth_images(4, 32)
    recon = generator(real)
    rec = (recon - real).abs().mean()
    loss, logs = gan.generator_loss(recon, rec, generator.weight, step=0)
    (rec + loss).backward()
    assert all(p.grad is None for p in gan.discriminator.parameters())
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # flags restored
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0
    assert logs["gan/d_weight"].item() > 0
    expected = 0.5 * logs["gan/d_weight"] * logs["gan/g_loss"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ganloss_without_adaptive_weight_and_under_no_grad():
    gan, generator = _tiny_setup(adaptive_weight=False, disc_weight=0.1)
    real = smooth_images(2, 32)
    recon = generator(real)
    loss, logs = gan.generator_loss(recon, (recon - real).abs().mean(), None, step=0)
    assert logs["gan/d_weight"].item() == 1.0 and loss.item() == pytest.approx(0.1 * logs["gan/g_loss"].item())
    gan = GANLoss(gan.discriminator, adaptive_weight=True)
    with torch.no_grad():  # validation: λ falls back to 1
        loss, logs = gan.generator_loss(generator(real), torch.tensor(0.3), generator.weight, step=0)
    assert logs["gan/d_weight"].item() == 1.0


def test_frozen_restores_flags():
    module = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    module[1].bias.requires_grad_(False)
    with frozen(module):
        assert not any(p.requires_grad for p in module.parameters())
    assert [p.requires_grad for p in module.parameters()] == [True, True, True, False]


def test_ganloss_with_ddp_two_optimizers(tmp_path):
    """One-process gloo DDP: two iterations of the G / D steps with DDP-wrapped G and D run without reducer errors
    (the generator step must not engage D's DDP, the D step must not reach G)."""
    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        gan, generator = _tiny_setup(lecam_weight=0.01, r1_weight=1.0)
        generator = nn.parallel.DistributedDataParallel(generator)
        gan.discriminator = nn.parallel.DistributedDataParallel(gan.discriminator)
        opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3)
        real = smooth_images(4, 32)
        for step in range(2):
            recon = generator(real)
            rec = (recon - real).abs().mean()
            g_term, _ = gan.generator_loss(recon, rec, generator.module.weight, step)
            (rec + g_term).backward()
            assert all(p.grad is None for p in gan.discriminator.parameters())
            opt_g.step()
            opt_g.zero_grad(set_to_none=True)
            d_loss, logs = gan.discriminator_loss(real, recon, step)
            d_loss.backward()
            assert all(p.grad is None for p in generator.parameters())
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
        assert {"gan/lecam", "gan/r1"} <= set(logs)
        assert gan.lecam.initialized.item()
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- LeCam and R1
def test_lecam_zero_at_the_anchors_and_hand_value():
    ema_real, ema_fake = torch.tensor(0.7), torch.tensor(-0.4)
    real_logits = torch.full((2, 1, 3, 3), -0.4)  # real logits sitting on the fake anchor
    fake_logits = torch.full((2, 1, 3, 3), 0.7)  # and fake logits on the real anchor
    assert lecam_regularizer(real_logits, fake_logits, ema_real, ema_fake).item() == 0.0
    same = torch.full((4,), 0.2)
    assert lecam_regularizer(same, same, 0.2, 0.2).item() == 0.0
    real, fake = torch.tensor([1.0, 2.0]), torch.tensor([0.0, -1.0])
    # ((1 + .4)² + (2 + .4)²)/2 + ((0 - .7)² + (-1 - .7)²)/2
    expected = (1.4**2 + 2.4**2) / 2 + (0.7**2 + 1.7**2) / 2
    assert lecam_regularizer(real, fake, ema_real, ema_fake).item() == pytest.approx(expected)


def test_lecam_ema_tracks_means():
    ema = LeCamEMA(decay=0.9)
    ema.update(torch.tensor([1.0, 3.0]), torch.tensor([-1.0]))
    assert ema.ema_real.item() == pytest.approx(2.0) and ema.ema_fake.item() == pytest.approx(-1.0)
    ema.update(torch.tensor([0.0]), torch.tensor([1.0]))
    assert ema.ema_real.item() == pytest.approx(1.8) and ema.ema_fake.item() == pytest.approx(-0.8)
    assert ema(torch.tensor([-0.8]), torch.tensor([1.8])).item() == pytest.approx(0.0, abs=1e-12)
    assert set(ema.state_dict()) == {"ema_real", "ema_fake", "initialized"}


def test_r1_equals_analytic_value_for_linear_discriminator():
    disc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))  # D(x) = w·x + b: ∇_x D = w for every sample
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    penalty = r1_penalty(disc(x), x)
    w = disc[1].weight
    assert penalty.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    penalty.backward()  # create_graph: d‖w‖²/dw = 2w
    assert torch.allclose(w.grad, 2 * w.detach(), atol=1e-6)


# ---------------------------------------------------------------------------------------------- perceptual
@pytest.fixture(scope="module")
def perceptual():
    pytest.importorskip("stlpips_pytorch")
    return PerceptualLoss("alex")


def test_perceptual_loss_zero_positive_and_differentiable(perceptual):
    images = smooth_images(2, 64)
    assert perceptual(images, images).item() == 0.0
    noisy = (images + 0.3 * torch.randn_like(images)).requires_grad_(True)
    loss = perceptual(noisy, images)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert noisy.grad is not None and noisy.grad.abs().sum() > 0 and torch.isfinite(noisy.grad).all()
    assert all(p.grad is None and not p.requires_grad for p in perceptual.parameters())
    perceptual.train()
    assert not perceptual.model.training and perceptual.training


def test_perceptual_loss_vgg_and_missing_extra(monkeypatch):
    pytest.importorskip("stlpips_pytorch")
    vgg = PerceptualLoss("vgg")
    images = smooth_images(1, 32)
    assert vgg(images, images).item() == 0.0 and vgg(images, -images).item() > 0
    with pytest.raises(ValueError):
        PerceptualLoss("squeeze")
    monkeypatch.setitem(sys.modules, "stlpips_pytorch.stlpips", None)  # simulate the package being absent
    with pytest.raises(MissingExtraError, match="eval-image"):
        PerceptualLoss("alex")


# ---------------------------------------------------------------------------------------------- REPA
def test_repa_is_minus_one_for_aligned_features():
    repa = REPAAlignment(hidden_dim=8, teacher_dim=8, num_layers=1)
    with torch.no_grad():
        repa.projector[0].weight.copy_(2 * torch.eye(8))
        repa.projector[0].bias.zero_()
    hidden = torch.randn(2, 16, 8)
    assert repa(hidden, 3 * hidden).item() == pytest.approx(-1.0, abs=1e-6)
    assert repa(hidden, -hidden).item() == pytest.approx(1.0, abs=1e-6)


def test_repa_gradient_flows_only_into_projector_and_hidden():
    teacher_model = nn.Linear(5, 12)
    repa = REPAAlignment(hidden_dim=6, teacher_dim=12, projector_dim=32, teacher=teacher_model)
    assert len(repa.projector) == 5  # Linear, SiLU, Linear, SiLU, Linear
    assert sum(isinstance(m, nn.SiLU) for m in repa.projector) == 2
    expected_names = {f"projector.{i}.{kind}" for i in (0, 2, 4) for kind in ("weight", "bias")}
    assert {name for name, _ in repa.named_parameters()} == expected_names  # the teacher is not a submodule
    hidden = torch.randn(2, 16, 6, requires_grad=True)
    teacher = torch.randn(2, 16, 12, requires_grad=True)
    repa(hidden, teacher).backward()
    assert hidden.grad is not None and teacher.grad is None
    assert all(p.grad is not None for p in repa.parameters())
    feats = repa.teacher_features(torch.randn(2, 16, 5))
    assert feats.shape == (2, 16, 12) and not feats.requires_grad and teacher_model.weight.grad is None


def test_repa_interpolates_teacher_grid_to_model_tokens():
    coarse = torch.randn(2, 8, 8, 8)  # (batch, h, w, dim)
    fine = coarse.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # 16×16 grid, constant 2×2 blocks
    aligned = REPAAlignment.align_tokens(fine.reshape(2, 256, 8), 64)
    assert aligned.shape == (2, 64, 8)
    assert torch.allclose(aligned, coarse.reshape(2, 64, 8), atol=1e-6)

    repa = REPAAlignment(hidden_dim=8, teacher_dim=8, num_layers=1)
    with torch.no_grad():
        repa.projector[0].weight.copy_(torch.eye(8))
        repa.projector[0].bias.zero_()
    assert repa(coarse.reshape(2, 64, 8), fine.reshape(2, 256, 8)).item() == pytest.approx(-1.0, abs=1e-5)

    repa = REPAAlignment(hidden_dim=4, teacher_dim=8, projector_dim=16)
    loss = repa(torch.randn(2, 64, 4), torch.randn(2, 256, 8))
    assert torch.isfinite(loss) and -1 <= loss.item() <= 1
    with pytest.raises(ValueError, match="square"):
        repa(torch.randn(2, 64, 4), torch.randn(2, 200, 8))
