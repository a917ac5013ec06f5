"""FlexTok (arXiv 2502.13967): variants, Auto-class registration."""

from ...auto import register_tokenizer
from ...registry import register_variant
from .configuration_flextok import FlexTokConfig
from .image_processing_flextok import FlexTokImageProcessor
from .modeling_flextok import FlexTokModel

FlexTokImageProcessor.register_for_auto_class("AutoImageProcessor")
register_tokenizer(FlexTokConfig, FlexTokModel, image_processor_class=FlexTokImageProcessor)

register_variant("flextok-d12-d12", FlexTokConfig, "FlexTok d12-d12 (released EPFL-VILAB/flextok_d12_d12_in1k)",
                 encoder_depth=12, decoder_depth=12)
register_variant("flextok-d18-d18", FlexTokConfig, "FlexTok d18-d18 (released EPFL-VILAB/flextok_d18_d18_in1k)",
                 encoder_depth=18, decoder_depth=18)
register_variant("flextok-d18-d28", FlexTokConfig, "FlexTok d18-d28 (released EPFL-VILAB/flextok_d18_d28_in1k/_dfn)",
                 encoder_depth=18, decoder_depth=28)
register_variant("flextok-tiny", FlexTokConfig, "Tiny FlexTok for tests and CPU demos (64², f4 VAE, 2+2 layers)",
                 image_size=64, vae_latent_channels=4, vae_block_out_channels=[32, 64, 64], vae_layers_per_block=1,
                 vae_norm_num_groups=16, encoder_depth=2, decoder_depth=2)

__all__ = ["FlexTokConfig", "FlexTokModel", "FlexTokImageProcessor"]
