"""Optimizers and the learning-rate schedule: LARS (ours), SGD, AdamW, LAMB; warmup + cosine."""
import keras
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice

OPTIMIZERS = ("lars", "sgd", "adamw", "lamb")
LARS_ETA = 1e-3  # LARS trust coefficient of the ImageNet papers (SimCLR, BYOL)


class LARS(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al. 2017, arXiv 1708.03888), as in SimCLR.

    For a weight w with gradient g, weight decay λ, trust coefficient η and momentum m:

        g' = g + λ·w
        r  = η·‖w‖ / ‖g'‖        (1 when either norm is 0)
        v ← m·v + lr·r·g'
        w ← w − v

    Biases and normalisation parameters (rank ≤ 1) are excluded from both the weight decay
    and the adaptation (r = 1), following SimCLR's ``exclude_from_weight_decay``. η = 1e-3 is
    the ImageNet papers' value; ``clip=True`` uses min(r, 1) (LARC's clipping), so no layer
    steps faster than plain SGD at lr, which makes a large η (e.g. 0.02 for short runs on small
    images) safe.
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, weight_decay=1e-6, eta=LARS_ETA,
                 clip=False, name="lars", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ConfigError("LARS needs momentum >= 0, weight_decay >= 0 and eta > 0 "
                              f"(got {momentum}, {weight_decay}, {eta}; --lars_eta must be > 0)")
        self.momentum = momentum
        self.lars_weight_decay = weight_decay
        self.eta = eta
        self.clip = bool(clip)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.velocities = [self.add_variable_from_reference(v, "velocity") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        v = self.velocities[self._get_variable_index(variable)]
        if len(variable.shape) > 1:
            g = g + self.lars_weight_decay * variable
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(g)))
            ok = ops.logical_and(w_norm > 0, g_norm > 0)
            trust = ops.where(ok, self.eta * w_norm / ops.where(ok, g_norm, 1.0), 1.0)
            if self.clip:
                trust = ops.minimum(trust, 1.0)
            lr = lr * trust
        self.assign(v, self.momentum * v + lr * g)
        self.assign_sub(variable, v)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "weight_decay": self.lars_weight_decay, "eta": self.eta, "clip": self.clip}


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


def make_optimizer(name, learning_rate, weight_decay=0.0, momentum=0.9, lars_eta=LARS_ETA,
                   lars_clip=False):
    """An optimizer by name; ``learning_rate`` may be a float or a schedule. ``lars_*`` are
    LARS's η and trust-ratio clipping (ignored by the others)."""
    if name == "lars":
        return LARS(learning_rate, momentum=momentum, weight_decay=weight_decay, eta=lars_eta,
                    clip=lars_clip)
    if name == "sgd":
        opt = keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=weight_decay)
    elif name == "adamw":
        opt = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    elif name == "lamb":
        opt = keras.optimizers.Lamb(learning_rate, weight_decay=weight_decay)
    else:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    return opt


def peak_learning_rate(learning_rate):
    """The highest rate of a float or of ``warmup_cosine``'s schedule (its warm-up target)."""
    if isinstance(learning_rate, keras.optimizers.schedules.CosineDecay):
        return float(learning_rate.warmup_target or learning_rate.initial_learning_rate)
    if callable(learning_rate):
        raise ConfigError(f"cannot tell the peak of a {type(learning_rate).__name__} "
                          "learning-rate schedule; compile with a float or a CosineDecay "
                          "(sslzoo.optim.warmup_cosine)")
    return float(ops.convert_to_numpy(learning_rate))  # a float, or an optimizer's variable


def clone_optimizer(optimizer, learning_rate):
    """A fresh optimizer like ``optimizer`` (same class and settings, its own state) at
    ``learning_rate``; wrapped in a LossScaleOptimizer when ``optimizer`` is."""
    base = getattr(optimizer, "inner_optimizer", optimizer)
    config = {**base.get_config(), "learning_rate": learning_rate}
    config.pop("name", None)
    clone = base.__class__.from_config(config)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        clone = keras.optimizers.LossScaleOptimizer(clone)
    return clone


def exclude_norms_and_biases(optimizer, variables):
    """Exempt rank ≤ 1 variables (biases, BN) from the decoupled weight decay of SGD/AdamW/LAMB."""
    if not isinstance(optimizer, LARS) and getattr(optimizer, "weight_decay", None):
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in variables if len(v.shape) <= 1])
