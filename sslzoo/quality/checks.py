"""Argument checks shared by the scores: hyperparameters, and z's rank, sizes and values."""
import numbers

import numpy as np
from keras import ops

from sslzoo.errors import ConfigError


def check_nonnegative(name, value, default):
    """Reject a hyperparameter that is not a real number >= 0 (bools and NaN included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}; the default is {default}")


def prepare(z, fn, layout, sizes):
    """(z as a float32 tensor of the rank of ``layout``, e.g. "(n, d)", checked for ``fn``;
    a boolean scalar tensor: whether all of z is finite).

    ``sizes`` maps an axis to (name, minimum, what, fix) for its static size, e.g.
    {0: ("n", 2, "embeddings", "score a batch")}; unknown (traced) sizes are not checked.
    Non-finite values raise when z is concrete. When it is traced (tf.function, jax.jit) its
    values are not known yet: z is then zeroed unless it is all finite (a decomposition of NaNs
    may fail at run time) and the caller passes the flag to ``nan_unless``.
    """
    z = ops.cast(ops.convert_to_tensor(z), "float32")
    shape = tuple(z.shape)
    rank = layout.count(",") + 1
    if len(shape) != rank:
        raise ConfigError(f"{fn} needs z as an {layout} array, got shape {shape}; "
                          + ("flatten or pool the other axes first" if rank == 2 else
                             "stack the q views of each image on axis 1"))
    for axis, (name, low, what, fix) in sizes.items():
        if shape[axis] is not None and shape[axis] < low:
            raise ConfigError(f"{fn} needs at least {low} {what} ({name} >= {low}), "
                              f"got {name}={shape[axis]}; {fix}")
    finite = ops.all(ops.isfinite(z))
    try:
        concrete = bool(ops.convert_to_numpy(finite))
    except Exception:  # a symbolic tensor or tracer has no value to convert yet
        concrete = None
    if concrete is False:
        values = ops.convert_to_numpy(z)
        bad = int(values.size - np.isfinite(values).sum())
        raise ConfigError(f"{fn}: z has {bad} NaN or inf entries (in float32); the embeddings "
                          "diverged or overflowed: fix or drop those rows before scoring")
    return ops.where(finite, z, 0.0), finite


def nan_unless(finite, score):
    """The score, or NaN where z was not finite (traced input): the zeroed z would otherwise
    score as fully collapsed, ≈ 1."""
    return ops.where(finite, score, float("nan"))


def count(z, axis):
    """Static size of an axis as a Python float, else a float32 tensor."""
    n = z.shape[axis]
    return float(n) if n is not None else ops.cast(ops.shape(z)[axis], "float32")
