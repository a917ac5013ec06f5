"""LoRA fine-tuning of any unitok tokenizer, on PEFT.

    peft_model = unitok.lora.apply(model, preset="decoder", r=16, alpha=32)   # a peft.PeftModel
    peft_model(**batch).loss.backward()                                     # encode / decode / forward still work
    unitok.lora.save_adapter(peft_model, "adapter")   # adapter_config.json, adapter_model.safetensors, unitok_adapter.json
    peft_model = unitok.lora.load_adapter(base, "adapter" or "org/adapter-repo")
    merged = unitok.lora.merge(peft_model)            # the base class, LoRA folded into its weights

Targets come from the model's named presets (`Model.lora_presets`), built from its real module names. `decoder` is
the default because it keeps codes valid: tokens produced before the adapter decode with it, and a language model
trained on the old tokens stays usable. Presets that touch the encoder or quantizer change the code space; using one
warns, and the adapter's `unitok_adapter.json` records it.

Pitfalls handled here (see shared/reference/hf-conventions.md §4): ConvTranspose layers cannot take LoRA (refused with
their names); weight-norm parametrisations are folded into plain weights on the adapted layers before LoRA attaches,
and restored after merging, because merging into a weight-norm layer silently changes its outputs.
"""

import json
import re
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from .remote_code import write_atomic

ADAPTER_METADATA = "unitok_adapter.json"
DEFAULT_PRESET = "decoder"
# Layer types PEFT's LoRA supports (plus transformers' Conv1D, matched by name below).
_SUPPORTED = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MultiheadAttention)
_CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def presets(model) -> dict[str, dict]:
    """The model's named LoRA presets: {name: {"target_modules": regex, "changes_codes": bool}}."""
    return dict(getattr(_unwrap(model), "lora_presets", {}) or {})


def _unwrap(model):
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def _matching_modules(model: nn.Module, pattern: str) -> dict[str, nn.Module]:
    return {name: module for name, module in model.named_modules() if name and re.fullmatch(pattern, name)}


def _resolve_targets(model, preset: str | None, target_modules: str | None) -> tuple[str, bool, str]:
    """(regex, changes_codes, label) for a preset name or an explicit regex."""
    available = presets(model)
    if target_modules is not None:
        matched = _matching_modules(model, target_modules)
        code_safe = set()
        for spec in available.values():
            if not spec["changes_codes"]:
                code_safe |= set(_matching_modules(model, spec["target_modules"]))
        return target_modules, not set(matched) <= code_safe, "custom"
    if preset not in available:
        raise ValueError(f"Unknown LoRA preset {preset!r} for {type(model).__name__}; presets: "
                         f"{', '.join(sorted(available)) or 'none (pass target_modules=...)'}.")
    return available[preset]["target_modules"], bool(available[preset]["changes_codes"]), preset


def _check_targets(model, pattern: str) -> dict[str, nn.Module]:
    matched = _matching_modules(model, pattern)
    if not matched:
        raise ValueError(f"LoRA target {pattern!r} matches no module of {type(model).__name__} (module names look "
                         f"like {', '.join(n for n, _ in list(model.named_modules())[1:6])}, ...).")
    transposed = [n for n, m in matched.items() if isinstance(m, _CONV_TRANSPOSE)]
    if transposed:
        raise ValueError(f"LoRA cannot adapt ConvTranspose layers ({', '.join(transposed[:5])}); exclude them from the "
                         "target, or train them fully (modules_to_save).")
    unsupported = [f"{n} ({type(m).__name__})" for n, m in matched.items()
                   if not isinstance(m, _SUPPORTED) and type(m).__name__ != "Conv1D"]
    if unsupported:
        raise ValueError(f"LoRA target {pattern!r} matches layers LoRA cannot adapt: {', '.join(unsupported[:5])}.")
    return matched


def _fold_weight_norm(modules: dict[str, nn.Module]) -> dict[str, dict]:
    """Replace weight-norm on these modules by the plain weight it computes (same outputs); returns what was folded
    so that `merge` can restore the parametrisation."""
    folded = {}
    for name, module in modules.items():
        if parametrize.is_parametrized(module, "weight"):
            dims = [getattr(p, "dim", None) for p in module.parametrizations["weight"]]
            if len(dims) != 1 or dims[0] is None:
                continue  # another parametrisation than weight-norm: leave it
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            folded[name] = {"style": "parametrization", "dim": dims[0]}
        elif hasattr(module, "weight_g") and hasattr(module, "weight_v"):
            hook = next((h for h in module._forward_pre_hooks.values() if type(h).__name__ == "WeightNorm"), None)
            if hook is not None:
                torch.nn.utils.remove_weight_norm(module)
                folded[name] = {"style": "hook", "dim": hook.dim}
    return folded


def _restore_weight_norm(model: nn.Module, folded: dict[str, dict]) -> None:
    modules = dict(model.named_modules())
    for name, spec in folded.items():
        if spec["style"] == "parametrization":
            torch.nn.utils.parametrizations.weight_norm(modules[name], "weight", dim=spec["dim"])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.nn.utils.weight_norm(modules[name], "weight", dim=spec["dim"])


def apply(model, preset: str | None = DEFAULT_PRESET, *, r: int = 8, alpha: float | None = None,
          dropout: float = 0.0, target_modules: str | None = None, base_model_name_or_path: str | None = None):
    """Attach fresh LoRA adapters and freeze everything else; returns a `peft.PeftModel`.

    Args:
        preset: a name from `presets(model)`; ignored when `target_modules` (a full-match regex) is given.
        r, alpha, dropout: LoRA rank, scaling numerator (default `r`, i.e. scale 1) and dropout on the LoRA input.
        base_model_name_or_path: the base's Hub id or folder, recorded in the adapter (default `model.name_or_path`).

    Outputs are unchanged at initialisation (LoRA's B matrices start at zero).
    """
    from peft import LoraConfig, PeftModel, get_peft_model

    from .modeling_base import UnitokPreTrainedModel

    if isinstance(model, PeftModel):
        raise ValueError("This model already carries adapters; merge them first (unitok.lora.merge) or start from "
                         "the base model.")
    if not isinstance(model, UnitokPreTrainedModel):
        raise TypeError(f"unitok.lora.apply takes a unitok tokenizer, got {type(model).__name__}.")
    if r < 1:
        raise ValueError(f"LoRA rank r must be >= 1, got {r}.")
    pattern, changes_codes, label = _resolve_targets(model, preset, target_modules)
    matched = _check_targets(model, pattern)
    if changes_codes:
        warnings.warn(f"LoRA preset {label!r} adapts layers before the quantizer of {type(model).__name__}: codes "
                      "produced before and after fine-tuning differ, so token streams made with the base model become "
                      "invalid. Publish the result as a new tokenizer version.", UserWarning, stacklevel=2)
    folded = _fold_weight_norm(matched)
    if base_model_name_or_path is not None:
        model.name_or_path = str(base_model_name_or_path)
    config = LoraConfig(r=r, lora_alpha=alpha if alpha is not None else r, lora_dropout=dropout,
                        target_modules=pattern, init_lora_weights=True)
    peft_model = get_peft_model(model, config)
    peft_model.unitok_lora = {
        "base_model_type": model.config.model_type, "preset": label, "target_modules": pattern,
        "changes_codes": changes_codes, "folded_weight_norm": folded, "adapted_modules": len(matched),
        "adapts_embeddings": any(isinstance(m, nn.Embedding) for m in matched.values()),
    }
    return peft_model


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def save_adapter(peft_model, directory: str | Path) -> Path:
    """`adapter_config.json` + `adapter_model.safetensors` (PEFT) and `unitok_adapter.json` (base model type, preset,
    whether codes change, trainable parameters)."""
    from . import __version__

    meta = getattr(peft_model, "unitok_lora", None)
    if meta is None:
        raise ValueError("save_adapter takes a model returned by unitok.lora.apply or load_adapter.")
    directory = Path(directory)
    # PEFT's "auto" looks the base config up on the Hub to decide about embeddings; we know whether we adapted any
    peft_model.save_pretrained(directory, save_embedding_layers=bool(meta.get("adapts_embeddings", True)))
    trainable, total = trainable_parameters(peft_model)
    record = {**meta, "base_model_name_or_path": peft_model.peft_config["default"].base_model_name_or_path,
              "trainable_parameters": trainable, "total_parameters": total, "unitok_version": __version__}
    write_atomic(directory / ADAPTER_METADATA, json.dumps(record, indent=2) + "\n")
    return directory


def read_adapter_metadata(adapter: str | Path, **hub_kwargs) -> dict | None:
    """`unitok_adapter.json` of a local folder or Hub repo (None for a plain PEFT adapter)."""
    path = Path(adapter) / ADAPTER_METADATA
    if Path(adapter).is_dir():
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(str(adapter), ADAPTER_METADATA, **hub_kwargs)).read_text())
    except EntryNotFoundError:
        return None


def load_adapter(base, adapter: str | Path, *, is_trainable: bool = False, **hub_kwargs):
    """Attach a saved adapter (folder or Hub repo id) to `base`; returns a `peft.PeftModel`.

    Raises ValueError for an adapter made for another model type or whose targets are absent from `base`."""
    from peft import PeftModel

    text = str(adapter)
    if not Path(adapter).is_dir() and (Path(text).is_absolute() or text.startswith(".") or text.count("/") != 1):
        raise ValueError(f"Adapter not found: {adapter} (expected an adapter folder or a Hub repo id 'org/name').")
    meta = read_adapter_metadata(adapter, **hub_kwargs)
    model_type = base.config.model_type
    if meta is not None and meta.get("base_model_type") != model_type:
        raise ValueError(f"The adapter at {adapter} was trained for {meta.get('base_model_type')!r} models; this base "
                         f"is {model_type!r}.")
    if meta is not None:
        _check_targets(base, meta["target_modules"])
        _fold_weight_norm({n: m for n, m in base.named_modules() if n in meta.get("folded_weight_norm", {})})
        if meta.get("changes_codes"):
            warnings.warn(f"The adapter at {adapter} changes the codes of {type(base).__name__} (preset "
                          f"{meta.get('preset')!r}): tokens made with the base model are not valid with it.",
                          UserWarning, stacklevel=2)
    try:
        peft_model = PeftModel.from_pretrained(base, str(adapter), is_trainable=is_trainable, **hub_kwargs)
    except ValueError as error:
        raise ValueError(f"The adapter at {adapter} does not fit {type(base).__name__}: {error}") from error
    config = peft_model.peft_config["default"]
    peft_model.unitok_lora = meta or {
        "base_model_type": model_type, "preset": "unknown", "target_modules": config.target_modules,
        "changes_codes": True, "folded_weight_norm": {}, "adapted_modules": None, "adapts_embeddings": True}
    return peft_model


def merge(peft_model):
    """Fold the adapters into the base weights and return the base model (its own class, saveable with
    `save_pretrained`); weight-norm folded by `apply` is restored around the merged weights."""
    meta = getattr(peft_model, "unitok_lora", {}) or {}
    merged = peft_model.merge_and_unload()
    _restore_weight_norm(merged, meta.get("folded_weight_norm", {}))
    return merged


__all__ = ["apply", "presets", "save_adapter", "load_adapter", "merge", "read_adapter_metadata",
           "trainable_parameters", "ADAPTER_METADATA", "DEFAULT_PRESET"]
