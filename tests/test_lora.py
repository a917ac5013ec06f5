"""`unitok.lora` beyond the per-model mixin checks: weight-norm layers (merge must not change outputs), layers LoRA
cannot adapt, adapters for another model type, misuse."""

from dataclasses import dataclass

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

import unitok
from unitok.configuration_base import UnitokConfig
from unitok.modeling_base import UnitokPreTrainedModel
from unitok.outputs import TokenizerOutput


@dataclass
class CodecOutput(TokenizerOutput):
    reconstruction: torch.Tensor | None = None


class WeightNormConfig(UnitokConfig):
    model_type = "unitok_test_weightnorm"
    modality = "audio"
    channels: int = 8


class WeightNormCodec(UnitokPreTrainedModel):
    """EnCodec-style convolutions: weight-norm as a parametrisation and as the legacy hook, and a ConvTranspose."""

    config_class = WeightNormConfig
    modality = "audio"
    main_input_name = "input_values"
    lora_presets = {
        "decoder": {"target_modules": r"decoder\.(conv_a|conv_b)", "changes_codes": False},
        "encoder": {"target_modules": r"encoder", "changes_codes": True},
        "upsampler": {"target_modules": r"decoder\.up", "changes_codes": False},
    }

    def __init__(self, config):
        super().__init__(config)
        c = config.channels
        self.encoder = nn.Conv1d(1, c, 3, padding=1)
        self.decoder = nn.Module()
        self.decoder.conv_a = nn.utils.parametrizations.weight_norm(nn.Conv1d(c, c, 3, padding=1))
        with pytest.warns(FutureWarning):
            self.decoder.conv_b = nn.utils.weight_norm(nn.Conv1d(c, c, 3, padding=1))
        self.decoder.up = nn.ConvTranspose1d(c, 1, 1)
        self.post_init()

    def encode(self, input_values):
        return self.encoder(input_values)

    def decode(self, codes=None, latents=None, *, generator=None, num_inference_steps=None):
        hidden = torch.tanh(self.decoder.conv_a(latents))
        return self.decoder.up(self.decoder.conv_b(hidden))

    def forward(self, input_values, generator=None):
        reconstruction = self.decode(latents=self.encode(input_values))
        loss = (reconstruction - input_values).abs().mean()
        return CodecOutput(loss=loss, reconstruction=reconstruction)


def make_codec():
    torch.manual_seed(0)
    return WeightNormCodec(WeightNormConfig()).eval()


def test_merging_into_weight_norm_layers_keeps_outputs_and_the_state_dict_layout():
    x = torch.randn(2, 1, 32)
    model = unitok.lora.apply(make_codec(), "decoder", r=2)
    assert model.unitok_lora["folded_weight_norm"] == {"decoder.conv_a": {"style": "parametrization", "dim": 0},
                                                      "decoder.conv_b": {"style": "hook", "dim": 0}}
    torch.testing.assert_close(model(x).reconstruction, make_codec()(x).reconstruction)  # folding is exact
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        model(x).loss.backward()
        optimizer.step()
    adapted = model(x).reconstruction.detach()
    merged = unitok.lora.merge(model)
    assert set(merged.state_dict()) == set(make_codec().state_dict())  # weight-norm tensors are back
    torch.testing.assert_close(merged(x).reconstruction, adapted, atol=1e-5, rtol=1e-5)


def test_layers_lora_cannot_adapt_are_refused_by_name():
    with pytest.raises(ValueError, match=r"ConvTranspose layers \(decoder.up\)"):
        unitok.lora.apply(make_codec(), "upsampler")
    with pytest.raises(ValueError, match=r"cannot adapt: decoder \(Module\)"):
        unitok.lora.apply(make_codec(), target_modules="decoder")


def test_custom_targets_are_classified_by_the_presets():
    adapted = unitok.lora.apply(make_codec(), target_modules=r"decoder\.conv_a", r=2)
    assert adapted.unitok_lora["changes_codes"] is False
    with pytest.warns(UserWarning, match="codes produced before and after fine-tuning differ"):
        adapted = unitok.lora.apply(make_codec(), target_modules=r"encoder|decoder\.conv_a", r=2)
    assert adapted.unitok_lora["changes_codes"] is True


def test_adapters_for_another_model_type_or_missing_layers_are_refused(tmp_path):
    flextok = unitok.lora.apply(unitok.create_model("flextok-tiny"), r=2)
    unitok.lora.save_adapter(flextok, tmp_path / "flextok-adapter")
    with pytest.raises(ValueError, match="trained for 'unitok_flextok' models; this base is 'unitok_test_weightnorm'"):
        unitok.lora.load_adapter(make_codec(), tmp_path / "flextok-adapter")
    # a plain PEFT adapter (no unitok metadata) whose targets the base lacks
    plain = get_peft_model(nn.Sequential(nn.Linear(2, 2)), LoraConfig(r=1, target_modules=["0"]))
    plain.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="does not fit WeightNormCodec"):
        unitok.lora.load_adapter(make_codec(), tmp_path / "plain")


def test_misuse():
    model = unitok.lora.apply(make_codec(), r=2)
    with pytest.raises(ValueError, match="already carries adapters"):
        unitok.lora.apply(model)
    with pytest.raises(TypeError, match="takes a unitok tokenizer"):
        unitok.lora.apply(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="rank r must be >= 1"):
        unitok.lora.apply(make_codec(), r=0)
    with pytest.raises(ValueError, match="save_adapter takes a model returned by unitok.lora"):
        unitok.lora.save_adapter(get_peft_model(make_codec(), LoraConfig(r=1, target_modules=["encoder"])), "x")


def trained_like_flextok(seed: int = 0):
    torch.manual_seed(seed)
    model = unitok.create_model("flextok-tiny").eval()
    with torch.no_grad():  # open the adaLN-zero gates, as after training, so adapters change the output
        for param in model.parameters():
            if not param.any():
                param.normal_(0, 0.02)
    return model


def random_adapter(base, **kwargs):
    """LoRA with non-zero B matrices (as after fine-tuning)."""
    model = unitok.lora.apply(base, r=2, **kwargs)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return model.eval()


def test_cli_adapter_and_merge(tmp_path, capsys):
    from PIL import Image

    from unitok.cli import main

    trained_like_flextok().save_pretrained(tmp_path / "base")
    adapted = random_adapter(unitok.AutoTokenizer.from_pretrained(tmp_path / "base"))
    unitok.lora.save_adapter(adapted, tmp_path / "adapter")
    Image.new("RGB", (64, 64), (200, 30, 90)).save(tmp_path / "in.png")
    common = ["--model", str(tmp_path / "base"), str(tmp_path / "in.png"), "--steps", "2"]
    assert main(["reconstruct", *common, "-o", str(tmp_path / "plain.png")]) == 0
    assert main(["reconstruct", *common, "--adapter", str(tmp_path / "adapter"), "-o", str(tmp_path / "lora.png")]) == 0
    assert Image.open(tmp_path / "plain.png").tobytes() != Image.open(tmp_path / "lora.png").tobytes()

    assert main(["lora", "merge", str(tmp_path / "base"), str(tmp_path / "adapter"), str(tmp_path / "merged")]) == 0
    merged = unitok.AutoTokenizer.from_pretrained(tmp_path / "merged").eval()
    assert (tmp_path / "merged" / "preprocessor_config.json").is_file()
    codes = torch.randint(0, merged.codebook_size, (1, 16))
    a = merged.decode(codes, generator=torch.Generator().manual_seed(0), num_inference_steps=2).reconstruction
    b = adapted.decode(codes, generator=torch.Generator().manual_seed(0), num_inference_steps=2).reconstruction
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

    capsys.readouterr()
    assert main(["lora", "merge", str(tmp_path / "base"), str(tmp_path / "adapter"), str(tmp_path / "merged")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["reconstruct", *common, "--adapter", str(tmp_path / "nope"), "-o", str(tmp_path / "x.png")]) == 2
    assert "Adapter not found" in capsys.readouterr().err
