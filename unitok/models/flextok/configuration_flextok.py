"""FlexTok configuration (Bachmann et al., 2025, "FlexTok: Resampling Images into 1D Token Sequences of Flexible
Length", arXiv 2502.13967; official code apple/ml-flextok)."""

import math

from ...configuration_base import UnitokConfig


class FlexTokConfig(UnitokConfig):
    r"""Configuration of a FlexTok tokenizer: frozen VAE → ViT encoder with registers → FSQ → rectified-flow decoder.

    Widths follow the released rule `dim = 64 · depth` with 64-dim heads unless given explicitly.

    Args:
        image_size: input resolution (square).
        vae_latent_channels / vae_block_out_channels / vae_layers_per_block / vae_norm_num_groups: the diffusers
            `AutoencoderKL` (SDXL layout; released FlexTok uses 16 latent channels, f8).
        vae_scaling_factor: latents are multiplied by this after encoding (the converter reads the released value).
        vae_sample_posterior: sample the VAE posterior in training (`forward`); `encode` always uses its mode so
            that tokenization is deterministic.
        patch_size: patch size on the VAE latent grid, in encoder and decoder.
        encoder_depth / decoder_depth, encoder_dim / decoder_dim (None → 64·depth), head_dim, mlp_ratio, norm_eps.
        num_registers: maximum number of 1D tokens (any prefix 1..num_registers decodes).
        fsq_levels: FSQ levels; codebook size is their product.
        nested_dropout_mode: "uniform", "pow2" or "uniform_pow2" (how many tokens are kept in training).
        cond_dropout_prob: probability that all registers are replaced by the learned null condition in training
            (classifier-free guidance).
        timestep_frequency_dim / timestep_max_period / timestep_scale: the decoder's sinusoidal time embedding
            (released: 256, 256, t∈[0,1]·1000).
        flow_time_distribution / flow_time_mean / flow_time_std: training noise levels (logit-normal 0/1).
        num_inference_steps / guidance_scale / guidance: decode defaults (released README: 20 steps, 7.5, APG).
        decoder_scheduler: extra `FlowMatchEulerDiscreteScheduler` config entries (shift etc.).
        train_stage: what `forward` trains. "tokenizer" (the paper's stage 1: encoder + decoder on a frozen VAE,
            rectified-flow loss) or "vae" (stage 0: the VAE alone, L1 reconstruction + KL; the recipe can add
            perceptual and adversarial terms on the returned reconstruction).
        vae_kl_weight: stage-0 KL weight (KL summed over latent elements, averaged over the batch, as the SD-VAE).
    """

    model_type = "unitok_flextok"
    modality = "image"

    image_size: int = 256
    vae_latent_channels: int = 16
    vae_block_out_channels: list[int] | tuple[int, ...] = (128, 256, 512, 512)
    vae_layers_per_block: int = 2
    vae_norm_num_groups: int = 32
    vae_scaling_factor: float = 1.0
    vae_sample_posterior: bool = True
    patch_size: int = 2
    encoder_depth: int = 12
    decoder_depth: int = 12
    encoder_dim: int | None = None
    decoder_dim: int | None = None
    head_dim: int = 64
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-5
    num_registers: int = 256
    fsq_levels: list[int] | tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    nested_dropout_mode: str = "uniform"
    cond_dropout_prob: float = 0.1
    timestep_frequency_dim: int = 256
    timestep_max_period: float = 256.0
    timestep_scale: float = 1000.0
    flow_time_distribution: str = "logit_normal"
    flow_time_mean: float = 0.0
    flow_time_std: float = 1.0
    num_inference_steps: int = 20
    guidance_scale: float = 7.5
    guidance: str = "apg"
    decoder_scheduler: dict | None = None
    initializer_range: float = 0.02
    train_stage: str = "tokenizer"
    vae_kl_weight: float = 1e-6

    def __post_init__(self, **kwargs):
        if self.encoder_dim is None:
            self.encoder_dim = 64 * self.encoder_depth
        if self.decoder_dim is None:
            self.decoder_dim = 64 * self.decoder_depth
        self.vae_block_out_channels = list(self.vae_block_out_channels)
        self.fsq_levels = list(self.fsq_levels)
        super().__post_init__(**kwargs)
        self.validate_flextok()

    def validate_flextok(self) -> None:
        for name in ("encoder_dim", "decoder_dim"):
            if getattr(self, name) % self.head_dim:
                raise ValueError(f"{name} ({getattr(self, name)}) must be a multiple of head_dim ({self.head_dim}).")
        if self.image_size % (self.vae_downsample_factor * self.patch_size):
            raise ValueError(f"image_size ({self.image_size}) must be divisible by the VAE downsampling "
                             f"({self.vae_downsample_factor}) times patch_size ({self.patch_size}).")
        if self.train_stage not in ("tokenizer", "vae"):
            raise ValueError(f"train_stage must be 'tokenizer' or 'vae', got {self.train_stage!r}.")
        if self.guidance not in ("cfg", "apg"):
            raise ValueError(f"guidance must be 'cfg' or 'apg', got {self.guidance!r}.")

    @property
    def vae_downsample_factor(self) -> int:
        return 2 ** (len(self.vae_block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        """Side of the VAE latent grid."""
        return self.image_size // self.vae_downsample_factor

    @property
    def grid_size(self) -> int:
        """Side of the patch grid the transformers see."""
        return self.latent_size // self.patch_size

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def tokens_per_sample(self) -> int:
        return self.num_registers

    @property
    def bits_per_token(self) -> float:
        return math.log2(self.codebook_size)


__all__ = ["FlexTokConfig"]
