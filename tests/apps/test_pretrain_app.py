"""End-to-end runs of apps/pretrain.py (marked slow: a few seconds to a minute each)."""
import csv
import json
import os
import signal
import subprocess
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import backbones, methods
from sslzoo.errors import TrainingError
from sslzoo.methods.simclr import SimCLR
from sslzoo.train.pretrain import pretrain
from sslzoo.train.selection import load_selected
from tests.apps.conftest import REPO, SMALL, app_cmd, run_app
from tests.train.test_reproducible import weights

pytestmark = pytest.mark.slow


def _small_kwargs(tmp_path, tfds_dir, **kw):
    settings = dict(split="train[:256]", probe_train_split="train[:256]",
                    probe_test_split="test[:200]", batch_size=64, epochs=2, verbose=0,
                    hparams="proj_hidden_dim=128,proj_dim=64", data_dir=tfds_dir,
                    output_dir=str(tmp_path / "run"))
    return {**settings, **kw}


def test_pretrain_writes_a_complete_run_dir(tmp_path, tfds_dir):
    summary = pretrain(**_small_kwargs(tmp_path, tfds_dir, augment="flip=0,crop_scale=0.3:1"))
    run = tmp_path / "run"
    assert summary["augment_recipe"]["flip"] is False  # the recipe the run actually used
    assert list(summary["augment_recipe"]["crop_scale"]) == [0.3, 1.0]
    for name in ("config.json", "metrics.csv", "summary.json", "backbone.weights.h5",
                 "checkpoints/checkpoint", "tb", "crr_report.json", "crr.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["batch_size"] == 64
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    for tap in ("stage1", "stage4", "proj"):  # per-step monitor and per-epoch reference ΔR
        assert all(float(r[f"crr/{tap}/delta_r"]) > 0 for r in rows)
        assert all(float(r[f"crr/{tap}/heldout_delta_r"]) > 0 for r in rows)
        assert all(float(r[f"rankme/{tap}"]) >= 1 and float(r[f"lidar/{tap}"]) >= 1
                   for r in rows)  # the label-free scores of sslzoo.quality, beside ΔR
    report = json.loads((run / "crr_report.json").read_text())
    assert len(report["history"]["stage4"]["train"]) == 2 and "crr_warning" in summary
    assert summary["steps"] == 2 * (256 // 64)
    assert 0.0 <= summary["linear_probe_top1"] <= 1.0 and summary["images_per_sec"] > 0
    # The saved backbone loads into a fresh one by name, with no renaming.
    net = backbones.build("resnet_tiny", image_size=32)
    net.load_weights(str(run / "backbone.weights.h5"))
    assert not any(f.name.startswith(".tmp-") for f in run.iterdir())


def test_select_by_ends_with_the_best_epoch_by_the_score(tmp_path, tfds_dir):
    summary = pretrain(**_small_kwargs(tmp_path, tfds_dir, epochs=3, select_by="lidar/stage4",
                                       lidar_images=32, crr_reference_size=64))
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    scores = [float(r["lidar/stage4"]) for r in rows]
    assert summary["selected"]["epoch"] == 1 + int(np.argmax(scores))
    assert summary["selected"]["value"] == pytest.approx(max(scores))
    assert summary["steps"] == 3 * 4  # the optimizer's state is not rolled back
    # The saved backbone is the selected epoch's, not the last one's.
    model = methods.build("simclr", "resnet_tiny", image_size=32, num_classes=10,
                          proj_hidden_dim=128, proj_dim=64)  # with the run's online probe
    model.compile(keras.optimizers.Adam())
    model.build_all()
    model.set_weights(load_selected(str(run / "selected.weights.npz")))
    saved = backbones.build("resnet_tiny", image_size=32)
    saved.load_weights(str(run / "backbone.weights.h5"))
    for a, b in zip(model.backbone.weights, saved.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="choose one of"):
        pretrain(**_small_kwargs(tmp_path, tfds_dir, select_by="rankme/stage9",
                                 output_dir=str(tmp_path / "bad")))
    assert not (tmp_path / "bad").exists()  # refused before the run directory is made


def test_steps_per_epoch_repeats_the_split(tmp_path, tfds_dir):
    summary = pretrain(**_small_kwargs(tmp_path, tfds_dir, split="train[:128]", crr_every=0,
                                       steps_per_epoch=3, schedule="constant"))
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert summary["steps"] == summary["total_steps"] == 2 * 3  # 128 images give 2 batches
    assert summary["schedule"] == "constant"


class NaNAfterFourSteps(SimCLR):
    method = "nan_test"

    def ssl_loss(self, out, n):
        loss = super().ssl_loss(out, n)
        return tf.where(self.optimizer.iterations >= 4, np.float32(np.nan), loss)


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path, tfds_dir,
                                                                   monkeypatch):
    monkeypatch.setitem(methods.METHODS, "nan_test", NaNAfterFourSteps)
    with pytest.raises(TrainingError, match="loss became nan at step .*last good checkpoint"):
        pretrain(**_small_kwargs(tmp_path, tfds_dir, method="nan_test", epochs=3))
    run = tmp_path / "run"
    # checkpoints are named by their step: the first epoch of 4 steps ends at ckpt-4
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-4")
    assert not (run / "backbone.weights.h5").exists()


def test_killed_run_resumes_from_its_checkpoint(tmp_path, tfds_dir):
    out = str(tmp_path / "run")
    args = [*SMALL, f"--data_dir={tfds_dir}", f"--output_dir={out}", "--epochs=6"]
    proc = subprocess.Popen(app_cmd("pretrain", *args), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt_index = os.path.join(out, "checkpoints", "checkpoint")
    deadline = time.time() + 240
    while not os.path.exists(ckpt_index) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.exists(ckpt_index), "no checkpoint before the kill"

    # What the killed run left: its latest checkpoint restores, with step = epoch × 4.
    saved = tf.train.latest_checkpoint(os.path.join(out, "checkpoints"))
    reader = tf.train.load_checkpoint(saved)
    epoch = int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    step_keys = [k for k in reader.get_variable_to_shape_map() if "iteration" in k]
    assert epoch >= 1 and step_keys
    assert int(reader.get_tensor(step_keys[0])) == epoch * 4
    assert epoch < 6, "the run finished before it was killed; nothing to resume"

    resumed = run_app("pretrain", f"--output_dir={out}", "--resume", "--verbose=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {out} at step {epoch * 4} (epoch {epoch + 1}, batch 1)" in resumed.stderr
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    summary = json.loads(open(os.path.join(out, "summary.json")).read())
    assert summary["steps"] == 24
    # The learning-rate schedule carried on: each epoch's lr is the schedule at its last step.
    cfg = json.loads(open(os.path.join(out, "config.json")).read())
    sched = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=24 - round(cfg["warmup_epochs"] * 4), warmup_target=summary[
            "peak_learning_rate"], warmup_steps=round(cfg["warmup_epochs"] * 4))
    for r in rows:
        assert float(r["lr"]) == pytest.approx(float(sched(int(r["epoch"]) * 4 - 1)), rel=1e-4)


def test_bad_flags_give_clear_errors(tmp_path, tfds_dir):
    r = run_app("pretrain", "--method=simclrr", f"--output_dir={tmp_path}/a")
    assert r.returncode == 2 and "valid choices: barlow_twins, byol" in r.stderr and "simclr, simsiam" in r.stderr
    r = run_app("pretrain", "--batch_size=0")
    assert r.returncode != 0 and "batch_size" in r.stderr
    r = run_app("pretrain", "--dataset=no_such_dataset", f"--data_dir={tfds_dir}",
                f"--output_dir={tmp_path}/b")
    assert r.returncode == 2 and "digits" in r.stderr


@pytest.mark.heavy
def test_deterministic_flag_runs_and_gives_the_same_run_as_without_it(tmp_path, tfds_dir):
    """Two processes, one with TensorFlow's op determinism on: on a CPU both give the same
    weights, because the run is already deterministic."""
    outs = []
    for i, extra in enumerate(([], ["--deterministic"])):
        out = tmp_path / f"run{i}"
        r = run_app("pretrain", *SMALL, f"--data_dir={tfds_dir}", f"--output_dir={out}",
                    "--epochs=1", "--crr_reference_size=32", *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append(out)
    assert json.loads((outs[1] / "config.json").read_text())["deterministic"] is True
    wa, wb = (weights(o) for o in outs)
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
