"""``LayerProbeCallback``: the study's per-layer linear probes every few epochs, beside ΔR."""
import os

import keras
import numpy as np
from absl import logging

from sslzoo.eval.study_plots import plot_study
from sslzoo.eval.study_stats import SIGNALS, number, summarize
from sslzoo.losses.common import pooled_f32
from sslzoo.probes import linear_probe
from sslzoo.utils.io import read_json, write_json


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
            self.probe_layers(epoch, logs)

    def on_train_end(self, logs=None):
        # A run stopped early (CRR early stop, NaN) still gets its last epoch measured.
        if self._last and not any(r["epoch"] == self._last[0] + 1 for r in self.records):
            self.probe_layers(*self._last)

    def probe_layers(self, epoch, logs=None):
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
