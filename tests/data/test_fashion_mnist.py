import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from sslzoo.data import fashion_mnist as fm
from sslzoo.data import load
from sslzoo.errors import ConfigError, DataError
from tests.conftest import require_fashion_mnist

NAMES = sorted(fm.ORIGINAL_MTIME)


def _system(name):
    require_fashion_mnist()
    with open(os.path.join(fm.SYSTEM_DIR, name), "rb") as f:
        return f.read()


def _original(name):
    """The file as first published: gzip header with FNAME and the original mtime."""
    raw = _system(name)
    body = fm._gzip_body(raw)
    return (b"\x1f\x8b\x08\x08" + int(fm.ORIGINAL_MTIME[name]).to_bytes(4, "little")
            + b"\x00\x03" + name[:-3].encode() + b"\0" + body)


def test_checksums_come_from_tfds_own_builder():
    sums = fm.expected_checksums()
    assert set(sums) == set(NAMES)
    assert sums["train-images-idx3-ubyte.gz"][0] == 26421880


@pytest.mark.parametrize("name", NAMES)
def test_restored_original_has_tfds_sha256(name):
    size, sha = fm.expected_checksums()[name]
    original = _original(name)
    assert len(original) == size and hashlib.sha256(original).hexdigest() == sha
    assert fm.original_bytes_match(name, original, size, sha)
    assert fm.original_bytes_match(name, _system(name), size, sha)
    assert gzip.decompress(original) == gzip.decompress(_system(name))


def test_flipped_or_truncated_bytes_do_not_match():
    name = "t10k-labels-idx1-ubyte.gz"
    size, sha = fm.expected_checksums()[name]
    raw = bytearray(_system(name))
    raw[len(raw) // 2] ^= 1
    assert not fm.original_bytes_match(name, bytes(raw), size, sha)
    assert not fm.original_bytes_match(name, _system(name)[:-1], size, sha)
    assert not fm.original_bytes_match(name, b"not gzip", size, sha)


def test_splits_features_and_content(fashion_dir):
    train, test = load("fashion_mnist", "train", fashion_dir), load("fashion_mnist", "test",
                                                                    fashion_dir)
    assert (train.num_examples, test.num_examples) == (60000, 10000)
    assert (train.num_classes, train.image_size) == (10, 32)
    xs, ys = [], []
    for x, y in test.dataset.batch(2500).as_numpy_iterator():
        xs.append(x), ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8
    assert not x[:, :2].any() and not x[:, -2:].any() and not x[:, :, :2].any()
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all()
    # The same images and labels as the idx files (TFDS stores them in its own order).
    raw_x = fm.parse_idx(_system("t10k-images-idx3-ubyte.gz"), "t", 10000, (28, 28))
    raw_y = fm.parse_idx(_system("t10k-labels-idx1-ubyte.gz"), "t", 10000, ())
    pairs = lambda imgs, labels: sorted(hashlib.sha1(i.tobytes()).hexdigest() + str(l)
                                        for i, l in zip(imgs, labels))
    assert pairs(x[:, 2:30, 2:30, 0], y) == pairs(raw_x, raw_y)
    assert np.bincount(y).tolist() == [1000] * 10


def test_tfds_own_builder_reads_the_cache(fashion_dir):
    builder = tfds.builder("fashion_mnist", data_dir=fashion_dir)
    assert builder.is_prepared() and builder.info.splits["train"].num_examples == 60000
    assert builder.info.features["label"].names[9] == "Ankle boot"


def test_image_sizes():
    raw = (np.arange(28 * 28).reshape(28, 28, 1) % 251).astype(np.uint8)
    image = tf.constant(raw)
    padded = fm.square_uint8(image, 32).numpy()
    assert padded.shape == (32, 32, 3) and (padded[2:30, 2:30, 1] == raw[..., 0]).all()
    assert (fm.square_uint8(image, 28).numpy()[..., 2] == raw[..., 0]).all()
    assert fm.square_uint8(image, 64).shape == (64, 64, 3)
    with pytest.raises(ConfigError, match="version"):
        fm.builder("fashion_mnist:1.0.0")
    assert fm.is_fashion_mnist("fashion_mnist:3.0.1") and not fm.is_fashion_mnist("mnist")


def _not_cached(data_dir):
    return not os.path.isdir(os.path.join(data_dir, "fashion_mnist", "3.0.1"))


def test_missing_files_name_the_package_and_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "SYSTEM_DIR", str(tmp_path / "nowhere"))
    d = str(tmp_path / "tfds")
    with pytest.raises(DataError, match=r"apt-get install dataset-fashion-mnist.*"
                       + os.path.join(d, "downloads", "manual").replace("/", ".")):
        load("fashion_mnist", "train", d)
    assert _not_cached(d)


def test_corrupt_manual_file_is_named_and_nothing_is_cached(tmp_path):
    require_fashion_mnist()
    d = tmp_path / "tfds"
    manual = d / "downloads" / "manual"
    manual.mkdir(parents=True)
    bad = manual / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(_system(bad.name)[:-100])  # truncated; the manual dir is searched first
    with pytest.raises(DataError, match=f"{bad}.*corrupt or truncated"):
        load("fashion_mnist", "train", str(d))
    assert _not_cached(str(d))


def test_manual_dir_comes_first(tmp_path, monkeypatch):
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    originals = {name: _original(name) for name in NAMES}
    for name, raw in originals.items():
        (manual / name).write_bytes(raw)
    monkeypatch.setattr(fm, "SYSTEM_DIR", str(tmp_path / "nowhere"))
    assert fm.find_files(str(tmp_path)) == originals
    shutil.rmtree(manual)
    with pytest.raises(DataError, match="found in neither"):
        fm.find_files(str(tmp_path))


def test_bad_idx_header_is_a_data_error():
    with pytest.raises(DataError, match="idx header"):
        fm.parse_idx(gzip.compress(b"\0\0\x08\x01" + b"\0" * 8), "x.gz", 10, ())
    with pytest.raises(DataError, match="does not decompress"):
        fm.parse_idx(b"\x1f\x8b\x08\x00garbage", "x.gz", 10, ())
