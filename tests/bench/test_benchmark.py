"""sslzoo.bench: the alternating scheduler, step timing, the plain-Keras reference, FLOPs, and
apps/benchmark.py end to end (slow)."""
import json
import math
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from sslzoo import methods
from sslzoo.bench import flops as fl
from sslzoo.bench import timing
from sslzoo.bench.plain import PlainSimCLR, plain_like
from sslzoo.bench.report import markdown, targets
from sslzoo.bench.run import build_model, make_optimizer_for, run_benchmark
from sslzoo.bench.timing import alternate, fixed_batch, step_times, time_steps
from sslzoo.errors import ConfigError
from sslzoo.optim import make_optimizer
from tests.apps.conftest import run_app, tfds_dir  # noqa: F401 (the TFDS data_dir fixture)


def test_alternate_runs_round_robin_and_takes_medians():
    values = {"a": iter([5.0, 1.0, 3.0]), "b": iter([2.0, 9.0, 4.0]), "c": iter([7.0, 7.0, 1.0])}
    calls = []

    def fake(name):
        def measure():
            calls.append(name)
            return next(values[name])
        return measure

    out = alternate({n: fake(n) for n in "abc"}, repeats=3)
    assert calls == list("abcabcabc") == out["order"]
    assert out["median"] == {"a": 3.0, "b": 4.0, "c": 7.0}
    assert out["runs"]["b"] == [2.0, 9.0, 4.0]
    with pytest.raises(ConfigError):
        alternate({"a": fake("a")}, repeats=0)


class _Sleepy(keras.Model):
    """Each train step sleeps: 0.3 s for the first call (the "warmup"), then 0.02 s."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.calls = 0

    def train_step(self, data):
        self.calls += 1
        time.sleep(0.3 if self.calls == 1 else 0.02)
        return {"loss": 0.0}


def test_step_times_discards_warmup_and_times_each_step():
    model = _Sleepy()
    model.compile(run_eagerly=True)
    batch = fixed_batch(2, 8)
    seconds = step_times(model, batch, steps=4, warmup=1)
    assert model.calls == 5 and len(seconds) == 4
    assert all(0.02 <= s < 0.25 for s in seconds)  # the 0.3 s warmup step is not among them
    assert 0.02 <= time_steps(model, batch, steps=3, warmup=1) < 0.25


def _pair(image_size=16, batch=8, optimizer="lars"):
    keras.utils.set_random_seed(1)
    model = methods.build("simclr", "resnet_tiny", image_size=image_size, num_classes=10)
    plain = plain_like(model)
    for m in (model, plain):
        m.compile(make_optimizer_for(methods.get("simclr"), batch)[0] if optimizer == "lars"
                  else make_optimizer("sgd", 0.1, weight_decay=1e-4))
        m.build_all()
    return model, plain


@pytest.mark.parametrize("optimizer", ["lars", "sgd"])  # SGD's update is not scale-invariant
def test_plain_reference_is_the_same_computation(optimizer):
    model, plain = _pair(optimizer=optimizer)
    plain.load_weights_from(model)
    (v1, v2), y = fixed_batch(8, 16, seed=3)
    # The same loss on the same weights and views (BN in training mode, batch statistics).
    out = model.forward(tf.concat([v1, v2], 0), training=True)
    ssl = float(model.ssl_loss(out, 8))
    assert ssl == pytest.approx(float(plain.compute_ssl_loss(v1, v2)), rel=1e-5)
    assert ssl > 0
    # One train step each: the same loss and the same updated backbone and projector.
    before = [w.copy() for w in plain.backbone.get_weights()]
    logs_model = model.train_step(((v1, v2), y))
    logs_plain = plain.train_step(((v1, v2), y))
    assert float(logs_model["loss"]) == pytest.approx(float(logs_plain["loss"]), rel=1e-5)
    after = plain.backbone.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after))  # it did train
    for a, b in zip(model.backbone.get_weights(), after):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(model.projector.get_weights(), plain.projector.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # The plain reference has no probe and no CRR monitors.
    assert set(logs_plain) == {"loss"} and any(k.startswith("crr/") for k in logs_model)


def test_plain_reference_refuses_a_different_architecture():
    model = methods.build("simclr", "resnet_tiny", image_size=32)
    with pytest.raises(ConfigError, match="does not match"):
        PlainSimCLR.like(model, stem="imagenet")


def test_profiler_flops_match_the_analytic_conv_dense_count():
    net = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    conv, dense = 2 * 8 * 8 * 3 * 3 * 3 * 4, 2 * 4 * 5
    assert fl.analytic_flops(net, batch=2) == 2 * (conv + dense)
    _, plain = _pair(image_size=32)
    flops, source = fl.forward_flops(plain, 4, 32)
    analytic = fl.analytic_flops(plain, 4)
    assert source == fl.PROFILER
    # The profiler adds BN, ReLU and residual adds to the conv/dense FLOPs: a little more.
    assert analytic < flops < 1.02 * analytic
    assert fl.mfu(3 * flops, 0.5, 1e12) == pytest.approx(6 * flops / 1e12)


def test_time_steps_counts_work_done_every_nth_step(monkeypatch):
    # A ΔR measurement every 4th step: the plain median would hide it; cycles of 4 keep it.
    times = [1.0, 1.0, 1.0, 5.0] * 3
    monkeypatch.setattr(timing, "step_times", lambda *a, **k: list(times))
    assert timing.time_steps(None, None, 12, cycle=1) == 1.0
    assert timing.time_steps(None, None, 12, cycle=4) == 2.0


def test_run_benchmark_rejects_bad_settings_before_building_anything():
    with pytest.raises(ConfigError, match="unknown method"):
        run_benchmark(method="nope")
    with pytest.raises(ConfigError, match="batch_size"):
        run_benchmark(backbone="resnet_tiny", batch_size=1)
    for every in (0, 3):  # 3 does not divide the 10 steps: runs would differ in CRR work
        with pytest.raises(ConfigError, match="crr_every"):
            run_benchmark(backbone="resnet_tiny", steps=10, crr_every=every)


def test_build_model_sets_crr_every_on_the_crr_on_model_only():
    build = dict(method="simclr", backbone="resnet_tiny", image_size=16, batch_size=8,
                 probe=False, hparams={"proj_dim": 16}, crr_every=4)
    on, off = build_model("sslzoo", **build)[0], build_model("sslzoo_crr_off", **build)[0]
    assert on.crr_every == 4 and {m.every for m in on.monitors.values()} == {4}
    assert off.crr_every == 0 and not off.taps


def test_targets_are_marked_met_or_not():
    t = targets({"sslzoo_overhead": 1.04, "crr_overhead": 1.05, "umm_overhead": 1.6,
                 "pipeline_images_per_sec": 300.0, "images_per_sec": 200.0})
    assert t["sslzoo_overhead"]["met"] and not t["crr_overhead"]["met"]
    assert t["umm_overhead"]["met"] and not t["pipeline_vs_step"]["met"]
    assert t["pipeline_vs_step"]["value"] == pytest.approx(1.5)


def test_a_figure_that_was_not_measured_is_neither_met_nor_failed():
    t = targets({"sslzoo_overhead": None, "crr_overhead": 1.0, "umm_overhead": 1.2,
                 "pipeline_images_per_sec": 300.0, "images_per_sec": 100.0})
    assert t["sslzoo_overhead"]["met"] is None and t["sslzoo_overhead"]["value"] is None
    assert t["crr_overhead"]["met"] and t["pipeline_vs_step"]["met"]


@pytest.mark.slow
def test_benchmark_runs_a_method_without_a_plain_reference(tfds_dir):
    result = run_benchmark(method="byol", backbone="resnet_tiny", batch_size=8, steps=2,
                           warmup=1, repeats=1, probe=False, data_dir=tfds_dir, crr_every=2)
    assert result["run_order"] == ["sslzoo", "sslzoo_crr_off", "umm"]
    assert not result["plain_reference"]
    assert result["plain_keras_images_per_sec"] is None and result["sslzoo_overhead"] is None
    for key in ("images_per_sec", "crr_overhead", "umm_overhead", "mfu"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["targets"]["sslzoo_overhead"]["met"] is None
    assert "| n/a | <= 1.05 | not measured |" in markdown(result)
    assert result["settings"]["crr_every"] == 2
    assert "| CRR overhead (CRR every 2 steps / off) |" in markdown(result)


def test_fixed_batch_holds_a_multi_crop_methods_local_views():
    (v1, v2, *local), labels = fixed_batch(3, 16, local_crops=2, local_size=8)
    assert v1.shape == v2.shape == (3, 16, 16, 3) and labels.shape == (3,)
    assert [v.shape for v in local] == [(3, 8, 8, 3)] * 2
    assert not np.array_equal(local[0], local[1])


def test_local_crops_count_by_their_pixels(monkeypatch):
    monkeypatch.setattr(fl, "forward_flops", lambda model, batch, size: (1000 * batch, "x"))
    assert fl.views_forward_flops(None, 4, 32) == (8000, "x")
    assert fl.views_forward_flops(None, 4, 32, local_crops=3, local_size=32) == (20000, "x")
    assert fl.views_forward_flops(None, 4, 32, local_crops=2, local_size=16) == (10000, "x")


@pytest.mark.slow
def test_benchmark_feeds_a_many_view_method_all_its_views(tfds_dir):
    result = run_benchmark(method="emp_ssl", backbone="resnet_tiny", batch_size=4, steps=1,
                           warmup=1, repeats=1, probe=False, data_dir=tfds_dir,
                           hparams={"patches": 3, "proj_hidden_dim": 32, "proj_dim": 16})
    assert result["settings"]["views_per_step"] == 12
    for key in ("images_per_sec", "crr_overhead", "mfu", "pipeline_images_per_sec"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    # UMM runs two views only, so it is not timed, and the report says why
    assert result["run_order"] == ["sslzoo", "sslzoo_crr_off"]
    assert result["umm_overhead"] is None and result["settings"]["umm"] is None
    assert "set --hparams=patches=2" in result["not_measured"]["umm"]
    assert "Not measured: umm, because UMM does not support multi-crop" in markdown(result)


REQUIRED = ("images_per_sec", "plain_keras_images_per_sec", "sslzoo_overhead", "crr_overhead",
            "umm_overhead", "pipeline_images_per_sec", "mfu", "peak_memory_mb")


@pytest.mark.slow
def test_benchmark_app_tiny_run(tmp_path, tfds_dir):
    out = tmp_path / "bench"
    proc = run_app("benchmark", "--backbone=resnet_tiny", "--batch_size=16", "--steps=2",
                   "--warmup=1", "--repeats=1", "--hparams=proj_dim=32", f"--data_dir={tfds_dir}",
                   f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "benchmark.json").read_text())
    for key in REQUIRED:
        assert math.isfinite(result[key]) and result[key] > 0, (key, result[key])
    assert 0 < result["mfu"] < 1.5  # against a measured peak; above 1 would mean a bad count
    assert result["memory_kind"] in ("cpu_peak_rss_process", "gpu_peak_allocated")
    assert result["run_order"] == ["sslzoo", "sslzoo_crr_off", "umm", "plain"]
    machine = result["machine"]
    assert machine["cpu_cores"] >= 1 and machine["tensorflow"] == tf.__version__
    assert machine["keras"] == keras.__version__ and machine["precision"]
    s = result["settings"]
    assert (s["backbone"], s["batch_size"], s["steps"], s["repeats"]) == ("resnet_tiny", 16, 2, 1)
    assert s["hparams"] == {"proj_dim": 32}
    assert set(result["targets"]) == {"sslzoo_overhead", "crr_overhead", "umm_overhead",
                                      "pipeline_vs_step"}
    md = (out / "benchmark.md").read_text()
    assert "| CRR overhead (on / off) |" in md and ("not met" in md or "| met |" in md)
    assert "| target |" in proc.stdout
    assert not any(f.name.startswith(".tmp-") for f in out.iterdir())
    with pytest.raises(ConfigError, match="larger than the 1200 images"):
        run_benchmark(backbone="resnet_tiny", batch_size=5000, data_dir=tfds_dir)


def test_a_memory_bank_method_is_timed_with_its_bank_filled_and_its_kmeans(tfds_dir):
    """DeepCluster-v2's timed steps are pretraining's: indices that move through the bank, the
    first epoch filling it, k-means at every epoch start after that."""
    ds = timing.indexed_dataset(fixed_batch(16, 16, seed=0), 40)
    index = [b[2].numpy().tolist() for b in ds.take(3)]
    assert index[0] == list(range(16)) and index[2] == [(32 + i) % 40 for i in range(16)]
    model = build_model("sslzoo", "deepcluster_v2", "resnet_tiny", 16, 16, probe=False,
                        hparams={"proj_hidden_dim": 32, "proj_dim": 16, "num_prototypes": 8},
                        epoch=(40, 2))[0]
    assert model.memory.shape[0] == 40 and model.steps_per_epoch == 2
    assert (model.assignments.numpy() == -1).all()
    time_steps(model, ds, 2, warmup=3, cycle=2)  # steps 0-1 fill 32 rows; k-means at 2 and 4
    assert model.stored.numpy().sum() == 40
    assert (model.assignments.numpy() >= 0).all()  # step 4's k-means saw the whole bank
    norms = np.linalg.norm(model.centroids.numpy(), axis=-1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    with pytest.raises(ConfigError, match="multiple of 4"):  # 1200 // 300 = 4 steps an epoch
        run_benchmark(method="deepcluster_v2", backbone="resnet_tiny", batch_size=300, steps=6,
                      data_dir=tfds_dir)
    with pytest.raises(ConfigError, match="training-set size"):
        build_model("sslzoo", "deepcluster_v2", "resnet_tiny", 32, 8)


def test_maes_counted_forward_is_its_masked_pass():
    """MAE's FLOPs are those of the encoder on the visible patches and the decoder: fewer as
    more is masked, and fewer than the whole encoder's at the default 75%."""
    def counted(**hp):
        model = methods.build("mae", "vit_tiny", image_size=32, **hp)
        return fl.views_forward_flops(model.counted_forward(), 2, 32), model

    (f75, source), model = counted()
    f50 = counted(mask_ratio=0.5)[0][0]
    whole = fl.views_forward_flops(keras.Sequential([model.backbone, model.projector]), 2, 32)[0]
    assert source == fl.PROFILER and f75 < f50 < 1.5 * whole and f75 < whole
