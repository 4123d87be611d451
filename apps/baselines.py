"""Reference probes on the same probe splits as a pretrained probe: raw pixels and random-init
backbones (floors, one per seed), and optionally a supervised ceiling (each backbone trained
with labels on the SSL run's pretraining split at its budget).

    python -m apps.baselines --seeds=0,1,2
    python -m apps.baselines --dataset=fashion_mnist --backbones=resnet_tiny,resnet_small \
        --probe_train_split='train[50000:55000]' --probe_test_split='train[55000:57000]' \
        --supervised_split='train[:500]' --epochs=200 --output=runs/baselines_fmnist.json
"""
import json

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "digits", "digits, fashion_mnist, any TFDS name, or folder:PATH.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir.")
flags.DEFINE_string("backbones", "resnet_tiny", "Comma-separated backbones to measure.")
flags.DEFINE_alias("backbone", "backbones")
flags.DEFINE_string("probe_train_split", "train", "Split the probe is fitted on.")
flags.DEFINE_string("probe_test_split", "test", "Split the probe is scored on.")
flags.DEFINE_string("seeds", "0,1,2", "Comma-separated seeds (random-init weights; ceilings).")
flags.DEFINE_string("supervised_split", "", "Labelled split to train the supervised ceiling on "
                    "(the SSL run's --split); empty skips the ceiling.")
flags.DEFINE_integer("epochs", 200, "Supervised ceiling: epochs (the SSL run's).", lower_bound=1)
flags.DEFINE_integer("batch_size", 100, "Supervised ceiling: batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", 1e-3, "Supervised ceiling: Adam peak rate.", lower_bound=0)
flags.DEFINE_float("warmup_epochs", 10, "Supervised ceiling: warmup epochs.", lower_bound=0)
flags.DEFINE_string("augment", "none", "Supervised ceiling: 'none', or overrides of the SimCLR "
                    "recipe as in sslzoo-pretrain --augment (empty = the recipe as it is).")
flags.DEFINE_string("output", "", "Also write the result to this JSON file (atomically).")


def _seeds():
    try:
        return [int(s) for s in FLAGS.seeds.split(",") if s.strip()]
    except ValueError:
        raise app.UsageError(f"--seeds must be comma-separated integers, got {FLAGS.seeds!r}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo import data
    from sslzoo.data.augment import with_overrides
    from sslzoo.eval.baselines import (mean_std, random_init_probe, raw_pixel_probe,
                                       supervised_ceiling)
    from sslzoo.utils.io import write_json
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()
    seeds, nets = _seeds(), [b.strip() for b in FLAGS.backbones.split(",") if b.strip()]
    load = lambda split: data.load(FLAGS.dataset, split, data_dir=FLAGS.data_dir or None)
    fit, test = load(FLAGS.probe_train_split), load(FLAGS.probe_test_split)
    result = {"dataset": FLAGS.dataset, "splits": [FLAGS.probe_train_split,
                                                   FLAGS.probe_test_split],
              "raw_pixels": raw_pixel_probe(fit, test)}
    for net in nets:
        result[f"random_{net}"] = mean_std([random_init_probe(net, fit, test, seed=s)
                                            for s in seeds])
    if FLAGS.supervised_split:
        train = load(FLAGS.supervised_split)
        augment = None if FLAGS.augment == "none" else with_overrides("simclr", FLAGS.augment)
        settings = dict(epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                        learning_rate=FLAGS.learning_rate, warmup_epochs=FLAGS.warmup_epochs)
        result["supervised"] = {"split": FLAGS.supervised_split, "augment": FLAGS.augment,
                                **settings}
        for net in nets:
            runs = [supervised_ceiling(net, train, fit, test, augment=augment, seed=s,
                                       **settings) for s in seeds]
            result[f"supervised_{net}"] = {k: mean_std([r[k] for r in runs]) for k in runs[0]}
    print(json.dumps(result, indent=2))
    if FLAGS.output:
        write_json(FLAGS.output, result)


if __name__ == "__main__":
    app.run(main)
