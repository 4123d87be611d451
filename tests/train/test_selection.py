"""--select_by: SelectBest keeps the best epoch's weights by a label-free score, resumably."""
import json

import keras
import numpy as np
import pytest

from sslzoo.errors import ConfigError
from sslzoo.train.selection import SelectBest, check_select_by, mode_of, score_keys


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def _train(cb, model, values, key, start=0):
    cb.set_model(model)
    cb.on_train_begin()
    for i, v in enumerate(values):
        epoch = start + i
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        cb.on_epoch_end(epoch, {key: v, "loss": 1.0})
    cb.on_train_end()


def test_ends_with_the_best_epochs_weights(tmp_path):
    model = _model()
    cb = SelectBest("rankme/stage4", str(tmp_path))
    _train(cb, model, [1.0, 3.0, float("nan"), 2.0], "rankme/stage4")
    assert cb.selected == {"select_by": "rankme/stage4", "mode": "max", "epoch": 2, "value": 3.0}
    assert all(np.all(w == 1) for w in model.get_weights())  # epoch index 1's weights
    assert json.loads((tmp_path / "selected.json").read_text())["epoch"] == 2


def test_the_gap_is_minimised(tmp_path):
    model = _model()
    cb = SelectBest("crr/stage4/gap", str(tmp_path))
    _train(cb, model, [0.3, 0.1, 0.2], "crr/stage4/gap")
    assert cb.selected["epoch"] == 2 and all(np.all(w == 1) for w in model.get_weights())
    assert mode_of("crr/proj/gap") == "min" and mode_of("lidar/proj") == "max"


def test_a_resumed_run_continues_the_selection(tmp_path):
    model = _model()
    _train(SelectBest("lidar/proj", str(tmp_path)), model, [5.0, 4.0], "lidar/proj")
    resumed = SelectBest("lidar/proj", str(tmp_path))
    assert resumed.selected["value"] == 5.0
    _train(resumed, model, [4.5, 4.9], "lidar/proj", start=2)
    assert resumed.selected["epoch"] == 1 and all(np.all(w == 0) for w in model.get_weights())


def test_missing_key_and_bad_flags_are_clear_errors(tmp_path):
    cb = SelectBest("rankme/stage9", str(tmp_path))
    cb.set_model(_model())
    with pytest.raises(ConfigError, match="not in the epoch logs"):
        cb.on_epoch_end(0, {"loss": 1.0})
    taps = ["stage4", "proj"]
    assert "lidar/proj" in score_keys(taps) and "lidar/proj" not in score_keys(taps, False)
    check_select_by("crr/stage4/heldout_delta_r", taps)
    with pytest.raises(ConfigError, match="choose one of: crr/stage4/heldout_delta_r"):
        check_select_by("rankme/stage9", taps)
    with pytest.raises(ConfigError, match="need --crr_quality"):
        check_select_by("rankme/proj", taps, quality=False)
    with pytest.raises(ConfigError, match="--crr_every >= 1"):
        check_select_by("rankme/proj", taps, crr_on=False)
