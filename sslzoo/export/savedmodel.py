"""TensorFlow SavedModel (and plain ``.keras``) export of a zoo backbone or a fine-tuned
classifier.

The SavedModel has three endpoints, all on a batch of images ``[None, S, S, 3]`` with pixels in
[0, 255] (the preprocessing is inside; do not normalise):

- ``serve`` = the ``serving_default`` signature: **uint8** input ``images`` →
  ``{"embedding": float32 [None, D]}`` (backbones) or ``{"logits": float32 [None, C]}``
  (fine-tuned classifiers), in inference mode;
- ``forward``: the same on **float32** ``images``, returning the tensor (inference mode);
- ``forward_train``: ``forward`` in training mode (BatchNorm uses and updates batch
  statistics), for fine-tuning:
  ``keras.layers.TFSMLayer(path, call_endpoint="forward",
  call_training_endpoint="forward_train", trainable=True)``.
"""
import os

from sslzoo.errors import WeightsError
from sslzoo.export.files import atomic_dir, check_free, publish_modes
from sslzoo.utils.io import atomic_path

SERVE, FORWARD, FORWARD_TRAIN = "serve", "forward", "forward_train"
INPUT_NAME = "images"


def load_finetune_model(folder):
    """The classifier of a sslzoo-finetune run (its model.keras, loaded with safe_mode)."""
    import keras

    path = os.path.join(folder, "model.keras")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # keras raises ValueError, TypeError, OSError... on a bad file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise WeightsError(f"{path} does not load with keras.saving.load_model(safe_mode=True) "
                           f"({type(e).__name__}: {first}); the finetune run is incomplete or "
                           "was made by another version") from e


def _image_spec(model):
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3 or None in shape[1:]:
        raise WeightsError(f"{model.name} takes inputs of shape {shape}; export needs images "
                           "[N, S, S, 3] of a fixed size")
    return shape[1:]


def export_saved_model(model, path, output_name="embedding", overwrite=False):
    """Write ``model`` as a TensorFlow SavedModel at ``path`` (atomically; an existing ``path``
    only with ``overwrite``) with the endpoints in the module docstring; returns ``path``."""
    import keras
    import tensorflow as tf

    size = _image_spec(model)
    in_dtype = model.inputs[0].dtype
    in_dtype = in_dtype if in_dtype in ("uint8", "float32") else "float32"

    def spec(dtype):
        return [tf.TensorSpec((None, *size), dtype, name=INPUT_NAME)]

    def serve(images):
        return {output_name: model(tf.cast(images, in_dtype), training=False)}

    def forward(images):
        return model(tf.cast(images, in_dtype), training=False)

    def forward_train(images):
        return model(tf.cast(images, in_dtype), training=True)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVE, tf.function(serve, input_signature=spec(tf.uint8)))
    archive.add_endpoint(FORWARD, tf.function(forward, input_signature=spec(tf.float32)))
    archive.add_endpoint(FORWARD_TRAIN,
                         tf.function(forward_train, input_signature=spec(tf.float32)))
    with atomic_dir(path, overwrite, "a SavedModel") as tmp:
        archive.write_out(tmp, verbose=False)
    return os.path.abspath(path)


def describe_signature(path):
    """The ``serving_default`` signature of the SavedModel at ``path``, loaded back, as text:
    ``serving_default(images: uint8[None, 32, 32, 3]) -> embedding: float32[None, 128]``."""
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures["serving_default"]

    def fmt(spec):
        dims = ", ".join("None" if d is None else str(d) for d in spec.shape.as_list())
        return f"{spec.dtype.name}[{dims}]"

    def fields(specs):
        return ", ".join(f"{k}: {fmt(s)}" for k, s in sorted(specs.items()))

    inputs, outputs = fn.structured_input_signature[1], fn.structured_outputs
    return f"serving_default({fields(inputs)}) -> {fields(outputs)}"


def save_keras(model, path, overwrite=False):
    """``model.save(path)`` atomically (an existing file only with ``overwrite``), checked to
    load back with ``keras.saving.load_model(path, safe_mode=True)``; returns ``path``."""
    import keras

    check_free(path, overwrite, "a .keras model")
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        keras.saving.load_model(tmp, safe_mode=True)
        publish_modes(tmp)
    return os.path.abspath(path)
