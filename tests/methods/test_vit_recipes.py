"""The papers' ViT recipes: MoCo v3's frozen random patch projection, three-layer projector,
τ = 0.2 and AdamW; DINO's weight-decay schedule and gradient clipping. ResNets keep theirs."""
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import backbones, methods
from sslzoo.errors import ConfigError
from sslzoo.optim import make_optimizer
from sslzoo.train.config import PretrainConfig
from sslzoo.train.pretrain import resolve_optimizer

HEADS = {"proj_hidden_dim": 32, "proj_dim": 16, "pred_hidden_dim": 32}


def test_the_optimizer_recipe_follows_the_backbone():
    mocov3, dino = methods.get("mocov3"), methods.get("dino")
    assert mocov3.optim_defaults_for("vit_small") == {
        "optimizer": "adamw", "learning_rate": 1.5e-4, "weight_decay": 0.1, "scale": "linear"}
    assert mocov3.optim_defaults_for("resnet18")["optimizer"] == "lars"
    assert dino.optim_defaults_for("vit_tiny")["weight_decay_end"] == 0.4
    assert dino.optim_defaults_for("vit_tiny")["clipnorm"] == 3.0
    assert "clipnorm" not in dino.optim_defaults_for("resnet_tiny")
    # A method with no ViT recipe keeps its own.
    simclr = methods.get("simclr")
    assert simclr.optim_defaults_for("vit_tiny") is simclr.optim_defaults
    cfg = PretrainConfig(method="dino", backbone="vit_tiny", epochs=2, output_dir="unused")
    opt, info = resolve_optimizer(cfg, dino, steps_per_epoch=5)
    assert info["weight_decay_end"] == 0.4 and opt.weight_decay_schedule == (0.04, 0.4, 10)
    assert opt.clipnorm == 3.0


def test_mocov3_on_a_vit_freezes_its_random_patch_projection():
    net = backbones.build("vit_tiny", image_size=16, patch_size=8)
    model = methods.build("mocov3", net, image_size=16, **HEADS)
    assert model.hparams["temperature"] == 0.2 and model.hparams["proj_layers"] == 3
    dense = [layer for layer in model.projector.layers if "dense" in layer.name]
    assert [d.units for d in dense] == [32, 32, 16]
    frozen = net.get_layer("patch_embed").weights
    trained = {id(v) for v in model.ssl_trainable_variables}
    assert frozen and not any(id(v) in trained for v in frozen)
    before = [np.array(v) for v in frozen]
    block = np.array(net.get_layer("block1_mlp_fc1").kernel)
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(((x[:4], x[4:]), np.arange(4))).batch(4)
    methods.set_training_length(model, 1, 1)
    model.compile(make_optimizer("adamw", 1e-2))
    model.fit(data, epochs=1, verbose=0)
    for b, v in zip(before, frozen):
        np.testing.assert_array_equal(np.array(v), b)
    assert np.abs(np.array(net.get_layer("block1_mlp_fc1").kernel) - block).max() > 0
    # The user's setting wins; ResNets keep the ResNet recipe and cannot freeze a patch layer.
    free = methods.build("mocov3", backbones.build("vit_tiny", image_size=16, patch_size=8),
                         image_size=16, freeze_patch_embed=0, temperature=0.5, **HEADS)
    assert free.backbone.get_layer("patch_embed").trainable and free.hparams["temperature"] == 0.5
    resnet = methods.build("mocov3", "resnet_tiny", image_size=16, **HEADS)
    assert resnet.hparams["temperature"] == 1.0 and resnet.hparams["proj_layers"] == 2
    with pytest.raises(ConfigError, match="freeze_patch_embed needs a ViT"):
        methods.build("mocov3", "resnet_tiny", image_size=16, freeze_patch_embed=1, **HEADS)
