"""The layer-wise CRR study: does a layer's held-out ΔR track what a linear probe can read from it?

``run_study(cfg)`` pretrains on a small subset (``StudyConfig`` defaults: 200 digits, 200
epochs) with a :class:`LayerProbeCallback` that, every ``study_every`` epochs and at the last
one, fits a logistic-regression probe on each tap's frozen features (probe-fit split) and
scores it on the probe-eval split, next to that epoch's per-epoch ΔR from the CRR callback.
The run directory gains ``study.json`` (one record per tap per measured epoch, the per-layer
peak / final / drop of probe accuracy and the Spearman ρ between held-out ΔR and accuracy) and
``study.png``; both are rewritten atomically after every measurement.
"""
import dataclasses
import math
import os

import keras
import numpy as np
from absl import logging

from sslzoo import data as sdata
from sslzoo import methods
from sslzoo.errors import ConfigError
from sslzoo.eval.study_plots import plot_study
from sslzoo.eval.study_stats import SIGNALS, number, summarize
from sslzoo.losses.common import pooled_f32
from sslzoo.probes import linear_probe
from sslzoo.train.config import PretrainConfig
from sslzoo.train.pretrain import pretrain
from sslzoo.utils.config import setting
from sslzoo.utils.io import atomic_path, read_json, write_json


STUDY_TEMPERATURE = 0.2  # SimCLR's at small batches (BUILD.md, "The layer-wise study")


def _with_default(name, default):
    """Re-declare the PretrainConfig field ``name`` (same help and bounds) with a new default."""
    return dataclasses.field(default=default,
                             metadata=PretrainConfig.__dataclass_fields__[name].metadata)


@dataclasses.dataclass
class StudyConfig(PretrainConfig):
    """PretrainConfig with the study's defaults (the issue's scratch-run setting on ``digits``,
    scaled to a CPU) and the study's own settings."""

    backbone: str = _with_default("backbone", "resnet_tiny")
    split: str = _with_default("split", "train[:200]")
    probe_train_split: str = _with_default("probe_train_split", "train[200:1200]")
    probe_test_split: str = _with_default("probe_test_split", "test")
    epochs: int = _with_default("epochs", 200)
    batch_size: int = _with_default("batch_size", 100)
    learning_rate: float = _with_default("learning_rate", 0.00256)  # × 100/256: peak 1e-3
    optimizer: str = _with_default("optimizer", "adamw")
    weight_decay: float = _with_default("weight_decay", 0.0)
    warmup_epochs: float = _with_default("warmup_epochs", 10.0)
    hparams: str = setting("", "Method hyperparameters, e.g. 'proj_dim=64'. The study uses "
                           "temperature=0.2 for methods that have a temperature unless given here.")
    crr_reference_split: str = _with_default("crr_reference_split", "test")
    verbose: int = _with_default("verbose", 2)
    study_every: int = setting(10, "Fit the per-layer probes every K epochs (and at the last one).",
                               lower=1)
    probe_fit_split: str = setting("train[200:1200]", "Labeled split the per-layer probes are "
                                   "fitted on (keep it disjoint from --split).")
    probe_eval_split: str = setting("test", "Labeled split the per-layer probes are scored on.")

    # The final probe (summary.json, UMM's before/after) follows the per-layer probes' splits.
    _FINAL_PROBE = (("probe_train_split", "probe_fit_split"),
                    ("probe_test_split", "probe_eval_split"))

    def __post_init__(self):
        super().__post_init__()
        for final, study in self._FINAL_PROBE:
            default = type(self).__dataclass_fields__[final].default
            if getattr(self, final) == default:
                setattr(self, final, getattr(self, study))
            elif getattr(self, final) != getattr(self, study):
                raise ConfigError(f"--{final}={getattr(self, final)} differs from "
                                  f"--{study}={getattr(self, study)}: the study scores every "
                                  f"probe on one pair of splits; set only --{study}")

    def method_hparams(self):
        """``hparams``, plus temperature=0.2 when the method has a temperature not given."""
        out = super().method_hparams()
        if "temperature" in methods.get(self.method).defaults:
            out.setdefault("temperature", STUDY_TEMPERATURE)
        return out


def _features(model, images, batch_size=256):
    """{tap: float32 (N, D)} of ``model.forward`` on unaugmented images; 4-D maps are
    global-average-pooled."""
    out = {}
    for i in range(0, len(images), batch_size):
        x = keras.ops.convert_to_tensor(images[i:i + batch_size].astype("float32"))
        for tap, z in model.forward(x, training=False).features.items():
            out.setdefault(tap, []).append(keras.ops.convert_to_numpy(pooled_f32(z)))
    return {tap: np.concatenate(v) for tap, v in out.items()}


class LayerProbeCallback(keras.callbacks.Callback):
    """Every ``every`` epochs (and at epoch ``epochs``) fit a linear probe per tap.

    ``fit`` and ``evaluate`` are (images [N, S, S, 3] in [0, 255], int labels [N]). Each
    measurement appends one record per tap, ``{"epoch" (1-based), "tap", "probe_acc",
    "heldout_delta_r", "train_delta_r", "gap"}`` (from the CRR callback's logs, null if
    absent; gap = (ΔR_train − ΔR_heldout) / |ΔR_heldout|),
    then rewrites ``study.json`` and ``study.png`` in ``output_dir``. List it after the
    CRRCallback. With ``resume`` it keeps the records of an earlier ``study.json`` up to the
    epoch training continues from.
    """

    def __init__(self, fit, evaluate, every=10, epochs=None, output_dir=None, taps=None,
                 resume=False, settings=None):
        super().__init__()
        self.fit_x, self.fit_y = np.asarray(fit[0]), np.asarray(fit[1])
        self.eval_x, self.eval_y = np.asarray(evaluate[0]), np.asarray(evaluate[1])
        self.every, self.epochs, self.output_dir = int(every), epochs, output_dir
        self.taps, self.settings = taps, dict(settings or {})
        self.records, self._last = [], None
        path = self.path
        if resume and path and os.path.exists(path):
            self.records = list(read_json(path).get("records", []))

    @property
    def path(self):
        return os.path.join(self.output_dir, "study.json") if self.output_dir else None

    def on_train_begin(self, logs=None):
        self.taps = list(self.taps or self.model.ssl_model.taps or ("pooled", "proj"))

    def on_epoch_begin(self, epoch, logs=None):
        self.records = [r for r in self.records if r["epoch"] <= epoch]  # after a resume

    def on_epoch_end(self, epoch, logs=None):
        last = self.epochs or self.params.get("epochs")
        self._last = (epoch, dict(logs or {}))
        if (epoch + 1) % self.every == 0 or epoch + 1 == last:
            self.measure(epoch, logs)

    def on_train_end(self, logs=None):
        # A run stopped early (CRR early stop, NaN) still gets its last epoch measured.
        if self._last and not any(r["epoch"] == self._last[0] + 1 for r in self.records):
            self.measure(*self._last)

    def measure(self, epoch, logs=None):
        """Probe every tap at (0-based) ``epoch``; returns {tap: accuracy or None}."""
        logs = logs or {}
        fit, ev = _features(self.model, self.fit_x), _features(self.model, self.eval_x)
        self.records = [r for r in self.records if r["epoch"] != epoch + 1]
        accs = {}
        for tap in self.taps:
            if not (np.isfinite(fit[tap]).all() and np.isfinite(ev[tap]).all()):
                logging.warning("study: layer %s has NaN or Inf features at epoch %d; no probe",
                                tap, epoch + 1)
                accs[tap] = None
            else:
                accs[tap] = linear_probe(fit[tap], self.fit_y, ev[tap], self.eval_y)
            self.records.append({
                "epoch": epoch + 1, "tap": tap, "probe_acc": accs[tap],
                **{k: number(logs.get(f"crr/{tap}/{k}")) for k in SIGNALS}})
        logging.info("study epoch %d probe accuracy: %s", epoch + 1, ", ".join(
            f"{t} {a:.4f}" if a is not None else f"{t} n/a" for t, a in accs.items()))
        self.write()
        return accs

    def report(self, complete=False):
        return {"settings": {**self.settings, "study_every": self.every, "taps": self.taps,
                             "probe_fit_images": int(len(self.fit_y)),
                             "probe_eval_images": int(len(self.eval_y))},
                "records": self.records, "summary": summarize(self.records),
                "complete": complete}

    def write(self, complete=False, **extra):
        """Rewrite ``study.json`` (with ``extra`` entries) and ``study.png``; returns the report."""
        report = {**self.report(complete), **extra}
        if not self.output_dir:
            return report
        write_json(self.path, report)
        plot_study(self.records, os.path.join(self.output_dir, "study.png"))
        return report


def _arrays(data):
    """(uint8 images, int labels) of a whole split."""
    xs, ys = zip(*data.dataset.batch(1024).as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def run_study(cfg=None, callbacks=(), **overrides):
    """Pretrain as ``cfg`` (a StudyConfig or keyword settings) says with a LayerProbeCallback
    (then the extra Keras ``callbacks``); returns the study report (also in
    ``<output_dir>/study.json``) with the pretraining summary under ``"pretrain"``."""
    cfg = cfg or StudyConfig(**overrides)
    methods.get(cfg.method)  # an unknown method fails before any data is loaded
    load = dict(data_dir=cfg.data_dir or None, download=cfg.download)
    fit = sdata.load(cfg.dataset, cfg.probe_fit_split, image_size=cfg.image_size or None, **load)
    ev = sdata.load(cfg.dataset, cfg.probe_eval_split, image_size=fit.image_size, **load)
    if not fit.num_classes:
        raise ConfigError(f"the study's probes need labels, and {cfg.dataset} has none")
    fit_xy, ev_xy = _arrays(fit), _arrays(ev)
    if (fit_xy[1] < 0).any() or (ev_xy[1] < 0).any():
        raise ConfigError("the probe splits hold unlabeled images; choose labeled "
                          "--probe_fit_split and --probe_eval_split")
    callback = LayerProbeCallback(
        fit_xy, ev_xy, every=cfg.study_every, epochs=cfg.epochs, output_dir=cfg.output_dir,
        resume=cfg.resume, settings={"probe_fit_split": cfg.probe_fit_split,
                                     "probe_eval_split": cfg.probe_eval_split,
                                     "pretrain_split": cfg.split, "seed": cfg.seed,
                                     "method": cfg.method, "backbone": cfg.backbone,
                                     "hparams": cfg.method_hparams()})
    summary = pretrain(cfg, callbacks=[callback, *callbacks])
    return callback.write(complete=True, pretrain=summary)
