"""Staging a Hub repository and its model card, without a server: contents, provenance, licence, dtype, bad input."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from safetensors import safe_open

import unitok
from unitok.auto import _TOKENIZERS
from unitok.cli import main as unitok_main
from unitok.conversion import record_conversion
from unitok.hub_upload import families, render_card, stage, validate_card

ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = ROOT / "recipes" / "configs" / "flextok" / "tiny_vae.yaml"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    torch.manual_seed(0)
    model = unitok.create_model("flextok-tiny").eval()
    folder = tmp_path_factory.mktemp("model") / "flextok-tiny"
    model.save_pretrained(folder)
    return model, folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "source"
    shutil.copytree(folder, target)
    return target


def test_dry_run_lists_exactly_the_staged_files(saved_model, tmp_path, capsys):
    _, folder = saved_model
    source = copy_of(folder, tmp_path)
    shutil.copy(TINY_RECIPE, source / "recipe.yaml")
    assert unitok_main(["push", str(source), "org/flextok-tiny", "--dry-run", "--stage-dir", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    staged = sorted(p.relative_to(tmp_path / "st").as_posix() for p in (tmp_path / "st").rglob("*") if p.is_file())
    listed = sorted(line.split()[-1] for line in out.splitlines() if line.startswith("  "))
    assert listed == staged
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "recipe.yaml",
            "modeling_flextok.py", "configuration_flextok.py"} <= set(staged)
    assert "nothing was uploaded" in out
    config = json.loads((tmp_path / "st" / "config.json").read_text())
    assert config["model_type"] == "unitok_flextok"
    assert config["auto_map"]["AutoModel"] == "modeling_flextok.FlexTokModel"
    assert (tmp_path / "st" / "recipe.yaml").read_text() == TINY_RECIPE.read_text()


def test_trained_weights_card_states_recipe_and_evaluation(saved_model, tmp_path):
    model, folder = saved_model
    source = copy_of(folder, tmp_path)
    shutil.copy(TINY_RECIPE, source / "recipe.yaml")
    metrics = {"model": "x", "model_type": "unitok_flextok", "modality": "image", "data": "/home/me/photos",
               "num_items": 3, "parameters_M": sum(p.numel() for p in model.parameters()) / 1e6,
               "budgets": {"tokens_1": {"tokens": 1, "psnr": {"mean": 9.5, "std": 0.1}},
                           "tokens_256": {"tokens": 256, "psnr": {"mean": 12.25, "std": 0.2},
                                          "ssim": {"mean": 0.31, "std": 0.01}, "FD-EffNetLite0": 3.0}}}
    (source / "eval").mkdir()
    (source / "eval" / "metrics.json").write_text(json.dumps(metrics))
    staged = stage(source, "org/flextok-tiny-trained", tmp_path / "st")
    assert staged.weights_origin == "trained"
    assert {"eval/metrics.json", "recipe.yaml"} <= {f.path for f in staged.files}
    card = validate_card(ModelCard.load(staged.folder / "README.md"))
    assert card.data.license == "apache-2.0" and card.data.library_name == "transformers"
    assert {"unitok", "image", "fsq", "arxiv:2502.13967"} <= set(card.data.tags)
    results = {(r.metric_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results == {("psnr", "PSNR (dB) @ 1 tokens"): 9.5, ("psnr", "PSNR (dB) @ 256 tokens"): 12.25,
                       ("ssim", "SSIM @ 256 tokens"): 0.31}
    assert all(r.dataset_type == "photos" for r in card.data.eval_results)  # no local path published
    assert "/home/me" not in card.content
    assert "accelerate launch recipes/train.py --config recipe.yaml" in card.text
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    assert f"{recipe['train']['steps']} steps" in card.text
    assert "12.250 ± 0.200" in card.text  # the harness's table is embedded


def test_converted_weights_take_the_official_licence_and_say_parity_is_unverified(saved_model, tmp_path):
    _, folder = saved_model
    source = copy_of(folder, tmp_path)
    record_conversion(source, source / "model.safetensors", converter="unitok.models.flextok.convert_flextok_original")
    staged = stage(source, "org/flextok-converted", tmp_path / "st")
    assert staged.weights_origin == "converted" and "conversion.json" in {f.path for f in staged.files}
    card = validate_card(ModelCard.load(staged.folder / "README.md"))
    assert card.data.license == "apple-amlr"
    assert "research use only" in card.text and "parity with the official implementation" in card.text
    assert "Not evaluated" in card.text
    # fine-tuned from a local converted checkpoint: its licence carries over
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    recipe["model"] = {"pretrained": str(source)}
    (tmp_path / "from_converted.yaml").write_text(yaml.safe_dump(recipe))
    staged = stage(folder, "org/ft", tmp_path / "ft0", recipe=tmp_path / "from_converted.yaml")
    assert staged.weights_origin == "trained"
    assert ModelCard.load(staged.folder / "README.md").data.license == "apple-amlr"
    # fine-tuned from a checkpoint that cannot be traced (a Hub id): no licence is guessed
    recipe["model"] = {"pretrained": "org/flextok-converted"}
    (tmp_path / "finetune.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(ValueError, match="fine-tuned.*cannot be traced.*--license"):
        stage(folder, "org/ft", tmp_path / "ft", recipe=tmp_path / "finetune.yaml")
    staged = stage(folder, "org/ft", tmp_path / "ft", recipe=tmp_path / "finetune.yaml", license="cc-by-nc-4.0",
                   base_model="org/flextok-converted")
    card = ModelCard.load(staged.folder / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and card.data.base_model == "org/flextok-converted"


def test_dtype_and_in_memory_models(saved_model, tmp_path):
    model, folder = saved_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    staged = stage(model, "org/flextok-bf16", tmp_path / "st", dtype="bfloat16", random_weights=True)
    with safe_open(str(staged.folder / "model.safetensors"), "pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"BF16"}
    assert all(torch.equal(before[k], v) and v.dtype == before[k].dtype for k, v in model.state_dict().items())
    reloaded = unitok.AutoTokenizer.from_pretrained(staged.folder)
    assert next(reloaded.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("problem, match", [
    ("no-weights", "has no weights"),
    ("no-config", "no config.json"),
    ("unknown-type", "unknown model type 'bert'"),
    ("bad-repo", "Invalid repo id"),
    ("no-namespace", "expected 'org/name'"),
    ("unspecified-origin", "Cannot tell the licence"),
    ("foreign-eval", "evaluation .* is of another model"),
])
def test_bad_input_is_refused_before_anything_is_staged(saved_model, tmp_path, capsys, problem, match):
    _, folder = saved_model
    source = copy_of(folder, tmp_path)
    repo = "org/flextok-tiny"
    extra = ["--random-weights"] if problem == "foreign-eval" else []
    if problem == "no-weights":
        (source / "model.safetensors").unlink()
    elif problem == "no-config":
        (source / "config.json").unlink()
    elif problem == "unknown-type":
        config = json.loads((source / "config.json").read_text())
        (source / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    elif problem == "bad-repo":
        repo = "org/flex tok!"
    elif problem == "no-namespace":
        repo = "flextok-tiny"
    elif problem == "foreign-eval":
        (tmp_path / "eval").mkdir()
        (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"model_type": "unitok_flextok",
                                                                    "parameters_M": 1.0}))
        extra += ["--eval", str(tmp_path / "eval")]
    args = ["flextok-tiny" if problem == "foreign-eval" else str(source), repo, "--stage-dir", str(tmp_path / "st")]
    assert unitok_main(["push", *args, "--to-git", str(tmp_path / "git"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unitok: error:") and len(err.strip().splitlines()) == 1, err
    assert re.search(match, err), err
    assert not (tmp_path / "st").exists() and not (tmp_path / "git").exists()
    assert not list(tmp_path.glob(".st.incomplete-*"))


def test_every_registered_tokenizer_has_a_card_template():
    assert set(_TOKENIZERS) <= set(families())
    for family in families().values():
        assert (family.folder / "card.md.j2").is_file()
        for key in ("name", "paper", "arxiv", "official_code", "official_weights_license", "quantizer",
                    "pipeline_tag", "summary", "usage_decode"):
            assert family.meta.get(key), (family.folder.name, key)


@pytest.mark.parametrize("name", unitok.list_models())
def test_every_variant_renders_a_valid_card(name):
    with torch.device("meta"):  # released sizes without allocating their weights
        model = unitok.create_model(name)
    weights = {"origin": "converted", "checkpoint": "model.safetensors", "sha256": "0" * 64, "converter": "x"}
    family = families()[model.config.model_type]
    card = render_card(model, f"org/{name}", weights=weights, license=family.meta["official_weights_license"],
                       dtype="float32")
    validate_card(ModelCard(str(card)))
    assert f"{sum(p.numel() for p in model.parameters()) / 1e6:,.2f} M" in card.text


def test_card_validation_catches_broken_metadata():
    good = "---\nlibrary_name: transformers\nlicense: mit\ntags: [unitok, arxiv:1]\n---\n\n# body\n"
    validate_card(good)
    with pytest.raises(ValueError, match="license 'made-up'"):
        validate_card(good.replace("license: mit", "license: made-up"))
    with pytest.raises(ValueError, match="tags must include"):
        validate_card(good.replace("[unitok, arxiv:1]", "[image]"))
    with pytest.raises(ValueError, match="license_name and license_link"):
        validate_card(good.replace("license: mit", "license: other"))
    with pytest.raises(ValueError, match="library_name"):
        validate_card(good.replace("library_name: transformers", "library_name: timm"))


def test_adapters_stage_with_their_own_card(saved_model, tmp_path):
    model, folder = saved_model
    source = copy_of(folder, tmp_path)  # the base, a local folder
    adapter = unitok.lora.apply(unitok.AutoTokenizer.from_pretrained(source), r=2)
    unitok.lora.save_adapter(adapter, tmp_path / "adapter")
    with pytest.raises(ValueError, match="base is the local folder .*--base-model"):
        stage(tmp_path / "adapter", "org/flextok-tiny-lora", tmp_path / "st0")
    with pytest.raises(ValueError, match="Cannot tell the licence of the base org/flextok-tiny"):
        stage(tmp_path / "adapter", "org/flextok-tiny-lora", tmp_path / "st0", base_model="org/flextok-tiny")
    record_conversion(source, source / "model.safetensors", converter="test")  # the base: converted official weights
    staged = stage(tmp_path / "adapter", "org/flextok-tiny-lora", tmp_path / "st", base_model="org/flextok-tiny")
    assert staged.weights_origin == "adapter"
    assert {f.path for f in staged.files} == {"adapter_config.json", "adapter_model.safetensors",
                                              "unitok_adapter.json", "README.md"}
    config = json.loads((staged.folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/flextok-tiny"
    card = validate_card(ModelCard.load(staged.folder / "README.md"))
    assert card.data.library_name == "peft" and card.data.base_model == "org/flextok-tiny"
    assert card.data.license == "apple-amlr" and {"lora", "unitok", "arxiv:2502.13967"} <= set(card.data.tags)
    assert "Codes are unchanged" in card.text and 'unitok.lora.load_adapter(base, "org/flextok-tiny-lora")' in card.text
    trainable = json.loads((staged.folder / "unitok_adapter.json").read_text())["trainable_parameters"]
    assert f"{trainable:,} trainable parameters" in card.text
    with pytest.raises(ValueError, match="not a unitok adapter"):
        (tmp_path / "adapter" / "unitok_adapter.json").unlink()
        stage(tmp_path / "adapter", "org/x", tmp_path / "st2", base_model="org/flextok-tiny", license="mit")
