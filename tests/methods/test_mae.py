"""MAE as a model: masking, an encoder that sees only the visible patches, a loss that is
``mae_loss`` on the model's own tensors, mixed precision, CRR on the unmasked encoder, UMM's
refusal, a .keras round trip after training and a one-epoch pretraining run.

Everything runs vit_tiny at 16 px (16 patches of 4 px, 4 visible) with a 1-block, 32-wide
decoder, on 4 images (8 views)."""
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import sslzoo
from sslzoo import methods
from sslzoo.crr.monitor import tap_stats
from sslzoo.errors import ConfigError
from sslzoo.losses import mae_loss, patchify
from sslzoo.methods.mae import MAE, sincos_2d
from sslzoo.optim import make_optimizer
from sslzoo.umm import UMM
from tests.backbones.test_resnet import mixed_policy  # noqa: F401 (a fixture)
from tests.losses.test_mae import ref_mae

SMALL = dict(image_size=16, num_classes=10, decoder_depth=1, decoder_width=32)
N = 4  # images; 2N views


def _build(**kw):
    return methods.build("mae", "vit_tiny", **{**SMALL, **kw})


def _compiled(**kw):
    m = _build(**kw)
    methods.set_training_length(m, 2, 2)
    m.compile(make_optimizer("adamw", 1e-3, beta_2=0.95))
    m.build_all()
    return m


@pytest.fixture(scope="module")
def model():
    return _build(crr_every=0)


@pytest.fixture(scope="module")
def views():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (2 * N, 16, 16, 3)),
                       tf.float32)


def _np(x):
    return keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))


def test_shapes(model, views):
    assert (model.num_patches, model.num_visible, model.patch_size) == (16, 4, 4)
    rec = model.reconstruct(views, 0)
    assert tuple(rec["latent"].shape) == (2 * N, 5, 192)  # CLS + 4 visible patches
    assert tuple(rec["pred"].shape) == (2 * N, 16, 48)  # every patch, p²·3 values
    assert tuple(rec["keep"].shape) == (2 * N, 4) and tuple(rec["restore"].shape) == (2 * N, 16)
    out = model.forward(views, training=True)
    assert tuple(out.pooled.shape) == tuple(out.proj.shape) == (2 * N, 192)
    np.testing.assert_array_equal(_np(out.proj), _np(out.pooled))  # no projector
    whole = model.forward(views, training=False)  # inference: the unmasked encoder
    np.testing.assert_allclose(_np(whole.pooled), _np(model.backbone(views)), atol=1e-5)
    assert "pred" not in whole.features


def test_defaults_recipe_and_optimizer():
    m = sslzoo.build("mae", "vit_tiny", image_size=32)  # 64 patches, 16 visible
    assert (m.num_patches, m.num_visible, m.decoder_settings()) == (64, 16, (4, 256, 8))
    assert m.decoder.get_layer("decoder_block4_attn").num_heads == 8
    assert m.decoder.get_layer("decoder_pred").units == 48
    assert not m.decoder.get_layer("decoder_tokens").non_trainable_weights  # fixed sin-cos
    paper = types.SimpleNamespace(image_size=224, hparams=dict(MAE.defaults))
    assert MAE.decoder_settings(paper) == (8, 512, 16)  # the paper's decoder above 64 px
    assert MAE.defaults["mask_ratio"] == 0.75 and MAE.defaults["norm_pix_loss"] is True
    assert MAE.optim_defaults == {"optimizer": "adamw", "learning_rate": 1.5e-4,
                                  "weight_decay": 0.05, "scale": "linear", "beta_2": 0.95}
    r = m.recipe
    assert (r.crop_scale, r.flip, r.jitter_p, r.gray_p, r.blur, r.solarize) == (
        (0.2, 1.0), True, 0.0, 0.0, (0.0, 0.0), (0.0, 0.0))
    assert [op.name for op in m.view_layer().views[0]] == ["crop", "flip"]


def test_sincos_positions():
    pos = sincos_2d(8, 3)  # 2 frequencies per axis: ω = 1, 1/100
    assert pos.shape == (10, 8) and not pos[0].any()  # CLS row zero
    r, c = divmod(5, 3)  # patch 5: row 1, column 2
    want = [np.sin(c), np.sin(c / 100), np.cos(c), np.cos(c / 100),
            np.sin(r), np.sin(r / 100), np.cos(r), np.cos(r / 100)]
    np.testing.assert_allclose(pos[1 + 5], want, atol=1e-6)


def test_errors():
    with pytest.raises(ConfigError, match=r"Vision Transformer backbone \(vit_base, vit_small, "
                                           r"vit_tiny\).*resnet_tiny"):
        methods.build("mae", "resnet_tiny", image_size=16)
    for hp, match in [({"mask_ratio": 1.0}, "mask_ratio must be in"),
                      ({"mask_ratio": 0.99}, "keeps 0 of the 16"),
                      ({"decoder_depth": 0}, "decoder_depth must be an integer"),
                      ({"decoder_width": 30}, "multiple of 4"),
                      ({"decoder_heads": 3}, "multiple of 4 .* decoder_heads=3"),
                      ({"proj_dim": 16}, "mae has no hyperparameter")]:
        with pytest.raises(ConfigError, match=match):
            _build(**hp)


def test_masking_ratio_and_seeding(model):
    keep, restore, mask = (_np(t).astype(int) for t in model.random_mask(2 * N, 5))
    assert np.all(mask.sum(1) == 12)  # 0.75 of 16 patches
    for k, r, m in zip(keep, restore, mask):
        assert sorted(r) == list(range(16)) and not m[k].any()  # visible = not masked
        np.testing.assert_array_equal(r[k], np.arange(4))  # kept first, in keep's order
    again = _np(model.random_mask(2 * N, 5)[2])
    np.testing.assert_array_equal(again, mask)  # same seed and step: same masks
    assert not np.array_equal(_np(model.random_mask(2 * N, 6)[2]), mask)  # another step
    other = _build(crr_every=0, seed=1)
    assert not np.array_equal(_np(other.random_mask(2 * N, 5)[2]), mask)  # another seed
    assert len({tuple(row) for row in mask}) == 2 * N  # each view its own mask


def test_each_replica_masks_its_images_as_one_device_would(model, monkeypatch):
    """With 2 replicas of 2 images each, replica 1's rows are rows 2-3 of each view of the
    one-device batch of 4 images (views 1 then 2)."""
    from sslzoo.methods import mae as module

    one = _np(model.random_mask(2 * N, 9)[2])
    monkeypatch.setattr(module, "num_replicas", lambda: 2)
    monkeypatch.setattr(module, "row_offset", lambda n: n)  # replica 1's first row
    second = _np(model.random_mask(N, 9)[2])
    np.testing.assert_array_equal(second, one[[2, 3, N + 2, N + 3]])


def _replace_masked(images, mask, p=4, seed=0):
    """``images`` with every masked patch's pixels redrawn."""
    out = np.array(images)
    rng = np.random.default_rng(seed)
    for row, m in enumerate(mask):
        for patch in np.flatnonzero(m):
            i, j = divmod(patch, out.shape[1] // p)
            out[row, i * p:(i + 1) * p, j * p:(j + 1) * p] = rng.integers(0, 256, (p, p, 3))
    return tf.constant(out, tf.float32)


def test_the_encoder_sees_only_the_visible_patches(model, views):
    rec = model.reconstruct(views, 3)
    mask = _np(rec["mask"])
    changed = _replace_masked(_np(views), mask)
    again = model.reconstruct(changed, 3)
    np.testing.assert_array_equal(_np(again["mask"]), mask)
    np.testing.assert_allclose(_np(again["latent"]), _np(rec["latent"]), atol=1e-6)
    np.testing.assert_allclose(_np(again["pred"]), _np(rec["pred"]), atol=1e-6)
    # Only the targets move, and only at the masked patches.
    t0, t1 = _np(model.targets(views)), _np(model.targets(changed))
    moved = np.any(t0 != t1, axis=-1)
    assert moved.any() and not (moved & (mask == 0)).any()
    # Visible pixels do reach the encoder.
    visible = _replace_masked(_np(views), 1 - mask, seed=1)
    assert not np.allclose(_np(model.reconstruct(visible, 3)["latent"]), _np(rec["latent"]))


def test_loss_is_mae_loss_on_its_own_tensors(model, views):
    out = model.forward(views, training=True)  # not compiled: the masks of step 0
    np.testing.assert_array_equal(_np(out["mask"]), _np(model.random_mask(2 * N, 0)[2]))
    loss = float(model.ssl_loss(out, N))
    target = patchify(_np(views) / 127.5 - 1.0, 4)  # the backbone's [-1, 1] pixels
    assert loss == pytest.approx(float(mae_loss(out["pred"], target, out["mask"])), rel=1e-6)
    assert loss == pytest.approx(ref_mae(_np(out["pred"]), _np(target), _np(out["mask"]),
                                         True), rel=1e-5)
    raw = _build(crr_every=0, norm_pix_loss=False)
    out = raw.forward(views, training=True)
    assert float(raw.ssl_loss(out, N)) == pytest.approx(
        ref_mae(_np(out["pred"]), _np(target), _np(out["mask"]), False), rel=1e-5)
    with pytest.raises(ValueError, match="masked pass"):
        model.ssl_loss(model.forward(views, training=False), N)


def test_a_training_step_trains_encoder_and_decoder(views):
    m = _compiled(crr_every=0)
    before = {v.path: v.numpy().copy() for v in m.trainable_weights}
    logs = m.train_step(((views[:N], views[N:]), tf.range(N) % 10))
    assert np.isfinite(float(logs["loss"])) and int(m.optimizer.iterations) == 1
    moved = {p for p, v in ((v.path, v) for v in m.trainable_weights)
             if not np.array_equal(v.numpy(), before[p])}
    for name in ("patch_embed/kernel", "tokens/cls_token", "block1_attn", "norm/gamma",
                 "decoder_embed/kernel", "decoder_tokens/mask_token", "decoder_pred/kernel"):
        assert any(name in p for p in moved), name
    assert m.optimizer.beta_2 == 0.95


@pytest.mark.parametrize("mixed_policy", ["mixed_float16"], indirect=True)
def test_a_mixed_precision_step(mixed_policy, views):
    m = _compiled(crr_every=0)
    assert isinstance(m.optimizer, keras.optimizers.LossScaleOptimizer)
    out = m.forward(views, training=True)
    assert out["pred"].dtype == "float16"  # the decoder computes in float16
    loss = m.ssl_loss(out, N)
    assert loss.dtype == "float32" and np.isfinite(float(loss))
    logs = m.train_step(((views[:N], views[N:]), tf.range(N) % 10))
    assert np.isfinite(float(logs["loss"]))


def test_policy_restored_after_float16():
    assert keras.mixed_precision.global_policy().name == "float32"


def test_crr_taps_measure_the_unmasked_encoder_on_the_measured_steps(views):
    m = _build(taps=("block3", "proj"), crr_every=2)
    whole = m.encoder(views)
    m.monitor_whole(views)  # call 1 of every 2: measures the unmasked encoder
    for tap, feats in (("block3", whole["block3"]), ("proj", whole["pooled"])):
        want = float(tap_stats(feats)[0])
        assert float(m.monitors[tap].delta_r) == pytest.approx(want, rel=1e-5), tap
    m.monitor_whole(tf.reverse(views, axis=[0]))  # call 2: skipped, the values kept
    assert float(m.monitors["block3"].delta_r) == pytest.approx(
        float(tap_stats(whole["block3"])[0]), rel=1e-5)
    assert int(m.monitors["block3"].calls) == 2


def test_fit_logs_crr_for_every_tap(views):
    m = _compiled(crr_every=2)
    data = tf.data.Dataset.from_tensor_slices(((views[:N], views[N:]), tf.range(N) % 10))
    logs = m.fit(data.batch(2), epochs=1, verbose=0).history  # 2 steps, graph mode
    for tap in ("block3", "block6", "block9", "block12", "proj"):
        value = logs[f"crr/{tap}/delta_r"][-1]
        assert np.isfinite(value) and value > 0, tap
    assert np.isfinite(logs["loss"][-1]) and np.isfinite(logs["collapse_std"][-1])


def test_umm_refuses_mae(model):
    with pytest.raises(ConfigError, match="UMM cannot wrap mae: .*visible patches.*Drop --umm"):
        UMM(model, early="block3")


def test_keras_file_after_a_step_reconstructs_the_same(views, tmp_path):
    m = _compiled(crr_every=0)
    m.train_step(((views[:N], views[N:]), tf.range(N) % 10))
    path = str(tmp_path / "mae.keras")
    m.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is MAE and loaded.hparams == m.hparams
    np.testing.assert_allclose(_np(loaded.reconstruct(views, 7)["pred"]),
                               _np(m.reconstruct(views, 7)["pred"]), atol=1e-6)
    clone = MAE.from_config(m.get_config())  # untrained, the same architecture
    assert sorted(v.path for v in clone.weights) == sorted(v.path for v in m.weights)


@pytest.mark.heavy  # in CI: MAE's fit, CRR and .keras tests above
def test_pretrain_one_epoch_on_digits(tfds_dir, tmp_path):
    from sslzoo.train.pretrain import pretrain

    out = str(tmp_path / "run")
    summary = pretrain(method="mae", backbone="vit_tiny", image_size=16, split="train[:32]",
                       probe_train_split="train[:32]", probe_test_split="test[:32]",
                       batch_size=16, epochs=1, verbose=0, crr_reference_size=8,
                       lidar_images=4, lidar_views=2,
                       hparams="decoder_depth=1,decoder_width=32", data_dir=tfds_dir,
                       output_dir=out, seed=1)
    assert summary["method"] == "mae" and summary["steps"] == 2
    assert summary["optimizer"] == "adamw" and summary["beta_2"] == 0.95
    assert summary["peak_learning_rate"] == pytest.approx(1.5e-4 * 16 / 256)
    assert 0 <= summary["linear_probe_top1"] <= 1
    for name in ("backbone.weights.h5", "projector.weights.h5", "model.json",
                 "crr_report.json", "metrics.csv"):
        assert os.path.exists(os.path.join(out, name)), name
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype("uint8")
    emb = np.asarray(sslzoo.load(out)(x))
    proj = np.asarray(sslzoo.load(out, include_projector=True)(x))  # MAE's identity
    assert emb.shape == (2, 192) and np.all(np.isfinite(emb))
    np.testing.assert_allclose(proj, emb, atol=1e-6)
