"""Markdown reports and figure files of evaluation runs."""

import json
import math
from pathlib import Path

from ..remote_code import write_atomic
from . import figures as fig
from .extras import MissingExtraError

METRIC_LABELS = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "ms_ssim": "MS-SSIM ↑", "st_lpips": "ST-LPIPS ↓"}


def _fmt(value, digits=3) -> str:
    if isinstance(value, dict):
        mean, std = value.get("mean"), value.get("std")
        return "–" if mean is None or not math.isfinite(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return "–" if value is None else str(value)


def write_figures(results: dict, figure_data: dict, out: Path) -> dict:
    """Write the PNGs a run has data for; returns {figure: file name} (a skipped figure records why)."""
    written = {}
    title = f"{Path(str(results['model'])).name} on {results['data']}"
    try:
        grid = figure_data.get("grid")
        if grid and grid[0]:
            rows, titles, names = grid
            fig.reconstruction_grid(rows, titles, out / "reconstructions.png", names, title)
            written["reconstructions"] = "reconstructions.png"
        if figure_data.get("histogram") is not None:
            histogram, perplexity = figure_data["histogram"]
            fig.codebook_usage(histogram, results["codebook_size"], perplexity, out / "codebook_usage.png", title)
            written["codebook_usage"] = "codebook_usage.png"
        if figure_data.get("speech_examples"):
            from .speech_eval import write_speech_figures

            written.update(write_speech_figures(figure_data["speech_examples"], figure_data["sampling_rate"], out))
        from .image_eval import rate_distortion_points

        curves = rate_distortion_points(results) if results.get("budgets") else {}
        if curves and max(len(points) for points in curves.values()) > 1:
            fig.rate_distortion({Path(str(results["model"])).name: curves}, out / "rate_distortion.png", title=title)
            written["rate_distortion"] = "rate_distortion.png"
    except MissingExtraError as error:
        written["skipped"] = str(error)
    return written


def _budget_table(results: dict) -> list[str]:
    budgets = results.get("budgets", {})
    metric_names = [m for m in METRIC_LABELS if any(m in entry for entry in budgets.values())]
    fd_names = sorted({k for entry in budgets.values() for k, v in entry.items()
                       if k.startswith(("FD", "FID")) and not k.endswith("_note")})
    header = ["tokens", "bits/item", "bits/pixel"] + [METRIC_LABELS[m] for m in metric_names] + \
        [f"{n} ↓" for n in fd_names] + ["decode items/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for tag, entry in budgets.items():
        row = [str(entry.get("tokens", tag)), _fmt(entry.get("bits_per_item"), 1), _fmt(entry.get("bits_per_pixel"), 5)]
        row += [_fmt(entry.get(m)) for m in metric_names] + [_fmt(entry.get(n), 2) for n in fd_names]
        row.append(_fmt(entry.get("decode_items_per_s"), 2))
        lines.append("| " + " | ".join(row) + " |")
    notes = sorted({v for entry in budgets.values() for k, v in entry.items() if k.endswith("_note")})
    return lines + [""] + [f"Note: {note}." for note in notes]


def summary_tables(results: dict, heading: str = "##") -> list[str]:
    """The quality, rate and codebook sections of a run (Markdown lines); model cards embed them too."""
    lines = []
    if results.get("budgets"):
        lines += [f"{heading} Reconstruction quality and rate", ""] + _budget_table(results) + [""]
        lines += ["ST-LPIPS is the shift-tolerant LPIPS (bundled AlexNet): not comparable to published LPIPS. "
                  "FD-EffNetLite0 is a Fréchet distance on EfficientNet-Lite0 features: not comparable to published "
                  "FID (standard FID runs when Inception weights are supplied).", ""]
    if results.get("metrics"):
        lines += [f"{heading} Metrics (mean ± std over items)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_fmt(value)} |" for name, value in results["metrics"].items()] + [""]
    rate = [(key, results[key]) for key in ("tokens_per_item", "tokens_per_second", "bits_per_token", "bits_per_second",
                                            "bits_per_pixel", "total_audio_seconds", "invalid_ratio") if key in results]
    if rate and not results.get("budgets"):
        lines += [f"{heading} Rate", "", "| measure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v, 4)} |" for k, v in rate] + [""]
    if results.get("codebook"):
        cb = results["codebook"]
        lines += [f"{heading} Codebook usage", "",
                  f"{cb['used_codes']:,} of {cb['codebook_size']:,} codes used ({100 * cb['usage']:.2f} %), "
                  f"perplexity {cb['perplexity']:,.1f} (entropy {cb['entropy_bits']:.2f} of "
                  f"{cb['max_entropy_bits']:.2f} bits) over {cb['num_tokens']:,} tokens.", ""]
    return lines


def write_report(results: dict, path: Path) -> None:
    lines = [f"# Evaluation of `{results['model']}`", "",
             f"- model type `{results['model_type']}` ({results['modality']}), {results['parameters_M']:.2f} M parameters",
             f"- data: `{results['data']}`, {results['num_items']} items"
             + (f" at {results['input_size'][0]}×{results['input_size'][1]}" if "input_size" in results else ""),
             f"- options: `{json.dumps({k: v for k, v in results['options'].items() if v not in (None, {}, [])})}`",
             ""]
    lines += summary_tables(results)
    lines += ["## Speed and memory", "", "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {_fmt(value, 2)} |" for name, value in results.get("throughput", {}).items()] + [""]
    if results.get("skipped"):
        lines += ["## Skipped", ""] + [f"- **{name}**: {reason}" for name, reason in results["skipped"].items()] + [""]
    if results.get("figures"):
        lines += ["## Figures", ""]
        lines += [f"![{name}]({file})" for name, file in results["figures"].items() if file.endswith(".png")] + [""]
    write_atomic(path, "\n".join(lines))


def write_comparison(runs: dict[str, dict], out: Path) -> dict:
    """`comparison.md`, `comparison.json` and `rate_distortion.png` across runs."""
    from .image_eval import rate_distortion_points

    lines = ["# Tokenizer comparison", "", "| model | params (M) | tokens | bits/pixel | " +
             " | ".join(METRIC_LABELS.values()) + " | encode items/s |", "|" + "---|" * (5 + len(METRIC_LABELS))]
    summary, curves = {}, {}
    for label, results in runs.items():
        budgets = results.get("budgets", {})
        if budgets:
            tag = max(budgets, key=lambda t: budgets[t].get("tokens") or 0)
            entry = budgets[tag]
            row = [label, f"{results['parameters_M']:.2f}", str(entry.get("tokens")), _fmt(entry.get("bits_per_pixel"), 5)]
            row += [_fmt(entry.get(m)) for m in METRIC_LABELS]
            row.append(_fmt(results["throughput"].get("encode_items_per_s"), 2))
            lines.append("| " + " | ".join(row) + " |")
            curves[label] = rate_distortion_points(results)
        summary[label] = {k: v for k, v in results.items() if k not in ("per_item",)}
    files = {"comparison": "comparison.md"}
    if any(curves.values()):
        try:
            fig.rate_distortion(curves, out / "rate_distortion.png", title="rate–distortion")
            files["rate_distortion"] = "rate_distortion.png"
            lines += ["", "![rate–distortion](rate_distortion.png)"]
        except MissingExtraError as error:
            files["skipped"] = str(error)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "comparison.md", "\n".join(lines) + "\n")
    from .harness import _jsonable

    write_atomic(out / "comparison.json", json.dumps(_jsonable(summary), indent=2))
    return {"runs": summary, "files": files}


__all__ = ["write_figures", "write_report", "write_comparison", "summary_tables"]
