"""The items every data source yields, one dataclass per modality."""

from dataclasses import dataclass, field

import torch


@dataclass
class ImageItem:
    """An RGB image as a uint8 tensor `(3, H, W)`."""

    name: str
    image: torch.Tensor
    source: str = ""


@dataclass
class SpeechItem:
    """Mono speech: float32 waveform `(samples,)` in [-1, 1] at `sample_rate` Hz, with its transcript."""

    name: str
    waveform: torch.Tensor
    sample_rate: int
    transcript: str
    speaker: str = ""
    source: str = ""


@dataclass
class FramePairItem:
    """Two RGB frames `(3, H, W)` uint8 of one clip, `delta` frames apart: the motion tokenizer encodes
    (first, target) and decodes the target given the first frame."""

    name: str
    first: torch.Tensor
    target: torch.Tensor
    delta: int
    source: str = ""


@dataclass
class CADItem:
    """A sketch-and-extrude program (DeepCAD-style command sequence) with its reference geometry.

    `commands` is a LongTensor `(num_commands, 1 + num_params)`: a command type id followed by quantized
    parameters (-1 where a parameter is unused); `points` is a `(num_points, 3)` float sample of the solid's
    surface used for Chamfer distance.
    """

    name: str
    commands: torch.Tensor
    points: torch.Tensor
    metadata: dict = field(default_factory=dict)


__all__ = ["ImageItem", "SpeechItem", "FramePairItem", "CADItem"]
