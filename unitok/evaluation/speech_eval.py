"""Speech tokenizer evaluation: round trip each utterance (decoding with its transcript where the decoder takes
text), score it with the speech metrics, and measure token rate, codebook use and speed.

Audio tokenizers follow the contract with `processor = model.build_preprocessor()` a feature extractor
(`processor(list_of_waveforms, sampling_rate=..., return_tensors="pt", padding=True)`), `model.encode(**features)`
returning `codes` `(batch, frames)` or `(batch, codebooks, frames)`, and `model.decode(codes, ...)` returning the
waveform at `model.config.sampling_rate` with per-item `lengths`. Conditioning the decoder accepts is passed by name:
`text` (the transcripts).
"""

import inspect
import wave
from pathlib import Path

import numpy as np
import torch

from ..data.items import SpeechItem
from .common import (
    EvalOptions, Stopwatch, bits_per_token, codebook_statistics, keep_valid, mean_std, peak_memory_mb,
)

NUMERIC = ("mel_distance", "stft_distance", "pesq_wb", "stoi", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
           "dnsmos_p808", "speaker_similarity", "wer", "cer")


def load_speech(spec: str) -> list[SpeechItem]:
    """`fixtures` (the committed CMU ARCTIC clips), `synthetic[:N]` (offline TTS set, generated once into
    ~/.cache/unitok/speech-synthetic), or a JSONL manifest path; `:N` keeps the first N items."""
    from ..data import speech

    name, _, count = spec.partition(":")
    if name == "fixtures":
        items = speech.load_speech_fixtures()
    elif name == "synthetic":
        cache = Path.home() / ".cache" / "unitok" / "speech-synthetic"
        manifest = cache / "manifest.jsonl"
        items = speech.load_speech_manifest(manifest) if manifest.exists() else speech.synthesize_speech_set(cache)
    elif Path(name).is_file():
        items = speech.load_speech_manifest(name)
    else:
        raise ValueError(f"Unknown speech data {spec!r}: use 'fixtures', 'synthetic[:N]' or a manifest.jsonl path.")
    kept = keep_valid(items, speech.validate_speech)
    return kept[: int(count)] if count.isdigit() else kept


def write_wav(path: Path, waveform: torch.Tensor, sample_rate: int) -> None:
    pcm = (waveform.detach().float().clamp(-1, 1).cpu().numpy() * 32767).round().astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())


def _log_mel(waveform: torch.Tensor, sample_rate: int) -> np.ndarray:
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=80)
    return torch.log(mel(waveform.float().cpu()).clamp_min(1e-5)).numpy()


def evaluate_speech(model, processor, items: list[SpeechItem], options: EvalOptions, progress=None,
                    out_dir: Path | None = None) -> dict:
    from .metrics.speech import SpeechMetrics, resample

    metrics = SpeechMetrics()
    model_rate = int(model.config.sampling_rate)
    input_rate = int(getattr(processor, "sampling_rate", model_rate))
    decode_parameters = inspect.signature(model.decode).parameters
    encode_clock, decode_clock = Stopwatch(), Stopwatch()
    per_item, skipped, codes_seen = [], {}, []
    seconds_total, tokens_total = 0.0, 0
    examples = []
    for start in range(0, len(items), options.batch_size):
        batch = items[start : start + options.batch_size]
        waves = [resample(item.waveform, item.sample_rate, input_rate).numpy() for item in batch]
        features = processor(waves, sampling_rate=input_rate, return_tensors="pt", padding=True)
        features = {k: v.to(options.device) for k, v in features.items() if isinstance(v, torch.Tensor)}
        with torch.no_grad(), encode_clock.time(len(batch), options.device):
            encoded = model.encode(**features)
        kwargs = {"generator": [torch.Generator(options.device).manual_seed(options.seed + start + i)
                                for i in range(len(batch))]}
        if options.num_inference_steps is not None:
            kwargs["num_inference_steps"] = options.num_inference_steps
        if "text" in decode_parameters:
            kwargs["text"] = [item.transcript for item in batch]
        for name in ("lengths", "audio_lengths"):  # per-item valid lengths of a padded batch, when decode takes them
            if name in decode_parameters and getattr(encoded, name, None) is not None:
                kwargs[name] = getattr(encoded, name)
        with torch.no_grad(), decode_clock.time(len(batch), options.device):
            decoded = model.decode(encoded.codes, **kwargs) if encoded.codes is not None else \
                model.decode(latents=encoded.latents, **kwargs)
        frames = encoded.lengths.tolist() if encoded.lengths is not None else [encoded.codes.shape[-1]] * len(batch)
        for i, item in enumerate(batch):
            length = int(decoded.lengths[i]) if decoded.lengths is not None else decoded.reconstruction.shape[-1]
            estimate = decoded.reconstruction[i, :length].float().cpu()
            duration = item.waveform.numel() / item.sample_rate
            seconds_total += duration
            if encoded.codes is not None:
                per_frame = encoded.codes[i].numel() // encoded.codes.shape[-1]
                tokens_total += frames[i] * per_frame
                codes_seen.append(encoded.codes[i][..., : frames[i]].reshape(-1).cpu())
            scores = metrics(item, estimate, model_rate)
            skipped.update(scores.pop("skipped", {}))
            per_item.append({"name": item.name, "seconds": duration, "transcript": item.transcript, **scores})
            if len(examples) < min(options.grid_items, 4):
                examples.append((item, estimate))
        if progress is not None:
            progress.update(len(batch))
    results = {"num_items": len(items), "total_audio_seconds": seconds_total, "sampling_rate": model_rate,
               "metrics": {name: mean_std([r[name] for r in per_item if name in r]) for name in NUMERIC
                           if any(name in r for r in per_item)}}
    if codes_seen:
        results["tokens_per_second"] = tokens_total / seconds_total
        results["bits_per_token"] = bits_per_token(model.codebook_size)
        results["bits_per_second"] = results["tokens_per_second"] * results["bits_per_token"]
        codebook = codebook_statistics(torch.cat(codes_seen), model.codebook_size)
        results["codebook"] = {k: v for k, v in codebook.items() if k != "histogram"}
    results["throughput"] = {"encode_items_per_s": encode_clock.items_per_second,
                             "decode_items_per_s": decode_clock.items_per_second,
                             "encode_real_time_factor": encode_clock.seconds / seconds_total,
                             "decode_real_time_factor": decode_clock.seconds / seconds_total,
                             **peak_memory_mb(options.device)}
    results["skipped"] = skipped
    results["per_item"] = per_item
    results["_figures"] = {"histogram": (codebook["histogram"], codebook["perplexity"]) if codes_seen else None,
                           "speech_examples": examples, "sampling_rate": model_rate}
    return results


def write_speech_figures(examples, sampling_rate: int, out: Path) -> dict:
    """Spectrogram comparison PNG and reference/reconstruction WAVs for the first examples."""
    from .figures import spectrograms
    from .metrics.speech import resample

    written = {}
    for index, (item, estimate) in enumerate(examples):
        reference = resample(item.waveform, item.sample_rate, sampling_rate)
        stem = f"speech_{index:02d}_{item.name}"
        write_wav(out / f"{stem}_reference.wav", reference, sampling_rate)
        write_wav(out / f"{stem}_reconstruction.wav", estimate, sampling_rate)
        length = min(reference.numel(), estimate.numel())
        spectrograms(_log_mel(reference[:length], sampling_rate), _log_mel(estimate[:length], sampling_rate),
                     out / f"{stem}_spectrogram.png", title=f"{item.name}: “{item.transcript}”")
        written[f"spectrogram_{index}"] = f"{stem}_spectrogram.png"
        written[f"audio_{index}"] = f"{stem}_reconstruction.wav"
    return written


__all__ = ["load_speech", "evaluate_speech", "write_speech_figures", "write_wav"]
