"""Start a model from pretrained backbone weights (``--init_from``)."""
import os

from sslzoo.errors import WeightsError

BACKBONE_FILE = "backbone.weights.h5"


def resolve_weights(init_from):
    """The .weights.h5 path of ``init_from``: a run directory or the file itself."""
    path = os.path.expanduser(init_from)
    if os.path.isdir(path):
        path = os.path.join(path, BACKBONE_FILE)
        if not os.path.exists(path):
            raise WeightsError(f"--init_from {init_from}: the directory has no {BACKBONE_FILE}; "
                               "give a finished sslzoo-pretrain run directory or a "
                               ".weights.h5 file")
        return path
    if not os.path.exists(path):
        raise WeightsError(f"--init_from {init_from}: no such run directory or weights file")
    if not path.endswith(".weights.h5"):
        raise WeightsError(f"--init_from {init_from}: expected a run directory or a "
                           ".weights.h5 file saved by sslzoo")
    return path


def load_backbone(backbone, init_from):
    """Load ``init_from``'s weights into ``backbone``; a clear WeightsError if they don't fit."""
    path = resolve_weights(init_from)
    try:
        backbone.load_weights(path)
    except Exception as e:  # h5py/keras raise OSError, ValueError or KeyError here
        raise WeightsError(
            f"--init_from {init_from}: {path} does not load into backbone {backbone.name} "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]}). It is corrupt or from "
            "another backbone or image size; pass the matching --backbone and --image_size.")
    return path
