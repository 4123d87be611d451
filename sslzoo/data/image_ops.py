"""Stateless, batched image augmentations: each op is a pure function of (images, seed).

Images are float32 (N, S, S, 3) in [0, 255]; ``seed`` is a shape-(2,) integer tensor, as
``tf.random.stateless_*`` take it. The same images and seed always give the same output, in
tf.data or in a train step, so a run's views depend only on its seed and the step (see
``sslzoo.utils.seeds``), and a resumed run draws what the uninterrupted one drew.

Every random parameter is drawn per image, vectorised over the batch:

- ``resized_crop``: area a ~ U(scale), log aspect ~ U(log 3/4, log 4/3); height √(a / r),
  width √(a · r), each clipped to the image (torchvision's RandomResizedCrop retries instead);
  offset uniform; bilinear resize to ``size``.
- ``flip``: mirrored left-right with p = 0.5.
- ``color_jitter``: brightness + U(−b, b)·255, contrast ×U(1 − c, 1 + c) about each channel's
  mean, saturation ×U(1 − s, 1 + s), hue + U(−h, h) of the circle, in that order, each
  clipped to [0, 255].
- ``grayscale``: ITU-R 601 luma in all three channels.
- ``gaussian_blur``: a k × k Gaussian, σ ~ U(0.1, 2.0) pixels, reflected borders.
- ``solarize``: x ↦ 255 − x where x ≥ 128 (BYOL's threshold 0.5 of the range).

``random_apply(op, p)`` applies an op to each image with probability p.
"""
import math

import tensorflow as tf


def split_seed(seed, n):
    """``n`` independent seeds, shape (n, 2), from one."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n)


def _uniform(n, seed, low, high):
    return tf.random.stateless_uniform((n,), seed, low, high, dtype=tf.float32)


def resized_crop(x, seed, size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    n = tf.shape(x)[0]
    s = split_seed(seed, 4)
    area = _uniform(n, s[0], *scale)
    r = tf.exp(_uniform(n, s[1], math.log(ratio[0]), math.log(ratio[1])))
    h = tf.minimum(tf.sqrt(area / r), 1.0)
    w = tf.minimum(tf.sqrt(area * r), 1.0)
    y0 = _uniform(n, s[2], 0.0, 1.0) * (1.0 - h)
    x0 = _uniform(n, s[3], 0.0, 1.0) * (1.0 - w)
    boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(n), (size, size))


def flip(x, seed):
    mirror = _uniform(tf.shape(x)[0], seed, 0.0, 1.0) < 0.5
    return tf.where(mirror[:, None, None, None], tf.reverse(x, axis=[2]), x)


def color_jitter(x, seed, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1):
    n = tf.shape(x)[0]
    s = split_seed(seed, 4)
    per_image = (n, 1, 1, 1)
    x = x + tf.reshape(_uniform(n, s[0], -brightness, brightness) * 255.0, per_image)
    x = tf.clip_by_value(x, 0.0, 255.0)
    mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
    x = (x - mean) * tf.reshape(_uniform(n, s[1], 1 - contrast, 1 + contrast), per_image) + mean
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(x, 0.0, 255.0) / 255.0)
    sat = tf.reshape(_uniform(n, s[2], 1 - saturation, 1 + saturation), (n, 1, 1))
    shift = tf.reshape(_uniform(n, s[3], -hue, hue), (n, 1, 1))
    hsv = tf.stack([tf.math.floormod(hsv[..., 0] + shift, 1.0),
                    tf.clip_by_value(hsv[..., 1] * sat, 0.0, 1.0), hsv[..., 2]], axis=-1)
    return tf.clip_by_value(tf.image.hsv_to_rgb(hsv) * 255.0, 0.0, 255.0)


def grayscale(x, seed=None):
    return tf.tile(tf.image.rgb_to_grayscale(x), (1, 1, 1, 3))


def gaussian_blur(x, seed, kernel_size, sigma=(0.1, 2.0)):
    n, k = tf.shape(x)[0], int(kernel_size)
    sd = _uniform(n, seed, *sigma)
    t = tf.range(k, dtype=tf.float32) - (k - 1) / 2
    g = tf.exp(-(t[None, :] ** 2) / (2.0 * sd[:, None] ** 2))
    g = g / tf.reduce_sum(g, axis=1, keepdims=True)                        # (N, k)
    # Each image's kernel on its own channels: the batch becomes channels of one image.
    size, c = tf.shape(x)[1], x.shape[-1]
    flat = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (1, size, size, -1))  # (1, S, S, N·C)
    per_channel = tf.reshape(tf.repeat(g, c, axis=0), (-1, k))             # (N·C, k)
    pad = k // 2
    flat = tf.pad(flat, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    col = tf.transpose(per_channel)[:, None, :, None]                      # (k, 1, N·C, 1)
    row = tf.transpose(per_channel)[None, :, :, None]                      # (1, k, N·C, 1)
    flat = tf.nn.depthwise_conv2d(flat, col, (1, 1, 1, 1), "VALID")
    flat = tf.nn.depthwise_conv2d(flat, row, (1, 1, 1, 1), "VALID")
    return tf.transpose(tf.reshape(flat, (size, size, n, c)), (2, 0, 1, 3))


def solarize(x, seed=None, threshold=128.0):
    return tf.where(x >= threshold, 255.0 - x, x)


def random_apply(op, p, x, seed):
    """``op(x, seed)`` for each image with probability ``p``, else the image unchanged."""
    if p >= 1.0:
        return op(x, seed)
    s = split_seed(seed, 2)
    keep = _uniform(tf.shape(x)[0], s[0], 0.0, 1.0) < p
    return tf.where(keep[:, None, None, None], op(x, s[1]), x)
