import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import dcl_loss, dclw_loss, simclr_loss
from tests.losses import reference_more as ref


def _views(seed=0, n=6, d=5):
    return np.random.default_rng(seed).normal(size=(2, n, d)).astype(np.float32)


def test_dcl_matches_reference():
    z1, z2 = _views()
    for tau in (0.1, 0.5, 1.0):
        assert float(dcl_loss(z1, z2, tau)) == pytest.approx(ref.dcl(z1, z2, tau), rel=1e-5)


def test_dclw_matches_reference():
    z1, z2 = _views(1)
    for tau, sigma in ((0.1, 0.5), (0.5, 0.5), (0.2, 2.0), (1.0, 0.1)):
        got = float(dclw_loss(z1, z2, tau, sigma))
        assert got == pytest.approx(ref.dcl(z1, z2, tau, sigma), rel=1e-5)


def test_known_values_identical_one_hot_views():
    # z1 = z2 = [e1, e2]: every positive has s = 1 and each anchor's two negatives (both views
    # of the other image) s = 0, so L = −1/τ + log 2; the DCLW weights are all 2 − N/N = 1.
    z = np.eye(2, 3, dtype=np.float32)
    tau = 0.5
    assert float(dcl_loss(z, 3 * z, tau)) == pytest.approx(math.log(2) - 2.0, rel=1e-6)
    assert float(dclw_loss(z, z, tau)) == pytest.approx(math.log(2) - 2.0, rel=1e-6)
    # SimCLR keeps the positive in the denominator: log(e^{1/τ} + 2) − 1/τ instead.
    assert float(simclr_loss(z, z, tau)) == pytest.approx(math.log(math.exp(2) + 2) - 2, rel=1e-6)


def test_known_value_dclw_weights():
    # Image 0: views e1, e1 (s = 1); image 1: views e2, e3 (s = 0). Every anchor is orthogonal
    # to both views of the other image, so each negative sum is 2·e^0 and, averaging the four
    # anchors, L = log 2 − ½·(w0·1)/τ (image 1's positive term is 0 whatever its weight).
    z1 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    z2 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    tau, sigma = 0.5, 0.5
    w0 = 2 - 2 * math.exp(2.0) / (math.exp(2.0) + 1.0)  # N·softmax([1, 0]/σ)_0 with N = 2
    assert float(dcl_loss(z1, z2, tau)) == pytest.approx(math.log(2) - 0.5 * 2.0, rel=1e-6)
    assert float(dclw_loss(z1, z2, tau, sigma)) == pytest.approx(math.log(2) - 0.5 * w0 * 2.0,
                                                                rel=1e-6)


@pytest.mark.parametrize("loss", [dcl_loss, dclw_loss], ids=["dcl", "dclw"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(loss, dtype):
    ref.assert_mixed_precision(loss, _views(2), dtype)


@pytest.mark.parametrize("loss,sigma", [(dcl_loss, None), (dclw_loss, 0.5)], ids=["dcl", "dclw"])
def test_gradient_flows_to_both_views_and_matches_finite_difference(loss, sigma):
    rng = np.random.default_rng(3)
    z1, z2, d1, d2 = rng.normal(size=(4, 5, 3))
    v1, v2 = tf.Variable(z1.astype(np.float32)), tf.Variable(z2.astype(np.float32))
    with tf.GradientTape() as tape:
        out = loss(v1, v2, 0.5)
    g1, g2 = (g.numpy() for g in tape.gradient(out, [v1, v2]))
    assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
    assert np.abs(g1).sum() > 1e-3 and np.abs(g2).sum() > 1e-3
    # Float64 central difference: for DCLW it includes the weights' own dependence on z, so
    # this also checks that the weights are not detached.
    h = 1e-4
    fd = (ref.dcl(z1 + h * d1, z2 + h * d2, 0.5, sigma)
          - ref.dcl(z1 - h * d1, z2 - h * d2, 0.5, sigma)) / (2 * h)
    assert np.sum(g1 * d1) + np.sum(g2 * d2) == pytest.approx(fd, rel=1e-3)


def test_errors():
    z = np.ones((4, 3), np.float32)
    for bad in (0.0, -0.1):
        with pytest.raises(ConfigError, match="temperature"):
            dcl_loss(z, z, temperature=bad)
        with pytest.raises(ConfigError, match="sigma"):
            dclw_loss(z, z, sigma=bad)
    for loss in (dcl_loss, dclw_loss):
        ref.assert_pair_shape_errors(loss)
        with pytest.raises(ConfigError, match="at least 2"):
            loss(z[:1], z[:1])


@pytest.mark.parametrize("loss", [dcl_loss, dclw_loss], ids=["dcl", "dclw"])
def test_all_gather_gives_the_global_batch(loss):
    # Two replicas holding the same rows: the gathered global batch is [z; z].
    z1, z2 = _views(6, n=3)
    gather = lambda x: ops.concatenate([x, x], axis=0)  # noqa: E731
    want = float(loss(np.tile(z1, (2, 1)), np.tile(z2, (2, 1))))
    assert float(loss(z1, z2, all_gather=gather)) == pytest.approx(want, rel=1e-6)
    assert np.isfinite(float(loss(z1[:1], z2[:1], all_gather=gather)))  # N = 1 per replica
