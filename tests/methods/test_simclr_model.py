import numpy as np
import pytest
import tensorflow as tf

from sslzoo import methods
from sslzoo.errors import ConfigError
from sslzoo.optim import make_optimizer


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 32, 32, 3)).astype("uint8")
    return tf.constant(x), tf.constant(rng.integers(0, 10, 16), tf.int32)


def _model(**kw):
    m = methods.build("simclr", "resnet_tiny", image_size=32, num_classes=10, **kw)
    m.compile(make_optimizer("sgd", 0.05, momentum=0.9))
    m.build_all()
    return m


def test_registry():
    assert "simclr" in methods.available()
    with pytest.raises(ConfigError, match="valid choices: .*simclr"):
        methods.build("simclrr")
    with pytest.raises(ConfigError, match="temperature"):
        methods.build("simclr", "resnet_tiny", tau=0.1)


def test_train_step_learns_on_fixed_views(batch):
    x, y = batch
    m = _model(temperature=0.5)
    v1 = tf.cast(x, tf.float32)
    v2 = tf.image.flip_left_right(v1)
    step = tf.function(m.train_step)
    losses = [float(step(((v1, v2), y))["loss"]) for _ in range(15)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.1
    assert int(m.optimizer.iterations) == 15


def test_probe_trains_and_ssl_variables_exclude_it(batch):
    x, y = batch
    m = _model(augment_in_step=True)
    probe_ids = {id(v) for v in m.probe.trainable_variables}
    assert probe_ids and not probe_ids & {id(v) for v in m.ssl_trainable_variables}
    before = [v.numpy().copy() for v in m.probe.trainable_variables]
    logs = m.train_step((x, y))
    assert {"loss", "probe_acc", "lr"} <= set(logs)
    after = [v.numpy() for v in m.probe.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_unlabeled_batches_do_not_train_probe(batch):
    x, _ = batch
    m = _model(augment_in_step=True)
    before = [v.numpy().copy() for v in m.probe.trainable_variables]
    m.train_step((x, -tf.ones(16, tf.int32)))
    assert all(np.allclose(a, v.numpy()) for a, v in zip(before, m.probe.trainable_variables))


def test_raw_images_need_in_step_augmentation(batch):
    m = _model()
    with pytest.raises(ValueError, match="augment_in_step"):
        m.train_step(batch)


def test_proj_layers_one_is_a_linear_head():
    m = methods.build("simclr", "resnet_tiny", image_size=32, proj_layers=1, proj_dim=16)
    dense = [layer for layer in m.projector.layers]
    assert [type(layer).__name__ for layer in dense] == ["Dense"] and dense[0].units == 16
    assert len(methods.build("simclr", "resnet_tiny", image_size=32).projector.layers) == 4
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="proj_layers must be an integer >= 1"):
            methods.build("simclr", "resnet_tiny", image_size=32, proj_layers=bad)
