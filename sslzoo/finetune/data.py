"""Labelled data for fine-tuning: loading with clear errors, and augmented training batches."""
import math

import tensorflow as tf

from sslzoo import data as sdata
from sslzoo.data.pipeline import _cacheable
from sslzoo.errors import DataError

PAD_FRACTION = 1 / 8  # the crop's padding: 4 px at 32 px, as in the usual CIFAR recipe


def load_labelled(cfg, split, image_size=None):
    """One split of ``cfg.dataset`` as ImageData, refusing a dataset without labels."""
    data = sdata.load(cfg.dataset, split=split, data_dir=cfg.data_dir or None,
                      image_size=image_size or None, download=cfg.download)
    if not data.num_classes:
        raise DataError(f"{cfg.dataset} ({split}) has no labels, and fine-tuning and k-NN "
                        "evaluation need them. Use a TFDS dataset with a 'label' class "
                        "feature (e.g. cifar10), or folder:PATH with one sub-folder per class.")
    if data.num_examples < 1:
        raise DataError(f"{cfg.dataset} split {split!r} is empty; pick a non-empty split")
    return data


def steps_per_epoch(data, batch_size):
    return math.ceil(data.num_examples / batch_size)


def augment_image(image, mode, seed=None):
    """Light augmentation of one uint8 image [S, S, 3] → float32 [0, 255]: ``crop`` pads by
    S/8 pixels (edge reflection) and crops S × S at random; ``crop_flip`` also mirrors it left
    to right with p = 0.5; ``none`` only casts. No colour changes: the backbone learned
    invariance to them in pretraining."""
    x = tf.cast(image, tf.float32)
    if mode in ("crop", "crop_flip"):
        size = x.shape[0]
        pad = max(1, int(round(size * PAD_FRACTION)))
        x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        x = tf.image.random_crop(x, (size, size, 3), seed=seed)
    if mode == "crop_flip":
        x = tf.image.random_flip_left_right(x, seed=None if seed is None else seed + 1)
    return x


def train_batches(data, batch_size, augment="crop_flip", seed=0):
    """Shuffled, `augment_image`-d (float32 images, labels) batches; the last batch may be
    smaller."""
    ds = data.dataset.cache() if _cacheable(data) else data.dataset
    ds = ds.shuffle(min(data.num_examples, 20000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (augment_image(x, augment, seed), y),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
