"""Named variants (timm-style): `list_models`, `create_model`.

A variant is a stable name (it becomes the Hub repo name) bound to a config class and the keyword arguments of the
released configuration. Model packages declare their variants with `register_variant` at import time.
"""

import fnmatch
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    name: str
    config_class: type
    config_kwargs: dict = field(default_factory=dict)
    description: str = ""

    @property
    def modality(self) -> str:
        return self.config_class.modality


_VARIANTS: dict[str, Variant] = {}


def register_variant(name: str, config_class: type, description: str = "", **config_kwargs) -> Variant:
    """Declare a named configuration. Names are unique across the zoo."""
    if name in _VARIANTS and _VARIANTS[name].config_class is not config_class:
        raise ValueError(f"A variant named {name!r} is already registered for {_VARIANTS[name].config_class.__name__}.")
    _VARIANTS[name] = Variant(name, config_class, dict(config_kwargs), description)
    return _VARIANTS[name]


def list_models(modality: str | None = None, pattern: str | None = None) -> list[str]:
    """Sorted variant names, optionally restricted to a modality (`image`, `audio`, `motion`, `cad`) and a glob."""
    names = [n for n, v in _VARIANTS.items() if modality is None or v.modality == modality]
    if pattern is not None:
        names = fnmatch.filter(names, pattern)
    return sorted(names)


def get_variant(name: str) -> Variant:
    if name not in _VARIANTS:
        raise ValueError(f"Unknown model {name!r}. Available: {', '.join(list_models())}.")
    return _VARIANTS[name]


def create_config(name: str, **overrides):
    """The released configuration of variant `name`, with `overrides` applied."""
    variant = get_variant(name)
    return variant.config_class(**{**variant.config_kwargs, **overrides})


def create_model(name: str, **overrides):
    """Build variant `name` with the released configuration (random weights). `overrides` change config fields."""
    from .auto import AutoTokenizer

    return AutoTokenizer.from_config(create_config(name, **overrides))


__all__ = ["Variant", "register_variant", "list_models", "get_variant", "create_config", "create_model"]
