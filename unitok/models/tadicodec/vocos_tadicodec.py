"""Vocos mel vocoder as shipped with TaDiCodec (ConvNeXt backbone + ISTFT head).

TaDiCodec's decoder predicts a normalised 128-bin log-mel spectrogram at 50 frames/s (24 kHz, hop 480); this
vocoder turns it into a waveform. The released configuration is `input_channels=128, dim=1024,
intermediate_dim=4096, num_layers=30, n_fft=1920, hop_length=480, padding="same"`.

Module and parameter names follow the official Amphion implementation (`models/codec/amphion_codec/vocos.py`)
so that the released `vocoder/*.safetensors` loads with `strict=True` after no renaming at all:

    backbone.embed.{weight,bias}
    backbone.norm.{weight,bias}
    backbone.convnext.{i}.{dwconv,norm,pwconv1,pwconv2}.{weight,bias}, backbone.convnext.{i}.gamma
    backbone.final_layer_norm.{weight,bias}
    head.out.{weight,bias}
    head.istft.window          (persistent buffer: it is in the official state dict)

The optional AdaLayerNorm (bandwidth-conditioned) path of the original Vocos is not implemented: TaDiCodec does
not use it, and the plain LayerNorm path keeps the same parameter names.

This file only depends on torch so that it can be bundled into flat remote code.
"""

import torch
import torch.nn.functional as F
from torch import nn

_PADDINGS = ("same", "center")


def _hann_window(length: int, device=None, dtype=None) -> torch.Tensor:
    # Periodic Hann (torch's default), identical to the official `torch.hann_window(win_length)`.
    return torch.hann_window(length, periodic=True, device=device, dtype=dtype)


def _overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Overlap-add frames `(B, frame_length, T)` at `hop_length` offsets → `(B, (T-1)*hop + frame_length)`."""
    frame_length, num_frames = frames.shape[1], frames.shape[2]
    output_size = (num_frames - 1) * hop_length + frame_length
    # `fold` is col2im: it sums each column (one frame) into a 1 x output_size "image" at stride hop_length.
    return F.fold(
        frames, output_size=(1, output_size), kernel_size=(1, frame_length), stride=(1, hop_length)
    )[:, 0, 0, :]


class ISTFT(nn.Module):
    """Inverse STFT with "same" (CNN-style) or "center" padding, as in Vocos.

    `torch.istft` only supports `center=True`; with other padding its NOLA check fails at the (later trimmed)
    edges, so "same" padding is implemented by hand: inverse real FFT of every frame, synthesis window,
    overlap-add, division by the overlap-added squared window, and trimming `(win_length - hop_length) // 2`
    samples at both ends. This exactly inverts `torch.stft(reflect_pad(x, pad), center=False)` with the same
    Hann window, which is how TaDiCodec computes its mel spectrogram.

    Args:
        n_fft: Size of the Fourier transform.
        hop_length: Distance between neighbouring frames, in samples.
        win_length: Window length; defaults to `n_fft` and must equal it (the frame-wise inverse FFT yields
            `n_fft` samples, which the window multiplies element-wise).
        padding: "same" (output has `frames * hop_length` samples when `win_length - hop_length` is even) or
            "center" (falls back to `torch.istft(center=True)`, `(frames - 1) * hop_length` samples).
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None, padding: str = "same"):
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        if padding not in _PADDINGS:
            raise ValueError(f"Padding must be 'center' or 'same', got {padding!r}.")
        if n_fft < 2 or hop_length < 1:
            raise ValueError(f"Need n_fft >= 2 and hop_length >= 1, got n_fft={n_fft}, hop_length={hop_length}.")
        if win_length != n_fft:
            raise ValueError(f"win_length must equal n_fft ({n_fft}), got {win_length}.")
        if hop_length > win_length:
            # Gaps between frames would leave samples with a zero window envelope (division by zero).
            raise ValueError(f"hop_length ({hop_length}) must not exceed win_length ({win_length}).")
        self.n_fft, self.hop_length, self.win_length, self.padding = n_fft, hop_length, win_length, padding
        # Persistent: the official checkpoint carries `head.istft.window`, so strict loading needs the key.
        self.register_buffer("window", _hann_window(win_length))

    def reset_buffers(self) -> None:
        """Recompute the Hann window in place (after meta-device instantiation)."""
        with torch.no_grad():
            self.window.copy_(_hann_window(self.win_length, device=self.window.device, dtype=self.window.dtype))

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def output_length(self, num_frames: int) -> int:
        """Number of samples produced from `num_frames` STFT frames."""
        if self.padding == "center":
            return (num_frames - 1) * self.hop_length
        pad = (self.win_length - self.hop_length) // 2
        return (num_frames - 1) * self.hop_length + self.win_length - 2 * pad

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Inverse STFT of a complex spectrogram.

        Args:
            spec: Complex tensor `(batch, n_fft // 2 + 1, frames)`.

        Returns:
            Real waveform `(batch, samples)`, `samples = output_length(frames)`.
        """
        expected = f"(batch, {self.num_bins}, frames)"
        if not isinstance(spec, torch.Tensor):
            # ValueError, not TypeError: every unitok input check raises ValueError for bad inputs.
            raise ValueError(  # noqa: TRY004
                f"ISTFT expects a complex torch.Tensor of shape {expected}, got {type(spec).__name__}."
            )
        if not spec.is_complex():
            raise ValueError(f"ISTFT expects a complex spectrogram of shape {expected}, got dtype {spec.dtype}.")
        if spec.dim() != 3 or spec.shape[1] != self.num_bins:
            raise ValueError(f"ISTFT expects a spectrogram of shape {expected}, got {tuple(spec.shape)}.")
        if spec.shape[0] == 0 or spec.shape[2] == 0:
            raise ValueError(f"ISTFT got an empty spectrogram {tuple(spec.shape)}; expected {expected}.")
        window = self.window.to(device=spec.device, dtype=spec.real.dtype)

        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, window, center=True)

        pad = (self.win_length - self.hop_length) // 2
        num_frames = spec.shape[-1]
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * window[None, :, None]
        signal = _overlap_add(frames, self.hop_length)
        # The squared-window envelope is what overlap-add of (analysis window x synthesis window) sums to;
        # dividing by it makes STFT -> ISTFT the identity wherever the envelope is non-zero.
        envelope = _overlap_add(window.square()[None, :, None].expand(1, -1, num_frames), self.hop_length)[0]
        end = signal.shape[-1] - pad
        signal, envelope = signal[:, pad:end], envelope[pad:end]
        if not bool((envelope > 1e-11).all()):
            # Only the padded edge may be uncovered (window[0] == 0); anything else breaks NOLA.
            raise ValueError(
                f"The window envelope vanishes inside the output (n_fft={self.n_fft}, hop_length={self.hop_length}); "
                "the NOLA condition is not met."
            )
        return signal / envelope


class ISTFTHead(nn.Module):
    """Linear projection to log-magnitude and phase, then ISTFT.

    Args:
        dim: Hidden size of the backbone output.
        n_fft: FFT size (even); the projection has `n_fft + 2` outputs = `n_fft // 2 + 1` log-magnitudes
            followed by `n_fft // 2 + 1` phases.
        hop_length: Hop size in samples (one backbone frame = `hop_length` output samples with "same" padding).
        padding: "same" or "center", see `ISTFT`.
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        if n_fft % 2:
            # n_fft + 2 outputs split in two equal halves of n_fft // 2 + 1 bins only when n_fft is even.
            raise ValueError(f"ISTFTHead needs an even n_fft, got {n_fft}.")
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft=n_fft, hop_length=hop_length, win_length=n_fft, padding=padding)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Project backbone features to a complex spectrogram and invert it.

        Args:
            hidden: `(batch, frames, dim)`.

        Returns:
            Waveform `(batch, samples)` in float32 (complex math needs at least single precision).
        """
        # Complex tensors do not exist for bfloat16 and half-precision FFTs need power-of-two sizes (1920 is
        # not), so the spectral part runs in float32 whatever the backbone dtype.
        x = self.out(hidden).transpose(1, 2).float()  # (B, n_fft + 2, T)
        log_magnitude, phase = x.chunk(2, dim=1)  # first half log-magnitude, second half phase
        # exp can overflow for untrained/odd inputs; the official code caps magnitudes at 1e2.
        magnitude = torch.clip(torch.exp(log_magnitude), max=1e2)
        # Build the complex value from cos/sin directly (same as mag * exp(i*phase), without a wrap-around).
        spec = magnitude * (torch.cos(phase) + 1j * torch.sin(phase))
        return self.istft(spec)


class ConvNeXtBlock(nn.Module):
    """1D ConvNeXt block: depthwise conv → LayerNorm → Linear → GELU → Linear → layer scale → residual.

    Args:
        dim: Number of channels.
        intermediate_dim: Hidden size of the pointwise MLP.
        layer_scale_init_value: Initial value of the per-channel layer scale `gamma` (must be > 0; Vocos uses
            `1 / num_layers`).
    """

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float):
        super().__init__()
        if not layer_scale_init_value > 0:
            # The official block drops `gamma` for values <= 0, but the Vocos backbone never does so; every
            # released checkpoint has `gamma`, so a missing one would only break strict loading.
            raise ValueError(f"layer_scale_init_value must be > 0, got {layer_scale_init_value}.")
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)  # depthwise, same length
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        # Pointwise (1x1) convolutions written as Linear layers on channels-last data, as in ConvNeXt.
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x `(batch, dim, frames)`. Returns: `(batch, dim, frames)`."""
        residual = x
        x = self.dwconv(x).transpose(1, 2)  # (B, T, C): LayerNorm and Linear act on the last axis
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        x = (self.gamma * x).transpose(1, 2)
        return residual + x


class VocosBackbone(nn.Module):
    """Vocos ConvNeXt backbone (non-conditional LayerNorm path).

    Order of operations (official): embed conv → LayerNorm → `num_layers` ConvNeXt blocks → final LayerNorm.

    Args:
        input_channels: Number of input feature channels (mel bins).
        dim: Hidden size.
        intermediate_dim: MLP hidden size inside each ConvNeXt block.
        num_layers: Number of ConvNeXt blocks.
        layer_scale_init_value: Initial layer scale; None means `1 / num_layers` (the Vocos default).
    """

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int,
                 layer_scale_init_value: float | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        self.input_channels = input_channels
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        if layer_scale_init_value is None:
            layer_scale_init_value = 1.0 / num_layers
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(dim, intermediate_dim, layer_scale_init_value) for _ in range(num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.apply(self._init_weights)

    @staticmethod
    @torch.no_grad()
    def _init_weights(module: nn.Module) -> None:
        # Official Vocos init for the backbone's convs and linears (the head keeps PyTorch's default init).
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x `(batch, input_channels, frames)`. Returns: `(batch, frames, dim)`."""
        x = self.embed(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class VocosVocoder(nn.Module):
    """TaDiCodec's Vocos vocoder: normalised log-mel `(batch, 128, frames)` → waveform `(batch, frames * hop)`.

    Args:
        input_channels: Mel bins of the input (128 for TaDiCodec).
        dim: Backbone hidden size.
        intermediate_dim: ConvNeXt MLP hidden size.
        num_layers: Number of ConvNeXt blocks.
        n_fft: FFT size of the ISTFT head (window length equals n_fft).
        hop_length: Samples per input frame.
        padding: "same" (released; `frames * hop_length` samples) or "center" (`(frames - 1) * hop_length`).
        layer_scale_init_value: Initial ConvNeXt layer scale; None means `1 / num_layers`.
    """

    def __init__(self, input_channels: int = 128, dim: int = 1024, intermediate_dim: int = 4096,
                 num_layers: int = 30, n_fft: int = 1920, hop_length: int = 480, padding: str = "same",
                 layer_scale_init_value: float | None = None):
        super().__init__()
        self.input_channels, self.hop_length = input_channels, hop_length
        self.backbone = VocosBackbone(input_channels, dim, intermediate_dim, num_layers, layer_scale_init_value)
        self.head = ISTFTHead(dim, n_fft, hop_length, padding)

    def reset_buffers(self) -> None:
        """Recompute derived buffers (the ISTFT window) in place."""
        self.head.istft.reset_buffers()

    def output_length(self, num_frames: int) -> int:
        """Number of waveform samples produced from `num_frames` mel frames."""
        return self.head.istft.output_length(num_frames)

    def _check_mel(self, mel) -> None:
        expected = f"(batch, {self.input_channels}, frames)"
        if not isinstance(mel, torch.Tensor):
            # ValueError, not TypeError: every unitok input check raises ValueError for bad inputs.
            raise ValueError(  # noqa: TRY004
                f"`mel` must be a torch.Tensor of shape {expected}, got {type(mel).__name__}."
            )
        if mel.dim() != 3 or mel.shape[1] != self.input_channels:
            raise ValueError(f"`mel` must have shape {expected}, got {tuple(mel.shape)}.")
        if not mel.is_floating_point():
            raise ValueError(f"`mel` must be a floating-point tensor of shape {expected}, got dtype {mel.dtype}.")
        if mel.shape[0] == 0 or mel.shape[2] == 0:
            raise ValueError(f"`mel` is empty (shape {tuple(mel.shape)}); expected {expected} with batch, frames >= 1.")
        if not bool(torch.isfinite(mel).all()):
            raise ValueError(f"`mel` of shape {expected} contains NaN or infinite values.")

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Synthesise audio.

        Args:
            mel: Normalised log-mel spectrogram `(batch, input_channels, frames)` (TaDiCodec's
                `(log_mel + 4.92) / sqrt(8.14)`), floating point.

        Returns:
            Waveform `(batch, frames * hop_length)` for "same" padding, in `mel.dtype` (the ISTFT itself runs in
            float32). Unlike the official `Vocos.forward`, no singleton channel axis is added.
        """
        self._check_mel(mel)
        weight_dtype = self.backbone.embed.weight.dtype
        audio = self.head(self.backbone(mel.to(weight_dtype)))
        return audio.to(mel.dtype)


__all__ = ["ISTFT", "ConvNeXtBlock", "ISTFTHead", "VocosBackbone", "VocosVocoder"]
