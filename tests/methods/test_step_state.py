"""The explicit step state: ``forward`` gives a ``Forward``, ``ssl_loss`` puts what
``after_update`` needs in its ``state``, and UMM meets ``TrainableModel`` without imitating the
method."""
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import methods
from sslzoo.methods import Forward, TrainableModel
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM


def _model(name, **hparams):
    m = methods.build(name, "resnet_tiny", image_size=16, crr_every=0, **hparams)
    m.compile(make_optimizer("sgd", 0.05))
    m.build_all()
    return m


def _views(n=4):
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (n, 16, 16, 3)), tf.float32)
    return tf.concat([x, tf.reverse(x, axis=[2])], 0), n


def test_forward_is_typed_and_indexes_features_by_tap():
    m = methods.build("simclr", "resnet_tiny", image_size=16)
    x, n = _views()
    out = m.forward(x, training=False)
    assert isinstance(out, Forward) and out.images is x and out.local_proj is None
    assert set(out.features) == {"stage1", "stage2", "stage3", "stage4", "pooled", "proj"}
    assert out["proj"] is out.proj and out["stage2"] is out.features["stage2"]
    assert out.state == {} and out.cache == {}


@pytest.mark.parametrize("name,key", [("mocov2", "keys"), ("dino", "teacher_out"),
                                      ("swav", "embeddings")])
def test_ssl_loss_hands_its_state_to_after_update(name, key):
    hparams = {"swav": {"queue_length": 16}}.get(name, {})
    m = _model(name, **hparams)
    x, n = _views()
    out = m.forward(x)
    m.ssl_loss(out, n)
    assert key in out.state
    m.after_update(out)  # consumes it
    with pytest.raises(RuntimeError, match=f"after_update needs '{key}'.*call ssl_loss"):
        m.after_update(m.forward(x))  # a Forward that ssl_loss never saw


def test_teacher_runs_once_per_batch_through_the_forwards_cache():
    m = _model("byol")
    x, n = _views()
    out = m.forward(x)
    first = m.teacher(out.images, out.cache)
    assert m.teacher(out.images, out.cache) is first  # the memo of this batch
    assert m.teacher(out.images) is not first  # no cache: computed again


def test_models_and_wrappers_meet_the_protocol():
    m = methods.build("simclr", "resnet_tiny", image_size=16)
    umm = UMM(methods.build("simclr", "resnet_tiny", image_size=16))
    assert isinstance(m, TrainableModel) and isinstance(umm, TrainableModel)
    assert m.ssl_model is m and umm.ssl_model is not umm
    assert not hasattr(umm, "backbone")  # UMM no longer imitates the method
