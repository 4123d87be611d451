"""The label-free early warning on planted ΔR series."""
import math

import pytest

from sslzoo.crr.warning import SIGNALS, detect, gap_growth, gaps, heldout_drop, rule_settings

EARLY = ["stage1", "stage2"]


def _history(watch_heldout, watch_train=None, early_heldout=None, early_train=None):
    n = len(watch_heldout)
    rising = [10 + 0.5 * i for i in range(n)]
    h = {"stage4": {"heldout": list(watch_heldout), "train": list(watch_train or watch_heldout)}}
    for tap in EARLY:
        heldout = list(early_heldout or rising)
        h[tap] = {"heldout": heldout, "train": list(early_train or heldout)}
    return h


def test_planted_heldout_peak_is_found_after_patience_epochs():
    curve = [10 + i for i in range(11)] + [20 - 2 * i for i in range(1, 8)]  # peak at index 10
    for t in range(11, len(curve) + 1):
        found = detect(_history(curve[:t]), "stage4", EARLY, patience=5)
        if found:
            break
    assert found == {"signal": "heldout_drop", "turning_epoch": 11, "best_epoch": 10}
    assert t == 16  # the peak plus 5 epochs below it: not earlier


def test_no_warning_when_every_layer_falls_together():
    """A drop at the early layers too is collapse or divergence, not memorisation."""
    curve = [10 + i for i in range(11)] + [20 - 2 * i for i in range(1, 8)]
    assert heldout_drop(_history(curve, early_heldout=curve), "stage4", EARLY, 5) is None
    assert detect(_history(curve, early_heldout=curve), "stage4", EARLY, 5) is None


def test_no_warning_on_rising_or_noisy_curves():
    rising = [10 + 0.3 * i for i in range(30)]
    assert detect(_history(rising), "stage4", EARLY) is None
    wiggle = [20 + (0.1 if i % 2 else -0.1) for i in range(30)]  # within drop_tol of the peak
    assert detect(_history(wiggle), "stage4", EARLY) is None


def test_memorisation_gap_fires_while_heldout_keeps_rising():
    """The scratch-run pattern: held-out ΔR still rises, ΔR on pretraining images rises faster."""
    n = 30
    heldout = [20 + 0.5 * i for i in range(n)]
    train = [h * (1.0 if i <= 12 else 1.0 + 0.02 * (i - 12)) for i, h in enumerate(heldout)]
    history = _history(heldout, train)
    assert heldout_drop(history, "stage4", EARLY) is None
    found = detect(history, "stage4", EARLY, patience=5, gap_threshold=0.05)
    assert found["signal"] == "memorisation_gap"
    # gap(i) = 0.02 (i - 12) exceeds 0.05 from i = 15 on; the best epoch is the one before.
    assert found["turning_epoch"] == 15 and found["best_epoch"] == 14
    assert gap_growth(_history(heldout, train, early_train=[
        10 * (1 + 0.02 * i) for i in range(n)], early_heldout=[10] * n), "stage4", EARLY) is None


def test_gap_is_relative_to_heldout():
    assert gaps({"train": [12.0, 5.0], "heldout": [10.0, 5.0]}) == [0.2, 0.0]


def test_warmup_epochs_are_no_evidence():
    """A held-out peak inside the warmup fires without ignore_before, and not with it."""
    curve = [10, 14, 12, 11, 11, 11, 11, 11] + [11 + 0.5 * i for i in range(10)]
    assert detect(_history(curve[:8]), "stage4", EARLY, patience=5)["best_epoch"] == 1
    for t in range(8, len(curve) + 1):
        assert detect(_history(curve[:t]), "stage4", EARLY, patience=5, ignore_before=3) is None


def test_nan_epochs_are_skipped_and_indices_stay_absolute():
    curve = [10 + i for i in range(11)] + [20 - 2 * i for i in range(1, 8)]
    curve[3] = math.nan
    found = detect(_history(curve), "stage4", EARLY, patience=5)
    assert found["best_epoch"] == 10 and found["turning_epoch"] == 11
    assert detect(_history([math.nan] * 4), "stage4", EARLY) is None


def test_signals_choose_which_signal_may_fire():
    drop = [10 + i for i in range(11)] + [20 - 2 * i for i in range(1, 8)]
    assert detect(_history(drop), "stage4", EARLY, signals=("memorisation_gap",)) is None
    assert detect(_history(drop), "stage4", EARLY,
                  signals=("heldout_drop",))["signal"] == "heldout_drop"
    with pytest.raises(ValueError, match="unknown CRR warning signals"):
        detect(_history(drop), "stage4", EARLY, signals=("drop",))


def test_strict_rule_takes_the_gap_only_and_ignores_the_first_tenth():
    assert rule_settings("any", 300, 2.5) == {"signals": SIGNALS, "ignore_before": 3}
    assert rule_settings("strict", 300, 2.5) == {"signals": ("memorisation_gap",),
                                                 "ignore_before": 30}
    assert rule_settings("strict", 30, 10) == {"signals": ("memorisation_gap",),
                                               "ignore_before": 10}
    with pytest.raises(ValueError, match="unknown CRR warning rule"):
        rule_settings("lenient", 30, 0)
