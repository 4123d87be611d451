"""Fast checks of the fine-tuning pieces: config defaults, the semi subset, the two-rate
trainer and the top-k accuracies (no data, no pretrained run)."""
import keras
import numpy as np
import pytest

from sslzoo.errors import ConfigError
from sslzoo.finetune import FinetuneConfig, balanced_subset
from sslzoo.finetune.heads import TwoRateTrainer
from sslzoo.finetune.modes import accuracies, make_optimizer


def test_config_fills_mode_defaults_and_rejects_bad_values(tmp_path):
    cfg = FinetuneConfig(init_from="random", mode="finetune", output_dir=str(tmp_path))
    assert cfg.resolved() == {"optimizer": "sgd", "learning_rate": pytest.approx(0.2),
                              "weight_decay": 5e-4, "epochs": 10}
    lin = FinetuneConfig(init_from="random", mode="linear", learning_rate=0.5, epochs=3)
    assert lin.resolved()["learning_rate"] == 0.5 and lin.resolved()["epochs"] == 3
    assert lin.output_dir.startswith("runs/finetune_linear_")
    with pytest.raises(ConfigError, match="--init_from is required"):
        FinetuneConfig()
    with pytest.raises(ConfigError, match="label_fraction must be in"):
        FinetuneConfig(init_from="random", label_fraction=1.5)
    with pytest.raises(ConfigError, match="mode must be one of"):
        FinetuneConfig(init_from="random", mode="probe")


def test_balanced_subset_is_class_balanced_seeded_and_keeps_every_class():
    labels = np.repeat(np.arange(10), 100)
    np.random.default_rng(0).shuffle(labels)
    picked = balanced_subset(labels, 0.1, seed=3)
    assert len(picked) == 100 and len(set(picked)) == 100
    assert np.all(np.bincount(labels[picked], minlength=10) == 10)
    assert np.array_equal(picked, balanced_subset(labels, 0.1, seed=3))
    assert not np.array_equal(picked, balanced_subset(labels, 0.1, seed=4))
    # 1% of 1,000 images over 10 classes is 1 per class; a tiny fraction still keeps one each.
    assert np.all(np.bincount(labels[balanced_subset(labels, 0.01)], minlength=10) == 1)
    assert np.all(np.bincount(labels[balanced_subset(labels, 1e-6)], minlength=10) == 1)
    # Imbalanced classes: the same fraction of each (rounded, at least one).
    skewed = np.array([0] * 90 + [1] * 8 + [2] * 2)
    counts = np.bincount(skewed[balanced_subset(skewed, 0.3, seed=0)])
    assert counts.tolist() == [27, 2, 1]
    assert len(balanced_subset(skewed, 1.0)) == 100


def _toy(seed):
    keras.utils.set_random_seed(seed)
    x = keras.Input((4,))
    body = keras.Model(x, keras.layers.Dense(3, name="body")(x))
    out = keras.layers.Dense(2, name="head")(body.output)
    return body, keras.Model(body.input, out)


def _step_deltas(mult):
    body, model = _toy(0)
    before = [np.array(v) for v in model.trainable_variables]
    opt = lambda lr: make_optimizer("sgd", lr, 0.0)  # noqa: E731
    trainer = TwoRateTrainer(model, body.trainable_variables, opt(0.1 * mult) if mult else None)
    trainer.compile(optimizer=opt(0.1))
    trainer.build_optimizers()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.array([0, 1] * 4)
    trainer.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return [np.array(v) - b for v, b in zip(model.trainable_variables, before)]


def test_two_rate_trainer_scales_the_backbone_step_only():
    full, tenth, frozen = _step_deltas(1.0), _step_deltas(0.1), _step_deltas(0.0)
    body, head = slice(0, 2), slice(2, 4)  # body kernel and bias, then the head's
    for a, b in zip(full[body], tenth[body]):
        np.testing.assert_allclose(b, 0.1 * a, rtol=1e-4, atol=1e-7)
        assert np.abs(a).max() > 0
    for a, b, c in zip(full[head], tenth[head], frozen[head]):
        np.testing.assert_allclose(b, a, rtol=1e-5)
        np.testing.assert_allclose(c, a, rtol=1e-5)
    assert all(np.abs(d).max() == 0 for d in frozen[body])


def test_accuracies_top1_and_top5():
    logits = np.eye(6)[[0, 1, 2, 3]] + np.linspace(0, 0.1, 6)
    labels = np.array([0, 1, 5, 0])  # hit, hit, 2nd best, 6th best (row 3 ranks 0 last)
    top1, top5 = accuracies(logits, labels)
    assert top1 == 0.5 and top5 == 0.75
    assert accuracies(logits[:, :3], np.array([0, 1, 2, 2]))[1] is None
