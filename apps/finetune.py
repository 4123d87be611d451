"""Fine-tune or evaluate a pretrained backbone on labelled data (linear, finetune, semi, knn).

    sslzoo-finetune --init_from=runs/simclr_run --mode=linear           # frozen, linear head
    sslzoo-finetune --init_from=simclr_resnet_tiny_digits --mode=finetune --epochs=20
    sslzoo-finetune --init_from=runs/simclr_run --mode=semi --label_fraction=0.01
    sslzoo-finetune --init_from=random --backbone=resnet_tiny --mode=knn # untrained baseline
    python -m apps.finetune --helpfull                                   # every flag

Writes config.json, results.json, tb/ and (except knn) model.keras into --output_dir.
"""
from absl import app, flags

from apps.flags import define_from_dataclass, run_from_flags
from sslzoo.finetune.config import FinetuneConfig

define_from_dataclass(FinetuneConfig)
FLAGS = flags.FLAGS


def _finetune(cfg):
    from sslzoo.finetune.run import finetune  # TensorFlow loads only once the flags are valid

    return finetune(cfg)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    results = run_from_flags(FinetuneConfig, _finetune)
    if results is None:
        return 2
    print(f"\nrun directory: {results['output_dir']}")
    for metric in ("top1", "top5"):
        for split, acc in results.get(metric, {}).items():
            print(f"{results['mode']} {metric} on {split}: {acc:.4f}")
    for k, acc in results.get("knn", {}).items():
        print(f"knn top1 (k={k}) on {results['test_split']}: {acc:.4f}")
    print(f"wall time: {results['wall_time_sec']} s")
    return 0


def run():
    """Console-script entry point (``sslzoo-finetune``)."""
    app.run(main)


if __name__ == "__main__":
    run()
