import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import deepcluster_v2_loss
from tests.losses import reference_more as ref
from tests.losses.test_swav import _scores as swav_scores


def _scores(seed=0, n=6, k=5):
    """Prototype similarities of normalised embeddings and random cluster ids."""
    return swav_scores(seed, n, k), np.random.default_rng(seed).integers(0, k, size=n)


def test_matches_reference():
    s, a = _scores()
    for tau in (0.05, 0.1, 0.5, 1.0):
        got = float(deepcluster_v2_loss(s, a, tau))
        assert got == pytest.approx(ref.deepcluster_v2(s, a, tau), rel=1e-5)
    got = float(deepcluster_v2_loss(s, ops.cast(a, "int32")))
    assert got == pytest.approx(ref.deepcluster_v2(s, a, 0.1), rel=1e-5)


def test_known_values():
    # Equal scores: every cluster has probability 1/K, L = log K.
    s = np.full((3, 4), 0.3, np.float32)
    got = float(deepcluster_v2_loss(s, np.array([0, 1, 3])))
    assert got == pytest.approx(math.log(4), rel=1e-6)
    # One-hot scores (orthogonal centroids): the assigned cluster scores 1 or 0.
    s = np.eye(2, 3, dtype=np.float32)
    tau = 0.5
    right = math.log(math.exp(2) + 2) - 2  # assignment on the 1
    wrong = math.log(math.exp(2) + 2)       # assignment on a 0
    got = float(deepcluster_v2_loss(s, np.array([0, 2]), tau))
    assert got == pytest.approx((right + wrong) / 2, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    s, a = _scores(1)
    ref.assert_mixed_precision(lambda x: deepcluster_v2_loss(x, a), [s], dtype)


def test_gradient_flows_to_scores():
    s, a = _scores(2)
    v = tf.Variable(s)
    with tf.GradientTape() as tape:
        loss = deepcluster_v2_loss(v, a, 0.1)
    g = tape.gradient(loss, v).numpy()
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 1e-3
    # d/ds_nk = (softmax_nk − [k = a_n]) / (N τ): each row's gradient sums to 0 and is negative
    # only at the assigned cluster.
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-5)
    assert np.all(g[np.arange(len(a)), a] < 0)


def test_errors():
    s, a = _scores(3)
    for tau in (0.0, -1.0):
        with pytest.raises(ConfigError, match="temperature"):
            deepcluster_v2_loss(s, a, tau)
    with pytest.raises(ConfigError, match=r"\(N, K\) and assignments \(N,\)"):
        deepcluster_v2_loss(s[0], a)
    with pytest.raises(ConfigError, match=r"\(N, K\) and assignments \(N,\)"):
        deepcluster_v2_loss(s, a[:, None])
    with pytest.raises(ConfigError, match="one cluster id per row"):
        deepcluster_v2_loss(s, a[:3])
    with pytest.raises(ConfigError, match="integer cluster ids"):
        deepcluster_v2_loss(s, a.astype(np.float32))


def test_negative_ids_are_left_out_and_sums_run_across_replicas():
    s, a = _scores(4)
    ignored = np.where(np.arange(len(a)) % 3 == 0, -1, a)
    kept = ignored >= 0
    got = float(deepcluster_v2_loss(s, ignored, 0.1))
    assert got == pytest.approx(ref.deepcluster_v2(s[kept], a[kept], 0.1), rel=1e-5)
    assert float(deepcluster_v2_loss(s, np.full(len(a), -1), 0.1)) == 0.0  # none left: 0
    # all_sum adds another replica's sum and count: (Σ ce + 3) / (count + 2).
    twice = float(deepcluster_v2_loss(s, ignored, 0.1, all_sum=lambda t: (t[0] + 3, t[1] + 2)))
    assert twice == pytest.approx((got * kept.sum() + 3) / (kept.sum() + 2), rel=1e-5)


def test_spherical_kmeans_and_its_blocks():
    from sslzoo.losses import spherical_kmeans
    from sslzoo.losses.deepcluster import nearest_centroid

    rng = np.random.default_rng(5)
    x = rng.normal(size=(23, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c = x[[0, 5, 9]].copy()
    for _ in range(10):  # the official loop, weights 1 except the last 3 rows
        a = np.argmax(x @ c.T, axis=1)
        for k in range(3):
            if np.any(a[:20] == k):
                c[k] = x[:20][a[:20] == k].mean(0)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    w = np.r_[np.ones(20), np.zeros(3)].astype("float32")
    got_c, got_a = spherical_kmeans(x.astype("float32"), x[[0, 5, 9]].astype("float32"), 10, w)
    np.testing.assert_allclose(got_c, c, atol=1e-6)
    np.testing.assert_array_equal(got_a, np.argmax(x @ c.T, axis=1))
    blocks = nearest_centroid(x.astype("float32"), c.astype("float32"), rows=5)  # 5 blocks
    np.testing.assert_array_equal(blocks, got_a)
    with pytest.raises(ConfigError, match="iterations must be an integer >= 0"):
        spherical_kmeans(x, c, -1)
