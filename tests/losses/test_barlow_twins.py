import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import barlow_twins_loss
from tests.losses import reference as ref

# Four samples whose two dimensions have mean 0, biased variance 1 and are uncorrelated.
PATTERN = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], np.float32)
S = 1.0 / (1.0 + 1e-5)  # the batch-norm eps shrinks a unit-variance column's correlation by this


def test_matches_reference():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(2, 8, 5)).astype(np.float32)
    for lam in (0.0, 0.0051, 0.5):
        got = float(barlow_twins_loss(z1, z2, lam))
        assert got == pytest.approx(ref.barlow_twins(z1, z2, lam), rel=1e-5)


def test_identical_views_zero_on_diagonal():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 5)).astype(np.float32)
    # λ = 0 keeps only Σ(1 − C_ii)²; with z1 = z2, C_ii = var/(var + eps) ≈ 1.
    assert float(barlow_twins_loss(z, z, lambda_=0.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(barlow_twins_loss(z, z)) > 1e-3  # the off-diagonal term of random data


def test_known_values_hand_pattern():
    # z2 = z1 (affinely rescaled per dim, which batch norm removes): C = S·I → 2(1 − S)².
    z2 = PATTERN * np.array([3.0, 0.5], np.float32) + 7.0
    assert float(barlow_twins_loss(PATTERN, z2)) == pytest.approx(2 * (1 - S) ** 2, abs=1e-9)
    # dims swapped: C = S·[[0, 1], [1, 0]] → Σ_i 1 + λ·2S².
    lam = 0.25
    got = float(barlow_twins_loss(PATTERN, PATTERN[:, ::-1].copy(), lambda_=lam))
    assert got == pytest.approx(2.0 + lam * 2 * S**2, rel=1e-6)
    # second dim negated: C = S·diag(1, −1) → (1 − S)² + (1 + S)².
    got = float(barlow_twins_loss(PATTERN, PATTERN * np.array([1.0, -1.0], np.float32)))
    assert got == pytest.approx((1 - S) ** 2 + (1 + S) ** 2, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(size=(2, 8, 5)).astype(np.float32)
    h1, h2 = ops.cast(z1, dtype), ops.cast(z2, dtype)
    out = barlow_twins_loss(h1, h2)
    assert out.dtype == "float32"
    up = barlow_twins_loss(ops.cast(h1, "float32"), ops.cast(h2, "float32"))
    assert float(out) == pytest.approx(float(up), rel=1e-6)
    assert float(out) == pytest.approx(float(barlow_twins_loss(z1, z2)), rel=1e-3)


def test_gradient_flows_to_both_branches_and_matches_finite_difference():
    rng = np.random.default_rng(3)
    z1, z2, d1, d2 = rng.normal(size=(4, 6, 3))
    v1, v2 = tf.Variable(z1.astype(np.float32)), tf.Variable(z2.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = barlow_twins_loss(v1, v2, lambda_=0.3)
    g1, g2 = (g.numpy() for g in tape.gradient(loss, [v1, v2]))
    assert np.abs(g1).sum() > 1e-3 and np.abs(g2).sum() > 1e-3
    h = 1e-3  # central difference along a random direction, float64 reference
    fd = (ref.barlow_twins(z1 + h * d1, z2 + h * d2, 0.3) - ref.barlow_twins(z1 - h * d1, z2 - h * d2, 0.3)) / (2 * h)
    assert np.sum(g1 * d1) + np.sum(g2 * d2) == pytest.approx(fd, rel=1e-3)


def test_errors():
    z = np.ones((4, 3), np.float32)
    with pytest.raises(ConfigError, match="lambda_"):
        barlow_twins_loss(z, z, lambda_=-0.1)
    with pytest.raises(ConfigError, match="same shape"):
        barlow_twins_loss(z, z[:, :2])
    with pytest.raises(ConfigError, match=r"\(N, D\)"):
        barlow_twins_loss(z[0], z[0])
    with pytest.raises(ConfigError, match="at least 2"):
        barlow_twins_loss(z[:1], z[:1])
