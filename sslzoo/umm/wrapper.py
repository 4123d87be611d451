"""``UMM``: the Undoing Memorization Mechanism (Qiang et al., arXiv 2410.00772) for any method.

The backbone is split at a block output into an early part f_e and a late part f_el; g are the
method's heads (projector, predictor). With the method's loss L_SSL, the pair-partition
coding-rate reduction ΔR (``sslzoo.crr.pair_delta_r``) and an alignment A between early and
last-layer features (``sslzoo.umm.align``), UMM solves the bi-level problem

    min_{θ_el, g}  L_SSL(θ*) − γ·ΔR(g(f_el(f_e(x))); pairs)                      (outer)
    s.t.  θ* ∈ argmin_{θ_el, g}  L_SSL(θ) + β·A(f_e(x), f_el(f_e(x)))            (inner)

by alternating first-order steps on every batch:

1. inner: ``inner_steps`` steps of ``inner_optimizer`` on L_SSL + β·A over θ_el and g;
2. outer: one step of the compiled optimizer on L_SSL − γ·ΔR (ΔR is *maximised*) over θ_el
   and g, at the weights the inner step left, plus θ_e when ``early_lr_mult`` > 0 (its own
   optimizer at ``early_lr_mult`` × the learning rate).

The first-order scheme drops the second-order term of the DARTS-style unrolled hypergradient.
The inner step does not touch θ_e, so the early features are computed once per batch and reused
by both steps: a step costs one early forward, two late forward/backward passes and, when the
early part trains, one early backward (its forward is recorded on the outer step's tape, so
its BatchNorm statistics also move once per batch, as in a plain step). Every UMM term is
computed in float32. The wrapped model's CRR monitors run in the outer step, so
``crr/<tap>/delta_r`` shows the last layer's ΔR recover.

Multi-crop (DINO's ``local_crops`` > 0) is refused with a ConfigError: the bi-level step runs
the two global views through the split encoders only. So is a fixed-lr head (SimSiam's
``fix_pred_lr``), which the inner and outer optimizers would step on the schedule, and a method
whose ``umm_refusal`` gives the reason (MAE: its loss never runs the split encoders).
"""
import contextlib
import copy
import math

import keras
import tensorflow as tf
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.losses.coding_rate import pair_delta_r
from sslzoo.losses.common import f32
from sslzoo.methods.base import SSLMethod, skip_symbolic_build
from sslzoo.methods.forward import Forward
from sslzoo.optim import MAIN, Optimizers, ParamGroup, Rate
from sslzoo.umm.align import (ALIGNMENTS, gradient_norm_distribution, js_to_uniform,
                              similarity_kl)
from sslzoo.umm.split import resolve_split, split_encoders
from sslzoo.utils.replicas import keras_step_logs


def refusal(model):
    """Why UMM cannot wrap the SSL model ``model``, as a sentence naming the fix; None if it
    can."""
    if model.umm_refusal:
        return f"UMM cannot wrap {model.method}: {model.umm_refusal}. Drop --umm"
    if model.local_crops:
        return (f"UMM does not support multi-crop ({model.method} with {model.local_crops} "
                f"views beyond the two global ones): its bi-level step runs only two views "
                f"through the split encoders; set --hparams={model.two_view_hparams} or drop "
                "--umm")
    extra = [g.name for g in model.param_groups()[1:]]
    if extra:
        return (f"UMM steps every head on its own optimizers (outer, inner, early) and cannot "
                f"keep {model.method}'s parameter group(s) {extra} on theirs: set "
                "--hparams=fix_pred_lr=0 or drop --umm")
    return None


@keras.saving.register_keras_serializable(package="sslzoo")
class UMM(keras.Model):
    """Wrap an SSL model: ``UMM(sslzoo.build("simclr"), early="auto", beta=1.0, gamma=0.01)``.

    Args:
      model: an untrained or pretrained ``SSLMethod`` (not already wrapped).
      early: the block output that ends the early part (``"stage2"``, ``"block6"``), a number
        of blocks, or ``"auto"``: half the depth (stage2 on a ResNet, block 6 of a 12-block ViT).
      beta: weight β ≥ 0 of the alignment in the inner objective.
      gamma: weight γ of ΔR in the outer objective L_SSL − γ·ΔR: γ > 0 maximises ΔR (the
        paper); γ < 0 minimises it, as the authors' released code does (an ablation).
      eps: ε of ΔR.
      alignment: ``similarity_kl`` or ``gradient_js`` (see ``sslzoo.umm.align``).
      inner_steps: inner steps per batch.
      early_lr_mult: 0 freezes the early part; > 0 trains it in the outer step at this multiple
        of the learning rate (needed when UMM runs from the start of pretraining).
      align_temperature: τ of ``similarity_kl``.
    """

    def __init__(self, model, early="auto", beta=1.0, gamma=0.01, eps=0.5,
                 alignment="similarity_kl", inner_steps=1, early_lr_mult=0.0,
                 align_temperature=0.1):
        if isinstance(model, UMM):
            raise ConfigError("this model is already wrapped in UMM; wrap the SSL model once")
        if not isinstance(model, SSLMethod):
            raise ConfigError(f"UMM wraps an sslzoo SSL model, got {type(model).__name__}")
        reason = refusal(model)
        if reason:
            raise ConfigError(reason)
        for name, value in (("beta", beta), ("early_lr_mult", early_lr_mult)):
            if not value >= 0:
                raise ConfigError(f"UMM {name} must be >= 0, got {value}")
        if not math.isfinite(gamma):
            raise ConfigError(f"UMM gamma must be a finite number, got {gamma}")
        if not eps > 0 or not align_temperature > 0:
            raise ConfigError("UMM eps and align_temperature must be > 0")
        if alignment not in ALIGNMENTS:
            raise unknown_choice("UMM alignment", alignment, ALIGNMENTS)
        if int(inner_steps) < 1:
            raise ConfigError(f"UMM inner_steps must be >= 1, got {inner_steps}")
        super().__init__(name=f"umm_{model.name}")
        self.ssl_model = model
        self.split = resolve_split(model.backbone, early)
        self.settings = {"early": self.split, "beta": float(beta), "gamma": float(gamma),
                         "eps": float(eps), "alignment": alignment,
                         "inner_steps": int(inner_steps), "early_lr_mult": float(early_lr_mult),
                         "align_temperature": float(align_temperature)}
        self.early_encoder, self.late_encoder = split_encoders(model.backbone, self.split,
                                                               model.taps)
        early_ids = {id(v) for v in self.early_encoder.trainable_variables}
        self.early_vars = [v for v in model.ssl_trainable_variables if id(v) in early_ids]
        self.late_vars = [v for v in model.ssl_trainable_variables if id(v) not in early_ids]
        self.train_early = early_lr_mult > 0
        self.trackers = {k: keras.metrics.Mean(name=f"umm_{k}")
                         for k in ("inner_loss", "align", "delta_r")}

    # ----- sslzoo.methods.TrainableModel: ssl_model (set above), compile, build_all, ... ----
    def compile(self, optimizer, probe_optimizer=None, **kwargs):
        """The outer step uses ``optimizer`` (shared with the wrapped model), the inner step a
        copy at its rate and the early part a copy at ``early_lr_mult`` × its rate."""
        super().compile(optimizer=optimizer, **kwargs)
        self.ssl_model.compile(self.optimizer, probe_optimizer)
        groups = [ParamGroup("outer", self.late_vars, MAIN),
                  ParamGroup("inner", self.late_vars, Rate.follow())]
        if self.train_early:
            groups.append(ParamGroup("early", self.early_vars,
                                     Rate.follow(self.settings["early_lr_mult"])))
        self.optimizers = Optimizers(self.optimizer, groups)

    inner_optimizer = property(lambda self: self.optimizers["inner"])
    early_optimizer = property(lambda self: self.optimizers["early"] if self.train_early
                               else None)

    def build_all(self):
        self.ssl_model.build_all()  # builds the shared main optimizer
        self.built = True
        self.optimizers.build()

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not skip_symbolic_build(self):  # see SSLMethod._maybe_symbolic_build
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def checkpoint_items(self):
        return {**self.ssl_model.checkpoint_items(), **self.optimizers.checkpoint_items()}

    def call(self, images, training=False):
        return self.ssl_model(images, training=training)

    def forward(self, x, training=True, monitor=True):
        """The wrapped model's ``Forward`` (taps, ``pooled``, ``proj``) through the split
        encoders."""
        return self._late_forward(self.early_encoder(x, training=training and self.train_early),
                                  training, monitor, x)

    def _late_forward(self, early, training, monitor, images, cache=None):
        """The ``Forward`` from the early features ``early``; ``cache`` is the step's memo,
        shared by the inner and outer forwards of one batch."""
        features = dict(early)
        features.update(self.late_encoder(early[self.split], training=training))
        features["proj"] = self.ssl_model.projector(features["pooled"], training=training)
        out = Forward(images, features, cache={} if cache is None else cache)
        if monitor:
            self.ssl_model.monitor(out, training)
        return out

    # ----- the bi-level step -----------------------------------------------------------------
    def inner_objective(self, early, n, images, cache=None):
        """(L_SSL + β·A, L_SSL, A) at the current weights, for fixed early features."""
        s = self.settings
        if s["alignment"] == "similarity_kl":
            out = self._late_forward(early, True, False, images, cache)
            ssl = f32(self.ssl_model.ssl_loss(out, n))
            align = similarity_kl(early[self.split], out.pooled, s["align_temperature"])
        else:
            z_e = early[self.split]
            with tf.GradientTape() as per_sample:
                per_sample.watch(z_e)
                out = self._late_forward({**early, self.split: z_e}, True, False, images,
                                         cache)
                ssl = f32(self.ssl_model.ssl_loss(out, n))
            grads = per_sample.gradient(ssl, z_e)  # recorded by the caller's tape
            align = js_to_uniform(gradient_norm_distribution(grads))
        return ssl + s["beta"] * align, ssl, align

    def outer_objective(self, out, n):
        """(L_SSL − γ·ΔR, L_SSL, ΔR) of the forward outputs ``out``."""
        ssl = f32(self.ssl_model.ssl_loss(out, n))
        z = f32(out.proj)
        delta_r = pair_delta_r(z[:n], z[n:], eps=self.settings["eps"], normalize=True)[0]
        return ssl - self.settings["gamma"] * delta_r, ssl, delta_r

    def inner_step(self, images, early, n, cache=None):
        """One inner step over θ_el and g; returns (inner objective, A)."""
        with tf.GradientTape() as tape:
            inner, _, align = self.inner_objective(early, n, images, cache)
        self.optimizers.step(tape, inner, "inner")
        return inner, align

    def outer_step(self, images, early, n, tape=None, cache=None):
        """One outer step over θ_el and g (and θ_e if trained); returns (out, L_SSL, ΔR).

        ``tape`` holds the recorded early forward that produced ``early`` when θ_e trains
        (``train_step`` passes it); without it the early forward is run here.
        """
        if tape is None:
            tape = tf.GradientTape()
            if self.train_early:
                with tape:
                    early = self.early_encoder(images, training=True)
        with tape:
            out = self._late_forward(early, True, True, images, cache)
            outer, ssl, delta_r = self.outer_objective(out, n)
        self.optimizers.step(tape, outer, "outer", *(("early",) if self.train_early else ()))
        return out, ssl, delta_r

    def train_step(self, data):
        x, y, index = self.ssl_model.unpack(data)
        v1, v2 = self.ssl_model.make_views(x, self.optimizer.iterations)
        n = ops.shape(v1)[0]
        images = ops.concatenate([v1, v2], 0)
        lr = ops.convert_to_tensor(self.optimizer.learning_rate)
        tape = tf.GradientTape()
        with tape if self.train_early else contextlib.nullcontext():  # θ_e's outer gradient
            live = self.early_encoder(images, training=self.train_early)
        frozen = {k: ops.stop_gradient(v) for k, v in live.items()}
        cache = {"index": index}  # and one teacher pass serves every forward of this batch
        for _ in range(self.settings["inner_steps"]):
            inner, align = self.inner_step(images, frozen, n, cache)
        out, ssl, delta_r = self.outer_step(images, live if self.train_early else frozen, n,
                                            tape, cache)
        self.ssl_model.after_update(out)
        for key, value in (("inner_loss", inner), ("align", align), ("delta_r", delta_r)):
            self.trackers[key].update_state(value)
        logs = self.ssl_model.update_metrics(ssl, out, n, y, lr)
        logs.update(keras_step_logs({f"umm/{k}": t.result() for k, t in self.trackers.items()}))
        return logs

    @property
    def metrics(self):
        return [*self.ssl_model.metrics, *self.trackers.values()]

    def get_config(self):
        """The wrapped model (serialised) and the UMM settings; ``from_config`` rebuilds it."""
        return {"model": keras.saving.serialize_keras_object(self.ssl_model), **self.settings}

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # keras.saving consumes what it deserialises
        return cls(keras.saving.deserialize_keras_object(config.pop("model")), **config)
