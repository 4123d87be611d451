"""Every SSL model round-trips: get_config → from_config, JSON, and a .keras file loaded with
safe_mode=True give the same architecture, settings and (for the file) the same weights."""
import json

import keras
import numpy as np
import pytest

from sslzoo import methods
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM

TINY = {
    "simclr": {"temperature": 0.3},
    "mocov2": {"queue_size": 12, "momentum": 0.5},
    "mocov3": {"pred_hidden_dim": 16, "momentum": 0.5},
    "byol": {"pred_hidden_dim": 16, "momentum": 0.5},
    "simsiam": {"pred_hidden_dim": 8, "fix_pred_lr": 1},
    "barlow_twins": {},
    "vicreg": {},
    "swav": {"num_prototypes": 10, "queue_length": 8},
    "dino": {"out_dim": 24, "momentum": 0.5, "local_crops": 2},
    "nnclr": {"pred_hidden_dim": 16, "queue_size": 12},
    "dcl": {"weighted": 1, "sigma": 0.7},
    "deepcluster_v2": {"num_prototypes": 5, "prototype_sets": 2, "memory_size": 12},
    "tico": {"momentum": 0.5, "rho": 4.0},
    "wmse": {"w_size": 4, "w_eps": 0.1},
    "mmcr": {"views": 3},
    "emp_ssl": {"patches": 3, "eps": 0.3},
    "mae": {"mask_ratio": 0.5, "decoder_depth": 1, "decoder_width": 32, "norm_pix_loss": 0},
}
KW = dict(image_size=16, num_classes=10, proj_hidden_dim=32, proj_dim=16, crr_every=2,
          taps=("stage2", "proj"), augment="crop_scale=0.5:1,flip=0", seed=7)


VIT_ONLY = {"mae"}  # built on vit_tiny here, with block taps and no projector sizes


def _kw(name):
    """(backbone, build arguments) of method ``name`` in these tests."""
    if name not in VIT_ONLY:
        return "resnet_tiny", KW
    kw = {k: v for k, v in KW.items() if not k.startswith("proj_")}
    return "vit_tiny", {**kw, "taps": ("block2", "proj")}


def _build(name, **kw):
    backbone, base = _kw(name)
    return methods.build(name, backbone, **{**base, **kw}, **TINY[name])


def _shapes(model):
    return sorted((v.path, tuple(v.shape)) for v in model.weights)


def test_every_method_has_a_round_trip_case():
    assert sorted(TINY) == methods.available()


@pytest.mark.parametrize("name", sorted(TINY))
def test_from_config_rebuilds_the_same_model(name):
    m = _build(name)
    config = json.loads(json.dumps(m.get_config()))  # JSON-able, too
    clone = type(m).from_config(config)
    assert type(clone) is type(m)
    assert json.loads(json.dumps(clone.get_config())) == config  # config left as it was
    assert clone.hparams == m.hparams and clone.recipe == m.recipe
    assert (clone.taps, clone.crr_every, clone.seed) == (_kw(name)[1]["taps"], 2, 7)
    assert clone.recipe.crop_scale == (0.5, 1.0) and clone.recipe.flip is False
    assert _shapes(clone) == _shapes(m)


def test_registered_so_keras_deserialises_by_name():
    m = _build("byol")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert type(clone).__name__ == "BYOL" and clone.hparams == m.hparams


def test_augment_as_a_dict_round_trips():
    m = _build("simclr", augment={"crop_scale": (0.3, 0.9), "gray_p": 0.0})
    clone = type(m).from_config(json.loads(json.dumps(m.get_config())))
    assert clone.recipe == m.recipe and clone.recipe.crop_scale == (0.3, 0.9)


def _images(size=16, n=4):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name", ["simclr", "byol", "swav", "mae"])
def test_keras_file_loads_with_safe_mode(tmp_path, name):
    m = _build(name)  # compiled and built as pretraining leaves it
    m.compile(make_optimizer(methods.get(name).optim_defaults["optimizer"], 0.05))
    m.build_all()
    x = _images()
    for v in m.weights:  # weights that differ from any fresh initialisation
        v.assign(np.random.default_rng(len(v.path)).normal(size=v.shape).astype(v.dtype))
    path = str(tmp_path / "model.keras")
    m.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(m) and _shapes(loaded) == _shapes(m)
    want = {v.path: v.numpy() for v in m.weights}
    for v in loaded.weights:
        np.testing.assert_array_equal(v.numpy(), want[v.path], err_msg=v.path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), m.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_umm_round_trips():
    m = UMM(_build("simclr"), early="stage1", beta=0.5, gamma=0.1, early_lr_mult=0.5)
    m.ssl_model.build_from_config(m.ssl_model.get_build_config())  # as deserialising does
    clone = UMM.from_config(json.loads(json.dumps(m.get_config())))
    assert clone.settings == m.settings
    assert clone.ssl_model.hparams == m.ssl_model.hparams
    assert _shapes(clone) == _shapes(m)


def test_a_custom_functional_backbone_round_trips_serialised():
    images = keras.Input((16, 16, 3), name="images")
    x = keras.layers.Conv2D(4, 3, name="conv")(images)
    net = keras.Model(images, keras.layers.GlobalAveragePooling2D(name="pooled")(x), name="mine")
    m = methods.get("simclr")(net, crr_every=0, proj_hidden_dim=8, proj_dim=4)
    config = json.loads(json.dumps(m.get_config()))
    assert config["backbone"]["class_name"] == "Functional"
    clone = methods.get("simclr").from_config(config)
    assert clone.backbone.name == "mine" and _shapes(clone) == _shapes(m)


def test_a_zoo_backbone_is_stored_as_its_build_args():
    config = _build("simclr").get_config()
    assert config["backbone"] == {"build_args": {"name": "resnet_tiny", "image_size": 16,
                                                 "stem": "cifar", "sync_bn": False}}
