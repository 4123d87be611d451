"""Export of pretrained backbones and fine-tuned classifiers: a TensorFlow SavedModel (uint8
images → embedding or logits), a zoo entry (weights + card.json) and a plain ``.keras`` file
(``export(source=..., output_dir=...)``; the app is ``sslzoo-export``)."""
from sslzoo.export.config import ExportConfig
from sslzoo.export.entry import pretrain_command, write_entry
from sslzoo.export.run import export
from sslzoo.export.savedmodel import describe_signature, export_saved_model

__all__ = ["ExportConfig", "describe_signature", "export", "export_saved_model",
           "pretrain_command", "write_entry"]
