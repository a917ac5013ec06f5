"""Real image sources, all offline.

- `bundled_images()`: the 12 CC0 / public-domain photos committed in `unitok/assets/images` (see LICENSES.md).
- `skimage_images()`: every natural photo scikit-image bundles (extra `data-image`; licences in its docstrings).
- `fashion_mnist(split)`: Debian's `dataset-fashion-mnist` package (`apt-get install dataset-fashion-mnist`,
  MIT, Zalando), read from its idx files.
- `image_folder(path)`: any folder of images a user points at (unreadable files are skipped with a warning).
- `load_images(spec)`: the `--data` syntax of `unitok eval`: "bundled", "skimage", "fashion-mnist[:train|test]" or
  a folder path, optionally with ":N" to keep the first N items (e.g. "fashion-mnist:test:500").
"""

import gzip
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..evaluation.extras import require
from .items import ImageItem

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "images"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"}
FASHION_MNIST_DIRS = [Path("/usr/share/dataset-fashion-mnist"), Path("/usr/share/datasets/fashion-mnist"),
                      Path("/usr/share/fashion-mnist")]
SKIMAGE_PHOTOS = ["astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
                  "immunohistochemistry", "moon", "retina", "rocket", "text", "clock", "horse", "page"]


def _to_item(name: str, image: Image.Image, source: str) -> ImageItem:
    array = np.asarray(image.convert("RGB"))
    return ImageItem(name=name, image=torch.from_numpy(array.copy()).permute(2, 0, 1), source=source)


def read_image(path: str | Path) -> ImageItem:
    """One image file as an `ImageItem`; raises ValueError naming the file if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return _to_item(path.stem, image, str(path))
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"Cannot read {path} as an image ({error}).") from error


def image_folder(path: str | Path, recursive: bool = True) -> list[ImageItem]:
    """Every readable image under `path` (sorted); unreadable files are skipped with a warning."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"Image folder not found: {root}")
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    items = []
    for file in files:
        try:
            items.append(read_image(file))
        except ValueError as error:
            warnings.warn(f"skipping {file}: {error}", stacklevel=2)
    if not items:
        raise ValueError(f"No readable images in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
    return items


def bundled_images() -> list[ImageItem]:
    """The 12 sample photos that ship with unitok (256×256)."""
    return image_folder(ASSETS, recursive=False)


def skimage_images() -> list[ImageItem]:
    """scikit-image's bundled photos that load offline (grey ones replicated to RGB), at their native sizes."""
    data = require("skimage.data", "data-image", "scikit-image")
    items = []
    for name in SKIMAGE_PHOTOS:
        array = np.asarray(getattr(data, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        items.append(_to_item(name, Image.fromarray(array[..., :3].astype(np.uint8)), f"skimage.data.{name}"))
    return items


def read_idx_images(path: str | Path) -> np.ndarray:
    """Images from an MNIST-format idx file (optionally gzipped): `(n, rows, cols)` uint8."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic, count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051 or len(data) != 16 + count * rows * cols:
        raise ValueError(f"{path} is not an idx image file (magic {magic}, {len(data)} bytes).")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def fashion_mnist(split: str = "test", limit: int | None = None, root: str | Path | None = None) -> list[ImageItem]:
    """Fashion-MNIST (28×28 grey, replicated to RGB) from Debian's dataset-fashion-mnist package."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}.")
    candidates = [Path(root)] if root else FASHION_MNIST_DIRS
    for directory in candidates:
        for name in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"):
            matches = sorted(directory.rglob(name)) if directory.is_dir() else []
            if matches:
                images = read_idx_images(matches[0])[:limit]
                return [_to_item(f"fashion-mnist-{split}-{i:05d}", Image.fromarray(a), str(matches[0]))
                        for i, a in enumerate(images)]
    raise ValueError("Fashion-MNIST not found: install Debian's package (`apt-get install dataset-fashion-mnist`) "
                     "or pass the folder holding its idx files.")


def load_images(spec: str) -> list[ImageItem]:
    """Resolve an `unitok eval --data` image spec (see the module docstring)."""
    name, _, rest = spec.partition(":")
    limit = None
    if name == "fashion-mnist":
        split, _, count = rest.partition(":")
        if split.isdigit():
            split, count = "test", split
        return fashion_mnist(split or "test", int(count) if count else None)
    if rest.isdigit():
        limit = int(rest)
    else:
        name = spec
    if name == "bundled":
        items = bundled_images()
    elif name == "skimage":
        items = skimage_images()
    elif Path(name).is_dir():
        items = image_folder(name)
    elif Path(name).is_file():
        items = [read_image(name)]
    else:
        raise ValueError(f"Unknown image data {spec!r}: use 'bundled', 'skimage', 'fashion-mnist[:split][:N]', "
                         "a folder or an image file.")
    return items[:limit]


__all__ = ["bundled_images", "skimage_images", "fashion_mnist", "image_folder", "read_image", "read_idx_images",
           "load_images"]
