import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import byol_loss
from tests.losses import reference as ref


def test_matches_reference():
    rng = np.random.default_rng(0)
    p, z = rng.normal(size=(2, 6, 5)).astype(np.float32)
    assert float(byol_loss(p, z)) == pytest.approx(ref.byol(p, z), rel=1e-5)


def test_known_values():
    p = np.array([[1.0, 2.0, 0.0], [0.0, -3.0, 4.0]], np.float32)
    assert float(byol_loss(p, 7.0 * p)) == pytest.approx(0.0, abs=1e-6)  # identical directions
    orth = np.array([[-2.0, 1.0, 5.0], [1.0, 0.0, 0.0]], np.float32)  # row-wise ⟂ p
    assert float(byol_loss(p, orth)) == pytest.approx(2.0, rel=1e-6)
    assert float(byol_loss(p, -p)) == pytest.approx(4.0, rel=1e-6)
    # 60° apart → 2 − 2·½ = 1
    a = np.array([[1.0, 0.0]], np.float32)
    b = np.array([[0.5, np.sqrt(3) / 2]], np.float32)
    assert float(byol_loss(a, b)) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    rng = np.random.default_rng(1)
    p, z = rng.normal(size=(2, 6, 5)).astype(np.float32)
    hp, hz = ops.cast(p, dtype), ops.cast(z, dtype)
    out = byol_loss(hp, hz)
    assert out.dtype == "float32"
    assert float(out) == pytest.approx(float(byol_loss(ops.cast(hp, "float32"), ops.cast(hz, "float32"))), rel=1e-6)
    assert float(out) == pytest.approx(float(byol_loss(p, z)), rel=1e-3)


def test_gradient_only_to_prediction():
    rng = np.random.default_rng(2)
    vp = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
    vz = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = byol_loss(vp, vz)
    gp, gz = tape.gradient(loss, [vp, vz])
    assert np.abs(gp.numpy()).sum() > 1e-4
    assert gz is None


def test_errors():
    with pytest.raises(ConfigError, match="same shape"):
        byol_loss(np.ones((2, 3), np.float32), np.ones((3, 3), np.float32))
    with pytest.raises(ConfigError, match=r"\(N, D\)"):
        byol_loss(np.ones(3, np.float32), np.ones(3, np.float32))
