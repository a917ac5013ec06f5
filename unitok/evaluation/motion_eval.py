"""Motion tokenizer evaluation: encode each (frame t, frame t+Δ) pair, decode the target from the first frame and
the motion tokens, and score the prediction against the real target and against copying the first frame.

Motion tokenizers follow the contract with an image processor from `model.build_preprocessor()`,
`model.encode(pixel_values)` on `(batch, 2, 3, H, W)` (first, target) and
`model.decode(codes, first_frame=(batch, 3, H, W))` returning the predicted target in [-1, 1].
"""

import numpy as np
import torch
from PIL import Image

from ..data.items import FramePairItem
from .common import (
    EvalOptions, Stopwatch, bits_per_token, codebook_statistics, keep_valid, mean_std, peak_memory_mb,
)

NUMERIC = ("psnr", "ssim", "copy_psnr", "copy_ssim", "beats_copy_psnr", "beats_copy_ssim")


def load_motion(spec: str) -> list[FramePairItem]:
    """`video[:N]` (real traffic video from mvtb-data), `robot[:N]` (PyBullet Franka render), `mocap[:N]`
    (DeepMimic humanoid clip), or a video file path; `:N` keeps N pairs. Static pairs are skipped with a warning."""
    from ..data import motion

    name, _, count = spec.partition(":")
    limit = int(count) if count.isdigit() else None
    if name == "video":
        items = motion.bundled_video_pairs(max_pairs=limit or 16)
    elif name == "robot":
        items = motion.robot_frame_pairs()
    elif name == "mocap":
        items = motion.mocap_frame_pairs()
    else:
        items = motion.video_frame_pairs(name, max_pairs=limit)
    kept = keep_valid(items, motion.validate_pair)
    return kept[:limit]


def _pil(frame: torch.Tensor) -> Image.Image:
    return Image.fromarray(frame.permute(1, 2, 0).numpy())


def evaluate_motion(model, processor, items: list[FramePairItem], options: EvalOptions, progress=None) -> dict:
    from .metrics.motion import MotionMetrics

    metrics = MotionMetrics()
    encode_clock, decode_clock = Stopwatch(), Stopwatch()
    per_item, codes_seen, grid = [], [], []
    for start in range(0, len(items), options.batch_size):
        batch = items[start : start + options.batch_size]
        first = processor([_pil(i.first) for i in batch], return_tensors="pt")["pixel_values"].to(options.device)
        target = processor([_pil(i.target) for i in batch], return_tensors="pt")["pixel_values"].to(options.device)
        with torch.no_grad(), encode_clock.time(len(batch), options.device):
            encoded = model.encode(torch.stack([first, target], dim=1))
        kwargs = {"first_frame": first,
                  "generator": [torch.Generator(options.device).manual_seed(options.seed + start + i)
                                for i in range(len(batch))]}
        if options.num_inference_steps is not None:
            kwargs["num_inference_steps"] = options.num_inference_steps
        with torch.no_grad(), decode_clock.time(len(batch), options.device):
            predicted = model.decode(encoded.codes, **kwargs).reconstruction.clamp(-1, 1)
        if encoded.codes is not None:
            codes_seen.append(encoded.codes.reshape(-1).cpu())
        for i, item in enumerate(batch):
            scores = metrics(FramePairItem(item.name, first[i].cpu(), target[i].cpu(), item.delta), predicted[i].cpu())
            per_item.append({"name": item.name, "delta": item.delta, **scores})
        if len(grid) < options.grid_items:
            images = [processor.postprocess(x) for x in (first, target, predicted)]
            grid.extend([[np.asarray(a), np.asarray(b), np.asarray(c)] for a, b, c in zip(*images)])
        if progress is not None:
            progress.update(len(batch))
    results = {"num_items": len(items), "metrics": {n: mean_std([r[n] for r in per_item]) for n in NUMERIC}}
    height, width = first.shape[-2:]
    figures = {"grid": (grid[: options.grid_items], ["frame t", "frame t+Δ (real)", "predicted"],
                        [r["name"] for r in per_item[: options.grid_items]]), "histogram": None}
    if codes_seen:
        codes = torch.cat(codes_seen)
        results["tokens_per_item"] = codes.numel() // len(items)
        results["bits_per_token"] = bits_per_token(model.codebook_size)
        results["bits_per_pixel"] = results["tokens_per_item"] * results["bits_per_token"] / (height * width)
        codebook = codebook_statistics(codes, model.codebook_size)
        results["codebook"] = {k: v for k, v in codebook.items() if k != "histogram"}
        figures["histogram"] = (codebook["histogram"], codebook["perplexity"])
    results["throughput"] = {"encode_items_per_s": encode_clock.items_per_second,
                             "decode_items_per_s": decode_clock.items_per_second, **peak_memory_mb(options.device)}
    results["skipped"] = {}
    results["per_item"] = per_item
    results["_figures"] = figures
    return results


__all__ = ["load_motion", "evaluate_motion"]
