"""Optimizers by name: LARS (ours), SGD, Adam, AdamW, LAMB; cloning; weight-decay exemptions."""
import keras
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.optim.schedules import cosine_between, scaled_lr, warmup_cosine

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
                   lars_eta=LARS_ETA, lars_clip=False, beta_2=None, clipnorm=None):
    """An optimizer by name; ``learning_rate`` may be a float or a schedule. ``lars_*`` are
    LARS's η and trust-ratio clipping, ``momentum`` and ``nesterov`` SGD's (and LARS's
    momentum), ``beta_2`` Adam's, AdamW's and LAMB's second-moment decay (None: Keras's 0.999);
    the others ignore them. ``clipnorm`` clips each variable's gradient to that L2 norm
    (Keras's own clipping; DINO's ``clip_grad``). Weight decay is decoupled (LARS: added to the
    gradient)."""
    adam = {} if beta_2 is None else {"beta_2": float(beta_2)}
    clip = {} if clipnorm is None else {"clipnorm": float(clipnorm)}
    if name == "lars":
        return LARS(learning_rate, momentum=momentum, weight_decay=weight_decay, eta=lars_eta,
                    clip=lars_clip, **clip)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                    weight_decay=weight_decay, **clip)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay, **adam, **clip)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, **adam, **clip)
    if name == "lamb":
        return keras.optimizers.Lamb(learning_rate, weight_decay=weight_decay, **adam, **clip)
    raise unknown_choice("optimizer", name, OPTIMIZERS)


def schedule_weight_decay(optimizer, end, total_steps):
    """Make ``optimizer``'s decoupled weight decay follow a cosine from its value to ``end``
    over ``total_steps`` (``cosine_between``; DINO's 0.04 → 0.4). It becomes a float32
    variable, which ``update_weight_decay`` sets from the optimizer's step before each update;
    LARS, whose decay is part of its gradient, is refused."""
    if isinstance(optimizer, LARS) or not getattr(optimizer, "weight_decay", None):
        raise ConfigError(f"a weight-decay schedule needs an optimizer with decoupled weight "
                          f"decay > 0 (sgd, adam, adamw, lamb), got {type(optimizer).__name__} "
                          f"with weight decay {getattr(optimizer, 'weight_decay', None)}")
    start = float(optimizer.weight_decay)
    optimizer.weight_decay = keras.Variable(start, dtype="float32", trainable=False,
                                            name="weight_decay",
                                            aggregation="only_first_replica")
    optimizer.weight_decay_schedule = (start, float(end), int(total_steps))


def update_weight_decay(optimizer):
    """Set a scheduled weight decay (``schedule_weight_decay``) for the optimizer's next step;
    nothing for any other optimizer."""
    base = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = getattr(base, "weight_decay_schedule", None)
    if schedule is not None:
        start, end, total = schedule
        base.weight_decay.assign(cosine_between(start, end, base.iterations, total))


def paper_optimizer(optim_defaults, batch_size, total_steps, warmup_steps, schedule="cosine",
                    name=None, learning_rate=None, weight_decay=None, lars_eta=LARS_ETA,
                    lars_clip=False):
    """(optimizer, settings) of a method's ``optim_defaults`` (its paper's optimizer, base rate,
    weight decay and batch-scaling rule), each overridable: the peak rate is the base rate
    scaled to ``batch_size``, reached by linear warmup, then ``schedule``. A ``beta_2`` in
    ``optim_defaults`` (MAE's 0.95) goes to an Adam-type optimizer."""
    d = optim_defaults
    name = name or d["optimizer"]
    base_lr = learning_rate or d["learning_rate"]
    wd = d["weight_decay"] if weight_decay is None else weight_decay
    peak = scaled_lr(base_lr, batch_size, d.get("scale", "linear"))
    rate = warmup_cosine(peak, total_steps, warmup_steps, schedule)
    info = {"optimizer": name, "base_learning_rate": base_lr, "peak_learning_rate": peak,
            "weight_decay": wd, "total_steps": total_steps, "schedule": schedule}
    beta_2 = d.get("beta_2") if name in ("adam", "adamw", "lamb") else None
    if beta_2 is not None:
        info["beta_2"] = beta_2
    if d.get("clipnorm") is not None:
        info["clipnorm"] = d["clipnorm"]
    optimizer = make_optimizer(name, rate, weight_decay=wd, lars_eta=lars_eta,
                               lars_clip=lars_clip, beta_2=beta_2, clipnorm=d.get("clipnorm"))
    if d.get("weight_decay_end") is not None and wd:
        schedule_weight_decay(optimizer, d["weight_decay_end"], total_steps)
        info["weight_decay_end"] = d["weight_decay_end"]
    return optimizer, info


def clone_optimizer(optimizer, learning_rate):
    """A fresh optimizer like ``optimizer`` (same class and settings, its own state) at
    ``learning_rate``; wrapped in a LossScaleOptimizer when ``optimizer`` is."""
    base = getattr(optimizer, "inner_optimizer", optimizer)
    config = {**base.get_config(), "learning_rate": learning_rate}
    config.pop("name", None)
    schedule = getattr(base, "weight_decay_schedule", None)
    if schedule is not None:
        config["weight_decay"] = schedule[0]
    clone = base.__class__.from_config(config)
    if schedule is not None:
        schedule_weight_decay(clone, schedule[1], schedule[2])
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        clone = keras.optimizers.LossScaleOptimizer(clone)
    return clone


def exclude_norms_and_biases(optimizer, variables):
    """Exempt rank ≤ 1 variables (biases, BN) from the decoupled weight decay of SGD/AdamW/LAMB."""
    decays = (hasattr(optimizer, "weight_decay_schedule")  # a variable: never 0 as a flag
              or getattr(optimizer, "weight_decay", None))
    if not isinstance(optimizer, LARS) and decays:
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in variables if len(v.shape) <= 1])
