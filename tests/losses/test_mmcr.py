import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import mmcr_loss
from tests.losses import reference_more as ref


def _views(seed=0, n=5, q=3, d=4):
    return np.random.default_rng(seed).normal(size=(n, q, d)).astype(np.float32)


def test_matches_reference():
    z = _views()
    for lmda in (0.0, 0.005, 0.5, 2.0):
        assert float(mmcr_loss(z, lmda)) == pytest.approx(ref.mmcr(z, lmda), rel=1e-5)
    # More images than dimensions, and more views than dimensions.
    for shape in ((7, 2, 3), (3, 5, 2)):
        z = np.random.default_rng(1).normal(size=shape).astype(np.float32)
        assert float(mmcr_loss(z, 0.3)) == pytest.approx(ref.mmcr(z, 0.3), rel=1e-5)


def test_known_values():
    # Image i's q views all e_i (scaled): centroids C = I (n ≤ d), ‖C‖_* = n; each Z_i is rank
    # one with singular value √q, so L = −n + λ·√q.
    n, q, d = 3, 4, 5
    z = np.repeat(np.eye(n, d, dtype=np.float32)[:, None, :], q, axis=1) * 2.0
    assert float(mmcr_loss(z)) == pytest.approx(-3.0, rel=1e-6)
    assert float(mmcr_loss(z, lmda=0.5)) == pytest.approx(-3.0 + 0.5 * math.sqrt(q), rel=1e-6)
    # Image i's two views e_{2i}, e_{2i+1}: centroid rows (e_{2i} + e_{2i+1})/2, orthogonal with
    # norm 1/√2, so ‖C‖_* = n/√2; each Z_i has two unit singular values, ‖Z_i‖_* = 2.
    z = np.eye(4, dtype=np.float32).reshape(2, 2, 4)
    assert float(mmcr_loss(z, lmda=1.0)) == pytest.approx(-2 / math.sqrt(2) + 2.0, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    ref.assert_mixed_precision(lambda z: mmcr_loss(z, 0.1), [_views(2)], dtype)


@pytest.mark.parametrize("lmda", [0.0, 0.5])
def test_gradient_flows_and_matches_finite_difference(lmda):
    z = _views(3).astype(np.float64)
    dz = np.random.default_rng(4).normal(size=z.shape)
    v = tf.Variable(z.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = mmcr_loss(v, lmda)
    g = tape.gradient(loss, v).numpy()
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 1e-3
    h = 1e-4
    fd = (ref.mmcr(z + h * dz, lmda) - ref.mmcr(z - h * dz, lmda)) / (2 * h)
    assert np.sum(g * dz) == pytest.approx(fd, rel=1e-3)


def test_errors():
    z = _views(5)
    with pytest.raises(ConfigError, match="lmda"):
        mmcr_loss(z, lmda=-0.1)
    with pytest.raises(ConfigError, match=r"\(n, q, d\)"):
        mmcr_loss(z[0])
    with pytest.raises(ConfigError, match="q >= 2 views"):
        mmcr_loss(z[:, :1])
    with pytest.raises(ConfigError, match="at least 2 images"):
        mmcr_loss(z[:1])


def test_all_gather_gives_the_global_batch():
    z, other = _views(6), _views(7)
    # Replica 0's gather: its normalised views, then the other replica's.
    other_u = ref._unit(other).astype(np.float32)
    gather = lambda x: ops.concatenate([x, other_u], axis=0)  # noqa: E731
    want = float(mmcr_loss(np.concatenate([z, other]), 0.2))
    assert float(mmcr_loss(z, 0.2, all_gather=gather)) == pytest.approx(want, rel=1e-5)
    assert np.isfinite(float(mmcr_loss(z[:1], 0.2, all_gather=gather)))  # n = 1 per replica
