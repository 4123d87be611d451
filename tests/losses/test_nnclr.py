import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import nearest_neighbours, nnclr_loss
from tests.losses import reference_more as ref


def _data(seed=0, n=6, d=5):
    return np.random.default_rng(seed).normal(size=(2, n, d)).astype(np.float32)


def test_matches_reference():
    p, nn = _data()
    for tau in (0.05, 0.1, 0.5, 1.0):
        assert float(nnclr_loss(p, nn, tau)) == pytest.approx(ref.nnclr(p, nn, tau), rel=1e-5)


def test_known_value_one_hot_rows():
    # p_i = nn_i = e_i (scaled): positive logit 1/τ, the N−1 negatives 0 →
    # L = log(e^{1/τ} + (N−1)) − 1/τ = log(1 + (N−1)e^{−1/τ}).
    z = np.eye(3, 4, dtype=np.float32)
    tau = 0.25
    got = float(nnclr_loss(2.0 * z, 5.0 * z, tau))
    assert got == pytest.approx(math.log1p(2 * math.exp(-4.0)), abs=1e-6)  # float32: ~4 − 4
    # Swapping two neighbours puts every positive on an orthogonal row: −0/τ + log(e^{1/τ} + 2).
    swapped = z[[1, 0, 2]]
    got = float(nnclr_loss(z, swapped, tau))
    want = (2 * (math.log(math.exp(4.0) + 2) - 0.0) + math.log1p(2 * math.exp(-4.0))) / 3
    assert got == pytest.approx(want, abs=1e-6)


def test_one_direction_only():
    # Normalising over the neighbours (rows of p·nnᵀ) is not the same as over the predictions.
    p, nn = _data(1)
    assert abs(float(nnclr_loss(p, nn)) - float(nnclr_loss(nn, p))) > 1e-3


def test_nearest_neighbours():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 4)).astype(np.float32)
    support = rng.normal(size=(9, 4)).astype(np.float32) * rng.uniform(0.1, 10, size=(9, 1))
    got = nearest_neighbours(z, support).numpy()
    np.testing.assert_allclose(got, ref.nearest_neighbours(z, support), rtol=1e-5, atol=1e-6)
    # By hand: cosine, not Euclidean distance, and the row comes back unit-norm.
    q = np.array([[10.0, 0.0], [0.0, 0.1], [-1.0, 0.0]], np.float32)
    got = nearest_neighbours(np.array([[0.2, 1.0], [-3.0, 0.5]], np.float32), q).numpy()
    np.testing.assert_allclose(got, [[0.0, 1.0], [-1.0, 0.0]], atol=1e-7)


def test_nearest_neighbours_carry_no_gradient():
    rng = np.random.default_rng(3)
    z = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
    q = tf.Variable(rng.normal(size=(7, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = ops.sum(nearest_neighbours(z, q))
    assert all(g is None for g in tape.gradient(out, [z, q]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    p, nn = _data(4)
    ref.assert_mixed_precision(nnclr_loss, [p, nn], dtype)
    assert nearest_neighbours(ops.cast(p, dtype), ops.cast(nn, dtype)).dtype == "float32"


def test_gradient_flows_to_p_only():
    p, nn = _data(5)
    vp, vn = tf.Variable(p), tf.Variable(nn)
    with tf.GradientTape() as tape:
        loss = nnclr_loss(vp, vn)
    gp, gn = tape.gradient(loss, [vp, vn])
    assert np.all(np.isfinite(gp.numpy())) and np.abs(gp.numpy()).sum() > 1e-3
    assert gn is None


def test_errors():
    z = np.ones((4, 3), np.float32)
    for tau in (0.0, -1.0):
        with pytest.raises(ConfigError, match="temperature"):
            nnclr_loss(z, z, temperature=tau)
    ref.assert_pair_shape_errors(nnclr_loss)
    with pytest.raises(ConfigError, match="support entries have dimension 2"):
        nearest_neighbours(z, z[:, :2])
    with pytest.raises(ConfigError, match=r"\(Q, D\)"):
        nearest_neighbours(z, z[0])
