"""Export a pretrained backbone or a fine-tuned classifier: a TensorFlow SavedModel (uint8
images → embedding or logits), a zoo entry (weights + card.json) and model.keras.

    sslzoo-export --source=runs/simclr_run --output_dir=exports/simclr
    sslzoo-export --source=runs/simclr_run --output_dir=weights --name=simclr_resnet_tiny_digits \
        --metrics_json=metrics.json --nokeras_file
    sslzoo-export --source=runs/finetune_run --output_dir=exports/classifier   # logits
    python -m apps.export --helpfull                                          # every flag
"""
from absl import app, flags

from apps.flags import define_from_dataclass, run_from_flags
from sslzoo.export.config import ExportConfig

define_from_dataclass(ExportConfig)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.export.run import export

    result = run_from_flags(ExportConfig, export)
    if result is None:
        return 2
    print(f"\nexported {result['source']} ({result['kind']})")
    print(f"SavedModel: {result['saved_model']}")
    if result["entry"]:
        print(f"zoo entry:  {result['entry']}")
    if result["keras_file"]:
        print(f"Keras file: {result['keras_file']}")
    print(f"signature:  {result['signature']}")
    print("            (uint8 pixels in [0, 255]; endpoints 'forward' and 'forward_train' take "
          "float32 for fine-tuning)")
    return 0


def run():
    """Console-script entry point (``sslzoo-export``)."""
    app.run(main)


if __name__ == "__main__":
    run()
