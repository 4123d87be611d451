import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import cholesky_whiten, wmse_loss
from tests.losses import reference_more as ref


def _views(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))  # correlated dimensions, so whitening matters
    z1, z2 = rng.normal(size=(2, n, d)) @ mix + rng.normal(size=d)
    return z1.astype(np.float32), z2.astype(np.float32)


def test_matches_reference():
    z1, z2 = _views()
    # Not w_size = 4 = D + 1 with eps = 0: one of those sub-batch covariances has condition
    # number ~5e5, too ill-conditioned for a float32 comparison at 1e-5.
    for w_size, eps in ((4, 0.1), (4, 0.5), (6, 0.0), (6, 0.1), (12, 0.0), (12, 0.5)):
        got = float(wmse_loss(z1, z2, w_size, eps))
        assert got == pytest.approx(ref.wmse(z1, z2, w_size, eps), rel=1e-5)


def test_whitened_sub_batches_have_identity_covariance():
    z1, _ = _views(1, n=10, d=4)
    y = cholesky_whiten(z1).numpy().astype(np.float64)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(4), atol=1e-4)
    np.testing.assert_allclose(y, ref.whiten(z1), rtol=1e-4, atol=1e-4)
    # Batched: each (w, D) sub-batch on its own. With shrinkage the covariance is not I but
    # W Σ Wᵀ with W the inverse Cholesky factor of (1 − eps)Σ + eps·I.
    groups = z1.reshape(2, 5, 4)[:, :, :3]
    y = cholesky_whiten(groups).numpy()
    for g in range(2):
        np.testing.assert_allclose(np.cov(y[g], rowvar=False), np.eye(3), atol=1e-4)
    y = cholesky_whiten(groups, eps=0.3).numpy()
    np.testing.assert_allclose(y[1], ref.whiten(groups[1], 0.3), rtol=1e-4, atol=1e-4)
    assert np.abs(np.cov(y[1], rowvar=False) - np.eye(3)).max() > 1e-2


def test_seed_fixes_the_permutation():
    z1, z2 = _views(2)
    a = float(wmse_loss(z1, z2, 6, seed=7))
    assert float(wmse_loss(z1, z2, 6, seed=7)) == a
    assert abs(float(wmse_loss(z1, z2, 6, seed=8)) - a) > 1e-4
    assert abs(float(wmse_loss(z1, z2, 6)) - a) > 1e-4
    # Sub-batches of 6 rows in D = 3 (4 rows would leave each covariance at rank 3, so close to
    # singular that float32 rounding moves the loss by 2e-5 for some permutations).
    # The permutation is keras.random.shuffle(arange(N), seed): the reference with those
    # sub-batches agrees; without a seed the sub-batches are the rows in order.
    perm = keras.random.shuffle(ops.arange(12, dtype="int32"), seed=7).numpy()
    assert a == pytest.approx(ref.wmse(z1, z2, 6, perm=perm), rel=1e-5)
    assert float(wmse_loss(z1, z2, 4)) == pytest.approx(ref.wmse(z1, z2, 4), rel=1e-5)
    # One sub-batch of the whole batch: the order no longer matters.
    assert float(wmse_loss(z1, z2, 12, seed=3)) == pytest.approx(float(wmse_loss(z1, z2, 12)),
                                                                rel=1e-5)
    # A SeedGenerator draws a new permutation each call.
    gen = keras.random.SeedGenerator(0)
    assert float(wmse_loss(z1, z2, 4, seed=gen)) != float(wmse_loss(z1, z2, 4, seed=gen))


def test_known_values():
    z1, _ = _views(3, n=8)
    # A per-batch affine copy (positive scale) whitens to the same rows: L = 0.
    assert float(wmse_loss(z1, 2.5 * z1 + 4.0, 4)) == pytest.approx(0.0, abs=1e-5)
    # A negated copy whitens to the negated rows: cos = −1, L = 2 − 2·(−1) = 4.
    assert float(wmse_loss(z1, -z1, 4)) == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    z1, z2 = _views(4)
    ref.assert_mixed_precision(lambda a, b: wmse_loss(a, b, 6), [z1, z2], dtype, rel=2e-2)
    assert cholesky_whiten(ops.cast(z1, dtype)).dtype == "float32"


def test_gradient_flows_to_both_views_and_matches_finite_difference():
    z1, z2 = (z.astype(np.float64) for z in _views(5, n=8))
    d1, d2 = np.random.default_rng(6).normal(size=(2, 8, 3))
    v1, v2 = tf.Variable(z1.astype(np.float32)), tf.Variable(z2.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = wmse_loss(v1, v2, 4, eps=0.1)
    g1, g2 = (g.numpy() for g in tape.gradient(loss, [v1, v2]))
    for g in (g1, g2):
        assert np.all(np.isfinite(g)) and np.abs(g).sum() > 1e-3
    h = 1e-4
    fd = (ref.wmse(z1 + h * d1, z2 + h * d2, 4, 0.1)
          - ref.wmse(z1 - h * d1, z2 - h * d2, 4, 0.1)) / (2 * h)
    assert np.sum(g1 * d1) + np.sum(g2 * d2) == pytest.approx(fd, rel=2e-3)


def test_errors():
    z = np.random.default_rng(7).normal(size=(8, 3)).astype(np.float32)
    with pytest.raises(ConfigError, match="not a multiple of w_size=3"):
        wmse_loss(z, z, 3)
    with pytest.raises(ConfigError, match="must exceed the embedding dimension D=3"):
        wmse_loss(z, z, 2)
    for bad in (1, 2.0, True):
        with pytest.raises(ConfigError, match="w_size must be an integer"):
            wmse_loss(z, z, bad)
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="eps must be in"):
            wmse_loss(z, z, 4, eps=bad)
        with pytest.raises(ConfigError, match="eps must be in"):
            cholesky_whiten(z, eps=bad)
    with pytest.raises(ConfigError, match="seed must be"):
        wmse_loss(z, z, 4, seed="x")
    ref.assert_pair_shape_errors(lambda a, b: wmse_loss(a, b, 4))
    with pytest.raises(ConfigError, match=r"\(\.\.\., w, D\)"):
        cholesky_whiten(z[0])
    # eps > 0 makes a sub-batch no larger than D usable.
    assert np.isfinite(float(wmse_loss(z, z[::-1].copy(), 2, eps=0.5)))


def test_all_gather_gives_the_global_batch():
    z1, z2 = _views(8, n=6)
    other1, other2 = _views(9, n=6)
    # Replica 0's view of a two-replica gather: its rows, then the other replica's (z1 is
    # gathered first, then z2). Six local rows need not be a multiple of w_size; the 12 are.
    others = iter([other1, other2])
    gather = lambda x: ops.concatenate([x, next(others)], axis=0)  # noqa: E731
    want = float(wmse_loss(np.concatenate([z1, other1]), np.concatenate([z2, other2]), 4, seed=1))
    assert float(wmse_loss(z1, z2, 4, seed=1, all_gather=gather)) == pytest.approx(want, rel=1e-6)
