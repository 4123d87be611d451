"""CRRCallback: per-epoch ΔR on fixed reference sets, warning, report, plot, early stop."""
import json
import math

import numpy as np
import pytest

from sslzoo import methods
from sslzoo.crr import CRRCallback
from sslzoo.crr.report import load_history


@pytest.fixture(scope="module")
def model():
    return methods.build("simclr", "resnet_tiny", image_size=16, proj_hidden_dim=32,
                         proj_dim=16)


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3)).astype("float32")


def _planted(callback, epochs):
    """Replace real measurement by a planted series: stage4 peaks at epoch index 4."""
    series = iter(range(2 * epochs))

    def measure(split):
        e = next(series) // 2
        late = 10.0 + e if e <= 4 else 14.0 - 2 * (e - 4)
        return {t: {split: late if t in ("stage4", "proj") else 5.0 + 0.1 * e}
                for t in callback.history}
    callback.measure = measure


def test_measures_every_tap_on_fixed_views_and_logs_them(model, tmp_path):
    cb = CRRCallback(_images(12, 0), _images(12, 1), output_dir=str(tmp_path), batch_size=8)
    cb.set_model(model)
    cb.on_train_begin()
    logs = {}
    cb.on_epoch_end(0, logs)
    for tap in ("stage1", "stage2", "stage3", "stage4", "proj"):
        assert math.isfinite(logs[f"crr/{tap}/heldout_delta_r"]) and logs[
            f"crr/{tap}/heldout_delta_r"] > 0
        assert math.isfinite(logs[f"crr/{tap}/gap"])
    # Fixed views: the same weights give the same ΔR again.
    again = cb.reference_delta_r(*cb._views["heldout"])
    assert again["stage4"] == pytest.approx(logs["crr/stage4/heldout_delta_r"], rel=1e-5)
    report = json.loads((tmp_path / "crr_report.json").read_text())
    assert report["warning"] is None and len(report["history"]["proj"]["heldout"]) == 1
    assert not (tmp_path / "crr.png").exists()  # drawn every plot_every epochs and at the end
    cb.on_train_end()
    assert (tmp_path / "crr.png").read_bytes()[:4] == b"\x89PNG"
    assert cb.watch == "stage4" and cb.early == ["stage1"]


def test_planted_turning_point_warns_stops_and_restores_best_weights(model, tmp_path, caplog):
    cb = CRRCallback(_images(4, 0), _images(4, 1), output_dir=str(tmp_path), patience=3,
                     early_stop=True)
    cb.set_model(model)
    cb.on_train_begin()
    _planted(cb, 20)
    original = model.get_weights()
    model.stop_training = False
    for epoch in range(20):
        model.set_weights([np.full_like(w, epoch) for w in original])
        cb.on_epoch_end(epoch, {})
        if model.stop_training:
            break
    assert epoch == 7  # peak at index 4, then 3 epochs below it
    assert cb.warning["signal"] == "heldout_drop" and cb.warning["best_epoch"] == 5  # 1-based
    # A held-out drop alone is a sign, not proof: the message says so and what to check.
    assert "heldout drop of layer stage4" in caplog.text and "not proof" in caplog.text
    assert "check the memorisation gap" in caplog.text
    assert cb.restored and all(np.all(w == 4) for w in model.get_weights())
    report = json.loads((tmp_path / "crr_report.json").read_text())
    assert report["warning"]["turning_epoch"] == 6 and report["restored_best_weights"]
    model.set_weights(original)


def test_epochs_before_ignore_before_are_no_evidence(model, tmp_path):
    """The planted series peaks at epoch index 4 and warns at epoch 8; ignoring the first 8
    epochs moves its peak to index 8 (the first one looked at) and the warning to epoch 12."""
    cb = CRRCallback(_images(4, 0), _images(4, 1), output_dir=str(tmp_path), patience=3,
                     ignore_before=8)
    cb.set_model(model)
    cb.on_train_begin()
    _planted(cb, 12)
    for epoch in range(12):
        cb.on_epoch_end(epoch, {})
    assert cb.warning["detected_at_epoch"] == 12 and cb.warning["best_epoch"] == 9
    report = json.loads((tmp_path / "crr_report.json").read_text())
    assert report["settings"]["ignore_before"] == 8


def test_gap_only_signals_stay_silent_on_a_heldout_drop(model, tmp_path):
    """The planted held-out fall warns under both signals (above); with the strict rule's
    signals (the memorisation gap only) it does not, and the report says which ran."""
    cb = CRRCallback(_images(4, 0), _images(4, 1), output_dir=str(tmp_path), patience=3,
                     signals=("memorisation_gap",))
    cb.set_model(model)
    cb.on_train_begin()
    _planted(cb, 12)
    for epoch in range(12):
        cb.on_epoch_end(epoch, {})
    assert cb.warning is None
    report = json.loads((tmp_path / "crr_report.json").read_text())
    assert report["settings"]["signals"] == ["memorisation_gap"]


def test_resumed_history_is_padded_and_continued(model, tmp_path):
    cb = CRRCallback(_images(4, 0), _images(4, 1), output_dir=str(tmp_path))
    cb.set_model(model)
    cb.on_train_begin()
    _planted(cb, 3)
    for epoch in range(3):
        cb.on_epoch_end(epoch, {})
    saved = load_history(str(tmp_path / "crr_report.json"), 5)
    assert saved["stage4"]["heldout"][:3] == [10.0, 11.0, 12.0]
    assert all(math.isnan(v) for v in saved["stage4"]["heldout"][3:])
    resumed = CRRCallback(_images(4, 0), _images(4, 1))
    resumed.saved_history = saved
    resumed.set_model(model)
    resumed.on_train_begin()
    resumed.on_epoch_end(5, {})
    assert len(resumed.history["stage4"]["heldout"]) == 6


def test_needs_taps():
    bare = methods.build("simclr", "resnet_tiny", image_size=16, crr_every=0,
                         proj_hidden_dim=16, proj_dim=8)
    cb = CRRCallback(_images(4, 0), _images(4, 1))
    cb.set_model(bare)
    with pytest.raises(ValueError, match="CRR taps"):
        cb.on_train_begin()


def test_crr_keys_drive_keras_early_stopping(model, tmp_path):
    """Listed after the CRR callback, Keras's EarlyStopping can monitor a crr/... key."""
    import keras

    crr = CRRCallback(_images(4, 0), _images(4, 1), output_dir=str(tmp_path), patience=50)
    stop = keras.callbacks.EarlyStopping(monitor="crr/stage4/heldout_delta_r", mode="max",
                                         patience=2)
    callbacks = keras.callbacks.CallbackList([crr, stop], model=model)
    callbacks.on_train_begin()
    _planted(crr, 20)
    model.stop_training = False
    for epoch in range(20):
        callbacks.on_epoch_end(epoch, {})
        if model.stop_training:
            break
    assert epoch == 6 and stop.best == 14.0  # peak at index 4, two epochs of patience after it


def test_logs_rankme_and_lidar_of_every_tap(model, tmp_path):
    """rankme/<tap> is RankMe of the held-out first views' features; lidar/<tap> is LiDAR of
    lidar_views views of the first lidar_images images: the two ΔR views and fixed extra ones."""
    from sslzoo.crr import reference

    cb = CRRCallback(_images(12, 0), _images(12, 1), output_dir=str(tmp_path), batch_size=8,
                     lidar_images=6, lidar_views=5)
    cb.set_model(model)
    cb.on_train_begin()
    assert len(cb._lidar_views) == 3 and cb._lidar_views[0].shape[0] == 6
    logs = {}
    cb.on_epoch_end(0, logs)
    taps = list(cb.history)
    v1, v2 = cb._views["heldout"]
    features = reference.features_fn(model, taps)
    pair = reference.tap_features(features, [v1, v2])
    extra = reference.tap_features(features, cb._lidar_views)
    for tap in taps:
        z = np.asarray(pair[tap][0], np.float64)
        s = np.linalg.svd(z, compute_uv=False)
        p = s / s.sum() + 1e-7
        assert logs[f"rankme/{tap}"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-3)
        views = np.stack([np.asarray(f[:6], np.float64) for f in [*pair[tap], *extra[tap]]], 1)
        mu_i = views.mean(1)
        sb = np.cov(mu_i.T, bias=False)
        w = (views - mu_i[:, None]).reshape(-1, views.shape[2])
        sw = w.T @ w / (6 * 4) + 1e-4 * np.eye(views.shape[2])
        ev, vec = np.linalg.eigh(sw)
        root = vec @ np.diag(ev ** -0.5) @ vec.T
        lam = np.clip(np.linalg.eigvalsh(root @ sb @ root), 0, None)
        q = lam / lam.sum() + 1e-7
        assert logs[f"lidar/{tap}"] == pytest.approx(np.exp(-(q * np.log(q)).sum()), rel=1e-2)
        assert 1.0 <= logs[f"lidar/{tap}"] <= 5.01  # at most n - 1
    report = json.loads((tmp_path / "crr_report.json").read_text())
    assert report["history"]["proj"]["lidar"] == [pytest.approx(logs["lidar/proj"])]
    assert report["settings"]["lidar_views"] == 5


def test_quality_off_and_bad_lidar_settings(model):
    cb = CRRCallback(_images(4, 0), _images(4, 1), quality=False)
    cb.set_model(model)
    cb.on_train_begin()
    logs = {}
    cb.on_epoch_end(0, logs)
    assert "crr/proj/gap" in logs and not any(k.startswith(("rankme/", "lidar/")) for k in logs)
    with pytest.raises(ValueError, match="LiDAR needs at least 2 images and 2 views"):
        CRRCallback(_images(4, 0), _images(4, 1), lidar_views=1)


def test_quality_keys_drive_keras_early_stopping(model):
    """A missing monitor makes EarlyStopping warn and never stop; rankme/proj stops it."""
    import keras

    crr = CRRCallback(_images(8, 0), _images(8, 1), lidar_images=4, lidar_views=2)
    stop = keras.callbacks.EarlyStopping(monitor="rankme/proj", mode="max", patience=1,
                                         min_delta=1e9)
    callbacks = keras.callbacks.CallbackList([crr, stop], model=model)
    callbacks.on_train_begin()
    model.stop_training = False
    for epoch in range(5):
        callbacks.on_epoch_end(epoch, {})
        if model.stop_training:
            break
    assert epoch == 1 and np.isfinite(stop.best)
