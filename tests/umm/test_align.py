"""UMM alignment terms against their formulas."""
import numpy as np
import pytest
from keras import ops

from sslzoo.umm import gradient_norm_distribution, js_to_uniform, similarity_kl


def _feats(n=6, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def _reference_kl(e, h, t):
    def rows(z):
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        s = z @ z.T / t
        np.fill_diagonal(s, -np.inf)
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s)
        return p / p.sum(axis=1, keepdims=True)
    p, q = rows(e.astype("float64")), rows(h.astype("float64"))
    mask = ~np.eye(len(e), dtype=bool)
    return float(np.mean(np.sum(np.where(mask, p * (np.log(p + 1e-300) - np.log(q + 1e-300)),
                                         0), axis=1)))


def test_similarity_kl_zero_for_identical_and_positive_otherwise():
    e = _feats()
    assert float(similarity_kl(e, e)) == pytest.approx(0.0, abs=1e-6)
    assert float(similarity_kl(e, 3.0 * e)) == pytest.approx(0.0, abs=1e-6)  # scale-free
    h = _feats(seed=1)
    got = float(similarity_kl(e, h, temperature=0.5))
    assert got > 0.01
    assert got == pytest.approx(_reference_kl(e, h, 0.5), rel=1e-4)


def test_similarity_kl_pools_maps_and_is_float32_for_half_inputs():
    maps = np.random.default_rng(2).normal(size=(6, 3, 3, 5)).astype("float32")
    h = _feats(seed=3)
    pooled = float(similarity_kl(maps.mean(axis=(1, 2)), h))
    assert float(similarity_kl(maps, h)) == pytest.approx(pooled, rel=1e-5)
    half = similarity_kl(maps.astype("float16"), h.astype("float16"))
    assert half.dtype == "float32" and float(half) == pytest.approx(pooled, rel=2e-2)


def test_gradient_norm_distribution_sums_to_one_and_favours_small_gradients():
    g = np.random.default_rng(0).normal(size=(8, 2, 2, 3)).astype("float32")
    g[0] *= 0.01  # a tiny gradient gets the largest probability
    p = ops.convert_to_numpy(gradient_norm_distribution(g))
    assert p.sum() == pytest.approx(1.0, abs=1e-6) and np.all(p > 0) and p.argmax() == 0
    inv = 1 / np.linalg.norm(g.reshape(8, -1), axis=1)
    np.testing.assert_allclose(p, inv / inv.sum(), rtol=1e-5)


def test_js_to_uniform_matches_formula():
    assert float(js_to_uniform(np.full(5, 0.2, "float32"))) == pytest.approx(0.0, abs=1e-7)
    p = np.array([0.5, 0.3, 0.1, 0.1])
    u = np.full(4, 0.25)
    m = (p + u) / 2
    want = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(u * np.log(u / m))
    assert float(js_to_uniform(p.astype("float32"))) == pytest.approx(want, rel=1e-5)
    assert float(js_to_uniform(np.array([1, 0, 0, 0], "float32"))) < np.log(2)  # bounded
