"""Fast checks of the fine-tuning pieces: config defaults, the semi subset, the two-rate
trainer and the top-k accuracies (no data, no pretrained run)."""
import keras
import numpy as np
import pytest

from sslzoo.errors import ConfigError
from sslzoo.finetune import FinetuneConfig, balanced_subset
from sslzoo.backbones.vit import layer_index
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
    groups = [(body.trainable_variables, opt(0.1 * mult))] if mult else []
    trainer = TwoRateTrainer(model, body.trainable_variables, groups)
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


def test_layer_decay_groups_a_vit_by_block():
    from sslzoo import backbones
    from sslzoo.finetune.heads import backbone_layers

    net = backbones.build("vit_tiny", image_size=16, patch_size=8)
    layers = backbone_layers(net.trainable_variables, 0.5)
    assert len(layers) == 14  # embeddings, 12 blocks, final norm
    assert [m for m, _ in layers] == [0.5 ** (13 - i) for i in range(14)]
    names = {i: sorted({v.path.split("/")[0] for v in vs}) for i, (_, vs) in enumerate(layers)}
    assert names[0] == ["patch_embed", "tokens"] and names[13] == ["norm"]
    assert all(n.startswith("block3_") for n in names[3])
    assert sum(len(vs) for _, vs in layers) == len(net.trainable_variables)
    # Off: one group; a ResNet cannot take a decay.
    assert backbone_layers(net.trainable_variables, 1.0) == [(1.0, net.trainable_variables)]
    with pytest.raises(ConfigError, match="needs a ViT"):
        backbone_layers(backbones.build("resnet_tiny", image_size=16).trainable_variables, 0.7)


def test_layer_decay_steps_each_block_at_its_own_rate():
    from sslzoo import backbones
    from sslzoo.finetune.heads import backbone_layers, classifier

    keras.utils.set_random_seed(0)
    net = backbones.build("vit_tiny", image_size=16, patch_size=8)
    model = classifier(net, 3)
    start = [np.array(v) for v in model.trainable_variables]
    before = {v.path: np.array(v) for v in net.trainable_variables}
    sgd = lambda lr: make_optimizer("sgd", lr, 0.0)  # noqa: E731
    # SGD without momentum: a variable's step is its rate times its gradient, so with the
    # same gradient the decayed run moves block i by decay^(13 - i) of the undecayed run.
    deltas = {}
    for decay in (1.0, 0.5):
        for v, value in zip(model.trainable_variables, start):
            v.assign(value)
        groups = [(vs, sgd(m)) for m, vs in backbone_layers(net.trainable_variables, decay)]
        trainer = TwoRateTrainer(model, net.trainable_variables, groups)
        trainer.compile(optimizer=sgd(1.0))
        trainer.build_optimizers()
        x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
        trainer.fit(x, np.array([0, 1, 2, 0]), batch_size=4, epochs=1, shuffle=False, verbose=0)
        deltas[decay] = {v.path: np.array(v) - before[v.path] for v in net.trainable_variables}
    for path, full in deltas[1.0].items():
        assert np.abs(full).max() > 0, path
        expect = 0.5 ** (13 - layer_index(path, 12))
        ulp = float(np.spacing(np.float32(np.abs(before[path]).max())))  # rounding of w + Δw
        np.testing.assert_allclose(deltas[0.5][path], expect * full, rtol=1e-3, atol=2 * ulp)


def test_layer_decay_flag_is_checked():
    from sslzoo.finetune.config import FinetuneConfig

    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="layer_decay must be in"):
            FinetuneConfig(init_from="random", mode="finetune", layer_decay=bad)
    with pytest.raises(ConfigError, match="applies to --mode=finetune or semi"):
        FinetuneConfig(init_from="random", mode="linear", layer_decay=0.75)
