"""The README's demo: train a tiny FlexTok on the bundled photos on CPU, export it, reload it, and reconstruct
held-out photos from 1, 16, 64 and 256 tokens.

    python -m unitok.demo --out demo_output

1. Scores the untrained `flextok-tiny` on the two held-out photos (the "before").
2. Stage 0 (recipes/configs/flextok/tiny_vae.yaml): trains the VAE, as the paper's first stage.
3. Sets the VAE latent scaling factor to 1/std of the training latents (as Stable Diffusion's VAE does).
4. Stage 1 (recipes/configs/flextok/tiny_tokenizer.yaml): trains encoder, FSQ and rectified-flow decoder on the frozen
   VAE with nested dropout.
5. Reloads the export with `unitok.AutoTokenizer.from_pretrained` and evaluates it on the held-out photos (the
   "after"): `demo_output/after/` holds metrics.json, report.md, reconstructions.png; `demo_output/summary.json`
   and the printout compare PSNR before and after.
"""

import argparse
import json
from pathlib import Path

import torch

from .remote_code import write_atomic

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "configs" / "flextok"
BUDGETS = [1, 16, 64, 256]


def latent_scaling_factor(model, dataset, batches: int = 4) -> float:
    """1 / std of the VAE's (unscaled) latents over a few training batches."""
    latents = []
    with torch.no_grad():
        for start in range(0, min(len(dataset), 8 * batches), 8):
            pixels = torch.stack([dataset[i]["pixel_values"] for i in range(start, min(start + 8, len(dataset)))])
            latents.append(model.vae.encode(pixels).latent_dist.mode())
    return float(1.0 / torch.cat(latents).std())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output")
    parser.add_argument("--vae-steps", type=int, default=None, help="override stage-0 steps (recipe default 400)")
    parser.add_argument("--tokenizer-steps", type=int, default=None, help="override stage-1 steps (default 600)")
    parser.add_argument("--sampling-steps", type=int, default=20)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from . import AutoTokenizer, create_model
    from .data.images import bundled_images
    from .evaluation.common import EvalOptions
    from .evaluation.harness import evaluate
    from .training.config import load_config
    from .training.data import ImageDataset
    from .training.loop import train

    if not RECIPES.is_dir():
        raise SystemExit(f"The demo needs the repository's recipes folder ({RECIPES}); run it from a clone.")
    out = Path(args.out)
    common = [f"train.progress={str(not args.no_progress).lower()}", "train.tracker=null"]
    held_out = bundled_images()[-2:]
    options = EvalOptions(num_inference_steps=args.sampling_steps, token_budgets=BUDGETS, compute_fd=False)
    # Minutes of CPU training leave the decoder far from converged; guidance (released default 7.5, meant for
    # trained models) then hurts, so both the untrained and the trained model are decoded without it.
    decode_settings = {"guidance_scale": 1.0}

    print("1/5 scoring the untrained flextok-tiny on the held-out photos ...")
    torch.manual_seed(0)
    before = evaluate(create_model("flextok-tiny", **decode_settings), held_out, out / "before", options)

    print("2/5 stage 0: training the VAE ...")
    stage0 = load_config(RECIPES / "tiny_vae.yaml", [f"train.output_dir={out / 'stage0_vae'}", *common] +
                         ([f"train.steps={args.vae_steps}"] if args.vae_steps else []))
    vae_export = train(stage0)

    vae_model = AutoTokenizer.from_pretrained(vae_export, train_stage="vae").eval()
    dataset = ImageDataset(bundled_images()[:-2], vae_model.build_preprocessor(), augment=False)
    scale = latent_scaling_factor(vae_model, dataset)
    print(f"3/5 VAE latent scaling factor 1/std = {scale:.4f}")

    print("4/5 stage 1: training the tokenizer on the frozen VAE ...")
    stage1 = load_config(RECIPES / "tiny_tokenizer.yaml",
                         [f"model.pretrained={vae_export}", f"model.overrides.vae_scaling_factor={scale}",
                          f"train.output_dir={out / 'stage1_tokenizer'}", *common] +
                         ([f"train.steps={args.tokenizer_steps}"] if args.tokenizer_steps else []))
    export = train(stage1)

    print(f"5/5 reloading {export} with unitok.AutoTokenizer and reconstructing the held-out photos ...")
    model = AutoTokenizer.from_pretrained(export, **decode_settings)
    after = evaluate(model, held_out, out / "after", options)
    vae_model.config.vae_scaling_factor = scale
    held_pixels = torch.stack([ImageDataset(held_out, vae_model.build_preprocessor(), augment=False)[i]["pixel_values"]
                               for i in range(len(held_out))])
    with torch.no_grad():
        through_vae = vae_model.vae_decode(vae_model.vae_encode(held_pixels)).clamp(-1, 1)
    vae_psnr = (10 * torch.log10(4 / ((through_vae - held_pixels) ** 2).flatten(1).mean(1))).mean().item()

    summary = {"held_out": [item.name for item in held_out], "export": str(export), "vae_scaling_factor": scale,
               "psnr_before": {k: before["budgets"][k]["psnr"]["mean"] for k in before["budgets"]},
               "psnr_after": {k: after["budgets"][k]["psnr"]["mean"] for k in after["budgets"]},
               "ssim_after": {k: after["budgets"][k]["ssim"]["mean"] for k in after["budgets"]},
               "psnr_vae_only": vae_psnr, "decode_settings": decode_settings,
               "sampling_steps": args.sampling_steps}
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    print("\nheld-out PSNR (dB), untrained → trained:")
    for k in summary["psnr_after"]:
        print(f"  {int(k):3d} tokens: {summary['psnr_before'][k]:6.2f} → {summary['psnr_after'][k]:6.2f}")
    print(f"  (the trained VAE alone, the ceiling of any token count: {vae_psnr:.2f})")
    print(f"\nwrote {out / 'after' / 'reconstructions.png'}, {out / 'after' / 'metrics.json'} and "
          f"{out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    main()
