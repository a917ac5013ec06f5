"""Base config of every unitok tokenizer (a transformers 5.x dataclass config)."""

from transformers import PreTrainedConfig


class UnitokConfig(PreTrainedConfig):
    """Adds the zoo-wide class attribute `modality` and the token-rate properties the harness reads.

    Subclasses set `model_type = "unitok_<family>"` (the prefix keeps clear of future native transformers types)
    and `modality`.
    """

    modality = None

    @property
    def tokens_per_sample(self) -> int | None:
        """Maximum tokens per item (image); None where it depends on the input length."""
        return None


__all__ = ["UnitokConfig"]
