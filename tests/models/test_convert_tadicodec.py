"""The TaDiCodec converter on a synthetic official checkpoint: the tiny model's tensors under the official names
(written out here independently of the converter's table), in the amphion/TaDiCodec folder layout."""

import json

import pytest
import torch
from safetensors.torch import save_file

import unitok
from unitok.models.tadicodec import build_character_tokenizer
from unitok.models.tadicodec.convert_tadicodec_original import convert_checkpoint, read_amphion_config

OURS_TO_OFFICIAL = {"wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj",
                    "proj": "self_attn.o_proj", "fc1": "mlp.gate_proj", "fc3": "mlp.up_proj", "fc2": "mlp.down_proj",
                    "norm1": "input_layernorm", "norm2": "post_attention_layernorm"}

AMPHION_CONFIG = """{
    "model_type": "TasCodec",
    "preprocess": {
        "hop_size": 480, "sample_rate": 24000, "n_fft": 1920, "num_mels": 128, "win_size": 1920,
        "fmin": 0, "fmax": 12000,
        "mel_var": 8.14, "mel_mean": -4.92,  // statistics of the training set
    },
    "model": {
        "tadicodec": {"hidden_size": 64, "num_heads": 4, "down_sample_factor": 8, "vq_emb_dim": 14,
                      "sigma": 1e-5, "text_vocab_size": 256},
        "vocos": {"input_channels": 128, "dim": 32, "intermediate_dim": 64, "num_layers": 2, "n_fft": 1920,
                  "hop_size": 480, "padding": "same"}
    }
}"""


def official_state(model) -> tuple[dict, dict]:
    """unitok names → the official ones: `blocks.N.attn.wq` → `layers.N.self_attn.q_proj`, `blocks.N.norm1` →
    `layers.N.input_layernorm`, `final_norm` → `norm`, `vocoder.` stripped; plus the official derived buffers."""
    codec, vocoder = {}, {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[0] == "vocoder":
            vocoder[".".join(parts[1:])] = value
        elif parts[0] in ("quantizer", "mel") or "rotary" in parts:
            continue  # recomputed buffers, not in the official checkpoint under these names
        elif parts[1] == "blocks":  # encoder|decoder . blocks . N . (attn|mlp . name | norm1|norm2) . rest
            inner = parts[4] if parts[3] in ("attn", "mlp") else parts[3]
            rest = parts[5:] if parts[3] in ("attn", "mlp") else parts[4:]
            codec[".".join([parts[0], "layers", parts[2], OURS_TO_OFFICIAL[inner], *rest])] = value
        elif parts[1] == "final_norm":
            codec[".".join([parts[0], "norm", *parts[2:]])] = value
        else:
            codec[key] = value
    codec["bsq.basis"] = 2 ** torch.arange(13, -1, -1)
    codec["bsq.group_basis"] = torch.tensor([1])
    codec["encoder.layers.0.self_attn.rotary_emb.inv_freq"] = 1.0 / 10000 ** (torch.arange(0, 16, 2).float() / 16)
    return codec, vocoder


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    model = unitok.create_model("tadicodec-tiny", text_alphabet=None).eval()
    with torch.no_grad():  # open the zero-initialised gains so every tensor matters
        for param in model.parameters():
            if not param.any():
                param.normal_(0, 0.02)
    return model


def write_checkpoint(folder, codec, vocoder):
    (folder / "vocoder").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in codec.items()}, folder / "model.safetensors")
    save_file({k: v.contiguous() for k, v in vocoder.items()}, folder / "vocoder" / "model.safetensors")
    (folder / "config.json").write_text(AMPHION_CONFIG)
    build_character_tokenizer("abcdefghijklmnopqrstuvwxyz ").save_pretrained(folder / "text_tokenizer")


def test_official_checkpoint_converts_to_identical_outputs(source, tmp_path):
    codec, vocoder = official_state(source)
    assert "decoder.layers.1.post_attention_layernorm.to_weight.weight" in codec
    assert "encoder.layers.0.mlp.gate_proj.weight" in codec and "decoder.norm.to_weight.bias" in codec
    assert "backbone.convnext.1.gamma" in vocoder and "head.istft.window" in vocoder
    write_checkpoint(tmp_path / "official", codec, vocoder)
    model = convert_checkpoint(tmp_path / "official", tmp_path / "converted")
    assert (model.config.num_heads, model.config.encoder_layers, model.config.decoder_layers,
            model.config.vocoder_layers, model.config.text_vocab_size) == (4, 2, 2, 2, 256)
    audio = torch.randn(1, 24000) * 0.1
    codes = source.encode(audio).codes
    assert torch.equal(model.encode(audio).codes, codes)
    text = torch.randint(1, 256, (1, 5))
    kwargs = dict(text_ids=text, num_inference_steps=2)
    a = model.decode(codes, generator=torch.Generator().manual_seed(0), **kwargs).reconstruction
    b = source.decode(codes, generator=torch.Generator().manual_seed(0), **kwargs).reconstruction
    assert torch.equal(a, b)
    reloaded = unitok.AutoTokenizer.from_pretrained(tmp_path / "converted")
    assert reloaded.text_tokenizer is not None  # the official tokenizer travels with the processor
    out = reloaded.decode(codes, text="hello", num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == (1, codes.shape[1] * 3840)
    provenance = json.loads((tmp_path / "converted" / "conversion.json").read_text())
    assert provenance["checkpoint"] == "model.safetensors" and provenance["vocoder"] == ["model.safetensors"]


def test_amphion_config_with_comments_and_trailing_commas(tmp_path):
    (tmp_path / "config.json").write_text(AMPHION_CONFIG)
    config = read_amphion_config(tmp_path / "config.json")
    assert config["preprocess"]["mel_mean"] == -4.92 and config["model"]["tadicodec"]["num_heads"] == 4


@pytest.mark.parametrize("damage, match", [
    ("unknown key", "no unitok counterpart"),
    ("missing key", "missing"),
    ("LSB-first basis", "MSB-first"),
    ("wrong RoPE", "RoPE"),
])
def test_inconsistent_checkpoints_fail_loudly(source, tmp_path, damage, match):
    codec, vocoder = official_state(source)
    if damage == "unknown key":
        codec["decoder.mystery.weight"] = torch.zeros(1)
    elif damage == "missing key":
        del codec["decoder.layers.0.self_attn.k_proj.weight"]
    elif damage == "LSB-first basis":
        codec["bsq.basis"] = codec["bsq.basis"].flip(0)
    else:
        codec["encoder.layers.0.self_attn.rotary_emb.inv_freq"] *= 2
    write_checkpoint(tmp_path / "official", codec, vocoder)
    with pytest.raises(ValueError, match=match):
        convert_checkpoint(tmp_path / "official")
