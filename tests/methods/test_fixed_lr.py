"""SimSiam's fixed predictor lr (``fix_pred_lr``), the schedule's peak, and ``step_groups`` with
more than one loss-scaled optimizer."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import methods
from sslzoo.errors import ConfigError
from sslzoo.optim import clone_optimizer, peak_learning_rate, step_groups, warmup_cosine
from sslzoo.umm import UMM

PEAK = 0.1


def _simsiam(fix, lr=None):
    keras.utils.set_random_seed(0)
    m = methods.build("simsiam", "resnet_tiny", image_size=16, crr_every=0, proj_hidden_dim=16,
                      proj_dim=16, pred_hidden_dim=8, fix_pred_lr=fix)
    # Step 0 of a 2-step warm-up runs at rate 0: only fixed-lr variables can move.
    m.compile(keras.optimizers.SGD(lr if lr is not None else warmup_cosine(PEAK, 10, 2)))
    m.build_all()
    return m


def _views(n=8):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (n, 16, 16, 3)), tf.float32)
    return (x, tf.reverse(x, axis=[2]))


def _weights(layer):
    return [np.array(v) for v in layer.trainable_variables]


@pytest.mark.parametrize("fix", [False, True])
def test_predictor_steps_at_the_peak_rate_during_warmup(fix):
    m = _simsiam(fix)
    views = _views()
    with tf.GradientTape() as tape:  # the step's gradient, computed independently
        out = m.forward(tf.concat(views, 0), training=True)
        loss = m.ssl_loss(out, 8)
    grads = tape.gradient(loss, m.predictor.trainable_variables)
    pred, proj = _weights(m.predictor), _weights(m.projector)
    assert float(m.optimizer.learning_rate) == 0.0  # the rate step 0 uses
    m.train_step((views, None))
    for before, after in zip(proj, _weights(m.projector)):
        np.testing.assert_array_equal(before, after)
    for before, after, g in zip(pred, _weights(m.predictor), grads):
        expected = before - PEAK * np.array(g) if fix else before
        np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-7)
    assert ("fixed_lr_optimizer" in m.checkpoint_items()) == fix


def test_fixed_lr_optimizer_keeps_the_settings_and_checkpoint_state():
    m = methods.build("simsiam", "resnet_tiny", image_size=16, crr_every=0, proj_hidden_dim=16,
                      proj_dim=16, pred_hidden_dim=8, fix_pred_lr=1)
    m.compile(keras.optimizers.SGD(warmup_cosine(0.3, 100, 5), momentum=0.9,
                                   weight_decay=1e-4))
    m.build_all()
    opt = m.fixed_lr_optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt is not m.optimizer
    assert (opt.momentum, opt.weight_decay) == (0.9, 1e-4)
    assert float(opt.learning_rate) == pytest.approx(0.3)
    pred = {id(v) for v in m.predictor.trainable_variables}
    assert {id(v) for v in m.fixed_lr_variables} == pred
    decayed, fixed = (m.optimizers.groups[k].variables for k in ("main", "fixed_lr"))
    assert not pred & {id(v) for v in decayed} and len(fixed) == len(pred)


def test_fix_pred_lr_errors():
    with pytest.raises(ConfigError, match="fix_pred_lr must be a boolean"):
        methods.build("simsiam", "resnet_tiny", image_size=16, fix_pred_lr=2)
    with pytest.raises(ConfigError, match="fix_pred_lr=0 or drop --umm"):
        UMM(methods.build("simsiam", "resnet_tiny", image_size=16, fix_pred_lr=1))


def test_peak_learning_rate():
    assert peak_learning_rate(0.2) == 0.2
    assert peak_learning_rate(warmup_cosine(0.4, 100, 10)) == pytest.approx(0.4)
    assert peak_learning_rate(warmup_cosine(0.4, 100, 0)) == pytest.approx(0.4)
    assert peak_learning_rate(keras.optimizers.SGD(0.7)._learning_rate) == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="cannot tell the peak of a ExponentialDecay"):
        peak_learning_rate(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))


def test_step_groups_rescales_to_each_optimizers_own_loss_scale():
    """Two loss-scaled optimizers whose dynamic scales differ: each group still steps on the
    true gradient (1 for every weight of sum(w)), here at lr 1."""
    w1, w2 = keras.Variable(np.zeros(3, "float32")), keras.Variable(np.zeros(2, "float32"))
    main = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1.0))
    other = clone_optimizer(main, 1.0)
    main.build([w1])
    other.build([w2])
    other.dynamic_scale.assign(2.0 ** 10)  # main keeps 2 ** 15
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(w1) + tf.reduce_sum(w2)
    step_groups(tape, loss, [([w1], main), ([w2], other)])
    np.testing.assert_allclose(np.array(w1), -np.ones(3))
    np.testing.assert_allclose(np.array(w2), -np.ones(2))
