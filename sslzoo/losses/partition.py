"""Partitions of a batch for coding rate reduction: one-hot memberships and k-means pseudo-labels.

A partition of m samples into k classes is a membership matrix Π of shape (m, k) whose rows
sum to 1 (MCR², Yu et al. 2020, §2); hard labels are its one-hot special case.
"""
import numpy as np
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.losses.common import l2_normalize
from sslzoo.utils.config import is_int

METRICS = ("euclidean", "cosine")


def one_hot_membership(labels, k):
    """(m, k) float32 membership Π with Π[i, labels[i]] = 1 (labels outside 0..k-1 give zero rows)."""
    if not is_int(k, 1):
        raise ConfigError(f"the number of classes k must be an int >= 1, got {k!r}")
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) != 1:
        raise ConfigError(f"labels must be an integer vector (m,), got shape {tuple(labels.shape)}")
    return ops.cast(ops.one_hot(ops.cast(labels, "int32"), int(k)), "float32")


def kmeans_labels(Z, k, iters=10, seed=0, metric="euclidean"):
    """Integer pseudo-labels (m,) int32 from Lloyd's k-means on the rows of Z (m, d).

    Init: the centroids start at k rows drawn without replacement by
    ``numpy.random.default_rng(seed)`` (deterministic for a given seed and m; needs a static m).
    Each of the ``iters`` steps assigns every row to its nearest centroid and moves each
    centroid to the mean of its rows; a centroid that loses all its rows stays where it was.
    ``metric="cosine"`` is spherical k-means: rows and centroids are L2-normalised and rows go
    to the centroid of largest cosine similarity. Computed in float32 with keras.ops.
    """
    if metric not in METRICS:
        raise unknown_choice("k-means metric", metric, METRICS)
    Z = ops.cast(ops.convert_to_tensor(Z), "float32")
    if len(Z.shape) != 2:
        raise ConfigError(f"Z must be an (m, d) array, got shape {tuple(Z.shape)}")
    m = Z.shape[0]
    if m is None:
        raise ConfigError("kmeans_labels needs a static batch size m; build the input with a fixed m")
    if not is_int(k, 1, m):
        raise ConfigError(f"k must be an int with 1 <= k <= m={m}, got {k!r}")
    if not is_int(iters, 1):
        raise ConfigError(f"iters must be an int >= 1, got {iters!r}")
    if metric == "cosine":
        Z = l2_normalize(Z)
    init = np.sort(np.random.default_rng(seed).choice(m, size=int(k), replace=False))
    centroids = ops.take(Z, ops.convert_to_tensor(init.astype("int32")), axis=0)
    labels = _assign(Z, centroids, metric)
    for _ in range(int(iters)):
        onehot = one_hot_membership(labels, int(k))                    # (m, k)
        counts = ops.sum(onehot, axis=0)                                # (k,)
        sums = ops.matmul(ops.transpose(onehot), Z)                     # (k, d)
        means = sums / ops.maximum(counts, 1.0)[:, None]
        centroids = ops.where(counts[:, None] > 0, means, centroids)
        if metric == "cosine":
            centroids = l2_normalize(centroids)
        labels = _assign(Z, centroids, metric)
    return labels


def _assign(Z, centroids, metric):
    """Index of the nearest centroid for every row of Z."""
    sim = ops.matmul(Z, ops.transpose(centroids))                       # (m, k)
    if metric == "cosine":
        return ops.cast(ops.argmax(sim, axis=1), "int32")
    # ||z - c||² = ||z||² - 2 z·c + ||c||²; ||z||² is the same for every centroid of a row.
    dist = ops.sum(ops.square(centroids), axis=1)[None, :] - 2.0 * sim
    return ops.cast(ops.argmin(dist, axis=1), "int32")
