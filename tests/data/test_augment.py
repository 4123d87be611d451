import numpy as np
import pytest
import tensorflow as tf

from sslzoo.data.augment import (RECIPES, Recipe, TwoViews, get_recipe, parse_augment,
                                 view_pipeline, with_overrides)
from sslzoo.errors import ConfigError


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return tf.constant(rng.integers(0, 256, (16, 32, 32, 3)), tf.uint8)


def test_two_views_shapes_range_and_independence(images):
    v1, v2 = TwoViews("simclr", 32)(images)
    assert v1.shape == v2.shape == (16, 32, 32, 3)
    assert v1.dtype == tf.float32
    assert float(tf.reduce_min(v1)) >= 0.0 and float(tf.reduce_max(v1)) <= 255.0
    assert float(tf.reduce_mean(tf.abs(v1 - v2))) > 1.0           # the two views differ
    per_image = tf.reduce_mean(tf.abs(v1[0] - v1[1]))
    assert float(per_image) > 1.0


def test_views_are_random_across_calls_in_tf_data(images):
    views = TwoViews("simclr", 32)
    ds = tf.data.Dataset.from_tensors(images).repeat(2).map(views)
    (a, _), (b, _) = list(ds)
    assert float(tf.reduce_mean(tf.abs(a - b))) > 1.0


def test_views_are_a_function_of_the_seed(images):
    views = TwoViews("byol", 96)  # every op, blur and solarisation included
    big = tf.image.resize(tf.cast(images, tf.float32), (96, 96))
    a = views(big, seed=tf.constant([1, 2]))
    b = TwoViews("byol", 96)(big, seed=tf.constant([1, 2]))  # another layer, same seed
    c = views(big, seed=tf.constant([1, 3]))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert float(tf.reduce_mean(tf.abs(a[0] - c[0]))) > 1.0


def test_recipe_without_colour_ops_and_grayscale(images):
    r = Recipe(crop_scale=(1.0, 1.0), flip=False, jitter_p=0.0, gray_p=0.0)
    assert len(view_pipeline(r, 32)) == 1          # only the crop
    gray = view_pipeline(Recipe(gray_p=1.0, jitter_p=0.0), 32)[-1]
    out = gray(tf.cast(images, tf.float32), tf.constant([0, 0])).numpy()
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-3)


def test_recipes_and_blur_rule():
    assert {"simclr", "byol"} <= set(RECIPES)
    small = view_pipeline("simclr", 32)
    large = view_pipeline("simclr", 96)
    assert len(large) == len(small) + 1        # blur only for images > 64 px
    with pytest.raises(ConfigError, match="simclr"):
        get_recipe("nope")


def test_augment_overrides_parse_and_apply():
    over = parse_augment("crop_scale=0.5:1, flip=0, solarize=0:0, gray_p=0")
    assert over == {"crop_scale": (0.5, 1.0), "flip": False, "solarize": (0.0, 0.0),
                    "gray_p": 0.0}
    r = with_overrides("byol", over)
    assert r == Recipe(crop_scale=(0.5, 1.0), flip=False, jitter=(0.4, 0.4, 0.2, 0.1),
                       gray_p=0.0, blur=(1.0, 0.1), solarize=(0.0, 0.0))
    assert with_overrides("simclr", "") == "simclr" and parse_augment("") == {}
    plain = with_overrides("simclr", "crop_scale=1:1,flip=0,jitter_p=0,gray_p=0")
    assert len(view_pipeline(plain, 32)) == 1  # only the (full-area) crop is left


@pytest.mark.parametrize("text, match", [
    ("crop", "not FIELD=VALUE"), ("zoom=2", "recipe field"), ("crop_scale=0:1", "MIN:MAX"),
    ("crop_scale=0.8:0.5", "MIN:MAX"), ("flip=2", "0 or 1"), ("gray_p=1.5", "probability"),
    ("blur=0.5", "P1:P2"), ("jitter=0.4:0.4", "B:C:S:H"), ("gray_p=high", "probability")])
def test_bad_augment_overrides_are_named(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_augment(text)
