"""The layer-wise CRR study: does a layer's held-out ΔR track what a linear probe can read from it?

``run_study(cfg)`` pretrains on a small subset (``StudyConfig`` defaults: 200 digits, 200
epochs) with a :class:`LayerProbeCallback` that, every ``study_every`` epochs and at the last
one, fits a logistic-regression probe on each tap's frozen features (probe-fit split) and
scores it on the probe-eval split, next to that epoch's per-epoch ΔR from the CRR callback.
The run directory gains ``study.json`` (one record per tap per measured epoch, the per-layer
peak / final / drop of probe accuracy and the Spearman ρ between held-out ΔR and accuracy) and
``study.png``; both are rewritten atomically after every measurement.
"""
import numpy as np

from sslzoo import data as sdata
from sslzoo import methods
from sslzoo.errors import ConfigError
from sslzoo.eval.study_callback import LayerProbeCallback
from sslzoo.eval.study_config import STUDY_TEMPERATURE, StudyConfig
from sslzoo.train.pretrain import pretrain

__all__ = ["LayerProbeCallback", "STUDY_TEMPERATURE", "StudyConfig", "run_study"]


def _arrays(data):
    """(uint8 images, int labels) of a whole split."""
    xs, ys = zip(*data.dataset.batch(1024).as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def run_study(cfg=None, callbacks=(), **overrides):
    """Pretrain as ``cfg`` (a StudyConfig or keyword settings) says with a LayerProbeCallback
    (then the extra Keras ``callbacks``); returns the study report (also in
    ``<output_dir>/study.json``) with the pretraining summary under ``"pretrain"``."""
    cfg = cfg or StudyConfig(**overrides)
    methods.get(cfg.method)  # an unknown method fails before any data is loaded
    load = dict(data_dir=cfg.data_dir or None, download=cfg.download)
    fit = sdata.load(cfg.dataset, cfg.probe_fit_split, image_size=cfg.image_size or None, **load)
    ev = sdata.load(cfg.dataset, cfg.probe_eval_split, image_size=fit.image_size, **load)
    if not fit.num_classes:
        raise ConfigError(f"the study's probes need labels, and {cfg.dataset} has none")
    fit_xy, ev_xy = _arrays(fit), _arrays(ev)
    if (fit_xy[1] < 0).any() or (ev_xy[1] < 0).any():
        raise ConfigError("the probe splits hold unlabeled images; choose labeled "
                          "--probe_fit_split and --probe_eval_split")
    callback = LayerProbeCallback(
        fit_xy, ev_xy, every=cfg.study_every, epochs=cfg.epochs, output_dir=cfg.output_dir,
        resume=cfg.resume, settings={"probe_fit_split": cfg.probe_fit_split,
                                     "probe_eval_split": cfg.probe_eval_split,
                                     "pretrain_split": cfg.split, "seed": cfg.seed,
                                     "method": cfg.method, "backbone": cfg.backbone,
                                     "hparams": cfg.method_hparams()})
    summary = pretrain(cfg, callbacks=[callback, *callbacks])
    return callback.write(complete=True, pretrain=summary)
