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
