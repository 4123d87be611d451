"""The card's metrics, measured by sslzoo-finetune on the entry's own weights file.

    from sslzoo.export.measure import measure_metrics
    metrics, how, detail = measure_metrics("weights/simclr_resnet_tiny_digits", card["config"])

``linear_top1`` is `sslzoo-finetune --mode=linear` (frozen backbone, standardised cached
features, a Dense head; the mode's defaults) and ``knn_top1`` is `--mode=knn` (cosine k-NN,
k = 20, τ = 0.07), both trained on the pretraining dataset's ``train`` split and scored on its
``test`` split with seed 0. ``how`` is the exact pair of commands, which `write_entry` stores
as the card's ``metrics_source``, so a reader can re-run them on the shipped entry.
"""
import os
import shlex
import tempfile

from sslzoo.finetune.run import finetune

MODES = ("linear", "knn")


def finetune_command(init_from, mode, settings):
    """The sslzoo-finetune command line of one measurement."""
    args = [f"--init_from={init_from}", f"--mode={mode}",
            *(f"--{k}={v}" for k, v in settings.items() if v != "")]
    return " ".join(["sslzoo-finetune", *map(shlex.quote, args)])


def measure_metrics(entry_path, config, name=None, train_split="train", test_split="test",
                    data_dir=None, seed=0):
    """({"linear_top1", "knn_top1"}, the commands that measured them, each mode's top-1 and
    kNN details) for the entry folder ``entry_path``, on ``config``'s dataset.

    ``name`` is how the commands refer to the entry (its zoo name once published; default the
    folder's name). ``data_dir`` defaults to the pretraining config's TFDS folder.
    """
    settings = {"dataset": config.get("dataset", "digits"), "train_split": train_split,
                "test_split": test_split, "seed": seed}
    data_dir = config.get("data_dir", "") if data_dir is None else data_dir
    metrics, detail, commands = {}, {}, []
    name = name or os.path.basename(os.path.normpath(entry_path))
    with tempfile.TemporaryDirectory(prefix="sslzoo-measure-") as work:
        for mode in MODES:
            results = finetune(init_from=entry_path, mode=mode, data_dir=data_dir, verbose=0,
                               output_dir=os.path.join(work, mode), **settings)
            metrics[f"{mode}_top1"] = results["top1"][test_split]
            detail[mode] = {k: results[k] for k in ("top1", "top5", "knn", "wall_time_sec")
                            if k in results}
            commands.append(finetune_command(name, mode, settings))
    return metrics, " ; ".join(commands), detail
