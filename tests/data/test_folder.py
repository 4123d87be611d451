import numpy as np
import pytest
import tensorflow as tf

from sslzoo.data import load
from sslzoo.errors import DataError


def _png(path, h, w, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    path.write_bytes(tf.io.encode_png(img).numpy())


def test_class_folders_skip_corrupt_files(tmp_path, caplog):
    _png(tmp_path / "cat" / "a.png", 10, 12, 10)
    _png(tmp_path / "cat" / "b.PNG", 20, 20, 20)
    _png(tmp_path / "dog" / "c.png", 8, 8, 30)
    (tmp_path / "dog" / "bad.png").write_bytes(b"not an image at all")
    good = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()
    (tmp_path / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    with caplog.at_level("WARNING"):
        data = load(f"folder:{tmp_path}", image_size=16)
    assert data.num_examples == 3 and data.num_classes == 2
    xs, ys = zip(*[(x.numpy(), int(y)) for x, y in data.dataset])
    assert ys == (0, 0, 1)
    assert all(x.shape == (16, 16, 3) and x.dtype == np.uint8 for x in xs)
    assert [int(x.mean()) for x in xs] == [10, 20, 30]
    assert "skipped 2 of 5" in caplog.text and "bad.png" in caplog.text


def test_flat_folder_is_unlabeled(tmp_path):
    for i in range(3):
        _png(tmp_path / f"{i}.png", 32, 48, i)
    data = load(f"folder:{tmp_path}", image_size=24)
    assert data.num_classes is None and data.num_examples == 3
    assert {int(y) for _, y in data.dataset} == {-1}
    assert next(iter(data.dataset))[0].shape == (24, 24, 3)


def test_empty_missing_and_all_corrupt_folders(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load(f"folder:{tmp_path}")
    with pytest.raises(DataError, match="does not exist"):
        load(f"folder:{tmp_path}/nope")
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="could be decoded"):
        load(f"folder:{tmp_path}")


def test_other_formats_grey_mixed_and_hidden(tmp_path, caplog):
    from PIL import Image

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    rgb = np.full((6, 9, 3), 200, np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a" / "x.JPG", quality=95)
    Image.fromarray(rgb).save(tmp_path / "a" / "y.bmp")
    Image.fromarray(np.full((5, 5), 70, np.uint8)).save(tmp_path / "b" / "grey.png")
    Image.fromarray(rgb).save(tmp_path / "b" / "z.gif")
    Image.fromarray(rgb).save(tmp_path / ".hidden" / "skip.png")
    Image.fromarray(rgb).save(tmp_path / "top.png")
    with caplog.at_level("WARNING"):
        data = load(f"folder:{tmp_path}", split="test", image_size=8)
    assert "top-level images are ignored" in caplog.text
    assert (data.num_examples, data.num_classes, data.split) == (4, 2, "test")
    xs, ys = zip(*[(x.numpy(), int(y)) for x, y in data.dataset])
    assert ys == (0, 0, 1, 1)
    assert xs[2].shape == (8, 8, 3) and (xs[2] == 70).all()  # grey tiled to RGB
    assert abs(xs[0].astype(float).mean() - 200) < 3 and abs(xs[1].mean() - 200) < 1


def test_default_size_and_centre_crop(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 255  # a centred white band half as wide as the image
    (tmp_path / "wide.png").write_bytes(tf.io.encode_png(img).numpy())
    data = load(f"folder:{tmp_path}")
    x = next(iter(data.dataset))[0].numpy()
    assert data.image_size == 224 and x.shape == (224, 224, 3)
    # The crop keeps the centre band only (a left or squashed crop would show black).
    assert x[:, 8:-8].min() == 255 and x.mean() > 250


def test_split_sub_folders_are_used_when_present(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            _png(tmp_path / split / "a" / f"{i}.png", 8, 8, 5)
    assert load(f"folder:{tmp_path}", split="train", image_size=8).num_examples == 3
    assert load(f"folder:{tmp_path}", split="test", image_size=8).num_examples == 2
