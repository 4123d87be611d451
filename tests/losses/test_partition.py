"""Tests of one-hot memberships and k-means pseudo-labels."""
import numpy as np
import pytest
from keras import ops
from keras.backend import standardize_dtype

from sslzoo.losses.partition import kmeans_labels, one_hot_membership
from sslzoo.errors import ConfigError


def same_partition(a, b):
    """True when two label vectors induce the same partition (up to renaming)."""
    a, b = np.asarray(a), np.asarray(b)
    return all(len(set(b[a == c])) == 1 for c in set(a)) and len(set(a)) == len(set(b))


def test_one_hot_membership():
    P = one_hot_membership(np.array([2, 0, 1, 2]), 4)
    assert standardize_dtype(P.dtype) == "float32"
    np.testing.assert_array_equal(
        ops.convert_to_numpy(P),
        [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    with pytest.raises(ConfigError, match="k must be"):
        one_hot_membership(np.array([0, 1]), 0)
    with pytest.raises(ConfigError, match=r"\(m,\)"):
        one_hot_membership(np.zeros((2, 2), "int32"), 2)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kmeans_recovers_separated_clusters(metric):
    rng = np.random.default_rng(0)
    centers = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10]], "float32")
    truth = np.repeat(np.arange(3), 8)
    Z = centers[truth] + rng.normal(scale=0.5, size=(24, 3)).astype("float32")
    found = None
    for seed in range(5):  # some seeds start two centroids in one cluster; most do not
        labels = ops.convert_to_numpy(kmeans_labels(Z, 3, iters=10, seed=seed, metric=metric))
        assert labels.dtype == np.int32 and labels.shape == (24,)
        assert labels.min() >= 0 and labels.max() < 3
        if same_partition(labels, truth):
            found = seed
            break
    assert found is not None


def test_kmeans_is_deterministic_and_seeded():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(30, 4)).astype("float32")
    a = ops.convert_to_numpy(kmeans_labels(Z, 4, seed=3))
    b = ops.convert_to_numpy(kmeans_labels(Z, 4, seed=3))
    np.testing.assert_array_equal(a, b)
    others = [ops.convert_to_numpy(kmeans_labels(Z, 4, seed=s)) for s in range(4, 9)]
    assert any(not np.array_equal(a, o) for o in others)


def test_kmeans_centroids_are_means_at_convergence():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(20, 2)).astype("float32")
    labels = ops.convert_to_numpy(kmeans_labels(Z, 3, iters=30, seed=0))
    cents = np.stack([Z[labels == j].mean(axis=0) for j in range(3)])
    nearest = np.argmin(((Z[:, None, :] - cents[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(labels, nearest)  # a fixed point of Lloyd's step


def test_kmeans_with_duplicate_rows_keeps_empty_cluster_finite():
    Z = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4, "float32")
    labels = ops.convert_to_numpy(kmeans_labels(Z, 3, seed=0))
    assert labels.min() >= 0 and labels.max() < 3
    assert same_partition(labels, np.repeat([0, 1], 4))


def test_kmeans_errors():
    Z = np.zeros((4, 2), "float32")
    with pytest.raises(ConfigError, match="valid choices"):
        kmeans_labels(Z, 2, metric="manhattan")
    with pytest.raises(ConfigError, match="k must be"):
        kmeans_labels(Z, 5)
    with pytest.raises(ConfigError, match=r"\(m, d\)"):
        kmeans_labels(np.zeros(4, "float32"), 2)
    with pytest.raises(ConfigError, match="iters"):
        kmeans_labels(Z, 2, iters=0)
