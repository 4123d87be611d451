"""``EMAMethod``: the base of methods with a momentum (EMA) teacher (MoCo v2/v3, BYOL, DINO).

The teacher ξ is a copy of the backbone and of the heads named in ``teacher_heads``, made at
build time with the student's weights. Its variables are not trainable (not in
``ssl_trainable_variables``, no gradient: its outputs are stop-gradient). After every optimizer
step, ``after_update`` moves it toward the student θ:

    ξ ← τ_k ξ + (1 − τ_k) θ,   τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2      (BYOL, cosine)

with k the step just taken (0, 1, …; ``optimizer.iterations`` − 1, so a restored run continues
the schedule) and K = ``total_steps`` (``set_training_length``; hparam ``momentum_schedule``
"constant", or K = 0, keeps τ = τ_base). Only trainable weights are averaged; the teacher's BN
runs on batch statistics (training mode), as in the papers, and keeps its own moving averages.
"""
import keras
from absl import logging
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.methods.base import SSLMethod
from sslzoo.methods.heads import clone_head
from sslzoo.optim.schedules import cosine_between

SCHEDULES = ("cosine", "constant")


def cosine_momentum(base, step, total):
    """τ_k = 1 − (1 − base)·(cos(π·k/K) + 1)/2, k clipped to [0, K]; ``base`` when K = 0."""
    return cosine_between(base, 1.0, step, total)


def _renamed(layer):
    return layer.__class__.from_config({**layer.get_config(), "name": f"teacher_{layer.name}"})


class EMAMethod(SSLMethod):
    """Subclasses build their student heads, then call ``build_teacher()`` in ``build_heads``;
    their ``defaults`` hold ``momentum`` (τ_base) and ``momentum_schedule``."""

    teacher_heads = ("projector",)

    def build_teacher(self):
        h = self.hparams
        if h["momentum_schedule"] not in SCHEDULES:
            raise ConfigError(f"momentum_schedule must be one of {SCHEDULES}, "
                              f"got {h['momentum_schedule']!r}")
        if not 0.0 <= h["momentum"] <= 1.0:
            raise ConfigError(f"momentum must be in [0, 1], got {h['momentum']}")
        self.teacher_backbone = keras.models.clone_model(self.backbone, clone_function=_renamed)
        for name in self.teacher_heads:
            setattr(self, f"teacher_{name}", clone_head(getattr(self, name), f"teacher_{name}"))
        for t, s in self.teacher_pairs(trainable_only=False):
            t.assign(s)
            t.trainable = False

    def teacher_pairs(self, trainable_only=True):
        """(teacher, student) variable pairs; by default those the EMA averages."""
        modules = [("backbone", self.backbone)] + [(n, getattr(self, n))
                                                   for n in self.teacher_heads]
        for name, student in modules:
            teacher = getattr(self, f"teacher_{name}")
            if len(teacher.weights) != len(student.weights):
                raise RuntimeError(f"teacher_{name} does not mirror {name}")
            for t, s in zip(teacher.weights, student.weights):
                if not trainable_only or s.trainable:
                    yield t, s

    def teacher_forward(self, images):
        """Teacher outputs of ``images`` (override to add heads, e.g. DINO's prototypes)."""
        return self.teacher_projector(self.teacher_backbone(images, training=True),
                                      training=True)

    def teacher(self, images, cache=None):
        """Stop-gradient ``teacher_forward(images)``, memoised in the step's ``cache`` (a
        ``Forward``'s): reused when UMM calls ``ssl_loss`` again on the same ``images`` within
        a step (the teacher only changes in ``after_update``)."""
        cached = (cache or {}).get("teacher")
        if cached is not None and cached[0] is images:
            return cached[1]
        out = ops.stop_gradient(ops.cast(self.teacher_forward(images), "float32"))
        if cache is not None:
            cache["teacher"] = (images, out)
        return out

    def momentum(self, step):
        """τ at 0-based step ``step``."""
        h = self.hparams
        if h["momentum_schedule"] == "constant":
            return ops.convert_to_tensor(h["momentum"], "float32")
        if not self.total_steps:
            logging.log_first_n(logging.WARNING, "%s: total_steps is not set (call "
                                "set_training_length before fit): the EMA momentum stays at "
                                "its base value %g", 1, self.method, h["momentum"])
        return cosine_momentum(h["momentum"], step, self.total_steps)

    def after_update(self, out):
        tau = self.momentum(self.step() - 1.0)
        for t, s in self.teacher_pairs():
            t.assign(tau * t.value + (1.0 - tau) * s.value)
