"""The entries shipped in weights/: listed, within the size limit, loadable (sha256-checked), and\ncarded with the metrics sslzoo-finetune measures on them."""
import os

import numpy as np
import pytest

import sslzoo
from sslzoo import zoo
from sslzoo.methods import available

VIT_ONLY = {"mae"}  # MAE needs a ViT: it has no resnet_tiny entry
RESNET = [f"{m}_resnet_tiny_digits" for m in available() if m not in VIT_ONLY]
VIT = [f"{m}_vit_tiny_digits" for m in ("mae", "dino", "mocov3")]  # issue 20's entries
SHIPPED = sorted(sslzoo.list_models())  # every entry in weights/ (ViT ones too) is tested


def test_every_method_and_vit_entry_ships():
    assert set(RESNET) | set(VIT) <= set(SHIPPED)
    assert VIT_ONLY <= set(available())


@pytest.mark.parametrize("name", SHIPPED)
def test_entry_files_are_small_and_carded(name):
    src = zoo.resolve(name)
    card = src.card
    assert name == f"{card['method']}_{card['backbone']}_{card['dataset']}"
    assert card["backbone"] in ("resnet_tiny", "vit_tiny") and card["dataset"] == "digits"
    assert card["command"].startswith("sslzoo-pretrain")
    assert card["sha256"] == zoo.digests(src.weights)
    assert 0.5 < card["metrics"]["linear_top1"] <= 1 and 0.5 < card["metrics"]["knn_top1"] <= 1
    assert card["metrics_source"].startswith(f"sslzoo-finetune --init_from={name} --mode=linear")
    for f in (*zoo.weights_files(src.weights), src.projector):
        assert os.path.getsize(f) <= 5 * 1024 * 1024


def test_load_one_shipped_entry_with_and_without_projector():
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    emb = np.asarray(sslzoo.load("simclr_resnet_tiny_digits")(x))
    proj = np.asarray(sslzoo.load("simclr_resnet_tiny_digits", include_projector=True)(x))
    assert emb.shape == (3, 128) and proj.shape == (3, 128)
    assert np.isfinite(emb).all() and emb.std() > 0


def test_card_knn_is_what_sslzoo_finetune_measures(tfds_dir, tmp_path):
    """The card's kNN figure is re-measured on the shipped file (knn is deterministic)."""
    from sslzoo.finetune import finetune

    name = "simclr_resnet_tiny_digits"
    results = finetune(init_from=name, mode="knn", data_dir=tfds_dir, verbose=0,
                       output_dir=str(tmp_path / "knn"))
    assert results["top1"]["test"] == zoo.resolve(name).card["metrics"]["knn_top1"]


def test_setup_cfg_installs_every_entry():
    """Each weights/ entry has a data_files line, so a wheel installs it where zoo looks."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "setup.cfg")) as f:
        cfg = f.read()
    for name in os.listdir(os.path.join(root, "weights")):
        assert f"share/sslzoo/weights/{name} = weights/{name}/*" in cfg, name


@pytest.mark.parametrize("name", SHIPPED)
def test_every_entry_rebuilds_its_model_and_projector(name):
    """The card's serialised model names the entry's method and backbone, and its projector
    weights load into the heads it rebuilds (strictly: every variable, every shape)."""
    src = zoo.resolve(name)
    model = zoo.ssl_model(src, name)
    assert model.method == src.card["method"] and model.backbone.name == src.card["backbone"]
    assert src.card["model"]["config"]["backbone"]["build_args"]["image_size"] == 32
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    out = np.asarray(sslzoo.load(name, include_projector=True)(x))
    width = model.projector(np.zeros((1, model.feature_dim), "float32")).shape[-1]
    assert out.shape == (2, width) and np.isfinite(out).all()
