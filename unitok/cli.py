"""`unitok` command line: list, encode, decode, reconstruct, eval, compare, push.

    unitok list [--modality image]
    unitok encode --model PATH_OR_ID image.png [more.png ...] -o codes.json [--num-tokens K]
    unitok decode --model PATH_OR_ID codes.json -o out.png [--steps N --guidance-scale S --seed 0]
    unitok reconstruct --model PATH_OR_ID image.png [...] -o side_by_side.png [--num-tokens K]
    unitok eval --model PATH_OR_ID --data bundled --out eval_out
    unitok push MODEL_OR_ADAPTER_FOLDER ORG/NAME [--eval eval_out] [--dry-run | --to-git PATH]   (hub_upload/)
    unitok lora merge BASE ADAPTER OUT            (`--adapter PATH` on encode/decode/reconstruct/eval adds LoRA)

`--model` takes a folder or Hub repo id with weights, or a variant name from `unitok list` (random weights: the
output says so). Errors a user can fix (missing file, unreadable image, wrong codes file) exit with status 2 and one
line, no traceback.
"""

import argparse
import inspect
import io
import json
import sys
from pathlib import Path

import torch

from .remote_code import write_atomic


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def load_model(name_or_path: str, device: str = "cpu", adapter: str | None = None):
    """A folder / Hub id with weights, or a registered variant name (random weights, with a warning); with
    `adapter`, a LoRA adapter (folder or Hub id) loaded on top (`unitok.lora.load_adapter`)."""
    from .evaluation.harness import load_model as load
    from .lora import load_adapter

    try:
        model = load(name_or_path, device)[0]
    except (OSError, ValueError) as error:
        raise CLIError(f"Cannot load model {name_or_path!r}: {error}") from error
    if adapter is None:
        return model
    try:
        return load_adapter(model, adapter).eval()
    except (OSError, ValueError) as error:
        raise CLIError(f"Cannot load adapter {adapter!r} on {name_or_path!r}: {error}") from error


def load_preprocessor(model, name_or_path: str):
    from .evaluation.harness import load_processor

    return load_processor(model, name_or_path)


def read_images(paths: list[str]):
    """PIL RGB images; a missing or unreadable file is a CLIError naming it."""
    from PIL import Image

    from .data.images import read_image

    try:
        return [Image.fromarray(read_image(path).image.permute(1, 2, 0).numpy()) for path in paths]
    except ValueError as error:
        raise CLIError(str(error)) from error


def _require_image_model(model) -> None:
    if model.modality != "image":
        raise CLIError(f"This command handles image tokenizers for now; {model.config.model_type} is {model.modality}.")


def _decode_kwargs(model, args) -> dict:
    parameters = inspect.signature(model.decode).parameters
    kwargs = {"generator": torch.Generator(model.device).manual_seed(args.seed)}
    if args.steps is not None:
        kwargs["num_inference_steps"] = args.steps
    if args.guidance_scale is not None and "guidance_scale" in parameters:
        kwargs["guidance_scale"] = args.guidance_scale
    return kwargs


def encode_images(model, preprocessor, images, num_tokens: int | None) -> torch.Tensor:
    pixel_values = preprocessor(images, return_tensors="pt")["pixel_values"].to(model.device)
    with torch.no_grad():
        codes = model.encode(pixel_values).codes
    if codes is None:
        raise CLIError(f"{model.config.model_type} is a continuous tokenizer: it has no discrete codes to write.")
    if num_tokens is not None:
        if not 1 <= num_tokens <= codes.shape[-1]:
            raise CLIError(f"--num-tokens must be in [1, {codes.shape[-1]}], got {num_tokens}.")
        codes = codes[..., :num_tokens]
    return codes


def cmd_list(args) -> None:
    from .registry import get_variant, list_models

    for name in list_models(modality=args.modality):
        variant = get_variant(name)
        print(f"{name:24s} {variant.modality:6s} {variant.description}")


def cmd_encode(args) -> None:
    model = load_model(args.model, args.device, args.adapter)
    _require_image_model(model)
    images = read_images(args.images)
    codes = encode_images(model, load_preprocessor(model, args.model), images, args.num_tokens)
    payload = {"model": args.model, "model_type": model.config.model_type, "inputs": args.images,
               "codebook_size": model.codebook_size, "shape": list(codes.shape), "codes": codes.cpu().tolist()}
    write_atomic(Path(args.output), json.dumps(payload))
    print(f"wrote {codes.shape[0]} × {codes.shape[1]} codes to {args.output}")


def read_codes(path: str, model) -> torch.Tensor:
    if not Path(path).is_file():
        raise CLIError(f"Codes file not found: {path}")
    try:
        payload = json.loads(Path(path).read_text())
        codes = torch.tensor(payload["codes"], dtype=torch.long)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise CLIError(f"{path} is not a codes file written by `unitok encode` ({error}).") from error
    if payload.get("model_type") not in (None, model.config.model_type):
        raise CLIError(f"{path} holds {payload['model_type']} codes, but the model is {model.config.model_type}.")
    return codes


def save_grid(rows, path: str) -> None:
    """Write a grid of PIL images (a list of rows) as one PNG, atomically."""
    from PIL import Image

    cell_w = max(image.width for row in rows for image in row)
    cell_h = max(image.height for row in rows for image in row)
    canvas = Image.new("RGB", (cell_w * max(len(row) for row in rows), cell_h * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas.paste(image, (c * cell_w, r * cell_h))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    write_atomic(Path(path), buffer.getvalue())


def cmd_decode(args) -> None:
    model = load_model(args.model, args.device, args.adapter)
    _require_image_model(model)
    codes = read_codes(args.codes, model).to(model.device)
    try:
        reconstruction = model.decode(codes, **_decode_kwargs(model, args)).reconstruction
    except ValueError as error:
        raise CLIError(str(error)) from error
    images = load_preprocessor(model, args.model).postprocess(reconstruction)
    save_grid([images], args.output)
    print(f"wrote {len(images)} decoded image(s) to {args.output}")


def cmd_reconstruct(args) -> None:
    model = load_model(args.model, args.device, args.adapter)
    _require_image_model(model)
    preprocessor = load_preprocessor(model, args.model)
    images = read_images(args.images)
    pixel_values = preprocessor(images, return_tensors="pt")["pixel_values"]
    codes = encode_images(model, preprocessor, images, args.num_tokens)
    reconstruction = model.decode(codes, **_decode_kwargs(model, args)).reconstruction
    originals, outputs = preprocessor.postprocess(pixel_values), preprocessor.postprocess(reconstruction)
    save_grid([list(pair) for pair in zip(originals, outputs)], args.output)
    print(f"wrote original | reconstruction for {len(images)} image(s) ({codes.shape[-1]} tokens) to {args.output}")


def _eval_options(args):
    from .evaluation.common import EvalOptions

    budgets = [int(k) for k in args.budgets.split(",")] if args.budgets else None
    return EvalOptions(batch_size=args.batch_size, num_inference_steps=args.steps, seed=args.seed,
                       token_budgets=budgets, max_items=args.max_items, device=args.device,
                       fd_inception_weights=args.fid_inception_weights, compute_fd=not args.no_fd)


def cmd_eval(args) -> None:
    from .evaluation.harness import evaluate

    model = load_model(args.model, args.device, args.adapter) if args.adapter else args.model
    try:
        results = evaluate(model, args.data, args.out, _eval_options(args))
    except (OSError, ValueError) as error:
        raise CLIError(str(error)) from error
    seconds = results["throughput"]["evaluation_seconds_per_item"]
    print(f"evaluated {results['num_items']} items in {seconds:.3f} s/item → {args.out}/metrics.json, report.md, "
          f"{', '.join(f for f in results['figures'].values() if f.endswith('.png'))}")


def cmd_compare(args) -> None:
    from .evaluation.harness import compare

    try:
        compare(args.models, args.data, args.out, _eval_options(args))
    except (OSError, ValueError) as error:
        raise CLIError(str(error)) from error
    print(f"wrote {args.out}/comparison.md, comparison.json and rate_distortion.png")


def cmd_lora_merge(args) -> None:
    import shutil
    import tempfile

    from .evaluation.harness import load_processor
    from .lora import merge

    output = Path(args.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise CLIError(f"{output} exists and is not empty; choose a new folder.")
    model = load_model(args.base, adapter=args.adapter)
    merged = merge(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.incomplete-", dir=output.parent))
    try:  # the merged folder appears complete or not at all
        processor = load_processor(merged, args.base)
        if processor is not None:
            processor.save_pretrained(work)
        merged.save_pretrained(work)
        if output.exists():
            output.rmdir()
        work.rename(output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"merged {args.adapter} into {args.base} → {output} ({sum(p.numel() for p in merged.parameters()):,} "
          "parameters)")


def cmd_push(args) -> None:
    from .hub_upload.cli import run
    from .hub_upload.transports import PublishError

    try:
        print(run(args))
    except (ValueError, PublishError) as error:
        raise CLIError(str(error)) from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unitok", description="Multimodal tokenizers: encode, decode, reconstruct.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list the named variants")
    listing.add_argument("--modality", choices=["image", "audio", "motion", "cad"])
    listing.set_defaults(func=cmd_list)

    def common(p):
        p.add_argument("--model", required=True, help="folder, Hub repo id, or variant name (random weights)")
        p.add_argument("--adapter", default=None, help="LoRA adapter (folder or Hub repo id) on top of --model")
        p.add_argument("-o", "--output", required=True)
        p.add_argument("--device", default="cpu")

    def sampling(p):
        p.add_argument("--steps", type=int, default=None, help="decoder sampling steps (model default if unset)")
        p.add_argument("--guidance-scale", type=float, default=None)
        p.add_argument("--seed", type=int, default=0)

    encode = sub.add_parser("encode", help="images → codes JSON")
    common(encode)
    encode.add_argument("images", nargs="+")
    encode.add_argument("--num-tokens", type=int, default=None, help="keep the first K tokens (1D tokenizers)")
    encode.set_defaults(func=cmd_encode)
    decode = sub.add_parser("decode", help="codes JSON → images PNG")
    common(decode)
    sampling(decode)
    decode.add_argument("codes")
    decode.set_defaults(func=cmd_decode)
    recon = sub.add_parser("reconstruct", help="images → original | reconstruction PNG")
    common(recon)
    sampling(recon)
    recon.add_argument("images", nargs="+")
    recon.add_argument("--num-tokens", type=int, default=None)
    recon.set_defaults(func=cmd_reconstruct)

    def evaluation(p):
        p.add_argument("--data", default="bundled", help="image: bundled | skimage | fashion-mnist[:split][:N] | "
                       "FOLDER (append :N to keep N items)")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--device", default="cpu")
        p.add_argument("--batch-size", type=int, default=8)
        p.add_argument("--steps", type=int, default=None, help="decoder sampling steps (model default if unset)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--budgets", default=None, help="token counts to decode at, e.g. 1,16,256 (1D tokenizers)")
        p.add_argument("--max-items", type=int, default=None)
        p.add_argument("--fid-inception-weights", default=None,
                       help="pt_inception-2015-12-05 weights file: standard FID instead of FD-EffNetLite0")
        p.add_argument("--no-fd", action="store_true", help="skip the Fréchet distance")

    ev = sub.add_parser("eval", help="evaluate a tokenizer: metrics.json, report.md, figures")
    ev.add_argument("--model", required=True, help="folder, Hub repo id, or variant name (random weights)")
    ev.add_argument("--adapter", default=None, help="LoRA adapter (folder or Hub repo id) on top of --model")
    evaluation(ev)
    ev.set_defaults(func=cmd_eval)
    cmp = sub.add_parser("compare", help="evaluate several tokenizers on the same data: one table, one plot")
    cmp.add_argument("models", nargs="+")
    evaluation(cmp)
    cmp.set_defaults(func=cmd_compare)
    from .hub_upload.cli import add_arguments as push_arguments

    push = sub.add_parser("push", help="stage a model as a Hub repository (card, code, eval) and upload it")
    push_arguments(push)
    push.set_defaults(func=cmd_push)
    lora = sub.add_parser("lora", help="LoRA adapters")
    lora_sub = lora.add_subparsers(dest="lora_command", required=True)
    merge = lora_sub.add_parser("merge", help="fold an adapter into its base and save a full model folder")
    merge.add_argument("base", help="base model: folder or Hub repo id")
    merge.add_argument("adapter", help="adapter: folder or Hub repo id (unitok.lora.save_adapter)")
    merge.add_argument("output", help="new folder for the merged model")
    merge.set_defaults(func=cmd_lora_merge)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CLIError as error:
        print(f"unitok: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
