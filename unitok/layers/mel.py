"""Log-mel front end of TaDiCodec (and of the Amphion mel codecs it comes from).

Semantics, as the official `models/codec/melvqgan/melspec.py` (HeCheng0625/Diffusion-Speech-Tokenizer):

1. reflect-pad the waveform by `(n_fft - hop_length) // 2` samples on both sides;
2. `torch.stft(center=False)` with a periodic Hann window of `win_length` samples;
3. magnitude `sqrt(re² + im² + mag_eps)` (the epsilon sits *inside* the square root);
4. librosa's default mel filterbank (Slaney mel scale, Slaney area normalisation), here built with
   `torchaudio.functional.melscale_fbanks(..., norm="slaney", mel_scale="slaney")` (equal to
   `librosa.filters.mel` within ~1e-7);
5. natural log of `clamp(mel, min=log_clamp)`;
6. optionally `(logmel - mean) / sqrt(var)` (TaDiCodec: mean −4.92, var 8.14; the official pipeline applies this
   outside the mel module).

Framing: frame `i` covers the original samples `[i·hop − pad, i·hop − pad + n_fft)`, i.e. it is centred at
`i·hop + hop/2` (half a hop later than `center=True`). The number of frames is
`(samples + 2·pad − n_fft) // hop + 1`, which for TaDiCodec's settings (pad 720, n_fft 1920, hop 480) is exactly
`samples // 480`: a multiple of 480 samples gives `samples / 480` frames, and trailing samples that do not fill a
hop are dropped (3,840·N samples → 8·N frames → N TaDiCodec tokens). Reflect padding needs more samples than
`pad`, and one frame needs `n_fft − 2·pad` samples, so the shortest valid input is
`max(pad + 1, n_fft − 2·pad)` samples (721 for TaDiCodec).

The filterbank and the window are non-persistent float32 buffers, recomputed in place by `reset_buffers()` (the
base model calls it after meta-device loading), and kept in float32 when the module is cast to another dtype.
"""

import math

import torch
import torchaudio
from torch import nn


def _slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """librosa-default mel filterbank `(n_mels, n_fft // 2 + 1)` in float32, computed in float64.

    `melscale_fbanks` follows the default dtype; it is computed in float64 (and rounded once) so that building the
    module under a low-precision default dtype (as transformers does for `dtype=torch.bfloat16`) stays exact.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fbanks = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, float(f_min), float(f_max), n_mels, sample_rate, norm="slaney", mel_scale="slaney"
        )
    finally:
        torch.set_default_dtype(previous)
    return fbanks.T.contiguous().to(torch.float32)


class LogMelSpectrogram(nn.Module):
    r"""TaDiCodec's log-mel spectrogram: waveform `(batch, samples)` → log-mel `(batch, n_mels, frames)`.

    Args:
        sample_rate: sampling rate of the input waveform in Hz (24 000 for TaDiCodec).
        n_fft: FFT size (1920).
        win_length: Hann window length, `<= n_fft` (1920).
        hop_length: hop between frames in samples (480 → 50 frames/s at 24 kHz).
        n_mels: number of mel bins (128).
        f_min, f_max: filterbank frequency range in Hz (0, 12 000); `f_max=None` means `sample_rate / 2`.
        mag_eps: added to `re² + im²` before the square root (1e-9).
        log_clamp: lower clamp of the mel energies before the natural log (1e-5, i.e. a floor of −11.513).
        mean, var: both set → the output is `(logmel - mean) / sqrt(var)` (TaDiCodec: −4.92, 8.14); both None →
            raw log-mel. Setting only one of them is an error.

    Shapes:
        forward(waveform `(batch, samples)`, any float dtype) → float32 `(batch, n_mels, frames)` with
        `frames = self.num_frames(samples)` (= `samples // 480` for TaDiCodec's settings). The computation runs in
        float32 with autocast disabled, whatever the input dtype.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        n_fft: int = 1920,
        win_length: int = 1920,
        hop_length: int = 480,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = 12000.0,
        mag_eps: float = 1e-9,
        log_clamp: float = 1e-5,
        mean: float | None = None,
        var: float | None = None,
    ):
        super().__init__()
        f_max = sample_rate / 2 if f_max is None else f_max
        for name, value in (("sample_rate", sample_rate), ("n_fft", n_fft), ("win_length", win_length),
                            ("hop_length", hop_length), ("n_mels", n_mels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"LogMelSpectrogram: {name} must be a positive int, got {value!r}.")
        if win_length > n_fft:
            raise ValueError(f"LogMelSpectrogram: win_length ({win_length}) must be <= n_fft ({n_fft}).")
        if hop_length > n_fft:
            raise ValueError(f"LogMelSpectrogram: hop_length ({hop_length}) must be <= n_fft ({n_fft}).")
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(
                f"LogMelSpectrogram: need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}, "
                f"sample_rate={sample_rate}."
            )
        if mag_eps < 0 or log_clamp <= 0:
            raise ValueError(f"LogMelSpectrogram: need mag_eps >= 0 and log_clamp > 0, got {mag_eps}, {log_clamp}.")
        if (mean is None) != (var is None):
            raise ValueError("LogMelSpectrogram: set both `mean` and `var` (normalised output) or neither (raw log-mel).")
        if var is not None and not var > 0:
            raise ValueError(f"LogMelSpectrogram: var must be > 0, got {var}.")
        self.sample_rate, self.n_fft, self.win_length, self.hop_length = sample_rate, n_fft, win_length, hop_length
        self.n_mels, self.f_min, self.f_max = n_mels, float(f_min), float(f_max)
        self.mag_eps, self.log_clamp = float(mag_eps), float(log_clamp)
        self.mean = None if mean is None else float(mean)
        self.var = None if var is None else float(var)
        self.pad = (n_fft - hop_length) // 2
        self.register_buffer("mel_filters", torch.empty(n_mels, n_fft // 2 + 1, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.empty(win_length, dtype=torch.float32), persistent=False)
        self.reset_buffers()

    @property
    def min_samples(self) -> int:
        """Shortest accepted input: reflect padding needs more than `pad` samples, one frame `n_fft − 2·pad`."""
        return max(self.pad + 1, self.n_fft - 2 * self.pad)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` input samples (`num_samples // 480` for TaDiCodec's settings)."""
        return (num_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """Recompute the mel filterbank `(n_mels, n_fft//2 + 1)` and the Hann window in place (float32)."""
        if self.mel_filters.is_meta:
            return
        self.mel_filters.copy_(
            _slaney_mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max)
        )
        self.window.copy_(torch.hann_window(self.win_length, dtype=torch.float32))  # as the official (periodic)

    def _apply(self, fn, recurse=True):
        # `module.to(torch.bfloat16)` / `.half()` would round the filterbank: keep both buffers in float32.
        super()._apply(fn, recurse)
        if self.mel_filters.dtype != torch.float32 or self.window.dtype != torch.float32:
            self.mel_filters = torch.empty_like(self.mel_filters, dtype=torch.float32)
            self.window = torch.empty_like(self.window, dtype=torch.float32)
            self.reset_buffers()
        return self

    def _validate(self, waveform) -> None:
        expected = "a float tensor of shape (batch, samples)"
        if not isinstance(waveform, torch.Tensor):
            raise ValueError(f"LogMelSpectrogram expects {expected}, got {type(waveform).__name__}.")  # noqa: TRY004
        if waveform.ndim != 2:
            raise ValueError(
                f"LogMelSpectrogram expects {expected}, got shape {tuple(waveform.shape)} "
                "(mix channels down to mono and stack waveforms along the batch dimension)."
            )
        if not waveform.is_floating_point():
            raise ValueError(f"LogMelSpectrogram expects {expected}, got dtype {waveform.dtype}.")
        if waveform.shape[1] < self.min_samples:
            raise ValueError(
                f"LogMelSpectrogram expects {expected} with at least {self.min_samples} samples "
                f"({self.min_samples / self.sample_rate * 1000:.0f} ms at {self.sample_rate} Hz), "
                f"got {waveform.shape[1]}."
            )
        if waveform.numel() and not bool(torch.isfinite(waveform).all()):
            raise ValueError(f"LogMelSpectrogram expects {expected} with finite values; the input has NaN or inf.")

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform `(batch, samples)` → float32 log-mel `(batch, n_mels, num_frames(samples))`."""
        self._validate(waveform)
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            x = waveform.to(torch.float32)
            x = torch.nn.functional.pad(x.unsqueeze(1), (self.pad, self.pad), mode="reflect").squeeze(1)
            spec = torch.stft(
                x,
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window.to(device=x.device, dtype=torch.float32),
                center=False,
                normalized=False,
                onesided=True,
                return_complex=True,
            )  # (batch, n_fft//2 + 1, frames)
            magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + self.mag_eps)
            mel = torch.matmul(self.mel_filters.to(device=x.device, dtype=torch.float32), magnitude)
            logmel = torch.log(torch.clamp(mel, min=self.log_clamp))
            if self.mean is not None:
                logmel = (logmel - self.mean) / math.sqrt(self.var)
        return logmel

    def extra_repr(self) -> str:
        norm = "" if self.mean is None else f", mean={self.mean}, var={self.var}"
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, win_length={self.win_length}, "
                f"hop_length={self.hop_length}, n_mels={self.n_mels}, f_min={self.f_min}, f_max={self.f_max}{norm}")


__all__ = ["LogMelSpectrogram"]
