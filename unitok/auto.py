"""Registration with transformers' Auto classes, and `unitok.AutoTokenizer`, the zoo's own entry point.

`unitok.AutoTokenizer` dispatches through transformers' registries (it never registers anything into
`transformers.AutoTokenizer`, whose slot belongs to text tokenizers and processors).
"""

import dataclasses
import os

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoImageProcessor,
    AutoModel,
    AutoModelForAudioTokenization,
    AutoProcessor,
    PreTrainedConfig,
)

_TOKENIZERS: dict[str, type] = {}  # model_type -> model class


def register_tokenizer(config_class: type, model_class: type, *, image_processor_class: type | None = None,
                       feature_extractor_class: type | None = None, processor_class: type | None = None,
                       exist_ok: bool = False) -> None:
    """Make a tokenizer loadable with transformers' Auto classes and `unitok.AutoTokenizer`.

    Registers `config_class` with `AutoConfig`, `model_class` with `AutoModel` (and with
    `AutoModelForAudioTokenization` for audio models), and the preprocessor with `AutoImageProcessor` /
    `AutoFeatureExtractor` / `AutoProcessor`.
    """
    model_type = config_class.model_type
    if model_type in _TOKENIZERS and _TOKENIZERS[model_type] is not model_class and not exist_ok:
        raise ValueError(f"model_type {model_type!r} is already registered to {_TOKENIZERS[model_type].__name__}.")
    AutoConfig.register(model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, model_class, exist_ok=True)
    if getattr(model_class, "modality", None) == "audio":
        AutoModelForAudioTokenization.register(config_class, model_class, exist_ok=True)
    if image_processor_class is not None:
        AutoImageProcessor.register(config_class, image_processor_classes={"torchvision": image_processor_class},
                                    exist_ok=True)
    if feature_extractor_class is not None:
        AutoFeatureExtractor.register(config_class, feature_extractor_class, exist_ok=True)
    if processor_class is not None:
        AutoProcessor.register(config_class, processor_class, exist_ok=True)
    _TOKENIZERS[model_type] = model_class


class AutoTokenizer:
    """Load any unitok tokenizer (or a registered third-party one) by path, Hub id, config or variant name.

    Example:
        >>> import unitok
        >>> model = unitok.AutoTokenizer.from_pretrained("path/or/org/flextok-d18-d28")
        >>> codes = model.encode(pixel_values).codes
    """

    def __init__(self):
        raise OSError("AutoTokenizer is a factory: use AutoTokenizer.from_pretrained(...) or .from_config(...).")

    @staticmethod
    def _model_class(config) -> type:
        if config.model_type not in _TOKENIZERS:
            raise ValueError(
                f"{config.model_type!r} is not a registered unitok tokenizer "
                f"(registered: {', '.join(sorted(_TOKENIZERS))}). Use unitok.AutoTokenizer.register(...) for "
                "third-party tokenizers."
            )
        return _TOKENIZERS[config.model_type]

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs):
        """Load weights from a folder or Hub repo (same kwargs as `PreTrainedModel.from_pretrained`; keyword
        arguments naming config fields override them, e.g. `train_stage="vae"`).

        A bare variant name (see `unitok.list_models()`) that is not a local folder raises with a hint, because
        released weights must come from a path or repo id.
        """
        config_kwargs = {k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only") if k in kwargs}
        try:
            config = AutoConfig.from_pretrained(name_or_path, **config_kwargs)
        except (OSError, ValueError) as error:
            from .registry import list_models

            if str(name_or_path) in list_models():
                raise ValueError(
                    f"{name_or_path!r} is a variant name, not a checkpoint. Use unitok.create_model({str(name_or_path)!r}) "
                    "for random weights, or pass a folder / Hub repo id holding weights."
                ) from error
            raise
        # Only the tokenizer's own config fields: base fields such as `dtype` are loading arguments.
        base_fields = {f.name for f in dataclasses.fields(PreTrainedConfig)}
        fields = {f.name for f in dataclasses.fields(type(config))} - base_fields
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        if overrides:  # config fields (e.g. train_stage) → a re-validated config
            config = type(config)(**{**config.to_dict(), **overrides})
        return cls._model_class(config).from_pretrained(name_or_path, config=config, **kwargs)

    @classmethod
    def from_config(cls, config, **kwargs):
        """Build a randomly initialised tokenizer from a config."""
        return cls._model_class(config)._from_config(config, **kwargs)

    @staticmethod
    def register(config_class: type, model_class: type, **preprocessors) -> None:
        """Register a third-party tokenizer (see `register_tokenizer`)."""
        register_tokenizer(config_class, model_class, **preprocessors)


__all__ = ["AutoTokenizer", "register_tokenizer"]
