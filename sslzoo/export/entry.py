"""Zoo entries: ``<name>/{backbone.weights.h5, projector.weights.h5, card.json}`` from a
pretrain run or another entry (a larger backbone is sharded: see `sslzoo.zoo`).

    from sslzoo.export.entry import write_entry
    path = write_entry("runs/simclr_run", "weights")          # weights/simclr_resnet_tiny_digits
    path = write_entry("runs/simclr_run", "weights", metrics={"linear_top1": 0.96,
                                                              "knn_top1": 0.93})

The card records what the zoo needs to rebuild the model (method, backbone, stem, image size,
the full pretraining config) and what a reader needs to trust it (the command that made it, the
CRR summary, the metrics and where they come from, sha256 of each weights file, the versions).
"""
import dataclasses
import datetime
import os
import re
import shlex
import shutil

import sslzoo
from sslzoo import zoo
from sslzoo.errors import ConfigError, WeightsError
from sslzoo.export.files import atomic_dir
from sslzoo.train.config import PretrainConfig
from sslzoo.utils.io import read_json, write_json

CRR_REPORT_FILE = "crr_report.json"
FINETUNE_FILES = ("model.keras", "results.json")
# Settings that do not change what is trained: left out of the reconstructed command.
COMMAND_NOISE = ("output_dir", "data_dir", "resume", "verbose", "download")


def is_finetune_run(path):
    """Whether ``path`` is a sslzoo-finetune run directory (model.keras + results.json)."""
    return os.path.isdir(path) and all(os.path.isfile(os.path.join(path, f))
                                       for f in FINETUNE_FILES)


def sanitise(name):
    """``name`` reduced to a portable folder name: letters, digits, ``_``, ``-`` and ``.``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_.-")


def default_name(config):
    """``<method>_<backbone>_<dataset>`` of a pretraining config, sanitised."""
    dataset = str(config.get("dataset", "data"))
    if dataset.startswith("folder:"):
        dataset = "folder_" + os.path.basename(os.path.normpath(dataset[len("folder:"):]))
    return sanitise(f"{config.get('method', 'ssl')}_{config.get('backbone', 'net')}_{dataset}")


def _config_class(config):
    if "study_every" in config:  # a sslzoo-study run: its own defaults and app
        from sslzoo.eval.study import StudyConfig  # lazy: TensorFlow (the flags stay light)

        return StudyConfig, "sslzoo-study"
    return PretrainConfig, "sslzoo-pretrain"


def pretrain_command(config):
    """The command line that reproduces a run from its config.json: the app and every setting
    that differs from the app's default, except those in `COMMAND_NOISE`."""
    cls, app = _config_class(config)
    parts = [app]
    for f in dataclasses.fields(cls):
        if f.name in COMMAND_NOISE or f.name not in config or config[f.name] == f.default:
            continue
        value = config[f.name]
        if isinstance(value, bool):
            parts.append(f"--{'' if value else 'no'}{f.name}")
        else:
            parts.append(shlex.quote(f"--{f.name}={value}"))
    return " ".join(parts)


def _last(curve):
    finite = [v for v in curve if v is not None]
    return finite[-1] if finite else None


def crr_summary(folder, summary=None):
    """The CRR part of a card: the warning and the last ΔR per tap from crr_report.json, or the
    warning from summary.json, or None when the run had CRR off."""
    path = os.path.join(folder, CRR_REPORT_FILE)
    if os.path.isfile(path):
        report = read_json(path)
        history = report.get("history", {})
        return {"warning": report.get("warning"),
                "restored_best_weights": report.get("restored_best_weights"),
                "settings": report.get("settings"),
                "epochs": max((len(c) for h in history.values() for c in h.values()), default=0),
                "last_delta_r": {tap: {split: _last(c) for split, c in h.items()}
                                 for tap, h in history.items()},
                "source": CRR_REPORT_FILE}
    if summary and "crr_warning" in summary:
        return {"warning": summary["crr_warning"], "source": zoo.SUMMARY_FILE}
    return None


def read_metrics_json(path):
    """The metrics dict of a JSON file such as {"linear_top1": 0.96, "knn_top1": 0.93}."""
    try:
        metrics = read_json(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--metrics_json={path} is unreadable or not JSON ({e})") from e
    if not isinstance(metrics, dict) or not metrics:
        raise ConfigError(f"--metrics_json={path} must hold a JSON object such as "
                          '{"linear_top1": 0.96, "knn_top1": 0.93}')
    return metrics


def _versions():
    import keras
    import tensorflow as tf

    return {"sslzoo_version": sslzoo.__version__, "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__}


def _metrics_from_summary(summary):
    metrics = {"linear_top1": summary.get("linear_probe_top1"),
               "knn_top1": summary.get("knn_top1")}
    splits = summary.get("probe_splits")
    where = f" (probes fitted on {splits[0]}, scored on {splits[1]})" if splits else ""
    return metrics, f"pretrain summary.json{where}"


def resolve_source(source):
    """The `zoo.Source` of a pretrain run or zoo entry, refusing other kinds with a clear
    error."""
    if is_finetune_run(os.path.expanduser(str(source))):
        raise ConfigError(f"{source} is a sslzoo-finetune run: it has a classifier, not "
                          "backbone weights, so it makes no zoo entry (its SavedModel and "
                          "model.keras export with --noentry)")
    src = zoo.resolve(source)
    if src.kind == "file":
        raise WeightsError(f"{source}: a zoo entry is made from a sslzoo-pretrain run directory "
                           "or another entry, not from a single weights file")
    if not src.config:
        raise WeightsError(f"{source}: its card has no pretraining config; the entry cannot "
                           "say how it was made")
    return src


def build_card(src, name, metrics=None, command=None, metrics_source=None):
    """The card.json of entry ``name`` made from ``src`` (sha256 fields are added when the
    files are copied)."""
    config = dict(src.config)
    if src.kind == "entry":
        base = dict(src.card)
        crr = base.get("crr")
        if metrics is None:
            metrics, metrics_source = base.get("metrics"), base.get("metrics_source")
        else:
            base.pop("metrics_detail", None)  # it described the old metrics
        command = command or base.get("command") or pretrain_command(config)
    else:
        summary_path = os.path.join(src.path, zoo.SUMMARY_FILE)
        summary = read_json(summary_path) if os.path.isfile(summary_path) else {}
        base, crr = {}, crr_summary(src.path, summary)
        if metrics is None:
            metrics, metrics_source = _metrics_from_summary(summary)
        command = command or pretrain_command(config)
    card = {**base, "name": name, "method": config.get("method"), "backbone": src.backbone,
            "stem": src.stem, "dataset": config.get("dataset"),
            "image_size": int(src.image_size), "config": config, "command": command,
            "crr": crr, "metrics": dict(metrics or {}),
            "metrics_source": metrics_source or "given to write_entry",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": base.get("source") or os.path.abspath(src.path), **_versions()}
    model = zoo.model_spec(src)
    if model:
        card["model"] = model  # the serialised SSL model: zoo.load rebuilds its heads
    return card


def copy_backbone(src, folder, label):
    """Put ``src``'s backbone weights in entry ``folder``: the file as it is, or, when its files
    hold more than ``zoo.SHARD_BYTES``, re-saved by Keras as a sharded index and shards of
    about that size. Returns the path `zoo.load` reads."""
    files = zoo.weights_files(src.weights, label)
    if not zoo.is_sharded(src.weights) and sum(map(os.path.getsize, files)) <= zoo.SHARD_BYTES:
        target = os.path.join(folder, zoo.BACKBONE_FILE)
        shutil.copyfile(src.weights, target)
        return target
    net = zoo.build_backbone(src)
    zoo.strict_load(net, src.weights, label)
    target = os.path.join(folder, zoo.SHARDED_BACKBONE_FILE)
    net.save_weights(target, max_shard_size=zoo.SHARD_BYTES / 2 ** 30)  # Keras counts GiB
    return target


def write_entry(source, out_dir, name=None, metrics=None, command=None, overwrite=False,
                metrics_source=None, measure=False, data_dir=None):
    """Write the zoo entry ``out_dir/<name>/`` of a pretrain run directory or a zoo
    name / entry folder, atomically; returns its path.

    ``name`` defaults to ``<method>_<backbone>_<dataset>`` (a zoo source keeps its name);
    ``metrics`` ({"linear_top1", "knn_top1"}) default to the run's summary.json (an entry's
    own card); ``command`` defaults to the command rebuilt from the run's config.json. With
    ``measure``, the metrics are instead measured by sslzoo-finetune (linear and knn modes) on
    the written weights file (`sslzoo.export.measure`; ``data_dir`` is its TFDS folder). An
    existing entry folder is replaced only with ``overwrite``. The entry is loaded back with
    `sslzoo.zoo.load` (sha256 checked) before it is renamed into place.
    """
    if measure and metrics is not None:
        raise ConfigError("give the card's metrics or measure them, not both")
    src = resolve_source(source)
    if src.kind == "entry":
        zoo.verify(src.weights, src.card.get("sha256"), str(source))
        if src.projector:
            zoo.verify(src.projector, src.card.get("projector_sha256"), str(source))
    default = (os.path.basename(os.path.normpath(src.path)) if src.kind == "entry"
               else default_name(src.config))
    name = name or default
    if not name or sanitise(name) != name:
        raise ConfigError(f"--name={name!r} is not a portable folder name; use letters, "
                          f"digits, '_', '-' and '.', e.g. {sanitise(name) or default!r}")
    card = build_card(src, name, metrics, command, metrics_source)
    target = os.path.join(out_dir, name)
    with atomic_dir(target, overwrite, "a zoo entry") as tmp:
        card["sha256"] = zoo.digests(copy_backbone(src, tmp, str(source)))
        card["projector_sha256"] = None
        if src.projector:
            shutil.copyfile(src.projector, os.path.join(tmp, zoo.PROJECTOR_FILE))
            card["projector_sha256"] = zoo.sha256(os.path.join(tmp, zoo.PROJECTOR_FILE))
        write_json(os.path.join(tmp, zoo.CARD_FILE), card)
        zoo.load(tmp)  # the entry must load (sha256 and architecture checked) before it is kept
        if measure:
            from sslzoo.export.measure import measure_metrics  # lazy: TensorFlow

            card["metrics"], card["metrics_source"], card["metrics_detail"] = measure_metrics(
                tmp, card["config"], name=name, data_dir=data_dir)
            write_json(os.path.join(tmp, zoo.CARD_FILE), card)
    return os.path.abspath(target)
