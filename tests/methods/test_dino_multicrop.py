"""DINO multi-crop (hparam local_crops): the views, one step's loss against NumPy, the centre,
a checkpoint round trip, bad values, the UMM refusal and an end-to-end apps/pretrain run."""
import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from sslzoo import backbones, methods
from sslzoo.data.augment import MultiCrop, TwoViews
from sslzoo.data.images import ImageData
from sslzoo.data.pipeline import ssl_batches
from sslzoo.errors import ConfigError
from sslzoo.losses.common import l2_normalize
from sslzoo.optim import make_optimizer
from sslzoo.train.pretrain import pretrain
from sslzoo.umm import UMM
from tests.apps.conftest import run_app
from tests.losses import reference as ref

SIZE, LOCAL, N = 16, 8, 4  # 16 px global views; local_crops_size 0 → max(8, 3/7 · 16) = 8
TINY = dict(proj_hidden_dim=32, proj_dim=16, out_dim=24, momentum=0.5)


def _build(**kw):
    m = methods.build("dino", "resnet_tiny", image_size=SIZE, num_classes=10, **TINY, **kw)
    methods.set_training_length(m, 4, 2)
    m.compile(make_optimizer("adamw", 0.05))
    m.build_all()
    return m


@pytest.fixture(scope="module")
def model():
    return _build(local_crops=2)


@pytest.fixture(scope="module")
def batch(model):
    """One batch of ``ssl_batches`` with the model's view layer: the 2 + 2 views of N images
    and their labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * N, SIZE, SIZE, 3)).astype("uint8")
    labels = (np.arange(2 * N) % 10).astype("int32")
    data = ImageData(tf.data.Dataset.from_tensor_slices((images, labels)), 2 * N, 10, SIZE,
                     "fake", "train")
    return next(iter(ssl_batches(data, N, model.view_layer())))


def test_view_layer_and_pipeline_yield_two_global_views_and_the_local_crops(model, batch):
    layer = model.view_layer()
    assert isinstance(layer, MultiCrop) and model.local_crops == 2 and model.local_size == LOCAL
    assert (layer.global_scale, layer.local_scale) == ((0.4, 1.0), (0.05, 0.4))
    views, y = batch
    shapes = [tuple(v.shape) for v in views]
    assert shapes == [(N, SIZE, SIZE, 3)] * 2 + [(N, LOCAL, LOCAL, 3)] * 2 and y.shape == (N,)
    assert all(v.dtype == tf.float32 for v in views)
    assert all(0 <= float(tf.reduce_min(v)) and float(tf.reduce_max(v)) <= 255 for v in views)
    assert [tuple(s) for s in layer.compute_output_shape((N, SIZE, SIZE, 3))] == shapes


@pytest.fixture(scope="module")
def stepped(model, batch):
    """One train step of the multi-crop model, with what an independent forward gave before
    it: student logits of the 4 crops, teacher logits and projector outputs of the globals."""
    views, y = batch
    both = tf.concat(views[:2], 0)

    def logits(prototypes, z):
        return prototypes(l2_normalize(tf.cast(z, "float32"))).numpy()

    z = model.projector(model.backbone(both, training=True), training=True)
    local_net = backbones.build("resnet_tiny", image_size=LOCAL)  # no shared code path
    local_net.set_weights(model.backbone.get_weights())
    z_local = model.projector(local_net(tf.concat(views[2:], 0), training=True), training=True)
    s, s_local = logits(model.prototypes, z), logits(model.prototypes, z_local)
    t = logits(model.teacher_prototypes, model.teacher_projector(
        model.teacher_backbone(both, training=True), training=True))
    model.reset_metrics()
    logs = model.train_step((views, y))
    student = [s[:N], s[N:], s_local[:N], s_local[N:]]
    return {k: float(v) for k, v in logs.items()}, student, t, z.numpy()


def test_step_loss_is_the_numpy_multi_crop_loss_and_the_centre_sees_the_teacher_globals(
        model, stepped):
    logs, student, t, z = stepped
    # step 0: τ_t = warmup_teacher_temp 0.04, centre 0; 2·4 − 2 = 6 (teacher, other crop) pairs
    want = ref.dino(student, [t[:N], t[N:]], np.zeros(t.shape[1]), 0.1, 0.04)
    assert np.isfinite(logs["loss"]) and logs["loss"] == pytest.approx(want, rel=1e-4)
    assert want != pytest.approx(ref.dino(student[:2], [t[:N], t[N:]], np.zeros(t.shape[1]),
                                          0.1, 0.04), rel=1e-3)  # the local crops count
    # c ← 0.9·0 + 0.1·mean of the teacher's 2N global rows
    np.testing.assert_allclose(model.center.numpy()[0], 0.1 * t.mean(0), atol=1e-6)
    # collapse_std is measured on the global views' projections only
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert logs["collapse_std"] == pytest.approx(float(zn.std(0).mean()), rel=1e-3)


def test_checkpoint_round_trip_continues_exactly(model, batch, stepped, tmp_path):
    path = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                               **model.checkpoint_items()).write(str(tmp_path / "ckpt"))
    fresh = _build(local_crops=2)
    tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer, **fresh.checkpoint_items()).read(
        path).assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh.center.numpy(), model.center.numpy())
    losses = []
    for m in (model, fresh):
        m.reset_metrics()
        losses.append(float(m.train_step(batch)["loss"]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    np.testing.assert_allclose(fresh.center.numpy(), model.center.numpy(), atol=1e-6)


def test_views_must_match_the_number_of_crops(model, batch):
    views, _ = batch
    with pytest.raises(ValueError, match="expects 4 views .2 global . 2 local crops.*got 2"):
        model.make_views(views[:2])


def test_default_is_the_two_view_dino():
    m = methods.build("dino", "resnet_tiny", image_size=SIZE, **TINY)
    assert m.local_crops == 0 and not hasattr(m, "local_encoder")
    assert type(m.view_layer()) is TwoViews and m.view_layer()._recipe.crop_scale == (0.08, 1.0)
    with pytest.raises(ValueError, match="expects 2 views"):
        m.make_views((1, 2, 3))
    # global_crops_scale alone sets the two views' crop area (the paper's advice without
    # multi-crop is a wide range such as 0.14)
    m = methods.build("dino", "resnet_tiny", image_size=SIZE, global_crops_scale=0.14, **TINY)
    assert type(m.view_layer()) is TwoViews and m.view_layer()._recipe.crop_scale == (0.14, 1.0)


@pytest.mark.parametrize("hparams, match", [
    ({"local_crops": -1}, "local_crops must be an integer >= 0, got -1"),
    ({"local_crops": 1.5}, "local_crops must be an integer >= 0, got 1.5"),
    ({"local_crops": 2, "local_crops_size": SIZE}, "local_crops_size must be .* smaller than "
     "the global crops' 16 px, got 16"),
    ({"local_crops": 2, "local_crops_size": 4}, "local_crops_size must be at least 8 px"),
    ({"local_crops": 2, "local_crops_scale": 0.5}, r"local_crops_scale must be in \(0, "
     r"global_crops_scale = 0.4\), got 0.5"),
    ({"global_crops_scale": 1.5}, r"global_crops_scale must be in \(0, 1\]"),
])
def test_bad_multi_crop_hparams_are_config_errors(hparams, match):
    with pytest.raises(ConfigError, match=match):
        methods.build("dino", "resnet_tiny", image_size=SIZE, **TINY, **hparams)


def test_umm_refuses_multi_crop(model):
    with pytest.raises(ConfigError, match="UMM does not support multi-crop .dino with 2 views "
                       "beyond the two global ones.*set --hparams=local_crops=0 or drop --umm"):
        UMM(model)


@pytest.mark.parametrize("method, hparams, fix", [("mmcr", {"views": 3}, "views=2"),
                                                  ("emp_ssl", {"patches": 4}, "patches=2")])
def test_umm_names_a_many_view_methods_own_hparam(method, hparams, fix):
    model = methods.build(method, "resnet_tiny", image_size=SIZE, proj_hidden_dim=16,
                          proj_dim=8, **hparams)
    with pytest.raises(ConfigError, match=f"multi-crop .{method} with .*--hparams={fix} or"):
        UMM(model)


@pytest.mark.slow
def test_pretrain_app_with_local_crops(tmp_path, tfds_dir):
    out = tmp_path / "run"
    r = run_app("pretrain", "--method=dino", "--split=train[:128]", "--batch_size=32",
                "--probe_train_split=train[:64]", "--probe_test_split=test[:64]",
                "--hparams=proj_hidden_dim=64,proj_dim=32,out_dim=128,local_crops=2",
                "--epochs=1", "--crr_every=0", "--crr_reference_size=0", "--verbose=2",
                f"--data_dir={tfds_dir}", f"--output_dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 128 // 32 and 0 <= summary["linear_probe_top1"] <= 1
    config = json.loads((out / "config.json").read_text())
    assert "local_crops=2" in config["hparams"]
    assert all(np.isfinite(float(row["loss"])) for row in csv.DictReader(open(
        out / "metrics.csv")))
    # UMM with multi-crop fails before a run directory is made
    with pytest.raises(ConfigError, match="--hparams=local_crops=0 or drop --umm"):
        pretrain(split="train[:256]", batch_size=64, epochs=1, method="dino", umm=True,
                 hparams="local_crops=2", data_dir=tfds_dir, output_dir=str(tmp_path / "u"))
    assert not (tmp_path / "u").exists()
