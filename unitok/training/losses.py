"""Reusable training losses of tokenizer papers: PatchGAN discriminator, adversarial losses and regularisers,
VQGAN's adaptive generator weight, a bundled `GANLoss`, an offline perceptual loss and REPA alignment.

Two-optimizer training (generator G, discriminator D) with Accelerate / DDP:

    gan = GANLoss(PatchGANDiscriminator(), disc_start=20_000, lecam_weight=0.001)
    opt_g = AdamW(generator.parameters()); opt_d = AdamW(gan.discriminator.parameters())
    generator, opt_g, opt_d = accelerator.prepare(generator, opt_g, opt_d)
    gan.discriminator = accelerator.prepare(gan.discriminator)  # DDP-wrap D on its own

    # generator step: D runs frozen (unwrapped, requires_grad off), so no grads reach it and D's DDP never fires
    recon = generator(images).reconstruction
    rec = (recon - images).abs().mean() + perceptual(recon, images)
    last = accelerator.unwrap_model(generator).decoder.conv_out.weight
    gan_term, logs_g = gan.generator_loss(recon, rec, last, step)
    accelerator.backward(rec + gan_term); opt_g.step(); opt_g.zero_grad()

    # discriminator step: the reconstruction is detached, so nothing flows back into G
    d_loss, logs_d = gan.discriminator_loss(images, recon, step)
    accelerator.backward(d_loss); opt_d.step(); opt_d.zero_grad()

Everything is plain torch; no pretrained weights are loaded here except the bundled ST-LPIPS backbone of
`PerceptualLoss` (an optional extra).
"""

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

class EffNetLite0Teacher(nn.Module):
    """A REPA teacher available offline: the bundled ImageNet EfficientNet-Lite0's last feature map (7×7 tokens of
    1280-d at 224² input) for [-1, 1] images. The paper's teacher is DINOv2-L; this one is a stand-in, named as such."""

    dim = 1280

    def __init__(self):
        super().__init__()
        from ..evaluation.metrics.image import EffNetLite0Features

        self.features = EffNetLite0Features().requires_grad_(False).eval()

    def train(self, mode: bool = True):  # stays frozen in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate((images.float().clamp(-1, 1) + 1) / 2, size=(224, 224), mode="bilinear",
                                           antialias=True, align_corners=False)
        grid = self.features.net.extract_features((x - 0.5) / 0.5)  # (B, 1280, 7, 7)
        return grid.flatten(2).transpose(1, 2)


__all__ = [
    "EffNetLite0Teacher",
    "GANLoss",
    "LeCamEMA",
    "PatchGANDiscriminator",
    "PatchGANDiscriminator1d",
    "PerceptualLoss",
    "REPAAlignment",
    "adaptive_generator_weight",
    "frozen",
    "hinge_d_loss",
    "hinge_g_loss",
    "lecam_regularizer",
    "r1_penalty",
    "vanilla_d_loss",
    "vanilla_g_loss",
]


# ------------------------------------------------------------------------------------------------ PatchGAN
class PatchGANDiscriminator(nn.Module):
    """The pix2pix PatchGAN ("NLayerDiscriminator", Isola et al. 2017, Sec. 3.2.2; as used by taming-transformers'
    VQGAN, Esser et al. 2021): a stack of 4×4 convolutions that classifies overlapping patches as real or fake.

    Layers: conv(in → C, stride 2) + LeakyReLU(0.2); then `num_layers − 1` blocks conv(stride 2) + norm + LeakyReLU
    with channels doubling up to 8C; one conv(stride 1) + norm + LeakyReLU; a final conv(stride 1) to a 1-channel
    logit map. With `num_layers=3` each logit sees a 70×70 input patch; a 256² image gives a 30×30 map and 64² a 6×6
    map (`output_size`). `dims=1` builds the same design with Conv1d for waveforms `(batch, channels, time)`.

    `norm`: "batch" (the original; convert to SyncBatchNorm for DDP if desired), "group" (GroupNorm, batch-size
    independent) or "none". Convs are N(0, 0.02)-initialised and norm weights N(1, 0.02) with zero bias (pix2pix).
    """

    kernel_size = 4

    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3, norm: str = "batch",
                 dims: int = 2):
        super().__init__()
        if norm not in ("batch", "group", "none"):
            raise ValueError(f"norm must be 'batch', 'group' or 'none', got {norm!r}.")
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}.")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        k, use_bias = self.kernel_size, norm == "none"  # a norm's shift makes the conv bias redundant

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [conv(c_in, c_out, k, stride, 1, bias=use_bias), self._make_norm(norm, c_out, dims),
                    nn.LeakyReLU(0.2)]

        layers: list[nn.Module] = [conv(in_channels, base_channels, k, 2, 1), nn.LeakyReLU(0.2)]
        channels = base_channels
        for n in range(1, num_layers):
            out = base_channels * min(2**n, 8)
            layers += block(channels, out, stride=2)
            channels = out
        out = base_channels * min(2**num_layers, 8)
        layers += block(channels, out, stride=1)
        layers.append(conv(out, 1, k, 1, 1))
        self.main = nn.Sequential(*layers)
        self.strides = [2] * num_layers + [1, 1]
        self.apply(self._init_weights)

    @staticmethod
    def _make_norm(norm: str, channels: int, dims: int) -> nn.Module:
        if norm == "batch":
            return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
        if norm == "group":
            return nn.GroupNorm(math.gcd(32, channels), channels)
        return nn.Identity()

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)

    @property
    def receptive_field(self) -> int:
        """Input pixels (per side) that one output logit depends on: 1 + Σ (k − 1) · Π(earlier strides)."""
        field, jump = 1, 1
        for stride in self.strides:
            field += (self.kernel_size - 1) * jump
            jump *= stride
        return field

    def output_size(self, input_size: int) -> int:
        """Side of the logit map for an input of side `input_size` (kernel 4, padding 1)."""
        for stride in self.strides:
            input_size = (input_size + 2 - self.kernel_size) // stride + 1
        return input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, in_channels, H, W)` → patch logits `(batch, 1, h, w)` (or `(batch, 1, t)` for `dims=1`)."""
        return self.main(x)


class PatchGANDiscriminator1d(PatchGANDiscriminator):
    """`PatchGANDiscriminator(dims=1)`: the same PatchGAN over 1D signals `(batch, channels, time)` (audio)."""

    def __init__(self, in_channels: int = 1, base_channels: int = 64, num_layers: int = 3, norm: str = "batch"):
        super().__init__(in_channels, base_channels, num_layers, norm, dims=1)


# ------------------------------------------------------------------------------------------------ adversarial losses
def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, SNGAN):
    `½ (E[relu(1 − D(x))] + E[relu(1 + D(x̂))])`. The ½ (average of the real and fake terms) follows
    taming-transformers; the papers sum the two terms."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: `−E[D(x̂)]` (Lim & Ye 2017; Miyato et al. 2018)."""
    return -fake_logits.mean()


def vanilla_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Original GAN discriminator loss (Goodfellow et al. 2014, Eq. 1) in logit form, i.e. BCE-with-logits with
    labels real = 1, fake = 0: `½ (E[softplus(−D(x))] + E[softplus(D(x̂))])` (½ as in taming-transformers)."""
    return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())


def vanilla_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss (Goodfellow et al. 2014, Sec. 3): `E[softplus(−D(x̂))]` = BCE(D(x̂), 1)."""
    return F.softplus(-fake_logits).mean()


_LOSSES = {"hinge": (hinge_d_loss, hinge_g_loss), "vanilla": (vanilla_d_loss, vanilla_g_loss)}


# ------------------------------------------------------------------------------------------------ regularisers
def lecam_regularizer(real_logits: torch.Tensor, fake_logits: torch.Tensor, ema_real: torch.Tensor | float,
                      ema_fake: torch.Tensor | float) -> torch.Tensor:
    """LeCam regulariser (Tseng et al. 2021, "Regularizing Generative Adversarial Networks under Limited Data",
    Sec. 3, R_LC): `E[(D(x) − α_F)²] + E[(D(x̂) − α_R)²]`, pulling real logits towards the moving average of the fake
    logits α_F and fake logits towards that of the real ones α_R. Zero when `real_logits == ema_fake` and
    `fake_logits == ema_real`. Added to the discriminator loss with a small weight (~1e-3); track the EMAs with
    `LeCamEMA`."""
    return (real_logits - ema_fake).pow(2).mean() + (fake_logits - ema_real).pow(2).mean()


class LeCamEMA(nn.Module):
    """Exponential moving averages α_R, α_F of the mean real / fake discriminator logits for `lecam_regularizer`.

    Buffers (saved in the state dict). The first `update` sets them to the batch means; afterwards
    `α ← decay · α + (1 − decay) · mean`. Under torch.distributed the batch means are averaged over ranks first,
    so every rank holds the same anchors."""

    def __init__(self, decay: float = 0.99):
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        means = torch.stack([real_logits.detach().float().mean(), fake_logits.detach().float().mean()])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(means)
            means /= dist.get_world_size()
        means = means.to(self.ema_real.device)
        decay = self.initialized.float() * self.decay  # 0 on the first update: start at the batch means
        self.ema_real.mul_(decay).add_((1 - decay) * means[0])
        self.ema_fake.mul_(decay).add_((1 - decay) * means[1])
        self.initialized.fill_(True)

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The LeCam term against the current anchors (call `update` separately)."""
        return lecam_regularizer(real_logits, fake_logits, self.ema_real, self.ema_fake)


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", Eq. 9)
    without its γ/2 factor: `E_x[‖∇_x Σ D(x)‖²]`, the squared norm of the gradient of the summed patch logits w.r.t.
    each real input, averaged over the batch. `real_inputs` must have had `requires_grad_(True)` before the
    discriminator ran; the graph is kept (create_graph) so the penalty trains the discriminator."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def adaptive_generator_weight(reconstruction_loss: torch.Tensor, generator_loss: torch.Tensor,
                              last_layer_weight: torch.Tensor, max_weight: float = 1e4) -> torch.Tensor:
    """VQGAN's adaptive weight (Esser et al. 2021, "Taming Transformers", Eq. 7):
    `λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ)`, with G_L the generator's last layer and δ = 1e-4 (the
    taming-transformers code; the paper writes 1e-6). Clamped to [0, max_weight] and detached.

    Uses `torch.autograd.grad(..., retain_graph=True)` on the last layer only, so no `.grad` is written (DDP's
    gradient hooks do not fire) and the graph stays for the real backward. λ is computed from this rank's batch."""
    (rec_grad,) = torch.autograd.grad(reconstruction_loss, last_layer_weight, retain_graph=True)
    (gan_grad,) = torch.autograd.grad(generator_loss, last_layer_weight, retain_graph=True)
    weight = rec_grad.norm() / (gan_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Turn off `requires_grad` of every parameter of `module` inside the block, restoring each flag afterwards.

    Autograd decides at graph-construction time which leaves get gradients, so a forward run inside the block
    records no edge to these parameters: a later `backward()` (even after the block) leaves their `.grad`
    untouched. Use it for the discriminator during the generator step."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (other wrappers are returned as is)."""
    while isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        module = module.module
    return module


# ------------------------------------------------------------------------------------------------ GANLoss
class GANLoss(nn.Module):
    """Adversarial part of a VQGAN-style tokenizer objective: discriminator + loss type + schedule + regularisers.

    - `loss_type`: "hinge" or "vanilla" (non-saturating).
    - `disc_start`: before this step the generator term is exactly 0 (D does not even run) and the
      discriminator loss is multiplied by 0 (its graph is kept, so `backward()` and DDP behave the same on every
      step; skip the D step with `is_active(step)` to save the compute).
    - `disc_weight`: scale of the generator term; with `adaptive_weight=True` it is multiplied by VQGAN's λ
      (`adaptive_generator_weight`, needs the generator's last-layer weight), else by 1.
    - `lecam_weight` (with EMA `lecam_decay`) and `r1_weight` (the γ/2 factor of R1 included) regularise D.

    Two optimizers, Accelerate / DDP:
    - Put only `self.discriminator.parameters()` in D's optimizer. To DDP-wrap it, assign the wrapper back:
      `gan.discriminator = accelerator.prepare(gan.discriminator)`.
    - `generator_loss` runs the *unwrapped* discriminator inside `frozen(...)`: no gradient is recorded for its
      parameters (their `.grad` stays None) and D's DDP reducer is never engaged by the generator's backward.
      The gradient still flows through D into the reconstruction. (BatchNorm running stats do update there, as
      in taming-transformers.)
    - `discriminator_loss` detaches the reconstruction, so its backward never reaches the generator, and runs D
      once on the concatenated real + fake batch through the (possibly DDP-wrapped) module.
    Returned log values are detached tensors (call `.item()` when logging, to avoid a sync each step).
    """

    def __init__(self, discriminator: nn.Module, loss_type: str = "hinge", disc_start: int = 0,
                 disc_weight: float = 1.0, adaptive_weight: bool = True, lecam_weight: float = 0.0,
                 lecam_decay: float = 0.99, r1_weight: float = 0.0, max_adaptive_weight: float = 1e4):
        super().__init__()
        if loss_type not in _LOSSES:
            raise ValueError(f"loss_type must be one of {sorted(_LOSSES)}, got {loss_type!r}.")
        self.discriminator = discriminator
        self.loss_type = loss_type
        self.d_loss_fn, self.g_loss_fn = _LOSSES[loss_type]
        self.disc_start = disc_start
        self.disc_weight = disc_weight
        self.adaptive_weight = adaptive_weight
        self.max_adaptive_weight = max_adaptive_weight
        self.lecam_weight = lecam_weight
        self.r1_weight = r1_weight
        self.lecam = LeCamEMA(lecam_decay)

    def is_active(self, step: int) -> bool:
        """Whether the adversarial terms are on at `step` (`step >= disc_start`)."""
        return step >= self.disc_start

    def generator_loss(self, reconstruction: torch.Tensor, reconstruction_loss: torch.Tensor,
                       last_layer_weight: torch.Tensor | None, step: int) -> tuple[torch.Tensor, dict]:
        """The weighted adversarial term for the generator, `disc_weight · λ · L_G(D(x̂))`, to *add* to the
        reconstruction loss (it is not included). Zero (no graph) before `disc_start`. λ is the adaptive weight
        when enabled and gradients are on, else 1 (e.g. under `torch.no_grad()` for validation)."""
        if not self.is_active(step):
            zero = reconstruction_loss.new_zeros(())
            return zero, {"gan/g_loss": zero.detach(), "gan/d_weight": zero.detach(), "gan/active": zero.detach()}
        with frozen(_unwrap(self.discriminator)) as disc:
            fake_logits = disc(reconstruction)
        g_loss = self.g_loss_fn(fake_logits)
        if self.adaptive_weight and torch.is_grad_enabled() and g_loss.requires_grad:
            if last_layer_weight is None:
                raise ValueError("adaptive_weight=True needs the generator's last-layer weight (last_layer_weight).")
            d_weight = adaptive_generator_weight(reconstruction_loss, g_loss, last_layer_weight,
                                                 self.max_adaptive_weight)
        else:
            d_weight = g_loss.new_ones(())
        loss = self.disc_weight * d_weight * g_loss
        logs = {"gan/g_loss": g_loss.detach(), "gan/d_weight": d_weight.detach(),
                "gan/logits_fake": fake_logits.detach().mean(), "gan/active": g_loss.new_ones(()).detach()}
        return loss, logs

    def discriminator_loss(self, real: torch.Tensor, reconstruction: torch.Tensor,
                           step: int) -> tuple[torch.Tensor, dict]:
        """`factor · (L_D + lecam_weight · R_LC + r1_weight/2 · R1)` with factor 1 from `disc_start` on, else 0.
        Neither input receives a gradient (both are detached)."""
        active = self.is_active(step)
        real = real.detach()
        use_r1 = self.r1_weight > 0 and active and torch.is_grad_enabled()
        if use_r1:
            real.requires_grad_(True)
        logits = self.discriminator(torch.cat([real, reconstruction.detach()]))
        real_logits, fake_logits = logits.split([real.shape[0], reconstruction.shape[0]])
        d_loss = self.d_loss_fn(real_logits, fake_logits)
        loss = d_loss
        logs = {"gan/d_loss": d_loss.detach(), "gan/logits_real": real_logits.detach().mean(),
                "gan/logits_fake": fake_logits.detach().mean()}
        if self.lecam_weight > 0:
            if active and self.training:
                self.lecam.update(real_logits, fake_logits)
            lecam = self.lecam(real_logits, fake_logits)
            loss = loss + self.lecam_weight * lecam
            logs["gan/lecam"] = lecam.detach()
        if use_r1:
            r1 = r1_penalty(real_logits, real)
            loss = loss + 0.5 * self.r1_weight * r1
            logs["gan/r1"] = r1.detach()
        loss = loss * (1.0 if active else 0.0)
        logs["gan/active"] = loss.new_tensor(float(active))
        return loss, logs


# ------------------------------------------------------------------------------------------------ perceptual
class PerceptualLoss(nn.Module):
    """LPIPS-style perceptual training loss (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as
    a Perceptual Metric", Eq. 1) with the shift-tolerant backbones of ST-LPIPS (Ghildyal & Liu 2022, "Shift-tolerant
    Perceptual Similarity Metric"), the only perceptual weights available offline here: the `stlpips-pytorch` wheel
    bundles the anti-aliased AlexNet / VGG16 backbones and linear heads (extra `eval-image`).

    Inputs `(batch, 3, H, W)` in [-1, 1] (not clamped, so the gradient is never cut); returns the mean distance over
    the batch, differentiable w.r.t. both inputs. The network is frozen (`requires_grad=False`) and stays in eval
    mode even when the surrounding module is put in train mode; it runs in float32 outside autocast. Values are
    ST-LPIPS, not comparable to published LPIPS numbers.
    """

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}.")
        from unitok.evaluation.extras import require

        stlpips = require("stlpips_pytorch.stlpips", "eval-image", "stlpips-pytorch")
        self.net_name = net
        self.model = stlpips.LPIPS(net=net, variant="shift_tolerant", verbose=False)
        self.model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.model.eval()  # dropout in the linear heads stays off
        return self

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape != target.shape or input.ndim != 4 or input.shape[1] != 3:
            raise ValueError(f"PerceptualLoss needs two (batch, 3, H, W) images of equal shape, got "
                             f"{tuple(input.shape)} and {tuple(target.shape)}.")
        with torch.autocast(device_type=input.device.type, enabled=False):
            return self.model(input.float(), target.float()).mean()


# ------------------------------------------------------------------------------------------------ REPA
class REPAAlignment(nn.Module):
    """REPA representation alignment (Yu et al. 2024, "Representation Alignment for Generation: Training Diffusion
    Transformers Is Easier Than You Think", Eq. 8): an MLP projector h_φ (SiLU) maps the model's intermediate tokens
    to the teacher's feature space and the loss is `−(1/N) Σ_n cos(y*_n, h_φ(h_n))`, averaged over the batch, with
    the teacher features y* detached. −1 is perfect alignment.

    Shapes: hidden `(batch, tokens, hidden_dim)`, teacher `(batch, teacher_tokens, teacher_dim)`, both square token
    grids in raster order (pass only patch tokens: drop CLS / register tokens). When the counts differ, the teacher's
    √T×√T grid is bilinearly resized (align_corners=False) to the model's grid.

    `teacher`: an optional callable `images -> (batch, teacher_tokens, teacher_dim)` used by `teacher_features`.
    It is *not* registered as a submodule (not in `parameters()`, the state dict or `.to()`): the caller owns it,
    keeps it frozen, in eval mode and on the right device. No pretrained weights are loaded here.
    `num_layers` counts the Linear layers (1 = a single linear map).
    """

    def __init__(self, hidden_dim: int, teacher_dim: int, projector_dim: int = 2048, num_layers: int = 3,
                 teacher: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        dims = [hidden_dim] + [projector_dim] * (num_layers - 1) + [teacher_dim]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                layers.append(nn.SiLU())
            layers.append(nn.Linear(d_in, d_out))
        self.projector = nn.Sequential(*layers)
        self.__dict__["teacher"] = teacher  # deliberately not a submodule

    @torch.no_grad()
    def teacher_features(self, images: torch.Tensor) -> torch.Tensor:
        """Run the pluggable teacher without gradients."""
        if self.teacher is None:
            raise ValueError("REPAAlignment was built without a teacher; pass teacher features to forward instead.")
        return self.teacher(images)

    @staticmethod
    def align_tokens(teacher_features: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """Resize `(batch, T, D)` teacher tokens on a √T×√T grid to `num_tokens` tokens on a square grid."""
        batch, teacher_tokens, dim = teacher_features.shape
        if teacher_tokens == num_tokens:
            return teacher_features
        side, target = math.isqrt(teacher_tokens), math.isqrt(num_tokens)
        if side * side != teacher_tokens or target * target != num_tokens:
            raise ValueError(f"REPA token alignment needs square grids, got {teacher_tokens} teacher tokens and "
                             f"{num_tokens} model tokens.")
        grid = teacher_features.transpose(1, 2).reshape(batch, dim, side, side)
        grid = F.interpolate(grid.float(), size=(target, target), mode="bilinear", align_corners=False)
        return grid.to(teacher_features.dtype).flatten(2).transpose(1, 2)

    def forward(self, hidden_states: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        """REPA loss (scalar) for hidden `(batch, tokens, hidden_dim)` and teacher `(batch, T, teacher_dim)`."""
        if hidden_states.ndim != 3 or teacher_features.ndim != 3 or hidden_states.shape[0] != teacher_features.shape[0]:
            raise ValueError(f"REPA needs hidden (batch, tokens, dim) and teacher (batch, tokens, dim), got "
                             f"{tuple(hidden_states.shape)} and {tuple(teacher_features.shape)}.")
        target = self.align_tokens(teacher_features.detach(), hidden_states.shape[1])
        projected = self.projector(hidden_states)
        cosine = F.cosine_similarity(projected.float(), target.float(), dim=-1)  # (batch, tokens)
        return -cosine.mean()
