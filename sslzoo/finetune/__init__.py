"""Fine-tuning and evaluation of pretrained backbones on labelled data: linear, finetune, semi
and knn modes (``finetune(init_from=..., mode=...)``; the app is ``sslzoo-finetune``).

The names are imported lazily, so that the settings (and the app's flag errors) load without
TensorFlow."""
from sslzoo.finetune.config import MODES, FinetuneConfig

__all__ = ["MODES", "FinetuneConfig", "balanced_subset", "finetune", "finetune_model"]


def __getattr__(name):
    if name in ("finetune", "finetune_model"):
        from sslzoo.finetune import run

        return getattr(run, name)
    if name == "balanced_subset":
        from sslzoo.finetune.subset import balanced_subset

        return balanced_subset
    raise AttributeError(f"module 'sslzoo.finetune' has no attribute {name!r}")
