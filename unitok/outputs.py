"""Output dataclasses shared by every unitok tokenizer.

Each model may subclass these to add fields (for example FlexTok's per-term losses), but the fields below keep
their meaning everywhere, so training loops, the evaluation harness and the CLI can treat every tokenizer alike.
"""

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class TokenizerEncoderOutput(ModelOutput):
    """What `encode` returns.

    Args:
        codes (`torch.LongTensor`, *optional*):
            Discrete token ids of a quantized tokenizer. Shape is model specific and documented by each model, for
            example `(batch, num_tokens)` for 1D image tokenizers or `(batch, frames)` for single-codebook speech.
        latents (`torch.FloatTensor`, *optional*):
            Continuous tokens of a continuous tokenizer, or the pre-quantization latents of a discrete one,
            `(batch, num_tokens, latent_dim)`.
        lengths (`torch.LongTensor`, *optional*):
            `(batch,)` number of valid tokens per item, for variable-length inputs (audio, CAD programs).
        attention_mask (`torch.BoolTensor`, *optional*):
            `(batch, num_tokens)` True where a token is valid.
    """

    codes: torch.LongTensor | None = None
    latents: torch.FloatTensor | None = None
    lengths: torch.LongTensor | None = None
    attention_mask: torch.BoolTensor | None = None


@dataclass
class TokenizerDecoderOutput(ModelOutput):
    """What `decode` returns.

    Args:
        reconstruction (`torch.FloatTensor`):
            The reconstruction in the same space as the processor's model input (e.g. `(batch, 3, H, W)` in
            [-1, 1] for FlexTok, `(batch, samples)` at the model's sampling rate for speech).
        lengths (`torch.LongTensor`, *optional*): `(batch,)` valid length per item for variable-length outputs.
    """

    reconstruction: torch.FloatTensor | None = None
    lengths: torch.LongTensor | None = None


@dataclass
class TokenizerOutput(ModelOutput):
    """What `forward` (training) returns: the total loss first, then each term under a name ending in `_loss`.

    Subclasses add their loss terms as fields named `<term>_loss`; `loss_terms()` collects them for logging.
    """

    loss: torch.FloatTensor | None = None

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Every non-None `*_loss` field (the total `loss` excluded), detached, for logging."""
        return {k: v.detach() for k, v in self.items() if k.endswith("_loss") and v is not None}


__all__ = ["TokenizerEncoderOutput", "TokenizerDecoderOutput", "TokenizerOutput"]
