"""`unitok eval` / `unitok compare`: evaluate any registered tokenizer on real data and write numbers, a report and
figures.

    results = unitok.evaluation.evaluate("path/or/variant", "bundled", "eval_out")
    unitok.evaluation.compare(["flextok-tiny", "path/to/other"], "bundled", "compare_out")

Output folder: `metrics.json` (everything measured, no per-pixel data), `report.md`, and PNG figures:
`reconstructions.png`, `codebook_usage.png`, `rate_distortion.png` (tokenizers with several token budgets).
"""

import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

from ..remote_code import write_atomic
from .common import EvalOptions
from .extras import MissingExtraError

EVALUATORS = {}  # modality -> (data loader(spec), evaluate(model, processor, items, options, progress))


def _image_backend():
    from ..data.images import load_images
    from .image_eval import evaluate_images

    return load_images, evaluate_images


def _speech_backend():
    from .speech_eval import evaluate_speech, load_speech

    return load_speech, evaluate_speech


def _motion_backend():
    from .motion_eval import evaluate_motion, load_motion

    return load_motion, evaluate_motion


def _cad_backend():
    from .cad_eval import evaluate_cad, load_cad

    return load_cad, evaluate_cad


EVALUATORS.update(image=_image_backend, audio=_speech_backend, motion=_motion_backend, cad=_cad_backend)


def load_model(model_or_path, device: str = "cpu", seed: int = 0):
    """A model instance, a folder / Hub id with weights, or a variant name (random weights drawn with `seed`, so
    runs are reproducible, and a warning)."""
    from .. import AutoTokenizer, create_model, list_models

    if not isinstance(model_or_path, (str, Path)):
        return model_or_path.to(device).eval(), getattr(model_or_path, "name_or_path", type(model_or_path).__name__)
    name = str(model_or_path)
    if not Path(name).exists() and name in list_models():
        warnings.warn(f"{name} is a variant name: using RANDOM (untrained) weights.", stacklevel=2)
        torch.manual_seed(seed)
        return create_model(name).to(device).eval(), name
    return AutoTokenizer.from_pretrained(name).to(device).eval(), name


def load_processor(model, source: str):
    """The processor saved with the model (a folder with preprocessor_config.json), else the model's default."""
    if source and (Path(source) / "preprocessor_config.json").is_file():
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(source)
    return model.build_preprocessor()


def _progress(total: int, label: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="item", file=sys.stderr, dynamic_ncols=True)


def evaluate(model, data, out_dir, options: EvalOptions | None = None) -> dict:
    """Evaluate `model` (instance, path, Hub id or variant name) on `data` (a spec string for the modality's
    loader, or a list of items) and write metrics.json, report.md and figures into `out_dir`."""
    options = options or EvalOptions()
    model, model_name = load_model(model, options.device, options.seed)
    modality = model.modality
    if modality not in EVALUATORS:
        raise ValueError(f"No evaluator for modality {modality!r} yet (have: {', '.join(sorted(EVALUATORS))}).")
    loader, evaluator = EVALUATORS[modality]()
    items = loader(data) if isinstance(data, str) else list(data)
    if options.max_items is not None:
        items = items[: options.max_items]
    if not items:
        raise ValueError(f"No items to evaluate in {data!r}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    processor = load_processor(model, str(model_name or ""))
    torch.manual_seed(options.seed)
    start = time.perf_counter()
    with _progress(len(items), f"eval {Path(model_name).name}") as progress:
        results = evaluator(model, processor, items, options, progress)
    elapsed = time.perf_counter() - start
    results.setdefault("throughput", {}).update(evaluation_seconds=elapsed, evaluation_seconds_per_item=elapsed / len(items))
    figures = results.pop("_figures", {})
    header = {
        "model": model_name, "model_type": model.config.model_type, "modality": modality,
        "parameters_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "codebook_size": model.codebook_size, "data": data if isinstance(data, str) else "items",
        "options": options.to_dict(), "torch": torch.__version__,
    }
    results = {**header, **results}
    from .report import write_figures, write_report

    results["figures"] = write_figures(results, figures, out)
    write_atomic(out / "metrics.json", json.dumps(_jsonable(results), indent=2))
    write_report(results, out / "report.md")
    return results


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    return value


def compare(models: list, data, out_dir, options: EvalOptions | None = None) -> dict:
    """Evaluate several tokenizers on the same data; one table and one rate–distortion plot."""
    out = Path(out_dir)
    runs = {}
    for index, model in enumerate(models):
        label = Path(str(model)).name if isinstance(model, (str, Path)) else f"model{index}"
        if label in runs:
            label = f"{label}-{index}"
        runs[label] = evaluate(model, data, out / label, options)
    from .report import write_comparison

    return write_comparison(runs, out)


__all__ = ["evaluate", "compare", "EvalOptions", "MissingExtraError", "EVALUATORS"]
