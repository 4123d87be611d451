"""A run is a function of its config and seed, and a resumed run is the uninterrupted one."""
import csv
import json
import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo.errors import TrainingError
from sslzoo.train import callbacks
from sslzoo.train.pretrain import pretrain

STEPS = 3  # batches per epoch: train[:96] in batches of 32


class Interrupt(Exception):
    pass


class KillAt(keras.callbacks.Callback):
    """Stops the run abruptly after optimizer step ``step``, before that step's checkpoint."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            raise Interrupt(self.step)


def settings(out, tfds_dir, **kw):
    base = dict(split="train[:96]", probe_train_split="train[:64]",
                probe_test_split="test[:64]", batch_size=32, epochs=3, verbose=0,
                crr_reference_size=32, hparams="proj_hidden_dim=32,proj_dim=16",
                data_dir=tfds_dir, output_dir=str(out), checkpoint_every_steps=1, seed=3)
    return {**base, **kw}


def weights(run):
    out = {}
    with h5py.File(os.path.join(run, "backbone.weights.h5")) as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     else None)
    return out


def rows(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return [{k: v for k, v in r.items() if k != "time"} for r in csv.DictReader(f)]


def assert_same_run(a, b, files=("crr_report.json",)):
    ra, rb = rows(a), rows(b)
    assert [int(r["epoch"]) for r in ra] == [int(r["epoch"]) for r in rb]
    for x, y in zip(ra, rb):
        assert x == y, {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)}
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    for name in files:
        ja, jb = (json.load(open(os.path.join(r, name))) for r in (a, b))
        ja.pop("pretrain", None), jb.pop("pretrain", None)  # the study's copy of the summary
        assert ja == jb, name
    sa, sb = (json.load(open(os.path.join(r, "summary.json"))) for r in (a, b))
    timing = {"images_per_sec", "wall_time_sec", "output_dir"}
    assert {k: v for k, v in sa.items() if k not in timing} == {
        k: v for k, v in sb.items() if k not in timing}


def killed_then_resumed(out, tfds_dir, kills, run=pretrain, **kw):
    """The run killed after each step in ``kills`` in turn, resumed each time, then finished."""
    for i, step in enumerate(kills):
        with pytest.raises(Interrupt):
            run(**settings(out, tfds_dir, resume=i > 0, **kw), callbacks=[KillAt(step)])
    return run(**settings(out, tfds_dir, resume=True, **kw))


@pytest.fixture(scope="module")
def simclr_run(tmp_path_factory, tfds_dir):
    out = tmp_path_factory.mktemp("simclr") / "run"
    pretrain(**settings(out, tfds_dir))
    return out


def test_the_same_seed_gives_the_same_run(simclr_run, tmp_path, tfds_dir):
    pretrain(**settings(tmp_path / "again", tfds_dir))
    assert_same_run(simclr_run, tmp_path / "again")


def test_another_seed_gives_other_batches_and_views(tfds_dir):
    from sslzoo.data import load
    from sslzoo.data.augment import TwoViews
    from sslzoo.data.pipeline import ssl_batches

    data = load("digits", "train[:96]", data_dir=tfds_dir)
    (a, _), ya = next(iter(ssl_batches(data, 32, TwoViews(), seed=3)))
    (b, _), yb = next(iter(ssl_batches(data, 32, TwoViews(), seed=4)))
    assert not np.array_equal(ya, yb) and not np.array_equal(a, b)


def scalars(run):
    """[(tag, step, value)] of a run's TensorBoard epoch scalars, in file order."""
    out = []
    for path in sorted(tf.io.gfile.glob(os.path.join(run, "tb", "train", "events.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.tag.startswith("epoch_") and v.tag != "epoch_learning_rate":
                    out.append((v.tag, event.step, float(tf.make_ndarray(v.tensor))))
    return out


def test_a_run_killed_mid_epoch_resumes_as_the_uninterrupted_run(simclr_run, tmp_path,
                                                                  tfds_dir):
    killed_then_resumed(tmp_path / "run", tfds_dir, [STEPS + 2])
    assert_same_run(simclr_run, tmp_path / "run")
    # TensorBoard holds each epoch once, with the uninterrupted run's values.
    got, want = scalars(tmp_path / "run"), scalars(simclr_run)
    assert len({(t, s) for t, s, _ in got}) == len(got)
    got, want = sorted(got), sorted(want)
    assert [g[:2] for g in got] == [w[:2] for w in want]
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-6)


@pytest.mark.heavy  # in CI: test_a_run_killed_mid_epoch_resumes_as_the_uninterrupted_run
def test_five_kills_at_random_steps_end_in_the_uninterrupted_run(simclr_run, tmp_path,
                                                                  tfds_dir):
    kills = sorted(np.random.default_rng(0).choice(np.arange(1, 3 * STEPS), 5, replace=False))
    killed_then_resumed(tmp_path / "run", tfds_dir, [int(k) for k in kills])
    assert_same_run(simclr_run, tmp_path / "run")


@pytest.mark.parametrize("kw", [
    # A momentum encoder and a queue, with the views made in the train step.
    pytest.param(dict(method="mocov2", hparams="proj_hidden_dim=32,proj_dim=16,queue_size=64",
                      augment_on="device"), marks=pytest.mark.heavy),
    dict(umm=True, umm_gamma=0.1),  # UMM's inner, outer and early optimizers
    # CRR taps measuring every other step, resumed at an odd one: their counters and values.
    dict(crr_every=2),
], ids=["mocov2_device_views", "umm", "crr_every_2"])
def test_resume_is_exact_for_state_and_extra_optimizers(tmp_path, tfds_dir, kw):
    pretrain(**settings(tmp_path / "a", tfds_dir, epochs=2, **kw))
    killed_then_resumed(tmp_path / "b", tfds_dir, [STEPS + 1], epochs=2, **kw)
    assert_same_run(tmp_path / "a", tmp_path / "b")


@pytest.mark.heavy
def test_the_study_resumes_exactly(tmp_path, tfds_dir):
    from sslzoo.eval.study import run_study

    kw = dict(epochs=2, study_every=1, probe_fit_split="train[96:160]",
              probe_eval_split="train[160:224]", probe_train_split="train[96:160]",
              probe_test_split="train[160:224]")
    run_study(**settings(tmp_path / "a", tfds_dir, **kw))
    killed_then_resumed(tmp_path / "b", tfds_dir, [STEPS + 1], run=run_study, **kw)
    assert_same_run(tmp_path / "a", tmp_path / "b", files=("crr_report.json", "study.json"))


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous(simclr_run, tmp_path,
                                                                 tfds_dir):
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        pretrain(**settings(out, tfds_dir), callbacks=[KillAt(STEPS + 2)])
    ckpts = out / "checkpoints"
    latest = tf.train.latest_checkpoint(str(ckpts))
    assert latest.endswith(f"ckpt-{STEPS + 1}")
    data = next(ckpts.glob(f"ckpt-{STEPS + 1}.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated
    pretrain(**settings(out, tfds_dir, resume=True))
    assert (ckpts / "corrupt" / data.name).exists()  # kept aside for inspection
    assert_same_run(simclr_run, out)


def test_a_checkpoint_without_the_untracked_variables_resumes(simclr_run, tmp_path, tfds_dir,
                                                              monkeypatch, caplog):
    """An older sslzoo's checkpoint (no CRR monitor state) resumes with a warning, and is not
    taken for a corrupt one. At crr_every=1 the monitors measure every step, so the run is
    still the uninterrupted one."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "untracked_variables", lambda checkpoint, model: [])
        with pytest.raises(Interrupt):
            pretrain(**settings(out, tfds_dir), callbacks=[KillAt(STEPS + 2)])
    pretrain(**settings(out, tfds_dir, resume=True))
    assert "holds no CRR monitor state" in caplog.text
    assert not (out / "checkpoints" / "corrupt").exists()
    assert_same_run(simclr_run, out)


def test_no_readable_checkpoint_is_a_clear_error(tmp_path, tfds_dir):
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        pretrain(**settings(out, tfds_dir, checkpoint_every_steps=0),
                 callbacks=[KillAt(STEPS + 1)])
    for f in (out / "checkpoints").glob("ckpt-*.index"):
        f.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="no readable checkpoint.*corrupt/"):
        pretrain(**settings(out, tfds_dir, resume=True))


@pytest.mark.heavy
@pytest.mark.parametrize("method", ["barlow_twins", "byol", "dino", "mocov2", "mocov3",
                                    "simclr", "simsiam", "swav", "vicreg", "nnclr", "dcl",
                                    "tico", "wmse", "mmcr", "emp_ssl", "mae"])
def test_every_method_resumes_exactly(tmp_path, tfds_dir, method):
    from sslzoo.methods import METHODS

    small = {k: v for k, v in dict(proj_hidden_dim=32, proj_dim=16, queue_size=64,
                                   pred_hidden_dim=16, num_prototypes=16, out_dim=64,
                                   queue_length=64, queue_start_epoch=0, w_size=32,
                                   decoder_depth=1, decoder_width=32).items()
             if k in METHODS[method].defaults}
    kw = dict(method=method, epochs=2, hparams=",".join(f"{k}={v}" for k, v in small.items()))
    if method == "mae":  # a ViT method; its masks come from (seed, step), so they resume too
        kw["backbone"] = "vit_tiny"
    pretrain(**settings(tmp_path / "a", tfds_dir, **kw))
    killed_then_resumed(tmp_path / "b", tfds_dir, [STEPS + 1], **kw)
    assert_same_run(tmp_path / "a", tmp_path / "b")
