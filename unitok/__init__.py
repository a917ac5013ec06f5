"""unitok: one interface for multimodal tokenizers (image, speech, motion, CAD) built on transformers.

`import unitok` registers every tokenizer with transformers' Auto classes, so
`transformers.AutoModel.from_pretrained(path)` returns the unitok model.
"""

__version__ = "0.1.0"

from . import lora  # noqa: F401  (unitok.lora.apply / load_adapter / merge)
from . import models  # noqa: F401  (registers every family)
from .auto import AutoTokenizer, register_tokenizer
from .modeling_base import MODALITIES, UnitokPreTrainedModel
from .outputs import TokenizerDecoderOutput, TokenizerEncoderOutput, TokenizerOutput
from .registry import create_config, create_model, list_models, register_variant

__all__ = [
    "AutoTokenizer", "register_tokenizer", "UnitokPreTrainedModel", "MODALITIES", "TokenizerEncoderOutput",
    "TokenizerDecoderOutput", "TokenizerOutput", "create_config", "create_model", "list_models", "register_variant",
]
