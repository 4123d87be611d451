import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import emp_ssl_loss
from sslzoo.losses.coding_rate import coding_rate
from tests.losses import reference_more as ref


def _patches(seed=0, n=6, q=4, d=5):
    return np.random.default_rng(seed).normal(size=(n, q, d)).astype(np.float32)


def test_matches_reference():
    z = _patches()
    for eps, lam in ((0.2, 200.0), (0.5, 0.0), (0.05, 3.0)):
        assert float(emp_ssl_loss(z, eps, lam)) == pytest.approx(ref.emp_ssl(z, eps, lam),
                                                                  rel=1e-5)
    z = _patches(1, n=3, q=2, d=7)  # fewer images than dimensions
    assert float(emp_ssl_loss(z, 0.2, 1.0)) == pytest.approx(ref.emp_ssl(z, 0.2, 1.0), rel=1e-5)


def test_reuses_the_coding_rate_of_each_patch():
    # eps is EMP-SSL's ε²: the rates are coding_rate's at ε = √eps, one per patch.
    z = _patches(2)
    u = z / np.linalg.norm(z, axis=-1, keepdims=True)
    rates = [float(coding_rate(u[:, j], eps=math.sqrt(0.2))) for j in range(4)]
    stacked = coding_rate(np.swapaxes(u, 0, 1), eps=math.sqrt(0.2)).numpy()
    np.testing.assert_allclose(stacked, rates, rtol=1e-6)
    assert float(emp_ssl_loss(z, 0.2, 0.0)) == pytest.approx(-np.mean(rates), rel=1e-6)


def test_known_values():
    # Identical patches: every cosine to the centre is 1, so the invariance term is −λ.
    z = np.repeat(np.eye(3, 4, dtype=np.float32)[:, None, :], 2, axis=1)
    # Each Z_j is I_3 padded: ZᵀZ has three unit eigenvalues, R = 3/2·log(1 + 4/(3·eps)).
    want = -1.5 * math.log(1 + 4 / (3 * 0.2)) - 7.0
    assert float(emp_ssl_loss(z, 0.2, 7.0)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    ref.assert_mixed_precision(lambda z: emp_ssl_loss(z, 0.2, 2.0), [_patches(3)], dtype)


def test_gradient_matches_finite_difference():
    z = _patches(4).astype(np.float64)
    dz = np.random.default_rng(5).normal(size=z.shape)
    v = tf.Variable(z.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = emp_ssl_loss(v, 0.2, 2.0)
    g = tape.gradient(loss, v).numpy()
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 1e-3
    h = 1e-4
    fd = (ref.emp_ssl(z + h * dz, 0.2, 2.0) - ref.emp_ssl(z - h * dz, 0.2, 2.0)) / (2 * h)
    assert np.sum(g * dz) == pytest.approx(fd, rel=1e-3)


def test_errors():
    z = _patches(6)
    with pytest.raises(ConfigError, match="eps"):
        emp_ssl_loss(z, eps=0.0)
    with pytest.raises(ConfigError, match="inv_weight"):
        emp_ssl_loss(z, inv_weight=-1.0)
    with pytest.raises(ConfigError, match=r"\(n, q, d\)"):
        emp_ssl_loss(z[0])
    with pytest.raises(ConfigError, match="q >= 2 patches"):
        emp_ssl_loss(z[:, :1])
    with pytest.raises(ConfigError, match="at least 2 images"):
        emp_ssl_loss(z[:1])


def test_all_gather_gives_the_global_batch():
    z, other = _patches(7), _patches(8)
    other_u = (other / np.linalg.norm(other, axis=-1, keepdims=True)).astype(np.float32)
    gather = lambda x: ops.concatenate([x, other_u], axis=0)  # noqa: E731
    want = float(emp_ssl_loss(np.concatenate([z, other]), 0.2, 5.0))
    assert float(emp_ssl_loss(z, 0.2, 5.0, all_gather=gather)) == pytest.approx(want, rel=1e-5)
