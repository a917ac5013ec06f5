"""FlexTok's image preprocessing: short side to 256 (bilinear, antialiased), centre-crop 256², scale to [-1, 1].

`postprocess` is the inverse for model outputs: [-1, 1] tensors back to uint8 images.
This file imports only transformers/torch so transformers' own remote-code saving can carry it.
"""

import numpy as np
import torch
from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_utils import PILImageResampling


class FlexTokImageProcessor(TorchvisionBackend):
    r"""Constructs a FlexTok image processor (`pixel_values` of shape `(batch, 3, 256, 256)` in [-1, 1])."""

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR  # torchvision Resize(256) default, as the official demo
    size = {"shortest_edge": 256}
    crop_size = {"height": 256, "width": 256}
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    def postprocess(self, pixel_values: torch.Tensor, output_type: str = "pil"):
        """Map model-space images `(batch, 3, H, W)` in [-1, 1] back to `"pil"` images, `"np"` uint8 HWC arrays
        or a `"pt"` uint8 tensor `(batch, 3, H, W)`."""
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            got = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise ValueError(f"`pixel_values` must be a tensor of shape (batch, 3, height, width), got {got}.")
        mean = torch.tensor(self.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std, dtype=torch.float32).view(1, 3, 1, 1)
        images = (pixel_values.detach().float().cpu() * std + mean).clamp(0, 1)
        images = (images * 255).round().to(torch.uint8)
        if output_type == "pt":
            return images
        arrays = [np.ascontiguousarray(image.permute(1, 2, 0).numpy()) for image in images]
        if output_type == "np":
            return arrays
        if output_type == "pil":
            from PIL import Image

            return [Image.fromarray(array) for array in arrays]
        raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}.")


__all__ = ["FlexTokImageProcessor"]
