"""The README's demo: tokenize the bundled sample images with a tiny FlexTok and reconstruct them.

    python -m unitok.demo --out demo_output

Writes `demo_output/reconstructions.png` (original | reconstructions from the first 1, 16, 64 and 256 tokens) and
`demo_output/codes.json`. The tiny model's weights are RANDOM (untrained) until the training recipe lands, so the
reconstructions show the pipeline working end to end, not image quality.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

from . import create_model
from .cli import save_grid
from .data.images import bundled_images
from .remote_code import write_atomic

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output")
    parser.add_argument("--model", default="flextok-tiny")
    parser.add_argument("--token-counts", default="1,16,64,256")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    print(f"unitok demo: {args.model} with RANDOM, UNTRAINED weights (training arrives with the recipes); "
          "the reconstructions show the pipeline, not quality.")
    model = create_model(args.model).eval()
    processor = model.build_preprocessor()
    samples = bundled_images()
    names = [item.name for item in samples]
    images = [Image.fromarray(item.image.permute(1, 2, 0).numpy()) for item in samples]
    pixel_values = processor(list(images), return_tensors="pt")["pixel_values"]

    start = time.perf_counter()
    with torch.no_grad():
        codes = model.encode(pixel_values).codes
    print(f"encoded {len(images)} images → codes {tuple(codes.shape)} (ids < {model.codebook_size}) "
          f"in {time.perf_counter() - start:.2f}s")

    counts = [int(k) for k in args.token_counts.split(",")]
    columns = [processor.postprocess(pixel_values)]
    for k in counts:
        start = time.perf_counter()
        generators = [torch.Generator().manual_seed(args.seed + i) for i in range(len(images))]
        recon = model.decode(codes[:, :k], generator=generators, num_inference_steps=args.steps).reconstruction
        mse = torch.mean((recon.clamp(-1, 1) - pixel_values) ** 2).item()
        print(f"decoded from the first {k:3d} tokens in {time.perf_counter() - start:.2f}s "
              f"(PSNR {10 * torch.log10(torch.tensor(4.0 / mse)).item():.2f} dB, untrained)")
        columns.append(processor.postprocess(recon))

    save_grid([list(row) for row in zip(*columns)], out / "reconstructions.png")
    payload = {"model": args.model, "untrained": True, "images": list(names), "codes": codes.tolist()}
    write_atomic(out / "codes.json", json.dumps(payload))
    print(f"wrote {out / 'reconstructions.png'} (columns: original, {', '.join(f'{k} tokens' for k in counts)}) "
          f"and {out / 'codes.json'}")


if __name__ == "__main__":
    main()
