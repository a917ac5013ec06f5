import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from unitok.data.images import bundled_images, fashion_mnist, image_folder, load_images, read_idx_images, skimage_images


def test_bundled_and_skimage_images_are_real_rgb_photos():
    items = bundled_images()
    assert len(items) == 12 and all(i.image.shape == (3, 256, 256) and i.image.dtype == torch.uint8 for i in items)
    assert len({i.image.float().mean().item() for i in items}) == 12  # twelve different pictures
    photos = skimage_images()
    assert len(photos) >= 15 and all(p.image.shape[0] == 3 for p in photos)
    assert len(load_images("bundled:3")) == 3 and len(load_images("skimage:2")) == 2


def test_image_folder_skips_unreadable_files_with_a_warning(tmp_path):
    Image.new("RGB", (10, 12), "red").save(tmp_path / "a.png")
    Image.new("L", (8, 8), 128).save(tmp_path / "b.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match="broken.png"):
        items = image_folder(tmp_path)
    assert [i.name for i in items] == ["a", "b"]
    assert items[0].image.shape == (3, 12, 10) and items[1].image.shape == (3, 8, 8)
    with pytest.raises(ValueError, match="not found"):
        image_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No readable images"):
        image_folder(empty)
    with pytest.raises(ValueError, match="Unknown image data"):
        load_images("no-such-source")


def write_idx(path, images):
    header = b"".join(int(v).to_bytes(4, "big") for v in (2051, len(images), 28, 28))
    with gzip.open(path, "wb") as handle:
        handle.write(header + images.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_on_idx_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    assert np.array_equal(read_idx_images(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    items = fashion_mnist("test", limit=3, root=tmp_path)
    assert len(items) == 3 and items[0].image.shape == (3, 28, 28)
    assert np.array_equal(items[1].image[0].numpy(), images[1])
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="idx"):
        read_idx_images(tmp_path / "bad-images-idx3-ubyte")
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("test", root=tmp_path / "nowhere")
