import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import moco_loss
from tests.losses import reference as ref


def _data(seed=0, n=4, d=6, k=10):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32),
            rng.normal(size=(k, d)).astype(np.float32))


def test_matches_reference():
    q, k, queue = _data()
    for tau in (0.07, 0.2, 1.0):
        assert float(moco_loss(q, k, queue, tau)) == pytest.approx(ref.info_nce(q, k, queue, tau), rel=1e-5)


def test_known_value_positive_aligned_negatives_orthogonal():
    # q = k (scaled: normalisation inside), queue ⟂ q → L = log(1 + K·e^{−1/τ}).
    q = np.eye(2, 6, dtype=np.float32) * 5.0
    queue = np.eye(6, dtype=np.float32)[2:] * 0.5  # K = 4 rows, orthogonal to q; not unit norm
    got = float(moco_loss(q, q * 2.0, queue, temperature=0.5))
    assert got == pytest.approx(math.log1p(4 * math.exp(-2.0)), rel=1e-6)


def test_positive_opposite_is_large():
    q = np.eye(2, 6, dtype=np.float32)
    queue = np.eye(6, dtype=np.float32)[2:]
    got = float(moco_loss(q, -q, queue, temperature=0.5))
    # logits [−2, 0, 0, 0, 0] → −log(e^{−2} / (e^{−2} + 4))
    assert got == pytest.approx(math.log(math.exp(-2.0) + 4) + 2.0, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    q, k, queue = _data(1)
    h = [ops.cast(x, dtype) for x in (q, k, queue)]
    out = moco_loss(*h)
    assert out.dtype == "float32"
    up = moco_loss(*[ops.cast(x, "float32") for x in h])
    assert float(out) == pytest.approx(float(up), rel=1e-6)
    assert float(out) == pytest.approx(float(moco_loss(q, k, queue)), rel=1e-3)


def test_gradient_only_to_query():
    vq, vk, vqueue = (tf.Variable(x) for x in _data(2))
    with tf.GradientTape() as tape:
        loss = moco_loss(vq, vk, vqueue)
    gq, gk, gqueue = tape.gradient(loss, [vq, vk, vqueue])
    assert np.abs(gq.numpy()).sum() > 1e-4
    assert gk is None and gqueue is None


def test_errors():
    q, k, queue = _data()
    with pytest.raises(ConfigError, match="temperature"):
        moco_loss(q, k, queue, temperature=0.0)
    with pytest.raises(ConfigError, match="same shape"):
        moco_loss(q, k[:, :5], queue)
    with pytest.raises(ConfigError, match="queue entries have dimension 5"):
        moco_loss(q, k, queue[:, :5])
    with pytest.raises(ConfigError, match=r"queue must be a \(K, D\)"):
        moco_loss(q, k, queue[0])
    with pytest.raises(ConfigError, match=r"\(N, D\)"):
        moco_loss(q[0], k[0], queue)
