"""FlexTok encode/decode throughput and peak memory (a benchmark script, not a test).

    python benchmarks/bench_flextok.py [--models flextok-tiny,flextok-d12-d12] [--batches 1,8] [--steps 20]
        [--device cpu] [--out bench_output/flextok.json]

Each (model, batch) runs in a fresh process so peak memory is its own: on CPU the peak resident set size (RSS) of
that process and its increase over the process with the model loaded; on CUDA `torch.cuda.max_memory_allocated`.
Decode uses the released sampler settings (APG guidance 7.5, so two decoder passes per step) with `--steps` Euler
steps. Weights are random: speed and memory do not depend on them.
"""

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(name: str, batch: int, steps: int, device: str, repeats: int, queue) -> None:
    import torch

    import unitok

    torch.manual_seed(0)
    model = unitok.create_model(name).to(device).eval()
    size = model.config.image_size
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    result = {"model": name, "batch": batch, "steps": steps, "device": device, "image_size": size,
              "parameters_M": sum(p.numel() for p in model.parameters()) / 1e6}

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        codes = model.encode(x).codes  # warm-up
        model.decode(codes, num_inference_steps=1, generator=torch.Generator(device).manual_seed(0))
        sync()
        loaded_rss = _rss_mb()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(repeats):
            codes = model.encode(x).codes
        sync()
        encode_s = (time.perf_counter() - start) / repeats
        encode_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_rss_mb()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        model.decode(codes, num_inference_steps=steps, generator=torch.Generator(device).manual_seed(0))
        sync()
        decode_s = time.perf_counter() - start
        decode_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_rss_mb()
    result.update(encode_images_per_s=batch / encode_s, decode_images_per_s=batch / decode_s,
                  encode_s=encode_s, decode_s=decode_s, loaded_rss_MB=loaded_rss,
                  peak_MB=max(encode_peak, decode_peak), encode_peak_MB=encode_peak, decode_peak_MB=decode_peak)
    queue.put(result)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="flextok-tiny,flextok-d12-d12")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="encode repetitions (decode runs once)")
    parser.add_argument("--out", default="bench_output/flextok.json")
    args = parser.parse_args(argv)
    context = mp.get_context("spawn")
    results = []
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            queue = context.Queue()
            process = context.Process(target=_measure, args=(name, batch, args.steps, args.device, args.repeats,
                                                             queue))
            process.start()
            result = queue.get()
            process.join()
            results.append(result)
            print(f"{name:16s} batch {batch}: encode {result['encode_images_per_s']:8.2f} img/s | decode "
                  f"({args.steps} steps, APG) {result['decode_images_per_s']:7.3f} img/s | peak "
                  f"{result['peak_MB']:.0f} MB ({'RSS' if args.device == 'cpu' else 'CUDA'}; model loaded "
                  f"{result['loaded_rss_MB']:.0f} MB RSS)", flush=True)
    import torch

    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": mp.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
