"""apps/export.py and sslzoo.export end to end on the tiny pretrain run: the SavedModel (uint8
serving signature, equal to Keras, saved_model_cli, fine-tunable), the entry, model.keras, a
finetune-run source, --overwrite and bad sources."""
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import zoo
from sslzoo.errors import ConfigError, WeightsError
from sslzoo.export import export, write_entry
from tests.apps.conftest import REPO, run_app

pytestmark = pytest.mark.slow

NAME = "simclr_resnet_tiny_digits"


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """``sslzoo-export --source=<run> --output_dir=<out>`` in a subprocess: (out, stdout)."""
    out = tmp_path_factory.mktemp("export") / "out"
    proc = run_app("export", f"--source={tiny_run}", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3)).astype("uint8")


def test_app_writes_the_saved_model_the_entry_and_model_keras(exported, tiny_run, images):
    out, stdout = exported
    for line in (f"SavedModel: {out / 'saved_model'}", f"zoo entry:  {out / NAME}",
                 f"Keras file: {out / 'model.keras'}",
                 "serving_default(images: uint8[None, 32, 32, 3]) -> embedding: "
                 "float32[None, 128]"):
        assert line in stdout
    assert set(os.listdir(out)) == {NAME, "model.keras", "saved_model"}  # no temporaries
    assert sorted(os.listdir(out / NAME)) == ["backbone.weights.h5", "card.json",
                                              "projector.weights.h5"]
    expected = zoo.load(tiny_run)(images)
    np.testing.assert_allclose(zoo.load(str(out / NAME))(images), expected, atol=1e-6)
    plain = keras.saving.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_allclose(plain(images), expected, atol=1e-5)  # uint8 in, like the zoo


def test_saved_model_equals_keras_on_uint8_images(exported, tiny_run, images):
    out, _ = exported
    loaded = tf.saved_model.load(str(out / "saved_model"))
    serve = loaded.signatures["serving_default"]
    assert serve.structured_input_signature[1]["images"].dtype == tf.uint8
    got = serve(images=tf.constant(images))["embedding"].numpy()
    expected = np.asarray(zoo.load(tiny_run)(images))
    assert got.shape == (5, 128)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(loaded.forward(tf.constant(images, tf.float32)), expected,
                               atol=1e-5)


def test_saved_model_cli_shows_and_runs_it(exported, images, tmp_path):
    out, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")  # the venv's
    cli = cli if os.path.exists(cli) else "saved_model_cli"
    np.save(tmp_path / "x.npy", images)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    sm = str(out / "saved_model")
    args = [[cli, "show", "--dir", sm, "--all"],
            [cli, "run", "--dir", sm, "--tag_set", "serve", "--signature_def", "serving_default",
             "--inputs", f"images={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "y")]]
    procs = [subprocess.Popen(a, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for a in args]
    (show, _), (run, _) = (p.communicate(timeout=120) for p in procs)
    assert all(p.returncode == 0 for p in procs), show[-2000:] + run[-2000:]
    assert "inputs['images'] tensor_info:\n        dtype: DT_UINT8" in show
    assert "outputs['embedding']" in show and "signature_def['forward_train']" in show
    got = np.load(tmp_path / "y" / "embedding.npy")
    serve = tf.saved_model.load(sm).signatures["serving_default"]
    np.testing.assert_allclose(got, serve(images=tf.constant(images))["embedding"], atol=1e-5)


def test_saved_model_backbone_fine_tunes_one_step(exported, images):
    out, _ = exported
    layer = keras.layers.TFSMLayer(str(out / "saved_model"), call_endpoint="forward",
                                   call_training_endpoint="forward_train", trainable=True)
    assert len(layer.trainable_weights) > 10 and layer.non_trainable_weights  # BN statistics
    inputs = keras.Input((32, 32, 3))
    clf = keras.Model(inputs, keras.layers.Dense(10)(layer(inputs)))
    clf.compile(keras.optimizers.SGD(0.1),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in layer.trainable_weights]
    loss = clf.train_on_batch(images.astype("float32"), np.arange(5))
    assert np.isfinite(loss)
    changed = [not np.allclose(a, w.numpy()) for a, w in zip(before, layer.trainable_weights)]
    assert sum(changed) > len(changed) // 2


def test_finetune_run_source_exports_logits(tiny_run, tmp_path, images):
    run = tmp_path / "ft"  # a sslzoo-finetune run directory, fabricated: model.keras + results
    run.mkdir()
    net = zoo.load(tiny_run)
    clf = keras.Model(net.input, keras.layers.Dense(10, name="head")(net.output))
    clf.save(run / "model.keras")
    (run / "results.json").write_text(json.dumps({"mode": "linear", "top1": {"test": 0.5}}))
    (run / "config.json").write_text(json.dumps({"mode": "linear", "init_from": tiny_run}))

    result = export(source=str(run), output_dir=str(tmp_path / "out"), keras_file=False)
    assert result["kind"] == "finetune" and result["entry"] is None
    assert result["signature"].endswith("-> logits: float32[None, 10]")
    assert sorted(os.listdir(tmp_path / "out")) == ["saved_model"]
    serve = tf.saved_model.load(result["saved_model"]).signatures["serving_default"]
    np.testing.assert_allclose(serve(images=tf.constant(images))["logits"], clf(images),
                               atol=1e-5)
    with pytest.raises(ConfigError, match="finetune run"):
        write_entry(str(run), str(tmp_path / "w"))


def test_existing_outputs_need_overwrite(exported, tiny_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(exported[0], out)
    stamp = os.path.getmtime(out / NAME / "card.json")
    with pytest.raises(ConfigError, match=f"{out / 'saved_model'} already exists.*--overwrite"):
        export(source=tiny_run, output_dir=str(out))
    with pytest.raises(ConfigError, match=f"{out / NAME} already exists.*--overwrite"):
        write_entry(tiny_run, str(out))
    shutil.rmtree(out / "saved_model")
    with pytest.raises(ConfigError, match=f"{out / 'model.keras'} already exists"):
        export(source=tiny_run, output_dir=str(out), entry=False)
    assert os.path.getmtime(out / NAME / "card.json") == stamp  # nothing was touched

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"linear_top1": 0.9, "knn_top1": 0.8}))
    result = export(source=tiny_run, output_dir=str(out), overwrite=True, keras_file=False,
                    metrics_json=str(metrics), command="sslzoo-pretrain --epochs=1")
    card = json.loads((out / NAME / "card.json").read_text())
    assert card["metrics"] == {"linear_top1": 0.9, "knn_top1": 0.8}
    assert card["metrics_source"] == f"--metrics_json={metrics}"
    assert card["command"] == "sslzoo-pretrain --epochs=1"
    assert os.path.isdir(result["saved_model"])
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no temporaries left
    # Re-exporting the entry itself (a zoo-entry source) keeps its card's metrics.
    again = write_entry(str(out / NAME), str(tmp_path / "w"), name="copy")
    assert json.loads(open(os.path.join(again, "card.json")).read())["metrics"] == card["metrics"]


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="not a zoo name, folder or weights file"):
        export(source=str(tmp_path / "missing"), output_dir=str(tmp_path / "out"))
    with pytest.raises(WeightsError, match="neither card.json"):
        export(source=str(tmp_path), output_dir=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="--source is required"):
        export(output_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_measure_takes_the_card_metrics_from_sslzoo_finetune(tiny_run, tfds_dir, tmp_path):
    """--measure: the card's metrics are sslzoo-finetune's linear and knn top-1 on the written
    weights (digits train -> test), and the card names the commands."""
    from sslzoo.finetune import finetune

    path = write_entry(tiny_run, str(tmp_path / "weights"), measure=True)
    card = json.loads(open(os.path.join(path, "card.json")).read())
    linear, knn = card["metrics"]["linear_top1"], card["metrics"]["knn_top1"]
    assert 0.1 < linear <= 1 and 0.1 < knn <= 1
    assert card["metrics_detail"]["knn"]["knn"]["20"] == knn
    assert card["metrics_source"] == (
        f"sslzoo-finetune --init_from={NAME} --mode=linear --dataset=digits --train_split=train "
        f"--test_split=test --seed=0 ; sslzoo-finetune --init_from={NAME} --mode=knn "
        "--dataset=digits --train_split=train --test_split=test --seed=0")
    again = finetune(init_from=path, mode="knn", data_dir=tfds_dir, verbose=0,
                     output_dir=str(tmp_path / "knn"))
    assert again["top1"]["test"] == knn  # knn is deterministic: the same file, the same figure
    with pytest.raises(ConfigError, match="not both"):
        write_entry(tiny_run, str(tmp_path / "w2"), metrics={"linear_top1": 1.0}, measure=True)
