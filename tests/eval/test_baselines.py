"""Reference probes: raw pixels beat chance on digits; random-init probes are seeded."""
import pytest

from sslzoo import data
from sslzoo.eval.baselines import random_init_probe, raw_pixel_probe


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tfds"))
    return data.load("digits", "train[:300]", data_dir=d), data.load("digits", "test[:200]",
                                                                    data_dir=d)


def test_raw_pixels_far_above_chance(splits):
    assert raw_pixel_probe(*splits) > 0.8  # 10 classes: chance is 0.1


def test_random_init_probe_depends_only_on_the_seed(splits):
    a = random_init_probe("resnet_tiny", *splits, seed=1)
    assert a == random_init_probe("resnet_tiny", *splits, seed=1)
    assert 0.1 < a <= 1.0
