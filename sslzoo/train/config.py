"""Pretraining settings: one dataclass is the single source of the app's flags and defaults."""
import dataclasses
import time

from sslzoo.errors import ConfigError
from sslzoo.utils.config import check_fields, parse_hparams, setting

@dataclasses.dataclass
class PretrainConfig:
    method: str = setting("simclr", "SSL method; see sslzoo.methods.available().")
    backbone: str = setting("resnet_tiny", "Backbone: resnet_tiny, resnet_small, resnet18 or "
                            "resnet50.")
    stem: str = setting("auto", "ResNet stem: auto (cifar for images <= 64 px), cifar or imagenet.")
    dataset: str = setting("digits", "digits (built in), any TFDS name, or folder:PATH.")
    data_dir: str = setting("", "TFDS data_dir (default: TFDS's own, ~/tensorflow_datasets).")
    split: str = setting("train", "Pretraining split, TFDS syntax (e.g. train[:10%]).")
    probe_train_split: str = setting("train", "Labeled split the final linear probe is fitted on.")
    probe_test_split: str = setting("test", "Held-out split the final linear probe is scored on.")
    image_size: int = setting(0, "Image side in pixels; 0 = the dataset's own (digits: 32).",
                              lower=0)
    epochs: int = setting(20, "Pretraining epochs.", lower=1)
    batch_size: int = setting(256, "Global batch size (images; each gives two views).", lower=1)
    steps_per_epoch: int = setting(0, "Batches per epoch; 0 = one pass over --split. Otherwise the "
                                   "split repeats, so a large split can be measured (CRR, probes, "
                                   "checkpoints) every N steps, like a small one.", lower=0)
    learning_rate: float = setting(0.0, "Base learning rate before batch scaling; 0 = the "
                                   "method's paper default.", lower=0.0)
    optimizer: str = setting("", "lars, sgd, adam, adamw or lamb; empty = the method's default.")
    weight_decay: float = setting(-1.0, "Weight decay; -1 = the method's default.")
    lars_eta: float = setting(1e-3, "LARS trust coefficient η (the papers' 1e-3; larger moves "
                              "each layer further per step, e.g. 0.02 with --lars_clip).",
                              lower=1e-12)
    lars_clip: bool = setting(False, "Clip LARS's layer-wise rate to at most the global one "
                              "(LARC), min(η‖w‖/‖g‖, 1).")
    warmup_epochs: float = setting(2.0, "Linear warmup epochs before the cosine decay.", lower=0.0)
    schedule: str = setting("cosine", "Learning rate after the warmup: cosine (decay to 0) or "
                            "constant (the peak rate to the end).", choices=("cosine", "constant"))
    hparams: str = setting("", "Method hyperparameters, e.g. 'temperature=0.2,proj_dim=64'.")
    crr_every: int = setting(1, "Measure ΔR of the CRR taps every N steps; 0 turns CRR off.",
                             lower=0)
    crr_taps: str = setting("", "Comma-separated layers to monitor; empty = stage1..stage4,proj.")
    crr_reference_size: int = setting(512, "Images in each fixed CRR reference set (held-out and "
                                      "pretraining) measured every epoch; 0 turns it off.", lower=0)
    crr_reference_split: str = setting("", "Held-out split for the CRR reference set; empty = "
                                       "--probe_test_split.")
    crr_patience: int = setting(5, "Epochs a CRR warning signal must persist.", lower=1)
    crr_warning_rule: str = setting("any", "CRR warning rule: any (the held-out drop or the "
                                    "memorisation gap, after the warmup) or strict (the gap "
                                    "only, ignoring the first tenth of the run).",
                                    choices=("any", "strict"))
    crr_early_stop: bool = setting(False, "Stop at the CRR warning and restore the best-by-CRR "
                                   "weights.")
    crr_quality: bool = setting(True, "Also log the label-free scores rankme/<tap> and "
                                "lidar/<tap> on the held-out CRR reference set every epoch.")
    lidar_images: int = setting(32, "Held-out images LiDAR scores each epoch (the first ones of "
                                "the CRR reference set).", lower=2)
    lidar_views: int = setting(8, "Views of each image LiDAR scores (q; its paper uses more).",
                               lower=2)
    select_by: str = setting("", "Label-free model selection: keep the best epoch by this score "
                             "(e.g. crr/stage4/heldout_delta_r, rankme/stage4, lidar/proj) and "
                             "end with its weights; empty = the last epoch.")
    umm: bool = setting(False, "Add the Undoing Memorization Mechanism (bi-level; see sslzoo.umm).")
    umm_early: str = setting("auto", "UMM early part: the block output that ends it (stage1.."
                             "stage3, stageN_blockM_out, blockN on a ViT), a number of blocks, "
                             "or auto: half the depth (stage2 on a ResNet, block6 on ViT-12).")
    umm_beta: float = setting(1.0, "UMM weight β of the early/last alignment (inner objective).",
                              lower=0.0)
    umm_gamma: float = setting(0.01, "UMM weight γ of the last layer's ΔR in the outer "
                               "objective L_SSL - γ·ΔR: > 0 maximises ΔR (the paper), < 0 "
                               "minimises it (the authors' code; an ablation).")
    umm_alignment: str = setting("similarity_kl", "UMM alignment: similarity_kl or gradient_js.",
                                 choices=("similarity_kl", "gradient_js"))
    umm_inner_steps: int = setting(1, "UMM inner steps per batch.", lower=1)
    umm_early_lr_mult: float = setting(-1.0, "UMM early-part learning-rate multiple; 0 freezes it; "
                                       "-1 = 0 with --init_from, 1 from scratch.", lower=-1.0)
    init_from: str = setting("", "Start from pretrained backbone weights: a run directory of "
                             "sslzoo-pretrain or a .weights.h5 file (heads start fresh).")
    augment: str = setting("", "Overrides of the method's augmentation recipe, e.g. "
                           "'crop_scale=0.5:1,flip=0,solarize=0:0' (fields: crop_scale, flip, "
                           "jitter, "
                           "jitter_p, gray_p, blur, solarize); empty = the method's own.")
    augment_on: str = setting("data", "Where views are made: data (tf.data) or device (train "
                              "step).",
                              choices=("data", "device"))
    mixed_precision: str = setting("auto", "auto, float32, mixed_float16 or mixed_bfloat16.")
    strategy: str = setting("default", "default, mirrored, multi_worker or tpu.")
    sync_bn: bool = setting(False, "Synchronise BatchNorm statistics over all replicas (global BN, "
                            "as in SimCLR); off = per-replica statistics.")
    seed: int = setting(0, "Random seed for weights, shuffling and augmentation; on a CPU the "
                        "same seed gives the same run.")
    deterministic: bool = setting(False, "Also make TensorFlow's ops deterministic "
                                  "(enable_op_determinism): for GPUs; a CPU run is "
                                  "reproducible without it.")
    output_dir: str = setting("", "Run directory; empty = "
                              "runs/<method>_<backbone>_<dataset>_<time>.")
    resume: bool = setting(False, "Continue the run in --output_dir from its last checkpoint, "
                           "exactly as if it had not stopped.")
    checkpoint_every_steps: int = setting(0, "Also checkpoint every N steps within an epoch (an "
                                          "epoch can take hours); 0 = at epoch ends only.",
                                          lower=0)
    download: bool = setting(True, "Allow TFDS to download a dataset that is not prepared.")
    verbose: int = setting(1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.",
                           lower=0)

    def __post_init__(self):
        check_fields(self)
        if self.batch_size < 2:
            raise ConfigError("--batch_size must be >= 2 (contrastive losses need negatives)")
        from sslzoo.data.augment import parse_augment  # lazy: TensorFlow

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


# Settings a resumed run may change; every other one must match the saved config.json. A new
# --learning_rate takes effect from the resumed step on (after a NaN, say).
RESUMABLE_CHANGES = ("resume", "verbose", "download", "data_dir", "checkpoint_every_steps",
                     "learning_rate")


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
