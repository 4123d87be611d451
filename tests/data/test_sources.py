import time

import pytest

from sslzoo.data import load, tfds_source
from sslzoo.errors import ConfigError, DataError


def test_unknown_dataset_lists_choices(tmp_path):
    with pytest.raises(ConfigError, match="digits.*folder:PATH"):
        load("no_such_dataset", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="Did you mean .*mnist"):
        load("mnsit", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="no dataset"):
        load("")


@pytest.mark.parametrize("download", [True, False])
def test_unprepared_dataset_fails_fast_without_network(tmp_path, monkeypatch, download):
    monkeypatch.setattr(tfds_source, "network_available", lambda timeout=3.0: False)
    t = time.time()
    with pytest.raises(DataError) as err:
        load("mnist", data_dir=str(tmp_path), download=download)
    assert time.time() - t < 30
    msg = str(err.value)
    assert str(tmp_path) in msg and "manual" in msg and "tfds build mnist" in msg


def test_bad_split_names_the_splits(tmp_path):
    with pytest.raises(ConfigError, match="train, test|test, train"):
        load("digits", split="validation", data_dir=str(tmp_path))
