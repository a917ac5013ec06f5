"""CAD tokenizer evaluation: round trip each sketch-and-extrude program through the tokenizer and score the decoded
command sequence (command/parameter accuracy), whether it still builds a solid, and its geometry (Chamfer distance).

CAD tokenizers follow the contract with `model.encode(commands, attention_mask)` on padded command tensors
`(batch, length, 1 + num_params)` and `model.decode(codes, ...)` returning decoded commands in `reconstruction`
(same layout) with per-item `lengths`.
"""

import torch

from ..data.items import CADItem
from .common import EvalOptions, Stopwatch, bits_per_token, codebook_statistics, mean_std, peak_memory_mb

NUMERIC = ("command_accuracy", "parameter_accuracy", "invalid", "chamfer_distance")


def load_cad(spec: str) -> list[CADItem]:
    """`generated[:N]`: N random valid programs (seed 0) built with build123d, with 4,096 surface points each."""
    from ..data.cad import cad_dataset

    name, _, count = spec.partition(":")
    if name != "generated":
        raise ValueError(f"Unknown CAD data {spec!r}: use 'generated[:N]'.")
    return cad_dataset(int(count) if count.isdigit() else 32, seed=0, num_points=4096)


def evaluate_cad(model, processor, items: list[CADItem], options: EvalOptions, progress=None) -> dict:
    from .metrics.cad import CADMetrics

    metrics = CADMetrics()
    encode_clock, decode_clock = Stopwatch(), Stopwatch()
    per_item, codes_seen = [], []
    for start in range(0, len(items), options.batch_size):
        batch = items[start : start + options.batch_size]
        length = max(len(item.commands) for item in batch)
        width = batch[0].commands.shape[1]
        commands = torch.full((len(batch), length, width), -1, dtype=torch.long)
        mask = torch.zeros(len(batch), length, dtype=torch.bool)
        for i, item in enumerate(batch):
            commands[i, : len(item.commands)] = item.commands
            mask[i, : len(item.commands)] = True
        with torch.no_grad(), encode_clock.time(len(batch), options.device):
            encoded = model.encode(commands.to(options.device), attention_mask=mask.to(options.device))
        with torch.no_grad(), decode_clock.time(len(batch), options.device):
            decoded = model.decode(encoded.codes, generator=torch.Generator(options.device).manual_seed(options.seed))
        for i, item in enumerate(batch):
            n = int(decoded.lengths[i]) if decoded.lengths is not None else decoded.reconstruction.shape[1]
            scores = metrics(item, decoded.reconstruction[i, :n].cpu())
            per_item.append({"name": item.name, "num_commands": len(item.commands), **scores})
            valid = encoded.attention_mask[i] if encoded.attention_mask is not None else slice(None)
            codes_seen.append(encoded.codes[i][valid].reshape(-1).cpu())
        if progress is not None:
            progress.update(len(batch))
    results = {"num_items": len(items),
               "metrics": {n: mean_std([r[n] for r in per_item if r.get(n) is not None]) for n in NUMERIC},
               "invalid_ratio": sum(r["invalid"] for r in per_item) / len(per_item)}
    codes = torch.cat(codes_seen)
    codebook = codebook_statistics(codes, model.codebook_size)
    results.update(tokens_per_item=codes.numel() / len(items), bits_per_token=bits_per_token(model.codebook_size),
                   codebook={k: v for k, v in codebook.items() if k != "histogram"})
    results["throughput"] = {"encode_items_per_s": encode_clock.items_per_second,
                             "decode_items_per_s": decode_clock.items_per_second, **peak_memory_mb(options.device)}
    results["skipped"] = {}
    results["per_item"] = per_item
    results["_figures"] = {"histogram": (codebook["histogram"], codebook["perplexity"])}
    return results


__all__ = ["load_cad", "evaluate_cad"]
