import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import tico_loss
from tests.losses import reference_more as ref


def _data(seed=0, n=6, d=4):
    rng = np.random.default_rng(seed)
    z1, z2 = rng.normal(size=(2, n, d)).astype(np.float32)
    a = rng.normal(size=(d, d))
    c = (a @ a.T / d).astype(np.float32)  # a symmetric PSD running covariance
    return z1, z2, c


def test_matches_reference():
    z1, z2, c = _data()
    for beta, rho in ((0.9, 20.0), (0.0, 1.0), (0.5, 8.0), (0.99, 0.0)):
        loss, new_c = tico_loss(z1, z2, c, beta, rho)
        want_loss, want_c = ref.tico(z1, z2, c, beta, rho)
        assert float(loss) == pytest.approx(want_loss, rel=1e-5)
        np.testing.assert_allclose(new_c.numpy(), want_c, rtol=1e-5, atol=1e-7)


def test_covariance_update_formula():
    # new_C = β·C + (1 − β)·ẑᵀẑ/N, by hand: ẑ rows e1 and (e1 + e2)/√2, so ẑᵀẑ/2 =
    # [[3/4, 1/4], [1/4, 1/4]].
    z1 = np.array([[2.0, 0.0], [1.0, 1.0]], np.float32)
    c = np.array([[1.0, 2.0], [2.0, 3.0]], np.float32)
    _, new_c = tico_loss(z1, z1, c, beta=0.75)
    want = 0.75 * c + 0.25 * np.array([[0.75, 0.25], [0.25, 0.25]])
    np.testing.assert_allclose(new_c.numpy(), want, rtol=1e-6)


def test_new_covariance_is_used_not_the_old_one():
    z1, z2, c = _data(1)
    beta, rho = 0.5, 3.0
    loss, new_c = tico_loss(z1, z2, c, beta, rho)
    u1, u2 = (ref._unit(z) for z in (z1, z2))
    inv = -np.mean(np.sum(u1 * u2, axis=1))

    def with_matrix(m):
        return inv + rho * np.mean([row @ m @ row for row in u1])

    assert float(loss) == pytest.approx(with_matrix(new_c.numpy().astype(np.float64)), rel=1e-5)
    assert abs(float(loss) - with_matrix(c.astype(np.float64))) > 1e-2


def test_known_value_identical_orthogonal_views():
    # ẑ1 = ẑ2 = [e1, e2], C = 0: invariance −1; new_C = (1 − β)·I/2 so each ẑ new_C ẑᵀ =
    # (1 − β)/2 and L = −1 + ρ(1 − β)/2 = 0 at the defaults (β = 0.9, ρ = 20).
    z = np.eye(2, dtype=np.float32)
    zero = np.zeros((2, 2), np.float32)
    loss, new_c = tico_loss(3 * z, z, zero)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(new_c.numpy(), 0.05 * np.eye(2), rtol=1e-6)
    loss, _ = tico_loss(z, z, zero, beta=0.5, rho=1.0)
    assert float(loss) == pytest.approx(-1 + 0.25, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    data = _data(2)
    ref.assert_mixed_precision(lambda *a: tico_loss(*a)[0], data, dtype)
    assert tico_loss(*(ops.cast(x, dtype) for x in data))[1].dtype == "float32"


def test_gradient_flows_to_embeddings_not_to_covariance():
    z1, z2, c = _data(3)
    v1, v2, vc = tf.Variable(z1), tf.Variable(z2), tf.Variable(c)
    with tf.GradientTape(persistent=True) as tape:
        loss, new_c = tico_loss(v1, v2, vc, beta=0.5, rho=2.0)
        total_c = ops.sum(new_c)
    g1, g2, gc = tape.gradient(loss, [v1, v2, vc])
    for g in (g1, g2):
        assert np.all(np.isfinite(g.numpy())) and np.abs(g.numpy()).sum() > 1e-3
    assert gc is None
    assert all(g is None for g in tape.gradient(total_c, [v1, v2, vc]))
    # The gradient flows through this batch's part of C_t = β·C + (1 − β)·ẑ1ᵀẑ1/N, as in
    # the public implementations: compare with a float64 central difference of the full
    # formula, C_t recomputed from the perturbed z1 (C itself fixed).
    d1 = np.random.default_rng(4).normal(size=z1.shape)

    def full(z):
        u1, u2 = ref._unit(z), ref._unit(z2)
        c_t = 0.5 * c.astype(np.float64) + 0.5 * u1.T @ u1 / len(u1)
        return -np.mean(np.sum(u1 * u2, 1)) + 2.0 * np.mean([r @ c_t @ r for r in u1])

    h = 1e-4
    fd = (full(z1 + h * d1) - full(z1 - h * d1)) / (2 * h)
    assert np.sum(g1.numpy() * d1) == pytest.approx(fd, rel=1e-3)
    assert float(loss) == pytest.approx(full(z1), rel=1e-5)


def test_errors():
    z = np.ones((4, 3), np.float32)
    c = np.zeros((3, 3), np.float32)
    for beta in (-0.1, 1.0, 1.5):
        with pytest.raises(ConfigError, match="beta"):
            tico_loss(z, z, c, beta=beta)
    with pytest.raises(ConfigError, match="rho"):
        tico_loss(z, z, c, rho=-1.0)
    ref.assert_pair_shape_errors(lambda a, b: tico_loss(a, b, c))
    with pytest.raises(ConfigError, match=r"C must be the \(D, D\) = \(3, 3\)"):
        tico_loss(z, z, np.zeros((2, 2), np.float32))
    with pytest.raises(ConfigError, match="running covariance"):
        tico_loss(z, z, np.zeros(3, np.float32))


def test_all_sum_gives_the_global_batch():
    z1, z2, c = _data(5)
    twice = lambda x: tf.nest.map_structure(lambda t: 2.0 * t, x)  # noqa: E731
    loss, new_c = tico_loss(z1, z2, c, 0.5, 3.0, all_sum=twice)
    want_loss, want_c = tico_loss(np.tile(z1, (2, 1)), np.tile(z2, (2, 1)), c, 0.5, 3.0)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-6)
    np.testing.assert_allclose(new_c.numpy(), want_c.numpy(), rtol=1e-6)
