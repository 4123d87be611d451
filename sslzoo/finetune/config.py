"""Fine-tuning settings: one dataclass is the single source of the app's flags and defaults.

Defaults per mode (a 0 / -1 / empty flag picks them; see `FinetuneConfig.resolved`). The
learning rates were picked on digits from a 1-epoch SimCLR run (BUILD.md, "Fine-tuning"):

- ``linear``: Adam, lr 1e-2 with cosine decay to 0, no weight decay, 100 epochs. The frozen
  backbone's features are extracted once and standardised, so an epoch is one Dense layer over
  cached vectors and 100 of them cost seconds (1e-3 under-fits a few hundred steps).
- ``finetune``: SGD with Nesterov momentum 0.9, lr 0.4 × B/256 (0.2 at the default batch of
  128) with cosine decay, weight decay 5e-4 on kernels, 10 epochs; the backbone at 0.1 × that
  rate (a second optimizer); light augmentation: pad by 1/8 of the side and crop back at
  random, plus a horizontal flip except on digits (``--augment=auto``).
- ``semi``: as ``finetune`` on a class-balanced ``--label_fraction`` of the train split, for
  100 epochs: the subset is small, so it needs more passes for the same number of steps.
- ``knn``: no training; weighted cosine k-NN (k = 20 and 200, τ = 0.07) on frozen features.
"""
import dataclasses
import time

from sslzoo.errors import ConfigError
from sslzoo.utils.config import check_fields, setting
from sslzoo.zoo import list_models

MODES = ("linear", "finetune", "knn", "semi")
AUGMENTS = ("auto", "crop_flip", "crop", "none")
# mode -> (optimizer, base learning rate, lr scaling rule, weight decay, epochs)
MODE_DEFAULTS = {
    "linear": ("adam", 1e-2, "none", 0.0, 100),
    "finetune": ("sgd", 0.4, "linear", 5e-4, 10),
    "semi": ("sgd", 0.4, "linear", 5e-4, 100),
    "knn": ("", 0.0, "none", 0.0, 0),
}


@dataclasses.dataclass
class FinetuneConfig:
    init_from: str = setting("", "Backbone to start from: a zoo name, a sslzoo-pretrain run "
                             "directory, a zoo entry directory, a .weights.h5 file, or 'random' "
                             "(an untrained --backbone, the baseline).")
    mode: str = setting("linear", "linear (frozen backbone, linear head), finetune (whole "
                        "network), "
                        "knn (cosine k-NN, no training) or semi (finetune on --label_fraction of "
                        "the labels).", choices=MODES)
    backbone: str = setting("resnet_tiny", "Architecture for --init_from=random (else the "
                            "source's).")
    pool: str = setting("", "A ViT's readout: cls (the CLS token after the final norm) or mean "
                        "(the mean of its patch tokens, MAE's fine-tuning readout); empty = "
                        "cls. ResNets take none.", choices=("", "cls", "mean"))
    stem: str = setting("auto", "ResNet stem for --init_from=random: auto, cifar or imagenet.")
    dataset: str = setting("digits", "digits (built in), any TFDS name, or folder:PATH; needs "
                           "labels.")
    data_dir: str = setting("", "TFDS data_dir (default: TFDS's own, ~/tensorflow_datasets).")
    train_split: str = setting("train", "Labeled split the head / network is trained on.")
    test_split: str = setting("test", "Held-out labeled split it is scored on.")
    image_size: int = setting(0, "Image side in pixels; 0 = the backbone source's (random: the "
                              "dataset's own).", lower=0)
    label_fraction: float = setting(0.1, "semi: fraction of the train split that keeps its labels "
                                    "(class-balanced, at least one image per class), in (0, 1].",
                                    lower=0.0)
    epochs: int = setting(0, "Training epochs; 0 = the mode's default (linear 100, finetune 10, "
                          "semi 100).", lower=0)
    batch_size: int = setting(128, "Batch size (images, or cached features in linear mode).",
                              lower=1)
    learning_rate: float = setting(0.0, "Peak learning rate before batch scaling; 0 = the mode's "
                                   "default (linear 1e-2 Adam; finetune/semi 0.4 × B/256 SGD).",
                                   lower=0.0)
    optimizer: str = setting("", "sgd, adam or adamw; empty = the mode's default.")
    weight_decay: float = setting(-1.0, "Weight decay; -1 = the mode's default (linear 0, "
                                  "finetune/semi 5e-4).")
    backbone_lr_mult: float = setting(0.1, "finetune/semi: backbone learning rate as a multiple of "
                                      "the head's (a second optimizer); 0 freezes its weights.",
                                      lower=0.0)
    layer_decay: float = setting(1.0, "finetune/semi on a ViT: layer-wise learning-rate decay "
                                 "(BEiT, MAE): block i of D trains at the backbone rate × "
                                 "decay^(D+1−i), the embeddings at decay^(D+1), the final norm "
                                 "at the backbone rate; 1 = off. MAE's recipe: "
                                 "--layer_decay=0.75 --backbone_lr_mult=1.")
    augment: str = setting("auto", "finetune/semi training augmentation: crop_flip (pad by 1/8 and "
                           "random crop, horizontal flip), crop, none, or auto (crop for digits, "
                           "where mirroring changes a digit; crop_flip otherwise).",
                           choices=AUGMENTS)
    seed: int = setting(0, "Random seed for the head, shuffling, augmentation and the semi subset.")
    output_dir: str = setting("", "Run directory; empty = runs/finetune_<mode>_<time>.")
    overwrite: bool = setting(False, "Replace the results of a finished run in --output_dir.")
    download: bool = setting(True, "Allow TFDS to download a dataset that is not prepared.")
    verbose: int = setting(1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.",
                           lower=0)

    def __post_init__(self):
        check_fields(self)
        if not self.init_from.strip():
            raise ConfigError("--init_from is required: a zoo name (installed: "
                              f"{', '.join(list_models()) or 'none'}), a sslzoo-pretrain run "
                              "directory, a zoo entry directory, a .weights.h5 file, or "
                              "'random' for an untrained baseline")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"--label_fraction must be in (0, 1], got {self.label_fraction}")
        if self.optimizer not in ("", "sgd", "adam", "adamw"):
            raise ConfigError(f"--optimizer must be sgd, adam or adamw (or empty for the "
                              f"mode's default), got {self.optimizer!r}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(f"--layer_decay must be in (0, 1] (1 = off), got {self.layer_decay}")
        if self.layer_decay != 1.0 and self.mode not in ("finetune", "semi"):
            raise ConfigError(f"--layer_decay applies to --mode=finetune or semi, which train "
                              f"the backbone; --mode={self.mode} does not")
        if self.weight_decay < 0 and self.weight_decay != -1:
            raise ConfigError(f"--weight_decay must be >= 0 or -1 (the mode's default), got "
                              f"{self.weight_decay}")
        if not self.output_dir:
            self.output_dir = f"runs/finetune_{self.mode}_{time.strftime('%Y%m%d-%H%M%S')}"

    @property
    def augmentation(self):
        """``augment`` with auto resolved."""
        if self.augment != "auto":
            return self.augment
        return "crop" if self.dataset == "digits" else "crop_flip"

    @property
    def is_random(self):
        return self.init_from.strip().lower() == "random"

    def resolved(self):
        """{"optimizer", "learning_rate" (peak, batch-scaled), "weight_decay", "epochs"}: the
        flags with the mode's defaults filled in."""
        name, base_lr, rule, wd, epochs = MODE_DEFAULTS[self.mode]
        lr = self.learning_rate or base_lr
        scale = self.batch_size / 256 if rule == "linear" else 1.0
        return {"optimizer": self.optimizer or name, "learning_rate": lr * scale,
                "weight_decay": wd if self.weight_decay < 0 else self.weight_decay,
                "epochs": self.epochs or epochs}

    def to_dict(self):
        return dataclasses.asdict(self)
