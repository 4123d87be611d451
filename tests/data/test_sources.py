import socket
import time

import pytest

from sslzoo.data import load, tfds_source
from sslzoo.errors import ConfigError, DataError


def test_unknown_dataset_lists_choices(tmp_path):
    with pytest.raises(ConfigError, match="digits.*folder:PATH"):
        load("no_such_dataset", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="Did you mean .*mnist"):
        load("mnsit", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="namespace"):
        load("someone:their_set", data_dir=str(tmp_path))
    for bad in ("", "  ", None):
        with pytest.raises(ConfigError, match="no dataset"):
            load(bad)
    with pytest.raises(ConfigError, match="folder: needs a path"):
        load("folder:")
    with pytest.raises(ConfigError, match="image_size"):
        load("digits", data_dir=str(tmp_path), image_size=0)


@pytest.mark.parametrize("download", [True, False])
def test_unprepared_dataset_fails_fast_without_network(tmp_path, monkeypatch, download):
    calls = []
    monkeypatch.setattr(tfds_source, "network_available", lambda: calls.append(1) or False)
    t = time.time()
    with pytest.raises(DataError) as err:
        load("mnist", data_dir=str(tmp_path), download=download)
    assert time.time() - t < 30
    msg = str(err.value)
    assert str(tmp_path) in msg and str(tmp_path / "downloads" / "manual") in msg
    assert "tfds build mnist" in msg and "'mnist'" in msg
    assert ("no network" in msg) == download and len(calls) == int(download)
    assert not (tmp_path / "mnist").exists() or not any((tmp_path / "mnist").rglob("*.tfrecord*"))


def test_manual_download_dataset_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "network_available", lambda: pytest.fail("probed"))
    with pytest.raises(DataError, match="manual download") as err:
        load("imagenet2012", data_dir=str(tmp_path))
    assert str(tmp_path / "downloads" / "manual") in str(err.value)


def test_network_probe_on_local_ports(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.setattr(tfds_source, "DOWNLOAD_HOST", server.getsockname())
    assert tfds_source.network_available(timeout=1.0) is True
    port = server.getsockname()[1]
    server.close()  # nothing listens there any more: refused at once
    monkeypatch.setattr(tfds_source, "DOWNLOAD_HOST", ("127.0.0.1", port))
    t = time.time()
    assert tfds_source.network_available(timeout=1.0) is False
    assert time.time() - t < 2.0


def test_bad_split_names_the_splits(tmp_path):
    with pytest.raises(ConfigError, match="train, test|test, train"):
        load("digits", split="validation", data_dir=str(tmp_path))


def test_first_images_are_the_split_order_as_float32():
    import numpy as np
    import tensorflow as tf

    from sslzoo.data.images import ImageData

    x = np.arange(3 * 4 * 4 * 3, dtype="uint8").reshape(3, 4, 4, 3)
    data = ImageData(tf.data.Dataset.from_tensor_slices((x, np.zeros(3, "int32"))), 3, 1, 4,
                     "toy", "train")
    got = data.first_images(2)
    assert got.dtype == np.float32 and np.array_equal(got, x[:2].astype("float32"))
    assert data.first_images(10).shape == (3, 4, 4, 3)           # a smaller split: all of it
    assert data.first_images(0).shape == (0, 4, 4, 3)


def test_runs_started_together_prepare_a_dataset_once(tmp_path):
    # Two loads racing on an unprepared data_dir: before the lock, the second one's rename of
    # its incomplete folder failed with FileExistsError.
    import threading

    results, errors = [], []

    def one():
        try:
            results.append(load("digits", "train", data_dir=str(tmp_path)).num_examples)
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 2 and results[0] == results[1] > 0
