"""TaDiCodec (arXiv 2508.16790): variants, Auto-class registration.

The Vocos vocoder is part of the model (`model.vocoder`), so one repository holds everything `decode` needs.
"""

from ...auto import register_tokenizer
from ...registry import register_variant
from .configuration_tadicodec import TaDiCodecConfig
from .feature_extraction_tadicodec import TaDiCodecFeatureExtractor
from .modeling_tadicodec import TaDiCodecModel
from .processing_tadicodec import TaDiCodecProcessor
from .text_tokenizer_tadicodec import build_character_tokenizer, build_text_tokenizer

TaDiCodecFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
TaDiCodecProcessor.register_for_auto_class("AutoProcessor")
register_tokenizer(TaDiCodecConfig, TaDiCodecModel, feature_extractor_class=TaDiCodecFeatureExtractor,
                   processor_class=TaDiCodecProcessor)

register_variant("tadicodec", TaDiCodecConfig, "TaDiCodec: 24 kHz speech, 6.25 Hz, one 14-bit BSQ codebook, text-aware "
                 "flow-matching decoder + Vocos (released amphion/TaDiCodec)")
register_variant("tadicodec-tiny", TaDiCodecConfig, "Tiny TaDiCodec for tests and CPU demos (64 wide, 2+2 layers, "
                 "2-layer Vocos, 256 text tokens)", hidden_size=64, num_heads=4, encoder_layers=2, decoder_layers=2,
                 text_vocab_size=256, text_alphabet="abcdefghijklmnopqrstuvwxyz0123456789'.,?!-", vocoder_dim=32,
                 vocoder_intermediate_dim=64, vocoder_layers=2)

__all__ = ["TaDiCodecConfig", "TaDiCodecModel", "TaDiCodecFeatureExtractor", "TaDiCodecProcessor",
           "build_text_tokenizer", "build_character_tokenizer"]
