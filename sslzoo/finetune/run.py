"""``finetune(config)``: score a backbone on labelled data, in one of four modes
(`sslzoo.finetune.modes`).

- ``linear``: frozen backbone; its features are extracted once, standardised, and a Dense head
  is fitted on them with Keras; the saved model is backbone → standardise → Dense.
- ``finetune``: backbone → BatchNorm → Dense trained end to end, the backbone at
  ``backbone_lr_mult`` × the head's learning rate (a second optimizer).
- ``semi``: ``finetune`` on a class-balanced ``label_fraction`` of the train split.
- ``knn``: weighted cosine k-NN (k = 20, 200; τ = 0.07) on frozen features; no model.

The run directory (``output_dir``) holds ``config.json``, ``tb/`` (TensorBoard: the fits and
the final accuracies), ``metrics.csv`` (training modes), ``results.json`` and ``model.keras``
(training modes: uint8 or float images [N, S, S, 3] in [0, 255] → logits; built-in layers
only, so ``keras.saving.load_model(path, safe_mode=True)`` loads it). It is created only after
the model and the data load, and a finished run is replaced only with ``overwrite``.
Accuracies on the train split are measured without augmentation (for ``semi``: on the
labelled subset it was trained on). The runs compute in float32.
"""
import os
import shutil
import time

import keras
import tensorflow as tf

from sslzoo.errors import ConfigError, DataError
from sslzoo.finetune import heads
from sslzoo.finetune.config import FinetuneConfig
from sslzoo.finetune.data import load_labelled
from sslzoo.finetune.modes import MODES
from sslzoo.finetune.subset import labelled_subset
from sslzoo.train.device import setup_precision
from sslzoo.utils import io

RESULTS_FILE, MODEL_FILE, CONFIG_FILE = "results.json", "model.keras", "config.json"


def _check_output_dir(cfg):
    if os.path.exists(os.path.join(cfg.output_dir, RESULTS_FILE)) and not cfg.overwrite:
        raise ConfigError(f"{cfg.output_dir} already holds a finished run ({RESULTS_FILE}); "
                          "pass --overwrite to replace it or choose another --output_dir")


def _prepare_output_dir(cfg):
    os.makedirs(cfg.output_dir, exist_ok=True)
    for name in (RESULTS_FILE, MODEL_FILE, "metrics.csv"):  # a replaced run's leftovers
        if os.path.exists(os.path.join(cfg.output_dir, name)):
            os.remove(os.path.join(cfg.output_dir, name))
    shutil.rmtree(os.path.join(cfg.output_dir, "tb"), ignore_errors=True)
    io.write_json(os.path.join(cfg.output_dir, CONFIG_FILE), cfg.to_dict())


def _log_scalars(cfg, results):
    writer = tf.summary.create_file_writer(os.path.join(cfg.output_dir, "tb", "eval"))
    with writer.as_default():
        for metric in ("top1", "top5"):
            for split, value in results.get(metric, {}).items():
                tf.summary.scalar(f"{metric}/{split}", value, step=0)
        for k, value in results.get("knn", {}).items():
            tf.summary.scalar(f"knn/top1_k{k}", value, step=0)
    writer.close()


def save_model(model, path):
    """``model.save`` written atomically (a temporary .keras file renamed into place)."""
    with io.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def _source_info(cfg, src, image_size):
    if src is None:
        return {"kind": "random", "backbone": cfg.backbone, "image_size": image_size}
    return {"kind": src.kind, "path": src.path, "backbone": src.backbone,
            "image_size": src.image_size}


def finetune(cfg=None, **overrides):
    """Run as configured (a FinetuneConfig or keyword settings); returns the results dict
    that is also written to ``results.json``."""
    return finetune_model(cfg, **overrides)[0]


def finetune_model(cfg=None, **overrides):
    """`finetune`, returning (results, the trained classifier or None for knn)."""
    cfg = cfg or FinetuneConfig(**overrides)
    t0 = time.time()
    _check_output_dir(cfg)
    setup_precision("float32")
    keras.utils.set_random_seed(cfg.seed)
    if cfg.is_random:  # the data decides the size unless --image_size gives it
        train = load_labelled(cfg, cfg.train_split, cfg.image_size)
        embedding, size, src = heads.embedding_model(cfg, train.image_size)
    else:  # a bad --init_from fails here, before any data is read
        embedding, size, src = heads.embedding_model(cfg, cfg.image_size)
        train = load_labelled(cfg, cfg.train_split, size)
    test = load_labelled(cfg, cfg.test_split, size)
    if test.num_classes != train.num_classes:
        raise DataError(f"{cfg.train_split} has {train.num_classes} classes but "
                        f"{cfg.test_split} has {test.num_classes}; both splits need the same "
                        "classes (for folders: the same class sub-folders)")
    results = {"mode": cfg.mode, "init_from": cfg.init_from,
               "source": _source_info(cfg, src, size), "dataset": cfg.dataset,
               "image_size": size, "num_classes": train.num_classes,
               "train_split": cfg.train_split, "test_split": cfg.test_split,
               "num_train": train.num_examples, "num_test": test.num_examples, "top1": {}}
    if cfg.pool:
        results["pool"] = cfg.pool
    if cfg.mode == "semi":
        train, picked = labelled_subset(train, cfg.label_fraction, cfg.seed)
        results.update(label_fraction=cfg.label_fraction, num_labelled=len(picked),
                       labelled_fraction=len(picked) / results["num_train"])
    opt = cfg.resolved()
    if cfg.mode != "knn":
        results.update(opt)
        if cfg.mode != "linear":
            results["backbone_lr_mult"] = cfg.backbone_lr_mult
            results["layer_decay"] = cfg.layer_decay
            heads.backbone_layers(embedding.trainable_variables, cfg.layer_decay)  # a ViT?
    _prepare_output_dir(cfg)  # after everything that can fail on bad flags, weights or data
    model = MODES[cfg.mode](cfg, embedding, train, test, opt, results)
    if model is not None:
        save_model(model, os.path.join(cfg.output_dir, MODEL_FILE))
        results["model"] = MODEL_FILE
    _log_scalars(cfg, results)
    results.update(output_dir=cfg.output_dir, wall_time_sec=round(time.time() - t0, 1))
    io.write_json(os.path.join(cfg.output_dir, RESULTS_FILE), results)
    return results, model
