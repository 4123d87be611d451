"""``pretrain(config)``: SSL pretraining into a resumable run directory.

The run directory holds ``config.json`` (every setting), ``checkpoints/`` (atomic, per epoch),
``tb/`` (TensorBoard), ``metrics.csv``, ``backbone.weights.h5`` and ``projector.weights.h5``
(the final weights; `sslzoo.zoo.load` takes the directory), ``model.json`` (the SSL model,
``keras.saving``-serialised, from which ``zoo.load`` rebuilds its heads) and ``summary.json`` (held-out
linear-probe accuracy, images/s, wall time).
"""
import dataclasses
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from sslzoo import data as sdata
from sslzoo import methods, zoo
from sslzoo.crr.callback import CRRCallback
from sslzoo.crr.report import load_history, load_warning
from sslzoo.crr.warning import rule_settings
from sslzoo.data.augment import get_recipe
from sslzoo.data.pipeline import batches_per_pass, check_batch_size, ssl_batches
from sslzoo.errors import ConfigError, TrainingError
from sslzoo.optim import LARS_ETA, paper_optimizer
from sslzoo.probes import evaluate_backbone
from sslzoo.train import callbacks as cb
from sslzoo.train.config import PretrainConfig
from sslzoo.train.device import is_chief, make_strategy, setup_precision
from sslzoo.train.init import load_backbone
from sslzoo.train.loop import fit_from_step
from sslzoo.train.selection import SelectBest, check_select_by
from sslzoo.umm import UMM
from sslzoo.umm.report import write_umm_report
from sslzoo.utils import io


def prepare_run_dir(cfg, run_dir=None):
    """Create the run directory, refusing to overwrite a run unless resuming it. ``run_dir``
    is the chief's directory when ``cfg.output_dir`` is a non-chief worker's scratch one."""
    run_dir = run_dir or cfg.output_dir
    has_run = os.path.exists(os.path.join(run_dir, "checkpoints", "checkpoint"))
    if has_run and not cfg.resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it "
                          "or choose another --output_dir")
    os.makedirs(cfg.output_dir, exist_ok=True)
    io.write_json(os.path.join(cfg.output_dir, "config.json"), cfg.to_dict())
    return os.path.join(cfg.output_dir, "checkpoints")


def check_lars_flags(cfg, method_cls):
    """Whether the run uses LARS; a ConfigError when --lars_eta/--lars_clip are set without it."""
    name = cfg.optimizer or method_cls.optim_defaults_for(cfg.backbone)["optimizer"]
    if name != "lars" and (cfg.lars_clip or cfg.lars_eta != LARS_ETA):
        raise ConfigError(f"--lars_eta and --lars_clip apply only to LARS, but this run uses "
                          f"{name} ({cfg.method}'s default unless --optimizer is given); drop "
                          "them or pass --optimizer=lars")
    return name == "lars"


def resolve_optimizer(cfg, method_cls, steps_per_epoch):
    """The optimizer with the method's paper defaults, a scaled LR, warmup and ``--schedule``."""
    lars = check_lars_flags(cfg, method_cls)
    total = cfg.epochs * steps_per_epoch
    optimizer, info = paper_optimizer(
        method_cls.optim_defaults_for(cfg.backbone), cfg.batch_size, total,
        round(cfg.warmup_epochs * steps_per_epoch), cfg.schedule, name=cfg.optimizer or None,
        learning_rate=cfg.learning_rate or None,
        weight_decay=None if cfg.weight_decay < 0 else cfg.weight_decay,
        lars_eta=cfg.lars_eta, lars_clip=cfg.lars_clip)
    if lars:
        info.update(lars_eta=cfg.lars_eta, lars_clip=cfg.lars_clip)
    return optimizer, info


def _taps(cfg):
    taps = [t.strip() for t in cfg.crr_taps.split(",") if t.strip()]
    return taps or None


def crr_callback(cfg, model, train, start_epoch, run_dir=None):
    """The per-epoch CRR callback on fixed reference sets, or None when it is off; a resumed
    run continues the curves saved in ``run_dir`` (default: the output directory)."""
    if not (cfg.crr_every and cfg.crr_reference_size):
        return None
    split = cfg.crr_reference_split or cfg.probe_test_split
    heldout = _load_split(cfg, split, train.image_size)
    n = min(cfg.crr_reference_size, heldout.num_examples, train.num_examples)
    if n < 2:
        return None
    callback = CRRCallback(heldout.first_images(n), train.first_images(n),
                           output_dir=cfg.output_dir, patience=cfg.crr_patience,
                           early_stop=cfg.crr_early_stop,
                           **rule_settings(cfg.crr_warning_rule, cfg.epochs, cfg.warmup_epochs),
                           seed=cfg.seed,
                           quality=cfg.crr_quality, lidar_images=cfg.lidar_images,
                           lidar_views=cfg.lidar_views)
    report = os.path.join(run_dir or cfg.output_dir, "crr_report.json")
    if start_epoch and os.path.exists(report):  # continue the curves of a resumed run
        callback.saved_history = load_history(report, start_epoch)
        callback.saved_warning = load_warning(report, start_epoch)
    return callback


def _load_split(cfg, split, image_size):
    return sdata.load(cfg.dataset, split=split, data_dir=cfg.data_dir or None,
                      image_size=image_size or None, download=cfg.download)


def linear_probe(cfg, backbone, image_size):
    """{"linear_probe_top1", "knn_top1", "probe_splits"[, "probe_note"]} of a frozen
    backbone."""
    fit = _load_split(cfg, cfg.probe_train_split, image_size)
    test = _load_split(cfg, cfg.probe_test_split, image_size)
    out = {**evaluate_backbone(backbone, fit, test),
           "probe_splits": [cfg.probe_train_split, cfg.probe_test_split]}
    if fit.name == test.name and fit.split != test.split and cfg.dataset.startswith(
            "folder:") and not os.path.isdir(os.path.join(
                cfg.dataset[len("folder:"):], cfg.probe_test_split.split("[")[0])):
        out["probe_note"] = "the folder has no test/ sub-folder: scored on fit images"
        logging.warning("%s has no %s/ sub-folder, so the linear probe is scored on the "
                        "images it was fitted on", cfg.dataset, cfg.probe_test_split)
    return out


def pretrain(cfg=None, callbacks=(), **overrides):
    """Pretrain as configured (a PretrainConfig or keyword settings); returns the summary dict.

    ``callbacks`` are extra Keras callbacks; they run after the CRR callback (so they see its
    ``crr/<tap>/...`` logs) and before the checkpointer.

    Under ``multi_worker`` every worker runs the same steps, but only the chief writes
    ``output_dir``; the others write to a scratch directory, deleted at the end (and restore a
    resumed run from the chief's checkpoints, so ``output_dir`` must be on a shared disk).
    """
    cfg = cfg or PretrainConfig(**overrides)
    t0 = time.time()
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    precision = setup_precision(cfg.mixed_precision)
    strategy = make_strategy(cfg.strategy)
    run_dir, chief = cfg.output_dir, is_chief(strategy)
    if not chief:
        cfg = dataclasses.replace(cfg, output_dir=tempfile.mkdtemp(prefix="sslzoo-worker-"))
    method_cls = methods.get(cfg.method)
    check_lars_flags(cfg, method_cls)  # before any data is loaded
    hparams = cfg.method_hparams()
    train = _load_split(cfg, cfg.split, cfg.image_size)
    check_batch_size(train, cfg.batch_size)
    steps_per_epoch = cfg.steps_per_epoch or batches_per_pass(train, cfg.batch_size)
    if method_cls.needs_index:  # a memory bank row per training image (DeepCluster-v2)
        hparams = {"memory_size": train.num_examples, **hparams}
        if hparams["memory_size"] < train.num_examples:
            raise ConfigError(f"{cfg.method} keeps a row per training image: memory_size must "
                              f"be at least the {train.num_examples} images of --split (it "
                              "is set to that by default)")
    # Seeded after the data is loaded: building a data set for the first time draws random
    # numbers, and the weights must not depend on whether it was built already.
    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        model = methods.build(cfg.method, cfg.backbone, image_size=train.image_size,
                              num_classes=train.num_classes, stem=cfg.stem,
                              augment_in_step=cfg.augment_on == "device",
                              crr_every=cfg.crr_every, taps=_taps(cfg), sync_bn=cfg.sync_bn,
                              augment=cfg.augment, seed=cfg.seed, **hparams)
        if cfg.init_from:
            load_backbone(model.backbone, cfg.init_from)
        if cfg.umm:
            model = UMM(model, **cfg.umm_kwargs())
        optimizer, opt_info = resolve_optimizer(cfg, method_cls, steps_per_epoch)
        methods.set_training_length(model, opt_info["total_steps"], steps_per_epoch)
        model.compile(optimizer)
        model.build_all()
    if cfg.select_by:
        check_select_by(cfg.select_by, model.ssl_model.taps, cfg.crr_quality,
                        bool(cfg.crr_every and cfg.crr_reference_size))
    ckpt_dir = prepare_run_dir(cfg, run_dir)  # after every check that can fail on bad flags
    ssl_model = model.ssl_model  # the method (UMM wraps it)
    nan_guard = cb.NaNGuard()
    checkpointer = cb.Checkpointer(model, ckpt_dir, nan_guard,
                                   restore_dir=os.path.join(run_dir, "checkpoints"),
                                   every_steps=cfg.checkpoint_every_steps,
                                   steps_per_epoch=steps_per_epoch)
    start_step = checkpointer.restore() if cfg.resume else 0
    start_epoch = start_step // steps_per_epoch
    views = ssl_model.view_layer() if cfg.augment_on == "data" else None
    before = None
    if cfg.init_from and not start_step and train.num_classes and chief:
        before = linear_probe(cfg, ssl_model.backbone, train.image_size)["linear_probe_top1"]
        logging.info("linear probe of the --init_from backbone before training: %.4f", before)
    if start_step:
        logging.info("resuming %s at step %d (epoch %d, batch %d)", cfg.output_dir,
                     start_step, start_epoch + 1, start_step % steps_per_epoch + 1)
    throughput = cb.Throughput(cfg.batch_size)
    crr = crr_callback(cfg, model, train, start_epoch, run_dir)
    # metrics.csv is written before the checkpoint: a kill between the two leaves a row that
    # the resumed run drops and writes again, never a missing one.
    csv_log = cb.MetricsCSV(os.path.join(cfg.output_dir, "metrics.csv"), start_epoch)
    tb_dir = os.path.join(cfg.output_dir, "tb")
    if start_step:
        cb.rewrite_tensorboard(tb_dir, csv_log.rows)
    if cfg.select_by and crr is None:
        raise ConfigError(f"--select_by={cfg.select_by} needs a CRR reference set of at least "
                          "2 images in both the held-out split and --split")
    select = [SelectBest(cfg.select_by, cfg.output_dir)] if cfg.select_by else []
    callbacks = [nan_guard, *([crr] if crr else []), *select, *callbacks, csv_log, checkpointer,
                 throughput,
                 keras.callbacks.TensorBoard(tb_dir, write_graph=False, profile_batch=0),
                 cb.ConciseProgbar()]
    # The stream is a pure function of the seed and the step: a resumed run sees the batches
    # and views the uninterrupted one would have.
    fit_from_step(model, lambda step: ssl_batches(train, cfg.batch_size, views, seed=cfg.seed,
                                                  start_step=step,
                                                  with_index=ssl_model.needs_index),
                  start_step, steps_per_epoch, cfg.epochs, callbacks, cfg.verbose)
    if nan_guard.tripped:
        last = checkpointer.manager.latest_checkpoint or "none (no epoch finished)"
        raise TrainingError(
            f"the loss became {nan_guard.tripped['loss']} at step {nan_guard.tripped['step']}; "
            f"training stopped. The last good checkpoint is kept: {last}. Rerun with --resume "
            "and a lower --learning_rate, or start again with --mixed_precision=float32.")
    io.save_weights(ssl_model.backbone, os.path.join(cfg.output_dir, zoo.BACKBONE_FILE))
    io.save_weights(ssl_model.projector, os.path.join(cfg.output_dir, zoo.PROJECTOR_FILE))
    io.write_json(os.path.join(cfg.output_dir, zoo.MODEL_FILE),
                  keras.saving.serialize_keras_object(ssl_model))

    summary = {"output_dir": cfg.output_dir, "method": cfg.method, "backbone": cfg.backbone,
               "dataset": cfg.dataset, "image_size": train.image_size,
               "epochs": cfg.epochs, "steps": _steps(optimizer), "precision": precision,
               "images_per_sec": round(throughput.images_per_sec, 1),
               "augment_recipe": dataclasses.asdict(get_recipe(ssl_model.recipe)), **opt_info}
    if train.num_classes and chief:  # the probe runs outside the strategy: once is enough
        summary.update(linear_probe(cfg, ssl_model.backbone, train.image_size))
        if before is not None:
            summary["linear_probe_top1_before"] = before
    if crr is not None:
        summary["crr_warning"] = crr.warning
    if select:
        summary["selected"] = select[0].selected
    if cfg.umm:
        summary["umm"] = model.settings
        write_umm_report(cfg, summary, watch=crr.watch if crr is not None else None)
    summary["wall_time_sec"] = round(time.time() - t0, 1)
    io.write_json(os.path.join(cfg.output_dir, "summary.json"), summary)
    if cfg.output_dir != run_dir:  # a non-chief worker's scratch directory
        shutil.rmtree(cfg.output_dir, ignore_errors=True)
        summary["output_dir"] = run_dir
    return summary


def _steps(optimizer):
    """Optimizer steps taken (``int()`` of a multi-worker MirroredVariable fails)."""
    return int(optimizer.iterations.value.numpy())
