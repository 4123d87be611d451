import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import vicreg_loss, vicreg_terms
from tests.losses import reference as ref

PATTERN = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], np.float32)


def test_matches_reference():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(scale=0.7, size=(2, 8, 5)).astype(np.float32)  # some std < 1: hinge active
    got = [float(t) for t in vicreg_terms(z1, z2)]
    want = ref.vicreg_terms(z1, z2)
    assert got == pytest.approx(want, rel=1e-5)
    assert min(want) > 0  # every term is exercised
    for w in ((25.0, 25.0, 1.0), (1.0, 0.0, 3.0)):
        assert float(vicreg_loss(z1, z2, *w)) == pytest.approx(ref.vicreg(z1, z2, *w), rel=1e-5)


def test_known_values():
    # Identical views → invariance 0.
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4)).astype(np.float32)
    assert float(vicreg_terms(z, z)[0]) == 0.0
    # Collapse to a constant: std = sqrt(eps) = 0.01 → variance term 0.99, no covariance.
    c = np.full((4, 3), 2.0, np.float32)
    inv, var, cov = (float(t) for t in vicreg_terms(c, c))
    assert (inv, cov) == (0.0, 0.0) and var == pytest.approx(0.99, rel=1e-6)
    assert float(vicreg_loss(c, c)) == pytest.approx(25 * 0.99, rel=1e-6)
    # Uncorrelated, unbiased var 4/3 > 1 → var and cov 0; shifted by ½ → invariance ¼.
    inv, var, cov = (float(t) for t in vicreg_terms(PATTERN, PATTERN + 0.5))
    assert (inv, var, cov) == pytest.approx((0.25, 0.0, 0.0), abs=1e-7)
    assert float(vicreg_loss(PATTERN, PATTERN + 0.5)) == pytest.approx(6.25, rel=1e-6)
    # Perfectly correlated dims [a, a]: Cov = (4/3)·[[1,1],[1,1]] → Σ off² / D = 2·(16/9) / 2 per branch.
    a = np.array([[1.0], [1.0], [-1.0], [-1.0]], np.float32)
    corr = np.concatenate([a, a], axis=1)
    assert float(vicreg_terms(corr, corr)[2]) == pytest.approx(2 * 16 / 9, rel=1e-6)


def test_variance_averaged_covariance_summed_over_branches():
    c = np.full((4, 2), 2.0, np.float32)  # collapsed: var hinge 0.99, cov 0
    a = np.array([[1.0], [1.0], [-1.0], [-1.0]], np.float32)
    corr = np.concatenate([a, a], axis=1)  # var hinge 0, cov 16/9
    _, var, cov = (float(t) for t in vicreg_terms(c, corr))
    assert var == pytest.approx(0.99 / 2, rel=1e-6)
    assert cov == pytest.approx(16 / 9, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(scale=0.7, size=(2, 8, 5)).astype(np.float32)
    h1, h2 = ops.cast(z1, dtype), ops.cast(z2, dtype)
    out = vicreg_loss(h1, h2)
    assert out.dtype == "float32"
    up = vicreg_loss(ops.cast(h1, "float32"), ops.cast(h2, "float32"))
    assert float(out) == pytest.approx(float(up), rel=1e-6)
    assert float(out) == pytest.approx(float(vicreg_loss(z1, z2)), rel=1e-3)


def test_gradient_flows_to_both_branches_and_matches_finite_difference():
    rng = np.random.default_rng(3)
    z1, z2, d1, d2 = rng.normal(scale=0.7, size=(4, 6, 3))
    v1, v2 = tf.Variable(z1.astype(np.float32)), tf.Variable(z2.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = vicreg_loss(v1, v2)
    g1, g2 = (g.numpy() for g in tape.gradient(loss, [v1, v2]))
    assert np.abs(g1).sum() > 1e-3 and np.abs(g2).sum() > 1e-3
    h = 1e-4
    w = (25.0, 25.0, 1.0)
    fd = (ref.vicreg(z1 + h * d1, z2 + h * d2, *w) - ref.vicreg(z1 - h * d1, z2 - h * d2, *w)) / (2 * h)
    assert np.sum(g1 * d1) + np.sum(g2 * d2) == pytest.approx(fd, rel=1e-3)


def test_errors():
    z = np.ones((4, 3), np.float32)
    for kw in ({"sim_weight": -1.0}, {"var_weight": -0.5}, {"cov_weight": float("nan")}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            vicreg_loss(z, z, **kw)
    assert float(vicreg_loss(z, z + 1, sim_weight=1.0, var_weight=0.0, cov_weight=0.0)) == 1.0
    with pytest.raises(ConfigError, match="eps"):
        vicreg_loss(z, z, eps=0.0)
    with pytest.raises(ConfigError, match="same shape"):
        vicreg_loss(z, z[:3])
    with pytest.raises(ConfigError, match="at least 2"):
        vicreg_terms(z[:1], z[:1])
