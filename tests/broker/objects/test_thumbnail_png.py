"""The thumbnails' PNG encoders, decoded by an independent reader (Pillow): the pixels come back exactly,
through both row filters (Up for a repeated row, Sub otherwise)."""

import io

import numpy as np
from PIL import Image

from broker.objects.thumbnails import encode_png, encode_png_palette


def test_palette_png_decodes_to_its_pixels():
    rng = np.random.default_rng(5)
    index = rng.integers(0, 256, (21, 17), dtype=np.uint8)
    index = np.repeat(np.repeat(index, 3, axis=0), 3, axis=1)  # scaled up: rows repeat (Up), pixels too
    index[4] = rng.integers(0, 256, index.shape[1], dtype=np.uint8)  # a noisy row (Sub) after a repeat
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_png_palette(index, palette)))
    assert img.mode == "P" and img.size == (index.shape[1], index.shape[0])
    assert np.array_equal(np.asarray(img), index)
    assert np.array_equal(np.asarray(img.convert("RGB")), palette[index])


def test_rgb_png_decodes_to_its_pixels():
    rgb = np.random.default_rng(6).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_png(rgb)))
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), rgb)
