"""``StudyConfig``: the layer-wise study's settings, PretrainConfig with the study's defaults."""
import dataclasses

from sslzoo import methods
from sslzoo.errors import ConfigError
from sslzoo.train.config import PretrainConfig
from sslzoo.utils.config import setting

STUDY_TEMPERATURE = 0.2  # SimCLR's at small batches (BUILD.md, "The layer-wise study")


def _with_default(name, default):
    """Re-declare the PretrainConfig field ``name`` (same help and bounds) with a new default."""
    return dataclasses.field(default=default,
                             metadata=PretrainConfig.__dataclass_fields__[name].metadata)


@dataclasses.dataclass
class StudyConfig(PretrainConfig):
    """PretrainConfig with the study's defaults (the issue's scratch-run setting on ``digits``,
    scaled to a CPU) and the study's own settings."""

    backbone: str = _with_default("backbone", "resnet_tiny")
    split: str = _with_default("split", "train[:200]")
    probe_train_split: str = _with_default("probe_train_split", "train[200:1200]")
    probe_test_split: str = _with_default("probe_test_split", "test")
    epochs: int = _with_default("epochs", 200)
    batch_size: int = _with_default("batch_size", 100)
    learning_rate: float = _with_default("learning_rate", 0.00256)  # × 100/256: peak 1e-3
    optimizer: str = _with_default("optimizer", "adamw")
    weight_decay: float = _with_default("weight_decay", 0.0)
    warmup_epochs: float = _with_default("warmup_epochs", 10.0)
    hparams: str = setting("", "Method hyperparameters, e.g. 'proj_dim=64'. The study uses "
                           "temperature=0.2 for methods that have a temperature unless given here.")
    crr_reference_split: str = _with_default("crr_reference_split", "test")
    verbose: int = _with_default("verbose", 2)
    study_every: int = setting(10, "Fit the per-layer probes every K epochs (and at the last one).",
                               lower=1)
    probe_fit_split: str = setting("train[200:1200]", "Labeled split the per-layer probes are "
                                   "fitted on (keep it disjoint from --split).")
    probe_eval_split: str = setting("test", "Labeled split the per-layer probes are scored on.")

    # The final probe (summary.json, UMM's before/after) follows the per-layer probes' splits.
    _FINAL_PROBE = (("probe_train_split", "probe_fit_split"),
                    ("probe_test_split", "probe_eval_split"))

    def __post_init__(self):
        super().__post_init__()
        for final, study in self._FINAL_PROBE:
            default = type(self).__dataclass_fields__[final].default
            if getattr(self, final) == default:
                setattr(self, final, getattr(self, study))
            elif getattr(self, final) != getattr(self, study):
                raise ConfigError(f"--{final}={getattr(self, final)} differs from "
                                  f"--{study}={getattr(self, study)}: the study scores every "
                                  f"probe on one pair of splits; set only --{study}")

    def method_hparams(self):
        """``hparams``, plus temperature=0.2 when the method has a temperature not given."""
        out = super().method_hparams()
        if "temperature" in methods.get(self.method).defaults:
            out.setdefault("temperature", STUDY_TEMPERATURE)
        return out
