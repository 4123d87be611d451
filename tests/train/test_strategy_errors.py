"""--strategy bad input: clear errors, never a hang (issue: multi_worker without TF_CONFIG, tpu
without a TPU)."""
import pytest

from sslzoo.errors import ConfigError
from sslzoo.train.device import make_strategy


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{cluster: not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multi_worker")


def test_tpu_without_a_tpu_and_unknown_names_are_clear_errors(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ConfigError, match="found no TPU"):
        make_strategy("tpu")
    with pytest.raises(ConfigError, match="strategy"):
        make_strategy("mirroredd")
