"""Reference probes: raw pixels beat chance on digits; random-init probes are seeded; the
supervised ceiling learns the labels."""
import pytest

from sslzoo import data
from sslzoo.data.augment import with_overrides
from sslzoo.errors import ConfigError
from sslzoo.eval.baselines import mean_std, random_init_probe, raw_pixel_probe, supervised_ceiling


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


def test_supervised_ceiling_learns_the_labels(splits):
    fit, test = splits
    out = supervised_ceiling("resnet_tiny", fit, fit, test, epochs=10, batch_size=100,
                             learning_rate=3e-3, warmup_epochs=0,
                             augment=with_overrides("simclr", "flip=0"))
    assert set(out) == {"head_top1", "linear_probe_top1"}
    assert out["head_top1"] > 0.3  # 10 classes: chance is 0.1; 30 steps of labelled training
    assert 0.1 < out["linear_probe_top1"] <= 1.0


def test_supervised_ceiling_needs_labels(splits, tmp_path):
    from PIL import Image
    import numpy as np

    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(tmp_path / f"{i}.png")
    flat = data.load(f"folder:{tmp_path}", image_size=32)
    with pytest.raises(ConfigError, match="no labels"):
        supervised_ceiling("resnet_tiny", flat, *splits, epochs=1)


def test_mean_std():
    assert mean_std([0.5, 0.7]) == {"values": [0.5, 0.7], "mean": pytest.approx(0.6),
                                    "std": pytest.approx(0.1)}
