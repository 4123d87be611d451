"""MAE's patchify and reconstruction loss against a float64 NumPy loop of the formula."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo.errors import ConfigError
from sslzoo.losses import mae_loss, patchify
from tests.losses import reference_more as ref


def ref_patchify(images, p):
    """Patch (i, j) of an (N, H, W, C) image, row-major over the grid, flattened row by row."""
    n, h, w, _ = images.shape
    return np.array([[images[k, i * p:(i + 1) * p, j * p:(j + 1) * p].reshape(-1)
                      for i in range(h // p) for j in range(w // p)] for k in range(n)])


def ref_mae(pred, target, mask, norm_pix):
    """Σ over masked patches of mean_k (pred − t)², over their count; t standardised per patch
    with the unbiased variance (K − 1) + 1e-6 when norm_pix."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    total, count = 0.0, 0.0
    for n in range(pred.shape[0]):
        for l in range(pred.shape[1]):
            t = target[n, l]
            if norm_pix:
                t = (t - t.mean()) / np.sqrt(t.var(ddof=1) + 1e-6)
            total += mask[n, l] * np.mean((pred[n, l] - t) ** 2)
            count += mask[n, l]
    return total / count


def _arrays(seed=0, n=3, length=5, k=12):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(n, length, k)).astype(np.float32)
    target = (rng.normal(size=(n, length, k)) * 3 + 1).astype(np.float32)
    mask = (rng.random((n, length)) < 0.6).astype(np.float32)
    mask[0, 0] = 1.0  # at least one masked patch
    return pred, target, mask


def test_patchify_order_and_shape():
    images = np.random.default_rng(0).normal(size=(2, 8, 12, 3)).astype(np.float32)
    got = np.asarray(patchify(images, 4))
    assert got.shape == (2, 6, 48)
    np.testing.assert_array_equal(got, ref_patchify(images, 4))
    # Patch 4 of a 2 × 3 grid is row 1, column 1: pixels [4:8, 4:8].
    np.testing.assert_array_equal(got[1, 4], images[1, 4:8, 4:8].reshape(-1))


def test_patchify_follows_a_vit_patch_embedding():
    """Token l of a patch-embedding convolution (kernel = stride = p) is the dot product of its
    kernel with patch l as patchify flattens it."""
    images = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    conv = keras.layers.Conv2D(5, 4, strides=4, use_bias=False)
    tokens = np.asarray(conv(images)).reshape(2, 4, 5)
    kernel = np.asarray(conv.kernel).reshape(48, 5)  # (p, p, C, D) flattened as patchify does
    np.testing.assert_allclose(np.asarray(patchify(images, 4)) @ kernel, tokens, atol=1e-5)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_matches_reference(norm_pix):
    for seed in range(3):
        pred, target, mask = _arrays(seed)
        want = ref_mae(pred, target, mask, norm_pix)
        assert float(mae_loss(pred, target, mask, norm_pix)) == pytest.approx(want, rel=1e-5)


def test_known_values():
    # One masked patch [1, 3]: mean 2, unbiased variance 2, so the normalised target is
    # ±1/√(2 + 1e-6) and a zero prediction scores 1/(2 + 1e-6). The visible patch's large
    # error does not count.
    target = np.array([[[1.0, 3.0], [0.0, 100.0]]], np.float32)
    pred = np.zeros_like(target)
    mask = np.array([[1.0, 0.0]], np.float32)
    assert float(mae_loss(pred, target, mask)) == pytest.approx(1 / (2 + 1e-6), rel=1e-6)
    assert float(mae_loss(pred, target, mask, norm_pix=False)) == pytest.approx(5.0, rel=1e-6)
    assert float(mae_loss(target, target, mask, norm_pix=False)) == 0.0
    # Both patches masked: the mean of the two per-patch errors (100²/2 and 5).
    both = np.ones((1, 2), np.float32)
    assert float(mae_loss(pred, target, both, False)) == pytest.approx((5.0 + 5000.0) / 2)
    # A constant patch normalises to zeros (its variance is 0, the 1e-6 keeps it finite).
    flat = np.full((1, 1, 4), 7.0, np.float32)
    assert float(mae_loss(np.ones_like(flat), flat, np.ones((1, 1), np.float32))) == 1.0
    assert float(mae_loss(pred, target, np.zeros((1, 2), np.float32))) == 0.0  # none masked


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_inputs(dtype):
    pred, target, mask = _arrays(4)
    ref.assert_mixed_precision(lambda p, t: mae_loss(p, t, mask), [pred, target], dtype)


def test_gradient_flows_through_pred_only():
    pred, target, mask = _arrays(5)
    p, t = tf.Variable(pred), tf.Variable(target)
    with tf.GradientTape() as tape:
        loss = mae_loss(p, t, mask)
    g_pred, g_target = tape.gradient(loss, [p, t])
    assert g_target is None
    norm = (target - target.mean(-1, keepdims=True)) / np.sqrt(
        target.var(-1, ddof=1, keepdims=True) + 1e-6)
    want = 2 * (pred - norm) / pred.shape[-1] * mask[..., None] / mask.sum()
    np.testing.assert_allclose(g_pred.numpy(), want, atol=1e-6)


def test_errors():
    pred, target, mask = _arrays(6)
    with pytest.raises(ConfigError, match="same shape"):
        mae_loss(pred, target[:, :, :4], mask)
    with pytest.raises(ConfigError, match=r"\(N, L, K\)"):
        mae_loss(pred[0], target[0], mask)
    with pytest.raises(ConfigError, match=r"mask must be \(N, L\)"):
        mae_loss(pred, target, mask[:, :2])
    with pytest.raises(ConfigError, match="norm_pix must be a boolean"):
        mae_loss(pred, target, mask, norm_pix="yes")
    with pytest.raises(ConfigError, match="at least 2 values per patch"):
        mae_loss(pred[..., :1], target[..., :1], mask)
    with pytest.raises(ConfigError, match="positive int"):
        patchify(np.zeros((1, 8, 8, 3)), 0)
    with pytest.raises(ConfigError, match=r"\(N, H, W, C\)"):
        patchify(np.zeros((8, 8, 3)), 4)
    with pytest.raises(ConfigError, match="multiples of the patch size 3"):
        patchify(np.zeros((1, 8, 8, 3)), 3)
