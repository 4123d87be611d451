"""``export(config)``: a pretrain run, a finetune run or a zoo entry → SavedModel, zoo entry and
``.keras`` file in one output folder.

    from sslzoo.export import export
    result = export(source="runs/simclr_run", output_dir="exports/simclr")
    result["saved_model"], result["entry"], result["keras_file"], result["signature"]
"""
import os

from absl import logging

from sslzoo import zoo
from sslzoo.errors import ConfigError
from sslzoo.export import entry as entry_lib
from sslzoo.export import savedmodel
from sslzoo.export.config import ExportConfig
from sslzoo.export.files import check_free

SAVED_MODEL_DIR, KERAS_FILE = "saved_model", "model.keras"


def _plan(cfg):
    """(kind, entry name or None): what the source is and the entry it makes; checks that the
    source exists and that no output would be overwritten without ``overwrite``, before any
    work."""
    source = os.path.expanduser(cfg.source)
    if entry_lib.is_finetune_run(source):
        kind, name = "finetune", None
    else:
        src = entry_lib.resolve_source(cfg.source)
        kind = src.kind
        default = (os.path.basename(os.path.normpath(src.path)) if kind == "entry"
                   else entry_lib.default_name(src.config))
        name = (cfg.name or default) if cfg.entry else None
    if kind == "finetune" and cfg.name:
        raise ConfigError(f"--name names a zoo entry, and {cfg.source} is a sslzoo-finetune "
                          "run, which makes none; drop --name")
    out = cfg.output_dir
    check_free(os.path.join(out, SAVED_MODEL_DIR), cfg.overwrite, "a SavedModel")
    if name:
        check_free(os.path.join(out, name), cfg.overwrite, "a zoo entry")
    if cfg.keras_file:
        check_free(os.path.join(out, KERAS_FILE), cfg.overwrite, "a .keras model")
    return kind, name


def export(cfg=None, **overrides):
    """Export as configured (an ExportConfig or keyword settings); returns
    {"source", "kind", "saved_model", "entry", "keras_file", "signature", "output"} (paths
    absolute; "entry"/"keras_file" None when not written)."""
    cfg = cfg or ExportConfig(**overrides)
    kind, name = _plan(cfg)
    metrics = entry_lib.read_metrics_json(cfg.metrics_json) if cfg.metrics_json else None
    entry_path = None
    if name:
        entry_path = entry_lib.write_entry(
            cfg.source, cfg.output_dir, name=name, metrics=metrics, command=cfg.command or None,
            overwrite=cfg.overwrite,
            metrics_source=f"--metrics_json={cfg.metrics_json}" if metrics else None,
            measure=cfg.measure, data_dir=cfg.data_dir or None)
        logging.info("wrote the zoo entry %s", entry_path)
    if kind == "finetune":
        model, output = savedmodel.load_finetune_model(os.path.expanduser(cfg.source)), "logits"
    else:  # the entry just written when there is one, so all outputs hold the same weights
        model, output = zoo.load(entry_path or cfg.source), "embedding"
    saved = savedmodel.export_saved_model(model, os.path.join(cfg.output_dir, SAVED_MODEL_DIR),
                                          output, cfg.overwrite)
    keras_path = None
    if cfg.keras_file:
        keras_path = savedmodel.save_keras(model, os.path.join(cfg.output_dir, KERAS_FILE),
                                           cfg.overwrite)
    return {"source": cfg.source, "kind": kind, "saved_model": saved, "entry": entry_path,
            "keras_file": keras_path, "signature": savedmodel.describe_signature(saved),
            "output": output}
