"""Image helpers shared by the sources: the ImageData record and resizing to uint8 squares."""
import dataclasses
from typing import Optional

import tensorflow as tf

DEFAULT_SIZE = 224  # for sources whose images have no fixed size


@dataclasses.dataclass
class ImageData:
    """An unbatched split: ``dataset`` yields (uint8 image [S, S, 3], int32 label; −1 if none)."""

    dataset: tf.data.Dataset
    num_examples: int
    num_classes: Optional[int]
    image_size: int
    name: str
    split: str

    def first_images(self, n):
        """The first ``n`` images (fewer if the split is smaller) as float32 (n, S, S, 3)."""
        import numpy as np

        images = [x for x, _ in self.dataset.take(n).as_numpy_iterator()]
        if not images:
            return np.zeros((0, self.image_size, self.image_size, 3), "float32")
        return np.stack(images).astype("float32")


def to_rgb(image):
    """uint8 [H, W, C] with C in 1..4 (grey, grey+alpha, RGB, RGBA) → [H, W, 3]; alpha dropped."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    channels = image.shape[-1]
    if channels is None:
        return tf.cond(tf.shape(image)[-1] < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]),
                       lambda: image[..., :3])
    return tf.tile(image[..., :1], [1, 1, 3]) if channels < 3 else image[..., :3]


def to_square_uint8(image, size):
    """uint8 [S, S, 3]: grey tiled to RGB, shorter side resized to ``size`` (bilinear,
    antialiased, aspect kept), then centre-cropped. Images already S×S pass unchanged."""
    image = to_rgb(image)
    h, w = tf.shape(image)[0], tf.shape(image)[1]

    def resize():
        scale = size / tf.cast(tf.minimum(h, w), tf.float32)
        nh = tf.maximum(size, tf.cast(tf.round(tf.cast(h, tf.float32) * scale), tf.int32))
        nw = tf.maximum(size, tf.cast(tf.round(tf.cast(w, tf.float32) * scale), tf.int32))
        x = tf.image.resize(image, (nh, nw), method="bilinear", antialias=True)
        x = tf.image.resize_with_crop_or_pad(x, size, size)
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)

    same = tf.logical_and(tf.equal(h, size), tf.equal(w, size))
    out = tf.cond(same, lambda: tf.cast(image, tf.uint8), resize)
    return tf.ensure_shape(out, (size, size, 3))
