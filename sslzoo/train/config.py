"""Pretraining settings: one dataclass is the single source of the app's flags and defaults."""
import dataclasses
import time

from sslzoo.errors import ConfigError

LARS_ETA = 1e-3  # LARS trust coefficient of the ImageNet papers (SimCLR, BYOL)


def parse_hparams(text):
    """``'temperature=0.2,proj_dim=64'`` as a dict of numbers (or strings; ``none`` is None)."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ConfigError(f"--hparams entry {item!r} is not key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key] = None if value.lower() == "none" else value
    return out


def _f(default, help_, **meta):
    return dataclasses.field(default=default, metadata={"help": help_, **meta})


def check_fields(cfg):
    """Raise a ConfigError for any field of dataclass ``cfg`` below its ``lower`` bound or
    outside its ``choices`` (the bounds of ``_f``)."""
    for f in dataclasses.fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        if "lower" in meta and value < meta["lower"]:
            raise ConfigError(f"--{f.name} must be >= {meta['lower']}, got {value}")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"--{f.name} must be one of {meta['choices']}, got {value!r}")


@dataclasses.dataclass
class PretrainConfig:
    method: str = _f("simclr", "SSL method; see sslzoo.methods.available().")
    backbone: str = _f("resnet_tiny", "Backbone: resnet_tiny, resnet_small, resnet18 or resnet50.")
    stem: str = _f("auto", "ResNet stem: auto (cifar for images <= 64 px), cifar or imagenet.")
    dataset: str = _f("digits", "digits (built in), any TFDS name, or folder:PATH.")
    data_dir: str = _f("", "TFDS data_dir (default: TFDS's own, ~/tensorflow_datasets).")
    split: str = _f("train", "Pretraining split, TFDS syntax (e.g. train[:10%]).")
    probe_train_split: str = _f("train", "Labeled split the final linear probe is fitted on.")
    probe_test_split: str = _f("test", "Held-out split the final linear probe is scored on.")
    image_size: int = _f(0, "Image side in pixels; 0 = the dataset's own (digits: 32).",
                         lower=0)
    epochs: int = _f(20, "Pretraining epochs.", lower=1)
    batch_size: int = _f(256, "Global batch size (images; each gives two views).", lower=1)
    steps_per_epoch: int = _f(0, "Batches per epoch; 0 = one pass over --split. Otherwise the "
                              "split repeats, so a large split can be measured (CRR, probes, "
                              "checkpoints) every N steps, like a small one.", lower=0)
    learning_rate: float = _f(0.0, "Base learning rate before batch scaling; 0 = the "
                              "method's paper default.", lower=0.0)
    optimizer: str = _f("", "lars, sgd, adamw or lamb; empty = the method's default.")
    weight_decay: float = _f(-1.0, "Weight decay; -1 = the method's default.")
    lars_eta: float = _f(LARS_ETA, "LARS trust coefficient η (the papers' 1e-3; larger moves "
                         "each layer further per step, e.g. 0.02 with --lars_clip).", lower=1e-12)
    lars_clip: bool = _f(False, "Clip LARS's layer-wise rate to at most the global one "
                         "(LARC), min(η‖w‖/‖g‖, 1).")
    warmup_epochs: float = _f(2.0, "Linear warmup epochs before the cosine decay.", lower=0.0)
    schedule: str = _f("cosine", "Learning rate after the warmup: cosine (decay to 0) or "
                       "constant (the peak rate to the end).", choices=("cosine", "constant"))
    hparams: str = _f("", "Method hyperparameters, e.g. 'temperature=0.2,proj_dim=64'.")
    crr_every: int = _f(1, "Measure ΔR of the CRR taps every N steps; 0 turns CRR off.",
                        lower=0)
    crr_taps: str = _f("", "Comma-separated layers to monitor; empty = stage1..stage4,proj.")
    crr_reference_size: int = _f(512, "Images in each fixed CRR reference set (held-out and "
                                 "pretraining) measured every epoch; 0 turns it off.", lower=0)
    crr_reference_split: str = _f("", "Held-out split for the CRR reference set; empty = "
                                  "--probe_test_split.")
    crr_patience: int = _f(5, "Epochs a CRR warning signal must persist.", lower=1)
    crr_early_stop: bool = _f(False, "Stop at the CRR warning and restore the best-by-CRR "
                              "weights.")
    umm: bool = _f(False, "Add the Undoing Memorization Mechanism (bi-level; see sslzoo.umm).")
    umm_early: str = _f("stage2", "UMM early part: the block output that ends it (stage1.."
                        "stage3, stageN_blockM_out) or a number of blocks.")
    umm_beta: float = _f(1.0, "UMM weight β of the early/last alignment (inner objective).",
                         lower=0.0)
    umm_gamma: float = _f(0.01, "UMM weight γ of the last layer's ΔR (outer objective, "
                          "maximised).", lower=0.0)
    umm_alignment: str = _f("similarity_kl", "UMM alignment: similarity_kl or gradient_js.",
                            choices=("similarity_kl", "gradient_js"))
    umm_inner_steps: int = _f(1, "UMM inner steps per batch.", lower=1)
    umm_early_lr_mult: float = _f(-1.0, "UMM early-part learning-rate multiple; 0 freezes it; "
                                  "-1 = 0 with --init_from, 1 from scratch.", lower=-1.0)
    init_from: str = _f("", "Start from pretrained backbone weights: a run directory of "
                        "sslzoo-pretrain or a .weights.h5 file (heads start fresh).")
    augment: str = _f("", "Overrides of the method's augmentation recipe, e.g. "
                      "'crop_scale=0.5:1,flip=0,solarize=0:0' (fields: crop_scale, flip, jitter, "
                      "jitter_p, gray_p, blur, solarize); empty = the method's own.")
    augment_on: str = _f("data", "Where views are made: data (tf.data) or device (train step).",
                         choices=("data", "device"))
    mixed_precision: str = _f("auto", "auto, float32, mixed_float16 or mixed_bfloat16.")
    strategy: str = _f("default", "default, mirrored, multi_worker or tpu.")
    sync_bn: bool = _f(False, "Synchronise BatchNorm statistics over all replicas (global BN, "
                       "as in SimCLR); off = per-replica statistics.")
    seed: int = _f(0, "Random seed for weights, shuffling and augmentation.")
    output_dir: str = _f("", "Run directory; empty = runs/<method>_<backbone>_<dataset>_<time>.")
    resume: bool = _f(False, "Continue the run in --output_dir from its last checkpoint.")
    download: bool = _f(True, "Allow TFDS to download a dataset that is not prepared.")
    verbose: int = _f(1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.",
                      lower=0)

    def __post_init__(self):
        check_fields(self)
        if self.batch_size < 2:
            raise ConfigError("--batch_size must be >= 2 (contrastive losses need negatives)")
        from sslzoo.data.augment import parse_augment  # keras-cv: imported only when needed

        parse_augment(self.augment)  # a bad --augment fails before any data is loaded
        if not self.output_dir:
            name = f"{self.method}_{self.backbone}_{self.dataset}".replace(":", "-")
            name = name.replace("/", "_")
            self.output_dir = f"runs/{name}_{time.strftime('%Y%m%d-%H%M%S')}"

    def method_hparams(self):
        """``hparams`` parsed into a dict of numbers (or strings)."""
        return parse_hparams(self.hparams)

    def umm_kwargs(self):
        """Keyword arguments of ``sslzoo.umm.UMM`` from the --umm_* flags."""
        mult = self.umm_early_lr_mult
        if mult < 0:
            mult = 0.0 if self.init_from else 1.0
        early = int(self.umm_early) if self.umm_early.isdigit() else self.umm_early
        return {"early": early, "beta": self.umm_beta, "gamma": self.umm_gamma,
                "alignment": self.umm_alignment, "inner_steps": self.umm_inner_steps,
                "early_lr_mult": mult}

    def to_dict(self):
        return dataclasses.asdict(self)


# Settings a resumed run may change; every other one must match the saved config.json.
RESUMABLE_CHANGES = ("resume", "verbose", "download", "data_dir")


def merge_for_resume(saved, given):
    """The saved config, updated with the explicitly ``given`` settings that may change."""
    clash = {k: (saved.get(k), v) for k, v in given.items()
             if k not in RESUMABLE_CHANGES and k in saved and saved[k] != v}
    if clash:
        detail = ", ".join(f"--{k}: saved {a!r}, given {b!r}" for k, (a, b) in clash.items())
        raise ConfigError(f"--resume continues the saved run, whose settings differ: {detail}. "
                          "Drop these flags, or start a new run with another --output_dir.")
    merged = dict(saved)
    merged.update({k: v for k, v in given.items() if k in RESUMABLE_CHANGES})
    return merged
