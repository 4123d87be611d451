"""sslzoo: a Keras 3 model zoo for self-supervised learning, with CRR monitoring and UMM.

Layers, lowest first; a package imports only from layers below it (tests/test_layering.py):
errors, utils → losses → quality → backbones → data → crr → optim → probes → methods → umm →
zoo → train → eval, finetune → export, bench. The apps sit on top.
"""
import os

# The zoo runs on the TensorFlow backend; the pure keras.ops parts (losses, CRR, backbones)
# also run on JAX when KERAS_BACKEND is set before import.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so that `import sslzoo.losses` or `sslzoo.crr` works on JAX without TensorFlow.
    if name == "build":
        from sslzoo.methods import build

        return build
    if name in ("list_models", "load"):
        from sslzoo import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'sslzoo' has no attribute {name!r}")
