"""DeepCluster-v2 as a model: its memory bank, assignments and centroids are model state,
k-means refreshes them at each epoch start as a NumPy k-means from the same rows would, its
loss is deepcluster_v2_loss on its own projections, and pretraining (resumed or not, UMM,
several replicas) runs it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from sslzoo import methods
from sslzoo.errors import ConfigError
from sslzoo.losses import deepcluster_v2_loss
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM
from tests.losses import reference_more as ref
from tests.train.test_reproducible import (assert_same_run, killed_then_resumed, rows,
                                           settings)

N, HALF = 16, 8  # images in the bank; a batch holds half of them, so an epoch is 2 steps
HP = dict(proj_hidden_dim=32, proj_dim=16, num_prototypes=4, prototype_sets=3, memory_size=N)


def _model(umm=False, crr_every=0, **hp):
    m = methods.build("deepcluster_v2", "resnet_tiny", image_size=16, num_classes=10,
                      crr_every=crr_every, **{**HP, **hp})
    methods.set_training_length(m, 10, 2)
    model = UMM(m, early="stage2") if umm else m
    model.compile(make_optimizer("sgd", 0.05))
    model.build_all()
    return model


@pytest.fixture(scope="module")
def batches():
    """The two batches of an epoch: ((view 1, view 2), labels, indices) of 8 images each."""
    x = np.random.default_rng(0).integers(0, 256, (N, 16, 16, 3)).astype("float32")
    order = np.random.default_rng(1).permutation(N)
    return [((tf.constant(x[i]), tf.constant(x[i][:, :, ::-1])),
             tf.constant(np.arange(N)[i] % 10, tf.int32), tf.constant(i, tf.int32))
            for i in (order[:HALF], order[HALF:])]


def _kmeans(x, init, iterations=10):
    """Spherical k-means in float64 (the official loop): assign by dot product, move each
    centroid that got rows to their normalised mean, then a last assignment."""
    x, c = np.asarray(x, np.float64), np.asarray(init, np.float64).copy()
    for _ in range(iterations):
        a = np.argmax(x @ c.T, axis=1)
        for k in range(len(c)):
            if np.any(a == k):
                c[k] = x[a == k].mean(0)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c, np.argmax(x @ c.T, axis=1)


def _check_refresh(m, bank, epoch):
    """The model's centroids and assignments are the NumPy k-means of ``bank`` (the memory
    before the step) from the model's own initial rows for ``epoch``."""
    for i in range(3):
        rows = m.initial_rows(epoch, i).numpy()
        assert len(set(rows)) == 4
        c, a = _kmeans(bank[:, i % 2], bank[rows, i % 2])
        np.testing.assert_allclose(m.centroids.numpy()[i], c, atol=2e-6)
        np.testing.assert_array_equal(m.assignments.numpy()[i], a)


def test_kmeans_refreshes_at_each_epoch_start_and_the_loss_is_its_formula(batches):
    m = _model()
    assert not any(v.trainable for v in (m.memory, m.stored, m.centroids, m.assignments))
    assert {id(v) for v in (m.memory, m.centroids, m.assignments)} <= {
        id(v) for v in m.non_trainable_weights}  # checkpointed with the model
    logs = [float(m.train_step(b)["loss"]) for b in batches]  # epoch 0 fills the bank
    assert logs == [0.0, 0.0] and np.all(m.stored.numpy() == 1)
    assert np.all(m.assignments.numpy() == -1)
    for epoch in (1, 2):
        bank = m.memory.numpy()
        np.testing.assert_allclose(np.linalg.norm(bank, axis=2), 1.0, atol=1e-5)
        m.train_step(batches[0])
        _check_refresh(m, bank, epoch)
        kept = m.centroids.numpy(), m.assignments.numpy()
        out = m.forward(ops.concatenate(batches[1][0], 0), training=True)
        out.cache["index"] = batches[1][2]
        loss = float(m.ssl_loss(out, HALF))
        z = out.proj.numpy().astype(np.float64)
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        a = np.tile(kept[1][:, batches[1][2].numpy()], 2)
        want = [deepcluster_v2_loss(z.astype("float32") @ kept[0][i].T, a[i], 0.1)
                for i in range(3)]
        assert loss == pytest.approx(float(np.mean(want)), rel=1e-5)
        assert loss == pytest.approx(np.mean([ref.deepcluster_v2(z @ kept[0][i].T, a[i], 0.1)
                                              for i in range(3)]), rel=1e-4)
        m.train_step(batches[1])  # within the epoch: the clusters stay
        np.testing.assert_array_equal(m.centroids.numpy(), kept[0])
        np.testing.assert_array_equal(m.assignments.numpy(), kept[1])
    assert len({tuple(m.initial_rows(e, 0).numpy()) for e in range(4)}) > 1  # seeded by epoch


def test_images_not_in_the_bank_are_left_out(batches):
    m = _model()
    m.train_step(batches[0])
    m.train_step(batches[1])
    bank = m.memory.numpy()
    m.stored.assign(np.r_[np.ones(12), np.zeros(4)].astype("float32"))  # 4 never stored
    rows = m.initial_rows(1, 0).numpy()
    assert set(rows) <= set(range(12))
    m.train_step(batches[0])
    a = m.assignments.numpy()
    assert np.all(a[:, 12:] == -1) and np.all(a[:, :12] >= 0)
    np.testing.assert_array_equal(a[0, :12], _kmeans(bank[:12, 0], bank[rows, 0])[1])


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="num_prototypes=20 exceeds the 16 images"):
        _model(num_prototypes=20)
    with pytest.raises(ConfigError, match="prototype_sets must be an integer >= 1"):
        _model(prototype_sets=0)
    m = _model(memory_size=0)
    with pytest.raises(ValueError, match="index"):
        m.train_step(((tf.zeros((2, 16, 16, 3)),) * 2, tf.zeros((2,), tf.int32)))
    with pytest.raises(ConfigError, match="needs memory_size"):
        m.train_step(((tf.zeros((2, 16, 16, 3)),) * 2, tf.zeros((2,), tf.int32),
                      tf.range(2)))


def test_from_config_rebuilds_the_bank():
    m = _model()
    clone = type(m).from_config(json.loads(json.dumps(m.get_config())))
    assert clone.hparams == m.hparams and clone.needs_index
    assert clone.memory.shape == (N, 2, 16) and clone.assignments.shape == (3, N)
    assert clone.centroids.shape == (3, 4, 16) and np.all(clone.assignments.numpy() == -1)


def test_umm_and_crr_train_it(batches):
    umm = _model(umm=True, crr_every=1)
    data = tf.data.Dataset.from_tensors(batches[0]).concatenate(
        tf.data.Dataset.from_tensors(batches[1])).repeat()
    logs = umm.fit(data, epochs=2, steps_per_epoch=2, verbose=0).history
    m = umm.ssl_model
    assert logs["loss"][0] == 0 and logs["loss"][1] > 0 and np.all(m.assignments.numpy() >= 0)
    assert np.isfinite(logs["umm/align"][-1]) and logs["crr/stage4/delta_r"][-1] > 0


def test_pretrain_two_epochs_and_a_resume_is_the_uninterrupted_run(tmp_path, tfds_dir):
    kw = dict(method="deepcluster_v2", epochs=2, crr_every=0, crr_reference_size=0,
              hparams="proj_hidden_dim=32,proj_dim=16,num_prototypes=8,prototype_sets=2")
    summary = pretrain_run(tmp_path / "a", tfds_dir, **kw)
    assert summary["steps"] == 6 and np.isfinite(summary["linear_probe_top1"])
    losses = [float(r["loss"]) for r in rows(tmp_path / "a")]
    assert losses[0] == 0 and losses[1] > 0  # epoch 1 fills the bank
    model = json.load(open(tmp_path / "a" / "model.json"))["config"]
    assert model["hparams"]["memory_size"] == 96
    # Killed after step 4, so resumed at step 3, an epoch start: k-means of the restored bank.
    killed_then_resumed(tmp_path / "b", tfds_dir, [4], **kw)
    assert_same_run(tmp_path / "a", tmp_path / "b", files=())


def test_a_checkpoint_mid_epoch_restores_the_clusters(batches, tmp_path):
    m = _model()
    for b in (*batches, batches[0]):  # epoch 0, then the first step of epoch 1
        m.train_step(b)
    path = tf.train.Checkpoint(model=m, optimizer=m.optimizer).write(str(tmp_path / "ckpt"))
    fresh = _model()
    tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer).read(
        path).assert_existing_objects_matched()
    for k in ("memory", "stored", "centroids", "assignments"):
        np.testing.assert_array_equal(getattr(fresh, k).numpy(), getattr(m, k).numpy())
    assert np.all(fresh.assignments.numpy() >= 0)
    for model in (m, fresh):
        model.reset_metrics()  # "loss" is a running mean; metrics are not checkpointed
    losses = [float(model.train_step(batches[1])["loss"]) for model in (m, fresh)]
    assert losses[0] == losses[1] > 0


def pretrain_run(out, tfds_dir, **kw):
    from sslzoo.train.pretrain import pretrain

    return pretrain(**settings(out, tfds_dir, **kw))


def test_mirrored_matches_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-m", "tests.methods.deepcluster_mirrored"], cwd=root,
                       env=env, capture_output=True, text=True, timeout=600)
    found = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert p.returncode == 0 and found, p.stderr[-3000:]
    r = found[0]
    assert r["loss_single"][0] == r["loss_mirrored"][0] == 0  # the bank fills
    np.testing.assert_allclose(r["loss_mirrored"], r["loss_single"], rtol=2e-5)
    assert r["stored"][0] == r["stored"][1] == [1.0] * 16
    assert r["same_assignments"] and r["assigned"] == 3 * 16
    assert r["memory_diff"] < 1e-4 and r["centroids_diff"] < 2e-5
    assert r["update_rel_err"] < 1e-4 and r["weights_diff"] < 2e-5
