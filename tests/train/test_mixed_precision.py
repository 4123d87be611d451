"""Mixed precision on CPU: short SimCLR runs under mixed_bfloat16 and mixed_float16 track the
float32 run from the same weights on the same fixed views.

Setting: resnet_tiny, 32 digits at 16×16 and their mirror images as the two views, SGD
(lr 0.02, momentum 0.9), 4 steps. Tolerances on each step's loss, relative to float32
(observed over seeds 0-2 in brackets): step 1, same weights, < 5e-3 [bf16 ≤ 1.3e-3, fp16
≤ 4e-5]; every step < 2e-2 [bf16 ≤ 6e-3, fp16 ≤ 5e-3], while the loss falls by ~25% over
the 4 steps, so a skipped or diverged step fails. On CPU, mixed_float16 is the Keras policy
set directly (``setup_precision`` maps it to bf16 without a GPU); ``compile`` wraps the
optimizer in a LossScaleOptimizer.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from sslzoo import methods
from sslzoo.train.device import has_gpu, setup_precision
from sslzoo.optim import make_optimizer

SIZE, BATCH, STEPS = 16, 32, 4


@pytest.fixture(autouse=True)
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")  # other tests expect float32


@pytest.fixture(scope="module")
def views():
    d = load_digits()
    x = np.kron(d.images[:BATCH] * (255 / 16), np.ones((2, 2)))[..., None].repeat(3, -1)
    x = tf.constant(x, tf.float32)
    return (x, tf.reverse(x, axis=[2])), tf.constant(d.target[:BATCH], tf.int32)


def _model(policy, weights=None):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    m = methods.build("simclr", "resnet_tiny", image_size=SIZE, num_classes=10,
                      proj_hidden_dim=64, proj_dim=32)
    m.compile(make_optimizer("sgd", 0.02, momentum=0.9))
    m.build_all()
    if weights is not None:
        m.set_weights(weights)
    return m


def _train(model, batch):
    """Each step's loss and the last step's logs."""
    step = tf.function(model.train_step)
    losses = []
    for _ in range(STEPS):
        model.reset_metrics()
        logs = step(batch)
        losses.append(float(logs["loss"]))
    return np.array(losses), logs


@pytest.fixture(scope="module")
def float32_run(views):
    try:
        m = _model("float32")
        weights = m.get_weights()
        return weights, _train(m, views)[0]
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_run_tracks_float32(policy, views, float32_run):
    weights, ref = float32_run
    m = _model(policy, weights)
    low = policy.removeprefix("mixed_")
    assert isinstance(m.optimizer, keras.optimizers.LossScaleOptimizer) == (low == "float16")
    out = m.forward(tf.concat(views[0], 0), training=False)
    assert out["proj"].dtype == low  # the model really computes in low precision
    assert m.ssl_loss(out, BATCH).dtype == "float32"
    assert all(v.dtype == "float32" for v in m.trainable_variables)

    losses, logs = _train(m, views)
    assert np.all(np.isfinite(losses)) and ref[-1] < 0.85 * ref[0]
    rel = np.abs(losses - ref) / ref
    assert rel[0] < 5e-3 and rel.max() < 2e-2, rel
    crr = {k: v for k, v in logs.items() if k.startswith("crr/")}
    assert len(crr) == 15 and all(v.dtype == "float32" for v in crr.values())
    assert all(np.isfinite(float(v)) and float(v) > 0 for v in crr.values())


def test_setup_precision_falls_back_to_bfloat16_without_gpu():
    expected = "mixed_float16" if has_gpu() else "mixed_bfloat16"
    assert setup_precision("mixed_float16") == expected
    assert keras.mixed_precision.global_policy().name == expected
