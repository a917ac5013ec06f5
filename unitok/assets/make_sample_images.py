"""Regenerate the bundled 256×256 sample images from scikit-image's data (see images/LICENSES.md)."""

from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "camera",
         "coins", "brick", "grass", "gravel"]


def main(out_dir: Path = Path(__file__).parent / "images", size: int = 256) -> None:
    import skimage.data

    for name in NAMES:
        array = np.asarray(getattr(skimage.data, name)())
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        image = Image.fromarray(array[..., :3])
        scale = size / min(image.size)
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                             Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image.crop((left, top, left + size, top + size)).save(out_dir / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
