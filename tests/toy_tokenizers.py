"""Small, exact toy tokenizers of the speech, motion and CAD contracts, to exercise the evaluation harness before
the real models of those modalities land. Each is a real (if simple) codec, so the metrics have meaning."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BatchFeature, SequenceFeatureExtractor

from unitok import UnitokPreTrainedModel
from unitok.configuration_base import UnitokConfig
from unitok.outputs import TokenizerDecoderOutput, TokenizerEncoderOutput


class ToyMuLawConfig(UnitokConfig):
    model_type = "unitok_toy_mulaw"
    modality = "audio"
    sampling_rate: int = 16000
    bits: int = 8

    @property
    def codebook_size(self) -> int:
        return 2**self.bits


class ToyFeatureExtractor(SequenceFeatureExtractor):
    model_input_names = ["input_values", "attention_mask"]

    def __init__(self, sampling_rate=16000, **kwargs):
        super().__init__(feature_size=1, sampling_rate=sampling_rate, padding_value=0.0, **kwargs)

    def __call__(self, raw_speech, sampling_rate=None, return_tensors="pt", padding=True):
        if sampling_rate != self.sampling_rate:
            raise ValueError(f"expected {self.sampling_rate} Hz audio, got {sampling_rate}")
        length = max(len(x) for x in raw_speech)
        values = np.zeros((len(raw_speech), length), dtype=np.float32)
        mask = np.zeros((len(raw_speech), length), dtype=np.int64)
        for i, x in enumerate(raw_speech):
            values[i, : len(x)], mask[i, : len(x)] = x, 1
        return BatchFeature({"input_values": values, "attention_mask": mask}, tensor_type=return_tensors)


class ToyMuLawCodec(UnitokPreTrainedModel):
    """μ-law companding to 2^bits levels, one token per sample (G.711-style)."""

    config: ToyMuLawConfig
    modality = "audio"

    def __init__(self, config):
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.post_init()

    def build_preprocessor(self):
        return ToyFeatureExtractor(self.config.sampling_rate)

    def encode(self, input_values, attention_mask=None):
        mu = self.config.codebook_size - 1
        companded = torch.sign(input_values) * torch.log1p(mu * input_values.abs().clamp(max=1)) / math.log1p(mu)
        codes = ((companded + 1) / 2 * mu).round().long()
        lengths = attention_mask.sum(-1) if attention_mask is not None else None
        return TokenizerEncoderOutput(codes=codes, lengths=lengths)

    def decode(self, codes=None, latents=None, *, generator=None, num_inference_steps=None, text=None):
        mu = self.config.codebook_size - 1
        companded = codes.float() / mu * 2 - 1
        audio = torch.sign(companded) * ((1 + mu) ** companded.abs() - 1) / mu
        return TokenizerDecoderOutput(reconstruction=audio * self.scale)


class ToyMotionConfig(UnitokConfig):
    model_type = "unitok_toy_motion"
    modality = "motion"
    grid: int = 8
    levels: int = 17  # odd: a zero difference is a code
    diff_range: float = 0.25  # pooled differences are quantized over [-diff_range, diff_range]

    @property
    def codebook_size(self) -> int:
        return self.levels


class ToyMotionTokenizer(UnitokPreTrainedModel):
    """Tokens = the frame difference average-pooled to grid×grid per channel, quantized uniformly in [-1, 1];
    decode adds the upsampled difference to the first frame."""

    config: ToyMotionConfig
    modality = "motion"

    def __init__(self, config):
        super().__init__(config)
        self.gain = torch.nn.Parameter(torch.ones(()))
        self.post_init()

    def build_preprocessor(self):
        from unitok.models.flextok import FlexTokImageProcessor

        return FlexTokImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})

    def encode(self, pixel_values):
        first, target = pixel_values[:, 0], pixel_values[:, 1]
        diff = F.adaptive_avg_pool2d(target - first, self.config.grid) / self.config.diff_range
        codes = ((diff.clamp(-1, 1) + 1) / 2 * (self.config.levels - 1)).round().long()
        return TokenizerEncoderOutput(codes=codes.flatten(1))

    def decode(self, codes=None, latents=None, *, first_frame=None, generator=None, num_inference_steps=None):
        g = self.config.grid
        diff = codes.view(len(codes), 3, g, g).float() / (self.config.levels - 1) * 2 - 1
        diff = F.interpolate(diff * self.config.diff_range, size=first_frame.shape[-2:], mode="bilinear",
                             align_corners=False)
        return TokenizerDecoderOutput(reconstruction=(first_frame + self.gain * diff).clamp(-1, 1))


class ToyCADConfig(UnitokConfig):
    model_type = "unitok_toy_cad"
    modality = "cad"
    drop_last_parameter_bits: int = 0  # coarsen parameters to create a measurable error

    @property
    def codebook_size(self) -> int:
        return 258  # 256 parameter values, "unused" (-1) and padding


class ToyCADTokenizer(UnitokPreTrainedModel):
    """One token per command field (value + 1, so unused = 0), padding = 257; optionally coarsens parameters."""

    config: ToyCADConfig
    modality = "cad"

    def __init__(self, config):
        super().__init__(config)
        self.dummy = torch.nn.Parameter(torch.zeros(()))
        self.post_init()

    def encode(self, commands, attention_mask=None):
        self.width = commands.shape[-1]
        values = commands.clone()
        if self.config.drop_last_parameter_bits:
            step = 2**self.config.drop_last_parameter_bits
            params = values[..., 1:]
            values[..., 1:] = torch.where(params >= 0, params // step * step, params)
        codes = values + 1
        if attention_mask is not None:
            codes = torch.where(attention_mask[..., None], codes, torch.full_like(codes, 257))
        mask = None if attention_mask is None else attention_mask[..., None].expand_as(codes).flatten(1)
        return TokenizerEncoderOutput(codes=codes.flatten(1), attention_mask=mask)

    def decode(self, codes=None, latents=None, *, generator=None, num_inference_steps=None):
        commands = codes.view(len(codes), -1, self.width) - 1
        valid = (codes.view(len(codes), -1, self.width) != 257).all(-1)
        return TokenizerDecoderOutput(reconstruction=commands, lengths=valid.sum(-1))
