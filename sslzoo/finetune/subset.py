"""The class-balanced labelled subset of semi-supervised fine-tuning (``--label_fraction``)."""
import numpy as np
import tensorflow as tf
from absl import logging

from sslzoo.data.images import ImageData
from sslzoo.errors import DataError


def balanced_subset(labels, fraction, seed=0):
    """Sorted indices of a class-balanced subset: every class present keeps the same fraction
    of its images, ``max(1, round(fraction · n_class))`` (so a balanced split gives equal
    counts per class, and ``fraction=1`` keeps everything); which images is drawn with
    ``numpy.random.default_rng(seed)``, so a seed always gives the same subset."""
    labels = np.asarray(labels)
    classes = np.unique(labels[labels >= 0])
    if not len(classes):
        raise DataError("the train split has no labelled images; semi mode needs labels")
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        keep = max(1, int(round(fraction * len(members))))
        picked.append(rng.permutation(members)[:keep])
    return np.sort(np.concatenate(picked))


def _labels(data):
    return np.concatenate([y for y in data.dataset.map(lambda x, y: y).batch(4096)
                           .as_numpy_iterator()] or [np.zeros(0, np.int32)])


def labelled_subset(data, fraction, seed=0):
    """(the ImageData of `balanced_subset` of ``data``, its indices)."""
    labels = _labels(data)
    keep = balanced_subset(labels, fraction, seed)
    missing = sorted(set(range(data.num_classes)) - set(labels[keep].tolist()))
    if missing:
        logging.warning("classes %s have no image in %s, so the labelled subset lacks them",
                        missing, data.split)
    mask = np.zeros(len(labels), bool)
    mask[keep] = True
    mask = tf.constant(mask)
    ds = data.dataset.enumerate().filter(lambda i, xy: tf.gather(mask, i)).map(
        lambda i, xy: xy).apply(tf.data.experimental.assert_cardinality(len(keep)))
    return ImageData(ds, len(keep), data.num_classes, data.image_size, data.name,
                     f"{data.split} (label_fraction subset)"), keep
