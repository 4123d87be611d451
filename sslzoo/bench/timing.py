"""Timing train steps of compiled Keras models, and comparisons that alternate their runs.

``time_steps`` runs ``model.fit`` for ``warmup + steps`` steps on one fixed in-memory batch and
times every step with ``time.perf_counter()`` in ``on_train_batch_begin`` / ``_end``. Keras
turns the step's logs into Python numbers before ``on_train_batch_end``, which waits for the
step's results, so asynchronous devices are timed too. The warmup steps (the first one traces
the step function) are discarded and the median of the rest is returned.

``time_call`` times one call of a function (a ``tf.function``), waiting for its results.

``alternate`` measures several configurations round-robin in one process (A, B, C, A, B, C,
...), so that slow drifts of a shared machine hit all of them alike, and reports medians.
"""
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from sslzoo.errors import ConfigError


class StepTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every train batch, in ``seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds, self._t = [], None

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def fixed_batch(batch_size, image_size, num_classes=10, seed=0, local_crops=0, local_size=0):
    """((view1, view2, *local), labels): two float32 views of ``batch_size`` random images in
    [0, 255], then ``local_crops`` views of ``local_size`` px (a multi-crop method's), and int32
    labels in [0, num_classes)."""
    rng = np.random.default_rng(seed)
    sizes = [image_size] * 2 + [local_size] * local_crops
    views = tuple(rng.uniform(0, 255, (batch_size, s, s, 3)).astype("float32") for s in sizes)
    labels = rng.integers(0, max(num_classes, 1), batch_size).astype("int32")
    return views, labels


def batch_dataset(batch):
    """The batch repeated forever, as fit's input (no pipeline cost in the step time)."""
    return tf.data.Dataset.from_tensors(batch).repeat()


def indexed_dataset(batch, memory_size):
    """``batch_dataset(batch)`` with training-set indices, for a method with a memory bank: step
    s carries the images at positions (s·N + i) mod ``memory_size``, so that consecutive steps
    write different bank rows, as an epoch over ``memory_size`` images does."""
    views, labels = batch
    n = labels.shape[0]
    rows = tf.range(n, dtype="int64")
    return tf.data.Dataset.range(2**62).map(
        lambda s: (views, labels, tf.cast((s * n + rows) % memory_size, "int32")))


def step_times(model, data, steps, warmup=3):
    """Seconds of each of ``steps`` train steps after ``warmup`` discarded ones.

    ``data`` is a batch from ``fixed_batch`` or a dataset from ``batch_dataset``.
    """
    if steps < 1 or warmup < 0:
        raise ConfigError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    ds = data if isinstance(data, tf.data.Dataset) else batch_dataset(data)
    timer = StepTimer()
    model.fit(ds, steps_per_epoch=warmup + steps, epochs=1, verbose=0, shuffle=False,
              callbacks=[timer])
    return timer.seconds[warmup:]


def time_steps(model, data, steps, warmup=3, cycle=1):
    """The median seconds of one train step (see ``step_times``). With ``cycle`` = N > 1 (work
    done every Nth step, such as ``crr_every``), the median is over the mean step time of
    each run of N consecutive steps, so the periodic work counts: each run holds it once."""
    times = step_times(model, data, steps, warmup)
    if cycle > 1:
        times = [sum(times[i:i + cycle]) / cycle for i in range(0, len(times) - cycle + 1, cycle)]
    return statistics.median(times)


def time_call(fn, *args):
    """Wall-clock seconds of one call ``fn(*args)``, including the wait for its results (they
    are copied to NumPy, which waits for an asynchronous device)."""
    t = time.perf_counter()
    tf.nest.map_structure(np.asarray, fn(*args))
    return time.perf_counter() - t


def alternate(measures, repeats=3):
    """Run every measurement ``repeats`` times, round-robin, and take medians.

    ``measures`` maps a name to a zero-argument callable that returns one measurement (e.g. a
    run's median step time). The calls go A, B, C, A, B, C, ... Returns
    ``{"median": {name: median of its runs}, "runs": {name: [values]}, "order": [names]}``.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if not measures:
        raise ConfigError("nothing to measure")
    runs = {name: [] for name in measures}
    order = []
    for _ in range(repeats):
        for name, measure in measures.items():
            order.append(name)
            runs[name].append(float(measure()))
    return {"median": {n: statistics.median(v) for n, v in runs.items()}, "runs": runs,
            "order": order}
