"""Frame files as 8-bit RGB: the conversion every reader of still images uses (training data, predict,
import, inspect), so a 16-bit frame is one picture everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage


def image_rgb(img: "PILImage.Image") -> "PILImage.Image":
    """`img` as 8-bit RGB. 16-bit greyscale (PNG's `I;16` modes, or `I` with values past 255) keeps its top
    8 bits: Pillow's own convert clips it, so every pixel above 255 of 65,535 would turn white."""
    from PIL import Image

    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img).astype(np.int64)
        if img.mode != "I" or values.max(initial=0) > 255:
            values = np.clip(values, 0, 65535) >> 8
        img = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")
