"""TaDiCodec front end: the log-mel module, the waveform feature extractor, the text tokenizer and the processor."""

import math

import librosa
import numpy as np
import pytest
import torch
import torchaudio

from unitok.layers.mel import LogMelSpectrogram
from unitok.models.tadicodec.feature_extraction_tadicodec import TaDiCodecFeatureExtractor
from unitok.models.tadicodec.processing_tadicodec import TaDiCodecProcessor
from unitok.models.tadicodec.text_tokenizer_tadicodec import build_text_tokenizer

SR, N_FFT, HOP, N_MELS = 24000, 1920, 480, 128
PAD = (N_FFT - HOP) // 2  # 720


def _librosa_fb():
    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0, fmax=12000)  # (n_mels, n_fft//2 + 1)


def _reference_logmel(x: np.ndarray) -> np.ndarray:
    """The official recipe written independently in float64 numpy: reflect pad, frames without centring, periodic
    Hann, |X| with 1e-9 inside the root, librosa mel, log(clamp(·, 1e-5)). x: (samples,) → (n_mels, frames)."""
    padded = np.pad(x.astype(np.float64), (PAD, PAD), mode="reflect")
    frames = (len(padded) - N_FFT) // HOP + 1
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    stack = np.stack([padded[i * HOP: i * HOP + N_FFT] * window for i in range(frames)], axis=1)
    spec = np.fft.rfft(stack, axis=0)
    magnitude = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    return np.log(np.maximum(_librosa_fb().astype(np.float64) @ magnitude, 1e-5))


# ---------------------------------------------------------------------------------------------- LogMelSpectrogram
def test_filterbank_matches_librosa_and_window_is_periodic_hann():
    mel = LogMelSpectrogram()
    assert mel.mel_filters.shape == (N_MELS, N_FFT // 2 + 1) and mel.mel_filters.dtype == torch.float32
    np.testing.assert_allclose(mel.mel_filters.numpy(), _librosa_fb(), rtol=0, atol=1e-6)
    assert torch.equal(mel.window, torch.hann_window(N_FFT))
    assert set(mel.state_dict()) == set()  # non-persistent buffers: nothing in checkpoints


def test_matches_independent_reference_on_noise():
    x = torch.randn(2, 9600, generator=torch.Generator().manual_seed(1)) * 0.1
    out = LogMelSpectrogram()(x)
    assert out.shape == (2, N_MELS, 20) and out.dtype == torch.float32
    for b in range(2):
        np.testing.assert_allclose(out[b].numpy(), _reference_logmel(x[b].numpy()), rtol=0, atol=2e-4)


def test_pure_sine_at_a_bin_by_hand():
    """A sinusoid at exactly bin k puts A·sum(w)/2 into bin k and A·sum(w)/4 into bins k±1 (periodic Hann), zero
    elsewhere, in every frame that does not touch the reflected edges."""
    k, amplitude = 80, 0.5  # 80 · 12.5 Hz = 1 kHz
    n = torch.arange(SR // 2, dtype=torch.float64)
    x = (amplitude * torch.sin(2 * math.pi * k * n / N_FFT + 0.3)).float()[None]
    out = LogMelSpectrogram()(x)[0].double()  # (n_mels, frames)
    window_sum = N_FFT / 2  # sum of the periodic Hann window
    assert torch.hann_window(N_FFT, dtype=torch.float64).sum().item() == pytest.approx(window_sum)
    magnitude = np.full(N_FFT // 2 + 1, math.sqrt(1e-9))  # |X| of the zero bins is sqrt(0 + 1e-9)
    magnitude[k] = math.sqrt((amplitude * window_sum / 2) ** 2 + 1e-9)
    magnitude[k - 1] = magnitude[k + 1] = math.sqrt((amplitude * window_sum / 4) ** 2 + 1e-9)
    fb = _librosa_fb().astype(np.float64)
    expected = np.log(np.maximum(fb @ magnitude, 1e-5))
    bands = np.nonzero(fb[:, k - 1: k + 2].sum(1))[0]  # the bands that see the tone (elsewhere float32 FFT noise rules)
    assert 1 <= len(bands) <= 3
    interior = range(PAD // HOP + 2, (x.shape[1] - N_FFT + PAD) // HOP)  # frames away from the reflected edges
    for frame in (interior[0], interior[len(interior) // 2], interior[-1]):
        np.testing.assert_allclose(out[bands, frame].numpy(), expected[bands], rtol=0, atol=1e-4)
        # the strongest band: A·sum(w)/2 weighted by the filter value at bin k (plus the k±1 leakage)
        top = int(np.argmax(fb[:, k]))
        by_hand = math.log(fb[top, k] * amplitude * window_sum / 2 + (fb[top, k - 1] + fb[top, k + 1]) * amplitude
                           * window_sum / 4 + fb[top].sum() * math.sqrt(1e-9) - fb[top, k - 1: k + 2].sum() * math.sqrt(1e-9))
        assert out[top, frame].item() == pytest.approx(by_hand, abs=1e-4)


def test_silence_is_the_log_floor():
    out = LogMelSpectrogram()(torch.zeros(1, 4800))
    # every band: sum(fb[m]) · sqrt(1e-9) ≈ 0.08 · 3.2e-5 < 1e-5, so the clamp decides
    assert (_librosa_fb().sum(1) * math.sqrt(1e-9)).max() < 1e-5
    assert torch.allclose(out, torch.full_like(out, math.log(1e-5)))


@pytest.mark.parametrize("samples", [960, 1440, 4800, 3840, 3 * 3840, 1000, 3839, 721])
def test_frame_count(samples):
    mel = LogMelSpectrogram()
    out = mel(torch.randn(1, samples))
    assert out.shape == (1, N_MELS, samples // HOP) and mel.num_frames(samples) == samples // HOP
    if samples % 3840 == 0:
        assert out.shape[-1] == 8 * (samples // 3840)  # N tokens → 8N frames


def test_normalisation():
    x = torch.randn(2, 4800)
    raw = LogMelSpectrogram()(x)
    norm = LogMelSpectrogram(mean=-4.92, var=8.14)(x)
    torch.testing.assert_close(norm, (raw + 4.92) / math.sqrt(8.14))
    with pytest.raises(ValueError, match="both"):
        LogMelSpectrogram(mean=-4.92)
    with pytest.raises(ValueError, match="var"):
        LogMelSpectrogram(mean=0.0, var=0.0)


def test_reset_buffers_after_meta_init_and_float32_under_casts():
    reference = LogMelSpectrogram()
    with torch.device("meta"):
        mel = LogMelSpectrogram()
    assert mel.mel_filters.is_meta
    mel.to_empty(device="cpu")
    mel.reset_buffers()
    assert torch.equal(mel.mel_filters, reference.mel_filters) and torch.equal(mel.window, reference.window)

    mel.to(torch.bfloat16)
    assert mel.mel_filters.dtype == torch.float32 and torch.equal(mel.mel_filters, reference.mel_filters)
    x = torch.randn(1, 4800).bfloat16()
    out = mel(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference(x.float()))


@pytest.mark.parametrize(
    "bad",
    [torch.randn(4800), torch.randn(1, 1, 4800), torch.zeros(1, 4800, dtype=torch.int16), torch.randn(1, 700),
     torch.full((1, 4800), float("nan")), np.zeros((1, 4800), dtype=np.float32)],
)
def test_mel_rejects_bad_input(bad):
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        LogMelSpectrogram()(bad)


# ------------------------------------------------------------------------------------- TaDiCodecFeatureExtractor
def test_resampling_16k_to_24k():
    fe = TaDiCodecFeatureExtractor()
    x = torch.randn(16000, generator=torch.Generator().manual_seed(2)) * 0.1
    out = fe(x.numpy(), sampling_rate=16000)
    n = int(out["attention_mask"].sum())
    assert abs(n - 16000 * 3 // 2) <= 1
    expected = torchaudio.functional.resample(x, 16000, 24000)
    torch.testing.assert_close(out["input_values"][0, :n], expected, rtol=0, atol=0)
    assert out["input_values"].shape == (1, 26880)  # padded to 7 · 3840


def test_stereo_is_averaged_and_batch_is_padded_with_mask():
    fe = TaDiCodecFeatureExtractor()
    stereo = np.random.default_rng(0).standard_normal((2, 5000)).astype(np.float32) * 0.1
    mono = torch.randn(9000) * 0.1
    out = fe([stereo, mono], sampling_rate=24000)
    assert set(out) == {"input_values", "attention_mask"}
    assert out["input_values"].dtype == torch.float32 and out["attention_mask"].dtype == torch.int64
    assert out["input_values"].shape == (2, 11520) and out["attention_mask"].shape == (2, 11520)  # 3 · 3840
    torch.testing.assert_close(out["input_values"][0, :5000], torch.from_numpy(stereo.mean(0)))
    torch.testing.assert_close(out["input_values"][1, :9000], mono)
    assert out["attention_mask"].sum(1).tolist() == [5000, 9000]
    assert out["attention_mask"][0, :5000].all() and not out["attention_mask"][0, 5000:].any()
    assert not out["input_values"][0, 5000:].any()
    # one (channels, samples) tensor is one recording; exact multiples are not padded further
    single = fe(torch.ones(2, 7680) * 0.25, sampling_rate=24000)
    assert single["input_values"].shape == (1, 7680) and bool((single["input_values"] == 0.25).all())
    # int16 PCM is scaled to [-1, 1)
    pcm = fe(np.full(100, -16384, dtype=np.int16), sampling_rate=24000)
    assert pcm["input_values"][0, 0].item() == -0.5 and pcm["input_values"].shape == (1, 3840)


def test_padding_off_and_numpy_output():
    fe = TaDiCodecFeatureExtractor()
    out = fe([np.zeros(1000, np.float32), np.zeros(1000, np.float32)], sampling_rate=24000, padding=False,
             return_tensors="np")
    assert out["input_values"].shape == (2, 1000) and out["attention_mask"].dtype == np.int64
    with pytest.raises(ValueError, match="different lengths"):
        fe([np.zeros(1000), np.zeros(2000)], sampling_rate=24000, padding=False)


@pytest.mark.parametrize(
    "bad, kwargs, message",
    [
        ("speech.wav", {"sampling_rate": 24000}, r"\(channels, samples\)"),
        (None, {"sampling_rate": 24000}, r"\(channels, samples\)"),
        (np.zeros((2, 3, 4800), np.float32), {"sampling_rate": 24000}, r"\(channels, samples\)"),
        (np.array([0.0, np.nan, 0.1]), {"sampling_rate": 24000}, "NaN"),
        (np.array([0.0, np.inf, 0.1]), {"sampling_rate": 24000}, "NaN or inf"),
        (np.zeros(4800, np.float32), {}, r"sampling_rate=.*24000 Hz"),
        (np.zeros(0, np.float32), {"sampling_rate": 24000}, "empty"),
        ([], {"sampling_rate": 24000}, "empty"),
        (np.zeros(4800, np.int64), {"sampling_rate": 24000}, "int16"),
        (np.zeros((4800, 2), np.float32), {"sampling_rate": 24000}, "transpose"),
        (["a", "b"], {"sampling_rate": 24000}, "str"),
        (np.zeros(4800, np.float32), {"sampling_rate": -1}, "sampling_rate"),
    ],
)
def test_feature_extractor_rejects_bad_input(bad, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TaDiCodecFeatureExtractor()(bad, **kwargs)


def test_feature_extractor_rejects_images():
    from PIL import Image

    with pytest.raises(ValueError, match="Image"):
        TaDiCodecFeatureExtractor()(Image.new("RGB", (8, 8)), sampling_rate=24000)


def test_feature_extractor_save_load(tmp_path):
    fe = TaDiCodecFeatureExtractor(pad_to_multiple_of=960)
    fe.save_pretrained(tmp_path)
    loaded = TaDiCodecFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == fe.to_dict() and loaded.pad_to_multiple_of == 960 and loaded.sampling_rate == 24000
    x = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    a, b = fe(x, sampling_rate=22050), loaded(x, sampling_rate=22050)
    assert torch.equal(a["input_values"], b["input_values"]) and torch.equal(a["attention_mask"], b["attention_mask"])
    assert a["input_values"].shape[1] % 960 == 0


# ---------------------------------------------------------------------------------- text tokenizer and processor
def test_text_tokenizer():
    tok = build_text_tokenizer(["hello world", "the quick brown fox"], vocab_size=64)
    assert len(tok) <= 64 and tok.pad_token_id == 0 and tok.unk_token_id == 1
    ids = tok("Hello World", add_special_tokens=False)["input_ids"]
    assert ids == tok("hello world", add_special_tokens=False)["input_ids"] and 1 not in ids
    assert tok.decode(ids) == "hello world"
    assert len(build_text_tokenizer(["abcdefghijklmnopqrstuvwxyz"], vocab_size=10)) == 10
    with pytest.raises(ValueError):
        build_text_tokenizer("hello", vocab_size=64)


def _processor():
    tok = build_text_tokenizer(["hello world", "the quick brown fox"], vocab_size=64)
    return TaDiCodecProcessor(TaDiCodecFeatureExtractor(), tok)


def test_processor_outputs():
    processor = _processor()
    audio = [np.zeros(5000, np.float32), np.zeros((2, 8000), np.float32)]
    out = processor(audio=audio, text=["hello world", "the fox"], sampling_rate=24000)
    assert set(out) == {"input_values", "attention_mask", "text_ids", "text_attention_mask"}
    assert {len(v) for v in out.values()} == {2}
    assert out["text_ids"].shape == out["text_attention_mask"].shape and out["text_ids"].dtype == torch.int64
    lengths = out["text_attention_mask"].sum(1)
    assert out["text_ids"][lengths.argmin(), lengths.min():].eq(0).all()  # right-padded with id 0
    assert set(processor(text="hello")) == {"text_ids", "text_attention_mask"}
    assert set(processor(audio=audio[0], sampling_rate=24000)) == {"input_values", "attention_mask"}
    with pytest.raises(ValueError, match="one text per audio"):
        processor(audio=audio, text="hello", sampling_rate=24000)
    with pytest.raises(ValueError, match="audio"):
        processor()


def test_processor_save_load(tmp_path):
    processor = _processor()
    processor.save_pretrained(tmp_path)
    loaded = TaDiCodecProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.feature_extractor, TaDiCodecFeatureExtractor)
    audio = [np.random.default_rng(2).standard_normal(7000).astype(np.float32) * 0.1, np.zeros(100, np.float32)]
    text = ["the quick brown fox", "hello"]
    a = processor(audio=audio, text=text, sampling_rate=16000)
    b = loaded(audio=audio, text=text, sampling_rate=16000)
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
