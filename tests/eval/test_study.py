"""The layer-wise study: Spearman and peak summaries, the probe callback, StudyConfig flags."""
import json

import numpy as np
import pytest
from absl import flags

from apps.flags import define_from_dataclass, values_for
from sslzoo import methods
from sslzoo.probes import linear_probe
from sslzoo.eval.study import LayerProbeCallback, StudyConfig
from sslzoo.eval.study_stats import peaks, spearman
from sslzoo.train.config import PretrainConfig


def _records(tap, epochs, delta_r, acc):
    return [{"epoch": e, "tap": tap, "probe_acc": a, "heldout_delta_r": d, "train_delta_r": d}
            for e, d, a in zip(epochs, delta_r, acc)]


def test_spearman_on_a_planted_series():
    epochs = [10, 20, 30, 40, 50]
    # "a": ΔR and accuracy rise together; "b": ΔR rises while accuracy falls.
    records = (_records("a", epochs, [1, 2, 3, 4, 5], [0.1, 0.2, 0.3, 0.4, 0.5])
               + _records("b", epochs, [6, 7, 8, 9, 10], [1.0, 0.9, 0.8, 0.7, 0.6]))
    rho = spearman(records)
    assert rho["per_tap"]["a"]["rho"] == pytest.approx(1.0)
    assert rho["per_tap"]["b"]["rho"] == pytest.approx(-1.0)
    # Pooled ranks: ΔR 1..10; accuracy 1..5 then 10..6, so Σd² = 16+4+0+4+16 = 40 and
    # ρ = 1 − 6·40 / (10·(10² − 1)) = 25/33.
    assert rho["all"]["rho"] == pytest.approx(25 / 33)
    assert rho["all"]["n"] == 10 and 0 < rho["all"]["p"] < 0.05


def test_spearman_per_signal():
    epochs = [10, 20, 30, 40, 50]
    acc = [0.5, 0.7, 0.8, 0.75, 0.6]
    records = [{"epoch": e, "tap": "stage4", "probe_acc": a, "heldout_delta_r": 1.0 + e,
                "train_delta_r": 2.0 + e, "gap": g}
               for e, a, g in zip(epochs, acc, [0.5, 0.3, 0.1, 0.2, 0.4])]
    sig = spearman(records)["signals"]["stage4"]
    assert sig["gap"]["rho"] == pytest.approx(-1.0)  # the gap mirrors accuracy
    expect = 1 - 6 * (0 + 1 + 4 + 0 + 9) / (5 * 24)  # accuracy ranks 1,3,5,4,2 against 1..5
    assert sig["heldout_delta_r"]["rho"] == pytest.approx(expect)
    assert sig["train_delta_r"]["rho"] == pytest.approx(expect)
    assert spearman(_records("a", epochs, [1] * 5, acc))["signals"]["a"]["gap"]["n"] == 0


def test_spearman_skips_missing_points_and_constant_series():
    records = _records("a", [1, 2, 3, 4], [1, 2, None, 4], [0.1, 0.3, 0.5, None])
    records += _records("flat", [1, 2, 3], [1, 2, 3], [0.5, 0.5, 0.5])
    rho = spearman(records)
    assert rho["per_tap"]["a"] == {"rho": None, "p": None, "n": 2}  # too few points
    assert rho["per_tap"]["flat"]["rho"] is None and rho["per_tap"]["flat"]["n"] == 3
    assert rho["all"]["n"] == 5 and rho["all"]["rho"] is not None


def test_peaks_drop_and_epochs():
    records = (_records("late", [10, 20, 30, 40, 50], [1] * 5, [0.9, 0.99, 0.985, 0.99, 0.978])
               + _records("early", [10, 20, 30], [1] * 3, [0.8, 0.85, 0.9]))
    p = peaks(records[::-1])  # record order does not matter
    assert p["late"]["peak_acc"] == 0.99 and p["late"]["peak_epoch"] == 20  # first maximum
    assert p["late"]["final_acc"] == 0.978 and p["late"]["final_epoch"] == 50
    assert p["late"]["drop"] == pytest.approx(0.012)
    assert p["early"] == {"peak_acc": 0.9, "peak_epoch": 30, "final_acc": 0.9,
                          "final_epoch": 30, "drop": 0.0}


@pytest.fixture(scope="module")
def model():
    return methods.build("simclr", "resnet_tiny", image_size=16, proj_hidden_dim=32,
                         proj_dim=16)


def _split(n, seed):
    """Dark (class 0) and bright (class 1) noise images: linearly separable at every layer."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 100, (n, 16, 16, 3)) + 150 * y[:, None, None, None]
    return x.astype("uint8"), y


def _logs(epoch):
    return {f"crr/{t}/{k}": float(epoch + i + (0.5 if k == "train_delta_r" else 0))
            for i, t in enumerate(("stage1", "stage2", "stage3", "stage4", "proj"))
            for k in ("heldout_delta_r", "train_delta_r", "gap")}


def test_probe_callback_measures_every_k_epochs_and_writes_study_json(model, tmp_path):
    fit, ev = _split(40, 0), _split(30, 1)
    cb = LayerProbeCallback(fit, ev, every=2, epochs=5, output_dir=str(tmp_path))
    cb.set_model(model)
    cb.on_train_begin()
    for epoch in range(5):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, _logs(epoch))
    cb.on_train_end()
    report = json.loads((tmp_path / "study.json").read_text())
    taps = ["stage1", "stage2", "stage3", "stage4", "proj"]
    assert report["settings"]["taps"] == taps and report["settings"]["probe_eval_images"] == 30
    assert [(r["epoch"], r["tap"]) for r in report["records"]] == [
        (e, t) for e in (2, 4, 5) for t in taps]
    last = {r["tap"]: r for r in report["records"] if r["epoch"] == 5}
    assert last["stage2"]["heldout_delta_r"] == 5.0 and last["stage2"]["train_delta_r"] == 5.5
    assert last["stage2"]["gap"] == 5.0
    # The recorded accuracy is the probe on that tap's pooled features.
    out_fit = model.forward(fit[0].astype("float32"), training=False)["stage1"]
    out_ev = model.forward(ev[0].astype("float32"), training=False)["stage1"]
    expect = linear_probe(np.mean(out_fit, axis=(1, 2)), fit[1], np.mean(out_ev, axis=(1, 2)),
                          ev[1])
    assert last["stage1"]["probe_acc"] == pytest.approx(expect)
    assert last["stage1"]["probe_acc"] >= 0.9  # brightness is readable from stage1
    assert set(report["summary"]["per_tap"]) == set(taps)
    assert report["summary"]["spearman"]["all"]["n"] == 15
    assert (tmp_path / "study.png").read_bytes()[:4] == b"\x89PNG"
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_probe_callback_resumes_and_measures_a_run_stopped_early(model, tmp_path):
    fit, ev = _split(20, 0), _split(20, 1)
    first = LayerProbeCallback(fit, ev, every=1, epochs=4, output_dir=str(tmp_path),
                               taps=["stage1"])
    first.set_model(model)
    first.on_train_begin()
    for epoch in range(3):  # killed after measuring epoch 3; its checkpoint is at epoch 2
        first.on_epoch_end(epoch, _logs(epoch))
    again = LayerProbeCallback(fit, ev, every=10, epochs=9, output_dir=str(tmp_path),
                               taps=["stage1"], resume=True)
    again.set_model(model)
    again.on_train_begin()
    again.on_epoch_begin(2)  # continues from epoch index 2: epoch 3's record is dropped
    assert [r["epoch"] for r in again.records] == [1, 2]
    again.on_epoch_end(2, _logs(2))  # not a K-th epoch ...
    again.on_train_end()  # ... but training stopped there, so it is measured
    report = json.loads((tmp_path / "study.json").read_text())
    assert [r["epoch"] for r in report["records"]] == [1, 2, 3]


def test_study_config_defaults_and_generated_flags():
    fv = flags.FlagValues()
    define_from_dataclass(StudyConfig, fv)
    fv(["prog", "--study_every=5", "--method=simclr"])
    values, present = values_for(StudyConfig, fv)
    cfg = StudyConfig(**values)
    assert present == {"study_every": 5, "method": "simclr"}
    assert (cfg.split, cfg.epochs, cfg.batch_size) == ("train[:200]", 200, 100)
    assert (cfg.probe_fit_split, cfg.probe_eval_split) == ("train[200:1200]", "test")
    assert (cfg.probe_train_split, cfg.probe_test_split) == (cfg.probe_fit_split,
                                                             cfg.probe_eval_split)
    assert cfg.method_hparams() == {"temperature": 0.2} and cfg.optimizer == "adamw"
    # Every pretraining flag is there too, with the parent's help text.
    names = {f for f in fv}
    assert {f.name for f in PretrainConfig.__dataclass_fields__.values()} <= names
    assert fv["split"].help == PretrainConfig.__dataclass_fields__["split"].metadata["help"]
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["prog", "--study_every=0"])


@pytest.mark.parametrize("method", methods.available())
def test_study_config_works_for_every_method(method):
    """temperature=0.2 goes only to methods that have a temperature; a given one wins."""
    cfg = StudyConfig(method=method, output_dir="unused")
    has_t = "temperature" in methods.get(method).defaults
    assert cfg.method_hparams() == ({"temperature": 0.2} if has_t else {})
    given = StudyConfig(method=method, hparams="proj_dim=32", output_dir="unused")
    assert given.method_hparams() == {"proj_dim": 32, **({"temperature": 0.2} if has_t else {})}
    if has_t:
        assert StudyConfig(method=method, hparams="temperature=0.5",
                           output_dir="unused").method_hparams() == {"temperature": 0.5}


def test_final_probe_follows_the_study_splits():
    """A validation run (--probe_fit_split/--probe_eval_split) must not score its final probe,
    nor UMM's before/after probe, on the test split behind the user's back."""
    from sslzoo.errors import ConfigError

    cfg = StudyConfig(output_dir="x", probe_fit_split="train[200:1000]",
                      probe_eval_split="train[1000:1200]")
    assert (cfg.probe_train_split, cfg.probe_test_split) == ("train[200:1000]", "train[1000:1200]")
    assert StudyConfig(output_dir="x").probe_test_split == "test"
    with pytest.raises(ConfigError, match="set only --probe_eval_split"):
        StudyConfig(output_dir="x", probe_eval_split="train[1000:1200]", probe_test_split="test[:9]")


def test_shipped_memorise_flagfile_parses_to_the_documented_setting():
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "apps", "configs",
                        "study_fmnist_memorise.flags")
    fv = flags.FlagValues()
    define_from_dataclass(StudyConfig, fv)
    fv(["prog", f"--flagfile={path}", "--seed=3", "--output_dir=unused"])
    cfg = StudyConfig(**values_for(StudyConfig, fv)[0])
    assert (cfg.dataset, cfg.split, cfg.backbone, cfg.epochs) == (
        "fashion_mnist", "train[:200]", "resnet_tiny", 300)
    assert cfg.method_hparams() == {"proj_layers": 1, "temperature": 0.2}
    assert (cfg.schedule, cfg.learning_rate, cfg.seed) == ("constant", 0.0128, 3)
    assert "test" not in (cfg.probe_fit_split, cfg.probe_eval_split, cfg.crr_reference_split)
    assert (cfg.probe_train_split, cfg.probe_test_split) == ("train[50000:55000]",
                                                             "train[55000:57000]")
