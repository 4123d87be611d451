"""Tests of RankMe and LiDAR against a float64 NumPy/SciPy reference and known spectra."""
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from keras import ops
from keras.backend import standardize_dtype

from sslzoo.errors import ConfigError
from sslzoo.quality import lidar, rankme
from sslzoo.quality.rank import entropy_effective_rank


# ---- independent reference (float64; LiDAR via the generalized eigenproblem S_b v = λ S_w v) ----

def np_erank(values, eps):
    p = np.maximum(values, 0.0) / np.maximum(values, 0.0).sum() + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def np_rankme(z, eps=1e-7):
    return np_erank(np.linalg.svd(np.asarray(z, "float64"), compute_uv=False), eps)


def np_lidar(z, delta=1e-4, eps=1e-7):
    z = np.asarray(z, "float64")
    n, q, d = z.shape
    mu_i = z.mean(axis=1)
    c = mu_i - mu_i.mean(axis=0)
    s_b = c.T @ c / (n - 1)
    w = (z - mu_i[:, None, :]).reshape(-1, d)
    s_w = w.T @ w / (n * (q - 1)) + delta * np.eye(d)
    return np_erank(scipy.linalg.eigh(s_b, s_w, eigvals_only=True), eps)


def val(x):
    return float(ops.convert_to_numpy(x))


def clusters(rng, n, q, d, spread=0.01, subspace=None):
    """q views of each of n images: tight Gaussian clusters around standard-normal centres in
    all d dimensions, or in a random ``subspace``-dimensional one (orthonormal basis)."""
    if subspace is None:
        centres = rng.normal(size=(n, d))
    else:
        basis, _ = np.linalg.qr(rng.normal(size=(d, subspace)))
        centres = rng.normal(size=(n, subspace)) @ basis.T
    return (centres[:, None, :] + spread * rng.normal(size=(n, q, d))).astype("float32")


# ---- agreement with the reference ------------------------------------------------------------

@pytest.mark.parametrize("shape", [(50, 12), (12, 50), (200, 32)])
def test_rankme_matches_numpy(shape):
    rng = np.random.default_rng(1)
    z = (rng.normal(size=shape) * np.geomspace(0.1, 3.0, shape[1])).astype("float32")
    assert val(rankme(z)) == pytest.approx(np_rankme(z), rel=1e-4)
    assert val(rankme(z, eps=0.0)) == pytest.approx(np_rankme(z, 0.0), rel=1e-4)


@pytest.mark.parametrize("n,q,d,delta", [(40, 4, 8, 1e-4), (100, 2, 16, 1e-2), (30, 5, 6, 0.0)])
def test_lidar_matches_generalized_eigenvalues(n, q, d, delta):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(n, 1, d)) + 0.5 * rng.normal(size=(n, q, d)) * rng.uniform(0.3, 2, d)
    z = z.astype("float32")
    assert val(lidar(z, delta=delta)) == pytest.approx(np_lidar(z, delta), rel=1e-4)


def test_entropy_effective_rank_of_known_spectra():
    assert val(entropy_effective_rank(np.ones(7), eps=0.0)) == pytest.approx(7.0, rel=1e-6)
    assert val(entropy_effective_rank([5.0, 0.0, 0.0], eps=0.0)) == pytest.approx(1.0)
    assert val(entropy_effective_rank(np.zeros(4))) == pytest.approx(1.0, abs=1e-4)  # not NaN


# ---- properties --------------------------------------------------------------------------------

def test_rankme_of_a_rank_4_matrix_is_about_4():
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(64, 4)) @ rng.normal(size=(4, 32))).astype("float32")
    score = val(rankme(z))
    assert 3.0 < score <= 4.0 + 1e-2


def test_rankme_of_an_isotropic_gaussian_is_about_d():
    z = np.random.default_rng(4).normal(size=(2000, 16)).astype("float32")
    assert val(rankme(z)) == pytest.approx(16.0, rel=0.1)


def test_rankme_is_scale_and_rotation_invariant():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(80, 10)) * np.linspace(0.1, 2, 10)
    rot, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    a, b = val(rankme(z.astype("float32"))), val(rankme((7.0 * z @ rot).astype("float32")))
    assert a == pytest.approx(b, rel=1e-4)


def test_lidar_of_well_separated_clusters_is_about_min_n_minus_1_d():
    rng = np.random.default_rng(6)
    full = val(lidar(clusters(rng, 512, 4, 16)))
    flat = val(lidar(clusters(rng, 512, 4, 16, subspace=2)))
    assert full == pytest.approx(16.0, rel=0.05)
    assert 1.0 < flat < 2.5 and flat < full / 5


def test_lidar_is_invariant_to_an_invertible_linear_map_without_ridge():
    # S_w^{-1/2} S_b S_w^{-1/2} has the eigenvalues of S_w^{-1} S_b, unchanged by z -> z M.
    rng = np.random.default_rng(7)
    z = rng.normal(size=(60, 1, 8)) + rng.normal(size=(60, 3, 8))
    m = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    a = val(lidar(z.astype("float32"), delta=0.0))
    assert val(lidar((z @ m).astype("float32"), delta=0.0)) == pytest.approx(a, rel=1e-3)


def test_low_precision_input_gives_float32():
    rng = np.random.default_rng(8)
    z2 = rng.normal(size=(30, 6)).astype("float16")
    z3 = rng.normal(size=(20, 3, 6)).astype("float16")
    for score, z, ref in ((rankme, z2, np_rankme), (lidar, z3, np_lidar)):
        out = score(z)
        assert standardize_dtype(out.dtype) == "float32" and tuple(out.shape) == ()
        assert val(out) == pytest.approx(ref(z.astype("float64")), rel=1e-4)


def test_traced_with_unknown_sizes_matches_eager():
    rng = np.random.default_rng(9)
    z2 = rng.normal(size=(30, 6)).astype("float32")
    z3 = rng.normal(size=(20, 3, 6)).astype("float32")
    f2 = tf.function(rankme, input_signature=[tf.TensorSpec((None, 6), "float32")])
    f3 = tf.function(lidar, input_signature=[tf.TensorSpec((None, None, 6), "float32")])
    assert val(f2(z2)) == pytest.approx(val(rankme(z2)), rel=1e-5)
    assert val(f3(z3)) == pytest.approx(val(lidar(z3)), rel=1e-5)
    # Traced: the values are unknown when the checks run, so no error, but NaN comes out.
    z2[0, 0], z3[0, 0, 0] = np.nan, np.inf
    assert np.isnan(val(f2(z2))) and np.isnan(val(f3(z3)))


# ---- errors ------------------------------------------------------------------------------------

Z2, Z3 = np.ones((3, 2)), np.ones((3, 2, 2))


@pytest.mark.parametrize("call,match", [
    (lambda: rankme(np.ones((4, 3, 2))), r"rankme needs z as an \(n, d\) array, got shape "
                                         r"\(4, 3, 2\); flatten or pool"),
    (lambda: rankme(np.ones(5)), r"rankme needs z as an \(n, d\) array, got shape \(5,\)"),
    (lambda: rankme(np.ones((1, 3))), r"rankme needs at least 2 embeddings \(n >= 2\), got n=1; "
                                      "score a batch"),
    (lambda: rankme(np.ones((3, 0))), r"at least 1 embedding dimension \(d >= 1\), got d=0"),
    (lambda: lidar(Z2), r"lidar needs z as an \(n, q, d\) array.*stack the q views"),
    (lambda: lidar(np.ones((1, 3, 2))), r"lidar needs at least 2 images \(n >= 2\), got n=1"),
    (lambda: lidar(np.ones((4, 1, 2))), r"at least 2 views of each image \(q >= 2\), got q=1; "
                                        r"S_w needs several: embed q >= 2 augmentations"),
    (lambda: rankme([[1.0, np.nan], [0.0, 1.0]]), r"rankme: z has 1 NaN or inf entries"),
    (lambda: lidar(np.full((2, 2, 2), np.inf)), r"lidar: z has 8 NaN or inf entries.*fix or drop"),
    (lambda: lidar(np.full((2, 2, 2), 1e39)), r"lidar: z has 8 NaN or inf entries \(in float32\)"),
    (lambda: rankme(Z2, eps=-1e-3), r"eps .* must be a number >= 0, got -0.001"),
    (lambda: lidar(Z3, delta=-1.0), r"delta .* must be a number >= 0, got -1.0; the default is"),
    (lambda: lidar(Z3, eps=float("nan")), r"eps .* must be a number >= 0, got nan"),
    (lambda: lidar(Z3, delta="big"), r"delta .* must be a number >= 0, got 'big'"),
    (lambda: lidar(Z3, delta=True), r"delta .* must be a number >= 0, got True"),
])
def test_errors_name_the_problem(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
