"""The converter maps a state dict with the official apple/ml-flextok names and shapes onto unitok's FlexTok."""

import hashlib
import json
import math

import pytest
import torch
from safetensors.torch import save_file

import unitok
from unitok.models.flextok.convert_flextok_original import convert_checkpoint, convert_state_dict, infer_config


def official_sincos(grid: int, dim: int) -> torch.Tensor:
    """The official [1, D, H, W] table, written independently: channels [sin(row·ω), cos(row·ω), sin(col·ω),
    cos(col·ω)], ω_k = 10000^(−k/(D/4))."""
    omega = torch.tensor([10000 ** (-k / (dim / 4)) for k in range(dim // 4)], dtype=torch.float64)
    table = torch.zeros(dim, grid, grid, dtype=torch.float64)
    for r in range(grid):
        for c in range(grid):
            table[:, r, c] = torch.cat([torch.sin(r * omega), torch.cos(r * omega), torch.sin(c * omega),
                                        torch.cos(c * omega)])
    return table.float()[None]


def official_state_dict(model) -> dict[str, torch.Tensor]:
    """Re-express a unitok FlexTok's weights under the official module_dict names and shapes."""
    config, sd = model.config, model.state_dict()
    enc, dec = "encoder.module_dict.", "decoder.module_dict."
    out = {f"vae.vae.{k[4:]}": v for k, v in sd.items() if k.startswith("vae.")}
    out[enc + "enc_patch_emb.patch_proj.weight"] = sd["encoder.patch_embed.weight"]
    out[enc + "enc_patch_emb.patch_proj.bias"] = sd["encoder.patch_embed.bias"]
    out[enc + "enc_posemb_module.posembs"] = official_sincos(config.grid_size, config.encoder_dim)
    out[enc + "enc_register_module.registers"] = sd["encoder.registers"]
    out[enc + "enc_to_latents.proj.weight"] = sd["encoder.to_latents.weight"]
    out[enc + "enc_to_latents.proj.bias"] = sd["encoder.to_latents.bias"]
    for key, value in sd.items():
        if key.startswith("encoder.blocks."):
            out[enc + "enc_transformer." + key[len("encoder."):]] = value
        if key.startswith("decoder.blocks."):
            out[dec + "dec_transformer." + key[len("decoder."):]] = value
    out[dec + "dec_from_latents.proj.weight"] = sd["decoder.from_latents.weight"]
    out[dec + "dec_from_latents.proj.bias"] = sd["decoder.from_latents.bias"]
    out[dec + "dec_registers_posemb_module.posembs"] = sd["decoder.register_pos_embed"].T[None, None].contiguous()
    out[dec + "dec_nested_dropout.dropout_mask_token"] = sd["decoder.nested_dropout.mask_token"]
    out[dec + "dec_latent_dropout.nullcond"] = sd["decoder.null_cond"]
    out[dec + "dec_noise_patch_emb.patch_proj.weight"] = sd["decoder.patch_embed.weight"]
    out[dec + "dec_noise_patch_emb.patch_proj.bias"] = sd["decoder.patch_embed.bias"]
    out[dec + "dec_patches_posemb_module.posembs"] = official_sincos(config.grid_size, config.decoder_dim)
    for i in (0, 2):
        for p in ("weight", "bias"):
            out[dec + f"dec_time_embedder.mlp.{i}.{p}"] = sd[f"decoder.time_embed.mlp.{i}.{p}"]
    for p in ("weight", "bias"):
        out[dec + f"dec_to_patches.adaLN_modulation.1.{p}"] = sd[f"decoder.head.adaLN_modulation.1.{p}"]
        out[dec + f"dec_to_patches.proj.{p}"] = sd[f"decoder.head.proj.{p}"]
    return out


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(0)
    model = unitok.create_model("flextok-tiny", vae_scaling_factor=0.7).eval()
    with torch.no_grad():  # non-zero heads, so outputs depend on every weight
        for p in model.parameters():
            if p.requires_grad and not p.any():
                p.normal_(0, 0.02)
    return model


def test_official_checkpoint_converts_to_identical_outputs(source_model, tmp_path):
    official = official_state_dict(source_model)
    assert all(k.startswith(("vae.vae.", "encoder.module_dict.", "decoder.module_dict.")) for k in official)
    path = tmp_path / "model.safetensors"
    metadata = {"vae": str({"hf_hub_path": None, "latent_channels": 4, "scaling_factor": 0.7})}
    save_file(official, path, metadata=metadata)
    model = convert_checkpoint(path, tmp_path / "converted", vae_norm_num_groups=16, image_size=64)
    assert model.config.vae_scaling_factor == 0.7  # read from the metadata
    for field in ("encoder_depth", "decoder_depth", "encoder_dim", "decoder_dim", "num_registers",
                  "vae_latent_channels", "vae_block_out_channels", "vae_layers_per_block", "patch_size"):
        assert getattr(model.config, field) == getattr(source_model.config, field), field
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(model.encode(x).codes, source_model.encode(x).codes)
    a = model.decode(source_model.encode(x).codes[:, :9], generator=torch.Generator().manual_seed(0),
                     num_inference_steps=2).reconstruction
    b = source_model.decode(source_model.encode(x).codes[:, :9], generator=torch.Generator().manual_seed(0),
                            num_inference_steps=2).reconstruction
    assert torch.equal(a, b)
    reloaded = unitok.AutoTokenizer.from_pretrained(tmp_path / "converted")
    assert torch.equal(reloaded.encode(x).codes, source_model.encode(x).codes)
    provenance = json.loads((tmp_path / "converted" / "conversion.json").read_text())  # read by hub_upload's card
    assert provenance["checkpoint"] == "model.safetensors" and provenance["vae_scaling_factor"] == 0.7
    assert provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unmapped_or_inconsistent_keys_fail_loudly(source_model):
    official = official_state_dict(source_model)
    config = infer_config(official, vae_scaling_factor=1.0, vae_norm_num_groups=16, image_size=64)
    with pytest.raises(ValueError, match="no unitok counterpart"):
        convert_state_dict({**official, "encoder.module_dict.enc_mystery.weight": torch.zeros(1)}, config)
    broken = dict(official)
    broken["encoder.module_dict.enc_posemb_module.posembs"] = broken[
        "encoder.module_dict.enc_posemb_module.posembs"].flip(-1)
    with pytest.raises(ValueError, match="sin-cos"):
        convert_state_dict(broken, config)
    with pytest.raises(ValueError, match="scaling_factor"):
        infer_config(official, {})


def test_missing_official_key_fails(source_model, tmp_path):
    official = official_state_dict(source_model)
    del official["decoder.module_dict.dec_latent_dropout.nullcond"]
    path = tmp_path / "model.safetensors"
    save_file(official, path)
    with pytest.raises(ValueError, match="missing"):
        convert_checkpoint(path, vae_scaling_factor=1.0, vae_norm_num_groups=16, image_size=64)


def test_released_shapes_are_inferred(source_model):
    """The converter reads depth/width from shapes; on a released-size state dict (meta tensors) it finds d18-d28."""
    with torch.device("meta"):
        big = unitok.create_model("flextok-d18-d28")
    shapes = {k: torch.empty(v.shape, device="meta") for k, v in official_state_dict_shapes(big).items()}
    config = infer_config(shapes, vae_scaling_factor=1.0)
    assert (config.encoder_depth, config.decoder_depth, config.encoder_dim, config.decoder_dim) == (18, 28, 1152, 1792)
    assert config.vae_block_out_channels == [128, 256, 512, 512] and config.vae_layers_per_block == 2
    assert config.vae_latent_channels == 16 and math.prod(config.fsq_levels) == 64_000


def official_state_dict_shapes(model):
    """Just the keys needed by `infer_config`, with official names (meta tensors, no memory)."""
    sd = model.state_dict()
    out = {f"vae.vae.{k[4:]}": v for k, v in sd.items() if k.startswith("vae.")}
    out["encoder.module_dict.enc_register_module.registers"] = sd["encoder.registers"]
    out["encoder.module_dict.enc_patch_emb.patch_proj.weight"] = sd["encoder.patch_embed.weight"]
    out["decoder.module_dict.dec_nested_dropout.dropout_mask_token"] = sd["decoder.nested_dropout.mask_token"]
    for key, value in sd.items():
        if key.startswith("encoder.blocks."):
            out["encoder.module_dict.enc_transformer." + key[len("encoder."):]] = value
        if key.startswith("decoder.blocks."):
            out["decoder.module_dict.dec_transformer." + key[len("decoder."):]] = value
    return out
