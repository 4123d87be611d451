import math

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses import sinkhorn_knopp, swav_loss
from tests.losses import reference as ref


def _scores(seed=0, n=6, k=4):
    """Cosine similarities to prototypes, as SwAV produces them (|s| ≤ 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    c = rng.normal(size=(k, 8))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return (z @ c.T).astype(np.float32)


def test_sinkhorn_matches_reference():
    s = _scores()
    for eps, iters in ((0.05, 3), (0.1, 1), (0.05, 10)):
        got = ops.convert_to_numpy(sinkhorn_knopp(s, eps, iters))
        np.testing.assert_allclose(got, ref.sinkhorn(s, eps, iters), rtol=1e-5, atol=1e-7)


def test_sinkhorn_marginals():
    s = _scores(1, n=8, k=4)
    gaps = []
    for iters in (1, 10, 100):
        q = ops.convert_to_numpy(sinkhorn_knopp(s, 0.05, iters))
        np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)  # exact after the last step
        gaps.append(np.abs(q.sum(axis=0) - 8 / 4).max())
    # Prototype masses approach N/K = 2 as the iterations go on (slowly at small ε, where
    # exp(s/ε) is peaked: ~2.0 off after 1 step, ~0.01 after 100) …
    assert gaps[0] > 1.0 > gaps[1] > gaps[2] and gaps[2] < 0.05
    # … and reach it at convergence, quickly at a larger ε.
    q = ops.convert_to_numpy(sinkhorn_knopp(s, 0.3, 30))
    np.testing.assert_allclose(q.sum(axis=0), 8 / 4, rtol=1e-5)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)


def test_sinkhorn_known_values_and_stability():
    # Uniform scores → uniform codes 1/K.
    np.testing.assert_allclose(ops.convert_to_numpy(sinkhorn_knopp(np.zeros((6, 3), np.float32))), 1 / 3, rtol=1e-6)
    # A constant shift of all scores cancels.
    s = _scores(2)
    np.testing.assert_allclose(
        ops.convert_to_numpy(sinkhorn_knopp(s + 0.7)), ops.convert_to_numpy(sinkhorn_knopp(s)), rtol=1e-5
    )
    # ε = 0.01 → exp(s/ε) up to e^100, past float32's range without the max subtraction.
    q = ops.convert_to_numpy(sinkhorn_knopp(s, 0.01, 3))
    assert np.isfinite(q).all()
    np.testing.assert_allclose(q, ref.sinkhorn(s, 0.01, 3), rtol=1e-4, atol=1e-6)


def test_loss_matches_reference():
    s1, s2 = _scores(3), _scores(4)
    for tau, iters, eps in ((0.1, 3, 0.05), (0.5, 1, 0.1)):
        got = float(swav_loss(s1, s2, tau, iters, eps))
        assert got == pytest.approx(ref.swav(s1, s2, tau, iters, eps), rel=1e-5)


def test_loss_uniform_scores_is_log_k():
    s = np.zeros((5, 7), np.float32)
    assert float(swav_loss(s, s)) == pytest.approx(math.log(7), rel=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    s1, s2 = _scores(5), _scores(6)
    h1, h2 = ops.cast(s1, dtype), ops.cast(s2, dtype)
    out = swav_loss(h1, h2)
    assert out.dtype == "float32" and sinkhorn_knopp(h1).dtype == "float32"
    up = swav_loss(ops.cast(h1, "float32"), ops.cast(h2, "float32"))
    assert float(out) == pytest.approx(float(up), rel=1e-6)
    # Against the unrounded inputs: bfloat16's input rounding (~4e-3) is amplified by 1/ε = 20
    # inside the codes, so its tolerance is looser; the float32 compute is shown just above.
    rel = 1e-3 if dtype == "float16" else 5e-3
    assert float(out) == pytest.approx(float(swav_loss(s1, s2)), rel=rel)


def test_gradient_treats_codes_as_constants():
    s1, s2 = _scores(7), _scores(8)
    n, tau = s1.shape[0], 0.1
    v1, v2 = tf.Variable(s1), tf.Variable(s2)
    with tf.GradientTape(persistent=True) as tape:
        loss = swav_loss(v1, v2, tau)
        codes = sinkhorn_knopp(v1)
    assert tape.gradient(codes, v1) is None
    g1 = tape.gradient(loss, v1).numpy()
    # With q2 constant and Σ_k q2 = 1:  ∂L/∂s1 = (softmax(s1/τ) − q2) / (2Nτ).
    p1 = np.exp(s1 / tau) / np.exp(s1 / tau).sum(axis=1, keepdims=True)
    want = (p1 - ref.sinkhorn(s2, 0.05, 3)) / (2 * n * tau)
    np.testing.assert_allclose(g1, want, rtol=1e-4, atol=1e-7)
    assert np.abs(tape.gradient(loss, v2).numpy()).sum() > 1e-4


def test_errors():
    s = _scores()
    with pytest.raises(ConfigError, match="temperature"):
        swav_loss(s, s, temperature=0.0)
    with pytest.raises(ConfigError, match="epsilon"):
        swav_loss(s, s, epsilon=-0.05)
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="iterations"):
            swav_loss(s, s, sinkhorn_iterations=bad)
    with pytest.raises(ConfigError, match="same shape"):
        swav_loss(s, s[:, :3])
    with pytest.raises(ConfigError, match=r"\(N, K\)"):
        sinkhorn_knopp(s[0])
