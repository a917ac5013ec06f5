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
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from unitok.conversion import PROVENANCE_FILE, read_conversion

from .cards import family_for, render_card, validate_card

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
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
        raise ValueError(f"{folder} is not a folder (expected a saved model: config.json + model.safetensors).")
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
    """Stage `source` (a saved model folder, or a unitok model in memory) as the Hub repo `repo_id`.

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
    recipe_path = Path(recipe) if recipe is not None else (source_dir / "recipe.yaml" if source_dir else None)
    if recipe is not None and not recipe_path.is_file():
        raise ValueError(f"Recipe file {recipe} does not exist.")
    recipe_text = recipe_path.read_text() if recipe_path is not None and recipe_path.is_file() else None
    recipe_dict = yaml.safe_load(recipe_text) if recipe_text else None
    if recipe_text is not None and not isinstance(recipe_dict, dict):
        raise ValueError(f"{recipe_path} is not a training config (expected a YAML mapping).")
    origin = ("random" if random_weights else "converted" if conversion else "trained" if recipe_dict
              else "unspecified")
    license_info = _resolve_license(license, family.meta, origin, recipe_dict)

    eval_dir = _find_evaluation(evaluation, source_dir)
    metrics = json.loads((eval_dir / "metrics.json").read_text()) if eval_dir is not None else None
    if metrics is not None:
        ours = sum(p.numel() for p in model.parameters()) / 1e6
        if metrics.get("model_type") != model.config.model_type or abs(metrics.get("parameters_M", -1) - ours) > 1e-3:
            raise ValueError(f"The evaluation in {eval_dir} is of another model ({metrics.get('model_type')}, "
                             f"{metrics.get('parameters_M')} M parameters; this one: {model.config.model_type}, "
                             f"{ours:.3f} M).")

    if out_dir is None:
        out = Path(tempfile.mkdtemp(prefix="unitok-stage-")) / repo_id.replace("/", "--")
    else:
        out = Path(out_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ValueError(f"Stage folder {out} exists and is not empty.")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.incomplete-{uuid.uuid4().hex[:8]}"
    try:
        work.mkdir()
        if source_dir is not None and (source_dir / "preprocessor_config.json").is_file():
            load_processor(model, str(source_dir)).save_pretrained(work)  # keep the user's processor settings
        model.to(DTYPES[dtype]).save_pretrained(work)
        if recipe_text is not None:
            (work / "recipe.yaml").write_text(recipe_text)
        if conversion is not None:
            shutil.copy2(source_dir / PROVENANCE_FILE, work / PROVENANCE_FILE)
        if eval_dir is not None:
            (work / "eval").mkdir()
            for path in [eval_dir / "metrics.json", eval_dir / "report.md", *sorted(eval_dir.glob("*.png"))]:
                if path.is_file():
                    shutil.copy2(path, work / "eval" / path.name)
        weights = {"origin": origin, **(conversion or {})}
        card = render_card(model, repo_id, weights=weights, license=license_info, dtype=dtype,
                           recipe={"summary": _recipe_summary(recipe_dict)} if recipe_dict else None,
                           evaluation=metrics, base_model=base_model)
        validate_card(card)
        card.save(work / "README.md")
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return StagedRepo(repo_id, out, model.config.model_type, origin, describe_files(out))


__all__ = ["stage", "StagedRepo", "StagedFile", "check_repo_id", "describe_files", "file_digests"]
