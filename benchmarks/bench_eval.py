"""Time the evaluation harness itself on the shipped data (a benchmark script, not a test).

    python benchmarks/bench_eval.py [--model flextok-tiny] [--data bundled] [--steps 20] [--out bench_output/eval]

Runs `unitok eval` and prints the time per item, split into the tokenizer's own encode/decode time and the metric
overhead (ST-LPIPS, Fréchet features, figures).
"""

import argparse
import json
import time

from unitok.evaluation.common import EvalOptions
from unitok.evaluation.harness import evaluate


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="flextok-tiny")
    parser.add_argument("--data", default="bundled")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--budgets", default=None)
    parser.add_argument("--out", default="bench_output/eval")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else None
    start = time.perf_counter()
    results = evaluate(args.model, args.data, args.out, EvalOptions(num_inference_steps=args.steps,
                                                                   token_budgets=budgets))
    total = time.perf_counter() - start
    throughput = results["throughput"]
    n = results["num_items"]
    budgets_run = len(results.get("budgets", {})) or 1
    tokenizer_s = n / throughput["encode_items_per_s"] + sum(
        n / v for k, v in throughput.items() if k.startswith("decode_items_per_s@"))
    summary = {"model": args.model, "data": args.data, "items": n, "budgets": budgets_run,
               "total_s_incl_model_and_metric_loading": total,
               "evaluation_s_per_item": throughput["evaluation_seconds_per_item"],
               "tokenizer_s_per_item": tokenizer_s / n,
               "metric_overhead_s_per_item": throughput["evaluation_seconds_per_item"] - tokenizer_s / n}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
