"""Training throughput, peak memory and data-loading share (a benchmark script, not a test).

    python benchmarks/bench_training.py [--models flextok-tiny,flextok-d12-d12] [--processes 1,2] [--steps 6]
    python benchmarks/bench_training.py --lora decoder --lora-rank 16    # LoRA fine-tuning of the same models

Runs the real recipe (`recipes/train.py`, stage 1 tokenizer) through `accelerate launch` on CPU at batch 8 per
process for each (model, process count), on the 17 scikit-image photos (16 fill one batch of 8 on each of 2 processes), and reads the last logged window (the first step is
excluded as warm-up): samples/s over all processes, the share of step time spent waiting for data, and the peak
resident memory of the main process. With --lora, each model is first saved with random weights and fine-tuned
from that folder with the LoRA preset (only adapters train); the trainable parameter count is reported too.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lora_base(model: str, workdir: Path) -> Path:
    """A saved random-init checkpoint to fine-tune (LoRA needs model.pretrained)."""
    import unitok

    folder = workdir / f"{model}-base"
    if not folder.exists():
        unitok.create_model(model).save_pretrained(folder)
    return folder


def run(model: str, processes: int, steps: int, batch: int, workdir: Path, lora: str | None = None,
        lora_rank: int = 16) -> dict:
    out = workdir / f"{model}-{processes}p{'-lora' if lora else ''}"
    source = ["model.pretrained=null", f"model.name={model}"]
    if lora:
        source = [f"model.pretrained={lora_base(model, workdir)}", f"lora.preset={lora}", f"lora.r={lora_rank}",
                  f"lora.alpha={lora_rank}"]
    accelerate = Path(sys.executable).parent / "accelerate"
    mode = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command = [str(accelerate), "launch", *mode, "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "recipes" / "train.py"),
               "--config", str(ROOT / "recipes" / "configs" / "flextok" / "tiny_tokenizer.yaml"),
               *source, f"train.batch_size={batch}", f"train.steps={steps}",
               f"train.log_every={steps - 1}", f"train.checkpoint_every={steps}", f"train.output_dir={out}",
               "train.tracker=null", "train.progress=false", "data.holdout=0", "data.source=skimage"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": str(max(1, os.cpu_count() // processes))}
    subprocess.run(command, check=True, env=env, cwd=workdir, capture_output=True)
    rows = [json.loads(line) for line in (out / "loss_history.jsonl").read_text().splitlines()]
    last = rows[-1]
    result = {"model": model, "processes": processes, "batch_per_process": batch, "lora": lora,
              "samples_per_s": last["samples_per_s"], "data_wait_share": last["data_wait_share"],
              "peak_rss_MB_main_process": last.get("peak_process_rss_MB")}
    if lora:
        meta = json.loads((out / "export" / "unitok_adapter.json").read_text())
        result.update(lora_rank=lora_rank, trainable_parameters=meta["trainable_parameters"],
                      total_parameters=meta["total_parameters"])
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="flextok-tiny,flextok-d12-d12")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lora", default=None, help="fine-tune with this LoRA preset instead of full training")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--out", default="bench_output/training.json")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for processes in (int(p) for p in args.processes.split(",")):
                result = run(model, processes, args.steps, args.batch_size, Path(tmp), args.lora, args.lora_rank)
                results.append(result)
                print(json.dumps(result), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
