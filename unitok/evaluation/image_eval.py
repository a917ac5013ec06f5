"""Image tokenizer evaluation: round trip every item at each token budget, score it, time it, count codes."""

import logging
import math

import numpy as np
import torch
from PIL import Image

from ..data.items import ImageItem
from .common import EvalOptions, Stopwatch, bits_per_token, codebook_statistics, mean_std, peak_memory_mb
from .extras import MissingExtraError
from .metrics.image import (
    MS_SSIM_MIN_SIZE, STLPIPS, EffNetLite0Features, InceptionFeatures, frechet_distance, ms_ssim, psnr, ssim,
)

logger = logging.getLogger(__name__)


def _batches(sequence, size):
    for start in range(0, len(sequence), size):
        yield start, sequence[start : start + size]


def _pil(item: ImageItem) -> Image.Image:
    return Image.fromarray(item.image.permute(1, 2, 0).numpy())


def evaluate_images(model, processor, items: list[ImageItem], options: EvalOptions, progress=None) -> dict:
    """Returns the metrics dict plus `_figures` data (grid images, histogram, curves) for the report writer."""
    device = options.device
    budgets = options.token_budgets or model.default_token_budgets() or [None]
    skipped: dict[str, str] = {}
    lpips = fd_features = None
    try:
        lpips = STLPIPS().to(device)
    except MissingExtraError as error:
        skipped["st_lpips"] = str(error)
    if options.compute_fd:
        try:
            fd_features = (InceptionFeatures(options.fd_inception_weights) if options.fd_inception_weights
                           else EffNetLite0Features()).to(device)
        except MissingExtraError as error:
            skipped["fd"] = str(error)

    encode_clock = Stopwatch()
    decode_clocks = {k: Stopwatch() for k in budgets}
    per_item: list[dict] = []
    all_codes, reference_features = [], []
    reconstruction_features = {k: [] for k in budgets}
    grid_rows: list[list[np.ndarray]] = []
    with torch.no_grad():  # warm-up (first-call allocations and kernel selection stay out of the timings)
        warm = processor([_pil(items[0])], return_tensors="pt")["pixel_values"].to(device)
        warm_codes = model.encode(warm).codes
        if warm_codes is not None:
            model.decode(warm_codes[:, :1], num_inference_steps=1)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    for start, batch in _batches(items, options.batch_size):
        pixel_values = processor([_pil(item) for item in batch], return_tensors="pt")["pixel_values"].to(device)
        with torch.no_grad(), encode_clock.time(len(batch), device):
            encoded = model.encode(pixel_values)
        codes = encoded.codes
        if codes is not None:
            all_codes.append(codes.cpu())
        if fd_features is not None:
            reference_features.append(fd_features(pixel_values).cpu())
        records = [{"name": item.name} for item in batch]
        shown = [[np.asarray(image) for image in processor.postprocess(pixel_values)]] if start < options.grid_items else []
        for k in budgets:
            generators = [torch.Generator(device).manual_seed(options.seed + start + i) for i in range(len(batch))]
            kwargs = {"generator": generators}
            if options.num_inference_steps is not None:
                kwargs["num_inference_steps"] = options.num_inference_steps
            with torch.no_grad(), decode_clocks[k].time(len(batch), device):
                if codes is not None:
                    output = model.decode(codes if k is None else codes[:, :k], **kwargs)
                else:
                    output = model.decode(latents=encoded.latents, **kwargs)
            reconstruction = output.reconstruction.clamp(-1, 1)
            tag = "all" if k is None else str(k)
            scores = {"psnr": psnr(pixel_values, reconstruction), "ssim": ssim(pixel_values, reconstruction)}
            if min(pixel_values.shape[-2:]) >= MS_SSIM_MIN_SIZE:
                scores["ms_ssim"] = ms_ssim(pixel_values, reconstruction)
            else:
                skipped["ms_ssim"] = f"images are {tuple(pixel_values.shape[-2:])}, MS-SSIM needs ≥ {MS_SSIM_MIN_SIZE} px"
            if lpips is not None:
                scores["st_lpips"] = lpips(pixel_values, reconstruction)
            for record, i in zip(records, range(len(batch))):
                record[tag] = {name: float(values[i]) for name, values in scores.items()}
            if fd_features is not None:
                reconstruction_features[k].append(fd_features(reconstruction).cpu())
            if shown:
                shown.append([np.asarray(image) for image in processor.postprocess(reconstruction)])
        per_item.extend(records)
        if shown:
            grid_rows.extend([list(column) for column in zip(*shown)][: options.grid_items - start])
        if progress is not None:
            progress.update(len(batch))

    height, width = pixel_values.shape[-2:]
    codebook = None
    results: dict = {"num_items": len(items), "input_size": [int(height), int(width)], "budgets": {}}
    if all_codes:
        codes = torch.cat(all_codes)
        codebook = codebook_statistics(codes, model.codebook_size)
        results["tokens_per_item"] = int(codes[0].numel())
        results["bits_per_token"] = bits_per_token(model.codebook_size)
    for k in budgets:
        tag = "all" if k is None else str(k)
        tokens = results.get("tokens_per_item") if k is None else k
        entry = {"tokens": tokens}
        if tokens is not None and "bits_per_token" in results:
            entry["bits_per_item"] = tokens * results["bits_per_token"]
            entry["bits_per_pixel"] = entry["bits_per_item"] / (height * width)
        names = sorted({n for record in per_item for n in record.get(tag, {})})
        for name in names:
            entry[name] = mean_std([record[tag][name] for record in per_item if name in record.get(tag, {})])
        if fd_features is not None and len(items) >= 2:
            entry[fd_features.name] = frechet_distance(torch.cat(reference_features),
                                                       torch.cat(reconstruction_features[k]))
            if len(items) < fd_features.dim:
                entry[f"{fd_features.name}_note"] = (f"{len(items)} items < {fd_features.dim} feature dims: the estimate "
                                                     "is strongly biased; compare only runs with the same items")
        entry["decode_items_per_s"] = decode_clocks[k].items_per_second
        results["budgets"][tag] = entry
    results["throughput"] = {"encode_items_per_s": encode_clock.items_per_second,
                             **{f"decode_items_per_s@{'all' if k is None else k}": decode_clocks[k].items_per_second
                                for k in budgets},
                             **peak_memory_mb(device)}
    if codebook is not None:
        results["codebook"] = {k: v for k, v in codebook.items() if k != "histogram"}
    results["skipped"] = skipped
    results["per_item"] = per_item
    titles = ["original"] + [("all tokens" if k is None else f"{k} tok") for k in budgets]
    results["_figures"] = {"grid": (grid_rows, titles, [r["name"] for r in per_item[: len(grid_rows)]]),
                           "histogram": None if codebook is None else (codebook["histogram"], codebook["perplexity"]),
                           "fd_name": None if fd_features is None else fd_features.name}
    return results


def rate_distortion_points(results: dict) -> dict[str, list[tuple[float, float]]]:
    """`{metric: [(bits_per_pixel, mean value), ...]}` over budgets, for the RD figure."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for entry in results["budgets"].values():
        rate = entry.get("bits_per_pixel")
        if rate is None:
            continue
        for name, value in entry.items():
            if isinstance(value, dict) and "mean" in value and math.isfinite(value["mean"]):
                curves.setdefault(name, []).append((rate, value["mean"]))
            elif isinstance(value, float) and name.startswith(("FD", "FID")):
                curves.setdefault(name, []).append((rate, value))
    return curves


__all__ = ["evaluate_images", "rate_distortion_points"]
