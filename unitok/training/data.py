"""Training data: an image dataset (any `unitok.data.images` source or folder) and an audio + transcript manifest
dataset, both deterministic for a (seed, epoch) so a resumed run sees exactly the batches an uninterrupted run
would. Accelerate shards the batches across processes (`accelerator.prepare(loader)`).
"""

import math

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.items import ImageItem, SpeechItem


class EpochShuffle(Sampler):
    """A permutation of `range(size)` drawn from `seed + epoch`; call `set_epoch` before each epoch."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def _item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + index)


class ImageDataset(Dataset):
    """Images through the model's processor, with optional random resized crop (scale 0.6–1, aspect 3/4–4/3) and
    horizontal flip drawn from a per-(seed, epoch, item) generator."""

    def __init__(self, items: list[ImageItem], processor, augment: bool = True, seed: int = 0):
        if not items:
            raise ValueError("The image dataset is empty.")
        self.items, self.processor, self.augment, self.seed, self.epoch = items, processor, augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _augment(self, image: Image.Image, generator: torch.Generator) -> Image.Image:
        width, height = image.size
        for _ in range(10):
            area = width * height * (0.6 + 0.4 * torch.rand((), generator=generator).item())
            log_ratio = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand((), generator=generator).item()
            w = int(round(math.sqrt(area * math.exp(log_ratio))))
            h = int(round(math.sqrt(area / math.exp(log_ratio))))
            if 0 < w <= width and 0 < h <= height:
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
                image = image.crop((left, top, left + w, top + h))
                break
        if torch.rand((), generator=generator).item() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return image

    def __getitem__(self, index: int) -> dict:
        image = Image.fromarray(self.items[index].image.permute(1, 2, 0).numpy())
        if self.augment:
            image = self._augment(image, _item_generator(self.seed, self.epoch, index))
        return {"pixel_values": self.processor(image, return_tensors="pt")["pixel_values"][0]}


class SpeechDataset(Dataset):
    """Utterances with transcripts; the collate function resamples to the processor's rate and pads."""

    def __init__(self, items: list[SpeechItem], processor, seed: int = 0):
        if not items:
            raise ValueError("The speech dataset is empty.")
        self.items, self.processor, self.seed, self.epoch = items, processor, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> SpeechItem:
        return self.items[index]

    def collate(self, batch: list[SpeechItem]) -> dict:
        import torchaudio

        rate = self.processor.sampling_rate
        waves = [torchaudio.functional.resample(item.waveform, item.sample_rate, rate).numpy().astype(np.float32)
                 for item in batch]
        features = dict(self.processor(waves, sampling_rate=rate, return_tensors="pt", padding=True))
        features["text"] = [item.transcript for item in batch]
        return features


def build_dataset(kind: str, source: str, processor, holdout: int, augment: bool, seed: int):
    """(train dataset, held-out items) for a data config."""
    if kind == "images":
        from ..data.images import load_images

        items = load_images(source)
        if len(items) <= holdout:
            raise ValueError(f"data.source {source!r} has {len(items)} images; need more than data.holdout={holdout}.")
        train, held = items[: len(items) - holdout], items[len(items) - holdout :]
        return ImageDataset(train, processor, augment, seed), held
    if kind == "speech":
        from ..evaluation.speech_eval import load_speech

        items = load_speech(source)
        if len(items) <= holdout:
            raise ValueError(f"data.source {source!r} has {len(items)} utterances; need more than data.holdout={holdout}.")
        return SpeechDataset(items[: len(items) - holdout], processor, seed), items[len(items) - holdout :]
    raise ValueError(f"Unknown data.kind {kind!r}.")


def build_loader(dataset, batch_size: int, seed: int, num_workers: int = 0) -> DataLoader:
    collate = getattr(dataset, "collate", None)
    # The loader gets its own generator: creating an iterator draws a worker base seed from it, and drawing from
    # the global RNG instead would shift every later random number of a resumed run.
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochShuffle(len(dataset), seed), drop_last=True,
                      num_workers=num_workers, collate_fn=collate, generator=torch.Generator().manual_seed(seed))


__all__ = ["EpochShuffle", "ImageDataset", "SpeechDataset", "build_dataset", "build_loader"]
