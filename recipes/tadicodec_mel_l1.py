"""Mel-L1 of a TaDiCodec round trip: encode → decode (with the transcript) → the generated normalised log-mel vs the
input's, before the vocoder. The number the codec itself is trained to lower; waveform metrics (`unitok eval`) also
depend on the vocoder, which recipes keep frozen.

    python recipes/tadicodec_mel_l1.py --model tadicodec-tiny --data synthetic --last 2        # random init (seed 0)
    python recipes/train.py --config recipes/configs/tadicodec/tiny.yaml
    python recipes/tadicodec_mel_l1.py --model runs/tadicodec-tiny/export --data synthetic --last 2

`--last N` scores the last N items of the data (the recipe's held-out items with `data.holdout: N`).
"""

import argparse
import json

import torch


def mel_l1(model, processor, items, steps: int, seed: int = 0) -> dict:
    """Mean absolute difference of normalised log-mels over the valid frames of each item."""
    import torchaudio

    scores = []
    for index, item in enumerate(items):
        wave = torchaudio.functional.resample(item.waveform, item.sample_rate, processor.sampling_rate)
        inputs = processor(audio=wave.numpy(), text=item.transcript, sampling_rate=processor.sampling_rate,
                           return_tensors="pt")
        with torch.no_grad():
            encoded = model.encode(inputs["input_values"], inputs["attention_mask"])
            out = model.decode(encoded.codes, text_ids=inputs["text_ids"], num_inference_steps=steps, vocode=False,
                               generator=torch.Generator().manual_seed(seed + index))
            target = model.mel(torch.nn.functional.pad(
                inputs["input_values"], (0, out.mel.shape[-1] * model.config.hop_length
                                         - inputs["input_values"].shape[-1])))
        frames = -(-wave.shape[-1] // model.config.hop_length)
        scores.append((out.mel[..., :frames] - target[..., :frames]).abs().mean().item())
    return {"mel_l1": sum(scores) / len(scores), "per_item": scores, "steps": steps, "items": len(items)}


def main(argv=None) -> None:
    from unitok.evaluation.harness import load_model, load_processor
    from unitok.evaluation.speech_eval import load_speech

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder / Hub id, or a variant name (seeded random init)")
    parser.add_argument("--data", default="fixtures", help="fixtures | synthetic[:N] | manifest.jsonl")
    parser.add_argument("--last", type=int, default=None, help="score only the last N items")
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args(argv)
    model, name = load_model(args.model)
    processor = load_processor(model, name)
    items = load_speech(args.data)
    items = items[-args.last:] if args.last else items
    print(json.dumps({"model": args.model, "data": args.data, **mel_l1(model, processor, items, args.steps)}))


if __name__ == "__main__":
    main()
