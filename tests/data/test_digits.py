import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

import sslzoo.data  # noqa: F401  (registers the builder)
from sslzoo.data import load
from sslzoo.data.digits import Digits


def _all(data):
    xs, ys = zip(*[(x.numpy(), int(y)) for x, y in data.dataset])
    return np.stack(xs), np.array(ys)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tfds"))
    return d, load("digits", "train", d), load("digits", "test", d)


def test_registered_under_its_name():
    assert isinstance(tfds.builder("digits"), Digits)


def test_splits_sizes_shapes_and_disjoint(built):
    d, train, test = built
    assert (train.num_examples, test.num_examples) == (1200, 597)
    assert train.num_classes == 10 and train.image_size == 32
    x, y = _all(train)
    assert x.shape == (1200, 32, 32, 3) and x.dtype == np.uint8 and set(y) == set(range(10))
    builder = tfds.builder("digits", data_dir=d)
    idx = {s: {int(e["index"]) for e in builder.as_dataset(split=s)} for s in ("train", "test")}
    assert not idx["train"] & idx["test"]
    assert idx["train"] | idx["test"] == set(range(1797))


def test_content_matches_the_sklearn_image(built):
    d, _, _ = built
    ex = next(iter(tfds.builder("digits", data_dir=d).as_dataset(split="train")))
    src = load_digits().images[int(ex["index"])]
    img = ex["image"].numpy().astype(float)
    assert int(ex["label"]) == load_digits().target[int(ex["index"])]
    assert np.array_equal(img[..., 0], img[..., 2])                   # grey tiled to RGB
    # Half-pixel bilinear ×4 clamps at the borders: the corners are the scaled source corners.
    scaled = np.round(src * 255 / 16)
    corners = img[[0, 0, -1, -1], [0, -1, 0, -1], 0]
    assert np.array_equal(corners, scaled[[0, 0, -1, -1], [0, -1, 0, -1]])
    # Each 4×4 block of the 32×32 image sits over one source pixel: block means follow it.
    blocks = img[..., 0].reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), src.ravel())[0, 1] > 0.97
    assert abs(blocks.mean() - src.mean() * 255 / 16) < 3.0


def test_deterministic_across_builds_and_cached(tmp_path, built, monkeypatch):
    _, train, _ = built
    again = load("digits", "train", str(tmp_path))
    a, b = _all(train), _all(again)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # A second load from the same data_dir reads the cache and never regenerates.
    monkeypatch.setattr(Digits, "_generate_examples",
                        lambda *_: pytest.fail("digits was rebuilt"))
    assert load("digits", "test", str(tmp_path)).num_examples == 597


def test_registered_name_is_ours_only():
    assert tfds.builder_cls("digits") is Digits
    assert Digits.name == "digits" and str(Digits.VERSION) == "1.0.0"


def test_resized_on_request(built):
    d, _, _ = built
    data = load("digits", "test[:2]", d, image_size=48)
    x = np.stack([x.numpy() for x, _ in data.dataset])
    assert data.image_size == 48 and x.shape == (2, 48, 48, 3) and x.dtype == np.uint8


def test_split_slicing(built):
    d, _, _ = built
    assert load("digits", "train[:200]", d).num_examples == 200
    assert len(list(load("digits", "train[:10%]", d).dataset)) == 120
