"""Learning-rate schedules: linear warmup + cosine (or constant), batch scaling, the peak; a
cosine between two values (EMA momentum, DINO's weight decay)."""
import math

import keras
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice

SCHEDULES = ("cosine", "constant")


def warmup_cosine(peak_lr, total_steps, warmup_steps, schedule="cosine"):
    """Linear warmup from 0 to ``peak_lr`` over ``warmup_steps``, then cosine decay to 0, or
    with ``schedule="constant"`` ``peak_lr`` to the end (a CosineDecay with alpha = 1)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"--schedule must be one of {SCHEDULES}, got {schedule!r}")
    warmup_steps = int(min(max(warmup_steps, 0), max(total_steps - 1, 0)))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else peak_lr,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=1.0 if schedule == "constant" else 0.0,
        warmup_target=peak_lr if warmup_steps else None, warmup_steps=warmup_steps)


def scaled_lr(base_lr, batch_size, rule="linear"):
    """The learning rate for a global batch: linear (base·B/256), sqrt (base·√(B/256)) or none."""
    if rule == "linear":
        return base_lr * batch_size / 256
    if rule == "sqrt":
        return base_lr * (batch_size / 256) ** 0.5
    if rule == "none":
        return base_lr
    raise unknown_choice("learning-rate scaling rule", rule, ("linear", "sqrt", "none"))


def peak_learning_rate(learning_rate):
    """The highest rate of a float or of ``warmup_cosine``'s schedule (its warm-up target)."""
    if isinstance(learning_rate, keras.optimizers.schedules.CosineDecay):
        return float(learning_rate.warmup_target or learning_rate.initial_learning_rate)
    if callable(learning_rate):
        raise ConfigError(f"cannot tell the peak of a {type(learning_rate).__name__} "
                          "learning-rate schedule; compile with a float or a CosineDecay "
                          "(sslzoo.optim.warmup_cosine)")
    return float(ops.convert_to_numpy(learning_rate))  # a float, or an optimizer's variable


def cosine_between(start, end, step, total):
    """v_k = end + (start − end)·(cos(π·k/K) + 1)/2 for step k clipped to [0, K] (float32):
    ``start`` at step 0, ``end`` from step K on; ``start`` when K = 0. BYOL's EMA momentum
    (start τ_base, end 1) and DINO's weight decay (0.04 → 0.4) follow it."""
    if not total:
        return ops.convert_to_tensor(start, "float32")
    k = ops.clip(ops.cast(step, "float32"), 0.0, float(total))
    return end + (start - end) * (ops.cos(math.pi * k / float(total)) + 1.0) / 2.0
