import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import mocov3_loss
from tests.losses import reference as ref


def _data(seed=0, n=5, d=4):
    return list(np.random.default_rng(seed).normal(size=(4, n, d)).astype(np.float32))


def test_matches_reference():
    q1, q2, k1, k2 = _data()
    for tau in (0.1, 0.2, 1.0):
        got = float(mocov3_loss(q1, q2, k1, k2, tau))
        assert got == pytest.approx(ref.mocov3(q1, q2, k1, k2, tau), rel=1e-5)


def test_known_value_orthogonal_batch():
    # All four are the same one-hot rows (scaled): logits 1/τ on the diagonal, 0 elsewhere, so
    # ctr = 2τ·log(1 + (N−1)e^{−1/τ}) and the loss is twice that.
    z = np.eye(3, 5, dtype=np.float32)
    tau = 0.5
    got = float(mocov3_loss(z, 2 * z, 3 * z, z, tau))
    assert got == pytest.approx(2 * 2 * tau * math.log1p(2 * math.exp(-2.0)), rel=1e-6)


def test_is_asymmetric_in_pairing():
    # q1 is paired with k2 (not k1): swapping the keys changes the value.
    q1, q2, k1, k2 = _data(3)
    a = float(mocov3_loss(q1, q2, k1, k2))
    b = float(mocov3_loss(q1, q2, k2, k1))
    assert a == pytest.approx(ref.mocov3(q1, q2, k1, k2, 0.2), rel=1e-5)
    assert abs(a - b) > 1e-3


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    xs = _data(1)
    h = [ops.cast(x, dtype) for x in xs]
    out = mocov3_loss(*h)
    assert out.dtype == "float32"
    assert float(out) == pytest.approx(float(mocov3_loss(*[ops.cast(x, "float32") for x in h])), rel=1e-6)
    assert float(out) == pytest.approx(float(mocov3_loss(*xs)), rel=1e-3)


def test_gradient_only_to_queries():
    vs = [tf.Variable(x) for x in _data(2)]
    with tf.GradientTape() as tape:
        loss = mocov3_loss(*vs)
    gq1, gq2, gk1, gk2 = tape.gradient(loss, vs)
    assert np.abs(gq1.numpy()).sum() > 1e-4 and np.abs(gq2.numpy()).sum() > 1e-4
    assert gk1 is None and gk2 is None


def test_errors():
    q1, q2, k1, k2 = _data()
    with pytest.raises(ConfigError, match="temperature"):
        mocov3_loss(q1, q2, k1, k2, temperature=-1.0)
    with pytest.raises(ConfigError, match="k2"):
        mocov3_loss(q1, q2, k1, k2[:3])
    with pytest.raises(ConfigError, match=r"\(N, D\)"):
        mocov3_loss(q1[None], q2[None], k1[None], k2[None])
