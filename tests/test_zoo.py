"""sslzoo.zoo on a real (tiny) pretrain run and the entry written from it: listing, loading by
name, sha256 and architecture checks, corrupt and bare weights files, the projector."""
import json
import os
import shutil
from unittest import mock

import keras
import numpy as np
import pytest

import sslzoo
from sslzoo import backbones, zoo
from sslzoo.errors import ConfigError
from sslzoo.errors import WeightsError
from sslzoo.export.entry import write_entry

pytestmark = pytest.mark.slow  # a pretraining run (shared with tests/export)

NAME = "simclr_resnet_tiny_digits"


@pytest.fixture(scope="module")
def weights_dir(tiny_run, tmp_path_factory):
    """A weights folder holding the tiny run's entry."""
    out = tmp_path_factory.mktemp("weights")
    write_entry(tiny_run, str(out))
    return out


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("uint8")


def _copy_entry(weights_dir, tmp_path):
    dst = tmp_path / NAME
    shutil.copytree(weights_dir / NAME, dst)
    return dst


def _edit_card(entry, **changes):
    card = json.loads((entry / "card.json").read_text())
    card.update(changes)
    (entry / "card.json").write_text(json.dumps(card))


def test_entry_is_listed_and_loads_by_name_like_the_run(weights_dir, tiny_run, images,
                                                        monkeypatch):
    card = json.loads((weights_dir / NAME / "card.json").read_text())
    assert card["name"] == NAME and card["method"] == "simclr" and card["image_size"] == 32
    assert card["sha256"] == zoo.sha256(str(weights_dir / NAME / "backbone.weights.h5"))
    assert card["config"]["batch_size"] == 64 and card["metrics_source"].startswith("pretrain")
    summary = json.loads(open(os.path.join(tiny_run, "summary.json")).read())
    assert card["metrics"] == {"linear_top1": summary["linear_probe_top1"],
                               "knn_top1": summary["knn_top1"]}
    assert card["command"] == ("sslzoo-pretrain '--split=train[:256]' "
                               "'--probe_train_split=train[:256]' '--probe_test_split=test[:200]' "
                               "--epochs=1 --batch_size=64 "
                               "--hparams=proj_hidden_dim=128,proj_dim=64 --crr_every=0")
    assert card["crr"] is None  # the run had CRR off (tests/export covers a CRR report)
    for key in ("date", "projector_sha256", "sslzoo_version", "keras_version",
                "tensorflow_version", "stem", "dataset", "backbone"):
        assert card[key], key

    monkeypatch.setenv("SSLZOO_WEIGHTS", str(weights_dir))
    assert NAME in sslzoo.list_models()
    net = sslzoo.load(NAME)
    assert net.name == f"sslzoo_{NAME}" and net.sslzoo_source.kind == "entry"
    expected = zoo.load(tiny_run)(images.astype("float32"))
    np.testing.assert_allclose(net(images), expected, atol=1e-6)
    with pytest.raises(WeightsError, match="not a zoo name.*SSLZOO_WEIGHTS"):
        sslzoo.load("no_such_model")


@pytest.mark.parametrize("damage", ["card", "weights"])
def test_sha256_mismatch_is_refused_before_loading(weights_dir, tmp_path, damage):
    entry = _copy_entry(weights_dir, tmp_path)
    if damage == "card":
        _edit_card(entry, sha256="0" * 64)
    else:  # flip one byte in the middle of the file
        path = entry / "backbone.weights.h5"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with mock.patch.object(zoo, "build_backbone", side_effect=AssertionError("loaded")):
        with pytest.raises(WeightsError, match="sha256.*nothing was loaded"):
            zoo.load(str(entry))


def test_wrong_architecture_is_refused(weights_dir, tmp_path):
    entry = _copy_entry(weights_dir, tmp_path)
    _edit_card(entry, backbone="resnet_small")
    with pytest.raises(WeightsError, match="another architecture"):
        zoo.load(str(entry))


def test_corrupt_weights_file_is_refused(tiny_run, tmp_path):
    run = tmp_path / "run"  # a run directory: no card, so no sha256 to catch it first
    run.mkdir()
    for name in ("config.json", "summary.json"):
        shutil.copy(os.path.join(tiny_run, name), run / name)
    (run / "backbone.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(WeightsError, match="corrupt"):
        zoo.load(str(run))


def test_bare_weights_file_needs_backbone(tiny_run, tmp_path, images):
    bare = tmp_path / "bare.weights.h5"
    shutil.copy(os.path.join(tiny_run, "backbone.weights.h5"), bare)
    with pytest.raises(WeightsError, match="backbone="):
        zoo.load(str(bare))
    net = zoo.load(str(bare), backbone="resnet_tiny", image_size=32)
    np.testing.assert_allclose(net(images), zoo.load(tiny_run)(images), atol=1e-6)


def test_include_projector_gives_the_projector_output(weights_dir, images):
    net = zoo.load(str(weights_dir / NAME), include_projector=True)
    assert net(images).shape == (6, 64)  # proj_dim=64


def test_include_projector_on_a_study_run_config(tiny_run, tmp_path, images):
    """A sslzoo-study run's config.json has keys PretrainConfig lacks; the projector loads."""
    run = tmp_path / "study_run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "study_every": 10,
                                                 "probe_fit_split": "train[:256]"}))
    assert zoo.load(str(run), include_projector=True)(images).shape == (6, 64)


def _projector_output(folder, images):
    return zoo.load(str(folder), include_projector=True)(images).numpy()


def test_run_and_entry_store_the_serialised_model(tiny_run, weights_dir, images):
    """model.json (a run) and the card's "model" (an entry) rebuild the trained heads: the
    projector output equals the trained model's, whatever the config says."""
    model = json.loads(open(os.path.join(tiny_run, zoo.MODEL_FILE)).read())
    assert model["registered_name"] == "sslzoo>SimCLR"
    assert model["config"]["hparams"]["proj_dim"] == 64
    card = json.loads((weights_dir / NAME / "card.json").read_text())
    assert card["model"] == model
    src = zoo.resolve(tiny_run)
    trained = zoo.ssl_model(src, "run")
    zoo.strict_load(trained.backbone, src.weights, "run")
    zoo.strict_load(trained.projector, src.projector, "run")
    want = trained.projector(trained.backbone(images.astype("float32"))).numpy()
    np.testing.assert_allclose(_projector_output(tiny_run, images), want, atol=1e-5)
    np.testing.assert_allclose(_projector_output(weights_dir / NAME, images), want, atol=1e-5)


def test_model_json_wins_over_the_config_flags(tiny_run, tmp_path, images):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hparams": "proj_dim=8"}))
    assert _projector_output(run, images).shape == (6, 64)
    (run / zoo.MODEL_FILE).unlink()  # a run from before model.json: the config's hparams
    with pytest.raises(WeightsError, match="shapes do not match"):
        zoo.load(str(run), include_projector=True)


def test_corrupt_model_json_is_a_clear_error(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / zoo.MODEL_FILE).write_text('{"module": "x", "class_name": "Nope", "config": {}}')
    with pytest.raises(WeightsError, match="does not rebuild a sslzoo model"):
        zoo.load(str(run), include_projector=True)
    (run / zoo.MODEL_FILE).write_text("{trunc")
    with pytest.raises(WeightsError, match="not JSON"):
        zoo.load(str(run), include_projector=True)
    assert zoo.load(str(run)).output.shape[-1] == 128  # the backbone never reads model.json


@pytest.fixture(scope="module")
def sharded(tiny_run, tmp_path_factory):
    """The tiny run's entry with a shard size small enough to shard its backbone."""
    out = tmp_path_factory.mktemp("sharded")
    with mock.patch.object(zoo, "SHARD_BYTES", 700_000):
        write_entry(tiny_run, str(out))
    return out / NAME


def test_a_large_backbone_is_sharded_and_loads_like_the_run(sharded, tiny_run, images):
    files = sorted(os.listdir(sharded))
    shards = [f for f in files if f.startswith("backbone_")]
    assert "backbone.weights.h5" not in files and "backbone.weights.json" in files
    assert len(shards) >= 2
    card = json.loads((sharded / "card.json").read_text())
    assert card["sha256"] == {f: zoo.sha256(str(sharded / f))
                              for f in ["backbone.weights.json", *shards]}
    expected = zoo.load(tiny_run)(images.astype("float32"))
    np.testing.assert_allclose(zoo.load(str(sharded))(images), expected, atol=1e-6)
    again = write_entry(str(sharded), str(sharded.parent / "again"))  # entry -> entry
    np.testing.assert_allclose(zoo.load(again)(images), expected, atol=1e-6)


@pytest.mark.parametrize("damage", ["flip", "delete", "index"])
def test_a_damaged_or_missing_shard_is_refused_before_loading(sharded, tmp_path, damage):
    entry = tmp_path / NAME
    shutil.copytree(sharded, entry)
    shard = sorted(entry.glob("backbone_*.weights.h5"))[1]
    if damage == "flip":
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
        match = f"sha256 check .{shard.name} differ.*nothing was loaded"
    elif damage == "delete":
        shard.unlink()
        match = f"{shard.name}.*missing.*incomplete"
    else:
        (entry / "backbone.weights.json").write_text('{"metadata": {}}')
        match = "not a Keras sharded-weights index"
    with mock.patch.object(zoo, "build_backbone", side_effect=AssertionError("loaded")):
        with pytest.raises(WeightsError, match=match):
            zoo.load(str(entry))


def test_pool_picks_a_vits_readout_of_the_same_weights(tmp_path, images):
    net = backbones.build("vit_tiny", image_size=32)
    path = str(tmp_path / "vit.weights.h5")
    net.save_weights(path)
    tokens = keras.Model(net.input, net.get_layer("norm").output)(images.astype("float32"))
    tokens = np.asarray(tokens)
    for pool, want in ((None, tokens[:, 0]), ("cls", tokens[:, 0]),
                       ("mean", tokens[:, 1:].mean(axis=1))):
        got = zoo.load(path, backbone="vit_tiny", pool=pool).predict(images, verbose=0)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="pool are ViT options"):
        zoo.load(path, backbone="resnet_tiny", pool="mean")
