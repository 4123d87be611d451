"""Parameter groups: a model with several optimizers declares them as data.

A ``ParamGroup`` is (name, variables, rate). The rate says how the group's optimizer relates to
the main (compiled) one:

- ``MAIN``: the main optimizer itself;
- ``Rate.peak()``: a copy of it (same class and settings, its own slots) held at the main
  schedule's peak rate throughout (SimSiam's fixed predictor rate);
- ``Rate.follow(m)``: a copy whose rate is m × the main optimizer's current rate (UMM's inner
  and early steps);
- or an explicit ``optimizer`` (the online probe's Adam, fine-tuning's backbone optimizer).

``Optimizers`` creates the group optimizers, builds them (rank ≤ 1 variables exempt from
decoupled weight decay), names them for checkpoints (``<name>_optimizer``) and steps them with
``step_groups``, which takes several groups on one gradient pass with their own loss scales.
"""
import dataclasses

import keras
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.optim.optimizers import (clone_optimizer, exclude_norms_and_biases,
                                     update_weight_decay)
from sslzoo.optim.schedules import peak_learning_rate
from sslzoo.utils.replicas import per_replica_loss


@dataclasses.dataclass(frozen=True)
class Rate:
    """How a group's learning rate follows the main optimizer's (see the module docstring)."""
    kind: str
    mult: float = 1.0

    @staticmethod
    def peak():
        return Rate("peak")

    @staticmethod
    def follow(mult=1.0):
        return Rate("follow", float(mult))


MAIN = Rate("main")


@dataclasses.dataclass
class ParamGroup:
    """Variables stepped by one optimizer: the main one, one derived from it by ``rate``, or
    ``optimizer`` when given."""
    name: str
    variables: list
    rate: Rate = MAIN
    optimizer: object = None


class FollowMainRate(keras.optimizers.schedules.LearningRateSchedule):
    """``mult`` × the main optimizer's current learning rate."""

    def __init__(self, main, mult=1.0):
        self.main, self.mult = main, float(mult)

    def __call__(self, step):
        return ops.convert_to_tensor(self.main.learning_rate, "float32") * self.mult

    def get_config(self):
        return {"mult": self.mult}


def derived_optimizer(main, rate):
    """A fresh optimizer like ``main`` at the learning rate ``rate`` derives from it."""
    if rate.kind == "peak":
        inner = getattr(main, "inner_optimizer", main)
        return clone_optimizer(main, peak_learning_rate(inner._learning_rate))
    if rate.kind == "follow":
        return clone_optimizer(main, FollowMainRate(main, rate.mult))
    raise ConfigError(f"unknown learning-rate rule {rate.kind!r}; use MAIN, Rate.peak() or "
                      "Rate.follow(mult)")


class Optimizers:
    """The optimizers of ``groups`` (``ParamGroup``s; names unique), derived from ``main``."""

    def __init__(self, main, groups):
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ConfigError(f"parameter group names must be unique, got {names}")
        self.main = main
        self.groups = {g.name: g for g in groups}
        self.optimizers = {
            g.name: g.optimizer if g.optimizer is not None else
            main if g.rate == MAIN else derived_optimizer(main, g.rate) for g in groups}

    def __getitem__(self, name):
        return self.optimizers[name]

    def __contains__(self, name):
        return name in self.groups

    def pair(self, name):
        """(variables, optimizer) of a group, as ``step`` takes it."""
        return self.groups[name].variables, self.optimizers[name]

    def build(self):
        """Create every optimizer's slots, so checkpoints restore eagerly; biases and norms are
        exempted from decoupled weight decay first."""
        for name, group in self.groups.items():
            opt = self.optimizers[name]
            if group.variables and not opt.built:  # a shared main one may be built already
                exclude_norms_and_biases(opt, group.variables)
                opt.build(group.variables)

    def checkpoint_items(self):
        """``<name>_optimizer`` → optimizer for every group but those on the main optimizer
        (the checkpoint holds that one as ``optimizer``)."""
        return {f"{name}_optimizer": opt for name, opt in self.optimizers.items()
                if opt is not self.main}

    def step(self, tape, loss, *names):
        """``step_groups`` over the named groups (the first one's optimizer scales the loss)."""
        step_groups(tape, loss, [self.pair(name) for name in names])


def step_groups(tape, loss, groups):
    """One optimizer step of ``loss`` over ``groups``, (variables, optimizer) pairs, on one
    gradient pass. ``loss`` is this replica's share of the global loss: the optimizers sum the
    replicas' gradients of loss/R (× the first optimizer's loss scale under mixed_float16). The
    scaling is recorded on ``tape`` (re-entered), else its gradient would be None. The other
    groups' gradients carry the first optimizer's loss scale, so a loss-scaled one gets them
    rescaled to its own (each keeps its own dynamic scale)."""
    optimizer = groups[0][1]
    with tape:
        scaled = optimizer.scale_loss(per_replica_loss(loss))
    grads = tape.gradient(scaled, [v for vs, _ in groups for v in vs])
    scale = _loss_scale(optimizer)  # read before optimizer.apply may change it
    start = 0
    for vs, opt in groups:
        g = grads[start:start + len(vs)]
        own = _loss_scale(opt)
        if opt is not optimizer and own is not None:
            ratio = own if scale is None else own / scale
            g = [None if x is None else x * ops.cast(ratio, x.dtype) for x in g]
        update_weight_decay(opt)
        opt.apply(g, vs)
        start += len(vs)


def _loss_scale(optimizer):
    """The current dynamic loss scale of a LossScaleOptimizer (float32), else None."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return ops.convert_to_tensor(optimizer.dynamic_scale, "float32")
    return None
