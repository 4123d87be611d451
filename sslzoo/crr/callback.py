"""``CRRCallback``: per-epoch ΔR of every tap on fixed reference sets, and the early warning.

It orchestrates: the measuring is ``crr.reference``, the detector ``crr.warning``, the kept
weights ``crr.snapshots`` and the files ``crr.report``.

Once per epoch it measures each tap's ΔR (pair partition, L2-normalised features) on a fixed
held-out set and a fixed set of pretraining images, both with views drawn once at the start
of training (seeded by ``seed``, so a resumed run measures the same views). It adds ``crr/<tap>/heldout_delta_r``, ``crr/<tap>/train_delta_r`` and
``crr/<tap>/gap`` to the epoch logs (list it before CSV, TensorBoard, ModelCheckpoint or
EarlyStopping so they can use them), runs the label-free detector of ``sslzoo.crr.warning``
(its ``signals``, from epoch ``ignore_before`` on; pretraining passes its rule's),
and after every epoch rewrites ``crr_report.json`` (atomically, so a killed run leaves the curves
up to its last finished epoch; non-finite ΔR is written as null) and, every ``plot_every``
epochs, at the warning and at the end of training, ``crr.png``. With ``early_stop`` it stops at the
warning and restores the best-by-CRR weights (kept in memory for the last patience + 2
epochs and the held-out peak).

With ``quality`` (the default) it also logs the label-free scores of ``sslzoo.quality`` on the
held-out set, under ``rankme/<tap>`` and ``lidar/<tap>`` (monitors like the ``crr/`` keys):
RankMe of the held-out images' first-view features, and LiDAR of ``lidar_views`` views each
of its first ``lidar_images`` images (the two ΔR views and ``lidar_views`` − 2 more, drawn
once like them). Both use the pooled features unnormalised, as their papers do.
"""
import math

import keras
from absl import logging

from sslzoo.crr import reference
from sslzoo.crr.report import json_history, write_plot, write_report
from sslzoo.crr.snapshots import WeightSnapshots
from sslzoo.crr.warning import SIGNALS, detect, gaps
from sslzoo.data.augment import TwoViews
from sslzoo.errors import ConfigError
from sslzoo.utils.seeds import seed_for


_MEANING = {  # what each signal says, and no more
    "memorisation_gap": "Its late layers separate the pretraining images more than held-out "
                        "ones while the early layers do not: they are memorising the "
                        "pretraining set.",
    "heldout_drop": "Its late layers lose held-out structure while the early layers keep it, a "
                    "sign of memorisation but not proof (the pretraining images' ΔR may fall "
                    "with it); check the memorisation gap in the CRR report and a validation "
                    "probe.",
}


class CRRCallback(keras.callbacks.Callback):
    def __init__(self, heldout_images, train_images, output_dir=None, watch=None, early=None,
                 patience=5, drop_tol=0.02, gap_threshold=0.05, early_stop=False, eps=0.5,
                 batch_size=256, plot_every=10, ignore_before=0, seed=0, quality=True,
                 lidar_images=32, lidar_views=8, signals=SIGNALS):
        super().__init__()
        if quality and (int(lidar_views) < 2 or int(lidar_images) < 2):
            raise ConfigError(f"LiDAR needs at least 2 images and 2 views of each, got "
                              f"lidar_images={lidar_images}, lidar_views={lidar_views}")
        self.quality = bool(quality)
        self.lidar_images, self.lidar_views = int(lidar_images), int(lidar_views)
        self.images = {"heldout": heldout_images, "train": train_images}
        self.output_dir, self.watch, self.early = output_dir, watch, early
        self.patience, self.drop_tol, self.gap_threshold = patience, drop_tol, gap_threshold
        self.early_stop, self.eps, self.batch_size = early_stop, eps, batch_size
        self.plot_every = max(1, int(plot_every))
        self.ignore_before = max(0, int(ignore_before))
        self.signals = tuple(signals)
        self.seed = int(seed)
        self.history, self.warning, self.restored = {}, None, False
        self.saved_history = None  # curves of the epochs before a resume
        self.saved_warning = None  # and the warning, if it fired in them
        self._snapshots = WeightSnapshots(patience)

    def on_train_begin(self, logs=None):
        m = self.model.ssl_model  # the method, also under UMM
        taps = list(m.taps)
        if not taps:
            raise ConfigError("CRRCallback needs a model with CRR taps: build it with "
                              "crr_every > 0")
        backbone_taps = [t for t in taps if t != "proj"]
        self.watch = self.watch or ("stage4" if "stage4" in taps else (backbone_taps or taps)[-1])
        if self.early is None:
            before = backbone_taps[:backbone_taps.index(self.watch)] if (
                self.watch in backbone_taps) else backbone_taps
            self.early = before[: max(1, len(before) // 2)] if before else []
        views = TwoViews(m.recipe, m.image_size)
        self._views = {k: views(v, seed=seed_for(self.seed, "crr_reference", i))
                       for i, (k, v) in enumerate(self.images.items())}
        self._lidar_views = []
        if self.quality:
            first = self.images["heldout"][:self.lidar_images]
            for i in range(math.ceil((self.lidar_views - 2) / 2)):
                self._lidar_views.extend(views(first, seed=seed_for(self.seed, "lidar_views", i)))
            self._lidar_views = self._lidar_views[:self.lidar_views - 2]
        self._features = reference.features_fn(self.model, taps)
        curves = ("heldout", "train", *(("rankme", "lidar") if self.quality else ()))
        self.history = {t: {c: [] for c in curves} for t in taps}
        self.warning = self.saved_warning
        for tap, h in (self.saved_history or {}).items():
            if tap in self.history:  # a report without some curves leaves them empty
                self.history[tap].update({k: list(v) for k, v in h.items()
                                          if k in self.history[tap]})

    def reference_delta_r(self, v1, v2):
        """{tap: ΔR} of the model's tapped features for fixed views v1, v2."""
        z = reference.tap_features(self._features, [v1, v2], 2 * self.batch_size)
        return {t: reference.delta_r(t, *z[t], eps=self.eps) for t in self.history}

    def measure(self, split):
        """{tap: {curve: value}} on one reference split: its ΔR, and on the held-out split
        with ``quality`` also RankMe and LiDAR (one pass over the views for all three)."""
        taps = list(self.history)
        if not (self.quality and split == "heldout"):
            return {t: {split: v} for t, v in self.reference_delta_r(*self._views[split]).items()}
        pair = reference.tap_features(self._features, list(self._views[split]),
                                      2 * self.batch_size)
        extra = reference.tap_features(self._features, self._lidar_views,
                                       2 * self.batch_size) if self._lidar_views else {}
        return {t: {split: reference.delta_r(t, *pair[t], eps=self.eps),
                    **reference.quality_scores(t, [*pair[t], *extra.get(t, [])])}
                for t in taps}

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        for split in self._views:
            for tap, values in self.measure(split).items():
                for name, value in values.items():
                    curve = self.history[tap][name]
                    curve.extend([math.nan] * (epoch - len(curve)))  # resumed without a report
                    curve.append(value)
        for tap, h in self.history.items():
            for curve in h.values():  # a curve not measured this epoch gets NaN
                curve.extend([math.nan] * (epoch + 1 - len(curve)))
            logs[f"crr/{tap}/heldout_delta_r"] = h["heldout"][-1]
            logs[f"crr/{tap}/train_delta_r"] = h["train"][-1]
            logs[f"crr/{tap}/gap"] = gaps(h)[-1]
            if self.quality:
                logs[f"rankme/{tap}"], logs[f"lidar/{tap}"] = h["rankme"][-1], h["lidar"][-1]
        if self.early_stop:
            self._snapshots.keep(epoch, self.model.get_weights(),
                                 self.history[self.watch]["heldout"])
        if self.warning is None:
            found = detect(self.history, self.watch, self.early, self.patience, self.drop_tol,
                           self.gap_threshold, self.ignore_before, self.signals)
            if found:
                self._warn(found, epoch)
                return
        self.write_report(plot=(epoch + 1) % self.plot_every == 0)

    def on_train_end(self, logs=None):
        if self.output_dir and self.history:
            self.write_plot()

    def _warn(self, found, epoch):
        self.warning = {**found, "detected_at_epoch": epoch + 1, "watch": self.watch,
                        "early": list(self.early)}
        # Report epochs 1-based, like Keras's progress bar.
        self.warning["turning_epoch"] += 1
        self.warning["best_epoch"] += 1
        logging.warning(
            "CRR early warning at epoch %d: %s of layer %s (turning point: epoch %d, best-by-CRR "
            "epoch %d). %s", epoch + 1, found["signal"].replace("_", " "), self.watch,
            self.warning["turning_epoch"], self.warning["best_epoch"], _MEANING[found["signal"]])
        if self.early_stop:
            best = found["best_epoch"]
            weights = self._snapshots.get(best)
            if weights is not None:
                self.model.set_weights(weights)
                self.restored = True
                logging.warning("CRR early stop: restored the weights of epoch %d", best + 1)
            else:
                logging.warning("CRR early stop: the weights of epoch %d are no longer held "
                                "(before a resume); keeping the current ones", best + 1)
            self.model.stop_training = True
        self.write_report()

    def report(self):
        return {"warning": self.warning, "restored_best_weights": self.restored,
                "settings": {"watch": self.watch, "early": list(self.early),
                             "patience": self.patience, "drop_tol": self.drop_tol,
                             "gap_threshold": self.gap_threshold, "eps": self.eps,
                             "ignore_before": self.ignore_before, "signals": list(self.signals),
                             "quality": self.quality,
                             "lidar_images": min(self.lidar_images,
                                                 int(self.images["heldout"].shape[0])),
                             "lidar_views": self.lidar_views,
                             "heldout_images": int(self.images["heldout"].shape[0]),
                             "train_images": int(self.images["train"].shape[0])},
                "history": json_history(self.history)}

    def write_report(self, plot=True):
        if self.output_dir:
            write_report(self.output_dir, self.report(), self.history, self.warning, plot)

    def write_plot(self):
        write_plot(self.output_dir, self.history, self.warning)
