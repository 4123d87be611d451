"""Tests of the coding rate, compressed coding rate and ΔR against closed forms and NumPy."""
import time

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from keras.backend import standardize_dtype

from sslzoo.losses.coding_rate import (
    _logdet_i_plus,
    _pick_side,
    coding_rate,
    coding_rate_reduction,
    compressed_coding_rate,
    feature_map_delta_r,
    pair_delta_r,
    pair_labels,
)
from sslzoo.errors import ConfigError


# ---- independent NumPy reference (float64, d×d formula, numpy.linalg.slogdet) ---------------

def np_rate(Z, eps=0.5):
    Z = np.asarray(Z, "float64")
    m, d = Z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (m * eps**2) * Z.T @ Z)[1]


def np_compressed(Z, Pi, eps=0.5):
    Z, Pi = np.asarray(Z, "float64"), np.asarray(Pi, "float64")
    m, d = Z.shape
    total = 0.0
    for j in range(Pi.shape[1]):
        mj = Pi[:, j].sum()
        if mj > 0:
            G = Z.T @ np.diag(Pi[:, j]) @ Z
            total += mj / (2 * m) * np.linalg.slogdet(np.eye(d) + d / (mj * eps**2) * G)[1]
    return total


def onehot(y, k):
    return np.eye(k)[np.asarray(y)]


def soft(rng, m, k):
    P = rng.random((m, k)) ** 3
    return (P / P.sum(axis=1, keepdims=True)).astype("float32")


def val(x):
    return float(ops.convert_to_numpy(x))


def rel_close(a, b, rtol):
    assert abs(a - b) <= rtol * abs(b) + 1e-6, (a, b)


# ---- agreement with the reference ------------------------------------------------------------

@pytest.mark.parametrize("m,d", [(24, 6), (6, 20), (10, 10)])
@pytest.mark.parametrize("eps", [0.5, 0.1])
def test_matches_numpy_reference(m, d, eps):
    rng = np.random.default_rng(m * 100 + d)
    Z = rng.normal(size=(m, d)).astype("float32")
    y = rng.integers(0, 3, size=m)
    y[:3] = [0, 1, 2]
    rel_close(val(coding_rate(Z, eps)), np_rate(Z, eps), 1e-4)
    rel_close(val(compressed_coding_rate(Z, y, eps)), np_compressed(Z, onehot(y, 3), eps), 1e-4)
    P = soft(rng, m, 4)
    rel_close(val(compressed_coding_rate(Z, P, eps)), np_compressed(Z, P, eps), 1e-4)
    dr, r, rc = coding_rate_reduction(Z, P, eps)
    rel_close(val(dr), np_rate(Z, eps) - np_compressed(Z, P, eps), 1e-4)
    assert val(dr) == pytest.approx(val(r) - val(rc), abs=1e-6)


def test_normalize_rows_first():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(8, 5)).astype("float32") * 7
    Z[3] = 0
    Zn = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    rel_close(val(coding_rate(Z, normalize=True)), np_rate(Zn), 1e-4)
    y = np.arange(8) % 2
    dr, _, _ = coding_rate_reduction(Z, y, normalize=True)
    rel_close(val(dr), np_rate(Zn) - np_compressed(Zn, onehot(y, 2)), 1e-4)
    assert abs(val(coding_rate(Z)) - val(coding_rate(Z, normalize=True))) > 0.1


# ---- closed forms -----------------------------------------------------------------------------

@pytest.mark.parametrize("m,d", [(3, 8), (8, 8), (5, 64)])
def test_rate_of_orthonormal_rows(m, d):
    eps = 0.5
    Z = np.eye(d, dtype="float32")[:m]
    expected = 0.5 * m * np.log(1 + d / (m * eps**2))
    rel_close(val(coding_rate(Z, eps)), expected, 1e-5)


def test_repeated_point_classes_rank_one_closed_form():
    eps, d = 0.5, 6
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(3, d)).astype("float32")
    sizes = [2, 3, 5]
    y = np.repeat(np.arange(3), sizes)
    Z = xs[y]
    m = len(y)
    expected = sum(
        mj / (2 * m) * np.log(1 + d / (mj * eps**2) * mj * float(xs[j] @ xs[j]))
        for j, mj in enumerate(sizes))
    rel_close(val(compressed_coding_rate(Z, y, eps)), expected, 1e-5)


def test_compressed_rate_vanishes_as_class_points_shrink():
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(2, 4)).astype("float32")
    y = np.array([0, 0, 0, 1, 1, 1])
    rcs = [val(compressed_coding_rate(xs[y] * s, y)) for s in (1.0, 1e-1, 1e-2, 1e-4)]
    assert all(a > b for a, b in zip(rcs, rcs[1:]))
    assert rcs[-1] < 1e-5
    assert rcs[0] > 1.0


# ---- properties -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_delta_r_nonnegative(seed):
    rng = np.random.default_rng(seed)
    m, d = int(rng.integers(4, 16)), int(rng.integers(2, 16))
    Z = rng.normal(size=(m, d)).astype("float32") * rng.uniform(0.1, 3)
    y = rng.integers(0, 3, size=m)
    assert val(coding_rate_reduction(Z, y, num_classes=3)[0]) >= -1e-5
    assert val(coding_rate_reduction(Z, soft(rng, m, 3))[0]) >= -1e-5


def test_permutation_invariance():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(10, 7)).astype("float32")
    y = rng.integers(0, 3, size=10)
    perm = rng.permutation(10)
    a = coding_rate_reduction(Z, y, num_classes=3)
    b = coding_rate_reduction(Z[perm], y[perm], num_classes=3)
    for u, v in zip(a, b):
        rel_close(val(u), val(v), 1e-5)


def test_soft_one_hot_equals_hard_labels():
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(9, 4)).astype("float32")
    y = rng.integers(0, 3, size=9)
    y[:3] = [0, 1, 2]
    hard = compressed_coding_rate(Z, y)
    soft_rc = compressed_coding_rate(Z, onehot(y, 3).astype("float32"))
    assert val(hard) == pytest.approx(val(soft_rc), rel=1e-6)


def test_empty_classes_contribute_zero():
    rng = np.random.default_rng(6)
    Z = rng.normal(size=(8, 12)).astype("float32")  # d > m: m side with a zero-weight class
    y = np.array([0, 0, 2, 2, 2, 4, 4, 4])
    dense = np.array([0, 0, 1, 1, 1, 2, 2, 2])
    a = val(compressed_coding_rate(Z, y, num_classes=6))
    assert np.isfinite(a)
    assert a == pytest.approx(val(compressed_coding_rate(Z, dense)), rel=1e-5)


def test_gradient_finite_with_empty_class_on_both_sides():
    rng = np.random.default_rng(7)
    for shape in [(6, 3), (4, 9)]:
        Z = tf.constant(rng.normal(size=shape).astype("float32"))
        y = np.array([0, 0, 1, 1, 1, 1][: shape[0]])
        with tf.GradientTape() as tape:
            tape.watch(Z)
            dr, _, _ = coding_rate_reduction(Z, y, num_classes=4)
        g = tape.gradient(dr, Z).numpy()
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


# ---- Gram side --------------------------------------------------------------------------------

@pytest.mark.parametrize("m,d", [(12, 5), (5, 12)])
def test_d_side_and_m_side_agree(m, d):
    rng = np.random.default_rng(m + d)
    Z = rng.normal(size=(m, d)).astype("float32")
    vd, vm = val(_logdet_i_plus(1.7, Z, "d")), val(_logdet_i_plus(1.7, Z, "m"))
    rel_close(vd, vm, 1e-4)
    rel_close(vd, np.linalg.slogdet(np.eye(d) + 1.7 * Z.T.astype("float64") @ Z)[1], 1e-4)
    w = rng.random((3, m)).astype("float32")
    w[1, :2] = 0.0
    wd = ops.convert_to_numpy(_logdet_i_plus(2.0, Z[None], "d", weights=w))
    wm = ops.convert_to_numpy(_logdet_i_plus(2.0, Z[None], "m", weights=w))
    np.testing.assert_allclose(wd, wm, rtol=1e-4)
    assert _pick_side(m, d, "auto") == ("d" if d <= m else "m")
    with pytest.raises(ConfigError, match="side"):
        _logdet_i_plus(1.0, Z, "x")


def test_unknown_batch_size_picks_the_side_when_it_runs():
    """Traced with an unknown number of rows (a step retraced for a new batch size), auto
    chooses per call; both orders of m and d match float64 slogdet."""
    fn = tf.function(lambda z: _logdet_i_plus(1.3, z),
                     input_signature=[tf.TensorSpec((None, 6), tf.float32)])
    graph = fn.get_concrete_function().graph
    assert any(op.type in ("If", "StatelessIf") for op in graph.get_operations())
    rng = np.random.default_rng(5)
    for m in (3, 20):
        Z = rng.normal(size=(m, 6)).astype("float32")
        want = np.linalg.slogdet(np.eye(6) + 1.3 * Z.T.astype("float64") @ Z)[1]
        rel_close(float(fn(Z)), want, 1e-4)


def test_huge_d_small_m_is_cheap_and_correct():
    rng = np.random.default_rng(8)
    Z = rng.normal(size=(8, 4096)).astype("float32")
    y = np.arange(8) % 4
    coding_rate_reduction(Z, y)  # warm-up
    t0 = time.perf_counter()
    dr, r, _ = coding_rate_reduction(Z, y)
    elapsed = time.perf_counter() - t0
    assert _pick_side(8, 4096, "auto") == "m"
    assert elapsed < 2.0
    K = Z.astype("float64") @ Z.T.astype("float64")
    ref = 0.5 * np.linalg.slogdet(np.eye(8) + 4096 / (8 * 0.25) * K)[1]
    rel_close(val(r), ref, 1e-4)
    assert np.isfinite(val(dr))


# ---- dtypes and degenerate input -------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_low_and_high_precision_inputs_give_float32(dtype):
    rng = np.random.default_rng(9)
    Z32 = rng.normal(size=(10, 6)).astype("float32")
    y = np.arange(10) % 3
    Zx = ops.cast(Z32, dtype)
    Zback = ops.cast(Zx, "float32")  # the representable values
    out = coding_rate_reduction(Zx, y)
    ref = coding_rate_reduction(Zback, y)
    for u, v in zip(out, ref):
        assert standardize_dtype(u.dtype) == "float32"
        rel_close(val(u), val(v), 1e-3)
    assert standardize_dtype(pair_delta_r(Zx[:5], Zx[5:])[0].dtype) == "float32"


def test_degenerate_inputs_are_finite():
    rng = np.random.default_rng(10)
    zero = np.zeros((6, 4), "float32")
    y = np.array([0, 0, 0, 1, 1, 1])
    dr, r, rc = coding_rate_reduction(zero, y)
    assert val(r) == 0.0 and val(rc) == 0.0 and val(dr) == 0.0
    assert val(coding_rate(zero, normalize=True)) == 0.0
    low_rank = (rng.normal(size=(12, 1)) @ rng.normal(size=(1, 8))).astype("float32")
    for Z in (low_rank, low_rank.T[:, :7].copy()):
        out = coding_rate_reduction(Z, np.arange(Z.shape[0]) % 2)
        assert all(np.isfinite(val(v)) for v in out)
    two = rng.normal(size=(2, 5)).astype("float32")
    out = coding_rate_reduction(two, np.array([0, 1]))
    assert all(np.isfinite(val(v)) for v in out)
    # two singleton classes: Rc = Σ ½·½·log(1 + d‖x‖²/ε²)
    d = 5
    expected = sum(0.25 * np.log(1 + d * float(x @ x) / 0.25) for x in two)
    rel_close(val(out[2]), expected, 1e-5)


# ---- pairs ------------------------------------------------------------------------------------

def test_pair_labels():
    np.testing.assert_array_equal(ops.convert_to_numpy(pair_labels(3)), [0, 1, 2, 0, 1, 2])
    with pytest.raises(ConfigError, match="n"):
        pair_labels(0)


@pytest.mark.parametrize("n,d,normalize", [(6, 4, True), (5, 16, False), (1, 3, True)])
def test_pair_path_equals_generic_path(n, d, normalize):
    rng = np.random.default_rng(n * d)
    z1 = rng.normal(size=(n, d)).astype("float32")
    z2 = rng.normal(size=(n, d)).astype("float32")
    z2[0] = z1[0]                                  # identical pair (rank 1)
    if n > 2:
        z1[1] = 0.0                                # zero row
        z2[2] = 2.0 * z1[2] + 1e-3 * z2[2]         # nearly parallel pair
    fast = pair_delta_r(z1, z2, normalize=normalize)
    generic = coding_rate_reduction(np.concatenate([z1, z2]), pair_labels(n),
                                    num_classes=n, normalize=normalize)
    for u, v in zip(fast, generic):
        rel_close(val(u), val(v), 1e-4)


def test_pair_rc_matches_numpy():
    rng = np.random.default_rng(11)
    z1 = rng.normal(size=(4, 6)).astype("float32")
    z2 = rng.normal(size=(4, 6)).astype("float32")
    Z = np.concatenate([z1, z2])
    _, r, rc = pair_delta_r(z1, z2, normalize=False)
    rel_close(val(r), np_rate(Z), 1e-4)
    rel_close(val(rc), np_compressed(Z, onehot(np.tile(np.arange(4), 2), 4)), 1e-4)


# ---- feature maps -----------------------------------------------------------------------------

def test_feature_map_modes_match_hand_computation():
    rng = np.random.default_rng(12)
    f = rng.normal(size=(6, 2, 3, 4)).astype("float32")
    y = np.array([0, 1, 0, 1, 2, 2])
    Pi = onehot(y, 3)
    pooled = f.mean(axis=(1, 2))
    dr, r, rc = feature_map_delta_r(f, y, mode="pool")
    rel_close(val(r), np_rate(pooled), 1e-4)
    rel_close(val(rc), np_compressed(pooled, Pi), 1e-4)
    locs = [f[:, h, w, :] for h in range(2) for w in range(3)]
    r_ref = np.mean([np_rate(x) for x in locs])
    rc_ref = np.mean([np_compressed(x, Pi) for x in locs])
    dr, r, rc = feature_map_delta_r(f, y, mode="per_location")
    rel_close(val(r), r_ref, 1e-4)
    rel_close(val(rc), rc_ref, 1e-4)
    rel_close(val(dr), r_ref - rc_ref, 1e-4)
    # normalisation is per location C-vector
    locs_n = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in locs]
    _, r, _ = feature_map_delta_r(f, y, mode="per_location", normalize=True)
    rel_close(val(r), np.mean([np_rate(x) for x in locs_n]), 1e-4)


def test_feature_map_errors():
    f = np.zeros((4, 2, 2, 3), "float32")
    with pytest.raises(ConfigError, match="valid choices"):
        feature_map_delta_r(f, np.arange(4) % 2, mode="mean")
    with pytest.raises(ConfigError, match=r"\(m, H, W, C\)"):
        feature_map_delta_r(f[0], np.arange(4) % 2)
    with pytest.raises(ConfigError, match="at least 2"):
        feature_map_delta_r(f[:1], np.array([0]), mode="per_location")


# ---- tracing ------------------------------------------------------------------------------------

def test_traces_under_tf_function_with_static_num_classes():
    rng = np.random.default_rng(13)

    @tf.function(jit_compile=False)
    def step(Z, y):
        return coding_rate_reduction(Z, y, num_classes=3)

    for m, d in [(9, 4), (5, 11)]:
        Z = rng.normal(size=(m, d)).astype("float32")
        y = (np.arange(m) % 3).astype("int32")
        out = step(tf.constant(Z), tf.constant(y))
        rel_close(float(out[0]), np_rate(Z) - np_compressed(Z, onehot(y, 3)), 1e-4)

    @tf.function(jit_compile=False, input_signature=[
        tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None, 2), tf.float32)])
    def dynamic(Z, P):  # unknown batch size: d side, soft membership
        return coding_rate_reduction(Z, P)

    Z = rng.normal(size=(7, 4)).astype("float32")
    P = soft(rng, 7, 2)
    rel_close(float(dynamic(Z, P)[0]), np_rate(Z) - np_compressed(Z, P), 1e-4)

    @tf.function(jit_compile=False, autograph=False)  # no autograph: the ConfigError is not wrapped
    def no_k(Z, y):
        return coding_rate_reduction(Z, y)

    with pytest.raises(ConfigError, match="num_classes"):
        no_k(tf.constant(Z), tf.constant(np.arange(7) % 2))


# ---- validation ---------------------------------------------------------------------------------

def test_bad_input_errors():
    Z = np.ones((4, 3), "float32")
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="eps"):
        coding_rate(Z, eps=0.0)
    with pytest.raises(ConfigError, match="eps"):
        coding_rate_reduction(Z, y, eps=-1.0)
    with pytest.raises(ConfigError, match=r"\(m, d\)"):
        coding_rate(np.ones((3,), "float32"))
    assert coding_rate(np.ones((2, 3, 4), "float32")).shape == (2,)  # a stack: one rate each
    with pytest.raises(ConfigError, match="at least 2 samples"):
        coding_rate(np.ones((2, 1, 4), "float32"))
    with pytest.raises(ConfigError, match="at least 2 samples"):
        coding_rate(np.ones((1, 3), "float32"))
    with pytest.raises(ConfigError, match="labels"):
        compressed_coding_rate(Z, np.array([0, 1, 0]))
    with pytest.raises(ConfigError, match="membership matrix rows"):
        compressed_coding_rate(Z, np.full((3, 2), 0.5, "float32"))
    with pytest.raises(ConfigError, match="columns"):
        compressed_coding_rate(Z, np.full((4, 2), 0.5, "float32"), num_classes=3)
    with pytest.raises(ConfigError, match="rows summing to 1"):
        compressed_coding_rate(Z, np.full((4, 2), 0.7, "float32"))
    with pytest.raises(ConfigError, match=">= 0"):
        compressed_coding_rate(Z, np.array([0, -1, 0, 1]))
    with pytest.raises(ConfigError, match="out of range"):
        compressed_coding_rate(Z, np.array([0, 1, 2, 1]), num_classes=2)
    with pytest.raises(ConfigError, match="num_classes"):
        compressed_coding_rate(Z, y, num_classes=0)
    with pytest.raises(ConfigError, match="same shape"):
        pair_delta_r(Z, np.ones((4, 2), "float32"))
