"""FlexTok: images → 1..256 ordered FSQ tokens → images with a rectified-flow decoder (arXiv 2502.13967).

Pipeline (as in apple/ml-flextok):
    pixels [-1,1] ─VAE (frozen, f8, 16ch)→ latents ─2×2 patches + 2D sin-cos→ [patches | 256 registers]
    ─ViT, registers causal among themselves→ registers ─LayerNorm, Linear→6→ FSQ [8,8,8,5,5,5] (64,000 ids)
    decode: ids → codes ─Linear 6→D + learned positions→ registers; ids beyond k → learned mask token
    noise ─Euler steps of a ViT over [noisy patches | registers], adaLN-zero on time (separate for both groups)
    with CFG/APG against a learned null condition→ latents ─VAE decode→ pixels.

Attention runs on SDPA with materialised masks (no flex-attention), so the model runs on CPU and GPU alike.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch import nn
from transformers import initialization as init

from ...layers.attention import causal_last_mask
from ...layers.embeddings import SinCos2DPositionEmbedding, TimestepEmbedder
from ...layers.flow import flow_training_pair, sample_flow, sample_flow_time
from ...layers.nested_dropout import NestedDropout, sample_keep_counts
from ...layers.norms import Fp32LayerNorm
from ...layers.quantizers.fsq import FiniteScalarQuantizer
from ...layers.transformer import TransformerBlock, modulate
from ...modeling_base import UnitokPreTrainedModel, block_lora_presets
from ...outputs import TokenizerDecoderOutput, TokenizerEncoderOutput, TokenizerOutput
from ...validation import check_codes, check_range, check_tensor
from .configuration_flextok import FlexTokConfig
from .image_processing_flextok import FlexTokImageProcessor


@dataclass
class FlexTokEncoderOutput(TokenizerEncoderOutput):
    """
    Args:
        codes (`torch.LongTensor` of shape `(batch, num_tokens)`): FSQ ids in [0, 64000), ordered coarse to fine.
        latents (`torch.FloatTensor` of shape `(batch, num_tokens, 6)`): pre-quantization encoder outputs.
    """


@dataclass
class FlexTokOutput(TokenizerOutput):
    """
    Args:
        loss (`torch.FloatTensor`): total training loss of the configured `train_stage`.
        flow_loss (`torch.FloatTensor`): stage "tokenizer": MSE between predicted and target velocity `noise − x0`.
        reconstruction_loss / kl_loss: stage "vae": L1 on pixels and the weighted KL.
        codes (`torch.LongTensor` of shape `(batch, num_registers)`): the tokens of the batch (stage "tokenizer").
        keep_counts (`torch.LongTensor` of shape `(batch,)`): tokens kept by nested dropout per item.
        reconstruction (`torch.FloatTensor` of shape `(batch, 3, H, W)`): the VAE reconstruction (stage "vae").
        decoder_hidden_states (`torch.FloatTensor` of shape `(batch, num_patches, decoder_dim)`): with
            `hidden_layer`, the decoder's patch tokens after that block (REPA).
    """

    flow_loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    kl_loss: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    keep_counts: torch.LongTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    decoder_hidden_states: torch.FloatTensor | None = None


def mlp_hidden_dim(dim: int, mlp_ratio: float) -> int:
    """FlexTok's SwiGLU width `int(2·int(dim·ratio)/3)` (4778 for dim 1792: no rounding)."""
    return int(2 * int(dim * mlp_ratio) / 3)


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`(B, C, H, W)` → `(B, (H/p)·(W/p), p·p·C)`, row-major patches, channels fastest inside a patch."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // patch_size, patch_size, w // patch_size, patch_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch_size) * (w // patch_size), patch_size**2 * c)


def unpatchify(x: torch.Tensor, patch_size: int, channels: int, grid: int) -> torch.Tensor:
    """Inverse of `patchify` for a square grid."""
    b = x.shape[0]
    x = x.view(b, grid, grid, patch_size, patch_size, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, grid * patch_size, grid * patch_size)


def _zero_init(linear: nn.Linear) -> nn.Linear:
    linear._unitok_zero_init = True  # read by FlexTokModel._init_weights (the official init zeroes these)
    return linear


def _blocks(config: FlexTokConfig, dim: int, depth: int, adaln: bool) -> nn.ModuleList:
    return nn.ModuleList(
        TransformerBlock(dim, dim // config.head_dim, mlp_hidden_dim(dim, config.mlp_ratio), norm="layernorm",
                         norm_affine=False, norm_eps=config.norm_eps, qk_norm="layernorm", qk_norm_affine=False,
                         attn_scale=8.0 / config.head_dim, adaln_cond_dim=dim if adaln else None,
                         adaln_groups=2 if adaln else 1)
        for _ in range(depth)
    )


class FlexTokEncoder(nn.Module):
    """VAE latents → `num_registers` pre-quantization vectors of size len(fsq_levels)."""

    def __init__(self, config: FlexTokConfig):
        super().__init__()
        dim, grid = config.encoder_dim, config.grid_size
        self.patch_size = config.patch_size
        self.patch_embed = nn.Linear(config.vae_latent_channels * config.patch_size**2, dim)
        self.pos_embed = SinCos2DPositionEmbedding(grid, grid, dim)
        self.registers = nn.Parameter(torch.zeros(config.num_registers, dim))
        self.blocks = _blocks(config, dim, config.encoder_depth, adaln=False)
        self.norm = Fp32LayerNorm(dim, eps=config.norm_eps, elementwise_affine=False, bias=False)
        self.to_latents = _zero_init(nn.Linear(dim, len(config.fsq_levels)))
        self.register_buffer("attn_mask", causal_last_mask(grid * grid, config.num_registers), persistent=False)
        self.num_patches = grid * grid

    def reset_buffers(self) -> None:
        self.attn_mask.copy_(causal_last_mask(self.num_patches, self.registers.shape[0]))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        patches = self.pos_embed(self.patch_embed(patchify(latents, self.patch_size)))
        registers = self.registers.to(patches.dtype).expand(patches.shape[0], -1, -1)
        x = torch.cat([patches, registers], dim=1)
        for block in self.blocks:
            x = block(x, self.attn_mask)
        return self.to_latents(self.norm(x[:, self.num_patches:]))


class FlexTokDecoderHead(nn.Module):
    """LayerNorm → adaLN (shift, scale) on the time embedding → Linear to patch values."""

    def __init__(self, dim: int, out_dim: int, eps: float):
        super().__init__()
        self.norm = Fp32LayerNorm(dim, eps=eps, elementwise_affine=False, bias=False)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), _zero_init(nn.Linear(dim, 2 * dim)))
        self.proj = _zero_init(nn.Linear(dim, out_dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(cond)[:, None].chunk(2, dim=-1)
        return self.proj(modulate(self.norm(x), shift, scale))


class FlexTokDecoder(nn.Module):
    """Rectified-flow ViT: velocity of noisy VAE latents, conditioned on (possibly truncated) registers and time."""

    def __init__(self, config: FlexTokConfig):
        super().__init__()
        dim, grid = config.decoder_dim, config.grid_size
        self.patch_size, self.grid, self.channels = config.patch_size, grid, config.vae_latent_channels
        self.from_latents = nn.Linear(len(config.fsq_levels), dim)
        self.register_pos_embed = nn.Parameter(torch.zeros(config.num_registers, dim))
        self.nested_dropout = NestedDropout(dim)
        self.null_cond = nn.Parameter(torch.zeros(dim))
        self.patch_embed = nn.Linear(self.channels * config.patch_size**2, dim)
        self.pos_embed = SinCos2DPositionEmbedding(grid, grid, dim)
        self.time_embed = TimestepEmbedder(dim, config.timestep_frequency_dim, config.timestep_max_period,
                                           config.timestep_scale)
        self.blocks = _blocks(config, dim, config.decoder_depth, adaln=True)
        self.head = FlexTokDecoderHead(dim, self.channels * config.patch_size**2, config.norm_eps)
        # adaLN group 0 modulates the noisy patches, group 1 the registers (the released adaLN_expansion = 2).
        group_ids = torch.cat([torch.zeros(grid * grid), torch.ones(config.num_registers)]).long()
        self.register_buffer("group_ids", group_ids, persistent=False)

    def reset_buffers(self) -> None:
        num_patches = self.grid * self.grid
        self.group_ids.zero_()
        self.group_ids[num_patches:] = 1

    def condition(self, codes: torch.Tensor, keep_counts: torch.Tensor | None,
                  null_mask: torch.Tensor | None = None) -> torch.Tensor:
        """FSQ codes `(B, R, 6)` → register tokens `(B, R, D)`; positions >= keep_counts get the mask token and
        items where `null_mask` is True get the null condition everywhere (the unconditional branch of CFG)."""
        registers = self.from_latents(codes) + self.register_pos_embed[: codes.shape[1]].to(codes.dtype)
        registers = self.nested_dropout(registers, keep_counts)
        if null_mask is not None:
            registers = torch.where(null_mask[:, None, None], self.null_cond.to(registers.dtype), registers)
        return registers

    def forward(self, noisy_latents: torch.Tensor, t: torch.Tensor, registers: torch.Tensor,
                hidden_layer: int | None = None):
        """Velocity `(B, C, h, w)`; with `hidden_layer=i` also the patch tokens after block i (for REPA)."""
        patches = self.pos_embed(self.patch_embed(patchify(noisy_latents, self.patch_size)))
        x = torch.cat([patches, registers.to(patches.dtype)], dim=1)
        cond = self.time_embed(t)
        hidden = None
        for index, block in enumerate(self.blocks):
            x = block(x, None, cond, self.group_ids)
            if index == hidden_layer:
                hidden = x[:, : patches.shape[1]]
        out = unpatchify(self.head(x[:, : patches.shape[1]], cond), self.patch_size, self.channels, self.grid)
        return out if hidden_layer is None else (out, hidden)


class FlexTokPreTrainedModel(UnitokPreTrainedModel):
    config: FlexTokConfig
    base_model_prefix = "flextok"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    modality = "image"
    _no_split_modules = ["TransformerBlock"]
    # LoRA targets for `unitok.lora` (full-match regexes over module names). "decoder" (the flow decoder's attention
    # and MLP) keeps existing codes valid; "encoder" and "all" change the code space. "vae_decoder" adapts the VAE
    # decoder's convolutions, which only train in the VAE stage (train_stage="vae").
    lora_presets = {
        **block_lora_presets(),
        "vae_decoder": {"target_modules": r"vae\.decoder\..*\.(conv(1|2|_shortcut)?|to_[qkv]|to_out\.0)|vae\.decoder\.conv_(in|out)",
                        "changes_codes": False},
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The official standard init: xavier-uniform Linears with zero bias, adaLN and heads zeroed, learned
        tokens N(0, 0.02²); the VAE's convolutions keep PyTorch's default scheme (they are loaded, not trained)."""
        super()._init_weights(module)
        if isinstance(module, nn.Linear):
            if getattr(module, "_unitok_zero_init", False):
                init.zeros_(module.weight)
            else:
                init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            init.kaiming_uniform_(module.weight, a=5**0.5)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, FlexTokEncoder):
            init.trunc_normal_(module.registers, std=self.config.initializer_range)
        elif isinstance(module, FlexTokDecoder):
            init.trunc_normal_(module.register_pos_embed, std=self.config.initializer_range)
            init.trunc_normal_(module.null_cond, std=self.config.initializer_range)
        elif isinstance(module, NestedDropout):
            init.trunc_normal_(module.mask_token, std=self.config.initializer_range)


class FlexTokModel(FlexTokPreTrainedModel):
    """FlexTok tokenizer.

    - `encode(pixel_values)` → `codes` `(batch, 256)` (ordered: any prefix is a valid coarser code).
    - `decode(codes[:, :k], generator=..., num_inference_steps=..., guidance_scale=...)` → `reconstruction`
      `(batch, 3, H, W)` in [-1, 1], for any k in 1..256.
    - `forward(pixel_values)` → rectified-flow training loss with nested dropout and CFG condition dropout.
    """

    def __init__(self, config: FlexTokConfig):
        super().__init__(config)
        self.vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=config.vae_latent_channels,
            block_out_channels=tuple(config.vae_block_out_channels),
            down_block_types=("DownEncoderBlock2D",) * len(config.vae_block_out_channels),
            up_block_types=("UpDecoderBlock2D",) * len(config.vae_block_out_channels),
            layers_per_block=config.vae_layers_per_block, norm_num_groups=config.vae_norm_num_groups,
            act_fn="silu", sample_size=config.image_size, scaling_factor=config.vae_scaling_factor,
        )
        self.encoder = FlexTokEncoder(config)
        self.quantizer = FiniteScalarQuantizer(config.fsq_levels)
        self.decoder = FlexTokDecoder(config)
        self.post_init()
        # The paper trains in stages: the VAE first (stage 0), then the tokenizer on the frozen VAE (stage 1).
        vae_stage = config.train_stage == "vae"
        self.vae.requires_grad_(vae_stage)
        self.encoder.requires_grad_(not vae_stage)
        self.decoder.requires_grad_(not vae_stage)

    def build_preprocessor(self) -> FlexTokImageProcessor:
        """The image processor matching this config (resize/crop to `image_size`, scale to [-1, 1])."""
        size = self.config.image_size
        return FlexTokImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})

    def adaptive_weight_layer(self):
        """The VAE decoder's output convolution in stage "vae" (the only stage returning a reconstruction)."""
        return self.vae.decoder.conv_out.weight if self.config.train_stage == "vae" else None

    def default_token_budgets(self) -> list[int]:
        """Powers of two up to the number of registers (1, 2, 4, …, 256): any prefix decodes."""
        return [2**i for i in range(self.config.num_registers.bit_length()) if 2**i <= self.config.num_registers]

    # ----------------------------------------------------------------------------------------------- checks
    def _check_pixels(self, pixel_values) -> torch.Tensor:
        size = self.config.image_size
        check_tensor(pixel_values, "pixel_values", ndim=4, floating=True, size={1: 3, 2: size, 3: size},
                     shape_doc=f"(batch, 3, {size}, {size})")
        return check_range(pixel_values, "pixel_values", -1.0, 1.0)

    # ----------------------------------------------------------------------------------------------- VAE
    def vae_encode(self, pixel_values: torch.Tensor, sample: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixels → scaled VAE latents `(B, C, H/8, W/8)` (posterior mode, or a sample)."""
        dist = self.vae.encode(pixel_values.to(self.vae.dtype)).latent_dist
        latents = dist.sample(generator) if sample else dist.mode()
        return latents * self.config.vae_scaling_factor

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents.to(self.vae.dtype) / self.config.vae_scaling_factor).sample

    # ----------------------------------------------------------------------------------------------- contract
    def encode(self, pixel_values: torch.Tensor, num_tokens: int | None = None) -> FlexTokEncoderOutput:
        """Tokenize images.

        Args:
            pixel_values: `(batch, 3, image_size, image_size)` in [-1, 1] (see `FlexTokImageProcessor`).
            num_tokens: keep only the first `num_tokens` (1..num_registers); default all.
        Returns:
            `FlexTokEncoderOutput` with `codes` `(batch, num_tokens)` and `latents` `(batch, num_tokens, 6)`.
        """
        self._check_pixels(pixel_values)
        num_tokens = self._check_num_tokens(num_tokens)
        with torch.no_grad():
            latents = self.vae_encode(pixel_values)
        pre_quant = self.encoder(latents)[:, :num_tokens]
        quantized = self.quantizer(pre_quant)
        return FlexTokEncoderOutput(codes=quantized.indices, latents=pre_quant)

    def _check_num_tokens(self, num_tokens: int | None) -> int:
        limit = self.config.num_registers
        if num_tokens is None:
            return limit
        if not isinstance(num_tokens, int) or not 1 <= num_tokens <= limit:
            raise ValueError(f"num_tokens must be an int in [1, {limit}], got {num_tokens!r}.")
        return num_tokens

    def _conditioning_codes(self, codes, latents) -> torch.Tensor:
        """Token ids or pre-quantization latents → FSQ code vectors `(B, k, 6)`."""
        limit = self.config.num_registers
        if (codes is None) == (latents is None):
            raise ValueError("Pass exactly one of `codes` (batch, k) or `latents` (batch, k, 6).")
        if codes is not None:
            check_codes(codes, "codes", self.config.codebook_size, ndim=2, shape_doc="(batch, num_tokens)",
                        max_length=limit)
            return self.quantizer.indices_to_codes(codes)
        check_tensor(latents, "latents", ndim=3, floating=True, size={2: len(self.config.fsq_levels)},
                     shape_doc=f"(batch, num_tokens, {len(self.config.fsq_levels)})")
        if latents.shape[1] > limit:
            raise ValueError(f"`latents` has {latents.shape[1]} tokens per item; this model decodes at most {limit}.")
        return self.quantizer(latents).quantized

    @torch.no_grad()
    def decode(self, codes: torch.LongTensor | None = None, latents: torch.FloatTensor | None = None, *,
               generator: torch.Generator | list[torch.Generator] | None = None,
               num_inference_steps: int | None = None, guidance_scale: float | None = None,
               guidance: str | None = None) -> TokenizerDecoderOutput:
        """Detokenize: sample images from the flow decoder conditioned on the first k tokens.

        Args:
            codes: `(batch, k)` ids with 1 <= k <= num_registers; or
            latents: `(batch, k, 6)` pre-quantization latents (quantized here).
            generator: a generator, or one per item (then each item's noise equals decoding it alone).
            num_inference_steps: Euler steps (default `config.num_inference_steps`, 20).
            guidance_scale: CFG/APG scale (default `config.guidance_scale`, 7.5; 1 disables guidance).
            guidance: "apg" (default, the released "normalized guidance") or "cfg".
        Returns:
            `TokenizerDecoderOutput` with `reconstruction` `(batch, 3, image_size, image_size)`, nominally [-1, 1].
        """
        fsq_codes = self._conditioning_codes(codes, latents)
        batch, keep = fsq_codes.shape[:2]
        device, dtype = self.device, self.dtype
        padded = torch.zeros(batch, self.config.num_registers, fsq_codes.shape[-1], device=device, dtype=dtype)
        padded[:, :keep] = fsq_codes.to(device, dtype)
        keep_counts = torch.full((batch,), keep, device=device, dtype=torch.long)
        registers = self.decoder.condition(padded, keep_counts)
        null_registers = self.decoder.condition(padded, keep_counts, torch.ones(batch, dtype=torch.bool,
                                                                                device=device))

        def velocity(x, t, guided):
            if not guided:
                return self.decoder(x.to(dtype), t, registers)
            both = self.decoder(torch.cat([x, x]).to(dtype), torch.cat([t, t]),
                                torch.cat([registers, null_registers]))
            return both.chunk(2)

        noise = self._initial_noise(batch, generator, device)
        latents_out = sample_flow(
            velocity, noise,
            num_inference_steps=self.config.num_inference_steps if num_inference_steps is None else num_inference_steps,
            guidance_scale=self.config.guidance_scale if guidance_scale is None else guidance_scale,
            guidance=guidance or self.config.guidance, scheduler_config=self.config.decoder_scheduler,
        )
        return TokenizerDecoderOutput(reconstruction=self.vae_decode(latents_out).float().contiguous())

    def _initial_noise(self, batch: int, generator, device) -> torch.Tensor:
        size = self.config.latent_size
        shape = (self.config.vae_latent_channels, size, size)
        if isinstance(generator, (list, tuple)):
            if len(generator) != batch:
                raise ValueError(f"Got {len(generator)} generators for a batch of {batch}; pass one or one per item.")
            return torch.stack([torch.randn(shape, generator=g, device=g.device).to(device) for g in generator])
        gen_device = generator.device if generator is not None else device
        return torch.randn((batch, *shape), generator=generator, device=gen_device).to(device)

    def forward(self, pixel_values: torch.Tensor, *, keep_counts: torch.LongTensor | None = None,
                generator: torch.Generator | None = None, hidden_layer: int | None = None) -> FlexTokOutput:
        """Rectified-flow training step on a batch of images.

        Args:
            pixel_values: `(batch, 3, H, W)` in [-1, 1].
            keep_counts: `(batch,)` tokens to keep per item; default: sampled by nested dropout in training mode,
                all tokens in eval mode.
            generator: makes the noise, time and dropout draws reproducible.
            hidden_layer: also return the decoder's patch tokens after this block (`decoder_hidden_states`), for
                a REPA alignment loss in the recipe (the paper aligns them to DINOv2-L features).
        """
        self._check_pixels(pixel_values)
        if self.config.train_stage == "vae":
            return self._vae_forward(pixel_values, generator)
        batch, device = pixel_values.shape[0], pixel_values.device
        with torch.no_grad():
            x0 = self.vae_encode(pixel_values, sample=self.training and self.config.vae_sample_posterior,
                                 generator=generator).float()
        quantized = self.quantizer(self.encoder(x0.to(self.dtype)))
        if keep_counts is None and self.training:
            keep_counts = sample_keep_counts(batch, self.config.num_registers, self.config.nested_dropout_mode,
                                             device=device, generator=generator)
        null_mask = None
        if self.training and self.config.cond_dropout_prob > 0:
            null_mask = torch.rand(batch, device=device, generator=generator) < self.config.cond_dropout_prob
        registers = self.decoder.condition(quantized.quantized, keep_counts, null_mask)
        t = sample_flow_time(batch, distribution=self.config.flow_time_distribution, mean=self.config.flow_time_mean,
                             std=self.config.flow_time_std, device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, generator=generator)
        noisy, target = flow_training_pair(x0, noise, t)
        hidden = None
        predicted = self.decoder(noisy.to(self.dtype), t, registers, hidden_layer)
        if hidden_layer is not None:
            predicted, hidden = predicted
        flow_loss = F.mse_loss(predicted.float(), target)
        return FlexTokOutput(loss=flow_loss, flow_loss=flow_loss, codes=quantized.indices, keep_counts=keep_counts,
                             decoder_hidden_states=hidden)

    def _vae_forward(self, pixel_values: torch.Tensor, generator: torch.Generator | None) -> FlexTokOutput:
        """Stage 0: VAE reconstruction (L1) + weighted KL to N(0, I). Perceptual and adversarial terms, which need
        external networks, are added by the training recipe from `reconstruction`."""
        posterior = self.vae.encode(pixel_values.to(self.vae.dtype)).latent_dist
        latents = posterior.sample(generator) if self.training else posterior.mode()
        reconstruction = self.vae.decode(latents).sample
        reconstruction_loss = F.l1_loss(reconstruction.float(), pixel_values.float())
        kl_loss = self.config.vae_kl_weight * posterior.kl().mean()
        return FlexTokOutput(loss=reconstruction_loss + kl_loss, reconstruction_loss=reconstruction_loss, kl_loss=kl_loss,
                             reconstruction=reconstruction)


__all__ = ["FlexTokModel", "FlexTokPreTrainedModel", "FlexTokEncoderOutput", "FlexTokOutput"]
