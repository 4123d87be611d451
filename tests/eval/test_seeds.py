"""Several seeds of one study setting: the claims computed from planted run directories."""
import json

import pytest

from sslzoo.errors import DataError
from sslzoo.eval.seeds import markdown, mean_se, plot_seeds, run_rows, summarize_seeds
from sslzoo.eval.study_stats import summarize

EPOCHS = [10, 20, 30, 40, 50, 60]


def _run(tmp_path, name, late, warning):
    """A study run: stage1 flat, stage4 rising then falling by `late` drop, a warning."""
    records = []
    for i, e in enumerate(EPOCHS):
        s4 = 0.80 + 0.02 * min(i, 2) - (late * (i - 2) / 3 if i > 2 else 0.0)
        for tap, acc, gap in (("stage1", 0.70 + 0.001 * (i % 2), 0.01),
                              ("stage4", s4, 0.01 + 0.02 * i)):
            records.append({"epoch": e, "tap": tap, "probe_acc": acc,
                            "heldout_delta_r": 10.0 - i, "train_delta_r": 10.0, "gap": gap})
    d = tmp_path / name
    d.mkdir()
    study = {"records": records, "summary": summarize(records)}
    (d / "study.json").write_text(json.dumps(study))
    history = {t: {"heldout": [10.0, 10.0], "train": [10.5, 11.0 if t == "stage4" else 10.2]}
               for t in ("stage1", "stage4")}
    (d / "crr_report.json").write_text(json.dumps({"warning": warning, "history": history}))
    (d / "config.json").write_text(json.dumps({"epochs": 60}))
    return str(d)


def test_mean_se():
    m = mean_se([1.0, 2.0, 3.0, None])
    assert m["mean"] == 2.0 and m["se"] == pytest.approx(1.0 / 3 ** 0.5) and len(m["values"]) == 3
    assert mean_se([0.5])["se"] is None and mean_se([])["mean"] is None


def test_claims_from_three_planted_runs(tmp_path):
    warn = {"signal": "memorisation_gap", "detected_at_epoch": 33, "turning_epoch": 25,
            "best_epoch": 29}
    late = {**warn, "detected_at_epoch": 50}
    runs = [_run(tmp_path, "s0", 0.03, warn), _run(tmp_path, "s1", 0.04, late),
            _run(tmp_path, "s2", 0.035, None)]
    s = summarize_seeds(runs, watch="stage4", early=("stage1",))
    assert s["layers"]["stage4"]["drop"]["mean"] == pytest.approx(0.035)
    assert s["layers"]["stage4"]["drop"]["se"] == pytest.approx(0.005 / 3 ** 0.5)
    assert s["layers"]["stage4"]["peak_epochs"] == [30, 30, 30]
    assert s["layers"]["stage1"]["drop"]["mean"] == pytest.approx(0.0)
    m = s["layers"]["stage4"]["mean_curve"]
    assert (m["peak_epoch"], m["peak_acc"]) == (30, pytest.approx(0.84))
    assert m["drop"] == pytest.approx(0.035) and m["drop_se"] == pytest.approx(0.005 / 3 ** 0.5)
    assert s["layers"]["stage1"]["mean_curve"]["drop"] == pytest.approx(0.0)
    assert s["memorises"]
    # Each run's ρ of stage4's accuracy with each signal, and their mean.
    for k in ("heldout_delta_r", "gap"):
        per_run = [json.load(open(f"{r}/study.json"))["summary"]["spearman"]["signals"]
                   ["stage4"][k]["rho"] for r in runs]
        assert s["signals"][k]["values"] == pytest.approx(per_run)
        assert s["signals"][k]["mean"] == pytest.approx(sum(per_run) / 3)
    assert s["signals"]["train_delta_r"]["mean"] is None  # a constant series has no ρ
    w0, w1, w2 = s["warning"]
    assert (w0["lag"], w0["within_lag"], w0["probe_epoch_used"]) == (3, True, 30)
    assert w0["loss_vs_label_best"] == pytest.approx(0.0)
    assert (w1["lag"], w1["within_lag"]) == (20, False)
    assert not w2["fired"]
    text = markdown(s)
    assert "**yes**" in text and "| s2 | 0.8400 @ 30 | never |" in text
    assert "| stage4 | 0.8400 @ 30 → 0.8050 | 0.0350 ± 0.0029 |" in text
    plot_seeds(s, str(tmp_path / "seeds.png"))
    assert (tmp_path / "seeds.png").stat().st_size < 150_000


def test_a_small_drop_is_not_memorisation(tmp_path):
    runs = [_run(tmp_path, f"s{i}", d, None) for i, d in enumerate((0.01, 0.03, 0.05))]
    s = summarize_seeds(runs, early=("stage1",))
    assert s["layers"]["stage4"]["drop"]["mean"] == pytest.approx(0.03)
    assert not s["memorises"]  # 3 points but SE 1.15: under three standard errors


def test_not_a_study_run(tmp_path):
    with pytest.raises(DataError, match="not a finished sslzoo-study run.*study.json"):
        summarize_seeds([str(tmp_path)])


def test_one_row_per_run(tmp_path):
    warn = {"signal": "heldout_drop", "detected_at_epoch": 40, "turning_epoch": 31,
            "best_epoch": 30}
    rows = run_rows([_run(tmp_path, "a", 0.03, warn), _run(tmp_path, "b", 0.0, None)],
                    taps=("stage1", "stage4")).splitlines()
    assert len(rows) == 4
    assert rows[2] == ("| a | 60 | 0.7010 @ 20 → 0.7010 | 0.8400 @ 30 → 0.8100 | 0.050 → 0.020 "
                       "/ 0.050 → 0.100 | epoch 40 (heldout_drop, best 30) |")
    assert rows[3].endswith("| none |")


def test_mean_curve_discounts_peaks_at_different_epochs(tmp_path):
    from sslzoo.eval.seeds import load_run, mean_curve

    runs = []
    for name, spike in (("a", 20), ("b", 40)):
        d = tmp_path / name
        d.mkdir()
        records = [{"epoch": e, "tap": "stage4", "probe_acc": 0.9 if e == spike else 0.8}
                   for e in (10, 20, 30, 40, 50)]
        (d / "study.json").write_text(json.dumps({"records": records,
                                                  "summary": summarize(records)}))
        (d / "crr_report.json").write_text(json.dumps({"warning": None, "history": {}}))
        (d / "config.json").write_text(json.dumps({"epochs": 50}))
        runs.append(load_run(str(d)))
    m = mean_curve(runs, "stage4")
    assert (m["peak_epoch"], m["drop"]) == (20, pytest.approx(0.05))  # per run: 0.1 each
    assert m["drop_se"] == pytest.approx(0.05)  # drops at epoch 20: 0.1 and 0.0


def test_replay_recomputes_the_warning_online_and_ignores_the_warmup(tmp_path):
    """A held-out peak in epoch 2 (inside 3 warmup epochs), then a peak at epoch 5 and a fall:
    the replay skips the first and fires 5 epochs after the second, as the callback would."""
    d = tmp_path / "r"
    _run(tmp_path, "r", 0.03, None)
    curve = [10.0, 14.0, 11.0, 11.5, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    history = {t: {"heldout": curve if t == "stage4" else [5.0] * 11,
                   "train": curve if t == "stage4" else [5.0] * 11} for t in ("stage1", "stage4")}
    settings = {"watch": "stage4", "early": ["stage1"], "patience": 5, "drop_tol": 0.02,
                "gap_threshold": 0.05}
    (d / "crr_report.json").write_text(json.dumps({"warning": None, "history": history,
                                                   "settings": settings}))
    (d / "config.json").write_text(json.dumps({"epochs": 60, "warmup_epochs": 3}))
    w = summarize_seeds([str(d)], early=("stage1",), replay=True)["warning"][0]["warning"]
    assert (w["signal"], w["best_epoch"], w["detected_at_epoch"]) == ("heldout_drop", 5, 10)
    (d / "config.json").write_text(json.dumps({"epochs": 60, "warmup_epochs": 0}))
    w = summarize_seeds([str(d)], early=("stage1",), replay=True)["warning"][0]["warning"]
    assert (w["best_epoch"], w["detected_at_epoch"]) == (2, 7)
    assert summarize_seeds([str(d)], early=("stage1",))["warning"][0]["warning"] is None
    # The strict rule takes the gap only (flat here: train = held-out), so it stays silent.
    assert summarize_seeds([str(d)], early=("stage1",), replay=True,
                           rule="strict")["warning"][0]["warning"] is None
    assert "epoch 7 (heldout_drop, best 2)" in run_rows([str(d)], taps=("stage4",), replay=True)


def test_strict_replay_fires_on_the_late_gap_after_the_first_tenth(tmp_path):
    """Stage4's gap grows 0.02 a epoch from epoch 4 while stage1's is flat: the strict rule
    ignores the first ceil(60/10) = 6 epochs, so its 5 epochs of growth above 0.05 end at 11."""
    d = tmp_path / "g"
    _run(tmp_path, "g", 0.03, None)
    heldout = [10.0 + 0.5 * i for i in range(14)]
    train = [h * (1 + 0.02 * max(0, i - 3)) for i, h in enumerate(heldout)]
    history = {"stage4": {"heldout": heldout, "train": train},
               "stage1": {"heldout": [5.0] * 14, "train": [5.0] * 14}}
    settings = {"watch": "stage4", "early": ["stage1"], "patience": 5, "drop_tol": 0.02,
                "gap_threshold": 0.05}
    (d / "crr_report.json").write_text(json.dumps({"warning": None, "history": history,
                                                   "settings": settings}))
    (d / "config.json").write_text(json.dumps({"epochs": 60, "warmup_epochs": 0}))
    w = summarize_seeds([str(d)], early=("stage1",), replay=True,
                        rule="strict")["warning"][0]["warning"]
    assert (w["signal"], w["rule"]) == ("memorisation_gap", "strict")
    assert w["detected_at_epoch"] == 14
