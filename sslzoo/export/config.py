"""Export settings: one dataclass is the single source of the app's flags and defaults."""
import dataclasses

from sslzoo.errors import ConfigError
from sslzoo.utils.config import setting


@dataclasses.dataclass
class ExportConfig:
    source: str = setting("", "What to export: a sslzoo-pretrain run directory, a sslzoo-finetune "
                          "run directory (model.keras + results.json), or a zoo name / entry "
                          "folder.")
    output_dir: str = setting("", "Folder to write into: saved_model/, <name>/ (the zoo entry, for "
                              "pretrain-run and zoo sources) and model.keras.")
    name: str = setting("", "Name of the zoo entry; empty = <method>_<backbone>_<dataset> from the "
                        "source's config (a zoo source keeps its name).")
    command: str = setting("", "The pretraining command to record in the card; empty = rebuilt "
                           "from "
                           "the run's config.json (the settings that differ from the defaults).")
    metrics_json: str = setting("", "JSON file {\"linear_top1\": .., \"knn_top1\": ..} with the "
                                "metrics for the card; empty = the run's summary.json.")
    measure: bool = setting(False, "Measure the card's metrics with sslzoo-finetune (linear and "
                            "knn "
                            "modes, train -> test of the pretraining dataset) on the entry's own "
                            "weights, instead of taking them from the run's summary.json.")
    data_dir: str = setting("", "TFDS data_dir for --measure; empty = the pretraining config's.")
    entry: bool = setting(True, "Write the zoo entry (weights + card.json); not for finetune runs.")
    keras_file: bool = setting(True, "Also write model.keras (plain Keras, safe_mode=True loads "
                               "it).")
    overwrite: bool = setting(False, "Replace outputs that already exist in --output_dir.")

    def __post_init__(self):
        if not self.source:
            raise ConfigError("--source is required: a sslzoo-pretrain or sslzoo-finetune run "
                              "directory, a zoo name or an entry folder")
        if not self.output_dir:
            raise ConfigError("--output_dir is required: the folder the SavedModel, the zoo "
                              "entry and model.keras are written into")

        if self.measure and self.metrics_json:
            raise ConfigError("--measure and --metrics_json both set the card's metrics; "
                              "give one of them")
        if self.measure and not self.entry:
            raise ConfigError("--measure measures a zoo entry's metrics, and --noentry writes "
                              "none; drop one of them")

    def to_dict(self):
        return dataclasses.asdict(self)
