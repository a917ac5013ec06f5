"""TaDiCodec's waveform feature extractor: mono 24 kHz float32 waveforms, padded to whole tokens.

The log-mel front end runs inside the model (`unitok.layers.mel.LogMelSpectrogram`); this extractor only
validates, mixes down, resamples and pads. One TaDiCodec token covers 8 mel frames = 3,840 samples (160 ms), so
batches are right-padded with zeros to a multiple of 3,840 samples by default, with an `attention_mask` marking real
samples.

Accepted input (`raw_audio`), always with its `sampling_rate`:

* one waveform: a numpy array or torch tensor of shape `(samples,)` (mono) or `(channels, samples)` (averaged to
  mono), or a flat list of floats;
* a batch: a list/tuple of such waveforms (possibly of different lengths and channel counts).

A 2-D array is *one* multi-channel recording, never a batch (pass a list for a batch); a 2-D array with more channels
than samples is rejected as probably transposed `(samples, channels)`.

dtypes: floating point (float16/bfloat16/float32/float64) is used as is (expected range [-1, 1]); int16 is treated
as 16-bit PCM and scaled by 1/32768. Other integer types (int8/uint8/int32/int64), bool and complex data are
rejected, because their full scale is ambiguous: convert them to float in [-1, 1] first.

Resampling uses `torchaudio.functional.resample` (windowed sinc, its defaults). The official TaDiCodec pipeline
loads files with `librosa.load(sr=24000)` (soxr), so resampled inputs differ from it by the resampler's filter.

This file imports only transformers/torch/torchaudio/numpy so that it can be bundled as flat remote code.
"""

from typing import ClassVar

import numpy as np
import torch
import torchaudio
from transformers import BatchFeature, SequenceFeatureExtractor

_EXPECTED = (
    "a float waveform of shape (samples,) or (channels, samples) as a numpy array or torch tensor "
    "(or a list of such waveforms), together with its sampling_rate"
)


class TaDiCodecFeatureExtractor(SequenceFeatureExtractor):
    r"""Constructs a TaDiCodec feature extractor: waveforms → `input_values` `(batch, samples)` float32 at 24 kHz and
    `attention_mask` `(batch, samples)` int64 (1 for real samples, 0 for padding).

    Args:
        feature_size: must be 1 (mono).
        sampling_rate: the model's rate (24 000 Hz); inputs at other rates are resampled.
        padding_value: value used for padding (0.0).
        pad_to_multiple_of: padded length is rounded up to a multiple of this (3,840 samples = one token); None or 1
            disables the rounding.
    """

    model_input_names: ClassVar[list[str]] = ["input_values", "attention_mask"]

    def __init__(self, feature_size: int = 1, sampling_rate: int = 24000, padding_value: float = 0.0,
                 pad_to_multiple_of: int | None = 3840, **kwargs):
        if feature_size != 1:
            raise ValueError(f"TaDiCodecFeatureExtractor works on mono audio: feature_size must be 1, got {feature_size}.")
        if not isinstance(sampling_rate, int) or isinstance(sampling_rate, bool) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive int, got {sampling_rate!r}.")
        if pad_to_multiple_of is not None and (
            not isinstance(pad_to_multiple_of, int) or isinstance(pad_to_multiple_of, bool) or pad_to_multiple_of <= 0
        ):
            raise ValueError(f"pad_to_multiple_of must be a positive int or None, got {pad_to_multiple_of!r}.")
        kwargs.setdefault("return_attention_mask", True)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.pad_to_multiple_of = pad_to_multiple_of

    # ------------------------------------------------------------------ validation / conversion
    def _check_rate(self, sampling_rate) -> int:
        if sampling_rate is None:
            raise ValueError(
                f"{type(self).__name__} needs the sampling rate of `raw_audio`: pass `sampling_rate=...` (TaDiCodec "
                f"works at {self.sampling_rate} Hz; audio at other rates is resampled to it)."
            )
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, float, np.integer, np.floating)):
            raise ValueError(f"sampling_rate must be a positive number of Hz, got {sampling_rate!r}.")  # noqa: TRY004
        if not np.isfinite(sampling_rate) or sampling_rate <= 0 or float(sampling_rate) != int(sampling_rate):
            raise ValueError(f"sampling_rate must be a positive whole number of Hz, got {sampling_rate!r}.")
        return int(sampling_rate)

    @staticmethod
    def _is_waveform_like(x) -> bool:
        return isinstance(x, (np.ndarray, torch.Tensor, list, tuple))

    def _split_batch(self, raw_audio) -> list:
        """The list of waveforms in `raw_audio` (one waveform → a list of one)."""
        if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
            return [raw_audio]
        if isinstance(raw_audio, (list, tuple)):
            if len(raw_audio) == 0:
                raise ValueError(f"Got an empty list of audio; expected {_EXPECTED}.")
            if all(self._is_waveform_like(x) for x in raw_audio):
                return list(raw_audio)  # a batch
            if all(isinstance(x, (float, int, np.number)) and not isinstance(x, bool) for x in raw_audio):
                return [raw_audio]  # one waveform as a flat list of numbers
            kinds = sorted({type(x).__name__ for x in raw_audio})
            raise ValueError(f"Expected {_EXPECTED}; got a list containing {', '.join(kinds)}.")
        raise ValueError(f"Expected {_EXPECTED}; got {type(raw_audio).__name__}.")

    def _to_mono_float32(self, waveform, index: int) -> torch.Tensor:
        """One waveform → a float32 mono tensor `(samples,)` on the CPU."""
        where = f"audio item {index}"
        if isinstance(waveform, (list, tuple)):
            if not all(isinstance(x, (float, int, np.number)) and not isinstance(x, bool) for x in waveform):
                if all(isinstance(x, (list, tuple)) for x in waveform):  # nested lists: (channels, samples)
                    try:
                        waveform = np.asarray(waveform)
                    except ValueError as error:
                        raise ValueError(f"{where}: ragged nested list; expected {_EXPECTED}.") from error
                else:
                    raise ValueError(f"{where}: expected {_EXPECTED}; got a list of {type(waveform[0]).__name__}.")
            else:
                waveform = np.asarray(waveform)
        if isinstance(waveform, torch.Tensor):
            tensor = waveform.detach()
            if tensor.is_complex() or tensor.dtype == torch.bool:
                raise ValueError(f"{where}: dtype {tensor.dtype} is not audio; expected {_EXPECTED}.")
            if tensor.is_floating_point():
                tensor = tensor.to(device="cpu", dtype=torch.float32)
            elif tensor.dtype == torch.int16:
                tensor = tensor.to(device="cpu", dtype=torch.float32) / 32768.0
            else:
                raise ValueError(
                    f"{where}: integer dtype {tensor.dtype} has an ambiguous full scale; convert it to float in "
                    f"[-1, 1] (int16 PCM is accepted as is). Expected {_EXPECTED}."
                )
        elif isinstance(waveform, np.ndarray):
            if waveform.dtype == np.int16:
                tensor = torch.from_numpy(waveform.astype(np.float32) / 32768.0)
            elif np.issubdtype(waveform.dtype, np.floating):
                tensor = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
            elif np.issubdtype(waveform.dtype, np.integer):
                raise ValueError(
                    f"{where}: integer dtype {waveform.dtype} has an ambiguous full scale; convert it to float in "
                    f"[-1, 1] (int16 PCM is accepted as is). Expected {_EXPECTED}."
                )
            else:
                raise ValueError(f"{where}: dtype {waveform.dtype} is not audio; expected {_EXPECTED}.")
        else:
            raise ValueError(f"{where}: expected {_EXPECTED}; got {type(waveform).__name__}.")  # noqa: TRY004

        if tensor.ndim == 2:
            channels, samples = tensor.shape
            if channels == 0:
                raise ValueError(f"{where} has no channels (shape {tuple(tensor.shape)}); expected {_EXPECTED}.")
            if channels > samples:
                raise ValueError(
                    f"{where} has shape {tuple(tensor.shape)}: more channels than samples, probably (samples, channels)."
                    f" Expected (channels, samples); transpose it (a batch must be passed as a list of waveforms)."
                )
            tensor = tensor.mean(dim=0)
        elif tensor.ndim != 1:
            raise ValueError(f"{where} has shape {tuple(tensor.shape)}; expected {_EXPECTED}.")
        if tensor.numel() == 0:
            raise ValueError(f"{where} is empty (0 samples); expected {_EXPECTED}.")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{where} contains NaN or inf values; expected a finite waveform.")
        return tensor

    # ------------------------------------------------------------------ main entry point
    def __call__(self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = "pt",
                 padding: bool | str = True) -> BatchFeature:
        """Validate, mix down to mono, resample to 24 kHz and right-pad a waveform or a list of waveforms.

        Args:
            raw_audio: one waveform `(samples,)` / `(channels, samples)` (numpy array, torch tensor or flat list of
                floats) or a list of them. See the module docstring for the accepted dtypes.
            sampling_rate: the rate of `raw_audio` in Hz (required; one rate for the whole batch).
            return_tensors: "pt" (default), "np" or None (numpy arrays; lists of 1-D arrays when not padded).
            padding: True / "longest" pads to the longest item, rounded up to a multiple of `pad_to_multiple_of`;
                False / "do_not_pad" keeps the lengths (items must then have equal lengths to return tensors).

        Returns:
            BatchFeature with `input_values` `(batch, samples)` float32 and `attention_mask` `(batch, samples)` int64.
        """
        rate = self._check_rate(sampling_rate)
        if padding in (True, "longest"):
            pad = True
        elif padding in (False, "do_not_pad"):
            pad = False
        else:
            raise ValueError(f"padding must be True/'longest' or False/'do_not_pad', got {padding!r}.")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")

        waveforms = [self._to_mono_float32(w, i) for i, w in enumerate(self._split_batch(raw_audio))]
        if rate != self.sampling_rate:
            waveforms = [torchaudio.functional.resample(w, rate, self.sampling_rate) for w in waveforms]
            for i, w in enumerate(waveforms):
                if w.numel() == 0:
                    raise ValueError(f"audio item {i} is too short to resample from {rate} to {self.sampling_rate} Hz.")
        lengths = [w.numel() for w in waveforms]

        if not pad:
            if len(set(lengths)) > 1 and return_tensors is not None:
                raise ValueError(
                    f"padding=False with items of different lengths {lengths} cannot be returned as tensors; "
                    "use padding=True or return_tensors=None."
                )
            values = [w.numpy() for w in waveforms]
            masks = [np.ones(n, dtype=np.int64) for n in lengths]
            if return_tensors is not None:
                values, masks = np.stack(values), np.stack(masks)
        else:
            target = max(lengths)
            multiple = self.pad_to_multiple_of or 1
            target = -(-target // multiple) * multiple
            values = np.full((len(waveforms), target), self.padding_value, dtype=np.float32)
            masks = np.zeros((len(waveforms), target), dtype=np.int64)
            for i, w in enumerate(waveforms):
                values[i, : lengths[i]] = w.numpy()
                masks[i, : lengths[i]] = 1
        return BatchFeature({"input_values": values, "attention_mask": masks}, tensor_type=return_tensors)


__all__ = ["TaDiCodecFeatureExtractor"]
