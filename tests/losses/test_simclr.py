import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import simclr_loss
from tests.losses import reference as ref


def test_hand_computed_n2_d2():
    # Rows are already unit vectors: a=(1,0), b=(0,1) | c=(0.6,0.8), d=(0,1); τ = 0.5.
    z1 = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    z2 = np.array([[0.6, 0.8], [0.0, 1.0]], np.float32)
    # Cosine similarities of [a, b, c, d]:
    #        a    b    c    d
    #   a  1.0  0.0  0.6  0.0
    #   b  0.0  1.0  0.8  1.0
    #   c  0.6  0.8  1.0  0.8
    #   d  0.0  1.0  0.8  1.0
    # Positives a↔c (0.6), b↔d (1.0); s/τ doubles each entry; the diagonal is excluded.
    e = math.exp
    l_a = math.log(e(0.0) + e(1.2) + e(0.0)) - 1.2
    l_b = math.log(e(0.0) + e(1.6) + e(2.0)) - 2.0
    l_c = math.log(e(1.2) + e(1.6) + e(1.6)) - 1.2
    l_d = math.log(e(0.0) + e(2.0) + e(1.6)) - 2.0
    expected = (l_a + l_b + l_c + l_d) / 4
    assert float(simclr_loss(z1, z2, temperature=0.5)) == pytest.approx(expected, rel=1e-6)


def test_matches_reference():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(2, 6, 5)).astype(np.float32)
    for tau in (0.1, 0.5, 1.0):
        got = float(simclr_loss(z1, z2, temperature=tau))
        assert got == pytest.approx(ref.nt_xent(z1, z2, tau), rel=1e-5)


def test_identical_views_small_temperature():
    # One-hot rows: positive similarity 1, every negative 0 → L = log(1 + (2N−2)·e^{−1/τ}) → 0.
    z = np.eye(4, 8, dtype=np.float32) * 3.0
    got = float(simclr_loss(z, z, temperature=0.05))
    assert got == pytest.approx(math.log1p(6 * math.exp(-20.0)), abs=1e-6)  # ≈ 1.2e-8
    # Contrast: at τ = 1 the same views give log(1 + 6/e) ≈ 1.16, far from 0.
    assert float(simclr_loss(z, z, temperature=1.0)) == pytest.approx(math.log1p(6 / math.e), rel=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(2, 6, 5)).astype(np.float32)
    h1, h2 = ops.cast(z1, dtype), ops.cast(z2, dtype)
    out = simclr_loss(h1, h2)
    assert out.dtype == "float32"
    # Computed in float32: equal to the loss of the same (rounded) values given as float32 …
    up = simclr_loss(ops.cast(h1, "float32"), ops.cast(h2, "float32"))
    assert float(out) == pytest.approx(float(up), rel=1e-6)
    # … and close to the loss of the unrounded inputs.
    assert float(out) == pytest.approx(float(simclr_loss(z1, z2)), rel=1e-3)


def test_gradient_flows_to_both_views():
    rng = np.random.default_rng(2)
    v1 = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
    v2 = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = simclr_loss(v1, v2)
    g1, g2 = tape.gradient(loss, [v1, v2])
    assert np.abs(g1.numpy()).sum() > 1e-4 and np.abs(g2.numpy()).sum() > 1e-4


@pytest.mark.parametrize("tau", [0.0, -0.5])
def test_bad_temperature(tau):
    z = np.ones((2, 3), np.float32)
    with pytest.raises(ConfigError, match="temperature"):
        simclr_loss(z, z, temperature=tau)


def test_shape_errors():
    with pytest.raises(ConfigError, match="same shape"):
        simclr_loss(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32))
    with pytest.raises(ConfigError, match=r"\(N, D\)"):
        simclr_loss(np.ones((2, 3, 1), np.float32), np.ones((2, 3, 1), np.float32))
