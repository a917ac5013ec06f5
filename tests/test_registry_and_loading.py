import json

import pytest
import torch
import transformers
import unitok
from unitok.configuration_base import UnitokConfig
from unitok.outputs import TokenizerDecoderOutput, TokenizerEncoderOutput, TokenizerOutput


def test_list_models_and_modalities():
    names = unitok.list_models()
    assert {"flextok-d12-d12", "flextok-d18-d18", "flextok-d18-d28", "flextok-tiny"} <= set(names)
    assert names == sorted(names)
    assert set(unitok.list_models(modality="image")) >= {"flextok-tiny"}
    assert unitok.list_models(modality="cad") == [n for n in names if unitok.registry.get_variant(n).modality == "cad"]
    assert unitok.list_models(pattern="flextok-d18*") == ["flextok-d18-d18", "flextok-d18-d28"]


def test_create_model_applies_overrides_and_rejects_unknown_names():
    model = unitok.create_model("flextok-tiny", num_registers=32)
    assert model.config.num_registers == 32 and model.encoder.registers.shape[0] == 32
    with pytest.raises(ValueError, match="Unknown model"):
        unitok.create_model("flextok-huge")


def test_auto_tokenizer_from_config_and_variant_name_hint():
    config = unitok.create_config("flextok-tiny")
    model = unitok.AutoTokenizer.from_config(config)
    assert type(model).__name__ == "FlexTokModel"
    with pytest.raises(ValueError, match="variant name"):
        unitok.AutoTokenizer.from_pretrained("flextok-tiny")
    with pytest.raises(OSError):
        unitok.AutoTokenizer()


def test_transformers_auto_classes_resolve_unitok_types():
    config = transformers.AutoConfig.for_model("unitok_flextok")
    assert type(config).__name__ == "FlexTokConfig"
    assert transformers.AutoModel.from_config(unitok.create_config("flextok-tiny")).__class__.__name__ == "FlexTokModel"
    # unitok never registers models into transformers.AutoTokenizer (that slot belongs to text tokenizers)
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING

    assert type(config) not in TOKENIZER_MAPPING


class ToyConfig(UnitokConfig):
    model_type = "unitok_toy"
    modality = "cad"
    codebook_size: int = 10


class ToyTokenizer(unitok.UnitokPreTrainedModel):
    config: ToyConfig
    modality = "cad"

    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.codebook_size, 4)
        self.post_init()

    def encode(self, inputs):
        return TokenizerEncoderOutput(codes=inputs)

    def decode(self, codes=None, latents=None, *, generator=None, num_inference_steps=None):
        return TokenizerDecoderOutput(reconstruction=self.embed(codes))

    def forward(self, inputs):
        return TokenizerOutput(loss=self.embed(inputs).pow(2).mean())


def test_third_party_registration(tmp_path):
    unitok.AutoTokenizer.register(ToyConfig, ToyTokenizer)
    unitok.register_variant("toy-tiny", ToyConfig, "a toy")
    assert "toy-tiny" in unitok.list_models(modality="cad")
    model = unitok.create_model("toy-tiny")
    model.save_pretrained(tmp_path)
    assert type(unitok.AutoTokenizer.from_pretrained(tmp_path)) is ToyTokenizer
    assert type(transformers.AutoModel.from_pretrained(tmp_path)) is ToyTokenizer
    with pytest.raises(ValueError, match="already registered"):
        unitok.AutoTokenizer.register(ToyConfig, type("Other", (ToyTokenizer,), {}))


@pytest.fixture()
def saved_tiny(tmp_path):
    model = unitok.create_model("flextok-tiny")
    model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def test_wrong_shapes_fail_loudly(saved_tiny):
    config = json.loads((saved_tiny / "config.json").read_text())
    config["num_registers"] = 64
    (saved_tiny / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="shapes do not fit"):
        transformers.AutoModel.from_pretrained(saved_tiny)


def test_missing_weights_fail_loudly(saved_tiny):
    from safetensors.torch import load_file, save_file

    state = load_file(saved_tiny / "model.safetensors")
    del state["decoder.null_cond"]
    save_file(state, saved_tiny / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="partial load"):
        unitok.AutoTokenizer.from_pretrained(saved_tiny)
    model = unitok.AutoTokenizer.from_pretrained(saved_tiny, allow_missing_weights=True)
    assert torch.isfinite(model.decoder.null_cond).all()


def test_truncated_safetensors_fails_loudly(saved_tiny):
    path = saved_tiny / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        transformers.AutoModel.from_pretrained(saved_tiny)


def test_save_pretrained_writes_a_complete_folder(saved_tiny):
    files = {p.name for p in saved_tiny.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "modeling_flextok.py",
            "configuration_flextok.py", "image_processing_flextok.py"} <= files
    processor = transformers.AutoImageProcessor.from_pretrained(saved_tiny)
    assert processor.crop_size["height"] == 64
    assert not list(saved_tiny.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_auto_tokenizer_applies_config_fields_but_passes_loading_arguments_through(saved_tiny):
    model = unitok.AutoTokenizer.from_pretrained(saved_tiny, train_stage="vae", dtype=torch.bfloat16)
    assert model.config.train_stage == "vae"  # a FlexTok config field: overridden and re-validated
    assert model.dtype == torch.bfloat16  # a loading argument: reaches from_pretrained
    with pytest.raises(ValueError, match="train_stage"):
        unitok.AutoTokenizer.from_pretrained(saved_tiny, train_stage="bogus")
