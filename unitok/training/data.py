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
        transcripts = [item.transcript for item in batch]
        if getattr(self.processor, "tokenizer", None) is not None:  # text-aware codecs train on the token ids
            features.update(self.processor(text=transcripts, return_tensors="pt"))
        else:
            features["text"] = transcripts
        return features

    def lengths(self) -> list[int]:
        """Samples per utterance at the processor's rate (for length-grouped dynamic batches)."""
        rate = self.processor.sampling_rate
        return [math.ceil(item.waveform.shape[-1] * rate / item.sample_rate) for item in self.items]


class DynamicBatches(Sampler):
    """Length-grouped batches bounded by a padded size (as the released TaDiCodec trainer batches by total frames):
    items sorted by length are packed while `longest · count <= max_units` and `count <= max_items`; the batches
    are fixed, their order is shuffled per (seed, epoch). Units are the caller's (e.g. mel frames)."""

    def __init__(self, lengths: list[int], max_units: int, max_items: int, seed: int):
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        self.batches, current = [], []
        for index in order:
            longest = max([lengths[i] for i in current] + [lengths[index]])
            if current and (longest * (len(current) + 1) > max_units or len(current) >= max_items):
                self.batches.append(current)
                current = []
            current.append(index)
        if current:
            self.batches.append(current)
        too_long = [b for b in self.batches if len(b) == 1 and lengths[b[0]] > max_units]
        if too_long:
            raise ValueError(f"{len(too_long)} items are longer than max_units={max_units} on their own.")
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter([self.batches[i] for i in torch.randperm(len(self.batches), generator=generator).tolist()])

    def __len__(self) -> int:
        return len(self.batches)


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


def build_loader(dataset, batch_size: int, seed: int, num_workers: int = 0, max_frames: int | None = None,
                 max_items: int = 40, hop_length: int | None = None) -> DataLoader:
    """Fixed-size shuffled batches, or (speech, `max_frames` set) length-grouped dynamic batches of at most
    `max_frames` padded frames of `hop_length` samples and `max_items` utterances."""
    collate = getattr(dataset, "collate", None)
    # The loader gets its own generator: creating an iterator draws a worker base seed from it, and drawing from
    # the global RNG instead would shift every later random number of a resumed run.
    generator = torch.Generator().manual_seed(seed)
    if max_frames is not None:
        if not hasattr(dataset, "lengths") or not hop_length:
            raise ValueError("Dynamic batching (data.max_frames_per_batch) needs a speech dataset and a model with a "
                             "hop_length.")
        frames = [math.ceil(n / hop_length) for n in dataset.lengths()]
        return DataLoader(dataset, batch_sampler=DynamicBatches(frames, max_frames, max_items, seed),
                          num_workers=num_workers, collate_fn=collate, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, sampler=EpochShuffle(len(dataset), seed), drop_last=True,
                      num_workers=num_workers, collate_fn=collate, generator=generator)


__all__ = ["EpochShuffle", "DynamicBatches", "ImageDataset", "SpeechDataset", "build_dataset", "build_loader"]
