"""Convert an official TaDiCodec checkpoint (amphion/TaDiCodec: `model.safetensors` for the codec,
`vocoder/*.safetensors` for Vocos, `config.json` in Amphion's commented JSON, `text_tokenizer/`) to unitok.

    python -m unitok.models.tadicodec.convert_tadicodec_original --checkpoint-dir TaDiCodec/ --output tadicodec/

Every official tensor maps to exactly one unitok tensor by the table below; an unmapped, missing or mis-shaped
tensor fails the conversion (the official loader uses `strict=False`, where such problems pass silently). Derived
buffers of the official model (the BSQ place values, RoPE inverse frequencies) are checked against ours and dropped.
"""

import argparse
import json
import re
from pathlib import Path

import torch

from ...conversion import load_converted, record_conversion
from .configuration_tadicodec import TaDiCodecConfig
from .modeling_tadicodec import TaDiCodecModel

_ATTN = {"q": "wq", "k": "wk", "v": "wv", "o": "proj"}
_MLP = {"gate": "fc1", "up": "fc3", "down": "fc2"}
_NORM = {"input_layernorm": "norm1", "post_attention_layernorm": "norm2"}

# (official regex, unitok replacement); replacements may be callables of the match.
CODEC_KEYS = [
    (r"text_emb\.weight", r"text_emb.weight"),
    (r"vq_(in|out)_linear\.(weight|bias)", r"vq_\1_linear.\2"),
    (r"(encoder|decoder)\.in_linear\.(weight|bias)", r"\1.in_linear.\2"),
    (r"decoder\.out_linear\.(weight|bias)", r"decoder.out_linear.\1"),
    (r"decoder\.(cond_mlp|text_mlp|diff_step_mlp)\.([02])\.(weight|bias)", r"decoder.\1.\2.\3"),
    (r"(encoder|decoder)\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.weight",
     lambda m: f"{m[1]}.blocks.{m[2]}.attn.{_ATTN[m[3]]}.weight"),
    (r"(encoder|decoder)\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight",
     lambda m: f"{m[1]}.blocks.{m[2]}.mlp.{_MLP[m[3]]}.weight"),
    (r"decoder\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.to_weight\.(weight|bias)",
     lambda m: f"decoder.blocks.{m[1]}.{_NORM[m[2]]}.to_weight.{m[3]}"),
    (r"decoder\.norm\.to_weight\.(weight|bias)", r"decoder.final_norm.to_weight.\1"),
]
VOCODER_KEYS = [(r"(backbone|head)\.(.+)", r"vocoder.\1.\2")]
DERIVED = [r"bsq\.(basis|group_basis)", r".*rotary_emb\.inv_freq"]


def _rename(key: str, table) -> str | None:
    for pattern, replacement in table:
        match = re.fullmatch(pattern, key)
        if match:
            return replacement(match) if callable(replacement) else match.expand(replacement)
    return None


def _check_derived(key: str, value: torch.Tensor, config: TaDiCodecConfig) -> None:
    """The official buffers we recompute must equal ours (MSB-first place values, RoPE θ)."""
    if key == "bsq.basis":
        expected = 2 ** torch.arange(config.vq_dim - 1, -1, -1)
        if not torch.equal(value.long(), expected):
            raise ValueError(f"bsq.basis {value.tolist()} is not MSB-first over {config.vq_dim} bits.")
    elif key.endswith("rotary_emb.inv_freq"):
        head_dim = config.hidden_size // config.num_heads
        expected = 1.0 / config.rope_theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
        if value.shape != expected.shape or not torch.allclose(value.float(), expected, rtol=1e-4):
            raise ValueError(f"{key} does not match RoPE θ={config.rope_theta} with head_dim {head_dim}.")


def convert_state_dict(codec: dict[str, torch.Tensor], vocoder: dict[str, torch.Tensor],
                       config: TaDiCodecConfig) -> dict[str, torch.Tensor]:
    """Official codec + vocoder tensors → unitok TaDiCodecModel state dict (strict: unknown keys raise)."""
    state, unmapped = {}, []
    for tensors, table in ((codec, CODEC_KEYS), (vocoder, VOCODER_KEYS)):
        for key, value in tensors.items():
            if any(re.fullmatch(p, key) for p in DERIVED):
                _check_derived(key, value, config)
                continue
            new = _rename(key, table)
            if new is None:
                unmapped.append(key)
            else:
                state[new] = value
    if unmapped:
        raise ValueError(f"{len(unmapped)} official tensors have no unitok counterpart: {sorted(unmapped)[:10]}.")
    return state


def _count(keys, pattern: str) -> int:
    indices = {int(m[1]) for k in keys if (m := re.fullmatch(pattern, k))}
    return max(indices) + 1 if indices else 0


def read_amphion_config(path: str | Path) -> dict:
    """Amphion's config.json allows `//` comments (it is read with json5); strip them outside strings."""
    text, out, in_string, i = Path(path).read_text(), [], False, 0
    while i < len(text):
        char = text[i]
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            in_string = not in_string
        if not in_string and text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        out.append(char)
        i += 1
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "".join(out)))  # trailing commas, as json5 allows


def infer_config(codec: dict, vocoder: dict, amphion: dict | None = None, **overrides) -> TaDiCodecConfig:
    """Widths and depths from tensor shapes; heads, mel statistics and front end from the Amphion config (the
    released values otherwise)."""
    keys = list(codec)
    model = (amphion or {}).get("model", {}).get("tadicodec", {})
    vocos = (amphion or {}).get("model", {}).get("vocos", {})
    pre = (amphion or {}).get("preprocess", {})
    values = dict(
        hidden_size=codec["text_emb.weight"].shape[1], text_vocab_size=codec["text_emb.weight"].shape[0],
        vq_dim=codec["vq_in_linear.weight"].shape[0], n_mels=codec["decoder.out_linear.weight"].shape[0],
        encoder_layers=_count(keys, r"encoder\.layers\.(\d+)\..*"),
        decoder_layers=_count(keys, r"decoder\.layers\.(\d+)\..*"),
        intermediate_size=codec["encoder.layers.0.mlp.gate_proj.weight"].shape[0],
        vocoder_dim=vocoder["backbone.embed.weight"].shape[0],
        vocoder_intermediate_dim=vocoder["backbone.convnext.0.pwconv1.weight"].shape[0],
        vocoder_layers=_count(list(vocoder), r"backbone\.convnext\.(\d+)\..*"),
    )
    if "num_heads" in model:
        values["num_heads"] = model["num_heads"]
    if "down_sample_factor" in model:
        values["down_sample_factor"] = model["down_sample_factor"]
    if "sigma" in model:
        values["flow_sigma"] = model["sigma"]
    for ours, theirs in (("sampling_rate", "sample_rate"), ("n_fft", "n_fft"), ("win_length", "win_size"),
                         ("hop_length", "hop_size"), ("f_min", "fmin"), ("f_max", "fmax"), ("mel_mean", "mel_mean"),
                         ("mel_var", "mel_var")):
        if theirs in pre:
            values[ours] = pre[theirs]
    if vocos.get("n_fft") not in (None, values.get("n_fft", 1920)) or vocos.get("padding", "same") != "same":
        raise ValueError(f"Unsupported vocoder settings {vocos}: unitok's TaDiCodec expects the vocoder's n_fft to "
                         "equal the front end's and 'same' padding, as released.")
    return TaDiCodecConfig(**{**values, **overrides})


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def convert_checkpoint(checkpoint_dir: str | Path, output: str | Path | None = None, **overrides) -> TaDiCodecModel:
    """Convert a local copy of amphion/TaDiCodec; with `output`, save the model, its processor (feature extractor +
    the official text tokenizer) and `conversion.json` there."""
    folder = Path(checkpoint_dir)
    codec_file = folder / "model.safetensors"
    vocoder_files = sorted((folder / "vocoder").glob("*.safetensors"))
    if not codec_file.is_file() or not vocoder_files:
        raise ValueError(f"{folder} must hold model.safetensors and vocoder/*.safetensors (amphion/TaDiCodec layout).")
    codec = _load_safetensors(codec_file)
    vocoder = {k: v for f in vocoder_files for k, v in _load_safetensors(f).items()}
    amphion = read_amphion_config(folder / "config.json") if (folder / "config.json").is_file() else None
    config = infer_config(codec, vocoder, amphion, **overrides)
    model = TaDiCodecModel(config)
    state = convert_state_dict(codec, vocoder, config)
    load_converted(model, state, "TaDiCodec")
    tokenizer_dir = folder / "text_tokenizer"
    if tokenizer_dir.is_dir():
        from transformers import PreTrainedTokenizerFast

        model.text_tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
    if output is not None:
        model.save_pretrained(output)  # with the processor (feature extractor + tokenizer) when a tokenizer is known
        record_conversion(output, codec_file, converter=__name__, vocoder=[f.name for f in vocoder_files])
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", required=True, help="local copy of amphion/TaDiCodec")
    parser.add_argument("--output", required=True, help="folder for the unitok model")
    args = parser.parse_args(argv)
    model = convert_checkpoint(args.checkpoint_dir, args.output)
    codec = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("vocoder."))
    vocoder = sum(p.numel() for p in model.vocoder.parameters())
    print(f"Converted {args.checkpoint_dir} → {args.output} (codec {codec / 1e6:.1f} M + vocoder {vocoder / 1e6:.1f} M "
          f"parameters, tokenizer {'included' if model.text_tokenizer is not None else 'MISSING'}).")


if __name__ == "__main__":
    main()
