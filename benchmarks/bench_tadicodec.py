"""TaDiCodec real-time factors and peak memory (a benchmark script, not a test).

    python benchmarks/bench_tadicodec.py [--models tadicodec-tiny,tadicodec] [--seconds 4] [--steps 4,8,32]
        [--device cpu] [--out bench_output/tadicodec.json]

Real-time factor (RTF) = processing seconds / audio seconds (below 1 is faster than real time). Encode covers the
mel front end, encoder and BSQ; decode covers the flow-matching decoder at each step count with the released
guidance (CFG 2.0, so two decoder passes per step; `--no-cfg` measures one pass) and the Vocos vocoder. Each model
runs in a fresh process (peak RSS on CPU, `torch.cuda.max_memory_allocated` on CUDA). Random weights: speed and
memory do not depend on them. The transcript is 12 tokens per second of audio.
"""

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path


def _measure(name: str, seconds: float, steps: list[int], device: str, cfg: bool, queue) -> None:
    import torch

    import unitok

    torch.manual_seed(0)
    model = unitok.create_model(name).to(device).eval()
    rate = model.config.sampling_rate
    audio = torch.randn(1, int(seconds * rate), device=device) * 0.1
    text = torch.randint(1, model.config.text_vocab_size, (1, int(12 * seconds)), device=device)
    scale = model.config.guidance_scale if cfg else 1.0

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(fn, repeats: int = 1) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        return (time.perf_counter() - start) / repeats

    result = {"model": name, "device": device, "audio_seconds": seconds, "guidance_scale": scale,
              "parameters_M": sum(p.numel() for p in model.parameters()) / 1e6}
    with torch.no_grad():
        codes = model.encode(audio).codes  # warm-up
        model.decode(codes, text_ids=text, num_inference_steps=1, guidance_scale=scale)
        result["encode_rtf"] = timed(lambda: model.encode(audio), repeats=3) / seconds
        result["decode_rtf"] = {}
        for n in steps:
            generator = torch.Generator(device).manual_seed(0)
            result["decode_rtf"][n] = timed(lambda: model.decode(codes, text_ids=text, num_inference_steps=n,
                                                                   guidance_scale=scale, generator=generator)) / seconds
    result["peak_memory_MB"] = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put(result)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tadicodec-tiny,tadicodec")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", default="4,8,32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-cfg", action="store_true")
    parser.add_argument("--out", default="bench_output/tadicodec.json")
    args = parser.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    context = mp.get_context("spawn")
    results = []
    for name in args.models.split(","):
        queue = context.Queue()
        process = context.Process(target=_measure, args=(name, args.seconds, steps, args.device, not args.no_cfg,
                                                         queue))
        process.start()
        result = queue.get()
        process.join()
        result["machine"] = platform.processor() or platform.machine()
        results.append(result)
        print(json.dumps(result), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
