"""Model cards: a family's `family.yaml` + `card.md.j2` (in `model_cards/`) and facts computed from the model and the
files staged with it, rendered into `README.md` with `huggingface_hub.ModelCard` / `ModelCardData`.

A card states only what something in the staged repository backs: parameters and token rate from the model, the
weight origin from `conversion.json` / `recipe.yaml`, evaluation numbers from `eval/metrics.json` (also written as
`model-index` entries), the licence from the family (converted weights) or the uploader.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from unitok.model_cards import TEMPLATES_DIR

# Hub task ids for "reconstruct the input through the tokens", per modality (no "tokenizer" task exists on the Hub).
RECONSTRUCTION_TASKS = {"image": ("image-to-image", "Image reconstruction"),
                        "audio": ("audio-to-audio", "Speech reconstruction"),
                        "motion": ("image-to-image", "Future-frame reconstruction"),
                        "cad": ("text-generation", "CAD program reconstruction")}
# model-index metric names for the numbers the evaluation harness writes (others are left in eval/metrics.json).
INDEXED_METRICS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "st_lpips": "ST-LPIPS",
                   "mel_distance": "mel distance", "pesq_wb": "PESQ (wb)", "stoi": "STOI", "wer": "WER", "cer": "CER",
                   "speaker_similarity": "speaker similarity", "command_accuracy": "command accuracy",
                   "parameter_accuracy": "parameter accuracy", "chamfer_distance": "Chamfer distance"}
# Licence ids the Hub accepts that our families use; anything else must be `other` with a name and a link.
KNOWN_LICENSES = {"apache-2.0", "mit", "apple-amlr", "apple-ascl", "cc-by-4.0", "cc-by-nc-4.0", "cc-by-sa-4.0",
                  "cc0-1.0", "bsd-3-clause", "llama2", "llama3.2", "openrail", "creativeml-openrail-m", "other"}


@dataclass(frozen=True)
class Family:
    """A model family's card folder in `model_cards/`."""

    folder: Path
    meta: dict

    @property
    def model_type(self) -> str:
        return self.meta["model_type"]


def families() -> dict[str, Family]:
    """model_type → Family, for every folder in `model_cards/` with a `family.yaml`."""
    found = {}
    for path in sorted(TEMPLATES_DIR.glob("*/family.yaml")):
        meta = yaml.safe_load(path.read_text())
        found[meta["model_type"]] = Family(path.parent, meta)
    return found


def family_for(model_type: str) -> Family:
    found = families()
    if model_type not in found:
        raise ValueError(f"No model card template for model_type {model_type!r}: add model_cards/<family>/family.yaml "
                         f"and card.md.j2 (templates exist for {', '.join(sorted(found)) or 'none'}).")
    return found[model_type]


def rate_summary(model) -> dict:
    """Tokens per item and bits, from the config (`tokens_per_sample` or `tokens_per_second`, `codebook_size`)."""
    config = model.config
    per_second = getattr(config, "tokens_per_second", None)
    tokens = per_second if per_second is not None else getattr(config, "tokens_per_sample", None)
    item = "second of audio" if per_second is not None else {
        "image": f"{config.image_size}×{config.image_size} image" if hasattr(config, "image_size") else "image",
        "motion": "frame pair", "cad": "CAD program"}.get(model.modality, "item")
    codebook = model.codebook_size
    bits_per_token = math.log2(codebook) if codebook else None
    bits_per_item = bits_per_token * tokens if bits_per_token and tokens else None
    pixels = config.image_size ** 2 if model.modality == "image" and hasattr(config, "image_size") else None
    return {"tokens": tokens, "item": item, "variable_length": model.default_token_budgets() is not None,
            "codebook_size": codebook, "bits_per_token": bits_per_token, "bits_per_item": bits_per_item,
            "bits_per_pixel": bits_per_item / pixels if bits_per_item and pixels else None}


def eval_results(metrics: dict) -> list[EvalResult]:
    """`model-index` entries for the headline numbers of an evaluation harness `metrics.json`."""
    task_type, task_name = RECONSTRUCTION_TASKS[metrics["modality"]]
    data = str(metrics["data"])
    dataset_type = Path(data).name if "/" in data else data  # a local folder path is not published
    dataset_name = f"{dataset_type} ({metrics['num_items']} {metrics['modality']} items, unitok eval)"

    def entry(metric: str, value, label: str) -> EvalResult | None:
        value = value.get("mean") if isinstance(value, dict) else value
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return EvalResult(task_type=task_type, task_name=task_name, dataset_type=dataset_type,
                          dataset_name=dataset_name, metric_type=metric, metric_value=round(float(value), 6),
                          metric_name=label)

    found = []
    for tag, budget in metrics.get("budgets", {}).items():
        suffix = f" @ {budget.get('tokens', tag)} tokens"
        found += [entry(m, budget[m], INDEXED_METRICS[m] + suffix) for m in INDEXED_METRICS if m in budget]
    for name, value in metrics.get("metrics", {}).items():
        if name in INDEXED_METRICS:
            found.append(entry(name, value, INDEXED_METRICS[name]))
    return [result for result in found if result is not None]


def card_data(model, family: Family, license: dict, metrics: dict | None, repo_id: str,
              base_model: str | None = None, adapter: bool = False) -> ModelCardData:
    meta = family.meta
    tags = ["unitok", "tokenizer", model.modality, meta["quantizer"], family.folder.name, f"arxiv:{meta['arxiv']}"]
    tags += ["lora", "peft"] if adapter else []
    extra = {"license_name": license["name"], "license_link": license["link"]} if license["id"] == "other" else {}
    return ModelCardData(library_name="peft" if adapter else "transformers", license=license["id"], tags=tags,
                         pipeline_tag=meta["pipeline_tag"], model_name=repo_id.split("/")[-1], base_model=base_model,
                         eval_results=eval_results(metrics) if metrics else None, **extra)


PROCESSOR_CLASSES = {"image": "AutoImageProcessor"}  # others load with AutoProcessor


def _usage(repo_id: str, modality: str, base_model: str | None = None, remote_code: bool = True) -> dict:
    """The loading lines of the card's usage snippets (the rest of each snippet is per modality)."""
    auto = PROCESSOR_CLASSES.get(modality, "AutoProcessor")
    source = base_model or repo_id  # the processor lives with the base model
    if base_model is None:
        installed = f'model = unitok.AutoTokenizer.from_pretrained("{repo_id}").eval()'
        remote = f'model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True).eval()'
        imports = f"from transformers import {auto}, AutoModel"
    else:
        installed = (f'base = unitok.AutoTokenizer.from_pretrained("{base_model}")\n'
                     f'model = unitok.lora.load_adapter(base, "{repo_id}").eval()')
        remote = (f'base = AutoModel.from_pretrained("{base_model}", trust_remote_code=True)\n'
                  f'model = PeftModel.from_pretrained(base, "{repo_id}").eval()')
        imports = f"from peft import PeftModel\nfrom transformers import {auto}, AutoModel"
    return {"installed": f'{installed}\nprocessor = {auto}.from_pretrained("{source}")',
            "remote": f'{remote}\nprocessor = {auto}.from_pretrained("{source}", trust_remote_code=True)'
            if remote_code else None,
            "remote_imports": imports, "remote_where": "the base repository" if base_model else "this repository"}


def _render(template: str, model, family: Family, data: ModelCardData, *, limitations: list[str],
            evaluation: dict | None, **context) -> ModelCard:
    import unitok
    from unitok.evaluation.report import summary_tables

    if evaluation is None:
        limitations = [*limitations, "Not evaluated: no evaluation results were published with these weights."]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    text = env.get_template(template).render(
        card_data=data.to_yaml(), family=family.meta, config=model.config, modality=model.modality,
        rate=rate_summary(model), limitations=limitations, unitok_version=unitok.__version__,
        evaluation=None if evaluation is None else {
            "data": evaluation["data"] if "/" not in str(evaluation["data"]) else Path(evaluation["data"]).name,
            "num_items": evaluation["num_items"], "tables": "\n".join(summary_tables(evaluation)).strip()},
        **context)
    return ModelCard(text)


def render_card(model, repo_id: str, *, weights: dict, license: dict, dtype: str, recipe: dict | None = None,
                evaluation: dict | None = None, base_model: str | None = None) -> ModelCard:
    """The README.md of a staged model repository.

    Args:
        weights: {"origin": "converted" | "trained" | "random" | "unspecified", ...provenance fields}.
        license: {"id": Hub licence id, "note": str | None, "name"/"link" when id is "other"}.
        recipe: {"summary": one line} when `recipe.yaml` is staged.
        evaluation: the harness's metrics.json content when `eval/` is staged.
    """
    family = family_for(model.config.model_type)
    meta = family.meta
    limitations = list(meta.get("limitations", []))
    if weights["origin"] == "converted":
        limitations += meta.get("official_weights_limitations", [])
        if not meta.get("parity_verified", False):
            limitations.append("Numerical parity with the official implementation on these weights is not verified by "
                               "unitok's tests (the converter is tested on synthetic checkpoints with the official "
                               "parameter names and shapes).")
    parameters = sum(p.numel() for p in model.parameters())
    return _render(f"{family.folder.name}/card.md.j2", model, family,
                   card_data(model, family, license, evaluation, repo_id, base_model), limitations=limitations,
                   evaluation=evaluation, repo_id=repo_id, parameters=f"{parameters / 1e6:,.2f} M", dtype=dtype,
                   weights=weights, license=license, recipe=recipe, usage=_usage(repo_id, model.modality))


def render_adapter_card(base, repo_id: str, base_model: str, *, adapter: dict, lora_config: dict, license: dict,
                        recipe: dict | None = None, evaluation: dict | None = None) -> ModelCard:
    """The README.md of a staged LoRA adapter repository (`base`: the base model, meta tensors are enough)."""
    family = family_for(base.config.model_type)
    return _render("_adapter/card.md.j2", base, family,
                   card_data(base, family, license, evaluation, repo_id, base_model, adapter=True),
                   limitations=list(family.meta.get("limitations", [])), evaluation=evaluation, repo_id=repo_id,
                   base_model=base_model, adapter=adapter, lora=lora_config, license=license, recipe=recipe,
                   usage=_usage(repo_id, base.modality, base_model,
                                remote_code=not adapter.get("folded_weight_norm")))


def validate_card(card: ModelCard | str) -> ModelCard:
    """Check a card offline the way the Hub would read it: YAML header parses into `ModelCardData`, required
    unitok metadata present, licence id known, `model-index` parses back into `EvalResult`s. Raises ValueError.
    Adapter cards (tag `lora`) have `library_name: peft` and must name their `base_model`."""
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = ModelCard(card) if isinstance(card, str) else card
    data = card.data.to_dict()
    problems = []
    adapter = "lora" in (data.get("tags") or [])
    library = "peft" if adapter else "transformers"
    if data.get("library_name") != library:
        problems.append(f"library_name must be {library!r}")
    if adapter and not data.get("base_model"):
        problems.append("an adapter card must name its base_model")
    tags = data.get("tags") or []
    if "unitok" not in tags or not any(str(t).startswith("arxiv:") for t in tags):
        problems.append("tags must include 'unitok' and the paper's 'arxiv:<id>'")
    license = data.get("license")
    if license not in KNOWN_LICENSES:
        problems.append(f"license {license!r} is not a Hub licence id this project uses ({sorted(KNOWN_LICENSES)})")
    if license == "other" and not (data.get("license_name") and data.get("license_link")):
        problems.append("license 'other' needs license_name and license_link")
    if "model-index" in data:
        try:
            model_index_to_eval_results(data["model-index"])
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"model-index does not parse: {error!r}")
    if not card.text.strip():
        problems.append("the card has no body")
    if problems:
        raise ValueError("Invalid model card: " + "; ".join(problems) + ".")
    return card


__all__ = ["families", "family_for", "render_card", "render_adapter_card", "validate_card", "eval_results",
           "rate_summary"]
