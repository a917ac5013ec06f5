"""Convert an official apple/ml-flextok checkpoint (`model.safetensors` of EPFL-VILAB/flextok_*) to unitok.

    python -m unitok.models.flextok.convert_flextok_original --checkpoint flextok_d18_d28_in1k/model.safetensors \
        --output flextok-d18-d28 [--vae-scaling-factor 0.x]

The official model is a hydra tree of `module_dict`s; its keys map one-to-one onto unitok's modules (table below).
The two fixed sin-cos position tables stored as frozen parameters are not copied: unitok recomputes them, and the
converter checks that the stored ones equal unitok's (which pins the position-embedding formula). The architecture
is read from tensor shapes; the VAE scaling factor from the checkpoint's metadata when it is there. Every key must
be used and every unitok weight filled, otherwise the conversion fails and names the offending keys.
"""

import argparse
import ast
import re
from pathlib import Path

import torch

from ...conversion import load_converted, record_conversion
from ...layers.embeddings import sincos_2d
from .configuration_flextok import FlexTokConfig
from .modeling_flextok import FlexTokModel

ENC = r"encoder\.module_dict\."
DEC = r"decoder\.module_dict\."
BLOCK = r"blocks\.(\d+)\.((?:attn\.(?:wq|wk|wv|proj)|mlp\.fc[123]|adaLN_modulation\.1)\.(?:weight|bias))"

# (official regex, unitok template). Templates use \1, \2 for the captured groups.
KEY_MAP: list[tuple[str, str]] = [
    (r"vae\.vae\.(.+)", r"vae.\1"),
    (ENC + r"enc_patch_emb\.patch_proj\.(weight|bias)", r"encoder.patch_embed.\1"),
    (ENC + r"enc_register_module\.registers", r"encoder.registers"),
    (ENC + r"enc_transformer\." + BLOCK, r"encoder.blocks.\1.\2"),
    (ENC + r"enc_to_latents\.proj\.(weight|bias)", r"encoder.to_latents.\1"),
    (DEC + r"dec_from_latents\.proj\.(weight|bias)", r"decoder.from_latents.\1"),
    (DEC + r"dec_nested_dropout\.dropout_mask_token", r"decoder.nested_dropout.mask_token"),
    (DEC + r"dec_latent_dropout\.nullcond", r"decoder.null_cond"),
    (DEC + r"dec_noise_patch_emb\.patch_proj\.(weight|bias)", r"decoder.patch_embed.\1"),
    (DEC + r"dec_time_embedder\.mlp\.([02])\.(weight|bias)", r"decoder.time_embed.mlp.\1.\2"),
    (DEC + r"dec_transformer\." + BLOCK, r"decoder.blocks.\1.\2"),
    (DEC + r"dec_to_patches\.(adaLN_modulation\.1|proj)\.(weight|bias)", r"decoder.head.\1.\2"),
]
REGISTER_POSEMB = DEC + r"dec_registers_posemb_module\.posembs"
FIXED_POSEMBS = {ENC + r"enc_posemb_module\.posembs": "encoder", DEC + r"dec_patches_posemb_module\.posembs": "decoder"}


def convert_state_dict(official: dict[str, torch.Tensor], config: FlexTokConfig) -> dict[str, torch.Tensor]:
    """Rename official keys to unitok's; verify and drop the fixed sin-cos tables. Raises on unmapped keys."""
    converted, unmapped = {}, []
    for key, tensor in official.items():
        if re.fullmatch(REGISTER_POSEMB, key):
            converted["decoder.register_pos_embed"] = tensor.reshape(tensor.shape[-2], tensor.shape[-1]).T.contiguous()
            continue
        fixed = next((part for pattern, part in FIXED_POSEMBS.items() if re.fullmatch(pattern, key)), None)
        if fixed is not None:
            dim = config.encoder_dim if fixed == "encoder" else config.decoder_dim
            expected = sincos_2d(config.grid_size, config.grid_size, dim)
            stored = tensor.reshape(dim, -1).T.float()  # [1, D, H, W] → (H·W, D), row-major
            if stored.shape != expected.shape or not torch.allclose(stored, expected, atol=1e-4):
                raise ValueError(f"{key}: the stored sin-cos table differs from unitok's 2D sin-cos formula.")
            continue
        for pattern, template in KEY_MAP:
            match = re.fullmatch(pattern, key)
            if match:
                converted[match.expand(template)] = tensor
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"{len(unmapped)} official keys have no unitok counterpart: {unmapped[:10]}")
    return converted


def _count_blocks(keys, prefix: str) -> int:
    indices = {int(m.group(1)) for k in keys if (m := re.match(prefix + r"blocks\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def infer_config(official: dict[str, torch.Tensor], metadata: dict | None = None, **overrides) -> FlexTokConfig:
    """Read the architecture from tensor shapes (and the VAE scaling factor from metadata when present)."""
    keys = list(official)
    registers = official["encoder.module_dict.enc_register_module.registers"]
    decoder_mask = official["decoder.module_dict.dec_nested_dropout.dropout_mask_token"]
    patch_in = official["encoder.module_dict.enc_patch_emb.patch_proj.weight"].shape[1]
    latent_channels = official["vae.vae.encoder.conv_out.weight"].shape[0] // 2
    vae_channels = []
    while f"vae.vae.encoder.down_blocks.{len(vae_channels)}.resnets.0.conv1.weight" in official:
        vae_channels.append(official[f"vae.vae.encoder.down_blocks.{len(vae_channels)}.resnets.0.conv1.weight"].shape[0])
    layers = len({m.group(1) for k in keys if (m := re.match(r"vae\.vae\.encoder\.down_blocks\.0\.resnets\.(\d+)\.", k))})
    kwargs = dict(
        encoder_depth=_count_blocks(keys, ENC + r"enc_transformer\."),
        decoder_depth=_count_blocks(keys, DEC + r"dec_transformer\."),
        encoder_dim=registers.shape[1], decoder_dim=decoder_mask.shape[0], num_registers=registers.shape[0],
        vae_latent_channels=latent_channels, patch_size=int(round((patch_in / latent_channels) ** 0.5)),
        vae_block_out_channels=vae_channels, vae_layers_per_block=layers,
    )
    scaling = _metadata_scaling_factor(metadata or {})
    if scaling is not None:
        kwargs["vae_scaling_factor"] = scaling
    kwargs.update(overrides)
    if "vae_scaling_factor" not in kwargs:
        raise ValueError("The checkpoint's metadata has no VAE `scaling_factor`; pass it explicitly "
                         "(--vae-scaling-factor, from the VAE's config.json).")
    return FlexTokConfig(**kwargs)


def _metadata_scaling_factor(metadata: dict) -> float | None:
    """The official checkpoints store their hydra config as stringified dicts in the safetensors metadata."""
    for value in metadata.values():
        try:
            tree = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            continue
        found = _find_key(tree, "scaling_factor")
        if found is not None:
            return float(found)
    return None


def _find_key(tree, key):
    if isinstance(tree, dict):
        if tree.get(key) is not None:
            return tree[key]
        children = tree.values()
    elif isinstance(tree, (list, tuple)):
        children = tree
    else:
        return None
    for child in children:
        found = _find_key(child, key)
        if found is not None:
            return found
    return None


def convert_checkpoint(checkpoint: str | Path, output: str | Path | None = None, **config_overrides) -> FlexTokModel:
    """Load an official safetensors checkpoint, convert it strictly, optionally `save_pretrained` to `output`."""
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as handle:
        official = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = handle.metadata()
    config = infer_config(official, metadata, **config_overrides)
    model = FlexTokModel(config)
    state = convert_state_dict(official, config)
    load_converted(model, state, "FlexTok")
    if output is not None:
        model.save_pretrained(output)
        record_conversion(output, checkpoint, converter=__name__, vae_scaling_factor=config.vae_scaling_factor)
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="official model.safetensors")
    parser.add_argument("--output", required=True, help="folder for the unitok model")
    parser.add_argument("--vae-scaling-factor", type=float, default=None,
                        help="VAE latent scaling factor, if the checkpoint's metadata does not carry it")
    args = parser.parse_args(argv)
    overrides = {} if args.vae_scaling_factor is None else {"vae_scaling_factor": args.vae_scaling_factor}
    model = convert_checkpoint(args.checkpoint, args.output, **overrides)
    print(f"Converted {args.checkpoint} → {args.output} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
          f"parameters, VAE scaling factor {model.config.vae_scaling_factor}).")


if __name__ == "__main__":
    main()
