"""The contract every unitok tokenizer follows, and the behaviour they all share.

A unitok tokenizer is a `transformers.PreTrainedModel` with three entry points:

- `encode(inputs, **conditioning) -> TokenizerEncoderOutput` with `codes` (discrete) and/or `latents` (continuous),
  plus whatever `decode` needs back (`lengths`, `attention_mask`).
- `decode(codes=None, latents=None, *, generator=None, num_inference_steps=None, **conditioning)
  -> TokenizerDecoderOutput` with `reconstruction` in the processor's model-input space. Conditioning is keyword
  only and model specific: a transcript and voice prompt for speech, the first frame for motion, and so on.
  Stochastic decoders are deterministic for a given `generator`.
- `forward(inputs, ...) -> TokenizerOutput` with the training `loss` first and each term as `<name>_loss`.
  Training always calls the model (`model(...)`), never `encode`/`decode`, because DDP/FSDP hooks run only there.

Shared behaviour implemented here: re-creating non-persistent buffers after meta-device loading, and writing the
flat remote-code files plus `auto_map` on `save_pretrained`.
"""

import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel

from .remote_code import auto_map_entry, save_remote_code

MODALITIES = ("image", "audio", "motion", "cad")


def block_lora_presets(encoder: str = "encoder", decoder: str = "decoder") -> dict[str, dict]:
    """`decoder` / `encoder` / `all` LoRA presets over the attention (wq, wk, wv, proj) and SwiGLU (fc1, fc2, fc3)
    layers of unitok transformer blocks at `<encoder|decoder>.blocks.N`. Adapting the encoder changes the codes."""
    layers = r"\.blocks\.\d+\.(attn\.(wq|wk|wv|proj)|mlp\.fc[123])"
    return {"decoder": {"target_modules": re.escape(decoder) + layers, "changes_codes": False},
            "encoder": {"target_modules": re.escape(encoder) + layers, "changes_codes": True},
            "all": {"target_modules": f"({re.escape(encoder)}|{re.escape(decoder)}){layers}", "changes_codes": True}}


class UnitokPreTrainedModel(PreTrainedModel):
    """Base class of every unitok tokenizer.

    Class attributes a model sets:
        modality (`str`): one of `"image"`, `"audio"`, `"motion"`, `"cad"`.
        remote_auto_classes (`tuple[str, ...]`): the transformers Auto classes written into `auto_map`
            (`AutoModel` always; speech models add `AutoModelForAudioTokenization`).
        lora_presets (`dict`): named LoRA targets built from the model's module names (see `unitok.lora`).
    """

    modality: str = None
    remote_auto_classes: tuple[str, ...] = ("AutoModel",)
    # Named LoRA target sets for `unitok.lora`: {name: {"target_modules": full-match regex over module names,
    # "changes_codes": whether adapting them changes what `encode` returns}}. "decoder" is the default preset.
    lora_presets: dict[str, dict] = {}
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def encode(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement `encode`.")

    def decode(self, codes=None, latents=None, *, generator=None, num_inference_steps=None, **conditioning):
        raise NotImplementedError(f"{type(self).__name__} must implement `decode`.")

    def build_preprocessor(self):
        """The processor matching this config (image processor / feature extractor), or None if the model takes
        tensors directly (e.g. CAD command sequences)."""
        return None

    def adaptive_weight_layer(self) -> torch.Tensor | None:
        """The weight of the last layer producing `reconstruction` in training (VQGAN's adaptive GAN weight
        balances gradient norms there); None where forward returns no reconstruction."""
        return None

    def default_token_budgets(self) -> list[int] | None:
        """Token counts the evaluation harness decodes at (rate–distortion curve) for tokenizers whose code
        prefixes decode (1D nested tokens); None for fixed-length tokenizers."""
        return None

    @property
    def codebook_size(self) -> int | None:
        """Number of distinct token ids (None for continuous tokenizers)."""
        return getattr(self.config, "codebook_size", None)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Default init, then re-create derived buffers.

        transformers 5.x instantiates models on the meta device and only fills tensors found in the checkpoint, so
        every `persistent=False` buffer (FSQ bases, RoPE tables, position tables) must be recomputed here. Modules
        that own such buffers implement `reset_buffers()`, which recomputes them in place.
        """
        super()._init_weights(module)
        if callable(getattr(module, "reset_buffers", None)):
            module.reset_buffers()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, allow_missing_weights: bool = False, **kwargs):
        """`PreTrainedModel.from_pretrained` that refuses partial loads.

        A checkpoint with tensors of the wrong shape, missing weights, or a truncated/corrupt safetensors file raises
        `ValueError` naming the problem, instead of silently re-initialising weights. `allow_missing_weights=True`
        lets missing weights be initialised (e.g. when adding a new head); `ignore_mismatched_sizes=True` keeps
        transformers' behaviour for shape mismatches.
        """
        want_info = kwargs.pop("output_loading_info", False)
        user_ignores_mismatch = kwargs.pop("ignore_mismatched_sizes", False)
        source = pretrained_model_name_or_path
        try:
            model, info = super().from_pretrained(source, *args, output_loading_info=True,
                                                  ignore_mismatched_sizes=True, **kwargs)
        except SafetensorError as error:
            raise ValueError(f"Cannot read the weights of {source}: the safetensors file is truncated or corrupt "
                             f"({error}).") from error
        if info["mismatched_keys"] and not user_ignores_mismatch:
            details = "; ".join(f"{key}: checkpoint {tuple(a)} vs model {tuple(b)}"
                                for key, a, b in sorted(info["mismatched_keys"])[:10])
            raise ValueError(f"{source} has tensors whose shapes do not fit this config: {details}.")
        if source is not None and info["missing_keys"] and not allow_missing_weights:
            missing = sorted(info["missing_keys"])
            raise ValueError(f"{source} lacks {len(missing)} weights of {cls.__name__} (e.g. {missing[:10]}); "
                             "refusing a partial load. Pass allow_missing_weights=True to initialise them randomly.")
        return (model, info) if want_info else model

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus `auto_map` and the flat remote-code files.

        The folder then loads with `AutoModel.from_pretrained(folder)` when unitok is imported and with
        `AutoModel.from_pretrained(folder, trust_remote_code=True)` where it is not installed.
        """
        classes = {"AutoConfig": type(self.config), **{name: type(self) for name in self.remote_auto_classes}}
        self.config.auto_map = {name: auto_map_entry(cls) for name, cls in classes.items()}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            save_remote_code(Path(save_directory), list(classes.values()))
            processor = self.build_preprocessor()
            if processor is not None and not (Path(save_directory) / "preprocessor_config.json").exists():
                processor.save_pretrained(save_directory)  # a complete folder: the Auto processor class loads it too
        return result


__all__ = ["UnitokPreTrainedModel", "MODALITIES", "block_lora_presets"]
