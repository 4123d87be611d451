"""Optimizers by name: LARS (ours), SGD, Adam, AdamW, LAMB; cloning; weight-decay exemptions."""
import keras
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.optim.schedules import scaled_lr, warmup_cosine

OPTIMIZERS = ("lars", "sgd", "adam", "adamw", "lamb")
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


def make_optimizer(name, learning_rate, weight_decay=0.0, momentum=0.9, nesterov=False,
                   lars_eta=LARS_ETA, lars_clip=False):
    """An optimizer by name; ``learning_rate`` may be a float or a schedule. ``lars_*`` are
    LARS's η and trust-ratio clipping, ``momentum`` and ``nesterov`` SGD's (and LARS's
    momentum); the others ignore them. Weight decay is decoupled (LARS: added to the gradient)."""
    if name == "lars":
        return LARS(learning_rate, momentum=momentum, weight_decay=weight_decay, eta=lars_eta,
                    clip=lars_clip)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                    weight_decay=weight_decay)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    if name == "lamb":
        return keras.optimizers.Lamb(learning_rate, weight_decay=weight_decay)
    raise unknown_choice("optimizer", name, OPTIMIZERS)


def paper_optimizer(optim_defaults, batch_size, total_steps, warmup_steps, schedule="cosine",
                    name=None, learning_rate=None, weight_decay=None, lars_eta=LARS_ETA,
                    lars_clip=False):
    """(optimizer, settings) of a method's ``optim_defaults`` (its paper's optimizer, base rate,
    weight decay and batch-scaling rule), each overridable: the peak rate is the base rate
    scaled to ``batch_size``, reached by linear warmup, then ``schedule``."""
    d = optim_defaults
    name = name or d["optimizer"]
    base_lr = learning_rate or d["learning_rate"]
    wd = d["weight_decay"] if weight_decay is None else weight_decay
    peak = scaled_lr(base_lr, batch_size, d.get("scale", "linear"))
    rate = warmup_cosine(peak, total_steps, warmup_steps, schedule)
    info = {"optimizer": name, "base_learning_rate": base_lr, "peak_learning_rate": peak,
            "weight_decay": wd, "total_steps": total_steps, "schedule": schedule}
    return make_optimizer(name, rate, weight_decay=wd, lars_eta=lars_eta,
                          lars_clip=lars_clip), info


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
