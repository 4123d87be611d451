import numpy as np
import pytest
import tensorflow as tf

from sslzoo.data import image_ops

SEED = tf.constant([3, 4])


def ramp(n=64, size=32):
    """Images whose red channel is the column index, green the row index (×8)."""
    col = np.tile(np.arange(size, dtype="float32")[None, :], (size, 1)) * 8
    img = np.stack([col, col.T, np.full_like(col, 100.0)], -1)
    return tf.constant(np.repeat(img[None], n, 0))


def test_full_crop_is_the_image_and_a_quarter_area_crop_spans_half_the_side():
    x = ramp()
    full = image_ops.resized_crop(x, SEED, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(full.numpy(), x.numpy(), atol=1e-3)
    quarter = image_ops.resized_crop(x, SEED, 32, scale=(0.25, 0.25), ratio=(1.0, 1.0)).numpy()
    span = quarter[:, 0, -1, 0] - quarter[:, 0, 0, 0]        # columns covered, × 8
    np.testing.assert_allclose(span, 31 * 8 * 0.5, atol=1e-2)
    offsets = quarter[:, 0, 0, 0] / 8
    assert offsets.min() >= 0 and offsets.max() <= 15.5 + 1e-3 and offsets.std() > 2


def test_crop_areas_and_aspects_stay_in_range():
    x = ramp(512)
    out = image_ops.resized_crop(x, SEED, 32, scale=(0.2, 1.0)).numpy()
    w = (out[:, 0, -1, 0] - out[:, 0, 0, 0]) / (31 * 8)   # crop side / image side
    h = (out[:, -1, 0, 1] - out[:, 0, 0, 1]) / (31 * 8)
    area = w * h
    # A side is clipped to the image only when the area exceeds 3/4, so every crop keeps at
    # least 0.2 of the image.
    assert area.min() >= 0.2 - 1e-3 and area.max() <= 1 + 1e-3
    assert 0.2 < np.median(area) < 0.8 and area.min() < 0.25 and area.max() > 0.9
    inside = (w < 1 - 1e-3) & (h < 1 - 1e-3)
    aspect = w[inside] / h[inside]
    assert aspect.min() >= 3 / 4 - 1e-3 and aspect.max() <= 4 / 3 + 1e-3


def test_flip_mirrors_about_half_of_the_images():
    x = ramp(2000, 8)
    out = image_ops.flip(x, SEED).numpy()
    mirrored = np.all(out == x.numpy()[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == x.numpy(), axis=(1, 2, 3))
    assert np.all(mirrored ^ kept) and 0.45 < mirrored.mean() < 0.55


def test_jitter_with_zero_strength_is_the_identity_and_stays_in_range():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (16, 8, 8, 3)).astype("float32"))
    same = image_ops.color_jitter(x, SEED, 0.0, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(same.numpy(), x.numpy(), atol=0.05)
    out = image_ops.color_jitter(x, SEED).numpy()
    assert out.min() >= 0 and out.max() <= 255 and np.abs(out - x.numpy()).mean() > 5


def test_brightness_shifts_each_image_by_one_offset():
    x = tf.fill((200, 4, 4, 3), 128.0)
    out = image_ops.color_jitter(x, SEED, 0.4, 0.0, 0.0, 0.0).numpy()
    shift = out[:, 0, 0, 0] - 128
    assert np.allclose(out, out[:, :1, :1, :1], atol=0.05)   # one offset per image
    assert shift.min() >= -0.4 * 255 - 0.1 and shift.max() <= 127 + 0.1 and shift.std() > 20


def test_grayscale_blur_and_solarize():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(0, 255, (8, 16, 16, 3)).astype("float32"))
    g = image_ops.grayscale(x).numpy()
    np.testing.assert_array_equal(g[..., 0], g[..., 2])
    flat = tf.fill((4, 16, 16, 3), 77.0)
    np.testing.assert_allclose(image_ops.gaussian_blur(flat, SEED, 5).numpy(), 77.0, atol=1e-3)
    blurred = image_ops.gaussian_blur(x, SEED, 5, sigma=(2.0, 2.0)).numpy()
    assert blurred.std() < 0.7 * x.numpy().std()
    assert abs(blurred.mean() - x.numpy().mean()) < 2
    sharp = image_ops.gaussian_blur(x, SEED, 5, sigma=(0.1, 0.1)).numpy()
    np.testing.assert_allclose(sharp, x.numpy(), atol=1e-2)
    s = image_ops.solarize(tf.constant([[0.0, 127.0, 128.0, 255.0]])).numpy()
    np.testing.assert_array_equal(s, [[0.0, 127.0, 127.0, 0.0]])


@pytest.mark.parametrize("p, expected", [(0.0, 0.0), (1.0, 1.0), (0.3, 0.3)])
def test_random_apply_applies_with_probability_p(p, expected):
    x = tf.zeros((2000, 2, 2, 3))
    out = image_ops.random_apply(lambda v, s: v + 1.0, p, x, SEED).numpy()
    assert abs(out[:, 0, 0, 0].mean() - expected) < 0.04


def test_ops_are_pure_functions_of_the_seed():
    x = ramp(8)
    for op in (lambda v, s: image_ops.resized_crop(v, s, 32), image_ops.flip,
               image_ops.color_jitter, lambda v, s: image_ops.gaussian_blur(v, s, 3)):
        a, b = op(x, SEED).numpy(), op(x, SEED).numpy()
        np.testing.assert_array_equal(a, b)
