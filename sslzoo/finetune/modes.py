"""The four modes: each ``run_<mode>(cfg, embedding, train, test, opt, results)`` fills
``results`` ("top1", "top5", "knn") and returns the trained classifier (None for knn)."""
import os

import keras
import numpy as np

from sslzoo.data.pipeline import eval_batches
from sslzoo.errors import TrainingError
from sslzoo.finetune import heads
from sslzoo.finetune.data import steps_per_epoch, train_batches
from sslzoo.optim import make_optimizer
from sslzoo.probes import extract_features, knn_accuracy
from sslzoo.train import callbacks as cb

KNN_KS = (20, 200)
KNN_TEMPERATURE = 0.07


def accuracies(logits, labels):
    """(top-1, top-5 or None when there are fewer than 5 classes) of logits (N, C)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    top1 = float(np.mean(logits.argmax(axis=1) == labels))
    if logits.shape[1] < 5:
        return top1, None
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return top1, float(np.mean((top5 == labels[:, None]).any(axis=1)))


def predict(model, data, batch_size=256):
    """(logits (N, C), labels (N,)) of ``model`` on an unaugmented split."""
    logits = model.predict(eval_batches(data, batch_size), verbose=0)
    labels = np.concatenate(list(data.dataset.map(lambda x, y: y).batch(4096)
                                 .as_numpy_iterator()))
    return np.asarray(logits), labels


def _fit_callbacks(cfg):
    nan_guard = cb.NaNGuard()
    return nan_guard, [nan_guard, cb.MetricsCSV(os.path.join(cfg.output_dir, "metrics.csv")),
                       keras.callbacks.TensorBoard(os.path.join(cfg.output_dir, "tb"),
                                                   write_graph=False, profile_batch=0)]


def _check_finite(nan_guard):
    if nan_guard.tripped:
        raise TrainingError(
            f"the loss became {nan_guard.tripped['loss']} at step {nan_guard.tripped['step']}; "
            "training stopped and no model was saved. Lower --learning_rate (or "
            "--backbone_lr_mult) and run again with --overwrite.")


def _score(results, split, logits, labels):
    top1, top5 = accuracies(logits, labels)
    results["top1"][split] = top1
    if top5 is not None:
        results.setdefault("top5", {})[split] = top5


def feature_stats(features):
    """(mean, variance) per feature for the "standardize" layer; constant features get
    variance 1, so they pass through unscaled."""
    var = features.var(axis=0)
    return features.mean(axis=0), np.where(var < 1e-8, 1.0, var)


def run_linear(cfg, embedding, train, test, opt, results):
    """Fit a Dense head on standardised cached features; returns the classifier."""
    tx, ty = extract_features(embedding, train, cfg.batch_size)
    vx, vy = extract_features(embedding, test, cfg.batch_size)
    mean, var = feature_stats(tx)
    head_in = keras.Input((tx.shape[1],), name="features")
    head = keras.Model(head_in, keras.layers.Dense(train.num_classes, name="head")(head_in))
    schedule = keras.optimizers.schedules.CosineDecay(
        opt["learning_rate"], opt["epochs"] * steps_per_epoch(train, cfg.batch_size))
    head.compile(make_optimizer(opt["optimizer"], schedule, opt["weight_decay"], nesterov=True),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"])
    nan_guard, callbacks = _fit_callbacks(cfg)
    std = lambda x: ((x - mean) / np.sqrt(var)).astype(np.float32)  # noqa: E731
    head.fit(std(tx), ty, batch_size=cfg.batch_size, epochs=opt["epochs"], shuffle=True,
             callbacks=callbacks, verbose=cfg.verbose)
    _check_finite(nan_guard)
    kernel, bias = head.get_layer("head").get_weights()
    for split, x, y in ((cfg.test_split, vx, vy), (cfg.train_split, tx, ty)):
        _score(results, split, std(x) @ kernel + bias, y)
    model = heads.classifier(embedding, train.num_classes, mean, var)
    model.get_layer("head").set_weights([kernel, bias])
    return model


def run_finetune(cfg, embedding, train, test, opt, results):
    """Train backbone → BatchNorm → Dense end to end; returns the classifier. The head's
    BatchNorm (no scale or offset) puts the new Dense layer on unit-scale inputs whatever the
    backbone's feature scale."""
    model = heads.classifier(embedding, train.num_classes, batch_norm=True)
    total = opt["epochs"] * steps_per_epoch(train, cfg.batch_size)

    def optimizer(mult):
        lr = keras.optimizers.schedules.CosineDecay(opt["learning_rate"] * mult, total)
        return make_optimizer(opt["optimizer"], lr, opt["weight_decay"], nesterov=True)

    layers = heads.backbone_layers(embedding.trainable_variables, cfg.layer_decay)
    groups = [(vs, optimizer(cfg.backbone_lr_mult * mult)) for mult, vs in layers
              ] if cfg.backbone_lr_mult else []
    trainer = heads.TwoRateTrainer(model, embedding.trainable_variables, groups)
    trainer.compile(optimizer=optimizer(1.0))
    trainer.build_optimizers()
    nan_guard, callbacks = _fit_callbacks(cfg)
    trainer.fit(train_batches(train, cfg.batch_size, cfg.augmentation, cfg.seed),
                epochs=opt["epochs"], callbacks=callbacks, shuffle=False,
                verbose=cfg.verbose)
    _check_finite(nan_guard)
    for split, data in ((cfg.test_split, test), (cfg.train_split, train)):
        _score(results, split, *predict(model, data, cfg.batch_size))
    return model


def run_knn(cfg, embedding, train, test, opt, results):
    """Weighted cosine k-NN of the test features among the train features; no model."""
    tx, ty = extract_features(embedding, train, cfg.batch_size)
    vx, vy = extract_features(embedding, test, cfg.batch_size)
    results["knn"] = {str(k): knn_accuracy(tx, ty, vx, vy, k=k, temperature=KNN_TEMPERATURE)
                      for k in KNN_KS}
    results["knn_temperature"] = KNN_TEMPERATURE
    results["top1"][cfg.test_split] = results["knn"][str(KNN_KS[0])]
    return None


MODES = {"linear": run_linear, "finetune": run_finetune, "semi": run_finetune, "knn": run_knn}
