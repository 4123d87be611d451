import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo.errors import ConfigError
from sslzoo import methods
from sslzoo.train.config import PretrainConfig
from sslzoo.optim import LARS, LARS_ETA, make_optimizer, scaled_lr, warmup_cosine
from sslzoo.train.pretrain import resolve_optimizer


def test_lars_matches_hand_computed_update():
    w0 = np.array([[3.0, 4.0]], dtype="float32")          # ‖w‖ = 5
    b0 = np.array([1.0, -1.0], dtype="float32")
    g = np.array([[0.6, 0.8]], dtype="float32")
    gb = np.array([0.5, 0.5], dtype="float32")
    w, b = keras.Variable(w0), keras.Variable(b0)
    opt = LARS(learning_rate=0.1, momentum=0.9, weight_decay=0.01, eta=0.001)
    for step in range(2):
        opt.apply([g, gb], [w, b])
    # Hand computation, step by step.
    vw, vb, ww, bb = np.zeros_like(w0), np.zeros_like(b0), w0.copy(), b0.copy()
    for _ in range(2):
        gw = g + 0.01 * ww
        trust = 0.001 * np.linalg.norm(ww) / np.linalg.norm(gw)
        vw = 0.9 * vw + 0.1 * trust * gw
        ww = ww - vw
        vb = 0.9 * vb + 0.1 * gb          # rank-1: no decay, no adaptation
        bb = bb - vb
    np.testing.assert_allclose(w.numpy(), ww, rtol=1e-5)
    np.testing.assert_allclose(b.numpy(), bb, rtol=1e-5)


def test_lars_zero_weight_uses_unit_trust():
    w = keras.Variable(np.zeros((2, 2), "float32"))
    LARS(learning_rate=1.0, momentum=0.0, weight_decay=0.0).apply([np.ones((2, 2), "float32")], [w])
    np.testing.assert_allclose(w.numpy(), -np.ones((2, 2)))


def test_warmup_cosine_shape():
    s = warmup_cosine(1.0, total_steps=110, warmup_steps=10)
    lrs = np.array([float(s(i)) for i in (0, 5, 10, 60, 110)])
    np.testing.assert_allclose(lrs, [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_constant_schedule_holds_the_peak_after_warmup():
    s = warmup_cosine(2.0, total_steps=110, warmup_steps=10, schedule="constant")
    lrs = np.array([float(s(i)) for i in (0, 5, 10, 60, 109, 110)])
    np.testing.assert_allclose(lrs, [0.0, 1.0, 2.0, 2.0, 2.0, 2.0], atol=1e-6)
    with pytest.raises(ConfigError, match="schedule"):
        warmup_cosine(1.0, 10, 0, schedule="step")
    with pytest.raises(ConfigError, match="--schedule"):
        PretrainConfig(schedule="linear", output_dir="unused")
    _, info = resolve_optimizer(PretrainConfig(schedule="constant", output_dir="unused"),
                                methods.get("simclr"), steps_per_epoch=4)
    assert info["schedule"] == "constant"


def test_scaled_lr_rules():
    assert scaled_lr(0.3, 512) == pytest.approx(0.6)
    assert scaled_lr(0.3, 1024, "sqrt") == pytest.approx(0.6)
    assert scaled_lr(0.3, 1024, "none") == 0.3
    with pytest.raises(ConfigError, match="linear"):
        scaled_lr(0.3, 256, "cubic")


def test_unknown_optimizer_lists_choices():
    with pytest.raises(ConfigError, match="lamb.*lars|lars.*sgd"):
        make_optimizer("adagrad", 0.1)


@pytest.mark.parametrize("eta, clip, trust", [(0.02, False, 0.02 * 5 / 1e-3),
                                              (0.02, True, 1.0),      # clipped to plain SGD
                                              (1e-6, True, 1e-6 * 5 / 1e-3)])  # below 1: kept
def test_lars_eta_and_clip(eta, clip, trust):
    """r = η‖w‖/‖g‖ with ‖w‖ = 5, ‖g‖ = 1e-3; LARC clipping caps it at 1."""
    w = keras.Variable(np.array([[3.0, 4.0]], "float32"))
    g = np.array([[0.6e-3, 0.8e-3]], "float32")
    opt = make_optimizer("lars", 0.1, weight_decay=0.0, momentum=0.0, lars_eta=eta,
                         lars_clip=clip)
    opt.apply([g], [w])
    np.testing.assert_allclose(w.numpy(), [[3.0, 4.0]] - 0.1 * trust * g, rtol=1e-5)
    assert LARS.from_config(opt.get_config()).clip is clip


def test_lars_rejects_non_positive_eta():
    with pytest.raises(ConfigError, match="lars_eta"):
        make_optimizer("lars", 0.1, lars_eta=0.0)


def test_pretrain_passes_lars_flags_to_the_optimizer():
    cfg = PretrainConfig(method="byol", lars_eta=0.02, lars_clip=True, output_dir="unused")
    opt, info = resolve_optimizer(cfg, methods.get("byol"), steps_per_epoch=4)
    assert isinstance(opt, LARS) and (opt.eta, opt.clip) == (0.02, True)
    assert (info["lars_eta"], info["lars_clip"]) == (0.02, True)
    opt, info = resolve_optimizer(PretrainConfig(method="mocov2", output_dir="unused"),
                                  methods.get("mocov2"), steps_per_epoch=4)
    assert not isinstance(opt, LARS) and "lars_eta" not in info   # SGD: the flags do not apply
    with pytest.raises(ConfigError, match="apply only to LARS.*sgd"):
        resolve_optimizer(PretrainConfig(method="mocov2", lars_clip=True, output_dir="unused"),
                          methods.get("mocov2"), steps_per_epoch=4)


def test_the_lars_eta_flag_defaults_to_the_optimizers_constant():
    assert PretrainConfig(output_dir="-").lars_eta == LARS_ETA


def test_a_scheduled_weight_decay_follows_its_cosine_and_decays_the_weights():
    from sslzoo.optim import paper_optimizer, step_groups

    recipe = {"optimizer": "adamw", "learning_rate": 0.1, "weight_decay": 0.04,
              "weight_decay_end": 0.4, "clipnorm": 3.0, "scale": "none"}
    opt, info = paper_optimizer(recipe, 256, 4, 0, "constant")
    assert info["weight_decay_end"] == 0.4 and info["clipnorm"] == 3.0 and opt.clipnorm == 3.0
    w = keras.Variable(np.ones((2, 2), "float32"))
    opt.build([w])

    @tf.function  # as in a train step: the decay is read from its variable, not traced in
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * 0.0)  # no gradient: only the decay moves w
        step_groups(tape, loss, [([w], opt)])

    for k in range(6):
        before = np.array(w)
        step()
        wd = 0.4 + (0.04 - 0.4) * (np.cos(np.pi * min(k, 4) / 4) + 1) / 2
        np.testing.assert_allclose(float(opt.weight_decay), wd, rtol=1e-6)
        np.testing.assert_allclose(np.array(w), before * (1 - 0.1 * wd), rtol=1e-6)
    with pytest.raises(ConfigError, match="decoupled weight decay"):
        paper_optimizer({**recipe, "optimizer": "lars"}, 256, 4, 0)


def test_clipnorm_clips_each_gradient_to_its_norm():
    from sslzoo.optim import make_optimizer

    opt = make_optimizer("sgd", 1.0, momentum=0.0, clipnorm=3.0)
    a, b = keras.Variable(np.zeros(4, "float32")), keras.Variable(np.zeros(1, "float32"))
    opt.apply([tf.constant([3.0, 4.0, 0.0, 0.0]), tf.constant([1.0])], [a, b])
    np.testing.assert_allclose(np.array(a), [-1.8, -2.4, 0, 0], rtol=1e-6)  # norm 5 -> 3
    np.testing.assert_allclose(np.array(b), [-1.0])  # under the norm: unchanged
