"""Optimizers (LARS, by name, cloning), learning-rate schedules and parameter groups.

``groups`` is the one mechanism for a model with several optimizers: SimSiam's fixed-rate
predictor, UMM's inner and early steps, the online probe and fine-tuning's backbone rate."""
from sslzoo.optim.groups import MAIN, Optimizers, ParamGroup, Rate, step_groups
from sslzoo.optim.optimizers import (LARS, LARS_ETA, OPTIMIZERS, clone_optimizer,
                                     exclude_norms_and_biases, make_optimizer, paper_optimizer)
from sslzoo.optim.schedules import SCHEDULES, peak_learning_rate, scaled_lr, warmup_cosine

__all__ = ["LARS", "LARS_ETA", "MAIN", "OPTIMIZERS", "SCHEDULES", "Optimizers", "ParamGroup",
           "Rate", "clone_optimizer", "exclude_norms_and_biases", "make_optimizer",
           "paper_optimizer", "peak_learning_rate", "scaled_lr", "step_groups", "warmup_cosine"]
