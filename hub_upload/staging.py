"""Stage a complete Hub repository for a unitok model, in one local folder, before anything is uploaded.

The staged folder is exactly what a transport pushes:

    config.json                 model_type + auto_map (AutoConfig, AutoModel, ...)
    model.safetensors           float32 unless another dtype is asked for (sharded with an index when large)
    preprocessor_config.json    the processor saved with the model, else the model's default
    *.py                        flat remote code (trust_remote_code=True without unitok)
    recipe.yaml                 the training config used (when the weights come from a unitok training run)
    conversion.json             provenance of converted official weights (when converted)
    eval/metrics.json, eval/report.md, eval/*.png   evaluation harness results (when given)
    README.md                   the model card (validated)

The folder is written under a temporary name and renamed when complete, so a crash never leaves a half-staged repo
that could be pushed.
"""

import copy
import hashlib
import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from unitok.conversion import PROVENANCE_FILE, read_conversion

from .cards import family_for, render_card, validate_card

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PROJECT_LICENSE = {"id": "apache-2.0", "note": "unitok's licence; the licence of the training data may add terms"}


@dataclass(frozen=True)
class StagedFile:
    path: str  # relative, "/"-separated, as in the repo
    size: int
    sha256: str
    git_sha1: str  # git blob id, what the Hub reports for files stored in git (not LFS)


@dataclass
class StagedRepo:
    repo_id: str
    folder: Path
    model_type: str
    weights_origin: str
    files: list[StagedFile] = field(default_factory=list)

    def listing(self) -> str:
        total = sum(f.size for f in self.files)
        lines = [f"{len(self.files)} files, {total / 2**20:.2f} MiB, staged in {self.folder}:"]
        lines += [f"  {f.size:>14,d}  {f.path}" for f in self.files]
        return "\n".join(lines)


def check_repo_id(repo_id: str) -> str:
    """A Hub model repo id, `org/name` (the namespace is required: uploads never guess it)."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"Invalid repo id {repo_id!r}: expected 'org/name'.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"Invalid repo id {repo_id!r}: {error}") from None
    return repo_id


def file_digests(path: Path, chunk: int = 1 << 22) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, streamed (weights can be tens of GB)."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            sha256.update(block)
            sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest()


def describe_files(folder: Path) -> list[StagedFile]:
    files = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        files.append(StagedFile(path.relative_to(folder).as_posix(), path.stat().st_size, *file_digests(path)))
    return files


def _load_model_folder(folder: Path):
    """A unitok model from a folder, with clear errors for what is not one."""
    from unitok import AutoTokenizer
    from unitok.auto import _TOKENIZERS

    if not folder.is_dir():
        from unitok import list_models

        hint = " To publish a variant with random weights, pass --random-weights." if str(folder) in list_models() \
            else ""
        raise ValueError(f"{folder} is not a folder (expected a saved model: config.json + model.safetensors).{hint}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} has no config.json: not a saved model folder.")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type not in _TOKENIZERS:
        raise ValueError(f"{folder}: unknown model type {model_type!r} (unitok tokenizers: "
                         f"{', '.join(sorted(_TOKENIZERS))}).")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ValueError(f"{folder} has no weights (expected {' or '.join(WEIGHT_FILES)}).")
    return AutoTokenizer.from_pretrained(str(folder)).eval()


def _recipe_summary(recipe: dict) -> str:
    model, data, train, optim = (recipe.get(k) or {} for k in ("model", "data", "train", "optim"))
    start = f"from `{model['pretrained']}`" if model.get("pretrained") else f"`{model.get('name')}` from scratch"
    return (f"{start}; {data.get('kind', '?')} data `{data.get('source', '?')}`; {train.get('steps', '?')} steps "
            f"of batch {train.get('batch_size', '?')} per process; AdamW lr {optim.get('lr', '?')}")


def _find_evaluation(evaluation, source_dir: Path | None) -> Path | None:
    """The folder holding an evaluation harness run (metrics.json), from an explicit path or `<model>/eval/`."""
    if evaluation is None:
        candidate = source_dir / "eval" if source_dir is not None else None
        return candidate if candidate is not None and (candidate / "metrics.json").is_file() else None
    path = Path(evaluation)
    folder = path.parent if path.name == "metrics.json" else path
    if not (folder / "metrics.json").is_file():
        raise ValueError(f"No evaluation results at {evaluation} (expected metrics.json written by `unitok eval`).")
    return folder


def _lineage_origin(recipe: dict | None, depth: int = 0) -> str | None:
    """Origin of the weights a recipe started from: "scratch", "converted", or None when it cannot be told (a Hub id,
    or a folder that is gone or records nothing). Follows `model.pretrained` through earlier runs' exports."""
    pretrained = ((recipe or {}).get("model") or {}).get("pretrained")
    if not pretrained:
        return "scratch"
    folder = Path(pretrained)
    if depth > 8 or not folder.is_dir():
        return None
    if read_conversion(folder) is not None:
        return "converted"
    earlier = folder / "recipe.yaml"
    return _lineage_origin(yaml.safe_load(earlier.read_text()), depth + 1) if earlier.is_file() else None


def _resolve_license(license, family_meta: dict, origin: str, recipe: dict | None) -> dict:
    """An explicit licence, else the one the weights' origin implies; refuses to guess."""
    blank = {"note": None, "name": None, "link": None}
    if isinstance(license, dict):
        return {**blank, **license}
    if license:
        return {**blank, "id": license}
    lineage = _lineage_origin(recipe) if origin == "trained" else None
    if origin == "converted" or lineage == "converted":
        return {**blank, **family_meta["official_weights_license"]}
    if origin == "random" or lineage == "scratch":
        return {**blank, **PROJECT_LICENSE}
    reason = ("they were fine-tuned from a checkpoint whose origin cannot be traced from here" if origin == "trained"
              else "their origin is not recorded (no recipe.yaml or conversion.json)")
    raise ValueError(f"Cannot tell the licence of these weights: {reason}. Pass license=... (--license).")


def stage(source, repo_id: str, out_dir: str | Path | None = None, *, dtype: str = "float32",
          recipe: str | Path | None = None, evaluation: str | Path | None = None, license: str | dict | None = None,
          random_weights: bool = False, base_model: str | None = None) -> StagedRepo:
    """Stage `source` as the Hub repo `repo_id`: a saved model folder or a unitok model in memory, or a LoRA adapter
    (a folder written by `unitok.lora.save_adapter` / a LoRA training export, or a model from `unitok.lora`), which
    stages as an adapter repository with its own card pointing at `base_model`.

    Args:
        out_dir: where the repo is staged (must not exist or be empty); a new temporary folder by default.
        dtype: weight dtype in the repo ("float32", "bfloat16", "float16").
        recipe: the training config used; default `<source>/recipe.yaml` (written by the training export).
        evaluation: a `unitok eval` output folder or its metrics.json; default `<source>/eval/`.
        license: Hub licence id (or {"id": "other", "name": ..., "link": ...}); by default the official weights'
            licence for converted checkpoints and unitok's for weights trained from scratch by a recipe.
        random_weights: declare that the weights are random (test repos); the card says so.
        base_model: Hub id of the model these weights were fine-tuned from (card metadata).
    """
    from unitok.evaluation.harness import load_processor
    from unitok.modeling_base import UnitokPreTrainedModel

    check_repo_id(repo_id)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
    if hasattr(source, "peft_config"):  # a LoRA model in memory: stage its adapter
        from unitok.lora import save_adapter

        with tempfile.TemporaryDirectory() as tmp:
            save_adapter(source, Path(tmp) / "adapter")
            return stage(Path(tmp) / "adapter", repo_id, out_dir, recipe=recipe, evaluation=evaluation,
                         license=license, base_model=base_model)
    if isinstance(source, (str, Path)) and (Path(source) / ADAPTER_CONFIG).is_file():
        return _stage_adapter(Path(source), repo_id, out_dir, recipe=recipe, evaluation=evaluation, license=license,
                              base_model=base_model)
    if isinstance(source, UnitokPreTrainedModel):
        model, source_dir = source, None
        if dtype != "float32" or next(model.parameters()).dtype != torch.float32:
            model = copy.deepcopy(model)  # never change the caller's model
    elif isinstance(source, (str, Path)):
        source_dir = Path(source)
        model = _load_model_folder(source_dir)
    else:
        raise TypeError(f"source must be a model folder or a unitok model, got {type(source).__name__}.")
    family = family_for(model.config.model_type)

    conversion = read_conversion(source_dir) if source_dir is not None else None
    recipe_text, recipe_dict = _read_recipe(recipe, source_dir)
    origin = ("random" if random_weights else "converted" if conversion else "trained" if recipe_dict
              else "unspecified")
    license_info = _resolve_license(license, family.meta, origin, recipe_dict)
    parameters_m = sum(p.numel() for p in model.parameters()) / 1e6
    eval_dir, metrics = _read_evaluation(evaluation, source_dir, model.config.model_type, parameters_m)

    out, work = _work_folder(out_dir, repo_id)
    try:
        if source_dir is not None and (source_dir / "preprocessor_config.json").is_file():
            load_processor(model, str(source_dir)).save_pretrained(work)  # keep the user's processor settings
        model.to(DTYPES[dtype]).save_pretrained(work)
        if conversion is not None:
            shutil.copy2(source_dir / PROVENANCE_FILE, work / PROVENANCE_FILE)
        weights = {"origin": origin, **(conversion or {})}
        card = render_card(model, repo_id, weights=weights, license=license_info, dtype=dtype,
                           recipe={"summary": _recipe_summary(recipe_dict)} if recipe_dict else None,
                           evaluation=metrics, base_model=base_model)
        _finish(work, out, card, recipe_text, eval_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return StagedRepo(repo_id, out, model.config.model_type, origin, describe_files(out))


def _read_recipe(recipe, source_dir: Path | None) -> tuple[str | None, dict | None]:
    recipe_path = Path(recipe) if recipe is not None else (source_dir / "recipe.yaml" if source_dir else None)
    if recipe is not None and not recipe_path.is_file():
        raise ValueError(f"Recipe file {recipe} does not exist.")
    recipe_text = recipe_path.read_text() if recipe_path is not None and recipe_path.is_file() else None
    recipe_dict = yaml.safe_load(recipe_text) if recipe_text else None
    if recipe_text is not None and not isinstance(recipe_dict, dict):
        raise ValueError(f"{recipe_path} is not a training config (expected a YAML mapping).")
    return recipe_text, recipe_dict


def _read_evaluation(evaluation, source_dir: Path | None, model_type: str, parameters_m: float):
    """(folder, metrics) of the evaluation to publish, checked to be of this model; (None, None) if none."""
    eval_dir = _find_evaluation(evaluation, source_dir)
    if eval_dir is None:
        return None, None
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    if metrics.get("model_type") != model_type or abs(metrics.get("parameters_M", -1) - parameters_m) > 1e-3:
        raise ValueError(f"The evaluation in {eval_dir} is of another model ({metrics.get('model_type')}, "
                         f"{metrics.get('parameters_M')} M parameters; this one: {model_type}, {parameters_m:.3f} M).")
    return eval_dir, metrics


def _work_folder(out_dir, repo_id: str) -> tuple[Path, Path]:
    """(final folder, temporary folder to fill); the final one must not exist or be empty."""
    if out_dir is None:
        out = Path(tempfile.mkdtemp(prefix="unitok-stage-")) / repo_id.replace("/", "--")
    else:
        out = Path(out_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ValueError(f"Stage folder {out} exists and is not empty.")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.incomplete-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    return out, work


def _finish(work: Path, out: Path, card, recipe_text: str | None, eval_dir: Path | None) -> None:
    """Add the recipe, evaluation and validated card, then publish the folder under its final name."""
    if recipe_text is not None:
        (work / "recipe.yaml").write_text(recipe_text)
    if eval_dir is not None:
        (work / "eval").mkdir()
        for path in [eval_dir / "metrics.json", eval_dir / "report.md", *sorted(eval_dir.glob("*.png"))]:
            if path.is_file():
                shutil.copy2(path, work / "eval" / path.name)
    validate_card(card)
    card.save(work / "README.md")
    if out.exists():
        out.rmdir()
    work.rename(out)


def _base_license(base_dir: Path | None, base_model: str, family_meta: dict) -> dict | None:
    """The licence of an adapter's base: its local folder's card or provenance, else its Hub card; None if unknown."""
    card_source = base_dir / "README.md" if base_dir is not None and (base_dir / "README.md").is_file() else None
    if base_dir is not None and card_source is None:
        recipe = yaml.safe_load((base_dir / "recipe.yaml").read_text()) if (base_dir / "recipe.yaml").is_file() \
            else None
        origin = "converted" if read_conversion(base_dir) else "trained" if recipe else "unspecified"
        try:
            return _resolve_license(None, family_meta, origin, recipe)
        except ValueError:
            return None
    try:
        license_id = ModelCard.load(card_source or base_model).data.license
    except Exception:  # no card, or the Hub is unreachable: the uploader must say
        return None
    return {"id": license_id} if license_id else None


def _stage_adapter(source_dir: Path, repo_id: str, out_dir, *, recipe, evaluation, license, base_model) -> StagedRepo:
    """Stage a LoRA adapter (saved by `unitok.lora.save_adapter`) with its own card pointing at the base."""
    from transformers import AutoConfig

    from unitok import AutoTokenizer
    from unitok.lora import ADAPTER_METADATA, read_adapter_metadata

    from .cards import render_adapter_card

    meta = read_adapter_metadata(source_dir)
    if meta is None:
        raise ValueError(f"{source_dir} is not a unitok adapter (no {ADAPTER_METADATA}); save adapters with "
                         "unitok.lora.save_adapter.")
    if not (source_dir / ADAPTER_WEIGHTS).is_file():
        raise ValueError(f"{source_dir} has no weights (expected {ADAPTER_WEIGHTS}).")
    lora_config = json.loads((source_dir / ADAPTER_CONFIG).read_text())
    recorded = lora_config.get("base_model_name_or_path")
    base_dir = Path(recorded) if recorded and Path(recorded).is_dir() else None
    base_model = base_model or (recorded if base_dir is None else None)
    if not base_model:
        raise ValueError(f"The adapter's base is the local folder {recorded}; pass base_model='org/name' "
                         "(--base-model), the Hub repository of that base, for the card and adapter_config.json.")
    check_repo_id(base_model)
    family = family_for(meta["base_model_type"])
    config = AutoConfig.from_pretrained(str(base_dir) if base_dir is not None else base_model)
    if config.model_type != meta["base_model_type"]:
        raise ValueError(f"The adapter was trained for {meta['base_model_type']!r}, its base is {config.model_type!r}.")
    with torch.device("meta"):  # the base's structure, for the token rate (no weights needed)
        base = AutoTokenizer.from_config(config)
    license_info = license if isinstance(license, dict) else {"id": license} if license else \
        _base_license(base_dir, base_model, family.meta)
    if license_info is None:
        raise ValueError(f"Cannot tell the licence of the base {base_model}; pass license=... (--license).")
    license_info = {"note": None, "name": None, "link": None, **license_info}
    recipe_text, recipe_dict = _read_recipe(recipe, source_dir)
    eval_dir, metrics = _read_evaluation(evaluation, source_dir, meta["base_model_type"],
                                         meta["total_parameters"] / 1e6)
    out, work = _work_folder(out_dir, repo_id)
    try:
        shutil.copy2(source_dir / ADAPTER_WEIGHTS, work / ADAPTER_WEIGHTS)
        shutil.copy2(source_dir / ADAPTER_METADATA, work / ADAPTER_METADATA)
        (work / ADAPTER_CONFIG).write_text(json.dumps({**lora_config, "base_model_name_or_path": base_model},
                                                      indent=2, sort_keys=True) + "\n")
        card = render_adapter_card(base, repo_id, base_model, adapter=meta, lora_config=lora_config,
                                   license=license_info, evaluation=metrics,
                                   recipe={"summary": _recipe_summary(recipe_dict)} if recipe_dict else None)
        _finish(work, out, card, recipe_text, eval_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return StagedRepo(repo_id, out, meta["base_model_type"], "adapter", describe_files(out))


__all__ = ["stage", "StagedRepo", "StagedFile", "check_repo_id", "describe_files", "file_digests"]
