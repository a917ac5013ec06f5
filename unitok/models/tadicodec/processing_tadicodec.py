"""TaDiCodec processor: the waveform feature extractor plus the text tokenizer that conditions the decoder.

Outputs (`BatchFeature`): `input_values` `(batch, samples)` float32 and `attention_mask` `(batch, samples)` int64 when
audio is given; `text_ids` `(batch, text_len)` int64 and `text_attention_mask` `(batch, text_len)` int64 (right-padded
with the tokenizer's pad id) when text is given. Text is tokenized with `add_special_tokens=False`, as the official
pipeline does (`tokenizer(prompt_text + text, add_special_tokens=False)`).

Loading: transformers 5.x derives a processor's sub-processors from its `__init__` signature and loads the feature
extractor through `AutoFeatureExtractor`, which only knows custom classes that are registered
(`AutoFeatureExtractor.register(config_class, TaDiCodecFeatureExtractor)`) or saved as remote code. So that
`TaDiCodecProcessor.from_pretrained` works without any registration, it loads the feature extractor with
`TaDiCodecFeatureExtractor.from_pretrained` directly and the tokenizer with `AutoTokenizer`.

This file imports only transformers (and its sibling feature-extraction module) so that it can be bundled as flat
remote code.
"""

from typing import ClassVar

from transformers import BatchFeature, ProcessorMixin

from .feature_extraction_tadicodec import TaDiCodecFeatureExtractor


class TaDiCodecProcessor(ProcessorMixin):
    r"""Wraps a [`TaDiCodecFeatureExtractor`] and a text tokenizer (a `PreTrainedTokenizerFast`; the released model
    ships a 32,100-entry one under `text_tokenizer/`) into a single processor.

    Args:
        feature_extractor: a `TaDiCodecFeatureExtractor`.
        tokenizer: any transformers tokenizer with a pad token.
    """

    # Informational in transformers 5.x (sub-processors are read from `__init__`'s signature); kept for older tooling.
    attributes: ClassVar[list[str]] = ["feature_extractor", "tokenizer"]
    feature_extractor_class = "TaDiCodecFeatureExtractor"
    tokenizer_class = ("PreTrainedTokenizerFast", "TokenizersBackend")

    def __init__(self, feature_extractor, tokenizer):
        # by name, so that the library class and a remote-code copy of it are both accepted
        if not any(c.__name__ == "TaDiCodecFeatureExtractor" for c in type(feature_extractor).__mro__):
            raise TypeError(
                f"feature_extractor must be a TaDiCodecFeatureExtractor, got {type(feature_extractor).__name__}."
            )
        super().__init__(feature_extractor, tokenizer)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        subfolder = kwargs.pop("subfolder", "")
        feature_extractor = TaDiCodecFeatureExtractor.from_pretrained(
            pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        tokenizer = cls._load_tokenizer_from_pretrained(
            "tokenizer", pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        return [feature_extractor, tokenizer]

    def __call__(self, audio=None, text=None, sampling_rate: int | None = None, return_tensors: str | None = "pt",
                 **kwargs) -> BatchFeature:
        """Featurize audio and/or tokenize text.

        Args:
            audio: one waveform or a list of waveforms (see `TaDiCodecFeatureExtractor.__call__`).
            text: a string or a list of strings (one per audio item when both are given).
            sampling_rate: rate of `audio` in Hz (required with audio).
            return_tensors: "pt" (default), "np" or None.
            **kwargs: `padding` (for the audio, default True); anything else goes to the tokenizer (e.g.
                `truncation=True, max_length=...`).

        Returns:
            BatchFeature with `input_values`, `attention_mask` (audio) and `text_ids`, `text_attention_mask` (text).
        """
        if audio is None and text is None:
            raise ValueError("TaDiCodecProcessor needs `audio` (with `sampling_rate`), `text`, or both.")
        audio_padding = kwargs.pop("padding", True)
        data = {}
        audio_batch = text_batch = None
        if audio is not None:
            features = self.feature_extractor(audio, sampling_rate=sampling_rate, return_tensors=return_tensors,
                                              padding=audio_padding)
            data.update(features)
            audio_batch = len(features["input_values"])
        if text is not None:
            texts = [text] if isinstance(text, str) else text
            if not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError(f"text must be a string or a non-empty list of strings, got {type(text).__name__}.")
            if self.tokenizer.pad_token_id is None:
                raise ValueError("The tokenizer has no pad token; set one (TaDiCodec pads text with id 0).")
            kwargs.setdefault("add_special_tokens", False)
            encoded = self.tokenizer(list(texts), padding=True, return_attention_mask=True,
                                     return_tensors=return_tensors, **kwargs)
            data["text_ids"] = encoded["input_ids"]
            data["text_attention_mask"] = encoded["attention_mask"]
            text_batch = len(texts)
        if audio_batch is not None and text_batch is not None and audio_batch != text_batch:
            raise ValueError(f"Got {audio_batch} audio item(s) but {text_batch} text(s); give one text per audio item.")
        return BatchFeature(data, tensor_type=return_tensors)

    @property
    def sampling_rate(self) -> int:
        """The rate audio is resampled to (the feature extractor's)."""
        return self.feature_extractor.sampling_rate

    @property
    def model_input_names(self) -> list[str]:
        return ["input_values", "attention_mask", "text_ids", "text_attention_mask"]


__all__ = ["TaDiCodecProcessor"]
