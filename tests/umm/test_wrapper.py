"""The UMM wrapper: split checks, frozen early part, the outer step moving ΔR by γ's sign, fit."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo import methods
from sslzoo.crr import pair_delta_r
from sslzoo.errors import ConfigError
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM, block_outputs


def _model(**kw):
    return methods.build("simclr", "resnet_tiny", image_size=16, num_classes=10, proj_dim=16,
                         **kw)


def _wrapped(optimizer="sgd", lr=0.05, **kw):
    umm = UMM(_model(), **kw)
    umm.compile(make_optimizer(optimizer, lr))
    umm.build_all()
    return umm


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (2 * n, 16, 16, 3)).astype("float32"), n


def test_split_errors_name_the_valid_choices():
    assert block_outputs(_model().backbone) == ["stage1", "stage2", "stage3", "stage4"]
    with pytest.raises(ConfigError, match="no trainable late layers"):
        UMM(_model(), early="stage4")
    with pytest.raises(ConfigError, match="valid: stage1, stage2, stage3, stage4"):
        UMM(_model(), early="block9")
    with pytest.raises(ConfigError, match="1 to 3"):
        UMM(_model(), early=4)
    with pytest.raises(ConfigError, match="beta must be >= 0"):
        UMM(_model(), beta=-0.1)
    with pytest.raises(ConfigError, match="gamma must be a finite number"):
        UMM(_model(), gamma=float("nan"))
    with pytest.raises(ConfigError, match="alignment"):
        UMM(_model(), alignment="cosine")
    with pytest.raises(ConfigError, match="already wrapped"):
        UMM(UMM(_model()))


def test_split_by_block_count_and_variable_partition():
    umm = UMM(_model(), early=2)
    assert umm.split == "stage2" == UMM(_model()).split  # the default, "auto": half the depth
    ids = {id(v) for v in umm.ssl_model.ssl_trainable_variables}
    assert {id(v) for v in umm.early_vars + umm.late_vars} == ids
    assert not {id(v) for v in umm.early_vars} & {id(v) for v in umm.late_vars}
    names = [v.path for v in umm.early_vars]
    assert any("stage1" in p for p in names) and not any("stage3" in p for p in names)


def _delta_r_after_outer_steps(gamma, steps=5):
    keras.utils.set_random_seed(0)
    umm = _wrapped(gamma=gamma, lr=0.05)
    images, n = _batch()
    early = {k: ops.stop_gradient(v) for k, v in umm.early_encoder(images).items()}

    def delta_r():
        z = umm.forward(images, training=False, monitor=False)["proj"]
        return float(pair_delta_r(z[:n], z[n:])[0])

    start = delta_r()
    for _ in range(steps):
        umm.outer_step(images, early, n)
    return start, delta_r()


def test_outer_step_moves_last_layer_delta_r_by_the_sign_of_gamma():
    """From one initialisation: γ > 0 raises ΔR on a fixed batch, above where L_SSL alone
    (γ = 0) takes it; γ < 0 (the authors' code's sign, an ablation) ends below it."""
    start, up = _delta_r_after_outer_steps(1.0)
    start0, neutral = _delta_r_after_outer_steps(0.0)
    _, down = _delta_r_after_outer_steps(-1.0)
    assert start == pytest.approx(start0)
    assert up > start + 0.5 and up > neutral + 0.2 and down < neutral - 0.2


def _fit(umm, epochs=1):
    images, n = _batch()
    ds = tf.data.Dataset.from_tensor_slices(((images[:n], images[n:]), np.arange(n) % 10))
    return umm.fit(ds.batch(8), epochs=epochs, verbose=0, shuffle=False)


def test_frozen_early_part_keeps_its_weights_and_late_part_trains():
    umm = _wrapped()
    early = [v.numpy().copy() for v in umm.early_vars]
    late = [v.numpy().copy() for v in umm.late_vars]
    history = _fit(umm).history
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(early, umm.early_vars))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(late, umm.late_vars))
    for key in ("loss", "umm/align", "umm/delta_r", "umm/inner_loss", "crr/stage4/delta_r"):
        assert np.isfinite(history[key][-1]), key
    assert history["umm/delta_r"][-1] > 0 and history["umm/align"][-1] >= 0


def test_early_part_trains_at_a_multiple_of_the_rate_when_asked():
    umm = _wrapped(early_lr_mult=0.1)
    early = [v.numpy().copy() for v in umm.early_vars]
    _fit(umm)
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(early, umm.early_vars))
    lr = float(umm.optimizer.learning_rate)
    assert float(umm.early_optimizer.learning_rate) == pytest.approx(0.1 * lr)
    assert float(umm.inner_optimizer.learning_rate) == pytest.approx(lr)


def test_gradient_js_alignment_trains():
    history = _fit(_wrapped(alignment="gradient_js", beta=10.0)).history
    assert np.isfinite(history["loss"][-1]) and history["umm/align"][-1] >= 0


def test_trained_early_part_runs_once_per_step(monkeypatch):
    """The inner step leaves θ_e alone, so its forward (and BN update) is shared by both steps."""
    umm = _wrapped(early_lr_mult=1.0)
    calls = []
    encoder = umm.early_encoder

    def counting(x, training=False):
        calls.append(training)
        return encoder(x, training=training)

    monkeypatch.setattr(umm, "early_encoder", counting)
    images, n = _batch()
    early = [v.numpy().copy() for v in umm.early_vars]
    umm.train_step(((images[:n], images[n:]), np.arange(n) % 10))  # eagerly
    assert calls == [True]
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(early, umm.early_vars))


def test_fit_runs_eagerly_for_debugging():
    """run_eagerly=True wraps the logs in a tf.data Optional, which cannot hold variables."""
    for model in (_wrapped(), _model()):
        if not isinstance(model, UMM):
            model.compile(make_optimizer("sgd", 0.05))
            model.build_all()
        model.run_eagerly = True
        history = _fit(model).history
        assert np.isfinite(history["loss"][-1]) and history["crr/stage4/delta_r"][-1] > 0
