"""``--select_by``: label-free checkpoint selection by a per-epoch score of the CRR callback.

``SelectBest`` watches one log key (``crr/<tap>/heldout_delta_r``, ``crr/<tap>/train_delta_r``,
``crr/<tap>/gap``, ``rankme/<tap>`` or ``lidar/<tap>``). Whenever it improves, the model's
weights (``model.get_weights()``: every layer's variables, no optimizer state) are written to
``selected.weights.npz`` and the epoch and value to ``selected.json`` (both atomically); at the
end of training the selected weights are set back, so the run's saved backbone, its final
probe and an export are the selected model, while the optimizer keeps its step count. The checkpoints keep
the last epoch, so ``--resume`` continues training, and the selection continues from
``selected.json``. Higher is better for every key but the gap (the memorisation gap, lower).
"""
import math
import os

import keras
import numpy as np
from absl import logging

from sslzoo.errors import ConfigError
from sslzoo.utils.io import atomic_path, read_json, write_json

SELECTED_WEIGHTS, SELECTED_JSON = "selected.weights.npz", "selected.json"
TAP_SCORES = ("crr/{}/heldout_delta_r", "crr/{}/train_delta_r", "crr/{}/gap", "rankme/{}",
              "lidar/{}")


def score_keys(taps, quality=True):
    """The per-epoch score keys the CRR callback logs for ``taps``."""
    forms = TAP_SCORES if quality else TAP_SCORES[:3]
    return [f.format(t) for t in taps for f in forms]


def mode_of(key):
    """"min" for the memorisation gap, "max" for every other score."""
    return "min" if key.endswith("/gap") else "max"


def check_select_by(key, taps, quality=True, crr_on=True):
    """Reject a ``--select_by`` that the run will not log, naming the keys it will."""
    if not crr_on:
        raise ConfigError(f"--select_by={key} needs the per-epoch CRR callback: set "
                          "--crr_every >= 1 and --crr_reference_size >= 2")
    keys = score_keys(taps, quality)
    if key not in keys:
        hint = (" (rankme/ and lidar/ keys need --crr_quality)"
                if key.startswith(("rankme/", "lidar/")) and not quality else "")
        raise ConfigError(f"--select_by={key!r} is not a score this run logs{hint}; choose one "
                          f"of: {', '.join(keys)}")


def load_selected(path):
    """The arrays of ``selected.weights.npz``, in ``model.get_weights()``'s order."""
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


class SelectBest(keras.callbacks.Callback):
    """Keep the weights of the best epoch by ``key`` (list it after the CRR callback), and
    load them back when training ends."""

    def __init__(self, key, directory):
        super().__init__()
        self.key, self.mode = key, mode_of(key)
        self.weights_path = os.path.join(directory, SELECTED_WEIGHTS)
        self.json_path = os.path.join(directory, SELECTED_JSON)
        self.selected = None  # {"select_by", "mode", "epoch" (1-based), "value"}
        if os.path.exists(self.json_path) and os.path.exists(self.weights_path):
            saved = read_json(self.json_path)
            if saved.get("select_by") == key:  # a resumed run continues its selection
                self.selected = saved

    def _better(self, value):
        if not math.isfinite(value):
            return False
        if self.selected is None:
            return True
        best = self.selected["value"]
        return value > best if self.mode == "max" else value < best

    def on_epoch_end(self, epoch, logs=None):
        if self.key not in (logs or {}):
            raise ConfigError(f"--select_by={self.key} is not in the epoch logs "
                              f"({', '.join(sorted(logs or {}))}); list SelectBest after the "
                              "CRR callback")
        value = float(logs[self.key])
        if self._better(value):
            with atomic_path(self.weights_path, suffix=".npz") as tmp:
                np.savez(tmp, *self.model.get_weights())
            self.selected = {"select_by": self.key, "mode": self.mode, "epoch": epoch + 1,
                             "value": value}
            write_json(self.json_path, self.selected)

    def on_train_end(self, logs=None):
        if self.selected is None:
            logging.warning("--select_by=%s: no epoch had a finite value; keeping the last "
                            "weights", self.key)
            return
        self.model.set_weights(load_selected(self.weights_path))
        logging.info("label-free selection: restored the weights of epoch %d, best by %s "
                     "(%.4g)", self.selected["epoch"], self.key, self.selected["value"])
