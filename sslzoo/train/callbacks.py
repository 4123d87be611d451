"""Training callbacks: NaN guard, atomic checkpoints, metrics.csv and throughput."""
import csv
import io
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from sslzoo.errors import TrainingError
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
    """A tf.train.Checkpoint of the model (its metric accumulators included), its optimizers and
    the epoch, saved at every epoch end and, with ``every_steps``, every that many steps within
    an epoch; ``ckpt-<step>`` names each by its global step.

    TensorFlow writes each checkpoint's files before it atomically rewrites the ``checkpoint``
    index, so a run killed mid-save still restores the previous checkpoint, and a failed write
    (a full disk) raises a TrainingError with the previous checkpoint untouched. ``restore``
    moves an unreadable checkpoint aside to ``corrupt/`` and falls back to the one before.
    ``restore_dir`` (default: ``directory``) is where ``restore`` looks: a non-chief worker
    saves to its own scratch directory but resumes from the chief's checkpoints.

    Over Keras's ``BackupAndRestore``: it checkpoints the method's own state too (EMA teachers,
    queues, centres, UMM's and SimSiam's extra optimizers, via ``checkpoint_items``; every model
    variable that the object graph misses, via ``untracked_variables``) and the
    epoch's metric accumulators (so a run resumed mid-epoch logs the same epoch means), keeps
    the last ``max_to_keep`` checkpoints after training ends instead of deleting its backup,
    falls back past a corrupt checkpoint, and lets a worker resume from another directory
    than it saves to.
    """

    def __init__(self, model, directory, nan_guard=None, max_to_keep=2, restore_dir=None,
                 every_steps=0, steps_per_epoch=0):
        super().__init__()
        self.set_model(model)  # restore() runs before fit does this
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # The epoch's metric accumulators, listed once: Keras may add metrics when fit starts.
        self.metric_variables = [v for m in model.metrics for v in m.variables]
        items = {"model": model, "optimizer": model.optimizer, "epoch": self.epoch,
                 "metrics": self.metric_variables}
        if hasattr(model, "checkpoint_items"):
            items.update(model.checkpoint_items())
        graph = tf.train.Checkpoint(**items)
        untracked = untracked_variables(graph, model)
        # A checkpoint written before ``untracked`` existed restores through the graph without it.
        self.checkpoint_before_untracked = graph if untracked else None
        if untracked:
            items["untracked"] = untracked
        self.checkpoint = tf.train.Checkpoint(**items)
        self.directory = directory
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep)
        self.nan_guard = nan_guard
        self.restore_dir = restore_dir or directory
        self.every_steps, self.steps_per_epoch = int(every_steps), int(steps_per_epoch)
        self._metric_state = None  # the restored epoch accumulators, until the epoch begins

    def restore(self):
        """Restore the newest readable checkpoint; returns the global step to continue from
        (0 if there is none)."""
        state = tf.train.get_checkpoint_state(self.restore_dir)
        if state is None:
            return 0
        paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        for path in reversed(paths):
            try:
                self.checkpoint_for(path).restore(path).assert_existing_objects_matched()
            except Exception as err:  # a damaged file raises OpError, IndexError, ValueError...
                aside = quarantine(path)
                logging.warning("checkpoint %s cannot be read (%s); moved it to %s and trying "
                                "the one before", path, str(err).splitlines()[0], aside)
                continue
            step = int(self.model.optimizer.iterations.value.numpy())
            if self.steps_per_epoch and step % self.steps_per_epoch:  # mid-epoch
                self._metric_state = [v.numpy() for v in self.metric_variables]
            return step
        raise TrainingError(f"no readable checkpoint is left in {self.restore_dir} (unreadable "
                            "ones were moved to its corrupt/ folder); start a new run without "
                            "--resume, or in another --output_dir")

    def checkpoint_for(self, path):
        """The checkpoint object that reads ``path``: ``self.checkpoint``, or for a checkpoint
        an older sslzoo wrote without the untracked variables, the graph without them (they
        keep their initial values, so the CRR monitors restart their count, with a warning)."""
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
        if self.checkpoint_before_untracked is None or "untracked" in saved:
            return self.checkpoint
        logging.warning("checkpoint %s holds no CRR monitor state (an older sslzoo wrote it): "
                        "training resumes exactly, but the monitors restart their count, so "
                        "the crr/* logs of this run differ from an uninterrupted one's", path)
        return self.checkpoint_before_untracked

    def on_epoch_begin(self, epoch, logs=None):
        # Keras resets the metrics as an epoch begins: a run resumed mid-epoch puts back the
        # accumulators of the batches it already trained on.
        if self._metric_state is not None:
            for v, value in zip(self.metric_variables, self._metric_state):
                v.assign(value)
            self._metric_state = None

    def on_train_batch_end(self, batch, logs=None):
        if not self.every_steps or (self.nan_guard is not None and self.nan_guard.tripped):
            return
        step = int(self.model.optimizer.iterations.value.numpy())
        if step % self.every_steps == 0 and not (
                self.steps_per_epoch and step % self.steps_per_epoch == 0):
            self.save(step)

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_guard is not None and self.nan_guard.tripped:
            return
        self.epoch.assign(epoch + 1)
        self.save(int(self.model.optimizer.iterations.value.numpy()))

    def save(self, step):
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as err:
            raise TrainingError(
                f"could not write the checkpoint of step {step} to {self.directory}: "
                f"{str(err).splitlines()[0]}. The previous checkpoint is untouched; free disk "
                "space and rerun with --resume.") from err


def untracked_variables(checkpoint, model):
    """The variables of ``model`` that ``checkpoint`` (a tf.train.Checkpoint) does not reach:
    TensorFlow's object graph does not follow layers that Keras tracks in a dict attribute (the
    CRR monitors with their call counters), so they are checkpointed by position."""
    reached = {id(obj) for obj in tf.train.TrackableView(checkpoint).descendants()}
    return [v for v in model.variables if id(v) not in reached]


def quarantine(path):
    """Move a checkpoint's files (``path``.index, .data-*) to ``corrupt/`` beside them; returns
    that folder."""
    folder = os.path.join(os.path.dirname(path), "corrupt")
    os.makedirs(folder, exist_ok=True)
    for f in tf.io.gfile.glob(path + ".*"):
        os.replace(f, os.path.join(folder, os.path.basename(f)))
    return folder


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


def rewrite_tensorboard(tb_dir, rows):
    """Rewrite ``tb_dir/train`` from the kept ``metrics.csv`` rows (as Keras's TensorBoard
    names them: ``epoch_<key>`` at step epoch − 1). A resumed run calls it before training on,
    so TensorBoard never shows an epoch twice or misses one."""
    train = os.path.join(tb_dir, "train")
    if tf.io.gfile.exists(train):
        tf.io.gfile.rmtree(train)
    writer = tf.summary.create_file_writer(train)
    with writer.as_default():
        for row in rows:
            for key, value in row.items():
                if key not in ("epoch", "time") and value not in ("", None):
                    tf.summary.scalar(f"epoch_{key}", float(value), step=int(row["epoch"]) - 1)
    writer.close()


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
    only the ``show_taps``' CRR values (ΔR, held-out ΔR, gap, RankMe and LiDAR); metrics.csv
    and TensorBoard keep every key."""

    PER_TAP = ("crr/", "rankme/", "lidar/")

    def __init__(self, show_taps=("stage4", "proj")):
        super().__init__()
        self.shown = {f"crr/{t}/{k}" for t in show_taps
                      for k in ("delta_r", "heldout_delta_r", "gap")}
        self.shown |= {f"{s}{t}" for s in ("rankme/", "lidar/") for t in show_taps}

    def _filter(self, logs):
        return {k: v for k, v in (logs or {}).items()
                if not k.startswith(self.PER_TAP) or k in self.shown}

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, self._filter(logs))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, self._filter(logs))
