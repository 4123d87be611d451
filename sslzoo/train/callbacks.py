"""Training callbacks: NaN guard, atomic checkpoints, metrics.csv and throughput."""
import csv
import io
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from sslzoo.utils.io import write_text


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss; ``tripped`` tells the checkpointer not to
    save the bad weights, so the run directory keeps the last good checkpoint.

    Over Keras's ``TerminateOnNaN``, which only stops: it records the step and the loss, so that
    the checkpointer skips the bad weights and the run's error names where it failed."""

    def __init__(self):
        super().__init__()
        self.tripped = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.tripped is None:
            step = int(self.model.optimizer.iterations.value.numpy())  # also multi-worker
            self.tripped = {"step": step, "loss": float(loss)}
            self.model.stop_training = True


class Checkpointer(keras.callbacks.Callback):
    """A tf.train.Checkpoint of the model, its optimizers and the epoch, saved at epoch ends.

    TensorFlow writes each checkpoint's files before it atomically rewrites the ``checkpoint``
    index, so a run killed mid-save still restores the previous checkpoint. ``restore_dir``
    (default: ``directory``) is where ``restore`` looks: a non-chief worker saves to its own
    scratch directory but resumes from the chief's checkpoints.

    Over Keras's ``BackupAndRestore``: it checkpoints the method's own state too (EMA teachers,
    queues, centres, UMM's and SimSiam's extra optimizers, via ``checkpoint_items``), keeps the
    last ``max_to_keep`` checkpoints after training ends instead of deleting its backup, and
    lets a worker resume from another directory than it saves to.
    """

    def __init__(self, model, directory, nan_guard=None, max_to_keep=2, restore_dir=None):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        items = {"model": model, "optimizer": model.optimizer, "epoch": self.epoch}
        if hasattr(model, "checkpoint_items"):
            items.update(model.checkpoint_items())
        self.checkpoint = tf.train.Checkpoint(**items)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep)
        self.nan_guard = nan_guard
        self.restore_dir = restore_dir or directory

    def restore(self):
        """Restore the latest checkpoint; returns the epoch to continue from (0 if none)."""
        latest = tf.train.latest_checkpoint(self.restore_dir)
        if not latest:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_guard is not None and self.nan_guard.tripped:
            return
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


class MetricsCSV(keras.callbacks.Callback):
    """One row per epoch in ``metrics.csv``, rewritten atomically; resumes drop later rows.

    Over Keras's ``CSVLogger(append=True)``: a killed run never leaves a half-written row, a
    resumed run drops the rows after its checkpoint instead of duplicating them, and a column
    that first appears in a later epoch (a probe, UMM's terms) gets a header."""

    def __init__(self, path, start_epoch=0):
        super().__init__()
        self.path, self.rows = path, []
        if start_epoch and os.path.exists(path):
            with open(path) as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= start_epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, "time": round(time.time(), 3)}
        row.update({k: float(np.asarray(v)) for k, v in (logs or {}).items()})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buf.getvalue())


class Throughput(keras.callbacks.Callback):
    """Images per second over the run, excluding each fit's first (tracing) step."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size, self.steps, self.seconds, self._t = batch_size, 0, 0.0, None
        self._first = True

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._first:
            self._first = False
            return
        self.seconds += time.perf_counter() - self._t
        self.steps += 1

    @property
    def images_per_sec(self):
        return self.steps * self.batch_size / self.seconds if self.seconds else float("nan")



class ConciseProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar showing the losses, the learning rate, the probe and UMM terms, and
    only the ``show_taps``' CRR values (ΔR, held-out ΔR and gap); metrics.csv and TensorBoard
    keep every key."""

    def __init__(self, show_taps=("stage4", "proj")):
        super().__init__()
        self.shown = {f"crr/{t}/{k}" for t in show_taps
                      for k in ("delta_r", "heldout_delta_r", "gap")}

    def _filter(self, logs):
        return {k: v for k, v in (logs or {}).items()
                if not k.startswith("crr/") or k in self.shown}

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, self._filter(logs))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, self._filter(logs))
